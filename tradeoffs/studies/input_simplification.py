"""Simplified inputs: how much of an image does a classifier need?

    config → a classifier population trained on the digits → a generative prior (a
    RealNVP-style flow) fitted to the training images → for each λ, one simplifier per
    classifier member trained to minimise CE(f(x̃), y) + λ·bits(x̃) with the classifier
    fixed → accuracy of each classifier on its simplified test images against their
    bits per dimension, verdicts against the original images

Formulations chosen (Schirrmeister, Liu, Hooker, Ball 2022; PAPERS.md §11):
  * prior: `tradeoffs.generative.RealNVP` (`study.flow_layers` affine couplings with
    `study.flow_hidden` hidden units) fitted by maximum likelihood on the training images
    (`study.flow_steps` Adam steps); bits/dim under uniform dequantization of the
    `study.levels` grey levels and a logit transform; scored at the bin centres.
  * simplifier: `generative.simplify.Simplifier`, per pixel x̃ = sigmoid(4·(2x − 1) +
    g(x)) with an MLP g (zero-initialised output: it starts near the identity).
  * setting: post-hoc simplification (the paper's explanation setting): the classifier
    stays fixed; member m's simplifier serves classifier member m, so every λ is paired
    with the original images by member.
  * the paper's joint-training and dataset-condensation settings are not run here.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import jax
import numpy as np

from tradeoffs import generative
from tradeoffs import stats
from tradeoffs.report import figures
from tradeoffs.report import format as fmt
from tradeoffs.report import verdict as verdict_lib
from tradeoffs.studies import base
from tradeoffs.studies import recipes

NAME = "input_simplification"
TITLE = "Simplified inputs: accuracy against bits per dimension"
REFERENCE = "classifier"
EXAMPLES = 8  # test images shown per λ

_number = base.check_number
_tuple = base.as_tuple


def validate(config: Any) -> None:
  if "study" not in config:
    raise ValueError("config has no 'study' section; use "
                     "experiments/configs/input_simplification.py")
  s = config.study
  lambdas = _tuple(s.lambdas)
  if not lambdas:
    raise ValueError("--config.study.lambdas=() is empty: give simplicity weights λ >= 0")
  for value in lambdas:
    _number(value, "study.lambdas", 0.0)
  if len(set(lambdas)) != len(lambdas):
    raise ValueError(f"--config.study.lambdas={lambdas!r} has duplicates")
  _number(s.levels, "study.levels", 2, integer=True)
  for key in ("flow_layers", "flow_hidden", "flow_steps", "simplifier_steps", "batch_size"):
    _number(s[key], f"study.{key}", 1, integer=True)
  for key in ("flow_learning_rate", "simplifier_learning_rate"):
    _number(s[key], f"study.{key}", 0.0, low_open=True)
  if int(config.population.members) < 2:
    raise ValueError(f"--config.population.members={config.population.members}: intervals "
                     "over members need at least 2")
  if config.model.name != "mlp":
    raise ValueError(f"--config.model.name={config.model.name!r}: the classifier is an 'mlp'")


def variant_name(lam: float) -> str:
  return "simplified_lambda" + f"{float(lam):g}".replace(".", "p").replace("-", "m")


def plan(config: Any) -> list[base.Variant]:
  validate(config)
  s = config.study
  tc = base.training_config(config)
  out = [base.Variant(REFERENCE, "dense", {"lambda": None}, None, tc)]
  for lam in _tuple(s.lambdas):
    out.append(base.Variant(variant_name(lam), "simplified", {
        "lambda": float(lam), "levels": int(s.levels), "flow_layers": int(s.flow_layers),
        "flow_hidden": int(s.flow_hidden), "flow_steps": int(s.flow_steps),
        "flow_learning_rate": float(s.flow_learning_rate),
        "simplifier_steps": int(s.simplifier_steps), "batch_size": int(s.batch_size),
        "simplifier_learning_rate": float(s.simplifier_learning_rate),
        "seed": int(config.seeds.init)}, REFERENCE, tc))
  return out


def _prior(ctx: Any, variant: base.Variant) -> tuple[Any, Any, list[float]]:
  k = variant.knobs
  key = ("prior", k["levels"], k["flow_layers"], k["flow_hidden"], k["flow_steps"],
         k["flow_learning_rate"], k["batch_size"], k["seed"])
  if key not in ctx.cache:
    train = ctx.dataset(variant.train_config).train
    flow = generative.RealNVP(dim=int(np.prod(train.images.shape[1:])),
                              layers=k["flow_layers"], hidden=k["flow_hidden"])
    params, curve = generative.fit(flow, train.images, levels=k["levels"],
                                   steps=k["flow_steps"], batch_size=k["batch_size"],
                                   learning_rate=k["flow_learning_rate"], seed=k["seed"])
    ctx.cache[key] = (flow, params, curve)
  return ctx.cache[key]


def _member_bits(flow: Any, params: Any, images: np.ndarray, levels: int) -> np.ndarray:
  """Mean bits/dim (bin centres) of each member's images [M, N, ...] -> [M]."""
  fn = jax.jit(jax.vmap(lambda x: generative.bits_per_dim(flow, params, x,
                                                          levels=levels).mean()))
  return np.asarray(fn(images), np.float64)


