"""The one scoring sheet: top-1 and the costs top-1 hides, for every variant of every study.

    accuracy, hidden_costs = sheet.score(logits, labels, groups=..., group_names=...,
                                         source_logits=dense_logits, derived=True)

`logits` are a population's test logits [members, examples, classes]. The sheet always
computes the quality block (`accuracy`): top-1 (mean over members and its spread), per
class, worst class, balanced, modal top-1 and, with groups, per group, worst group and the
group gap. Then it chains the selected hidden-cost metrics of the `COSTS` registry, each a
pure function `cost(inputs) -> dict` (optax-style composition; add one with
`register_cost`):

  cie     modal CIE against the source population, their count, fraction and the
          accuracies on and off them; with groups, the CIE rate per group.
  cie_null  the noise floor of the CIE count: CIEs between random halves of the source
          population (count of a null comparison of equal-size populations).
  churn   mean pairwise disagreement of the members' predicted labels.

Definitions (one each, used everywhere):
  * worst_class = the mean over members of each member's lowest per-class accuracy
    ("mean of per-member minima"); `worst_class_of_mean` is the minimum of the per-class
    mean, reported beside it.
  * members = population size (models or ensembles scored).
  * modal labels break ties to the largest label (Hooker et al.'s `mode().max()`).
"""

from __future__ import annotations

import dataclasses
import functools
import math
import warnings
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np

from tradeoffs import determinism
from tradeoffs import exemplars
from tradeoffs import fairness


@dataclasses.dataclass(frozen=True)
class Inputs:
  """What every cost metric sees (host numpy arrays)."""
  logits: np.ndarray                       # [M, N, C]
  labels: np.ndarray                       # [N]
  groups: np.ndarray | None = None         # [N, G] attributes, or None
  group_names: tuple[str, ...] = ()
  source_logits: np.ndarray | None = None  # [M', N, C] of the source, or None
  is_source: bool = False
  derived: bool = True                     # derived from the source's own members
  seed: int = 0

  @property
  def num_classes(self) -> int:
    return int(self.logits.shape[-1])

  @property
  def predicted(self) -> np.ndarray:
    return self.logits.argmax(-1)

  @property
  def has_groups(self) -> bool:
    return self.groups is not None and np.size(self.groups) > 0 and np.shape(self.groups)[-1] > 0


CostFn = Callable[[Inputs], Mapping[str, Any]]
COSTS: dict[str, CostFn] = {}
DEFAULT_COSTS = ("cie", "cie_null", "churn")


def register_cost(name: str, fn: CostFn) -> CostFn:
  if name in COSTS:
    raise ValueError(f"hidden-cost metric {name!r} is already registered")
  COSTS[name] = fn
  return fn


def check_costs(names: Sequence[str]) -> tuple[str, ...]:
  unknown = [n for n in names if n not in COSTS]
  if unknown:
    raise ValueError(f"hidden-cost metrics {unknown} are unknown; choose from {sorted(COSTS)}")
  return tuple(names)


def _finite(value: Any) -> float | None:
  value = float(value)
  return value if math.isfinite(value) else None


# The sheet's array work, one compiled program per shape: run eagerly it compiled ~50 small
# programs per process (one per operation and shape); the definitions are the library's.
@functools.partial(jax.jit, static_argnames=("num_classes",))
def _per_class_and_modal(labels, preds, num_classes):
  per_class = jax.vmap(
      lambda p: fairness.per_class_accuracy(labels, p, num_classes=num_classes))(preds)
  return per_class, exemplars.modal_labels(preds, num_classes)


@functools.partial(jax.jit, static_argnames=("num_groups",))
def _per_group_accuracy(labels, preds, ids, num_groups):
  return jax.vmap(lambda p: fairness.by_group(
      "accuracy", labels, p, ids, num_groups=num_groups))(preds)


