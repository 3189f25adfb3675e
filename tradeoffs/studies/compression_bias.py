"""Compression bias (Hooker et al. 2019/2020; PAPERS.md sections 17 and 9).

A dense population and compressed populations of it — gradual magnitude pruning during
training (Zhu & Gupta, the `sparsity.masked` optax wrapper), one-shot magnitude pruning of
the trained dense population followed by a short fine-tune with the masks fixed, and
post-training int8/int4 fake quantization of the dense population — each scored on one
sheet: top-1 and the costs it hides (compression-identified exemplars, accuracy on CIEs vs
the rest, per-class Welch t-tests, per-group CIE rate and accuracy drop, group gap).

    from tradeoffs.studies import compression_bias
    pruned, masks = compression_bias.prune_population(state, 0.9, "global")
    quantized = compression_bias.quantize_population(state, 8, "per_channel")
    costs = compression_bias.compression_hidden_costs(dense_logits, comp_logits, labels,
                                                      groups, group_names)
    records = compression_bias.run(config, workdir)  # the whole study (experiments/...)

Formulations chosen where PAPERS.md is [mem] or silent:
  - CIE is the modal CIE against the dense population (ties to the smallest label, as
    scipy.stats.mode); the taxicab CIE takes the top k = round(taxicab_fraction * N)
    examples by the L1 distance of the label distributions (default 5% of the test set).
  - Per-class impact: Welch's t-test of per-class recall minus each member's own accuracy
    ('model' normalisation; 'population' reproduces gen_tstatistic.py's constant means);
    a class is "significantly hurt" when p < alpha and the statistic is positive.
  - The under-represented group is the smallest non-empty group (intersection of the group
    attributes) in the evaluation split unless named. "Compression hit it harder" is tested
    with Welch's t-test on the per-member accuracy gap (rest minus under-represented),
    dense members vs compressed members: the mean difference equals
    drop(under-represented) - drop(rest). Welch ignores the pairing of members (one-shot
    and quantized member i derive from dense member i), so it is conservative.
"""

from __future__ import annotations

import copy
import math
import os
import time
from typing import Any, Mapping, Sequence

import jax
import ml_collections
import numpy as np
from absl import logging

from tradeoffs import exemplars
from tradeoffs import fairness
from tradeoffs import quantization
from tradeoffs import sparsity
from tradeoffs import workdir as workdir_lib
from tradeoffs.report import records as records_lib
from tradeoffs.sparsity import distributions as distributions_lib
from tradeoffs.studies import common
from tradeoffs.train import experiment
from tradeoffs.train import optimizers
from tradeoffs.train import population as pop_lib
from tradeoffs.train import predictions as predictions_lib

STUDY = "compression_bias"
DENSE = "dense"
# Pruning methods by config key; the variant is named f"{prefix}_{sparsity}".
PRUNING_METHODS = {"gradual": "gmp", "one_shot": "oneshot"}
TTEST_NORMALIZATIONS = ("model", "population", "none")


# --------------------------------------------------------------------------------------
# Compressing a trained population (importable by other studies; signatures are stable).
# --------------------------------------------------------------------------------------


def population_masks(params: Any, sparsity_level: float, distribution: Any = "global", *,
                     filter_fn=None, keep_dense: Sequence[str] = ()) -> Any:
  """Per-member magnitude masks for population params with a leading member axis.

  Each member is pruned on its own weights (vmapped `sparsity.magnitude_masks`): exactly
  round((1 - sparsity) * n) prunable weights kept per member ('global') or per layer.
  """
  distributions_lib.check_sparsity(sparsity_level, "sparsity")
  distributions_lib.check_distribution(distribution)
  prune = lambda p: sparsity.magnitude_masks(  # noqa: E731
      p, sparsity_level, distribution, filter_fn=filter_fn, keep_dense=keep_dense)
  return jax.jit(jax.vmap(prune))(params)


def prune_population(state: pop_lib.TrainState, sparsity_level: float,
                     distribution: Any = "global", *, filter_fn=None,
                     keep_dense: Sequence[str] = ()) -> tuple[pop_lib.TrainState, Any]:
  """One-shot magnitude pruning of every member: (state with pruned params, masks).

  Prunable leaves follow `sparsity.default_filter` (>= 2-D, not norms) unless `filter_fn`
  says otherwise; pruned weights are exactly zero. Only params change (optimizer state and
  batch statistics are kept).
  """
  masks = population_masks(state.params, sparsity_level, distribution, filter_fn=filter_fn,
                           keep_dense=keep_dense)
  return state.replace(params=sparsity.apply_masks(state.params, masks)), masks


def check_quantization(bits: Any, granularity: Any, name: str = "bits") -> None:
  """ValueError unless bits is an int in [2, 8] and granularity a known one."""
  if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 8:
    raise ValueError(f"{name}={bits!r}: must be an integer in [2, 8] (8 = int8, 4 = int4)")
  if granularity not in quantization.GRANULARITIES:
    raise ValueError(f"granularity={granularity!r} is unknown; valid: "
                     f"{list(quantization.GRANULARITIES)}")


def quantize_population(state: pop_lib.TrainState, bits: int,
                        granularity: str = "per_channel", *, filter_fn=None,
                        keep_dense: Sequence[str] = ()) -> pop_lib.TrainState:
  """Post-training symmetric fake quantization of every member's weights (no retraining).

  Quantized leaves (default: >= 2-D, not norms) hold the dequantized values
  `code * scale`; biases and norms stay in float. See `quantization.quantize`.
  """
  check_quantization(bits, granularity)  # Fail before tracing.
  quantize = lambda p: quantization.quantize(  # noqa: E731
      p, bits, granularity, filter_fn=filter_fn, keep_dense=keep_dense).params
  return state.replace(params=jax.jit(jax.vmap(quantize))(state.params))


def quantized_bits_per_leaf(params: Any, bits: int, *, filter_fn=None,
                            keep_dense: Sequence[str] = ()) -> Any:
  """Bit widths per leaf for `efficiency.measure`: `bits` for quantized leaves, else None."""
  chosen = set(sparsity.prunable_names(params, filter_fn, keep_dense))
  return jax.tree_util.tree_map_with_path(
      lambda path, _: bits if sparsity.path_name(path) in chosen else None, params)


