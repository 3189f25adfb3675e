"""The main job: one efficiency frontier with the hidden costs beside it.

    config → dense width sweep → compressions of the widest dense model (pruned,
    quantized, divided into a co-trained ensemble) → per-example predictions →
    trade-off records → frontier plots and the report

Every variant is a population (config.population.members), so top-1 comes with its spread,
churn across members, and the compression-identified exemplars (CIE) of each variant
against its dense source (the widest dense population; Hooker et al.). Each trained variant
checkpoints under `workdir/checkpoints/<variant>` and is skipped once recorded, so a killed
study resumes where it stopped.

Formulations chosen (documented because they are choices):
  * width sweep: `width_multiplier` of the configured model (every registry model has it);
    the largest multiplier is the dense source of every compression.
  * pruning: the source population's weights, masks by global magnitude at fine-tune step 0
    (`prune_schedule='one_shot'`) or a Zhu & Gupta cubic ramp over the first
    `prune_ramp_fraction` of the fine-tune ('gradual'); the masks live in the optimizer
    state (`sparsity.masked`), one per member, and are fixed afterwards.
  * quantization: post-training symmetric fake quantization (per channel by default) of
    each member; weight bytes count the packed codes plus float32 scales; compute (and so
    FLOPs and latency) stays float32, which the report shows rather than hides.
  * divided ensembles: `ensembles.divide` of the source spec into S members; the population
    holds R = members ensembles of S networks (member i belongs to ensemble i // S). The S
    members of an ensemble see the same batches (data seed + i // S, as
    `divide_cotrain.group_data_keys`), ensembles differ, and the co-training loss (default
    JS divergence) of each ensemble is added with weight `cotraining_weight`, ramped
    linearly per step over the first `cotraining_warmup_fraction` of training (floor
    0.005, the paper's schedule but per step). Ensembles combine members by `combine`
    (default mean logits). Coupling, grouping and combining reuse
    `tradeoffs.studies.divide_cotrain`; quantization reuses `compression_bias`.
  * CIE: modal CIE (modal labels of the two populations differ); for divided ensembles the
    population is the R combined ensembles. The source's CIE against itself is 0.
  * churn: mean pairwise disagreement of the members' (or ensembles') predicted labels.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any, Callable, Mapping, Sequence

import jax
import ml_collections
import numpy as np
from absl import logging

from tradeoffs import efficiency
from tradeoffs import ensembles
from tradeoffs import exemplars
from tradeoffs import fairness
from tradeoffs import quantization
from tradeoffs import sparsity
from tradeoffs import workdir as workdir_lib
from tradeoffs.ensembles.divide import WIDTH_RULE_NAMES
from tradeoffs.report import pareto as pareto_lib
from tradeoffs.report import records as records_lib
from tradeoffs.report import write as write_lib
from tradeoffs.sparsity import distributions as sparsity_distributions
from tradeoffs.studies import common
from tradeoffs.studies import compression_bias
from tradeoffs.studies import divide_cotrain
from tradeoffs.train import checkpoint as checkpoint_lib
from tradeoffs.train import distributed
from tradeoffs.train import experiment
from tradeoffs.train import optimizers
from tradeoffs.train import predictions as predictions_lib

STUDY = "frontier"
TECHNIQUES = ("dense", "pruned", "quantized", "divided")
PRUNE_SCHEDULES = ("one_shot", "gradual")
# Model kwargs that name a model's width, in order of preference, for variant names.
WIDTH_FIELDS = ("hidden", "channels", "base_width", "widen_factor", "width_per_group")
# Where the study-specific figure goes (next to the report's frontier_*.png).
GROUPS_FIGURE = "frontier_groups.png"
HEADLINE_FIGURE = "frontier_headline.png"


@dataclasses.dataclass(frozen=True)
class Variant:
  """One point of the study: its name, technique, knobs and training config (or None)."""
  name: str
  technique: str
  knobs: Mapping[str, Any]
  train_config: Any = None  # ConfigDict for trained variants; None for post-training ones.
  ensemble_size: int = 1


# ---------------------------------------------------------------------------------------
# Config → variants.


def _copy(config: Any) -> ml_collections.ConfigDict:
  """An unlocked deep copy without the study-only sections (a plain training config)."""
  out = ml_collections.ConfigDict(config.to_dict() if hasattr(config, "to_dict")
                                  else dict(config))
  for key in ("frontier", "report"):
    if key in out:
      del out[key]
  return out


def _tuple(value: Any) -> tuple:
  if value is None or value == "":
    return ()
  if isinstance(value, (list, tuple)):
    return tuple(value)
  return (value,)


def width_label(model_name: str, kwargs: Mapping[str, Any], multiplier: float) -> str:
  """'w256' for an MLP with hidden (256, 256) at multiplier 1; 'x0.5' when no width is known."""
  from tradeoffs import models  # Lazy: builds the module only to read its default width.
  from tradeoffs.models import layers
  for field in WIDTH_FIELDS:
    value = kwargs.get(field)
    if value is None:
      try:
        value = getattr(models.get(model_name, num_classes=2, **dict(kwargs)), field, None)
      except (TypeError, ValueError):
        value = None
    if value is None:
      continue
    widest = max(_tuple(value)) if _tuple(value) else None
    if isinstance(widest, (int, np.integer)) and not isinstance(widest, bool):
      return f"w{layers.scale_width(int(widest), float(multiplier))}"
  return f"x{multiplier:g}"


def _base_kwargs(config: Any) -> dict[str, Any]:
  kwargs = experiment.model_kwargs(config)
  kwargs.pop("width_multiplier", None)
  return kwargs


def source_multiplier(config: Any) -> float:
  return float(max(_tuple(config.frontier.width_multipliers)))


def dense_name(config: Any, multiplier: float) -> str:
  return "dense_" + width_label(config.model.name, _base_kwargs(config), multiplier)


def source_name(config: Any) -> str:
  """The dense variant every compression starts from (the widest)."""
  return dense_name(config, source_multiplier(config))


def dense_config(config: Any, multiplier: float) -> ml_collections.ConfigDict:
  c = _copy(config)
  c.model.kwargs.width_multiplier = float(multiplier)
  return c


def prune_config(config: Any) -> ml_collections.ConfigDict:
  """The source's training config, shortened to the fine-tune with its learning rate."""
  c = dense_config(config, source_multiplier(config))
  f = config.frontier
  steps = int(f.finetune_steps)
  c.train.steps = steps
  c.optimizer.learning_rate = float(f.finetune_learning_rate)
  c.optimizer.warmup_steps = min(int(c.optimizer.get("warmup_steps", 0) or 0), steps // 10)
  return c  # Log/eval/checkpoint periods beyond `steps` are fine: the last step does all.


def divided_config(config: Any, num_members: int
                   ) -> tuple[ml_collections.ConfigDict, ensembles.Division]:
  """Training config of R ensembles of S divided members, and the division itself."""
  f = config.frontier
  wide_kwargs = {**_base_kwargs(config), "width_multiplier": source_multiplier(config)}
  wd = float(config.optimizer.get("weight_decay", 0.0) or 0.0)
  division = ensembles.divide(ensembles.ModelSpec(config.model.name, wide_kwargs), num_members,
                              weight_decay=wd if wd else None, width_rule=str(f.width_rule))
  c = _copy(config)
  c.model.kwargs = ml_collections.ConfigDict(dict(division.member.kwargs))
  c.population.members = int(config.population.members) * num_members
  if division.weight_decay is not None:
    c.optimizer.weight_decay = float(division.weight_decay)
  return c, division


def plan(config: Any) -> list[Variant]:
  """The study's variants in training order: the dense sweep widest first (the source of
  every CIE comparison), then pruned, quantized and divided."""
  f = config.frontier
  source = source_name(config)
  out = []
  for multiplier in sorted((float(m) for m in _tuple(f.width_multipliers)), reverse=True):
    out.append(Variant(dense_name(config, multiplier), "dense",
                       {"technique": "dense", "width_multiplier": multiplier,
                        "source": source}, dense_config(config, multiplier)))
  for s in _tuple(f.sparsities):
    out.append(Variant(f"pruned_s{round(100 * float(s)):d}", "pruned",
                       {"technique": "pruned", "sparsity": float(s),
                        "prune_schedule": str(f.prune_schedule), "source": source},
                       prune_config(config)))
  for bits in _tuple(f.bits):
    out.append(Variant(f"int{int(bits)}", "quantized",
                       {"technique": "quantized", "bits": int(bits),
                        "granularity": str(f.quant_granularity), "source": source}))
  for s in _tuple(f.divided):
    c, division = divided_config(config, int(s))
    out.append(Variant(f"divided_s{int(s)}", "divided",
                       {"technique": "divided", "S": int(s), "source": source,
                        "cotraining_loss": str(f.cotraining_loss)}, c, int(s)))
  return out


def _number(value: Any, name: str, low: float, high: float, *, low_open: bool = False,
            high_open: bool = False, integer: bool = False) -> None:
  ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.number))
        and (not integer or float(value) == int(value)))
  if ok:
    v = float(value)
    ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
  if not ok:
    kind = "an integer" if integer else "a number"
    bounds = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    raise ValueError(f"--config.frontier.{name}={value!r}: expected {kind} in {bounds}")


