"""Pareto frontiers over any two axes of trade-off records.

An axis is a dotted path into a record, e.g. `efficiency.flops`, `accuracy.top1`,
`accuracy.worst_class`, `efficiency.latency_ms`, `hidden_costs.cie_count`. Records from
several workdirs are merged simply by concatenating their lists (`load_records` tags
each with its workdir), so one frontier spans studies and machines.
"""

from __future__ import annotations

import math
from typing import Any, Iterable, Mapping, Sequence

from tradeoffs.report import records as records_lib

# Which way is better on the common axes; used by the report to orient plots.
LOWER_IS_BETTER_PREFIXES = ("efficiency.", "hidden_costs.", "seconds")
HIGHER_IS_BETTER_PREFIXES = ("accuracy.",)
# Hidden costs where a larger number is better (accuracy-like).
HIGHER_IS_BETTER = frozenset({"hidden_costs.cie_accuracy", "efficiency.throughput_per_s"})
# Quality numbers where a smaller value is better (coded optimization's suboptimality).
LOWER_IS_BETTER = frozenset({"accuracy.error_floor_relative", "accuracy.final_suboptimality",
                             "accuracy.final_relative_suboptimality"})


def higher_is_better(axis: str) -> bool:
  """Default orientation of an axis: accuracy up, costs (efficiency, hidden costs) down."""
  if axis in HIGHER_IS_BETTER:
    return True
  if axis in LOWER_IS_BETTER:
    return False
  return axis.startswith(HIGHER_IS_BETTER_PREFIXES)


def as_number(value: Any) -> float | None:
  """A finite float, or None for missing, non-numeric or non-finite values."""
  if isinstance(value, bool) or value is None:
    return None
  if isinstance(value, (int, float)):
    number = float(value)
  elif isinstance(value, str):
    try:
      number = float(value)
    except ValueError:
      return None
  else:
    return None
  return number if math.isfinite(number) else None


def get_path(record: Mapping[str, Any], path: str) -> Any:
  """The value at dotted `path` in `record`, or None when any part is missing.

  >>> record = {"accuracy": {"top1": 0.9, "per_class": [0.8, 1.0]}}
  >>> get_path(record, "accuracy.top1"), get_path(record, "accuracy.per_class.1")
  (0.9, 1.0)
  >>> get_path(record, "efficiency.flops") is None
  True
  """
  value: Any = record
  for part in path.split("."):
    if isinstance(value, Mapping) and part in value:
      value = value[part]
    elif isinstance(value, (list, tuple)) and part.isdigit() and int(part) < len(value):
      value = value[int(part)]
    else:
      return None
  return value


def available_axes(records: Iterable[Mapping[str, Any]]) -> list[str]:
  """Dotted paths to numeric scalars present in any record (config and environment skipped).

  >>> available_axes([{"accuracy": {"top1": 0.9, "note": "x"}, "efficiency": {"flops": 10},
  ...                  "config": {"lr": 0.1}, "members": 8}])      # config is skipped
  ['accuracy.top1', 'efficiency.flops', 'members']
  """
  found = set()

  def visit(value: Any, prefix: str) -> None:
    if isinstance(value, Mapping):
      for key, sub in value.items():
        visit(sub, f"{prefix}.{key}" if prefix else str(key))
    elif as_number(value) is not None and prefix:
      found.add(prefix)

  for record in records:
    for key, value in record.items():
      if key in ("config", "environment"):
        continue
      visit(value, key)
  return sorted(found)


def _check_records(records: Any) -> list[Mapping[str, Any]]:
  if isinstance(records, Mapping):
    raise ValueError("records must be a list of trade-off records, got a single record; "
                     "wrap it in a list")
  records = list(records)
  if not records:
    raise ValueError("records is empty: there is nothing to put on a frontier. Load them "
                     "with report.load_records(workdir, ...) after a study has run")
  return records


def check_axis(records: Sequence[Mapping[str, Any]], axis: str, name: str = "axis") -> None:
  """Raises ValueError naming the available axes when no record has a number at `axis`."""
  if not isinstance(axis, str) or not axis:
    raise ValueError(f"{name}={axis!r}: expected a dotted path such as 'efficiency.flops'")
  if not any(as_number(get_path(r, axis)) is not None for r in records):
    raise ValueError(f"{name}={axis!r} is not a numeric field of any record; available "
                     f"axes: {', '.join(available_axes(records)) or '(none)'}")