def measured_sparsity(params: Any, filter_fn=None) -> dict[str, float]:
  """Fraction of exact zeros among the prunable weights, per member (mean, min, max)."""
  summary = jax.vmap(lambda p: sparsity.summarize_sparsity(
      p, filter_fn or sparsity.default_filter)["total"]["sparsity"])(params)
  values = np.asarray(jax.device_get(summary), np.float64)
  return {"mean": float(values.mean()), "min": float(values.min()),
          "max": float(values.max())}


# --------------------------------------------------------------------------------------
# Hidden costs of a compressed population against its dense population.
# --------------------------------------------------------------------------------------


def _finite(value: Any) -> float | None:
  value = float(value)
  return value if math.isfinite(value) else None


def _group_ids(groups: np.ndarray | None, group_names: Sequence[str], num_examples: int):
  """(ids [N], names) for the intersection of the group attributes; None without groups."""
  if groups is None:
    return None, []
  groups = np.asarray(groups)
  if groups.ndim == 1:
    groups = groups[:, None]
  if groups.shape[0] != num_examples:
    raise ValueError(f"groups has {groups.shape[0]} examples, predictions have "
                     f"{num_examples}")
  if groups.shape[-1] == 0:
    return None, []
  inter = fairness.intersect(groups, None, tuple(group_names) or None)
  return np.asarray(inter.ids), list(inter.names)


def _pick_underrepresented(ids: np.ndarray, names: Sequence[str],
                           underrepresented: str | int | None) -> int:
  counts = np.bincount(ids, minlength=len(names))
  if underrepresented is None or underrepresented == "":
    present = np.flatnonzero(counts > 0)
    return int(present[np.argmin(counts[present])])
  if isinstance(underrepresented, (int, np.integer)):
    index = int(underrepresented)
  elif underrepresented in names:
    index = list(names).index(underrepresented)
  else:
    raise ValueError(f"underrepresented={underrepresented!r} is not a group; groups are "
                     f"{list(names)}")
  if not 0 <= index < len(names) or counts[index] == 0:
    raise ValueError(f"underrepresented={underrepresented!r}: group has no examples; "
                     f"groups with examples are {[n for n, c in zip(names, counts) if c]}")
  return index


def disparity_test(dense_correct: np.ndarray, comp_correct: np.ndarray,
                   under: np.ndarray, alpha: float = 0.05) -> dict[str, Any]:
  """Did compression widen the accuracy gap between the rest and the under-represented?

  Args:
    dense_correct, comp_correct: bool [members, examples] per-member correctness.
    under: bool [examples], the under-represented group.
    alpha: significance level of the two-sided Welch test.

  Returns:
    drops (dense - compressed accuracy, mean over members) in the group and in the rest,
    `excess_drop` = drop_under - drop_rest (= mean compressed gap - mean dense gap),
    Welch statistic and p-value on the per-member gaps, and `verdict`: 'harder' (the
    under-represented group lost significantly more), 'softer' (significantly less) or
    'no_significant_difference' (also when there are fewer than 2 members per side).
  """
  under = np.asarray(under, bool)
  if not under.any() or under.all():
    raise ValueError("under must select some but not all examples")

  def accuracies(correct):
    correct = np.asarray(correct, np.float64)
    return correct[:, under].mean(1), correct[:, ~under].mean(1)

  dense_under, dense_rest = accuracies(dense_correct)
  comp_under, comp_rest = accuracies(comp_correct)
  dense_gap, comp_gap = dense_rest - dense_under, comp_rest - comp_under
  out = {
      "dense_accuracy_under": float(dense_under.mean()),
      "dense_accuracy_rest": float(dense_rest.mean()),
      "compressed_accuracy_under": float(comp_under.mean()),
      "compressed_accuracy_rest": float(comp_rest.mean()),
      "drop_under": float(dense_under.mean() - comp_under.mean()),
      "drop_rest": float(dense_rest.mean() - comp_rest.mean()),
      "dense_gap": float(dense_gap.mean()),
      "compressed_gap": float(comp_gap.mean()),
      "excess_drop": float(comp_gap.mean() - dense_gap.mean()),
      "statistic": None, "pvalue": None, "alpha": float(alpha),
      "verdict": "no_significant_difference",
  }
  if len(dense_gap) >= 2 and len(comp_gap) >= 2:
    if np.ptp(dense_gap) == 0 and np.ptp(comp_gap) == 0:
      # Zero spread on both sides: the t statistic is undefined; equal means are no change.
      differs = comp_gap[0] != dense_gap[0]
      statistic, pvalue = (math.copysign(math.inf, comp_gap[0] - dense_gap[0]), 0.0) \
          if differs else (0.0, 1.0)
    else:
      test = exemplars.welch_ttest(comp_gap, dense_gap)
      statistic, pvalue = float(test.statistic), float(test.pvalue)
    out["statistic"], out["pvalue"] = _finite(statistic), float(pvalue)
    if pvalue < alpha:
      out["verdict"] = "harder" if statistic > 0 else "softer"
  return out


