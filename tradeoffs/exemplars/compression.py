"""The hidden costs of a compressed population against its reference (Hooker et al.).

    costs = compression_costs(dense_logits, pruned_logits, labels, groups, group_names,
                              paired=True)

Beyond the modal CIE count (the sheet's `cie`), a compressed population's costs are:

  taxicab          the taxicab CIE: the top k = round(taxicab_fraction · N) examples by the
                   L1 distance of the two label distributions (score summary, how many
                   of them are modal CIEs).
  per_class_tests  one claim per class: did its recall, minus each member's own accuracy
                   ('model' normalisation; 'population' subtracts the population's mean
                   accuracy as gen_tstatistic.py does; 'none': raw recall), move? Paired t
                   when `paired` (the compressed members are the reference's own, pruned
                   or quantized), Welch t otherwise (Hooker et al.: `ttest_ind(...,
                   equal_var=False)`). "lower" = the class lost more than the top line.
  group_drops      per group: the accuracy drop with its 95% t interval over members, and
                   whether it is interpretable (reference accuracy above chance + margin);
                   see `tradeoffs.fairness.disparity`.
  underrepresented the smallest group (or the named one): its share of the examples, of
                   the modal CIEs and of the taxicab top-k.
  disparity        did the under-represented group lose more than the rest
                   (`fairness.disparity_test`)?
  source_non_cie_accuracy  the reference's accuracy off the CIEs (the sheet records the
                   other three of the 2×2).

Every test is returned uncorrected as a `stats.Comparison` dict: which claims form a
family is the report's decision (`stats.family` over a section).

`cost(inputs)` adapts this to the sheet's cost registry (`tradeoffs.sheet.register_cost`):
it reads `source_logits`, `logits`, `labels`, `groups`, `group_names`, `is_source` and
`derived` from the sheet's inputs, with the defaults here.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from tradeoffs import stats
from tradeoffs.exemplars import cie as cie_lib
from tradeoffs.exemplars import population
from tradeoffs.fairness import disparity

NORMALIZATIONS = ("model", "population", "none")


def _finite(value: Any) -> float | None:
  value = float(value)
  return value if math.isfinite(value) else None


def _labels(predictions: Any, argname: str) -> np.ndarray:
  return np.asarray(population.predicted_labels(np.asarray(predictions), argname=argname))


def _recall(pred: np.ndarray, labels: np.ndarray, num_classes: int) -> np.ndarray:
  """Per-member per-class recall [members, classes] (NaN for absent classes)."""
  present = np.bincount(labels, minlength=num_classes).astype(np.float64)
  out = np.empty((pred.shape[0], num_classes))
  for m in range(pred.shape[0]):
    hits = np.bincount(labels[pred[m] == labels], minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
      out[m] = np.where(present > 0, hits / np.maximum(present, 1), np.nan)
  return out


def per_class_tests(ref_pred: np.ndarray, new_pred: np.ndarray, labels: np.ndarray,
                    num_classes: int, *, paired: bool, normalize: str = "model",
                    claim_prefix: str = "") -> list[dict[str, Any] | None]:
  """One uncorrected `Comparison` dict per class (None for an absent class): normalised
  recall of the changed population against the reference's."""
  if normalize not in NORMALIZATIONS:
    raise ValueError(f"normalize={normalize!r} is unknown; valid: {list(NORMALIZATIONS)}")

  def normalised(pred):
    recall = _recall(pred, labels, num_classes)
    accuracy = (pred == labels[None]).mean(1)
    if normalize == "model":
      return recall - accuracy[:, None]
    if normalize == "population":
      return recall - accuracy.mean()
    return recall

  ref, new = normalised(ref_pred), normalised(new_pred)
  is_paired = bool(paired) and ref.shape[0] == new.shape[0]
  out = []
  for c in range(num_classes):
    if not np.all(np.isfinite(ref[:, c])) or not np.all(np.isfinite(new[:, c])):
      out.append(None)
      continue
    out.append(stats.compare(new[:, c], ref[:, c], paired=is_paired,
                             claim=f"{claim_prefix}class {c}").to_dict())
  return out