@functools.partial(jax.jit, static_argnames=("num_classes", "num_groups", "is_source"))
def _cie_arrays(source_logits, logits, labels, ids, num_classes, num_groups, is_source):
  is_cie = (jax.numpy.zeros(labels.shape, bool) if is_source else
            exemplars.cie(source_logits, logits, num_classes))
  out = {"is_cie": is_cie,
         "split": exemplars.accuracy_split(logits, labels, is_cie, num_classes),
         "source_split": exemplars.accuracy_split(source_logits, labels, is_cie, num_classes)}
  if num_groups is not None:
    out["breakdown"] = exemplars.group_breakdown(source_logits, logits, labels, ids,
                                                 num_groups=num_groups, is_cie=is_cie)
  return out


@functools.partial(jax.jit, static_argnames=("num_classes",))
def _cie_count(a, b, num_classes):
  return jax.numpy.sum(exemplars.cie(a, b, num_classes))


_churn_of = jax.jit(determinism.churn)


def quality(inputs: Inputs) -> dict[str, Any]:
  """The quality block: top-1 and the accuracies top-1 averages away."""
  logits, labels = inputs.logits, inputs.labels
  preds = inputs.predicted
  top1 = (preds == labels[None]).mean(-1)
  per_class, modal = map(np.asarray, _per_class_and_modal(labels, preds, inputs.num_classes))
  mean_class = np.nanmean(per_class, 0)
  out: dict[str, Any] = {
      "top1": float(top1.mean()),
      "top1_std": float(top1.std(ddof=1)) if top1.size > 1 else 0.0,
      "per_member_top1": top1.tolist(),
      "per_class": [_finite(v) for v in mean_class],
      "per_class_std": float(np.nanmean(np.nanstd(per_class, 0))),
      "worst_class": float(np.nanmean(np.nanmin(per_class, -1))),
      "worst_class_of_mean": float(np.nanmin(mean_class)),
      "per_member_worst_class": np.nanmin(per_class, -1).tolist(),
      "balanced": float(np.nanmean(np.nanmean(per_class, -1))),
      "modal_top1": float((modal == labels).mean()),
  }
  if inputs.has_groups:
    inter = fairness.intersect(np.asarray(inputs.groups), None,
                               tuple(inputs.group_names) or None)
    per_group = np.asarray(_per_group_accuracy(labels, preds, np.asarray(inter.ids),
                                               inter.num_groups))
    mean_group = np.nanmean(per_group, 0)
    out["per_group"] = {name: _finite(mean_group[i]) for i, name in enumerate(inter.names)}
    out["per_member_per_group"] = {name: per_group[:, i].tolist()
                                   for i, name in enumerate(inter.names)}
    out["worst_group"] = float(np.nanmean(np.nanmin(per_group, -1)))
    out["per_member_worst_group"] = np.nanmin(per_group, -1).tolist()
    out["group_gap"] = float(np.nanmean(np.nanmax(per_group, -1) - np.nanmin(per_group, -1)))
  return out


def _cie(inputs: Inputs) -> dict[str, Any]:
  if inputs.source_logits is None:
    return {}
  inter = (fairness.intersect(np.asarray(inputs.groups), None,
                              tuple(inputs.group_names) or None)
           if inputs.has_groups else None)
  arrays = jax.device_get(_cie_arrays(
      inputs.source_logits, inputs.logits, inputs.labels,
      None if inter is None else np.asarray(inter.ids), inputs.num_classes,
      None if inter is None else inter.num_groups, bool(inputs.is_source)))
  is_cie, split, source_split = arrays["is_cie"], arrays["split"], arrays["source_split"]
  out: dict[str, Any] = {
      "cie_count": int(is_cie.sum()),
      "cie_fraction": float(is_cie.mean()),
      "cie_accuracy": _finite(split["cie_accuracy"]),
      "source_cie_accuracy": _finite(source_split["cie_accuracy"]),
      "non_cie_accuracy": _finite(split["non_cie_accuracy"]),
      "cie_kind": ("source" if inputs.is_source else
                   "derived" if inputs.derived else "retrained"),
  }
  if inter is not None:
    breakdown = arrays["breakdown"]
    rates = {name: _finite(breakdown["cie_rate"][i]) for i, name in enumerate(inter.names)}
    out["cie_rate"] = rates
    present = [r for r in rates.values() if r is not None]
    if present and min(present) > 0:
      out["cie_rate_ratio"] = max(present) / min(present)
  return out


