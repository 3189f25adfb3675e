"""Divide and co-train (Zhao et al.; PAPERS.md section 1): one wide network against S small
members holding about the same parameters in total, trained independently or co-trained.

The question: at (nearly) equal total parameters, does an ensemble of S divided members
beat the wide model on top-1, and on the worst class, and what does running the members
concurrently cost against running them one after another?

Variants: `wide` (the configured model, `dense` recipe) and, for every S in
`config.study.ensemble_sizes` and every flag in `config.study.cotrain`, `divided_s<S>` /
`divided_s<S>_cotrain` (`divided` recipe): R = `config.population.members` ensembles of
S members each (one population of R·S networks; member i belongs to ensemble i // S), and
R wide models. Run r of every variant draws its batches with data seed `seeds.data + r`;
init, augmentation and dropout seeds differ per network, so the members of an ensemble see
the same images in the same order, each through its own augmented view.

Formulations chosen:
- width: `config.study.width_rule`. "parity" (the default) keeps the family's division
  (which fields shrink; dropout p/S) but sets the shrunk width fields to the value, scaled
  by one common factor from the wide model's, that brings S × member params closest to the
  wide model's params (ties: the smaller). "paper" is the paper's rule (WRN widen factor
  int(k/√S + 0.4), the ResNet width tables; round(w/√S) for the MLP/CNN the paper lacks);
  "sqrt" is round(w/√S). The digits MLP 64-512-512-10 (301,066 params) gives members of
  width 352 (S=2: 1.001×) and 239 (S=4: 1.000×) under "parity", against 362 (1.053×) and
  256 (1.129×) under "sqrt"/"paper": input and output layers are linear in width, so
  w/√S overshoots. For WRN-28-10 the paper's factors 7 and 5 are already the closest
  integers (0.98× and 1.00×), so the CIFAR variants keep "paper". Every divided record
  carries the exact ratio, `study_fields.params_ratio` = ensemble params / wide params.
- regularization: `ensembles.divide` (weight decay by `weight_decay_rule`, default
  wd·exp(1/S − 1); no decay on norms and biases).
- co-training (the `divided` recipe): loss per ensemble Σ_i CE(f_i(x_i), y) + λ_t·JS, JS =
  H(mean p) − mean H(p); λ_t = max(weight·t/T_w, 0.005) ramped per step over the first
  `cotraining_warmup_fraction` of training, then `cotraining_weight` (the paper ramps per
  epoch: 40 of 300 epochs; the default fraction 2/15 is the same share of training).
- ensemble prediction: `config.study.combine` (default the mean of logits); scored as R
  ensembles on the one sheet, CIE against the wide models ("retrained").
- latency: one definition for every variant, `efficiency.measure_ensemble` on ensemble 0
  (the wide model as an ensemble of one): concurrent (members in one program over a
  `members` mesh of up to S devices) and sequential (one compiled member after another),
  at batch 1 and `config.efficiency.measure_batch`.
- verdicts: each divided variant against the wide model on top-1 and on worst-class
  accuracy (each ensemble's lowest per-class accuracy) over the R runs, one Holm family;
  paired t, because run r of both shares its data order (seed data + r). Co-trained
  against independent members at the same S is a second family, paired t as well (same
  seeds, same architecture, so the same initialization).
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import ml_collections
import numpy as np

from tradeoffs import determinism
from tradeoffs import efficiency
from tradeoffs import ensembles
from tradeoffs import models
from tradeoffs import stats
from tradeoffs.data import sources as data_sources
from tradeoffs.report import figures
from tradeoffs.report import format as fmt
from tradeoffs.report import verdict as verdict_lib
from tradeoffs.studies import base
from tradeoffs.studies import recipes
from tradeoffs.train import experiment
from tradeoffs.train import seeds as seeds_lib

NAME = "divide_cotrain"
TITLE = "Divide and co-train: S small members against one wide model"
WIDE = "wide"
WIDTH_RULES = ("parity", "paper", "sqrt")
# Image shape (no batch axis) per dataset, to count parameters before any data is loaded.
INPUT_SHAPES = {"digits": (8, 8, 1), "digits_groups": (8, 8, 1), "mnist": (28, 28, 1),
                "fashion_mnist": (28, 28, 1), "cifar10": (32, 32, 3), "cifar100": (32, 32, 3)}


_tuple = base.as_tuple


def variant_name(size: int, cotrain: bool) -> str:
  return WIDE if size == 1 else f"divided_s{size}" + ("_cotrain" if cotrain else "")


training_config = base.training_config


# ---------------------------------------------------------------------------------------
# Widths: the division, and the parity width.


def _scaled(value: Any, factor: float) -> Any:
  if isinstance(value, (list, tuple)):
    return tuple(max(1, int(round(v * factor))) for v in value)
  return max(1, int(round(value * factor)))


def parity_spec(wide: ensembles.ModelSpec, member: ensembles.ModelSpec, size: int,
                count: Callable[[ensembles.ModelSpec], int]) -> ensembles.ModelSpec:
  """`member` with its shrunk width fields set to wide value × f (rounded), for the f
  that brings size × count(member) closest to count(wide) (ties: the smaller member).

  The fields are those the division shrank (e.g. an MLP's `hidden`); f is found by
  bisection (the count grows with f), then both sides of the crossing are compared.
  """
  built = None

  def wide_value(field: str) -> Any:
    nonlocal built
    if field in wide.kwargs:
      return wide.kwargs[field]
    built = built or models.get(wide.name, num_classes=2, **dict(wide.kwargs))  # Default.
    return getattr(built, field, None)

  changed = [k for k, v in member.kwargs.items()
             if k != "dropout" and wide_value(k) is not None and v != wide_value(k)]
  other = [k for k in changed if k not in models.WIDTH_FIELDS]
  if other:
    raise ValueError(f"model {wide.name!r} is divided through {other}, not a width field "
                     f"({list(models.WIDTH_FIELDS)}); use width_rule 'paper' or 'sqrt'")
  wide_kwargs = {k: wide_value(k) for k in member.kwargs if k in models.WIDTH_FIELDS}
  fields = changed or [k for k, v in wide_kwargs.items() if v is not None]
  if not fields:
    raise ValueError(f"model {wide.name!r} has no width field ({list(models.WIDTH_FIELDS)}) "
                     "to set; use width_rule 'paper' or 'sqrt'")
  cache: dict[str, int] = {}

  def at(factor: float) -> tuple[ensembles.ModelSpec, int]:
    kwargs = {**member.kwargs, **{k: _scaled(wide_kwargs[k], factor) for k in fields}}
    spec = ensembles.ModelSpec(member.name, kwargs)
    key = repr(sorted(kwargs.items()))
    if key not in cache:
      cache[key] = size * int(count(spec))
    return spec, cache[key]

  target = int(count(wide))
  low, high = 0.0, 1.0  # size × count(wide) > target for size >= 2.
  for _ in range(40):
    mid = (low + high) / 2
    if at(mid)[1] < target:
      low = mid
    else:
      high = mid
  candidates = [at(low), at(high)]
  return min(candidates, key=lambda c: (abs(c[1] - target), c[1]))[0]


def division(config: Any, size: int) -> tuple[ensembles.Division, float]:
  """The division of the configured model into `size` members under the study's width
  rule, and the planned ratio size × member params / wide params."""
  s = config.study
  wide = ensembles.ModelSpec(config.model.name, experiment.model_kwargs(config))
  wd = float(config.optimizer.get("weight_decay", 0.0) or 0.0)
  rule = str(s.width_rule)
  shape = INPUT_SHAPES.get(str(config.dataset.name))
  num_classes = data_sources.DATASETS[str(config.dataset.name)].num_classes
  count = lambda spec: models.count_params(  # noqa: E731
      spec.name, dict(spec.kwargs), num_classes=num_classes, input_shape=shape)
  try:
    d = ensembles.divide(wide, size, model_info=models.division_info(wide.name,
                                                                     dict(wide.kwargs)),
                         weight_decay=wd if wd else None,
                         weight_decay_rule=str(s.weight_decay_rule),
                         width_rule="sqrt" if rule == "parity" else rule)
    if shape is None:
      raise ValueError(f"dataset {config.dataset.name!r} has no known image shape for "
                       f"counting parameters; known: {sorted(INPUT_SHAPES)}")
    member = parity_spec(d.wide, d.member, size, count) if rule == "parity" else d.member
  except ValueError as e:
    raise ValueError(f"--config.model ({wide.name} {dict(wide.kwargs)}) cannot be divided "
                     f"with --config.study.ensemble_sizes S={size} (width_rule={rule!r}, "
                     f"weight_decay_rule={s.weight_decay_rule!r}): {e}") from None
  d = ensembles.Division(wide=d.wide, member=member, num_members=size,
                         weight_decay=d.weight_decay, wide_params=count(d.wide),
                         member_params=count(member))
  if not 0.75 <= d.param_ratio <= 1.25:
    raise ValueError(f"--config.model ({wide.name} {dict(wide.kwargs)}) divided into "
                     f"--config.study.ensemble_sizes S={size} members of "
                     f"{dict(member.kwargs)} holds {d.param_ratio:.2f}x the wide model's "
                     f"parameters (width_rule={rule!r}); the study needs 0.75-1.25x: use a "
                     "wider model or a smaller S")
  return d, float(d.param_ratio)


def divided_config(config: Any, d: ensembles.Division) -> ml_collections.ConfigDict:
  """R ensembles of S members: member model, R·S networks, divided weight decay; data
  order per ensemble (the recipe sets it), everything else varies per network."""
  c = training_config(config)
  c.model.name = d.member.name
  c.model.kwargs = ml_collections.ConfigDict(dict(d.member.kwargs))
  c.population.members = int(config.population.members) * d.num_members
  if d.weight_decay is not None:
    c.optimizer.weight_decay = float(d.weight_decay)
  vary = seeds_lib.Seeds.from_config(config.seeds).vary
  c.seeds.vary = ",".join(v for v in vary if v != "data")
  return c


def wide_config(config: Any) -> ml_collections.ConfigDict:
  c = training_config(config)
  vary = seeds_lib.Seeds.from_config(config.seeds).vary
  c.seeds.vary = ",".join(dict.fromkeys((*vary, "data")))  # Run r: data seed data + r.
  return c


# ---------------------------------------------------------------------------------------
# Plan.


_number = base.check_number


def validate(config: Any) -> None:
  """Every knob the study reads, before anything loads or compiles."""
  if "study" not in config:
    raise ValueError("config has no 'study' section; use experiments/configs/divide_cotrain.py")
  s = config.study
  sizes = _tuple(s.ensemble_sizes)
  if not sizes:
    raise ValueError("--config.study.ensemble_sizes=() is empty: give the S values to divide "
                     "into, e.g. (2, 4)")
  for size in sizes:
    _number(size, "study.ensemble_sizes", 2, integer=True)
  if len(set(sizes)) != len(sizes):
    raise ValueError(f"--config.study.ensemble_sizes={sizes!r} repeats a value")
  flags = _tuple(s.cotrain)
  if not flags or any(not isinstance(f, (bool, np.bool_)) for f in flags) or (
      len(set(flags)) != len(flags)):
    raise ValueError(f"--config.study.cotrain={flags!r}: expected distinct booleans, e.g. "
                     "(False, True)")
  if s.width_rule not in WIDTH_RULES:
    raise ValueError(f"--config.study.width_rule={s.width_rule!r} is unknown; choose from "
                     f"{list(WIDTH_RULES)}")
  if s.weight_decay_rule not in ensembles.WEIGHT_DECAY_RULES:
    raise ValueError(f"--config.study.weight_decay_rule={s.weight_decay_rule!r} is unknown; "
                     f"choose from {sorted(ensembles.WEIGHT_DECAY_RULES)}")
  for key, getter in (("cotraining_loss", ensembles.get_cotraining_loss),
                      ("combine", ensembles.get_combiner)):
    try:
      getter(s[key])
    except ValueError as e:
      raise ValueError(f"--config.study.{key}={s[key]!r}: {e}") from None
  _number(s.cotraining_weight, "study.cotraining_weight", 0)
  _number(s.cotraining_warmup_fraction, "study.cotraining_warmup_fraction", 0, 1)
  e = config.efficiency
  _number(e.latency_repeats, "efficiency.latency_repeats", 1, integer=True)
  _number(e.measure_batch, "efficiency.measure_batch", 1, integer=True)
  _number(config.population.members, "population.members", 1, integer=True)
  if str(config.dataset.name) not in data_sources.DATASETS:
    raise ValueError(f"--config.dataset.name={config.dataset.name!r} is unknown; choose from "
                     f"{sorted(data_sources.DATASETS)}")


def plan(config: Any) -> list[base.Variant]:
  """The wide model first (the reference of every verdict), then per S the divided
  variants without and with co-training."""
  validate(config)
  s = config.study
  wide = base.Variant(WIDE, "dense", {"S": 1, "model": config.model.name,
                                      **experiment.model_kwargs(config)},
                      None, wide_config(config))
  out = [wide]
  for size in (int(v) for v in _tuple(s.ensemble_sizes)):
    d, ratio = division(config, size)
    for cotrain in sorted(bool(f) for f in _tuple(s.cotrain)):
      knobs = {"S": size, "cotrain": cotrain, "width_rule": str(s.width_rule),
               "weight_decay_rule": str(s.weight_decay_rule),
               "member_model": {"name": d.member.name, "kwargs": dict(d.member.kwargs)},
               "planned_params_ratio": round(ratio, 6),
               "cotraining_loss": str(s.cotraining_loss),
               "cotraining_weight": float(s.cotraining_weight) if cotrain else 0.0,
               "cotraining_warmup_fraction": float(s.cotraining_warmup_fraction),
               "combine": str(s.combine)}
      out.append(base.Variant(variant_name(size, cotrain), "divided", knobs, WIDE,
                              divided_config(config, d)))
  return out


# ---------------------------------------------------------------------------------------
# Produce.


def member_churn(member_logits: np.ndarray, size: int) -> float:
  """Mean over ensembles of the pairwise disagreement between the members' labels."""
  preds = np.asarray(member_logits).argmax(-1)
  grouped = preds.reshape(-1, size, preds.shape[-1])
  return float(np.mean([float(determinism.churn(g)) for g in grouped]))


def _measure(ctx: Any, state: Any, size: int, train_config: Any, combine: str) -> dict:
  opts = ctx.efficiency
  return efficiency.measure_ensemble(
      lambda v, x: state.apply_fn(v, x, train=False),
      recipes.ensemble_variables(state, size), ctx.example_images(train_config),
      combine=combine, repeats=opts["repeats"],
      batch_sizes=tuple(dict.fromkeys((1, opts["measure_batch"]))))


def produce(ctx: Any, variant: base.Variant) -> base.Outcome:
  config = variant.train_config
  outcome = recipes.produce(ctx, variant)
  if variant.technique == "dense":  # The wide model, measured as an ensemble of one.
    state = ctx.cache[f"trained:{variant.name}"].state
    outcome.efficiency = _measure(ctx, state, 1, config, "mean_logits")
    return outcome
  k = variant.knobs
  size = int(k["S"])
  member_logits = ctx.predictions(f"{variant.name}_members").logits
  wide_params = ctx.records[WIDE]["efficiency"]["params"]
  outcome.hidden_costs = {**outcome.hidden_costs,
                          "member_churn": member_churn(member_logits, size)}
  data = int(config.seeds.data)
  outcome.study_fields = {
      **outcome.study_fields,
      "params_ratio": float(outcome.efficiency["params"]) / float(wide_params),
      "member_model": k["member_model"],
      "weight_decay": float(config.optimizer.get("weight_decay", 0.0) or 0.0),
      "data_seeds": [data + i // size for i in range(int(config.population.members))]}
  return outcome


# ---------------------------------------------------------------------------------------
# The report.


def _by_name(records: Sequence[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
  return {r["variant"]: r for r in records}


def _size(record: Mapping[str, Any]) -> int:
  return int((record.get("knobs") or {}).get("S", 1))


def label(record: Mapping[str, Any]) -> str:
  """'divided_s2 (1.001× params)': the name and its exact parameter ratio to the wide."""
  ratio = (record.get("study_fields") or {}).get("params_ratio")
  return record["variant"] + ("" if ratio is None else f" ({ratio:.3f}× params)")


def _ordered(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
  return sorted(records, key=lambda r: (_size(r), bool((r.get("knobs") or {}).get("cotrain"))))


def _top1_cell(values: Sequence[float]) -> str:
  if len(values) < 2:
    return fmt.accuracy(values[0]) if values else fmt.DASH
  mean, low, high = stats.t_interval(values)
  return f"{100 * mean:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def summary_table(records: Sequence[Mapping[str, Any]]) -> tuple[str, list[str], list[list[str]]]:
  headers = ["Variant (params vs wide)", "S", "Co-train", "Params", "Params/member", "FLOPs",
             "Latency concurrent", "Latency sequential", "Top-1 % [95% CI]", "Member top-1",
             "Worst class", "Member churn", "Run churn"]
  rows = []
  for r in _ordered(records):
    e, a, h = r["efficiency"], r["accuracy"], r["hidden_costs"]
    rows.append([label(r), str(_size(r)),
                 "yes" if (r.get("knobs") or {}).get("cotrain") else "no",
                 fmt.count(e.get("params")), fmt.count(e.get("params_per_member")),
                 fmt.count(e.get("flops")), fmt.latency(e.get("latency_concurrent_ms")),
                 fmt.latency(e.get("latency_sequential_ms")),
                 _top1_cell(a.get("per_member_top1") or []),
                 fmt.accuracy(a.get("member_top1", a.get("top1"))),
                 fmt.accuracy(a.get("worst_class")), fmt.number(h.get("member_churn")),
                 fmt.number(h.get("churn"))])
  return ("table", headers, rows)


def plot(records: Sequence[Mapping[str, Any]]):
  """Top-1 (mean over runs with its 95% interval) against total params and against batch-1
  latency (filled: concurrent, x: sequential); hollow: the mean single member."""
  records = _ordered(records)
  fig, axs = figures.new(2)
  for i, r in enumerate(records):
    e, a, c = r["efficiency"], r["accuracy"], figures.color(i)
    values = a.get("per_member_top1") or [a["top1"]]
    mean, low, high = stats.t_interval(values) if len(values) > 1 else (a["top1"],) * 3
    err = [[mean - low], [high - mean]]
    for ax, x in zip(axs, (e.get("params"), e.get("latency_concurrent_ms"))):
      if x is None:
        continue
      ax.errorbar([x], [mean], yerr=err, fmt="o", color=c, capsize=3, label=label(r))
      if "member_top1" in a:
        ax.scatter([x], [a["member_top1"]], facecolors="none", edgecolors=[c], s=40)
    seq = e.get("latency_sequential_ms")
    if _size(r) > 1 and seq is not None and e.get("latency_concurrent_ms") is not None:
      axs[1].scatter([seq], [mean], marker="x", color=c, s=40)
      axs[1].plot([e["latency_concurrent_ms"], seq], [mean, mean], ":", color=c, lw=1)
  backend = records[0]["efficiency"].get("backend", "?") if records else "?"
  axs[0].set_xlabel("parameters (whole ensemble)")
  axs[1].set_xlabel(f"latency at batch 1, ms ({backend}; filled: concurrent, x: sequential)")
  for ax in axs:
    ax.set_ylabel("test top-1 (↑ better); hollow: mean member")
  axs[0].legend(loc="lower right", fontsize=8)
  return fig


def wide_claims(records: Sequence[Mapping[str, Any]]) -> list[stats.Comparison]:
  """Each divided variant against the wide model on top-1 and worst class, paired over
  the R runs (run r of both uses data seed data + r); one Holm family."""
  by = _by_name(records)
  wide = by.get(WIDE)
  if wide is None:
    return []
  claims = []
  for r in _ordered(records):
    if r["variant"] == WIDE:
      continue
    for metric, path in (("top-1", "per_member_top1"),
                         ("worst class", "per_member_worst_class")):
      a, b = r["accuracy"].get(path) or [], wide["accuracy"].get(path) or []
      if len(a) == len(b) >= 2:
        claims.append(stats.compare(a, b, paired=True,
                                    claim=f"{r['variant']} vs wide: {metric}"))
  return stats.family(claims)


def cotrain_claims(records: Sequence[Mapping[str, Any]]) -> list[stats.Comparison]:
  """Co-trained against independent members at the same S (same seeds, so the same
  initialization and data order): paired over the R ensembles; one Holm family."""
  by = _by_name(records)
  claims = []
  for r in _ordered(records):
    if not (r.get("knobs") or {}).get("cotrain"):
      continue
    other = by.get(variant_name(_size(r), False))
    if other is None:
      continue
    for metric, path in (("top-1", "per_member_top1"),
                         ("worst class", "per_member_worst_class")):
      a, b = r["accuracy"].get(path) or [], other["accuracy"].get(path) or []
      if len(a) == len(b) >= 2:
        claims.append(stats.compare(a, b, paired=True,
                                    claim=f"{r['variant']} vs {other['variant']}: {metric}"))
  return stats.family(claims)


def _worst_class_summary(claims: Sequence[stats.Comparison]) -> str:
  worst = [c for c in claims if c.claim.endswith("worst class")]
  if not worst:
    return ""
  higher = [c.claim.split(" vs ")[0] for c in worst if c.verdict == stats.HIGHER]
  lower = [c.claim.split(" vs ")[0] for c in worst if c.verdict == stats.LOWER]
  text = (f"Worst-class accuracy: higher than the wide model's for {len(higher)} of "
          f"{len(worst)} divided variants" + (f" ({', '.join(higher)})" if higher else ""))
  if lower:
    text += f", lower for {', '.join(lower)}"
  return text + " (Holm-corrected, paired t over the runs)."


def sections(records: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[Any, ...]]:
  records = _ordered(records)
  by = _by_name(records)
  wide = by.get(WIDE)
  runs = wide["members"] if wide else "?"
  ratios = ", ".join(f"{r['variant']} {r['study_fields']['params_ratio']:.3f}×"
                     for r in records if "params_ratio" in (r.get("study_fields") or {}))
  rule = next(((r.get("knobs") or {}).get("width_rule") for r in records
               if r["variant"] != WIDE), None)
  blocks: list[tuple[Any, ...]] = [
      ("h2", "Divided vs wide"),
      ("p", f"Every variant is R = {runs} independent runs: R wide models, or R ensembles of "
            "S members. Top-1 is the combined ensemble's, the mean over runs with its 95% t "
            "interval; member top-1 is the mean single member; worst class is each run's "
            "lowest per-class accuracy, averaged. Member churn: disagreement between the "
            "members of one ensemble; run churn: between the independent runs. Params and "
            "FLOPs are the whole ensemble's."),
      ("p", f"Total parameters against the wide model (width rule {rule!r}): {ratios or '–'}."
            " 1.000× would be exact parity; widths are integers, so it is approached, not "
            "met."),
      summary_table(records)]
  if records:
    blocks.append(("figure", "divide_cotrain_accuracy.png", plot(records),
                   "Top-1 of each variant (mean over runs, 95% interval) against its total "
                   "parameters and its batch-1 latency; hollow markers are the mean single "
                   "member, crosses the members run one after another."))
  claims = wide_claims(records)
  if wide is not None and int(wide["members"]) < 2:
    blocks.append(("p", f"R = {runs} run per variant: no verdicts (a difference needs at "
                        "least 2 runs of each side; rerun with --config.population.members=3 "
                        "or more)."))
  if claims:
    blocks += [("h2", "Verdicts against the wide model"),
               ("p", f"{len(claims)} claims in one family, Holm-corrected; paired t over the "
                     f"R = {runs} runs (run r of each variant and of the wide model share "
                     "data seed data + r); differences in percentage points. With few runs "
                     "a difference of a few tenths of a point is within run-to-run noise."),
               verdict_lib.table(claims)]
    blocks += [("p", verdict_lib.sentence(c)) for c in claims
               if c.verdict != stats.NO_DIFFERENCE]
    summary = _worst_class_summary(claims)
    if summary:
      blocks.append(("p", summary))
  co = cotrain_claims(records)
  if co:
    blocks += [("h2", "Does co-training help?"),
               ("p", f"{len(co)} claims in one family, Holm-corrected; paired t over the "
                     "R ensembles (the same seeds, so the same initialization and data "
                     "order with and without the co-training term)."),
               verdict_lib.table(co)]
    blocks += [("p", verdict_lib.sentence(c)) for c in co if c.verdict != stats.NO_DIFFERENCE]
  if wide is not None:
    e = wide["efficiency"]
    devices = max(int(r["efficiency"].get("concurrent_devices", 1) or 1) for r in records)
    text = (f"Latency is measured on {e.get('backend')} ({e.get('device_kind')}), the "
            f"median of the configured repeats at batch 1; concurrent members ran on up to "
            f"{devices} device(s).")
    if e.get("backend") == "cpu":
      text += (" On CPU, simulated devices share the same cores, so concurrency shows the "
               "mechanism, not the paper's one-GPU-per-member speed-up.")
    blocks.append(("p", text))
  return blocks