def compression_hidden_costs(dense_logits: np.ndarray, comp_logits: np.ndarray,
                             labels: np.ndarray, groups: np.ndarray | None = None,
                             group_names: Sequence[str] = (), *,
                             taxicab_k: int | None = None, alpha: float = 0.05,
                             normalize: str = "model",
                             underrepresented: str | int | None = None) -> dict[str, Any]:
  """The hidden costs of a compressed population against its dense population.

  Args:
    dense_logits, comp_logits: population scores [members, examples, classes] (member
      counts may differ) or predicted labels [members, examples].
    labels: true labels [examples].
    groups: group attributes [examples, G] (or [examples]); None for no groups.
    group_names: attribute names (length G).
    taxicab_k: examples taken as taxicab CIEs; default 5% of the examples (at least 1).
    alpha: significance level of the per-class and group-disparity t-tests.
    normalize: per-class t-test normalisation, one of 'model', 'population', 'none'.
    underrepresented: group name or index; default the smallest non-empty group.

  Returns:
    A JSON-able dict: cie_count, cie_fraction, taxicab (score summary, top-k overlap with
    the modal CIEs), cie_accuracy (dense and compressed on CIE vs non-CIE), per_class_ttest
    (classes significantly hurt at p < alpha, statistics, p-values), and with groups:
    per_group (count, cie_count, cie_rate, accuracies, accuracy_drop per group),
    group_gap (dense, compressed, change), underrepresented (name, share of examples and
    of CIEs) and disparity (`disparity_test`).
  """
  if normalize not in TTEST_NORMALIZATIONS:
    raise ValueError(f"normalize={normalize!r} is unknown; valid: {list(TTEST_NORMALIZATIONS)}")
  if not 0.0 < float(alpha) < 1.0:
    raise ValueError(f"alpha={alpha!r} must be in (0, 1)")
  labels = np.asarray(labels)
  dense_pred = np.asarray(exemplars.predicted_labels(np.asarray(dense_logits),
                                                     argname="dense_logits"))
  comp_pred = np.asarray(exemplars.predicted_labels(np.asarray(comp_logits),
                                                    argname="comp_logits"))
  num_examples = labels.shape[0]
  if dense_pred.shape[1] != num_examples or comp_pred.shape[1] != num_examples:
    raise ValueError(f"dense_logits {np.shape(dense_logits)}, comp_logits "
                     f"{np.shape(comp_logits)} and labels {labels.shape} disagree on the "
                     "number of examples")
  num_classes = int(max(np.shape(dense_logits)[-1] if np.ndim(dense_logits) == 3 else 0,
                        labels.max() + 1, dense_pred.max() + 1, comp_pred.max() + 1))
  if taxicab_k is None:
    taxicab_k = max(1, int(round(0.05 * num_examples)))
  if not 0 <= int(taxicab_k) <= num_examples:
    raise ValueError(f"taxicab_k={taxicab_k!r} must be in [0, {num_examples}]")

  is_cie = np.asarray(exemplars.cie(dense_pred, comp_pred, num_classes))
  taxicab = exemplars.taxicab_cie(dense_pred, comp_pred, int(taxicab_k), num_classes)
  scores = np.asarray(taxicab.scores, np.float64)
  top = np.asarray(taxicab.is_cie)
  out: dict[str, Any] = {
      "cie_count": int(is_cie.sum()),
      "cie_fraction": float(is_cie.mean()),
      "taxicab": {
          "k": int(taxicab_k),
          "mean": float(scores.mean()), "median": float(np.median(scores)),
          "max": float(scores.max()),
          "topk_mean": float(scores[top].mean()) if top.any() else None,
          "topk_min": float(scores[top].min()) if top.any() else None,
          "nonzero_fraction": float((scores > 0).mean()),
          "topk_modal_overlap": (float(is_cie[top].mean()) if top.any() else None),
      },
  }
  split = {}
  for name, pred in (("dense", dense_pred), ("compressed", comp_pred)):
    result = exemplars.accuracy_split(pred, labels, is_cie, num_classes)
    split[name] = {k: (int(v) if k.endswith("_count") else _finite(v))
                   for k, v in jax.device_get(result).items()}
  out["cie_accuracy"] = split

  if dense_pred.shape[0] >= 2 and comp_pred.shape[0] >= 2:
    test = jax.device_get(exemplars.per_class_ttest(dense_pred, comp_pred, labels,
                                                    num_classes, normalize=normalize))
    pvalues = np.asarray(test.pvalue, np.float64)
    statistic = np.asarray(test.statistic, np.float64)
    with np.errstate(invalid="ignore"):
      significant = np.nan_to_num(pvalues, nan=1.0) < alpha
    hurt = significant & (statistic > 0)
    out["per_class_ttest"] = {
        "alpha": float(alpha), "normalize": normalize,
        "significant_hurt": int(hurt.sum()),
        "significant_helped": int((significant & (statistic < 0)).sum()),
        "classes_hurt": np.flatnonzero(hurt).tolist(),
        "statistic": [_finite(v) for v in statistic],
        "pvalue": [_finite(v) for v in pvalues],
        "dense_recall": [_finite(v) for v in test.dense_mean_recall],
        "compressed_recall": [_finite(v) for v in test.compressed_mean_recall],
    }
  else:
    out["per_class_ttest"] = None  # Needs >= 2 members per population.

  ids, names = _group_ids(groups, group_names, num_examples)
  if ids is None:
    return out
  breakdown = jax.device_get(exemplars.group_breakdown(
      dense_pred, comp_pred, labels, ids, num_groups=len(names), is_cie=is_cie,
      num_classes=num_classes))
  out["per_group"] = {
      name: {key: (int(values[g]) if key in ("count", "cie_count") else _finite(values[g]))
             for key, values in breakdown.items()}
      for g, name in enumerate(names)}
  dense_acc = np.asarray(breakdown["dense_accuracy"], np.float64)
  comp_acc = np.asarray(breakdown["compressed_accuracy"], np.float64)
  present = np.asarray(breakdown["count"]) > 0
  dense_gap = float(np.ptp(dense_acc[present])) if present.any() else None
  comp_gap = float(np.ptp(comp_acc[present])) if present.any() else None
  out["group_gap"] = {"dense": dense_gap, "compressed": comp_gap,
                      "change": (None if dense_gap is None else comp_gap - dense_gap)}
  under_index = _pick_underrepresented(ids, names, underrepresented)
  under = ids == under_index
  out["underrepresented"] = {
      "group": names[under_index],
      "share_of_examples": float(under.mean()),
      "share_of_cie": float(is_cie[under].sum() / is_cie.sum()) if is_cie.any() else None,
      "share_of_taxicab_topk": float(top[under].sum() / top.sum()) if top.any() else None,
  }
  if 0 < under.sum() < num_examples:
    out["disparity"] = disparity_test(dense_pred == labels, comp_pred == labels, under, alpha)
  return out


# --------------------------------------------------------------------------------------
# The study: config validation, variants, records.
# --------------------------------------------------------------------------------------


def _get(config: Any, key: str, default: Any = None) -> Any:
  value = config.get(key, default) if hasattr(config, "get") else getattr(config, key, default)
  return default if value is None else value


def variant_name(method: str, value: float | int) -> str:
  """'gmp_0.9', 'oneshot_0.5', 'int8' (names are directory- and file-safe)."""
  if method == "quantize":
    return f"int{int(value)}"
  return f"{PRUNING_METHODS[method]}_{float(value):g}"


