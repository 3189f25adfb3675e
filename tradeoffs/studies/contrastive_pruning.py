"""Pruning contrastive models: does supervised contrastive learning pay more under pruning?

    config → a dense cross-entropy population and a dense SupCon population (same encoder)
    → each pruned at rising sparsity, gradually (Zhu & Gupta, during training) and
    one-shot (after training, then fine-tuned) → PIEs against each method's own dense
    population, accuracy on them, their Q-scores and prediction depths, verdicts

Formulations chosen (Corti, Entezari, Hooker, Bacciu, Saukh 2022; PAPERS.md §9):
  * model: `encoder_net` — an MLP (or conv + MLP) encoder whose last hidden layer is the
    embedding, a linear classifier `head` on it, and for SupCon a projection head
    (`proj_*`) used only while training the encoder. Both methods end as the same
    architecture (encoder + linear head); the projection head is dropped afterwards.
  * cross-entropy: the encoder and head trained end to end (techniques as
    `recipes.dense`, `recipes.pruned_gradual` and `recipes.pruned_one_shot` define them,
    produced here with the study's shared optimizer, below).
  * SupCon (Khosla et al. 2020): the encoder + projection head trained on the SupCon loss
    (`tradeoffs.contrastive.supcon_loss`, τ = `study.temperature`, τ_b =
    `study.base_temperature`) over two augmented views of each batch (the trainer's
    `StepConfig.views`), then linear evaluation: the head alone trained with
    cross-entropy for `study.linear_steps` at `study.linear_learning_rate` on the frozen
    encoder (every other leaf's rate 0, `contrastive.leaf_rates`).
  * compiled programs: every training uses the config's optimizer with per-leaf rates and
    pruning masks in its state, so the trainings of one model and loss (cross-entropy
    dense, fine-tuned and linear evaluation; SupCon dense and fine-tuned) run one compiled
    step when their lengths are multiples of `train.steps_per_dispatch`. Gradual pruning's
    ramp is a constant of its step (one program per sparsity).
  * pruning: unstructured magnitude pruning of the encoder's kernels, global ranking; the
    heads (projection and classifier) stay dense (knob `keep_dense`) in both methods, so
    sparsity means the same thing for both. Gradual: the cubic ramp from
    `study.gradual_begin`·steps to `study.gradual_end`·steps every `study.gradual_frequency`
    steps (for SupCon while training the encoder). One-shot: each member of the dense
    population pruned by magnitude, then fine-tuned `study.finetune_steps` with fixed
    masks (SupCon: on the SupCon loss, then linear evaluation).
  * PIE (Hooker et al. 2019): the pruned population's modal label differs from its
    method's dense population's (the sheet's CIE count, with the noise floor of random
    halves of the dense population, `hidden_costs.cie_null`). One-shot variants are their
    dense members pruned (paired); gradual ones are retrained from the same seeds.
  * Q-score (Kalibhat et al. 2022) of each test example's embedding, and prediction depth
    (Baldock et al. 2021): k-NN probes (k = `study.knn_k`, Euclidean, majority vote) fitted
    on every layer's training-set representations (each hidden layer after its
    activation, then the logits), queried with the test example; the depth as PAPERS.md
    §9 defines it (`study.depth_definition='paper'`): the earliest layer (0-indexed) from
    which every layer's k-NN prediction is correct, 0 when all are. The reference code's
    variant (`'code'`): 1 + the index of the last wrong layer, and 1 when none is wrong —
    equal to the paper's except on examples every layer gets right (0 vs 1). Baldock et
    al. measure agreement with the network's final prediction; PAPERS.md (and the code)
    measure it against the true label, as here. Both per member, averaged over members.
"""

from __future__ import annotations

import functools
import itertools
import json
from typing import Any, Mapping, Sequence

import jax
import ml_collections
import numpy as np

from tradeoffs import contrastive
from tradeoffs import exemplars
from tradeoffs import models
from tradeoffs import sparsity
from tradeoffs import stats
from tradeoffs.report import figures
from tradeoffs.report import format as fmt
from tradeoffs.report import verdict as verdict_lib
from tradeoffs.studies import base
from tradeoffs.studies import recipes
from tradeoffs.train import optimizers