def pareto_front(records: Iterable[Mapping[str, Any]], x: str, y: str,
                 x_lower_is_better: bool = True,
                 y_higher_is_better: bool = True) -> list[dict[str, Any]]:
  """Records on the Pareto frontier of axes `x` and `y`, sorted from best x to worst x.

  A record is on the frontier when no other record is at least as good on both axes and
  strictly better on one. Consequences, by design:
    * ties on one axis: among records with equal x, only those with the best y survive
      (the others are dominated), and likewise for equal y;
    * exact duplicates (equal x and equal y): none dominates the other, so all are kept,
      in input order (e.g. two variants that reach the same point both earn the claim);
    * duplicates of a dominated point are all dropped.
  Records lacking a finite number on either axis are left out.

  Args:
    records: trade-off records (from one or several workdirs).
    x, y: dotted paths, e.g. 'efficiency.flops' and 'accuracy.top1'.
    x_lower_is_better: True for costs (params, FLOPs, latency), False for gains.
    y_higher_is_better: True for accuracy, False for costs (cie_count, churn).

  Returns:
    The frontier records (the same dicts) sorted by x from best to worst, ties by y.

  Raises:
    ValueError: empty `records`, or an axis no record has (naming the available axes).

  >>> from tradeoffs.report.records import make_record
  >>> def rec(variant, params, top1, **kw):
  ...   return make_record(study="prune", variant=variant, efficiency={"params": params},
  ...                      accuracy={"top1": top1}, **kw)
  >>> records = [rec("dense", 100, 0.90), rec("p50", 50, 0.89, source="dense"),
  ...            rec("p90", 10, 0.70, source="dense"), rec("bad", 60, 0.80, source="dense")]
  >>> [r["variant"] for r in pareto_front(records, "efficiency.params", "accuracy.top1")]
  ['p90', 'p50', 'dense']
  """
  records = _check_records(records)
  check_axis(records, x, "x")
  check_axis(records, y, "y")
  sx = 1.0 if x_lower_is_better else -1.0  # Scores where lower is better on both.
  sy = -1.0 if y_higher_is_better else 1.0
  points = []
  for index, record in enumerate(records):
    vx, vy = as_number(get_path(record, x)), as_number(get_path(record, y))
    if vx is not None and vy is not None:
      points.append((sx * vx, sy * vy, index, record))
  # Sweep in order of (x, y): a point is kept iff its y beats every y seen at a smaller
  # x, or it ties exactly the last kept point (a duplicate).
  points.sort(key=lambda p: (p[0], p[1], p[2]))
  front = []
  best_y = math.inf
  last = None
  for px, py, _, record in points:
    if py < best_y:
      front.append(record)
      best_y, last = py, (px, py)
    elif (px, py) == last:
      front.append(record)
  return front


def on_front(records: Sequence[Mapping[str, Any]], front: Sequence[Mapping[str, Any]]
             ) -> list[bool]:
  """For each record, whether it is (the same object as) one on `front`."""
  ids = {id(r) for r in front}
  return [id(r) in ids for r in records]


def frontier(records_or_workdirs: Iterable[Any], x: str, y: str,
             x_lower_is_better: bool | None = None,
             y_higher_is_better: bool | None = None) -> list[dict[str, Any]]:
  """Pareto front of records or of workdirs' records merged; orientation from axis names.

  >>> from tradeoffs.report.records import make_record
  >>> def rec(variant, params, top1, **kw):
  ...   return make_record(study="prune", variant=variant, efficiency={"params": params},
  ...                      accuracy={"top1": top1}, **kw)
  >>> records = [rec("dense", 100, 0.90), rec("p50", 50, 0.89, source="dense"),
  ...            rec("p90", 10, 0.70, source="dense"), rec("bad", 60, 0.80, source="dense")]
  >>> [r["variant"] for r in frontier(records, "efficiency.params", "accuracy.top1")]
  ['p90', 'p50', 'dense']
  >>> [r["variant"] for r in frontier(records, "accuracy.top1", "efficiency.params")]  # either way round
  ['dense', 'p50', 'p90']
  """
  items = list(records_or_workdirs)
  if items and all(isinstance(item, str) for item in items):
    items = records_lib.load_records(*items)
  if x_lower_is_better is None:
    x_lower_is_better = not higher_is_better(x)
  if y_higher_is_better is None:
    y_higher_is_better = higher_is_better(y)
  return pareto_front(items, x, y, x_lower_is_better, y_higher_is_better)