def validate_config(config: Any, device_count: int | None = None) -> list[Variant]:
  """Fails fast, before data loading or compilation; returns the planned variants."""
  if "frontier" not in config:
    raise ValueError("config has no 'frontier' section; use experiments/configs/frontier.py")
  f = config.frontier
  multipliers = _tuple(f.width_multipliers)
  if not multipliers:
    raise ValueError("--config.frontier.width_multipliers=() is empty: the study needs at "
                     "least one dense width (the widest is the source of every compression)")
  for m in multipliers:
    _number(m, "width_multipliers", 0, math.inf, low_open=True, high_open=True)
  if len(set(float(m) for m in multipliers)) != len(multipliers):
    raise ValueError(f"--config.frontier.width_multipliers={multipliers!r} has duplicates")
  for s in _tuple(f.sparsities):
    _number(s, "sparsities", 0, 1, low_open=True, high_open=True)
  if f.prune_schedule not in PRUNE_SCHEDULES:
    raise ValueError(f"--config.frontier.prune_schedule={f.prune_schedule!r} is unknown; "
                     f"choose from {list(PRUNE_SCHEDULES)}")
  sparsity_distributions.check_distribution(f.prune_distribution)
  _number(f.prune_ramp_fraction, "prune_ramp_fraction", 0, 1)
  _number(f.prune_frequency, "prune_frequency", 1, math.inf, integer=True, high_open=True)
  if _tuple(f.sparsities):
    _number(f.finetune_steps, "finetune_steps", 1, math.inf, integer=True, high_open=True)
    _number(f.finetune_learning_rate, "finetune_learning_rate", 0, math.inf, low_open=True,
            high_open=True)
  for bits in _tuple(f.bits):
    _number(bits, "bits", 2, 8, integer=True)
  if f.quant_granularity not in quantization.GRANULARITIES:
    raise ValueError(f"--config.frontier.quant_granularity={f.quant_granularity!r} is "
                     f"unknown; choose from {list(quantization.GRANULARITIES)}")
  for s in _tuple(f.divided):
    _number(s, "divided", 2, math.inf, integer=True, high_open=True)
  ensembles.get_cotraining_loss(f.cotraining_loss)
  ensembles.get_combiner(f.combine)
  if f.width_rule not in WIDTH_RULE_NAMES:
    raise ValueError(f"--config.frontier.width_rule={f.width_rule!r} is unknown; choose "
                     f"from {list(WIDTH_RULE_NAMES)}")
  _number(f.cotraining_weight, "cotraining_weight", 0, math.inf, high_open=True)
  _number(f.cotraining_warmup_fraction, "cotraining_warmup_fraction", 0, 1)
  _number(f.latency_repeats, "latency_repeats", 1, math.inf, integer=True, high_open=True)
  _number(f.measure_batch, "measure_batch", 1, math.inf, integer=True, high_open=True)
  if int(config.population.members) < 2:
    raise ValueError(f"--config.population.members={config.population.members}: the frontier "
                     "measures churn and CIE across a population; use at least 2")
  variants = plan(config)
  names = [v.name for v in variants]
  if len(set(names)) != len(names):
    raise ValueError(f"variant names collide: {names}; use distinct sweep values")
  for variant in variants:
    if variant.train_config is not None:
      experiment.validate(variant.train_config, device_count)
  return variants


