"""Who paid for a change to a population: per-group accuracy drops and the disparity test.

Pure numpy on per-member correctness [members, examples] of a reference population (e.g.
dense) and a changed one (e.g. pruned), plus group ids. Every claim is a
`tradeoffs.stats.Comparison` (paired t when the changed population is the reference's own
members, Welch otherwise), so a report can Holm-correct the claims of one section together
with `stats.family`.

    ids, names = disparity.group_ids(groups, group_names, num_examples)
    under = disparity.pick_underrepresented(ids, names, None)     # smallest group
    drops = disparity.group_drops(ref_correct, new_correct, ids, names, labels, paired=True)
    test = disparity.disparity_test(ref_correct, new_correct, ids == under, labels,
                                    paired=True)

Floor effects: a group whose reference accuracy is within `floor_margin` of chance cannot
show a drop (it has nowhere to fall), so "it lost less" would be an artefact. Chance for a
set of examples is the majority-label rate in it (the accuracy of always predicting its most
frequent label; 1/C for balanced classes). Such a group's drop is reported with its
interval but marked not interpretable, and no test is run for it.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from tradeoffs import stats
from tradeoffs.fairness import groups as groups_lib

NOT_INTERPRETABLE = "not interpretable (near chance)"


def group_ids(groups: Any, group_names: Sequence[str], num_examples: int
              ) -> tuple[np.ndarray | None, list[str]]:
  """(ids [N], names) for the intersection of the group attributes; (None, []) without
  groups."""
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
  inter = groups_lib.intersect(groups, None, tuple(group_names) or None)
  return np.asarray(inter.ids), list(inter.names)


def pick_underrepresented(ids: np.ndarray, names: Sequence[str],
                          underrepresented: str | int | None) -> int:
  """Index of the named group (name or index), or of the smallest non-empty group."""
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


def chance_rate(labels: Any, mask: Any = None) -> float:
  """Accuracy of always predicting the most frequent label among the selected examples."""
  labels = np.asarray(labels).reshape(-1)
  if mask is not None:
    labels = labels[np.asarray(mask, bool)]
  if not labels.size:
    return float("nan")
  return float(np.bincount(labels).max() / labels.size)


def _check(ref_correct: Any, new_correct: Any) -> tuple[np.ndarray, np.ndarray]:
  ref, new = (np.asarray(x, np.float64) for x in (ref_correct, new_correct))
  if ref.ndim != 2 or new.ndim != 2 or ref.shape[1] != new.shape[1]:
    raise ValueError(f"correctness must be [members, examples] on the same examples; got "
                     f"{ref.shape} and {new.shape}")
  return ref, new


def _paired(paired: bool, ref: np.ndarray, new: np.ndarray) -> bool:
  return bool(paired) and ref.shape[0] == new.shape[0]


def group_drops(ref_correct: Any, new_correct: Any, ids: Any, names: Sequence[str],
                labels: Any, *, paired: bool, floor_margin: float = 0.05,
                claim_prefix: str = "") -> dict[str, dict[str, Any]]:
  """Per group: accuracy before and after, the drop (reference minus changed, mean over
  members) with its 95% t interval over members, and the comparison behind it.

  Returns {group name: {count, chance, reference_accuracy, accuracy, drop, drop_low,
  drop_high, interpretable, comparison}}; `comparison` is `stats.compare(changed,
  reference)` as a dict (estimate = −drop; its verdict is uncorrected: correct a family
  with `stats.family`), or None for an empty or near-chance group.
  """
  ref, new = _check(ref_correct, new_correct)
  ids = np.asarray(ids)
  is_paired = _paired(paired, ref, new)
  out = {}
  for g, name in enumerate(names):
    mask = ids == g
    entry: dict[str, Any] = {"count": int(mask.sum())}
    if not mask.any():
      out[name] = {**entry, "interpretable": False, "comparison": None}
      continue
    a, b = new[:, mask].mean(1), ref[:, mask].mean(1)
    chance = chance_rate(labels, mask)
    c = stats.compare(a, b, paired=is_paired, claim=f"{claim_prefix}{name}")
    interpretable = bool(b.mean() > chance + floor_margin)
    out[name] = {**entry, "chance": chance, "reference_accuracy": float(b.mean()),
                 "accuracy": float(a.mean()), "drop": -c.estimate, "drop_low": -c.high,
                 "drop_high": -c.low, "interpretable": interpretable,
                 "comparison": c.to_dict() if interpretable else None}
  return out


def disparity_test(ref_correct: Any, new_correct: Any, under: Any, labels: Any, *,
                   paired: bool, floor_margin: float = 0.05, claim: str = ""
                   ) -> dict[str, Any]:
  """Did the change widen the accuracy gap between the rest and the under-represented group?

  The per-member gap is accuracy(rest) − accuracy(under); the claim compares the changed
  population's gaps with the reference's (`stats.compare(new_gap, ref_gap)`), so its
  estimate is the excess drop drop(under) − drop(rest) and "higher" means the
  under-represented group lost more. Paired t when `paired` and the member counts match
  (the changed members derive from the reference's), Welch otherwise.

  Returns the accuracies and drops on both sides, `excess_drop` with its interval,
  `interpretable` (False when either side's reference accuracy is within `floor_margin` of
  its chance rate) and `comparison` (a `Comparison` dict, uncorrected; None when not
  interpretable or with fewer than 2 members per side).
  """
  ref, new = _check(ref_correct, new_correct)
  under = np.asarray(under, bool)
  if under.shape != (ref.shape[1],) or not under.any() or under.all():
    raise ValueError("under must select some but not all examples")
  ref_under, ref_rest = ref[:, under].mean(1), ref[:, ~under].mean(1)
  new_under, new_rest = new[:, under].mean(1), new[:, ~under].mean(1)
  chance_under, chance_rest = chance_rate(labels, under), chance_rate(labels, ~under)
  interpretable = bool(ref_under.mean() > chance_under + floor_margin
                       and ref_rest.mean() > chance_rest + floor_margin)
  out: dict[str, Any] = {
      "reference_accuracy_under": float(ref_under.mean()),
      "reference_accuracy_rest": float(ref_rest.mean()),
      "accuracy_under": float(new_under.mean()),
      "accuracy_rest": float(new_rest.mean()),
      "drop_under": float(ref_under.mean() - new_under.mean()),
      "drop_rest": float(ref_rest.mean() - new_rest.mean()),
      "chance_under": chance_under, "chance_rest": chance_rest,
      "excess_drop": float((new_rest - new_under).mean() - (ref_rest - ref_under).mean()),
      "interpretable": interpretable, "comparison": None,
  }
  if interpretable and ref.shape[0] >= 2 and new.shape[0] >= 2:
    c = stats.compare(new_rest - new_under, ref_rest - ref_under,
                      paired=_paired(paired, ref, new), claim=claim)
    out.update(excess_low=c.low, excess_high=c.high, comparison=c.to_dict())
  return out
