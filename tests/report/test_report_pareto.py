"""Pareto frontiers over dotted axes, and records merged from several workdirs."""

from __future__ import annotations

import os

import hypothesis
import hypothesis.strategies as st
import pytest

from tradeoffs import report


def point(name, cost, acc, **extra):
  return {"variant": name, "study": "s", "members": 1, "efficiency": {"flops": cost},
          "accuracy": {"top1": acc}, "hidden_costs": extra}


def names(records):
  return [r["variant"] for r in records]


def test_front_on_hand_made_points_with_ties_and_duplicates():
  records = [
      point("a", 1.0, 0.50),
      point("b", 2.0, 0.70),
      point("b_dominated_same_x", 2.0, 0.60),   # tie on x, worse y: dominated
      point("c", 3.0, 0.70),                    # tie on y, worse x: dominated
      point("d", 4.0, 0.90),
      point("d_twin", 4.0, 0.90),               # exact duplicate of a front point: kept
      point("e", 5.0, 0.80),                    # dominated by d
      point("e_twin", 5.0, 0.80),               # duplicate of a dominated point: dropped
  ]
  front = report.pareto_front(records, "efficiency.flops", "accuracy.top1")
  assert names(front) == ["a", "b", "d", "d_twin"]
  assert front[0] is records[0]  # the same dicts come back


def test_front_in_the_other_orientations():
  records = [point("a", 1.0, 0.5), point("b", 2.0, 0.7), point("c", 3.0, 0.6)]
  # Higher x better, lower y better: c (most x) and a (least y) survive; b loses to c on x
  # and to a on y.
  front = report.pareto_front(records, "efficiency.flops", "accuracy.top1",
                              x_lower_is_better=False, y_higher_is_better=False)
  assert names(front) == ["c", "a"]
  # Lower x and lower y: only a.
  assert names(report.pareto_front(records, "efficiency.flops", "accuracy.top1",
                                   y_higher_is_better=False)) == ["a"]


def test_front_over_hidden_costs_skips_records_without_the_axis():
  records = [point("dense", 10.0, 0.9), point("p50", 10.0, 0.88, cie_count=5),
             point("p90", 10.0, 0.8, cie_count=3), point("bad", 10.0, 0.7, cie_count="nan")]
  front = report.frontier(records, "hidden_costs.cie_count", "accuracy.top1")
  assert names(front) == ["p90", "p50"]  # cie_count is a cost: lower is better


def test_unknown_axis_lists_available_axes():
  records = [point("a", 1.0, 0.5, churn=0.1)]
  with pytest.raises(ValueError) as error:
    report.pareto_front(records, "efficiency.latency_ms", "accuracy.top1")
  message = str(error.value)
  assert "efficiency.latency_ms" in message
  for axis in ("accuracy.top1", "efficiency.flops", "hidden_costs.churn", "members"):
    assert axis in message


def test_empty_input_raises():
  with pytest.raises(ValueError, match="empty"):
    report.pareto_front([], "efficiency.flops", "accuracy.top1")


@hypothesis.settings(max_examples=30, deadline=None)
@hypothesis.given(st.lists(st.tuples(st.integers(0, 4), st.integers(0, 4)), min_size=1,
                           max_size=12),
                  st.booleans(), st.booleans())
def test_front_matches_brute_force_definition(pairs, x_low, y_high):
  records = [point(str(i), float(x), float(y)) for i, (x, y) in enumerate(pairs)]
  sx, sy = (1 if x_low else -1), (-1 if y_high else 1)

  def dominated(i):
    xi, yi = sx * pairs[i][0], sy * pairs[i][1]
    return any(sx * x <= xi and sy * y <= yi and (sx * x < xi or sy * y < yi)
               for x, y in pairs)

  expected = {str(i) for i in range(len(pairs)) if not dominated(i)}
  front = report.pareto_front(records, "efficiency.flops", "accuracy.top1", x_low, y_high)
  assert set(names(front)) == expected and len(front) == len(expected)


def test_records_from_two_workdirs_merge_into_one_front(tmp_path):
  first, second = str(tmp_path / "run_a"), str(tmp_path / "run_b")
  report.append_records(first, [report.make_record(
      study="pruning", variant=v, efficiency={"flops": f}, accuracy={"top1": a})
      for v, f, a in (("dense", 10.0, 0.9), ("p90", 10.0, 0.8))])
  report.append_records(second, [report.make_record(
      study="width", variant="narrow", efficiency={"flops": 2.5}, accuracy={"top1": 0.85})])
  records = report.load_records(first, second)
  assert [r["workdir"] for r in records] == [first, first, second]
  front = report.frontier([first, second], "efficiency.flops", "accuracy.top1")
  assert names(front) == ["narrow", "dense"]


def test_workdir_without_records_is_a_clear_error(tmp_path):
  empty = str(tmp_path / "empty")
  os.makedirs(empty)
  with pytest.raises(FileNotFoundError, match="records.jsonl"):
    report.load_records(empty)
  open(os.path.join(empty, "records.jsonl"), "w").close()
  with pytest.raises(ValueError, match="holds no records"):
    report.load_records(empty)
  with pytest.raises(ValueError, match="at least one workdir"):
    report.load_records()