def simplified(ctx: Any, variant: base.Variant) -> base.Outcome:
  k = variant.knobs
  config = variant.train_config
  data = ctx.dataset(config)
  cls = recipes.source(ctx, REFERENCE)
  flow, prior, curve = _prior(ctx, variant)
  levels = int(k["levels"])
  state = cls.state
  classify = lambda p, x: state.apply_fn({"params": p}, x, train=False)  # noqa: E731
  bits = lambda x, key: generative.bits_per_dim(flow, prior, x, levels=levels, key=key)  # noqa: E731
  simplifier = generative.simplify.Simplifier()
  params = generative.simplify.train_simplifiers(
      simplifier, classify, recipes.host_copy(state.params), bits, data.train.images,
      data.train.labels, lam=k["lambda"], steps=k["simplifier_steps"],
      batch_size=k["batch_size"], learning_rate=k["simplifier_learning_rate"],
      seed=k["seed"])
  test = np.asarray(data.test.images, np.float32)
  simple = np.asarray(jax.jit(jax.vmap(lambda p: simplifier.apply({"params": p}, test)))(
      params))  # [M, N, H, W, C]
  logits = np.asarray(jax.jit(jax.vmap(classify))(recipes.host_copy(state.params), simple))
  members = simple.shape[0]
  simplified_bits = _member_bits(flow, prior, simple, levels)
  original_bits = float(_member_bits(flow, prior, test[None], levels)[0])
  fields = {"per_member_bits_per_dim": simplified_bits.tolist(),
            "original_bits_per_dim": original_bits,
            "prior_bits_per_dim_curve": [round(c, 4) for c in curve],
            "examples": np.round(simple[0, :EXAMPLES, ..., 0], 3).tolist(),
            "originals": np.round(test[:EXAMPLES, ..., 0], 3).tolist(),
            "setting": "post-hoc (classifier fixed)"}
  return base.Outcome(members=members, logits=logits, derived=True, config=config,
                      efficiency=recipes.measure_member(ctx, state, config),
                      study_fields=fields,
                      hidden_costs={"bits_per_dim": float(simplified_bits.mean())})


def produce(ctx: Any, variant: base.Variant) -> base.Outcome:
  if variant.technique == "simplified":
    return simplified(ctx, variant)
  return recipes.produce(ctx, variant)


# ---------------------------------------------------------------------------------------
# The report.