def compression_costs(ref_logits: Any, logits: Any, labels: Any, groups: Any = None,
                      group_names: Sequence[str] = (), *, paired: bool,
                      taxicab_fraction: float = 0.05, normalize: str = "model",
                      underrepresented: str | int | None = None, floor_margin: float = 0.05,
                      claim_prefix: str = "") -> dict[str, Any]:
  """The costs listed in the module docstring, as a JSON-able dict.

  Args:
    ref_logits, logits: the reference and the compressed population, scores [members,
      examples, classes] or labels [members, examples] (member counts may differ).
    labels: true labels [examples].
    groups, group_names: group attributes [examples, G] (or [examples]) and their names;
      None for no groups.
    paired: the compressed members are the reference's own (derived, same count): paired
      t-tests; else Welch.
    taxicab_fraction: the taxicab top-k as a fraction of the examples (at least 1).
    normalize: per-class normalisation ('model', 'population', 'none').
    underrepresented: group name or index; default the smallest non-empty group.
    floor_margin: a group within this of its chance accuracy (reference) is not tested.
    claim_prefix: prefixed to every claim (e.g. "gmp_0.9: ").

  >>> import numpy as np
  >>> labels = np.array([0, 1, 1, 0])
  >>> dense = np.array([[0, 1, 1, 0], [0, 1, 1, 0], [0, 1, 0, 0]])
  >>> pruned = np.array([[0, 1, 0, 0], [0, 0, 0, 0], [0, 1, 0, 0]])   # example 2 flips
  >>> costs = compression_costs(dense, pruned, labels, paired=True, taxicab_fraction=0.25)
  >>> costs["taxicab"]["k"], costs["taxicab"]["max"], costs["taxicab"]["topk_modal_overlap"]
  (1, 1.333..., 1.0)
  >>> costs["source_non_cie_accuracy"]         # the dense members on examples 0, 1, 3
  1.0
  >>> [c["claim"] for c in costs["per_class_tests"]]
  ['class 0', 'class 1']
  """
  if not 0.0 <= float(taxicab_fraction) <= 1.0:
    raise ValueError(f"taxicab_fraction={taxicab_fraction!r} must be in [0, 1]")
  labels = np.asarray(labels)
  ref_pred, new_pred = _labels(ref_logits, "ref_logits"), _labels(logits, "logits")
  n = labels.shape[0]
  if ref_pred.shape[1] != n or new_pred.shape[1] != n:
    raise ValueError(f"ref_logits {np.shape(ref_logits)}, logits {np.shape(logits)} and "
                     f"labels {labels.shape} disagree on the number of examples")
  num_classes = int(max(np.shape(ref_logits)[-1] if np.ndim(ref_logits) == 3 else 0,
                        labels.max() + 1, ref_pred.max() + 1, new_pred.max() + 1))
  k = max(1, int(round(float(taxicab_fraction) * n))) if n else 0
  is_cie = np.asarray(cie_lib.cie(ref_pred, new_pred, num_classes))
  taxicab = cie_lib.taxicab_cie(ref_pred, new_pred, k, num_classes)
  scores, top = np.asarray(taxicab.scores, np.float64), np.asarray(taxicab.is_cie)
  ref_correct, new_correct = ref_pred == labels[None], new_pred == labels[None]
  out: dict[str, Any] = {
      "taxicab": {"k": k, "fraction": float(taxicab_fraction),
                  "mean": float(scores.mean()), "median": float(np.median(scores)),
                  "max": float(scores.max()),
                  "topk_min": float(scores[top].min()) if top.any() else None,
                  "topk_modal_overlap": float(is_cie[top].mean()) if top.any() else None},
      "source_non_cie_accuracy": (_finite(ref_correct[:, ~is_cie].mean())
                                  if (~is_cie).any() else None),
      "per_class_tests": None,
      "per_class_normalize": normalize,
  }
  if ref_pred.shape[0] >= 2 and new_pred.shape[0] >= 2:
    out["per_class_tests"] = per_class_tests(ref_pred, new_pred, labels, num_classes,
                                             paired=paired, normalize=normalize,
                                             claim_prefix=claim_prefix)
  ids, names = disparity.group_ids(groups, group_names, n)
  if ids is None:
    return out
  drops = disparity.group_drops(ref_correct, new_correct, ids, names, labels, paired=paired,
                                floor_margin=floor_margin, claim_prefix=claim_prefix)
  for g, name in enumerate(names):
    drops[name]["cie_count"] = int(is_cie[ids == g].sum())
  out["group_drops"] = drops
  index = disparity.pick_underrepresented(ids, names, underrepresented)
  under = ids == index
  out["underrepresented"] = {
      "group": names[index], "share_of_examples": float(under.mean()),
      "share_of_cie": float(is_cie[under].sum() / is_cie.sum()) if is_cie.any() else None,
      "share_of_taxicab_topk": float(top[under].sum() / top.sum()) if top.any() else None}
  if 0 < under.sum() < n:
    out["disparity"] = disparity.disparity_test(
        ref_correct, new_correct, under, labels, paired=paired, floor_margin=floor_margin,
        claim=f"{claim_prefix}gap rest − {names[index]}")
  return out


def cost(inputs: Any) -> dict[str, Any]:
  """The sheet's cost-registry adapter (defaults as in `compression_costs`)."""
  if inputs.source_logits is None or inputs.is_source:
    return {}
  groups = inputs.groups if inputs.has_groups else None
  return compression_costs(inputs.source_logits, inputs.logits, inputs.labels, groups,
                           inputs.group_names, paired=bool(inputs.derived))