# ---------------------------------------------------------------------------------------
# Pure pieces: co-training coupling, ensembles, quantized populations, hidden costs.


def cotraining_coupling(ensemble_size: int, loss: str = "js_divergence", weight: float = 0.5,
                        warmup_steps: int = 0, floor: float = 0.005
                        ) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
  """`coupling_fn(logits [R*S, B, C], labels, step)`: Σ_r λ_t · loss(logits of ensemble r).

  Member i belongs to ensemble i // S; λ_t ramps linearly per step over `warmup_steps`
  (never below `floor`), then stays at `weight`.
  """
  size = ensembles.check_num_members(ensemble_size, "ensemble_size")
  schedule = lambda step: ensembles.cotraining_weight(  # noqa: E731
      step, weight=weight, warmup_epochs=warmup_steps, floor=floor)
  return divide_cotrain.make_coupling_fn(size, loss=loss, weight_schedule=schedule)


ensemble_logits = divide_cotrain.ensemble_logits  # [R*S, N, C] -> [R, N, C].
# Mean pairwise disagreement of predicted labels across members; None for one member.
churn = divide_cotrain.run_churn


def _finite(value: Any) -> float | None:
  value = float(value)
  return value if math.isfinite(value) else None


def hidden_costs(logits: Any, source_logits: Any, labels: Any, groups: Any = None,
                 group_names: Sequence[str] = (), *, is_source: bool = False
                 ) -> dict[str, Any]:
  """CIE against the source population, churn, and CIE concentration per group.

  Returns cie_count, cie_fraction, cie_accuracy (mean member accuracy on the CIEs),
  source_cie_accuracy (the source's on the same examples), non_cie_accuracy, churn and,
  with groups, cie_rate per group and cie_rate_ratio (highest / lowest group rate).
  Rates and accuracies over an empty set are None.
  """
  logits, source_logits = np.asarray(logits), np.asarray(source_logits)
  labels = np.asarray(labels)
  num_classes = logits.shape[-1]
  is_cie = (np.zeros(labels.shape, bool) if is_source else
            np.asarray(exemplars.cie(source_logits, logits, num_classes)))
  split = exemplars.accuracy_split(logits, labels, is_cie, num_classes)
  source_split = exemplars.accuracy_split(source_logits, labels, is_cie, num_classes)
  out: dict[str, Any] = {
      "cie_count": int(is_cie.sum()),
      "cie_fraction": float(is_cie.mean()),
      "cie_accuracy": _finite(split["cie_accuracy"]),
      "source_cie_accuracy": _finite(source_split["cie_accuracy"]),
      "non_cie_accuracy": _finite(split["non_cie_accuracy"]),
      "churn": churn(logits),
  }
  if groups is not None and np.size(groups) and np.shape(groups)[-1] > 0:
    inter = fairness.intersect(np.asarray(groups), None, tuple(group_names) or None)
    breakdown = exemplars.group_breakdown(source_logits, logits, labels, inter.ids,
                                          num_groups=inter.num_groups, is_cie=is_cie)
    rates = {name: _finite(breakdown["cie_rate"][i]) for i, name in enumerate(inter.names)}
    out["cie_rate"] = rates
    present = [r for r in rates.values() if r is not None]
    if present and min(present) > 0:
      out["cie_rate_ratio"] = max(present) / min(present)
  return out