def planned_variants(config: Any) -> list[dict[str, Any]]:
  """The study's variants in report order: dense, pruned (per method, sparsity), quantized."""
  comp = config.compression
  out = [{"variant": DENSE, "method": "dense", "sparsity": 0.0, "bits": 32}]
  for method in comp.methods:
    for level in comp.sparsities:
      out.append({"variant": variant_name(method, level), "method": method,
                  "sparsity": float(level), "bits": 32})
  for bits in comp.quantization_bits:
    out.append({"variant": variant_name("quantize", bits), "method": "quantize",
                "sparsity": 0.0, "bits": int(bits)})
  return out


def validate_config(config: Any, device_count: int | None = None) -> None:
  """Checks the whole study config before any data loading or compilation (ValueError)."""
  experiment.validate(config, device_count)
  comp = config.compression
  methods = tuple(comp.methods)
  unknown = [m for m in methods if m not in PRUNING_METHODS]
  if unknown or len(set(methods)) != len(methods):
    raise ValueError(f"--config.compression.methods={methods!r}: each must appear once and "
                     f"be one of {sorted(PRUNING_METHODS)}")
  levels = tuple(comp.sparsities)
  for level in levels:
    if isinstance(level, bool) or not isinstance(level, (int, float)) or \
        not 0.0 <= float(level) < 1.0:
      raise ValueError(f"--config.compression.sparsities={levels!r}: every sparsity must be "
                       f"a number in [0, 1), got {level!r}")
  if methods and not levels:
    raise ValueError(f"--config.compression.sparsities is empty but methods={methods!r} "
                     "need at least one sparsity in [0, 1)")
  if len({f"{float(s):g}" for s in levels}) != len(levels):
    raise ValueError(f"--config.compression.sparsities={levels!r} has duplicates")
  distribution = comp.distribution
  if isinstance(distribution, Mapping) or hasattr(distribution, "to_dict"):
    distribution = dict(distribution)
    try:
      distributions_lib.check_distribution(distribution)
    except ValueError as e:
      raise ValueError(f"--config.compression.distribution: {e}") from None
  elif distribution not in distributions_lib.names():
    raise ValueError(f"--config.compression.distribution={distribution!r} is unknown; choose "
                     f"from {distributions_lib.names()} (or a mapping of layer name to "
                     "sparsity)")
  steps = int(config.train.steps)
  if "gradual" in methods:
    g = comp.gradual
    begin, end, frequency = int(g.begin_step), int(g.end_step), int(g.frequency)
    if begin < 0:
      raise ValueError(f"--config.compression.gradual.begin_step={begin} must be >= 0")
    if end < begin:
      raise ValueError(f"--config.compression.gradual.end_step={end} is before begin_step="
                       f"{begin}: the schedule must end at or after it begins")
    if end >= steps:
      raise ValueError(f"--config.compression.gradual.end_step={end} must be < "
                       f"--config.train.steps={steps} (the last update is step {steps - 1}), "
                       "or the final sparsity is never reached")
    if frequency < 1:
      raise ValueError(f"--config.compression.gradual.frequency={frequency} must be >= 1")
    initial = float(g.initial_sparsity)
    if not 0.0 <= initial <= min(float(s) for s in levels):
      raise ValueError(f"--config.compression.gradual.initial_sparsity={initial} must be in "
                       f"[0, min(sparsities)={min(levels)}]")
  if "one_shot" in methods:
    o = comp.one_shot
    if int(o.finetune_steps) < 1:
      raise ValueError(f"--config.compression.one_shot.finetune_steps={o.finetune_steps} "
                       "must be >= 1")
    if float(o.learning_rate) < 0:
      raise ValueError(f"--config.compression.one_shot.learning_rate={o.learning_rate} must "
                       "be >= 0 (0 = the optimizer's learning rate)")
  bits = tuple(comp.quantization_bits)
  for b in bits:
    check_quantization(b, comp.granularity, name="--config.compression.quantization_bits "
                                                 "entry")
  if len(set(bits)) != len(bits):
    raise ValueError(f"--config.compression.quantization_bits={bits!r} has duplicates")
  if comp.granularity not in quantization.GRANULARITIES:
    raise ValueError(f"--config.compression.granularity={comp.granularity!r} is unknown; "
                     f"choose from {list(quantization.GRANULARITIES)}")
  a = config.analysis
  if not 0.0 <= float(a.taxicab_fraction) <= 1.0:
    raise ValueError(f"--config.analysis.taxicab_fraction={a.taxicab_fraction} must be in "
                     "[0, 1]")
  if not 0.0 < float(a.alpha) < 1.0:
    raise ValueError(f"--config.analysis.alpha={a.alpha} must be in (0, 1)")
  if a.ttest_normalize not in TTEST_NORMALIZATIONS:
    raise ValueError(f"--config.analysis.ttest_normalize={a.ttest_normalize!r} is unknown; "
                     f"choose from {list(TTEST_NORMALIZATIONS)}")
  if int(a.audit_max_images) < 0:
    raise ValueError(f"--config.analysis.audit_max_images={a.audit_max_images} must be >= 0")
  names = [v["variant"] for v in planned_variants(config)]
  if len(names) < 2:
    raise ValueError("the study has no compressed variant: set --config.compression.methods "
                     "and sparsities, or --config.compression.quantization_bits")
  if a.audit_variant and a.audit_variant not in names[1:]:
    raise ValueError(f"--config.analysis.audit_variant={a.audit_variant!r} is not a "
                     f"compressed variant of this study; choose from {names[1:]} or '' (the "
                     "most compressed)")
  if int(config.efficiency.repeats) < 1:
    raise ValueError(f"--config.efficiency.repeats={config.efficiency.repeats} must be >= 1")


def _distribution(config: Any) -> Any:
  d = config.compression.distribution
  return dict(d) if hasattr(d, "to_dict") or isinstance(d, Mapping) else d


def _unlocked_copy(config: Any) -> ml_collections.ConfigDict:
  if hasattr(config, "to_dict"):
    return ml_collections.ConfigDict(config.to_dict())
  return copy.deepcopy(config)


def finetune_config(config: Any) -> ml_collections.ConfigDict:
  """The one-shot fine-tune's training config: finetune_steps, optional learning rate."""
  ft = _unlocked_copy(config)
  o = config.compression.one_shot
  ft.train.steps = int(o.finetune_steps)
  if float(o.learning_rate) > 0:
    ft.optimizer.learning_rate = float(o.learning_rate)
  ft.optimizer.warmup_steps = min(int(ft.optimizer.get("warmup_steps", 0)), ft.train.steps)
  return ft


