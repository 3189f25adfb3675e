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
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from tradeoffs import environment
from tradeoffs import exemplars
from tradeoffs import fairness
from tradeoffs import quantization
from tradeoffs import sparsity
from tradeoffs import workdir as workdir_lib
from tradeoffs.report import records as records_lib
from tradeoffs.sparsity import distributions as distributions_lib
from tradeoffs.studies import common
from tradeoffs.train import experiment
from tradeoffs.train import mesh as mesh_lib
from tradeoffs.train import optimizers
from tradeoffs.train import population as pop_lib
from tradeoffs.train import predictions as predictions_lib
from tradeoffs.train import seeds as seeds_lib

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