# ---------------------------------------------------------------------------------------
# Running the study.


def _prune_tx(train_config: Any, f: Any, target: float) -> Any:
  inner = optimizers.make_optimizer(train_config.optimizer, int(train_config.train.steps))
  steps = int(train_config.train.steps)
  if f.prune_schedule == "one_shot":
    schedule = sparsity.one_shot(float(target), 0)
  else:
    end = max(1, int(round(float(f.prune_ramp_fraction) * steps)) - 1)
    schedule = sparsity.gradual(float(target), 0, end, int(f.prune_frequency))
  return sparsity.masked(inner, schedule, f.prune_distribution)


def _host_copy(tree: Any) -> Any:
  return jax.tree.map(np.asarray, distributed.to_host(tree))


def _place_like(host_tree: Any, like: Any) -> Any:
  """Host arrays placed with the shardings of `like` (fresh buffers: training donates them)."""
  return jax.tree.map(lambda h, x: jax.device_put(h, x.sharding), host_tree, like)


def _ensemble_efficiency(state: Any, example: np.ndarray, size: int, mode: str,
                         repeats: int, time_it: bool) -> dict[str, Any]:
  """Cost of one whole ensemble (its S members applied and combined) on one device."""
  first = divide_cotrain.ensemble_variables(state, size)

  def apply(variables, x):
    logits = jax.vmap(lambda v: state.apply_fn(v, x, train=False))(variables)
    return ensembles.combine(logits, mode)

  return efficiency.measure(apply, first, example, repeats=repeats, time_it=time_it)