NAME = "contrastive_pruning"
TITLE = "Pruning contrastive models: PIEs of SupCon against cross-entropy"
METHODS = ("cross_entropy", "supcon")
PRUNINGS = ("gradual", "one_shot")
HEADS = ("proj_", "head")  # never pruned (path substrings)
DEPTH_DEFINITIONS = ("paper", "code")
MODEL = "encoder_net"

_number = base.check_number
_tuple = base.as_tuple


def validate(config: Any) -> None:
  if "study" not in config:
    raise ValueError("config has no 'study' section; use "
                     "experiments/configs/contrastive_pruning.py")
  s = config.study
  methods, prunings = _tuple(s.methods), _tuple(s.prunings)
  for key, values, allowed in (("methods", methods, METHODS),
                               ("prunings", prunings, PRUNINGS)):
    bad = [v for v in values if v not in allowed]
    if not values or bad or len(set(values)) != len(values):
      raise ValueError(f"--config.study.{key}={values!r}: choose distinct values from "
                       f"{list(allowed)}")
  sparsities = _tuple(s.sparsities)
  if not sparsities:
    raise ValueError("--config.study.sparsities=() is empty: give sparsities in [0, 1)")
  for value in sparsities:
    _number(value, "study.sparsities", 0.0, 1.0, high_open=True)
  if len(set(sparsities)) != len(sparsities):
    raise ValueError(f"--config.study.sparsities={sparsities!r} has duplicates")
  if config.model.name != MODEL:
    raise ValueError(f"--config.model.name={config.model.name!r}: this study trains "
                     f"{MODEL!r} (an encoder with a projection and a linear head)")
  if not _tuple(config.model.kwargs.get("projection", (64, 32))):
    raise ValueError("--config.model.kwargs.projection=(): SupCon needs a projection head")
  try:
    contrastive.check_temperature(s.temperature, "--config.study.temperature")
    contrastive.check_temperature(s.base_temperature, "--config.study.base_temperature")
  except (TypeError, ValueError) as e:
    raise ValueError(str(e)) from None
  steps = int(config.train.steps)
  _number(s.gradual_begin, "study.gradual_begin", 0.0, 1.0, high_open=True)
  _number(s.gradual_end, "study.gradual_end", float(s.gradual_begin), 1.0, low_open=True)
  _number(s.gradual_frequency, "study.gradual_frequency", 1, steps, integer=True)
  _number(s.finetune_steps, "study.finetune_steps", 1, integer=True)
  _number(s.linear_steps, "study.linear_steps", 1, integer=True)
  _number(s.linear_learning_rate, "study.linear_learning_rate", 0.0, low_open=True)
  _number(s.knn_k, "study.knn_k", 1, integer=True)
  if s.depth_definition not in DEPTH_DEFINITIONS:
    raise ValueError(f"--config.study.depth_definition={s.depth_definition!r}; choose from "
                     f"{list(DEPTH_DEFINITIONS)}")
  if int(config.population.members) < 2:
    raise ValueError(f"--config.population.members={config.population.members}: PIEs and "
                     "verdicts need populations; use at least 2")


def _model_config(config: Any, **kwargs: Any) -> ml_collections.ConfigDict:
  out = base.training_config(config)
  out.model.kwargs.update(kwargs)
  return out


