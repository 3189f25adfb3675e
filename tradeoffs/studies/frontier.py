"""The main job: one efficiency frontier with the hidden costs beside it.

    config → dense width sweep → compressions of the widest dense model (pruned,
    quantized, divided into a co-trained ensemble, distilled, cascaded) and other
    trainings (loss-prioritized, DP-SGD) → per-example predictions →
    trade-off records → frontier plots, verdicts and the report

Every variant is a population (config.population.members), so top-1 comes with its
interval, churn across members, and the compression-identified exemplars (CIE) of each
variant against its dense source (the widest dense population; Hooker et al.) beside
their noise floor (CIEs between random halves of the source).

Formulations chosen (documented because they are choices; the recipes are in
`tradeoffs.studies.recipes`):
  * width sweep: `width_multiplier` of the configured model; the largest multiplier is
    the dense source of every compression.
  * pruning: `prune_schedule='one_shot'` is the `pruned_one_shot` recipe (masks from the
    source's trained weights, then a fine-tune with masks fixed); 'gradual' is
    `pruned_gradual_finetune` (a Zhu & Gupta cubic ramp over the first
    `prune_ramp_fraction` of the fine-tune). One population of masks per member.
  * quantization: post-training symmetric fake quantization of each source member;
    weight bytes count packed codes + float32 scales + other leaves.
  * divided ensembles: R = members ensembles of S networks from `ensembles.divide` of the
    source spec, co-trained (JS divergence by default), combined by mean logits; scored as
    R ensembles. Their parameter count against the source is recorded
    (`study_fields.params_ratio`): the width rule rounds, so it is not exactly 1.
  * distilled students (`distilled` recipe): the smallest dense width trained from
    labels and the source's member-0 train logits (CE + w·T²·KL), objective 'standard'
    or 'robust' (worst-class weights, `distill_alpha`, λ by `distill_eg_rounds` rounds of
    exponentiated gradient with step `distill_eg_step`, as the robust distillation study
    runs them). digits_groups has no validation split, so both students hold out
    `distill_validation_per_class` training images of every class (`recipes.
    carved_validation`: stratified, seeded by `distill_validation_seed`; the ids are in
    `study_fields.validation`) and train on the rest; the robust student's per-class
    error between rounds is measured there; the test split is untouched. The teacher
    trained on the whole training split (held-out rows included), so the held-out rows
    are unseen by the student only.
  * loss-prioritized training (`loss_prioritized` recipe, clean labels): the source's
    width from scratch, round(`backward_fraction` · batch) rows of each forward-passed
    batch backpropagated, chosen by Selective Backprop (Jiang et al. 2019) at β =
    `selection_beta` (or loss-proportional / uniform). It saves training, not inference:
    for it and every dense width the records count training rows and FLOPs
    (`training_cost`, `efficiency.train_*`, in the ledger's `saved`) beside the training
    wall-clock (`efficiency.train_seconds`, compilation included).
  * cascades (`cascade` recipe, no training): the smallest dense population always,
    the source on the given fraction of its least confident test inputs (member i with
    member i); expected latency and FLOPs fast + rate × slow from the two measured
    records, params of both deployed.
  * DP-SGD (`dp_sgd` recipe): the smallest dense width (per-example gradients cost
    ~25x less there than at the source width) trained from scratch with per-example
    clipping and Gaussian noise per noise multiplier, against the source like the rest
    (dense_w32 beside it separates what privacy costs from what width costs); ε at `dp_delta` from
    the RDP accountant (`tradeoffs.privacy.dp_sgd_epsilon`), recorded in hidden costs.
  * verdicts: each variant's top-1, worst-class and worst-group accuracy against the
    source, one Holm-corrected family; paired t for derived variants (the same members),
    Welch for retrained ones.
  * the hardware lottery (`tradeoffs.report.hardware`): counted savings beside measured
    ones, one column set per backend when runs from several backends are merged.
  * the accountability ledger (`tradeoffs.report.ledger.accountability`, stored in each
    record's `ledger` by the runner): knobs, savings and who pays, with the evidence.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import ml_collections
import numpy as np

from tradeoffs import ensembles
from tradeoffs import models
from tradeoffs import quantization
from tradeoffs import stats
from tradeoffs.ensembles.divide import WIDTH_RULE_NAMES
from tradeoffs.models import layers
from tradeoffs.report import figures
from tradeoffs.report import format as fmt
from tradeoffs.report import hardware as hardware_lib
from tradeoffs.report import ledger as ledger_lib
from tradeoffs.report import pareto as pareto_lib
from tradeoffs.report import verdict as verdict_lib
from tradeoffs.report import write as write_lib
from tradeoffs.sparsity import distributions as sparsity_distributions
from tradeoffs.sparsity import structured as sparsity_structured
from tradeoffs.studies import base
from tradeoffs.studies import recipes
from tradeoffs.train import experiment

NAME = "frontier"
TITLE = "What efficiency costs: the frontier and its hidden costs"
PRUNE_SCHEDULES = {"one_shot": "pruned_one_shot", "gradual": "pruned_gradual_finetune"}
# Selection methods of the loss_prioritized recipe that backpropagate a part of each batch.
LOSS_PRIORITIZED_METHODS = ("selective_backprop", "loss_proportional", "uniform")
TRAINED_FROM_SCRATCH = ("dense", "loss_prioritized")  # Training cost counted for these.


training_config = base.training_config


_tuple = base.as_tuple


def width_label(model_name: str, kwargs: Mapping[str, Any], multiplier: float) -> str:
  """'w256' for an MLP with hidden (256, 256) at multiplier 1; 'x0.5' when no width is known."""
  width = models.base_width(model_name, kwargs)
  if width is None:
    return f"x{multiplier:g}"
  return f"w{layers.scale_width(int(width), float(multiplier))}"


def _base_kwargs(config: Any) -> dict[str, Any]:
  kwargs = experiment.model_kwargs(config)
  kwargs.pop("width_multiplier", None)
  return kwargs


def source_multiplier(config: Any) -> float:
  return float(max(_tuple(config.study.width_multipliers)))


def dense_name(config: Any, multiplier: float) -> str:
  return "dense_" + width_label(config.model.name, _base_kwargs(config), multiplier)


def dense_config(config: Any, multiplier: float) -> ml_collections.ConfigDict:
  c = training_config(config)
  c.model.kwargs.width_multiplier = float(multiplier)
  return c


def finetune_config(config: Any, steps: int | None = None) -> ml_collections.ConfigDict:
  """The source's training config, shortened to the fine-tune with its learning rate."""
  c = dense_config(config, source_multiplier(config))
  s = config.study
  steps = int(s.finetune_steps if steps is None else steps)
  c.train.steps = steps
  c.optimizer.learning_rate = float(s.finetune_learning_rate)
  c.optimizer.warmup_steps = min(int(c.optimizer.get("warmup_steps", 0) or 0), steps // 10)
  return c  # Log/eval/checkpoint periods beyond `steps` are fine: the last step does all.


def divided_config(config: Any, num_members: int
                   ) -> tuple[ml_collections.ConfigDict, ensembles.Division]:
  """Training config of R ensembles of S divided members, and the division itself."""
  s = config.study
  wide_kwargs = {**_base_kwargs(config), "width_multiplier": source_multiplier(config)}
  wd = float(config.optimizer.get("weight_decay", 0.0) or 0.0)
  name = str(config.model.name)
  division = ensembles.divide(ensembles.ModelSpec(name, wide_kwargs), num_members,
                              model_info=models.division_info(name, wide_kwargs),
                              weight_decay=wd if wd else None, width_rule=str(s.width_rule))
  c = training_config(config)
  c.model.name = division.member.name  # A pinned preset (wrn28_10) divides as its model.
  c.model.kwargs = ml_collections.ConfigDict(dict(division.member.kwargs))
  c.population.members = int(config.population.members) * num_members
  if division.weight_decay is not None:
    c.optimizer.weight_decay = float(division.weight_decay)
  return c, division


_number = base.check_number


def _nm_patterns(s: Any) -> tuple[tuple[int, int], ...]:
  """`study.nm` as (n, m) pairs with integers 0 < n < m, else a ValueError naming it."""
  out = []
  for pattern in _tuple(s.get("nm", ())):
    pair = tuple(pattern) if isinstance(pattern, (list, tuple)) else (pattern,)
    ok = (len(pair) == 2 and all(not isinstance(x, bool) and isinstance(x, (int, np.integer))
                                 for x in pair) and 0 < pair[0] < pair[1])
    if not ok:
      raise ValueError(f"--config.study.nm={s.nm!r}: expected (n, m) pairs of integers "
                       "with 0 < n < m, e.g. ((2, 4),)")
    out.append((int(pair[0]), int(pair[1])))
  return tuple(out)


def validate(config: Any) -> None:
  """Every knob the study reads, before anything loads or compiles."""
  if "study" not in config:
    raise ValueError("config has no 'study' section; use experiments/configs/frontier.py")
  s = config.study
  multipliers = _tuple(s.width_multipliers)
  if not multipliers:
    raise ValueError("--config.study.width_multipliers=() is empty: the study needs at "
                     "least one dense width (the widest is the source of every compression)")
  for m in multipliers:
    _number(m, "study.width_multipliers", 0, math.inf, low_open=True, high_open=True)
  if len(set(float(m) for m in multipliers)) != len(multipliers):
    raise ValueError(f"--config.study.width_multipliers={multipliers!r} has duplicates")
  for v in _tuple(s.sparsities):
    _number(v, "study.sparsities", 0, 1, low_open=True, high_open=True)
  if s.prune_schedule not in PRUNE_SCHEDULES:
    raise ValueError(f"--config.study.prune_schedule={s.prune_schedule!r} is unknown; "
                     f"choose from {list(PRUNE_SCHEDULES)}")
  sparsity_distributions.check_distribution(s.prune_distribution)
  _number(s.prune_ramp_fraction, "study.prune_ramp_fraction", 0, 1)
  _number(s.prune_frequency, "study.prune_frequency", 1, math.inf, integer=True,
          high_open=True)
  channel_levels = _tuple(s.get("channel_sparsities", ()))
  for v in channel_levels:
    _number(v, "study.channel_sparsities", 0, 1, high_open=True)
  if channel_levels and str(config.model.name) not in recipes.UNIT_PRUNABLE_MODELS:
    raise ValueError(f"--config.study.channel_sparsities={channel_levels!r} needs a model "
                     f"whose unit layers the pruned_channels recipe knows "
                     f"({list(recipes.UNIT_PRUNABLE_MODELS)}), not --config.model.name="
                     f"{config.model.name!r}; set --config.study.channel_sparsities=()")
  nm_patterns = _nm_patterns(s)
  if _tuple(s.sparsities) or channel_levels or nm_patterns:
    _number(s.finetune_steps, "study.finetune_steps", 1, math.inf, integer=True,
            high_open=True)
    _number(s.finetune_learning_rate, "study.finetune_learning_rate", 0, math.inf,
            low_open=True, high_open=True)
  for bits in _tuple(s.bits):
    _number(bits, "study.bits", 2, 8, integer=True)
  if s.quant_granularity not in quantization.GRANULARITIES:
    raise ValueError(f"--config.study.quant_granularity={s.quant_granularity!r} is "
                     f"unknown; choose from {list(quantization.GRANULARITIES)}")
  for v in _tuple(s.divided):
    _number(v, "study.divided", 2, math.inf, integer=True, high_open=True)
  ensembles.get_cotraining_loss(s.cotraining_loss)
  ensembles.get_combiner(s.combine)
  if s.width_rule not in WIDTH_RULE_NAMES:
    raise ValueError(f"--config.study.width_rule={s.width_rule!r} is unknown; choose "
                     f"from {list(WIDTH_RULE_NAMES)}")
  _number(s.cotraining_weight, "study.cotraining_weight", 0, math.inf, high_open=True)
  _number(s.cotraining_warmup_fraction, "study.cotraining_warmup_fraction", 0, 1)
  objectives = _tuple(s.get("distilled", ()))
  for objective in objectives:
    if objective not in ("standard", "robust"):
      raise ValueError(f"--config.study.distilled={objectives!r}: each student objective is "
                       "'standard' or 'robust' (worst-class)")
  if objectives:
    _number(s.distill_temperature, "study.distill_temperature", 0, math.inf, low_open=True,
            high_open=True)
    _number(s.distill_weight, "study.distill_weight", 0, math.inf, high_open=True)
    _number(s.distill_validation_per_class, "study.distill_validation_per_class", 1,
            math.inf, integer=True, high_open=True)
    _number(s.distill_validation_seed, "study.distill_validation_seed", 0, math.inf,
            integer=True, high_open=True)
  if "robust" in objectives:
    _number(s.distill_alpha, "study.distill_alpha", 0, 1)
    _number(s.distill_eg_step, "study.distill_eg_step", 0, math.inf, high_open=True)
    _number(s.distill_eg_rounds, "study.distill_eg_rounds", 1,
            int(config.train.steps), integer=True)
  methods = _tuple(s.get("loss_prioritized", ()))
  for method in methods:
    if method not in LOSS_PRIORITIZED_METHODS:
      raise ValueError(f"--config.study.loss_prioritized={methods!r}: each method is one of "
                       f"{list(LOSS_PRIORITIZED_METHODS)}")
  if len(set(methods)) != len(methods):
    raise ValueError(f"--config.study.loss_prioritized={methods!r} has duplicates")
  if methods:
    _number(s.backward_fraction, "study.backward_fraction", 0, 1, low_open=True,
            high_open=True)
    if "selective_backprop" in methods:
      _number(s.selection_beta, "study.selection_beta", 0, math.inf, low_open=True,
              high_open=True)
  for rate in _tuple(s.get("cascade_rates", ())):
    _number(rate, "study.cascade_rates", 0, 1)
  if len(set(_tuple(s.get("cascade_rates", ())))) != len(_tuple(s.get("cascade_rates", ()))):
    raise ValueError(f"--config.study.cascade_rates={s.cascade_rates!r} has duplicates")
  sigmas = _tuple(s.get("dp_noise_multipliers", ()))
  for sigma in sigmas:
    _number(sigma, "study.dp_noise_multipliers", 0, math.inf, low_open=True, high_open=True)
  if sigmas:
    _number(s.dp_clip_norm, "study.dp_clip_norm", 0, math.inf, low_open=True, high_open=True)
    _number(s.dp_delta, "study.dp_delta", 0, 1, low_open=True, high_open=True)
  e = config.efficiency
  _number(e.latency_repeats, "efficiency.latency_repeats", 1, math.inf, integer=True,
          high_open=True)
  _number(e.measure_batch, "efficiency.measure_batch", 1, math.inf, integer=True,
          high_open=True)
  if int(config.population.members) < 2:
    raise ValueError(f"--config.population.members={config.population.members}: the frontier "
                     "measures churn and CIE across a population; use at least 2")


def plan(config: Any) -> list[base.Variant]:
  """The dense sweep widest first (the source of every comparison), then pruned,
  channel-pruned, N:M, quantized, divided, distilled, cascaded, loss-prioritized and
  DP-SGD variants."""
  validate(config)
  s = config.study
  source = dense_name(config, source_multiplier(config))
  out = []
  for multiplier in sorted((float(m) for m in _tuple(s.width_multipliers)), reverse=True):
    name = dense_name(config, multiplier)
    out.append(base.Variant(name, "dense", {"width_multiplier": multiplier},
                            None if name == source else source,
                            dense_config(config, multiplier)))
  technique = PRUNE_SCHEDULES[str(s.prune_schedule)]
  for v in _tuple(s.sparsities):
    knobs = {"sparsity": float(v), "distribution": s.prune_distribution,
             "finetune_steps": int(s.finetune_steps),
             "finetune_learning_rate": float(s.finetune_learning_rate)}
    if technique == "pruned_gradual_finetune":
      knobs.update(ramp_fraction=float(s.prune_ramp_fraction),
                   frequency=int(s.prune_frequency))
    out.append(base.Variant(f"pruned_s{round(100 * float(v)):d}", technique, knobs, source,
                            finetune_config(config)))
  # Fine-tune length is an axis: the most pruned variant again with longer fine-tunes
  # (the headline uses `finetune_steps`; these show how much of its cost is recoverable).
  if _tuple(s.sparsities):
    top = max(float(v) for v in _tuple(s.sparsities))
    for steps in _tuple(s.get("finetune_steps_axis", ())):
      knobs = {**out[-1].knobs, "sparsity": top, "finetune_steps": int(steps)}
      out.append(base.Variant(f"pruned_s{round(100 * top):d}_ft{int(steps)}", technique,
                              knobs, source, finetune_config(config, int(steps))))
  finetune = {"finetune_steps": int(s.finetune_steps),
              "finetune_learning_rate": float(s.finetune_learning_rate)}
  for v in _tuple(s.get("channel_sparsities", ())):  # Units removed: a smaller model.
    out.append(base.Variant(f"channels_s{round(100 * float(v)):d}", "pruned_channels",
                            {"sparsity": float(v), "score": sparsity_structured.DEFAULT_SCORE,
                             **finetune}, source, finetune_config(config)))
  for n, m in _nm_patterns(s):  # Zeros in the dense model: savings on paper here.
    out.append(base.Variant(f"nm_{n}of{m}", "pruned_nm",
                            {"n": n, "m": m, "sparsity": 1 - n / m, **finetune}, source,
                            finetune_config(config)))
  for bits in _tuple(s.bits):
    out.append(base.Variant(f"int{int(bits)}", "quantized",
                            {"bits": int(bits), "granularity": str(s.quant_granularity)},
                            source))
  for size in _tuple(s.divided):
    c, _ = divided_config(config, int(size))
    out.append(base.Variant(
        f"divided_s{int(size)}", "divided",
        {"S": int(size), "cotraining_loss": str(s.cotraining_loss),
         "cotraining_weight": float(s.cotraining_weight),
         "cotraining_warmup_fraction": float(s.cotraining_warmup_fraction),
         "combine": str(s.combine), "width_rule": str(s.width_rule)}, source, c))
  smallest = dense_name(config, min(float(m) for m in _tuple(s.width_multipliers)))
  student_config = dense_config(config, min(float(m) for m in _tuple(s.width_multipliers)))
  for objective in _tuple(s.get("distilled", ())):  # The smallest width, taught by the source.
    robust = {"alpha": float(s.distill_alpha), "eg_step": float(s.distill_eg_step),
              "eg_rounds": int(s.distill_eg_rounds)} if objective == "robust" else {}
    out.append(base.Variant(
        f"distilled_{objective}", "distilled",
        {"objective": str(objective), **robust,
         "temperature": float(s.distill_temperature),
         "distill_weight": float(s.distill_weight), "teacher_member": 0,
         "validation_per_class": int(s.distill_validation_per_class),
         "validation_seed": int(s.distill_validation_seed),
         "student_width_multiplier": min(float(m) for m in _tuple(s.width_multipliers))},
        source, student_config))
  for rate in _tuple(s.get("cascade_rates", ())):  # No training: saved predictions.
    if smallest == source:
      break
    out.append(base.Variant(
        f"cascade_r{round(100 * float(rate)):d}", "cascade",
        {"fast": smallest, "slow": source, "rate": float(rate), "policy": "confidence",
         "cost": "latency_ms"}, source))
  for method in _tuple(s.get("loss_prioritized", ())):  # The source's width, from scratch.
    fraction = float(s.backward_fraction)
    out.append(base.Variant(
        f"{method}_k{round(100 * fraction):d}", "loss_prioritized",
        {"method": str(method), "backward_fraction": fraction,
         **({"beta": float(s.selection_beta)} if method == "selective_backprop" else {}),
         "label_noise": 0.0, "width_multiplier": source_multiplier(config)}, source,
        dense_config(config, source_multiplier(config))))
  for sigma in _tuple(s.get("dp_noise_multipliers", ())):
    out.append(base.Variant(
        f"dp_sigma{float(sigma):g}".replace(".", "p"), "dp_sgd",
        {"noise_multiplier": float(sigma), "clip_norm": float(s.dp_clip_norm),
         "delta": float(s.dp_delta), "noise_seed": 0,
         "width_multiplier": min(float(m) for m in _tuple(s.width_multipliers))}, source,
        student_config))
  return out


def training_cost(flops_per_example: float | None, steps: int, batch: int,
                  backward_size: int | None = None) -> dict[str, Any]:
  """Counted training cost of one member: rows forward-passed and backpropagated, and
  FLOPs ≈ forward FLOPs per example × (forward-only rows + 3 × backpropagated rows), the
  backward pass taken as twice the forward (Selective Backprop's accounting: a selected
  batch forward-passes all `batch` rows to choose `backward_size` of them, which then go
  through forward + backward again).

  >>> training_cost(10.0, steps=2, batch=4)
  {'train_forward_examples': 8, 'train_backward_examples': 8, 'train_flops': 240.0}
  >>> training_cost(10.0, steps=2, batch=4, backward_size=1)["train_flops"]
  140.0
  """
  backward = batch if backward_size is None else int(backward_size)
  selection_pass = 0 if backward_size is None else batch
  out: dict[str, Any] = {"train_forward_examples": steps * batch,
                         "train_backward_examples": steps * backward}
  if flops_per_example is not None:
    out["train_flops"] = float(flops_per_example) * steps * (selection_pass + 3 * backward)
  return out


def produce(ctx: Any, variant: base.Variant) -> base.Outcome:
  outcome = recipes.produce(ctx, variant)
  if variant.technique == "divided":  # The width rule rounds: say how far from parity.
    src_params = ctx.records[variant.source]["efficiency"]["params"]
    outcome.study_fields = {**outcome.study_fields,
                            "params_ratio": float(outcome.efficiency["params"]) / src_params}
  if variant.technique in TRAINED_FROM_SCRATCH:  # What training cost, beside inference.
    c = variant.train_config
    backward_size = (outcome.study_fields.get("backward_size")
                     if variant.technique == "loss_prioritized" else None)
    trained = ctx.cache.get(f"trained:{variant.name}")
    outcome.efficiency = {
        **outcome.efficiency,
        **training_cost(outcome.efficiency.get("flops"), int(c.train.steps),
                        int(c.train.batch_size), backward_size),
        "train_seconds": None if trained is None else float(trained.seconds)}
  return outcome


# ---------------------------------------------------------------------------------------
# The report.


def _source_record(records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
  for record in records:
    if record.get("technique") == "dense" and record.get("source") is None:
      return record
  return None


def _top1_cell(record: Mapping[str, Any]) -> str:
  values = (record.get("accuracy") or {}).get("per_member_top1") or []
  mean, low, high = stats.t_interval(values) if len(values) > 1 else (
      (record.get("accuracy") or {}).get("top1"), None, None)
  if low is None:
    return fmt.accuracy(mean)
  return f"{100 * mean:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def _cie_cell(record: Mapping[str, Any]) -> str:
  hidden = record.get("hidden_costs") or {}
  count = hidden.get("cie_count")
  null = hidden.get("cie_null") or {}
  if count is None:
    return "–"
  kind = hidden.get("cie_kind", "")
  text = str(count) + (f" ({kind})" if kind and kind != "source" else "")
  if null:
    text += f"; null ≤{null['p95']:.0f}"
  return text


def headline_rows(records: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
  """Variant, params, FLOPs, weight bytes, latency (median, p10–p90), top-1 with its 95%
  t interval over members, worst class, worst group, CIE with its noise floor, churn."""
  batches = sorted({int(b) for r in records for b in (r["efficiency"].get("per_batch") or {})})
  batch = batches[-1] if batches else 1
  headers = ["Variant", "Params", "FLOPs", "Weight bytes", "Latency b=1 (p10–p90)",
             f"Latency b={batch} (p10–p90)", "Top-1 % [95% CI]", "Worst class",
             "Worst group", "CIE; null p95", "Churn"]
  rows = []
  for record, label in zip(records, write_lib.variant_labels(records)):
    e, a, h = record["efficiency"], record["accuracy"], record["hidden_costs"]
    at = (e.get("per_batch") or {}).get(str(batch)) or {}
    rows.append([label, fmt.count(e.get("params")), fmt.count(e.get("flops")),
                 fmt.count(e.get("weight_bytes")),
                 fmt.latency(e.get("latency_ms"), e.get("latency_p10_ms"),
                             e.get("latency_p90_ms")),
                 fmt.latency(at.get("latency_ms", at.get("concurrent_ms")),
                             at.get("latency_p10_ms", at.get("concurrent_p10_ms")),
                             at.get("latency_p90_ms", at.get("concurrent_p90_ms"))),
                 _top1_cell(record), fmt.accuracy(a.get("worst_class")),
                 fmt.accuracy(a.get("worst_group")), _cie_cell(record),
                 fmt.number(h.get("churn"))])
  return headers, rows


def plot_headline(records: Sequence[Mapping[str, Any]]):
  """Top-1 and worst-group accuracy against non-zero parameters, one colour per
  technique, marker area growing with the CIE count."""
  x_axis = "efficiency.nonzero_params"
  metrics = [m for m in ("accuracy.top1", "accuracy.worst_group", "accuracy.worst_class")
             if any(pareto_lib.as_number(pareto_lib.get_path(r, m)) is not None
                    for r in records)][:2]
  points = [r for r in records if pareto_lib.as_number(pareto_lib.get_path(r, x_axis))]
  if not metrics or not points:
    return None
  labels = dict(zip(map(id, records), write_lib.variant_labels(records)))
  techniques = sorted({str(r.get("technique")) for r in points})
  colors = {t: figures.color(i) for i, t in enumerate(techniques)}
  fig, axs = figures.new(len(metrics))
  for ax, metric in zip(axs, metrics):
    placed = []
    for record in points:
      vx = pareto_lib.as_number(pareto_lib.get_path(record, x_axis))
      vy = pareto_lib.as_number(pareto_lib.get_path(record, metric))
      if vy is None:
        continue
      cie = pareto_lib.as_number(pareto_lib.get_path(record, "hidden_costs.cie_count")) or 0
      ax.scatter(vx, vy, s=30 + 8 * cie, color=colors[str(record.get("technique"))],
                 alpha=0.75, edgecolors="k", linewidths=0.5, zorder=3)
      placed.append((record, vx, vy))
    front = pareto_lib.pareto_front(points, x_axis, metric)
    # Names only where they can be read: front points first, then from the top down; a
    # point too close to a named one keeps its colour (the report's tables name them all).
    on_front = {id(r) for r in front}
    placed.sort(key=lambda p: (id(p[0]) not in on_front, -p[2]))
    ax.set_xscale("log")
    ax.autoscale_view()
    pixels = ax.transData.transform([(vx, vy) for _, vx, vy in placed]) if placed else []
    for i in figures.spaced_labels(pixels, min_dx=70.0, min_dy=11.0):
      record, vx, vy = placed[i]
      ax.annotate(labels[id(record)], (vx, vy), fontsize=8, xytext=(4, -3),
                  textcoords="offset points")
    line = sorted((pareto_lib.as_number(pareto_lib.get_path(r, x_axis)),
                   pareto_lib.as_number(pareto_lib.get_path(r, metric))) for r in front)
    ax.plot([p[0] for p in line], [p[1] for p in line], "-", color="0.3", lw=1.2,
            drawstyle="steps-post", zorder=2)
    ax.set_xscale("log")
    ax.set_xlabel("non-zero parameters (log)")
    ax.set_ylabel(f"{write_lib.axis_label(metric)} (↑ better)")
  from matplotlib.lines import Line2D
  handles = [Line2D([], [], marker="o", ls="", color=colors[t]) for t in techniques]
  axs[0].legend(handles, techniques, loc="lower right")
  return fig


def plot_groups(records: Sequence[Mapping[str, Any]]):
  """Per variant: accuracy of each group and the CIE rate per group (who pays)."""
  rows = [(r, r["accuracy"].get("per_group"), (r.get("hidden_costs") or {}).get("cie_rate"))
          for r in records if isinstance((r.get("accuracy") or {}).get("per_group"), Mapping)]
  if not rows:
    return None
  labels = write_lib.variant_labels([r for r, _, _ in rows])
  groups = sorted({g for _, per_group, _ in rows for g in per_group})
  fig, axs = figures.new(2, width=max(10.8, 0.8 * len(rows) + 5))
  width = 0.8 / max(len(groups), 1)
  positions = np.arange(len(rows))
  for j, group in enumerate(groups):
    accuracy = [pareto_lib.as_number(pg.get(group)) for _, pg, _ in rows]
    rates = [pareto_lib.as_number((cr or {}).get(group)) for _, _, cr in rows]
    offset = positions + (j - (len(groups) - 1) / 2) * width
    name = group_label(group)
    axs[0].bar(offset, [np.nan if a is None else a for a in accuracy], width, label=name,
               color=figures.color(j))
    axs[1].bar(offset, [np.nan if c is None else c for c in rates], width, label=name,
               color=figures.color(j))
  for ax, title in zip(axs, ("top-1 per group (↑ better)", "CIE rate per group (↓ better)")):
    ax.set_xticks(positions)
    ax.set_xticklabels(labels, rotation=40, ha="right")
    ax.set_title(title)
    ax.legend()
  low = min((a for _, pg, _ in rows for a in pg.values() if pareto_lib.as_number(a) is not None),
            default=0.0)
  axs[0].set_ylim(max(0.0, low - 0.05), 1.0)
  return fig


def group_label(group: str) -> str:
  """'subgroup=1' -> 'rotated (subgroup=1)': the embedded set's group, named."""
  return {"subgroup=1": "rotated digits (subgroup=1)",
          "subgroup=0": "upright digits (subgroup=0)"}.get(group, group)


def _training_notes(records: Sequence[Mapping[str, Any]]) -> list[str]:
  """What the loss-prioritized and distilled variants changed in training, from their
  records (the held-out split, the rows backpropagated)."""
  out = []
  split = next(((r.get("study_fields") or {}).get("validation") for r in records
                if (r.get("study_fields") or {}).get("validation")), None)
  if split:
    out.append(f"The distilled students train on {split['train_examples']} training images; "
               f"{split['examples']} ({split['per_class']} per class, seed {split['seed']}) "
               "are held out as the validation split on which the robust student's "
               "exponentiated-gradient rounds measure per-class error; the test split is "
               "untouched.")
  for r in records:
    if r.get("technique") == "loss_prioritized":
      e = r.get("efficiency") or {}
      out.append(f"{r['variant']} changes training only (the source's model): "
                 f"{fmt.count(e.get('train_backward_examples'))} of "
                 f"{fmt.count(e.get('train_forward_examples'))} forward-passed rows per "
                 "member were backpropagated; its inference columns are the source's, and "
                 "what it saved in training is in the hardware lottery and the ledger.")
  return out


def sections(records: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[Any, ...]]:
  records = list(records)
  source = _source_record(records)
  blocks: list[tuple[Any, ...]] = [
      ("h2", "Headline"),
      ("p", "Every variant is a population of "
            f"{source['members'] if source else '?'} members; top-1 is the mean over "
            "members with its 95% t interval; CIEs count test examples whose modal label "
            f"changed against the dense source ({source['variant'] if source else '–'}), "
            "labelled 'derived' (the source's own members, pruned or quantized) or "
            "'retrained'; 'null p95' is the 95th percentile of CIE counts between random "
            "halves of the source population, so counts below it are noise. Worst class is "
            "the mean of each member's lowest per-class accuracy. Latency at batch 1 is "
            "mostly call overhead on this CPU; the larger batch shows what a smaller "
            "model saves. The divided members have no distinct augmented views here "
            "(digits MLP, no augmentation), unlike the paper's.")]
  blocks += [("p", text) for text in _training_notes(records)]
  headline = plot_headline(records)
  if headline is not None:
    blocks.append(("figure", "frontier_headline.png", headline,
                   "Top-1 and worst-group accuracy against non-zero parameters; marker area "
                   "grows with the CIE count against the dense source."))
  headers, rows = headline_rows(records)
  blocks.append(("table", headers, rows))
  claims = []
  if source is not None:
    claims = verdict_lib.against_reference(records, source)
    if claims:
      blocks += [("h2", "Verdicts against the dense source"),
                 ("p", f"{len(claims)} claims in one family, Holm-corrected; paired t where "
                       "the variant is the source's own members, Welch t otherwise; "
                       "differences in percentage points."),
                 verdict_lib.table(claims)]
      blocks += [("p", verdict_lib.sentence(c)) for c in claims
                 if c.verdict != stats.NO_DIFFERENCE and "top-1" in c.claim]
  blocks += hardware_lib.blocks(records)
  blocks += base.compile_level_blocks(records)
  table = ledger_lib.accountability_table(records, {c.claim: c.p_holm for c in claims})
  if table[2]:
    blocks += [("h2", "Accountability ledger"),
               ("p", "Per variant (Cooper, Levy and De Sa; PAPERS.md section 18): every knob "
                     "that traded accuracy for efficiency and its value, what it saved "
                     "against the dense source (reference / variant), and who paid: "
                     "top-1, worst-class and worst-group accuracy differences in points "
                     "with their 95% t interval over members and the Holm-corrected p of "
                     "the verdict family above; CIEs with their noise floor; churn beside "
                     "the source's; ε for DP-SGD. The same fields are machine-readable in "
                     "each record's `ledger` (with uncorrected p)."),
               table]
  groups = plot_groups(records)
  if groups is not None:
    blocks += [("h2", "Who pays"),
               ("figure", "frontier_groups.png", groups,
                "Accuracy and CIE rate of each group: the rotated digits are the "
                "under-represented subgroup (12% of every class) of digits_groups.")]
  return blocks