class _Study:
  """State shared across the variants of one run (source state cached, timers)."""

  def __init__(self, config: Any, workdir: str, variants: Sequence[Variant], env: dict):
    self.config, self.workdir, self.variants, self.env = config, workdir, variants, env
    self.f = config.frontier
    self.source = source_name(config)
    self.dataset = experiment.load_dataset(dense_config(config, 1.0))
    self.test = self.dataset.test
    # Latency at batch 1 and at measure_batch (cycled test images).
    self.example = np.asarray(self.test.images[:max(1, min(int(self.f.measure_batch),
                                                           len(self.test.labels)))])
    self.writer = workdir_lib.MetricWriter(workdir)
    self.eval_batch = int(config.eval.get("batch_size", 512))
    self.repeats = int(self.f.latency_repeats)
    self.time_it = bool(self.f.time_latency)
    self._source_state = None

  # Source population: trained by the dense sweep, or restored from its checkpoint.
  def source_state(self):
    if self._source_state is None:
      variant = next(v for v in self.variants if v.name == self.source)
      state, mesh, _, preempted = common.train_variant(
          variant.train_config, self.workdir, variant.name, dataset=self.dataset,
          writer=self.writer)
      if preempted:
        raise _Preempted(variant.name)
      self._source_state = (state, mesh)
    return self._source_state

  def source_logits(self) -> np.ndarray:
    return predictions_lib.load(self.workdir, self.source).logits

  def record(self, variant: Variant, logits: np.ndarray, eff: Mapping[str, Any],
             seconds: float, members: int, extra_accuracy: Mapping[str, Any] | None = None,
             **extra: Any) -> dict[str, Any]:
    test = self.test
    summary = common.accuracy_summary(logits, test.labels, test.groups, test.group_names)
    summary.update(extra_accuracy or {})
    is_source = variant.name == self.source
    source_logits = logits if is_source else self.source_logits()
    costs = hidden_costs(logits, source_logits, test.labels, test.groups, test.group_names,
                         is_source=is_source)
    costs.update(per_class_std=summary["per_class_std"], top1_std=summary["top1_std"])
    if "group_gap" in summary:
      costs["group_gap"] = summary["group_gap"]
    config = variant.train_config if variant.train_config is not None else dense_config(
        self.config, source_multiplier(self.config))
    record = records_lib.make_record(
        study=STUDY, variant=variant.name, efficiency=eff, accuracy=summary,
        hidden_costs=costs, members=members, config=config, environment=self.env,
        seconds=float(seconds), **dict(variant.knobs), **extra)
    records_lib.append_records(self.workdir, [record])
    logging.info("[%s] top-1 %.4f ± %.4f, worst class %.3f, worst group %.3f, CIE %d, "
                 "churn %.4f, %.1f s", variant.name, summary["top1"], summary["top1_std"],
                 summary["worst_class"], summary.get("worst_group", float("nan")),
                 costs["cie_count"], costs["churn"] or 0.0, seconds)
    return record

  def run_dense(self, variant: Variant) -> dict[str, Any]:
    state, mesh, seconds, preempted = common.train_variant(
        variant.train_config, self.workdir, variant.name, dataset=self.dataset,
        writer=self.writer)
    if preempted:
      raise _Preempted(variant.name)
    if variant.name == self.source:
      self._source_state = (state, mesh)
    start = time.time()
    logits, _ = experiment.evaluate(state, self.test, mesh, self.eval_batch)
    common.save_variant_predictions(self.workdir, variant.name, logits, self.test)
    seconds += time.time() - start
    eff = common.measure_member(state, self.example, repeats=self.repeats, time_it=self.time_it)
    return self.record(variant, logits, eff, seconds, state.members)

  def run_pruned(self, variant: Variant) -> dict[str, Any]:
    source_state, _ = self.source_state()
    dense_params = _host_copy(source_state.params)
    dense_stats = _host_copy(source_state.batch_stats)
    target = float(variant.knobs["sparsity"])
    tx = _prune_tx(variant.train_config, self.f, target)

    def from_source(state):
      return state.replace(params=_place_like(dense_params, state.params),
                           batch_stats=_place_like(dense_stats, state.batch_stats))

    state, mesh, seconds, preempted = common.train_variant(
        variant.train_config, self.workdir, variant.name, dataset=self.dataset,
        writer=self.writer, tx=tx, state_fn=from_source)
    if preempted:
      raise _Preempted(variant.name)
    start = time.time()
    logits, _ = experiment.evaluate(state, self.test, mesh, self.eval_batch)
    common.save_variant_predictions(self.workdir, variant.name, logits, self.test)
    seconds += time.time() - start
    eff = common.measure_member(state, self.example, repeats=self.repeats, time_it=self.time_it)
    member0 = jax.tree.map(lambda x: np.asarray(x)[0], _host_copy(state.params))
    achieved = sparsity.summarize_sparsity(member0, sparsity.default_filter)["total"]
    return self.record(variant, logits, eff, seconds, state.members,
                       achieved_sparsity=float(achieved["sparsity"]))

  def run_quantized(self, variant: Variant) -> dict[str, Any]:
    source_state, mesh = self.source_state()
    start = time.time()
    bits, granularity = int(variant.knobs["bits"]), str(variant.knobs["granularity"])
    qstate = compression_bias.quantize_population(source_state, bits, granularity)
    qparams = qstate.params
    logits, _ = experiment.evaluate(qstate, self.test, mesh, self.eval_batch)
    common.save_variant_predictions(self.workdir, variant.name, logits, self.test)
    seconds = time.time() - start
    member0 = jax.tree.map(lambda x: np.asarray(x)[0], _host_copy(qparams))
    eff = common.measure_member(source_state, self.example, params_override=member0,
                                repeats=self.repeats, time_it=self.time_it)
    eff["weight_bytes"] = quantization.quantized_bytes(member0, bits, granularity)
    eff.setdefault("notes", {})["weight_bytes"] = (
        f"int{bits} codes packed at {bits} bits plus float32 {granularity} scales; compute "
        "stays float32 (fake quantization), so FLOPs and latency are the dense model's")
    return self.record(variant, logits, eff, seconds, source_state.members)

  def run_divided(self, variant: Variant) -> dict[str, Any]:
    f, size = self.f, variant.ensemble_size
    steps = int(variant.train_config.train.steps)
    coupling = cotraining_coupling(size, str(f.cotraining_loss), float(f.cotraining_weight),
                                   int(round(float(f.cotraining_warmup_fraction) * steps)))
    base_seed = int(variant.train_config.seeds.data)
    state, mesh, seconds, preempted = common.train_variant(
        variant.train_config, self.workdir, variant.name, dataset=self.dataset,
        writer=self.writer, step_overrides={"coupling_fn": coupling},
        state_fn=lambda st: divide_cotrain.group_data_keys(st, size, base_seed))
    if preempted:
      raise _Preempted(variant.name)
    start = time.time()
    member_logits, _ = experiment.evaluate(state, self.test, mesh, self.eval_batch)
    logits = ensemble_logits(member_logits, size, str(f.combine))
    common.save_variant_predictions(self.workdir, variant.name, logits, self.test)
    common.save_variant_predictions(self.workdir, f"{variant.name}_members", member_logits,
                                    self.test)
    seconds += time.time() - start
    eff = _ensemble_efficiency(state, self.example, size, str(f.combine), self.repeats,
                               self.time_it)
    member_top1 = float((member_logits.argmax(-1) == self.test.labels[None]).mean())
    return self.record(variant, logits, eff, seconds, state.members // size,
                       extra_accuracy={"member_top1": member_top1},
                       networks=state.members)