def _with_steps(train_config: Any, steps: int, learning_rate: float | None = None) -> Any:
  out = ml_collections.ConfigDict(train_config.to_dict())
  out.train.steps = int(steps)
  out.optimizer.warmup_steps = min(int(out.optimizer.get("warmup_steps", 0) or 0), steps // 10)
  if learning_rate is not None:
    out.optimizer.learning_rate = float(learning_rate)
  return out


def _gradual_knobs(s: Any, steps: int) -> dict[str, Any]:
  begin = int(round(float(s.gradual_begin) * steps))
  return {"begin_step": begin, "end_step": max(begin + 1, int(round(float(s.gradual_end)
                                                                    * steps)) - 1),
          "frequency": int(s.gradual_frequency)}


def plan(config: Any) -> list[base.Variant]:
  validate(config)
  s = config.study
  steps = int(config.train.steps)
  # Both methods' scored models: the encoder + linear head (no projection head).
  final = _model_config(config, projection=(), output="logits")
  common = {"keep_dense": list(HEADS), "knn_k": int(s.knn_k),
            "depth_definition": str(s.depth_definition)}
  supcon = {"temperature": float(s.temperature), "base_temperature": float(s.base_temperature),
            "linear_steps": int(s.linear_steps),
            "linear_learning_rate": float(s.linear_learning_rate)}
  out = []
  for method in _tuple(s.methods):
    dense = f"{method}_dense"
    knobs = {"method": method, "pruning": "none", "sparsity": 0.0, **common,
             **(supcon if method == "supcon" else {})}
    technique = "dense" if method == "cross_entropy" else "supcon"
    out.append(base.Variant(dense, technique, knobs, None, final))
    for pruning, level in itertools.product(_tuple(s.prunings), _tuple(s.sparsities)):
      name = f"{method}_{pruning}_s{int(round(100 * float(level))):02d}"
      k = {**knobs, "pruning": pruning, "sparsity": float(level)}
      if pruning == "gradual":
        k.update(_gradual_knobs(s, steps))
        tc = final
      else:
        k["finetune_steps"] = int(s.finetune_steps)
        tc = _with_steps(final, int(s.finetune_steps)) if method == "cross_entropy" else final
      technique = ("supcon" if method == "supcon" else
                   "pruned_gradual" if pruning == "gradual" else "pruned_one_shot")
      out.append(base.Variant(name, technique, k, dense, tc))
  return out


# ---------------------------------------------------------------------------------------
# Producing a variant.
#
# Every training of the study — cross-entropy from scratch or fine-tuned, the SupCon
# encoder from scratch or fine-tuned, linear evaluation — uses one optimizer object per
# distinct setting (`_optimizer`): the config's optimizer at rate 1 with per-leaf rates in
# its state, inside the pruning wrapper with its masks in its state. What differs between
# trainings of the same model and loss (masks, which leaves train, at what rate, the
# starting weights) is then an argument of the compiled step, not a constant, and they
# share one program (step lengths are multiples of `train.steps_per_dispatch`).


def _optimizer(ctx: Any, train_config: Any, gradual: tuple | None = None) -> Any:
  """The shared optimizer for `train_config`'s optimizer settings (its learning rate is a
  state value, set per training) and, for gradual pruning, the cubic ramp
  `gradual` = (sparsity, begin, end, frequency); fixed masks otherwise."""
  settings = dict(train_config.optimizer.to_dict())
  rate = float(settings.pop("learning_rate"))
  steps = int(train_config.train.steps)
  constant = settings.get("schedule", "constant") == "constant"
  key = "optimizer:" + json.dumps({"settings": settings, "gradual": gradual,
                                   "steps": None if constant else steps}, sort_keys=True)
  if key not in ctx.cache:
    inner = optimizers.make_optimizer({**settings, "learning_rate": 1.0}, steps)
    schedule = None if gradual is None else sparsity.gradual(*gradual)
    ctx.cache[key] = sparsity.masked(contrastive.leaf_rates(inner, rate), schedule,
                                     keep_dense=HEADS)
  return ctx.cache[key]


def _gradual(knobs: Mapping[str, Any]) -> tuple | None:
  if knobs["pruning"] != "gradual":
    return None
  return (float(knobs["sparsity"]), int(knobs["begin_step"]), int(knobs["end_step"]),
          int(knobs["frequency"]))


def _is_probe_head(name: str) -> bool:
  return name.split("/")[0] == "head"


def _train(ctx: Any, variant: base.Variant, config: Any, *, name: str | None = None,
           start: Any = None, rate_of: Any = None, step_overrides: Any = None,
           gradual: tuple | None = None) -> Any:
  """ctx.train with the shared optimizer; `start` (a state_fn) sets the starting weights
  and masks, `rate_of(leaf name)` the rates (default: the config's learning rate)."""
  learning_rate = float(config.optimizer.learning_rate)
  rate_of = rate_of or (lambda _: learning_rate)

  def state_fn(state):
    state = start(state) if start is not None else state
    return state.replace(opt_state=contrastive.with_rates(state.opt_state, rate_of))

  return ctx.train(variant, train_config=config, name=name, step_overrides=step_overrides,
                   tx=_optimizer(ctx, config, gradual), state_fn=state_fn)


@functools.partial(jax.jit, static_argnums=1)
def _encoder_masks(encoder: Any, level: float) -> Any:
  """Per-member global magnitude masks of the encoder's kernels [M, ...]. The encoder alone
  (the same tree for both methods) so that one compiled program prunes both."""
  return jax.vmap(lambda p: sparsity.magnitude_masks(p, level))(encoder)


def _pruned_start(source: Any, level: float) -> Any:
  """state_fn: the source population's weights pruned one-shot by magnitude (encoder
  kernels, global ranking; the heads dense), with the masks fixed in the optimizer
  state."""
  params = recipes.host_copy(source.state.params)
  encoder = {name: layer for name, layer in params.items()
             if not any(h in name for h in HEADS)}
  masks = jax.tree.map(lambda x: np.ones(np.shape(x), bool), params)
  masks.update(jax.tree.map(np.asarray, jax.device_get(_encoder_masks(encoder, level))))
  pruned = jax.tree.map(lambda p, m: np.where(m, p, np.zeros_like(p)), params, masks)
  return recipes._from_source(source.state, pruned, masks)


def _cross_entropy(ctx: Any, variant: base.Variant) -> Any:
  """Trains (or restores) a cross-entropy population: dense, gradually pruned, or
  one-shot pruned from the dense population and fine-tuned."""
  k = variant.knobs
  if k["pruning"] == "none":
    key = f"trained:{variant.name}"
    if key not in ctx.cache:
      ctx.cache[key] = _train(ctx, variant, variant.train_config)
    return ctx.cache[key]
  if k["pruning"] == "one_shot":
    source = _cross_entropy(ctx, ctx.variants[variant.source])
    return _train(ctx, variant, variant.train_config,
                  start=_pruned_start(source, float(k["sparsity"])))
  return _train(ctx, variant, variant.train_config, gradual=_gradual(k))


def _supcon_config(ctx: Any, variant: base.Variant, steps: int) -> Any:
  out = _with_steps(variant.train_config, steps)
  out.model.kwargs.projection = tuple(ctx.config.model.kwargs.get("projection", (64, 32)))
  out.model.kwargs.output = "projection"
  return out


def _supcon_encoder(ctx: Any, variant: base.Variant) -> Any:
  """Trains (or restores) the variant's SupCon encoder + projection head: dense, gradually
  pruned, or one-shot pruned from the dense SupCon encoder and fine-tuned."""
  k = variant.knobs
  key = f"encoder:{variant.name}"
  if key in ctx.cache:
    return ctx.cache[key]
  loss = contrastive.SupConLoss(float(k["temperature"]), float(k["base_temperature"]))
  overrides = {"views": 2, "loss_fn": loss}
  name = f"{variant.name}_encoder"
  if k["pruning"] == "one_shot":
    source = _supcon_encoder(ctx, ctx.variants[variant.source])
    trained = _train(ctx, variant, _supcon_config(ctx, variant, int(k["finetune_steps"])),
                     name=name, step_overrides=overrides,
                     start=_pruned_start(source, float(k["sparsity"])))
  else:
    trained = _train(ctx, variant, _supcon_config(ctx, variant, int(ctx.config.train.steps)),
                     name=name, step_overrides=overrides, gradual=_gradual(k))
  if k["pruning"] == "none":  # The source of the one-shot variants.
    ctx.cache[key] = trained
  return trained


def _without_projection(encoder_state: Any):
  """state_fn: the linear-evaluation state holding the trained encoder (the projection
  head dropped) and a fresh classifier head."""
  params = recipes.host_copy(encoder_state.params)

  def state_fn(state):
    kept = {name: (params[name] if name != "head" else recipes.host_copy(state.params[name]))
            for name in state.params}
    return state.replace(params=recipes.place_like(kept, state.params))

  return state_fn


def _supcon(ctx: Any, variant: base.Variant) -> tuple[Any, Any, dict[str, Any]]:
  """The SupCon encoder, then linear evaluation: the classifier head alone trained with
  cross-entropy on the frozen encoder (rate 0 on every other leaf)."""
  k = variant.knobs
  encoder = _supcon_encoder(ctx, variant)
  rate = float(k["linear_learning_rate"])
  config = _with_steps(variant.train_config, int(k["linear_steps"]), rate)
  trained = _train(ctx, variant, config, start=_without_projection(encoder.state),
                   rate_of=lambda name: rate if _is_probe_head(name) else 0.0)
  return trained, config, {"encoder_seconds": encoder.seconds}


def representation_fields(state: Any, dataset: Any, *, k: int, definition: str,
                          source_logits: np.ndarray | None, logits: np.ndarray
                          ) -> dict[str, Any]:
  """Per test example (means over members): the embedding's Q-score and the prediction
  depth; which examples are PIEs against the source; per member, the rate of predictions
  that differ from the source's modal label."""
  variables = {"params": state.params,
               **({"batch_stats": state.batch_stats} if jax.tree.leaves(state.batch_stats)
                  else {})}
  train_layers, _ = models.contrastive.layer_representations(
      state.apply_fn, variables, dataset.train.images)
  test_layers, embedding = models.contrastive.layer_representations(
      state.apply_fn, variables, dataset.test.images)
  q = np.asarray(exemplars.q_score(embedding))  # [M, N]
  k = min(int(k), len(dataset.train.labels))
  knn = jax.vmap(lambda train, test: exemplars.layer_knn_predictions(
      train, dataset.train.labels, test, k=k, num_classes=dataset.num_classes))(
          train_layers, test_layers)  # [M, layers, N]
  depth = np.asarray(exemplars.prediction_depth(knn, dataset.test.labels,
                                                definition=definition))
  reference = logits if source_logits is None else source_logits
  modal = np.asarray(exemplars.modal_labels(reference.argmax(-1), dataset.num_classes))
  is_pie = (np.zeros(len(dataset.test.labels), bool) if source_logits is None else
            np.asarray(exemplars.cie(source_logits, logits, dataset.num_classes)))
  return {"q_score": np.mean(q, 0).round(6).tolist(),
          "prediction_depth": np.mean(depth, 0).round(4).tolist(),
          "depth_layers": len(train_layers), "depth_definition": definition,
          "pie_index": np.flatnonzero(is_pie).tolist(),
          "per_member_flip_rate": (logits.argmax(-1) != modal[None]).mean(-1).tolist()}


def produce(ctx: Any, variant: base.Variant) -> base.Outcome:
  k = variant.knobs
  if k["method"] == "supcon":
    trained, config, fields = _supcon(ctx, variant)
  else:
    trained, config, fields = _cross_entropy(ctx, variant), variant.train_config, {}
  logits = ctx.evaluate(trained, config)
  achieved = sparsity.measured_sparsity(recipes.host_copy(trained.state.params),
                                        recipes.prunable_filter(HEADS))
  source_logits = (None if variant.source is None
                   else ctx.predictions(variant.source).logits)
  fields.update(representation_fields(
      trained.state, ctx.dataset(config), k=int(k["knn_k"]),
      definition=str(k["depth_definition"]), source_logits=source_logits,
      logits=np.asarray(logits)))
  return base.Outcome(
      members=trained.state.members, efficiency=recipes.measure_member(ctx, trained.state,
                                                                       config),
      logits=logits, derived=k["pruning"] == "one_shot", config=config,
      study_fields={"achieved_sparsity": {key: round(v, 6) for key, v in achieved.items()},
                    **fields})


# ---------------------------------------------------------------------------------------
# The report.


def _fields(record: Mapping[str, Any]) -> Mapping[str, Any]:
  return record.get("study_fields") or {}


def _ci(values: Sequence[float], scale: float = 100.0, digits: int = 1) -> str:
  values = [v for v in values if v is not None]
  if len(values) < 2:
    return fmt.DASH
  mean, low, high = stats.t_interval(values)
  return f"{scale * mean:.{digits}f} [{scale * low:.{digits}f}, {scale * high:.{digits}f}]"


def pie_split(record: Mapping[str, Any], key: str) -> tuple[np.ndarray, np.ndarray]:
  """A per-example study field (`q_score`, `prediction_depth`) on PIEs and on the rest."""
  values = np.asarray(_fields(record).get(key) or [], np.float64)
  is_pie = np.zeros(values.shape, bool)
  is_pie[np.asarray(_fields(record).get("pie_index") or [], int)] = True
  return values[is_pie], values[~is_pie]


def pie_property_claims(records: Sequence[Mapping[str, Any]]) -> list[stats.Comparison]:
  """PIEs against the other test examples of each pruned variant: Q-score and prediction
  depth (Welch t over examples), one Holm family."""
  claims = []
  for r in records:
    if r.get("source") is None:
      continue
    for key, label in (("q_score", "Q-score"), ("prediction_depth", "prediction depth")):
      pies, rest = pie_split(r, key)
      if pies.size >= 2 and rest.size >= 2:
        claims.append(stats.compare(pies, rest, paired=False,
                                    claim=f"{r['variant']}: {label}, PIEs vs the rest"))
  return stats.family(claims)


def accuracy_claims(records: Sequence[Mapping[str, Any]]) -> list[stats.Comparison]:
  """Top-1 of every pruned variant against its method's dense population (paired over
  members for one-shot, Welch for gradual), one Holm family."""
  by = {r["variant"]: r for r in records}
  claims = []
  for r in records:
    ref = by.get(r.get("source"))
    if ref is None:
      continue
    a, b = r["accuracy"]["per_member_top1"], ref["accuracy"]["per_member_top1"]
    claims.append(stats.compare(a, b, paired=verdict_lib.is_paired(r, ref) and len(a) == len(b),
                                claim=f"{r['variant']}: top-1 vs {ref['variant']}"))
  return stats.family(claims)


def method_claims(records: Sequence[Mapping[str, Any]]) -> list[stats.Comparison]:
  """SupCon against cross-entropy at each (pruning, sparsity): the per-member rate of
  test predictions that leave the method's dense modal label (Welch over members), one
  Holm family."""
  by = {(r["knobs"].get("method"), r["knobs"].get("pruning"), r["knobs"].get("sparsity")): r
        for r in records}
  claims = []
  for (method, pruning, level), r in sorted(by.items(), key=lambda kv: str(kv[0])):
    other = by.get(("cross_entropy", pruning, level))
    if method != "supcon" or other is None or pruning == "none":
      continue
    a = _fields(r).get("per_member_flip_rate") or []
    b = _fields(other).get("per_member_flip_rate") or []
    if len(a) >= 2 and len(b) >= 2:
      claims.append(stats.compare(a, b, paired=False, claim=(
          f"{pruning} s={level:g}: flip rate, SupCon vs cross-entropy")))
  return stats.family(claims)


def overlap_rows(records: Sequence[Mapping[str, Any]]) -> list[list[str]]:
  """At each sparsity, the Jaccard overlap of the PIE sets of every two (method, pruning)
  combinations."""
  pruned = [r for r in records if r.get("source") is not None]
  rows = []
  for level in sorted({r["knobs"]["sparsity"] for r in pruned}):
    at = [r for r in pruned if r["knobs"]["sparsity"] == level]
    for a, b in itertools.combinations(at, 2):
      sa, sb = set(_fields(a).get("pie_index") or []), set(_fields(b).get("pie_index") or [])
      union = sa | sb
      rows.append([f"{level:g}", a["variant"], b["variant"], str(len(sa)), str(len(sb)),
                   str(len(sa & sb)), fmt.number(len(sa & sb) / len(union), 2) if union
                   else fmt.DASH])
  return rows


def _mean(values: np.ndarray, digits: int = 3) -> str:
  return f"{values.mean():.{digits}f}" if values.size else fmt.DASH


def summary_rows(records: Sequence[Mapping[str, Any]]) -> list[list[str]]:
  rows = []
  for r in records:
    k, h, f = r["knobs"], r.get("hidden_costs") or {}, _fields(r)
    null = h.get("cie_null") or {}
    achieved = (f.get("achieved_sparsity") or {}).get("mean")
    q_pie, q_rest = pie_split(r, "q_score")
    d_pie, d_rest = pie_split(r, "prediction_depth")
    is_source = r.get("source") is None
    rows.append([
        r["variant"], k.get("method", ""), k.get("pruning", ""),
        fmt.number(achieved, 3) if achieved is not None else fmt.number(k.get("sparsity"), 3),
        _ci(r["accuracy"]["per_member_top1"]),
        fmt.DASH if is_source else str(h.get("cie_count", fmt.DASH)),
        f"{fmt.number(null.get('median'), 3)} / {fmt.number(null.get('p95'), 3)}" if null
        else fmt.DASH,
        fmt.DASH if is_source else fmt.accuracy(h.get("cie_accuracy")),
        fmt.DASH if is_source else fmt.accuracy(h.get("source_cie_accuracy")),
        f"{_mean(q_pie)} / {_mean(q_rest)}" if not is_source else _mean(q_rest),
        f"{_mean(d_pie, 2)} / {_mean(d_rest, 2)}" if not is_source else _mean(d_rest, 2)])
  return rows


def plot_pies(records: Sequence[Mapping[str, Any]]):
  """PIE count and top-1 against sparsity, per (method, pruning), with each method's
  noise floor."""
  pruned = [r for r in records if r.get("source") is not None]
  if not pruned:
    return None
  by = {r["variant"]: r for r in records}
  fig, (ax, ax2) = figures.new(2)
  styles = {"gradual": "-", "one_shot": "--"}
  for i, method in enumerate(METHODS):
    dense = by.get(f"{method}_dense")
    for pruning in PRUNINGS:
      rs = sorted((r for r in pruned if r["knobs"]["method"] == method
                   and r["knobs"]["pruning"] == pruning), key=lambda r: r["knobs"]["sparsity"])
      if not rs:
        continue
      x = [r["knobs"]["sparsity"] for r in rs]
      ax.plot(x, [r["hidden_costs"].get("cie_count", 0) for r in rs], styles[pruning],
              marker="o", color=figures.color(i), label=f"{method}, {pruning}")
      tops = [stats.t_interval(r["accuracy"]["per_member_top1"]) for r in rs]
      ax2.errorbar(x, [100 * t[0] for t in tops],
                   yerr=[[100 * (t[0] - t[1]) for t in tops], [100 * (t[2] - t[0]) for t in tops]],
                   fmt=styles[pruning], marker="o", color=figures.color(i), capsize=2,
                   label=f"{method}, {pruning}")
    floor = ((by.get(f"{method}_dense") or {}).get("hidden_costs") or {}).get("cie_null")
    if floor is None and rs:
      floor = rs[0]["hidden_costs"].get("cie_null")
    if floor:
      ax.axhline(floor["p95"], color=figures.color(i), lw=0.8, ls=":",
                 label=f"{method}: noise floor (p95)")
    if dense is not None:
      ax2.axhline(100 * dense["accuracy"]["top1"], color=figures.color(i), lw=0.8, ls=":")
  ax.set_xlabel("sparsity of the encoder")
  ax.set_ylabel("PIE count (test examples)")
  ax.legend(fontsize=7)
  ax2.set_xlabel("sparsity of the encoder")
  ax2.set_ylabel("top-1 % (95% t interval); dotted: dense")
  return fig


def sections(records: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[Any, ...]]:
  records = list(records)
  if not records:
    return [("h2", "Setting"), ("p", "No records.")]
  any_record = records[0]
  s = config.study
  f0 = _fields(any_record)
  blocks: list[tuple[Any, ...]] = [("h2", "Setting"), ("p", (
      f"Populations of {any_record.get('members', '?')} members per variant (seeds shared "
      f"by member index: member i of every variant starts from the same initialisation "
      f"and batch order). Data: {config.dataset.name}. Model: {MODEL} with encoder "
      f"channels {tuple(config.model.kwargs.get('channels', ()))}, hidden "
      f"{tuple(config.model.kwargs.get('hidden', ()))}; SupCon projection head "
      f"{tuple(config.model.kwargs.get('projection', ()))}, τ = {s.temperature}, τ_b = "
      f"{s.base_temperature}, two views, {config.train.steps} encoder steps, then "
      f"{s.linear_steps} linear-evaluation steps on the frozen encoder; cross-entropy "
      f"trains {config.train.steps} steps end to end. Pruning: global magnitude, encoder "
      "kernels only. PIE = the pruned population's modal label differs from its method's "
      "dense population's; the noise floor is the count between random halves of the "
      "dense population (median / 95th percentile of 50 draws, half the members each). "
      f"Q-score of the embedding; prediction depth ({f0.get('depth_definition', 'paper')} "
      f"definition) from k-NN probes (k = {s.knn_k}) on {f0.get('depth_layers', '?')} "
      "layers; both means over members, per test example."))]
  figure = plot_pies(records)
  if figure is not None:
    blocks.append(("figure", "contrastive_pruning_pies.png", figure,
                   "Left: PIE count against sparsity per method and pruning schedule; dotted: "
                   "the noise floor (95th percentile of the count between random halves of "
                   "the method's dense population). Right: top-1, means with 95% t "
                   "intervals over members."))
  blocks += [("h2", "PIEs, accuracy on them, and what they look like"), ("table", [
      "Variant", "Method", "Pruning", "Sparsity", "Top-1 % [95% CI]", "PIEs",
      "Floor median / p95", "Pruned acc. on PIEs", "Dense acc. on PIEs",
      "Q-score PIEs / rest", "Depth PIEs / rest"], summary_rows(records))]
  properties = pie_property_claims(records)  # One family, shown as two tables.
  for title, claims, scale, unit, note in (
      ("Verdicts: top-1 against each method's dense population", accuracy_claims(records),
       100.0, "pt", "paired t over members for one-shot (the dense members pruned), Welch t "
       "for gradual (retrained from the same seeds); differences in percentage points"),
      ("Verdicts: SupCon against cross-entropy", method_claims(records), 100.0, "pt",
       "the per-member rate of test predictions that differ from the method's own dense "
       "modal label, Welch t over members; differences in percentage points"),
      ("Verdicts: Q-scores of PIEs against the other test examples",
       [c for c in properties if "Q-score" in c.claim], 1000.0, "×10⁻³",
       f"{len(properties)} claims with the prediction-depth table below, one Holm family; "
       "Welch t over test examples (per-example means over members); differences in "
       "thousandths of a Q-score"),
      ("Verdicts: prediction depth of PIEs against the other test examples",
       [c for c in properties if "depth" in c.claim], 1.0, "layers",
       "the same Holm family as the Q-score table; Welch t over test examples; differences "
       "in layers")):
    if not claims:
      continue
    count = "" if "Holm family" in note else f"{len(claims)} claims, one Holm family; "
    blocks += [("h2", title), ("p", f"{count}{note}."),
               verdict_lib.table(claims, scale=scale, unit=unit)]
    blocks += [("p", verdict_lib.sentence(c, scale=scale, unit=f" {unit}"))
               for c in claims if c.verdict != stats.NO_DIFFERENCE]
  rows = overlap_rows(records)
  if rows:
    blocks += [("h2", "Are PIEs shared between methods?"),
               ("p", "Jaccard overlap |A ∩ B| / |A ∪ B| of the PIE sets of two variants at "
                     "the same sparsity (each against its own method's dense population)."),
               ("table", ["Sparsity", "A", "B", "|A|", "|B|", "|A ∩ B|", "Jaccard"], rows)]
  blocks += [("h2", "What the paper reports"), ("p", (
      "Corti et al. (2022; CIFAR-10, WRN-16-2, 30 models per population, sparsities "
      "30–90%) report that at high sparsity SupCon yields more PIEs than cross-entropy, "
      "that PIEs are largely unique to each (learning method, pruning method) pair, that "
      "pruning early in training (GMP) does the most damage, and that PIEs have lower "
      "Q-scores and higher prediction depth; numeric PIE counts were not found (PAPERS.md "
      f"§9). This study runs the same design on a small MLP encoder over "
      f"{config.dataset.name} with {any_record.get('members', '?')} members and "
      f"{len(f0.get('q_score') or []) or '?'} test images: a PIE count below "
      "its noise floor is no evidence of forgetting, and the verdict tables say which of "
      "the paper's findings show at this scale."))]
  return blocks