def cie_null_counts(source_logits: np.ndarray, *, draws: int = 50, seed: int = 0,
                    num_classes: int | None = None) -> np.ndarray:
  """CIE counts between random halves of one population: what CIE counts look like when
  nothing was compressed (the noise floor of a comparison of two populations of half the
  size). Needs >= 2 members; returns [draws] integer counts."""
  source_logits = np.asarray(source_logits)
  members = source_logits.shape[0]
  if members < 2:
    return np.zeros((0,), np.int64)
  rng = np.random.default_rng(seed)
  half = members // 2
  counts = []
  for _ in range(draws):
    order = rng.permutation(members)
    a, b = source_logits[order[:half]], source_logits[order[half:2 * half]]
    counts.append(int(_cie_count(a, b, num_classes)))
  return np.asarray(counts, np.int64)


def _cie_null(inputs: Inputs) -> dict[str, Any]:
  if inputs.source_logits is None or inputs.source_logits.shape[0] < 2:
    return {}
  counts = cie_null_counts(inputs.source_logits, seed=inputs.seed,
                           num_classes=inputs.num_classes)
  return {"cie_null": {"kind": "random halves of the source population",
                       "members_per_half": int(inputs.source_logits.shape[0] // 2),
                       "median": float(np.median(counts)),
                       "p95": float(np.quantile(counts, 0.95)),
                       "max": int(counts.max()), "draws": int(counts.size)}}


def _churn(inputs: Inputs) -> dict[str, Any]:
  preds = inputs.predicted
  return {"churn": float(_churn_of(preds)) if preds.shape[0] > 1 else None}


register_cost("cie", _cie)
register_cost("cie_null", _cie_null)
register_cost("churn", _churn)
register_cost("compression", exemplars.compression.cost)  # Taxicab, per class, per group.


def score(logits: Any, labels: Any, *, groups: Any = None, group_names: Sequence[str] = (),
          source_logits: Any = None, is_source: bool = False, derived: bool = True,
          costs: Sequence[str] = DEFAULT_COSTS, seed: int = 0
          ) -> tuple[dict[str, Any], dict[str, Any]]:
  """(accuracy, hidden_costs) of one population's test logits [M, N, C].

  `source_logits` is the reference population (CIE); `derived` says whether this
  population was derived from the source's own members (pruned, quantized) or retrained
  (another width, a divided ensemble) — recorded with the CIE count, since the noise
  floor differs. `costs` selects metrics of the `COSTS` registry, applied in order.
  """
  logits = np.asarray(logits)
  if logits.ndim != 3:
    raise ValueError(f"logits must be [members, examples, classes]; got shape {logits.shape}")
  inputs = Inputs(logits=logits, labels=np.asarray(labels),
                  groups=None if groups is None else np.asarray(groups),
                  group_names=tuple(group_names),
                  source_logits=None if source_logits is None else np.asarray(source_logits),
                  is_source=is_source, derived=derived, seed=seed)
  with warnings.catch_warnings():  # Absent classes/groups are NaN by design.
    warnings.simplefilter("ignore", RuntimeWarning)
    accuracy = quality(inputs)
    hidden: dict[str, Any] = {"top1_std": accuracy["top1_std"],
                              "per_class_std": accuracy["per_class_std"]}
    if "group_gap" in accuracy:
      hidden["group_gap"] = accuracy["group_gap"]
    for name in check_costs(costs):
      hidden.update(COSTS[name](inputs))
  return accuracy, hidden