class _Preempted(Exception):
  pass


RUNNERS = {"dense": _Study.run_dense, "pruned": _Study.run_pruned,
           "quantized": _Study.run_quantized, "divided": _Study.run_divided}


def run(config: Any, workdir: str, *, write: bool = True) -> list[dict[str, Any]]:
  """Runs (or resumes) the study in `workdir`; returns all its records.

  Validates first, then trains each variant not yet recorded (logging which one, its
  steps/s and ETA), appends its record, and finally writes the report. Returns the records
  so far (without a report) when preempted; rerun the same command to resume.
  """
  distributed.maybe_initialize()
  checkpoint_lib.quiet_orbax()
  variants = validate_config(config)
  mesh, env = experiment.prepare_workdir(config, workdir)
  done = common.recorded_variants(workdir)
  study = _Study(config, workdir, variants, env)
  start = time.time()
  todo = [v for v in variants if v.name not in done]
  logging.info("frontier: %d variants (%s); %d already recorded, %d to run", len(variants),
               ", ".join(v.name for v in variants), len(variants) - len(todo), len(todo))
  try:
    for index, variant in enumerate(todo):
      elapsed = time.time() - start
      eta = (f", study ETA ~{elapsed / index * (len(todo) - index):.0f}s" if index else "")
      logging.info("frontier: variant %d/%d %s (%s), elapsed %.0fs%s", index + 1, len(todo),
                   variant.name, variant.technique, elapsed, eta)
      RUNNERS[variant.technique](study, variant)
  except _Preempted as e:
    logging.warning("frontier: preempted while training %s; rerun the same command to "
                    "resume (finished variants are skipped)", e)
    return records_lib.load_records(workdir) if os.path.exists(
        os.path.join(workdir, records_lib.RECORDS_FILE)) else []
  finally:
    study.writer.close()
  records = records_lib.load_records(workdir)
  logging.info("frontier: all %d variants recorded in %.0fs", len(records), time.time() - start)
  if write:
    write_frontier_report(workdir, records, config.report)
  return records


# ---------------------------------------------------------------------------------------
# The report.