def compression_ratio(params: Any, bits_per_leaf: Any = None) -> float:
  """float32 bits of the dense params / bits of the non-zero weights as stored compressed.

  Pruned weights count as free (index overhead ignored); quantized leaves count every
  entry at their bit width (codes are stored densely). One member's params.
  """
  leaves = jax.tree.leaves(params)
  bits = (jax.tree.leaves(bits_per_leaf, is_leaf=lambda x: x is None)
          if bits_per_leaf is not None else [None] * len(leaves))
  dense = sum(int(np.prod(np.shape(leaf))) * 32 for leaf in leaves)
  stored = 0
  for leaf, b in zip(leaves, bits):
    leaf = np.asarray(leaf)
    stored += leaf.size * int(b) if b is not None else int(np.count_nonzero(leaf)) * 32
  return float(dense / max(stored, 1))


def _save_params(workdir: str, variant: str, params: Any) -> str:
  if workdir_lib.is_writer():
    os.makedirs(os.path.join(workdir, "final_params"), exist_ok=True)
  return predictions_lib.save_params(workdir, jax.device_get(params),
                                     name=os.path.join("final_params", f"{variant}.npz"))


def _example_images(split: Any, limit: int = 256) -> np.ndarray:
  return np.asarray(split.images[:limit])


def _score(config: Any, workdir: str, spec: Mapping[str, Any], state: pop_lib.TrainState,
           logits: np.ndarray, dense_logits: np.ndarray, dataset: Any, env: Mapping[str, Any],
           seconds: float, bits_per_leaf: Any = None) -> dict[str, Any]:
  """Saves predictions and builds the variant's trade-off record."""
  test = dataset.test
  common.save_variant_predictions(workdir, spec["variant"], logits, test)
  accuracy = common.accuracy_summary(logits, test.labels, test.groups, test.group_names)
  a = config.analysis
  hidden = compression_hidden_costs(
      dense_logits, logits, test.labels, test.groups, test.group_names,
      taxicab_k=int(round(float(a.taxicab_fraction) * len(test.labels))),
      alpha=float(a.alpha), normalize=a.ttest_normalize,
      underrepresented=a.underrepresented_group or None)
  hidden["per_class_std"] = accuracy["per_class_std"]
  member0 = common.member_params(state)["params"]
  efficiency = common.measure_member(state, _example_images(test), bits_per_leaf=bits_per_leaf,
                                     repeats=int(config.efficiency.repeats),
                                     time_it=bool(config.efficiency.time_it))
  extra: dict[str, Any] = {"method": spec["method"], "sparsity": spec["sparsity"],
                           "bits": spec["bits"], "seconds": float(seconds),
                           "compression_ratio": compression_ratio(member0, bits_per_leaf),
                           "seeds": env.get("seeds")}
  if spec["method"] in PRUNING_METHODS:
    extra["measured_sparsity"] = measured_sparsity(state.params)
    distribution = _distribution(config)
    extra["distribution"] = distribution if isinstance(distribution, str) else "custom"
  if spec["method"] == "quantize":
    efficiency["packed_bytes"] = quantization.quantized_bytes(
        member0, spec["bits"], config.compression.granularity)
    efficiency.setdefault("notes", {})["latency_ms"] = (
        "fake quantization runs in float32: latency is that of the dense model")
    extra["granularity"] = config.compression.granularity
  return records_lib.make_record(
      study=STUDY, variant=spec["variant"], efficiency=efficiency, accuracy=accuracy,
      hidden_costs=hidden, members=int(logits.shape[0]), config=config, environment=env,
      **extra)


def run(config: Any, workdir: str) -> list[dict[str, Any]] | None:
  """Runs (or resumes) the whole study; returns all records, or None when preempted.

  Variants already in records.jsonl are skipped; a variant interrupted mid-training
  resumes from workdir/checkpoints/<variant>.
  """
  validate_config(config)
  mesh, env = experiment.prepare_workdir(config, workdir)
  done = common.recorded_variants(workdir)
  plan = planned_variants(config)
  pending = [spec for spec in plan if spec["variant"] not in done]
  logging.info("[%s] %d variants, %d to run: %s", STUDY, len(plan), len(pending),
               [spec["variant"] for spec in pending])
  images = None
  if pending:
    dataset = experiment.load_dataset(config)
    images = dataset.test.images
    writer = workdir_lib.MetricWriter(workdir)
    try:
      if not _run_variants(config, workdir, pending, dataset, env, writer):
        return None
    finally:
      writer.close()
  records = records_lib.load_records(workdir)
  write_study_report(workdir, records, config, images)
  return records