def _simplified(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
  return sorted((r for r in records if r["technique"] == "simplified"),
                key=lambda r: r["knobs"]["lambda"])


def claims(records: Sequence[Mapping[str, Any]]) -> list[stats.Comparison]:
  """Per λ: top-1 on simplified against original test images, and bits/dim of the
  simplified against the original images, paired by member; one Holm family."""
  by = {r["variant"]: r for r in records}
  ref = by.get(REFERENCE)
  out = []
  for r in _simplified(records):
    f = r.get("study_fields") or {}
    bits = f.get("per_member_bits_per_dim") or []
    if ref is not None and len(r["accuracy"]["per_member_top1"]) == len(
        ref["accuracy"]["per_member_top1"]):
      out.append(stats.compare(r["accuracy"]["per_member_top1"],
                               ref["accuracy"]["per_member_top1"], paired=True,
                               claim=f"{r['variant']}: top-1 vs the original images"))
    if len(bits) >= 2:
      out.append(stats.compare(bits, [f["original_bits_per_dim"]] * len(bits), paired=True,
                               claim=f"{r['variant']}: bits/dim vs the original images"))
  return stats.family(out)


def _ci(values: Sequence[float], scale: float = 1.0, digits: int = 2) -> str:
  if len(values) < 2:
    return fmt.DASH
  mean, low, high = stats.t_interval(values)
  return f"{scale * mean:.{digits}f} [{scale * low:.{digits}f}, {scale * high:.{digits}f}]"


def plot_tradeoff(records: Sequence[Mapping[str, Any]]):
  rs = _simplified(records)
  if not rs:
    return None
  fig, axs = figures.new(1)
  ax = axs[0]
  for i, r in enumerate(rs):
    bits = r["study_fields"]["per_member_bits_per_dim"]
    top1 = r["accuracy"]["per_member_top1"]
    if len(bits) < 2:
      continue
    (mx, lx, hx), (my, ly, hy) = stats.t_interval(bits), stats.t_interval(top1)
    ax.errorbar(mx, 100 * my, xerr=[[mx - lx], [hx - mx]],
                yerr=[[100 * (my - ly)], [100 * (hy - my)]], fmt="o", capsize=2,
                color=figures.color(0))
    ax.annotate(f"λ={r['knobs']['lambda']:g}", (mx, 100 * my), fontsize=8, xytext=(4, 3),
                textcoords="offset points")
  original = rs[0]["study_fields"]["original_bits_per_dim"]
  ax.axvline(original, color="0.5", ls=":", label="original test images")
  ref = next((r for r in records if r["variant"] == REFERENCE), None)
  if ref is not None:
    ax.axhline(100 * ref["accuracy"]["top1"], color="0.5", ls="--",
               label="top-1 on the original images")
  ax.set_xlabel("bits per dimension of the classifier's input (↓ simpler)")
  ax.set_ylabel("top-1 % (95% t interval over members)")
  ax.legend(fontsize=8)
  return fig


def plot_examples(records: Sequence[Mapping[str, Any]]):
  rs = _simplified(records)
  if not rs:
    return None
  originals = np.asarray(rs[0]["study_fields"]["originals"])
  rows = [("original", originals)] + [(f"λ={r['knobs']['lambda']:g}",
                                       np.asarray(r["study_fields"]["examples"])) for r in rs]
  columns = originals.shape[0]
  fig, axs = figures.new(columns, len(rows), panel=(1.0, 1.0))
  axs = np.asarray(axs).reshape(len(rows), columns)
  for i, (label, images) in enumerate(rows):
    for j in range(columns):
      ax = axs[i, j]
      ax.imshow(images[j], cmap="gray_r", vmin=0, vmax=1)
      ax.set_xticks([])
      ax.set_yticks([])
      ax.grid(False)
      if j == 0:
        ax.set_ylabel(label, fontsize=8)
  return fig


def sections(records: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[Any, ...]]:
  records = list(records)
  rs = _simplified(records)
  any_record = records[0] if records else {}
  s = config.study
  original = rs[0]["study_fields"]["original_bits_per_dim"] if rs else None
  blocks: list[tuple[Any, ...]] = [("h2", "Setting"), ("p", (
      f"A classifier population of {any_record.get('members', '?')} MLPs "
      f"{tuple(config.model.kwargs.get('hidden', ()))} trained on {config.dataset.name} "
      f"({config.train.steps} steps); a RealNVP prior ({s.flow_layers} affine couplings, "
      f"{s.flow_hidden} hidden units, {s.flow_steps} Adam steps) fitted to the training "
      f"images, giving {fmt.number(original, 3)} bits/dim on the original test images "
      f"({s.levels} grey levels, uniform dequantization, bin centres). For each λ, one "
      f"simplifier per classifier member, trained {s.simplifier_steps} steps on CE(f(x̃), y) "
      "+ λ·bits(x̃) with the classifier fixed (post-hoc simplification); each member is "
      "scored on its own simplified test images, so every comparison is paired by member."))]
  figure = plot_tradeoff(records)
  if figure is not None:
    blocks.append(("figure", "input_simplification_tradeoff.png", figure,
                   "Top-1 against bits per dimension of the simplified test images, one "
                   "point per λ (means with 95% t intervals over members); dotted: the "
                   "original images' bits/dim; dashed: top-1 on them."))
  grid = plot_examples(records)
  if grid is not None:
    blocks.append(("figure", "input_simplification_examples.png", grid,
                   "The first test images, original (top row) and as member 0's simplifier "
                   "renders them at each λ (darker = higher value)."))
  rows = [[r["variant"], f"{r['knobs']['lambda']:g}",
           _ci(r["accuracy"]["per_member_top1"], 100.0, 1),
           _ci(r["study_fields"]["per_member_bits_per_dim"], 1.0, 3)] for r in rs]
  blocks += [("h2", "Accuracy against bits per dimension"),
             ("table", ["Variant", "λ", "Top-1 % [95% CI]", "Bits/dim [95% CI]"], rows)]
  family = claims(records)
  if family:
    top1 = [c for c in family if "top-1" in c.claim]
    bits = [c for c in family if "bits/dim" in c.claim]
    for title, group, scale, unit in (("Verdicts: top-1 on simplified inputs", top1, 100.0,
                                       "pt"),
                                      ("Verdicts: bits per dimension of simplified inputs",
                                       bits, 100.0, "×10⁻² bits/dim")):
      if not group:
        continue
      blocks += [("h2", title), ("p", (
          f"{len(family)} claims in one Holm family (both tables); paired t over members "
          "against the original test images.")), verdict_lib.table(group, scale=scale,
                                                                   unit=unit)]
      blocks += [("p", verdict_lib.sentence(c, scale=scale, unit=f" {unit}")) for c in group
                 if c.verdict != stats.NO_DIFFERENCE]
  blocks += [("h2", "What the paper reports"), ("p", (
      "Schirrmeister et al. (2022) measure simplicity as the encoding size of an input "
      "under a pretrained Glow-type flow and train a simplifier jointly with (or against a "
      "fixed) classifier on CE + λ·bits; they report that inputs can be simplified "
      "substantially at little cost in accuracy, and that simplified synthetic sets for "
      "dataset condensation lose almost no accuracy (PAPERS.md §11; architectures and "
      "numbers not retrieved). This study runs the post-hoc setting only, on 8×8 digits "
      "with a prior fitted to 1,437 images: the table says where accuracy starts to fall "
      "as the bits drop."))]
  return blocks