def _report_options(report_config: Any) -> dict[str, Any]:
  get = (report_config.get if hasattr(report_config, "get")
         else lambda k, d=None: getattr(report_config, k, d))
  return {"title": get("title", "Efficiency frontier") or "Efficiency frontier",
          "axes": _tuple(get("axes", ())) or None,
          "metrics": _tuple(get("metrics", ())) or None,
          "reference": get("reference", "") or None}


def _default_reference(records: Sequence[Mapping[str, Any]]) -> str | None:
  """The widest dense variant recorded (the source of the compressions)."""
  for record in records:
    source = record.get("source")
    if source and any(r.get("variant") == source for r in records):
      return str(source)
  return None


def plot_groups(directory: str, records: Sequence[Mapping[str, Any]]) -> str | None:
  """Per variant: accuracy of each group and the CIE rate per group (who pays)."""
  rows = [(r, r["accuracy"].get("per_group"), (r.get("hidden_costs") or {}).get("cie_rate"))
          for r in records if isinstance((r.get("accuracy") or {}).get("per_group"), Mapping)]
  if not rows:
    return None
  import matplotlib  # Imported here: only the report needs it, and it must be Agg.
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt

  labels = write_lib.variant_labels([r for r, _, _ in rows])
  groups = sorted({g for _, per_group, _ in rows for g in per_group})
  fig, axs = plt.subplots(1, 2, figsize=(max(8.0, 0.7 * len(rows) + 4), 3.8))
  width = 0.8 / max(len(groups), 1)
  positions = np.arange(len(rows))
  for j, group in enumerate(groups):
    accuracy = [pareto_lib.as_number(pg.get(group)) for _, pg, _ in rows]
    rates = [pareto_lib.as_number((cr or {}).get(group)) for _, _, cr in rows]
    offset = positions + (j - (len(groups) - 1) / 2) * width
    axs[0].bar(offset, [np.nan if a is None else a for a in accuracy], width, label=group)
    axs[1].bar(offset, [np.nan if c is None else c for c in rates], width, label=group)
  for ax, title in zip(axs, ("top-1 per group (↑ better)", "CIE rate per group (↓ better)")):
    ax.set_xticks(positions)
    ax.set_xticklabels(labels, rotation=45, ha="right", fontsize=7)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3, axis="y")
    ax.legend(fontsize=7)
  low = min((a for _, pg, _ in rows for a in pg.values() if pareto_lib.as_number(a) is not None),
            default=0.0)
  axs[0].set_ylim(max(0.0, low - 0.05), 1.0)
  fig.suptitle("Who pays: accuracy and compression-identified exemplars by group",
               fontsize=10)
  fig.tight_layout()
  path = os.path.join(directory, GROUPS_FIGURE)
  fig.savefig(path, dpi=100)
  plt.close(fig)
  return path


def plot_headline(directory: str, records: Sequence[Mapping[str, Any]]) -> str | None:
  """Top-1 and worst-group accuracy against non-zero parameters, one colour per technique,
  marker area growing with the CIE count: the frontier and its hidden costs in one view."""
  x_axis = "efficiency.nonzero_params"
  metrics = [m for m in ("accuracy.top1", "accuracy.worst_group", "accuracy.worst_class")
             if any(pareto_lib.as_number(pareto_lib.get_path(r, m)) is not None
                    for r in records)][:2]
  points = [r for r in records if pareto_lib.as_number(pareto_lib.get_path(r, x_axis))]
  if not metrics or not points:
    return None
  import matplotlib  # Imported here: only the report needs it, and it must be Agg.
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt

  labels = dict(zip(map(id, records), write_lib.variant_labels(records)))
  techniques = sorted({str(r.get("technique", r.get("study"))) for r in points})
  colors = {t: plt.get_cmap("tab10")(i % 10) for i, t in enumerate(techniques)}
  fig, axs = plt.subplots(1, len(metrics), figsize=(5.5 * len(metrics), 4.2), squeeze=False)
  for ax, metric in zip(axs[0], metrics):
    for record in points:
      vx = pareto_lib.as_number(pareto_lib.get_path(record, x_axis))
      vy = pareto_lib.as_number(pareto_lib.get_path(record, metric))
      if vy is None:
        continue
      cie = pareto_lib.as_number(pareto_lib.get_path(record, "hidden_costs.cie_count")) or 0
      technique = str(record.get("technique", record.get("study")))
      ax.scatter(vx, vy, s=25 + 8 * cie, color=colors[technique], alpha=0.75,
                 edgecolors="k", linewidths=0.5, zorder=3)
      ax.annotate(labels[id(record)], (vx, vy), fontsize=7, xytext=(4, -3),
                  textcoords="offset points")
    front = pareto_lib.pareto_front(points, x_axis, metric)
    line = sorted((pareto_lib.as_number(pareto_lib.get_path(r, x_axis)),
                   pareto_lib.as_number(pareto_lib.get_path(r, metric))) for r in front)
    ax.plot([p[0] for p in line], [p[1] for p in line], "-", color="0.3", lw=1.2,
            drawstyle="steps-post", zorder=2)
    ax.set_xscale("log")
    ax.set_xlabel("non-zero parameters (log)")
    ax.set_ylabel(f"{write_lib.axis_label(metric)} (↑ better)")
    ax.grid(alpha=0.3)
  handles = [plt.Line2D([], [], marker="o", ls="", color=colors[t]) for t in techniques]
  fig.legend(handles, techniques, loc="lower right", fontsize=8, ncol=len(techniques))
  fig.suptitle("Accuracy against non-zero parameters; marker area grows with the CIE count "
               "(examples whose modal label changed vs the dense source)", fontsize=9)
  fig.tight_layout(rect=(0, 0.05, 1, 1))
  path = os.path.join(directory, HEADLINE_FIGURE)
  fig.savefig(path, dpi=110)
  plt.close(fig)
  return path