def _run_variants(config: Any, workdir: str, pending: Sequence[Mapping[str, Any]],
                  dataset: Any, env: Mapping[str, Any], writer: Any) -> bool:
  """Trains/compresses and records the pending variants; False when preempted."""
  eval_batch = int(_get(config.eval, "batch_size", 512))
  save_params = bool(_get(config.eval, "save_params", True))
  needs_dense_state = any(spec["method"] in ("dense", "one_shot", "quantize")
                          for spec in pending)
  dense_state, dense_mesh = None, None
  if needs_dense_state:
    logging.info("[%s] variant dense (%d members)", STUDY, int(config.population.members))
    dense_state, dense_mesh, seconds, preempted = common.train_variant(
        config, workdir, DENSE, dataset=dataset, writer=writer)
    if preempted:
      return False
    if pending[0]["variant"] == DENSE:
      logits, _ = experiment.evaluate(dense_state, dataset.test, dense_mesh, eval_batch)
      if save_params:
        _save_params(workdir, DENSE, dense_state.params)
      record = _score(config, workdir, pending[0], dense_state, logits, logits, dataset, env,
                      seconds)
      records_lib.append_records(workdir, record)
      logging.info("[%s] dense: top-1 %.4f", STUDY, record["accuracy"]["top1"])
  dense_logits = predictions_lib.load(workdir, DENSE).logits
  steps = int(config.train.steps)
  comp = config.compression
  for spec in pending:
    method, variant = spec["method"], spec["variant"]
    if method == "dense":
      continue
    logging.info("[%s] variant %s", STUDY, variant)
    if method == "gradual":
      g = comp.gradual
      schedule = sparsity.gradual(spec["sparsity"], int(g.begin_step), int(g.end_step),
                                  int(g.frequency), float(g.initial_sparsity))
      tx = sparsity.masked(optimizers.make_optimizer(config.optimizer, steps), schedule,
                           _distribution(config))
      state, mesh, seconds, preempted = common.train_variant(
          config, workdir, variant, dataset=dataset, writer=writer, tx=tx)
      bits = None
    elif method == "one_shot":
      start = time.time()
      pruned, masks = prune_population(dense_state, spec["sparsity"], _distribution(config))
      ft = finetune_config(config)
      tx = sparsity.masked(optimizers.make_optimizer(ft.optimizer, int(ft.train.steps)),
                           None)

      def from_pruned(fresh, pruned=pruned, masks=masks):
        return fresh.replace(params=pruned.params, batch_stats=pruned.batch_stats,
                             opt_state=sparsity.replace_masks(fresh.opt_state, masks))

      state, mesh, seconds, preempted = common.train_variant(
          ft, workdir, variant, dataset=dataset, writer=writer, tx=tx, state_fn=from_pruned)
      seconds += time.time() - start
      bits = None
    else:  # Post-training quantization of the dense population.
      start = time.time()
      state = quantize_population(dense_state, spec["bits"], comp.granularity)
      mesh, preempted = dense_mesh, False
      bits = quantized_bits_per_leaf(common.member_params(state)["params"], spec["bits"])
      seconds = time.time() - start
    if preempted:
      return False
    logits, _ = experiment.evaluate(state, dataset.test, mesh, eval_batch)
    if save_params and method in PRUNING_METHODS:
      _save_params(workdir, variant, state.params)
    record = _score(config, workdir, spec, state, logits, dense_logits, dataset, env, seconds,
                    bits_per_leaf=bits)
    records_lib.append_records(workdir, record)
    hidden = record["hidden_costs"]
    logging.info("[%s] %s: top-1 %.4f, CIE %d, group drops %s", STUDY, variant,
                 record["accuracy"]["top1"], hidden["cie_count"],
                 {k: round(v["accuracy_drop"], 4) for k, v in hidden.get("per_group",
                                                                           {}).items()})
  return True


# --------------------------------------------------------------------------------------
# The report: write_report's frontier and table, plus the study's plots and verdict.
# --------------------------------------------------------------------------------------


def _pct(value: float | None) -> str:
  return "–" if value is None else f"{100 * value:.1f}%"


def _pp(value: float | None) -> str:
  return "–" if value is None else f"{100 * value:+.1f} pp"


def _new_figure(panels: int):
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure
  figure = Figure(figsize=(4.6 * panels, 3.6), dpi=100)
  FigureCanvasAgg(figure)
  return figure, [figure.add_subplot(1, panels, i + 1) for i in range(panels)]


def _save(figure, path: str) -> str:
  figure.tight_layout()
  figure.savefig(path, format="png")
  return path


def _by_method(records: Sequence[Mapping[str, Any]]):
  dense = [r for r in records if r.get("method") == "dense"]
  pruned = {m: sorted([r for r in records if r.get("method") == m],
                      key=lambda r: r["sparsity"]) for m in PRUNING_METHODS}
  quantized = sorted([r for r in records if r.get("method") == "quantize"],
                     key=lambda r: -r["bits"])
  return dense, {m: rs for m, rs in pruned.items() if rs}, quantized


def _plot_metric(path: str, records, value_fn, ylabel: str, title: str,
                 error_fn=None) -> str | None:
  """Left: the metric against sparsity per pruning method (dense at 0); right: vs bits."""
  dense, pruned, quantized = _by_method(records)
  panels = int(bool(pruned)) + int(bool(quantized))
  if not panels or not dense:
    return None
  figure, axes = _new_figure(panels)
  ref = dense[0]
  index = 0
  if pruned:
    ax = axes[index]
    index += 1
    for method, rs in pruned.items():
      chain = [ref] + rs
      xs = [r["sparsity"] for r in chain]
      ys = [value_fn(r) for r in chain]
      errs = [error_fn(r) for r in chain] if error_fn else None
      ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, label=PRUNING_METHODS[method])
    ax.set_xlabel("sparsity (fraction of prunable weights removed)")
    ax.set_ylabel(ylabel)
    ax.set_title("magnitude pruning", fontsize=9)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
  if quantized:
    ax = axes[index]
    chain = [ref] + quantized
    xs = [r["bits"] for r in chain]
    ys = [value_fn(r) for r in chain]
    errs = [error_fn(r) for r in chain] if error_fn else None
    ax.errorbar(xs, ys, yerr=errs, marker="s", capsize=3, color="tab:red", label="PTQ")
    ax.set_xscale("log", base=2)
    ax.set_xticks(xs)
    ax.set_xticklabels([str(x) for x in xs])
    ax.invert_xaxis()
    ax.set_xlabel("weight bits (32 = dense)")
    ax.set_ylabel(ylabel)
    ax.set_title("post-training quantization", fontsize=9)
    ax.grid(alpha=0.3)
  figure.suptitle(title, fontsize=10)
  return _save(figure, path)


def _plot_group_drops(path: str, records, group_names: Sequence[str], under: str | None):
  dense, pruned, quantized = _by_method(records)
  panels = int(bool(pruned)) + int(bool(quantized))
  if not panels or not dense or not group_names:
    return None
  figure, axes = _new_figure(panels)
  drop = lambda r, g: r["hidden_costs"]["per_group"].get(g, {}).get("accuracy_drop")  # noqa
  index = 0
  styles = ["-", "--", ":", "-."]
  if pruned:
    ax = axes[index]
    index += 1
    for j, (method, rs) in enumerate(pruned.items()):
      chain = dense[:1] + rs
      for k, g in enumerate(group_names):
        ax.plot([r["sparsity"] for r in chain], [100 * (drop(r, g) or 0.0) for r in chain],
                marker="o", ls=styles[j % 4], color=f"C{k}",
                lw=2.2 if g == under else 1.2,
                label=f"{PRUNING_METHODS[method]} {g}" + (" (under-rep.)" if g == under
                                                        else ""))
    ax.set_xlabel("sparsity")
    ax.set_title("magnitude pruning", fontsize=9)
  if quantized:
    ax = axes[index]
    chain = dense[:1] + quantized
    for k, g in enumerate(group_names):
      ax.plot([r["bits"] for r in chain], [100 * (drop(r, g) or 0.0) for r in chain],
              marker="s", color=f"C{k}", lw=2.2 if g == under else 1.2,
              label=g + (" (under-rep.)" if g == under else ""))
    ax.set_xscale("log", base=2)
    ax.set_xticks([r["bits"] for r in chain])
    ax.set_xticklabels([str(r["bits"]) for r in chain])
    ax.invert_xaxis()
    ax.set_xlabel("weight bits (32 = dense)")
    ax.set_title("post-training quantization", fontsize=9)
  for ax in axes:
    ax.axhline(0, color="0.5", lw=0.8)
    ax.set_ylabel("accuracy drop vs dense (pp)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=6)
  figure.suptitle("Per-group accuracy drop (mean over members)", fontsize=10)
  return _save(figure, path)


def _plot_cie_accuracy(path: str, records) -> str | None:
  compressed = [r for r in records if r.get("method") != "dense"]
  if not compressed:
    return None
  figure, (ax,) = _new_figure(1)
  figure.set_size_inches(max(6.0, 0.9 * len(compressed) + 2), 3.8)
  width = 0.2
  series = (("dense", "cie_accuracy", "dense on CIE"),
            ("compressed", "cie_accuracy", "compressed on CIE"),
            ("dense", "non_cie_accuracy", "dense on the rest"),
            ("compressed", "non_cie_accuracy", "compressed on the rest"))
  xs = np.arange(len(compressed))
  for j, (who, key, label) in enumerate(series):
    values = [r["hidden_costs"]["cie_accuracy"][who][key] for r in compressed]
    ax.bar(xs + (j - 1.5) * width, [np.nan if v is None else 100 * v for v in values],
           width, label=label, color=["#1f77b4", "#ff7f0e", "#aec7e8", "#ffbb78"][j])
  ax.set_xticks(xs)
  ax.set_xticklabels([f"{r['variant']}\n({r['hidden_costs']['cie_count']} CIE)"
                      for r in compressed], fontsize=7)
  ax.set_ylabel("accuracy (%), mean over members")
  ax.set_ylim(0, 118)  # Room for the legend above the bars.
  ax.set_title("Accuracy on compression-identified exemplars vs the rest", fontsize=10)
  ax.legend(fontsize=7, ncol=2)
  ax.grid(alpha=0.3, axis="y")
  return _save(figure, path)


def most_compressed(records: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
  """The compressed record with the highest compression ratio (first one on ties)."""
  compressed = [r for r in records if r.get("method") not in (None, "dense")]
  if not compressed:
    return None
  best = max(r.get("compression_ratio") or 0.0 for r in compressed)
  return next(r for r in compressed if (r.get("compression_ratio") or 0.0) == best)


def write_audit(workdir: str, variant: str, max_images: int = 64,
                images: np.ndarray | None = None) -> dict[str, Any]:
  """cie_audit.png (CIE images with both modal labels) and cie_ids.json for `variant`.

  Reads predictions/dense.npz and predictions/<variant>.npz; `images` are the test images
  in the same order (the sheet is skipped without them).
  """
  dense = predictions_lib.load(workdir, DENSE)
  comp = predictions_lib.load(workdir, variant)
  dense_modal = np.asarray(exemplars.modal_labels(dense.logits))
  comp_modal = np.asarray(exemplars.modal_labels(comp.logits))
  scores = np.asarray(exemplars.taxicab_scores(dense.logits, comp.logits))
  is_cie = dense_modal != comp_modal
  cie_groups = {}
  if dense.groups.size and dense.groups.shape[-1]:
    ids, names = _group_ids(dense.groups, dense.group_names, len(dense.labels))
    cie_groups = {names[g]: int(np.sum(is_cie & (ids == g))) for g in range(len(names))}
  json_path = os.path.join(workdir, "cie_ids.json")
  examples = exemplars.write_cie_list(
      json_path, dense.ids, is_cie=is_cie, scores=scores, dense_modal=dense_modal,
      comp_modal=comp_modal, labels=dense.labels, variant=variant, reference=DENSE,
      dense_members=int(dense.logits.shape[0]), compressed_members=int(comp.logits.shape[0]),
      cie_per_group=cie_groups, order="taxicab score, highest first")
  out = {"json": json_path, "count": len(examples), "png": None}
  if images is not None:
    png_path = os.path.join(workdir, "cie_audit.png")
    exemplars.audit_sheet(png_path, images, dense.ids, dense_modal, comp_modal, dense.labels,
                          max_images=max_images, is_cie=is_cie, scores=scores,
                          title=f"CIEs of {variant} vs dense ({len(examples)} in all; "
                                "highest taxicab score first)")
    out["png"] = png_path
  return out


def _seed_text(records: Sequence[Mapping[str, Any]]) -> str:
  seeds = next((r.get("seeds") for r in records if r.get("seeds")), None)
  if not seeds:
    return "seeds not recorded"
  parts = []
  for source, values in seeds.items():
    values = list(values)
    if len(set(values)) == 1:
      parts.append(f"{source} {values[0]} (shared)")
    elif values == list(range(values[0], values[0] + len(values))):
      parts.append(f"{source} {values[0]}..{values[-1]}")
    else:
      parts.append(f"{source} {values}")
  return "per-member seeds: " + ", ".join(parts)


def verdict_blocks(records: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
  """The study section: who paid for compression, in plain words, with the numbers."""
  records = list(records)
  dense = next((r for r in records if r.get("method") == "dense"), None)
  compressed = [r for r in records if r.get("method") not in (None, "dense")]
  blocks: list[tuple[Any, ...]] = [("h2", "Compression bias: who paid")]
  if dense is None or not compressed:
    blocks.append(("p", "No dense/compressed pair was recorded yet."))
    return blocks
  config = dense.get("config") or {}
  dataset = (config.get("dataset") or {}).get("name", "?")
  model = (config.get("model") or {}).get("name", "?")
  blocks.append(("p", f"Dataset {dataset}, model {model}, {dense['members']} members per "
                      f"population; {_seed_text(records)}. Pruned and quantized populations "
                      "are compared with the dense population: CIEs are test examples whose "
                      "modal label (over members) changed."))
  under = next((r["hidden_costs"].get("underrepresented") for r in compressed
                if r["hidden_costs"].get("underrepresented")), None)
  rows = []
  harder, softer, neither = [], [], []
  for r in compressed:
    h = r["hidden_costs"]
    d = h.get("disparity") or {}
    t = h.get("per_class_ttest") or {}
    u = h.get("underrepresented") or {}
    delta = r["accuracy"]["top1"] - dense["accuracy"]["top1"]
    p = d.get("pvalue")
    rows.append([r["variant"], _pct(r["accuracy"]["top1"]), _pp(delta), str(h["cie_count"]),
                 _pct(u.get("share_of_cie")), _pp(d.get("drop_under")),
                 _pp(d.get("drop_rest")), _pp(d.get("excess_drop")),
                 "–" if p is None else f"{p:.3g}", d.get("verdict", "–"),
                 str(t.get("significant_hurt", "–"))])
    text = (f"{r['variant']} (drop {_pp(d.get('drop_under'))} vs {_pp(d.get('drop_rest'))} "
            f"for the rest, p={'–' if p is None else f'{p:.3g}'})")
    {"harder": harder, "softer": softer}.get(d.get("verdict"), neither).append(text)
  if under is not None:
    blocks.append(("p", f"Under-represented group: {under['group']} "
                        f"({_pct(under['share_of_examples'])} of the test examples)."))
  headers = ["Variant", "Top-1", "Δ top-1", "CIE", "CIE in under-rep.", "Drop under-rep.",
             "Drop rest", "Excess drop", "p (Welch)", "Verdict", "Classes hurt"]
  blocks.append(("table", headers, rows))
  alpha = next(((r["hidden_costs"].get("disparity") or {}).get("alpha") for r in compressed
                if r["hidden_costs"].get("disparity")), 0.05)
  if under is None:
    blocks.append(("p", "The dataset has no group attributes, so the question of who paid is "
                        "answered per class only (column 'Classes hurt': classes whose recall "
                        f"fell significantly more than the top line, Welch p < {alpha})."))
    return blocks
  answer = []
  if harder:
    answer.append(f"Yes: compression hit the under-represented group ({under['group']}) "
                  f"significantly harder (Welch t-test on per-member group gaps, p < {alpha}) "
                  f"in {len(harder)} of {len(compressed)} compressed variants: "
                  + "; ".join(harder) + ".")
  else:
    answer.append(f"No: at this scale, compression did not hit the under-represented group "
                  f"({under['group']}) significantly harder in any of the {len(compressed)} "
                  f"compressed variants (Welch t-test on per-member group gaps, p < {alpha}).")
  if softer:
    answer.append("It was hit significantly less than the rest in: " + "; ".join(softer)
                  + ".")
  if neither and harder:
    answer.append("No significant difference in: " + "; ".join(neither) + ".")
  blocks.append(("p", " ".join(answer)))
  blocks.append(("p", "Drops are dense minus compressed accuracy (mean over members); 'excess "
                      "drop' is the under-represented group's drop minus the rest's. Welch's "
                      "test ignores the pairing of members, so it is conservative. 'Classes "
                      "hurt': classes whose normalised recall fell significantly (per-class "
                      f"Welch t-test, p < {alpha})."))
  return blocks


def write_study_report(workdir: str, records: Sequence[Mapping[str, Any]], config: Any,
                       images: np.ndarray | None = None) -> dict[str, Any]:
  """report.md/.html via `write_report`, the study's figures, the verdict and the audit."""
  from tradeoffs import report as report_lib

  records = [r for r in records if r.get("study") == STUDY]
  order = {spec["variant"]: i for i, spec in enumerate(planned_variants(config))}
  records.sort(key=lambda r: order.get(r["variant"], len(order)))
  title = (f"Compression bias: {config.dataset.name}, {config.model.name}, "
           f"{int(config.population.members)} members per population")
  if not workdir_lib.is_writer():
    return report_lib.write_report(workdir, records, title=title, reference=DENSE)
  os.makedirs(workdir, exist_ok=True)
  group_names = []
  under = None
  for r in records:
    if r["hidden_costs"].get("per_group"):
      group_names = list(r["hidden_costs"]["per_group"])
      under = (r["hidden_costs"].get("underrepresented") or {}).get("group")
      break
  figures = [
      _plot_metric(os.path.join(workdir, "top1_vs_sparsity.png"), records,
                   lambda r: 100 * r["accuracy"]["top1"], "top-1 (%), mean ± std over members",
                   "Top-1 against compression",
                   error_fn=lambda r: 100 * r["accuracy"]["top1_std"]),
      _plot_metric(os.path.join(workdir, "cie_vs_sparsity.png"), records,
                   lambda r: r["hidden_costs"]["cie_count"], "modal CIE count",
                   "Compression-identified exemplars (modal label changed)"),
      _plot_cie_accuracy(os.path.join(workdir, "cie_accuracy.png"), records),
      _plot_group_drops(os.path.join(workdir, "group_drop_vs_sparsity.png"), records,
                        group_names, under),
  ]
  figures = [f for f in figures if f]
  audit_variant = config.analysis.audit_variant or (most_compressed(records) or {}).get(
      "variant")
  blocks = verdict_blocks(records)
  audit = None
  if audit_variant and os.path.exists(predictions_lib.path(workdir, audit_variant)):
    if images is None:
      images = experiment.load_dataset(config).test.images
    audit = write_audit(workdir, audit_variant, int(config.analysis.audit_max_images), images)
    figures.append(audit["png"])
    blocks.append(("p", f"Audit: the {audit['count']} CIEs of {audit_variant} (the most "
                        "compressed variant unless configured) are listed by id in "
                        "cie_ids.json and drawn in cie_audit.png with both modal labels, "
                        "highest taxicab score first."))
  for path in figures:
    blocks.append(("img", os.path.basename(path), os.path.basename(path)[:-4]))
  out = report_lib.write_report(workdir, records, title=title, reference=DENSE,
                                tail_blocks=blocks)
  out["figures"] = list(out["figures"]) + figures
  if audit is not None:
    out["audit"] = audit
  return out