HEADLINE_COLUMNS = ("Params", "FLOPs", "Latency ms", "Top-1", "±", "Worst class",
                    "Worst group", "CIE", "Churn", "Seconds")


def headline_rows(records: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
  """The compact table: variant, params, FLOPs, latency, top-1, worst class/group, CIE, churn,
  seconds."""
  columns = [c for c in write_lib.TABLE_COLUMNS if c[0] in HEADLINE_COLUMNS]
  return write_lib.variant_table(records, columns=columns)


def write_frontier_report(workdir: str, records: Sequence[Mapping[str, Any]],
                          report_config: Any = None) -> dict[str, Any]:
  """report.md, report.html and frontier_*.png via `report.write_report`, with a headline
  table and figure and the per-group figure placed after the summary of both documents.

  Raises ValueError (from the report library) for empty records or axes no record has.
  """
  options = _report_options(report_config or {})
  records = list(records)
  if not records:
    raise ValueError("records is empty: nothing to report. Run the study first "
                     "(python -m experiments.frontier --workdir=...)")
  reference = options["reference"] or _default_reference(records)
  if options["reference"] and not any(r.get("variant") == reference for r in records):
    names = sorted({str(r.get("variant")) for r in records})
    raise ValueError(f"--config.report.reference={reference!r} is not a recorded variant; "
                     f"recorded: {names}")
  if not workdir_lib.is_writer():
    return write_lib.write_report(workdir, records, title=options["title"],
                                  axes=options["axes"], metrics=options["metrics"],
                                  reference=reference)
  os.makedirs(workdir, exist_ok=True)
  figure = plot_groups(workdir, records)
  headline = plot_headline(workdir, records)
  headers, rows = headline_rows(records)
  blocks = [("h2", "Headline"),
            ("p", f"Every variant is a population; CIE counts test examples whose modal "
                  f"label changed against the dense source ({reference or 'the reference'}); "
                  "churn is the mean pairwise disagreement between members.")]
  if headline:
    blocks.append(("img", os.path.basename(headline), "frontier_headline"))
  blocks.append(("table", headers, rows))
  if figure:
    blocks += [("h2", "Who pays"), ("img", os.path.basename(figure), "frontier_groups")]
  out = write_lib.write_report(workdir, records, title=options["title"], axes=options["axes"],
                               metrics=options["metrics"], reference=reference,
                               lead_blocks=blocks)
  out["figures"] += [f for f in (headline, figure) if f]
  return out


def report_only(workdir: str, merge: Sequence[str] = (), report_config: Any = None
                ) -> dict[str, Any]:
  """Rebuilds the report in `workdir` from its records, or from the `merge` workdirs'.

  With `merge`, records come from those workdirs (and from `workdir` too when it holds
  records). Raises FileNotFoundError / ValueError naming the workdir without records.
  """
  sources = list(merge)
  if not sources or os.path.exists(os.path.join(workdir, records_lib.RECORDS_FILE)):
    sources = [workdir] + [m for m in sources if os.path.normpath(m) !=
                           os.path.normpath(workdir)]
  records = records_lib.load_records(*sources)
  os.makedirs(workdir, exist_ok=True)
  return write_frontier_report(workdir, records, report_config)
