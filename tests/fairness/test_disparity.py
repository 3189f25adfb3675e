"""fairness.disparity: group ids, the under-represented group, per-group drops with
intervals, the floor guard and the disparity test, against hand counts and scipy."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from tradeoffs.fairness import disparity


def _population():
  # 3 members x 6 examples; examples 4 and 5 are group 1 (the under-represented group).
  labels = np.array([0, 1, 2, 0, 1, 2])
  dense = np.array([[0, 1, 2, 0, 1, 2],
                    [0, 1, 2, 0, 1, 0],
                    [0, 1, 1, 0, 1, 2]])
  comp = np.array([[0, 1, 2, 0, 0, 0],
                   [0, 1, 2, 1, 0, 1],
                   [0, 1, 2, 0, 1, 0]])
  ids = np.array([0, 0, 0, 0, 1, 1])
  return labels, dense == labels, comp == labels, ids


def test_group_ids_and_underrepresented():
  groups = np.array([[0, 1], [1, 1], [1, 0], [1, 1]])
  ids, names = disparity.group_ids(groups, ("a", "b"), 4)
  assert len(names) == 4 and len(ids) == 4
  # a=1&b=1 holds two examples; the smallest non-empty group is picked by default.
  counts = np.bincount(ids, minlength=4)
  assert counts[disparity.pick_underrepresented(ids, names, None)] == 1
  assert disparity.pick_underrepresented(ids, names, names[3]) == 3
  assert disparity.group_ids(None, (), 4) == (None, [])
  with pytest.raises(ValueError, match="not a group"):
    disparity.pick_underrepresented(ids, names, "c=1")
  with pytest.raises(ValueError, match="has no examples"):
    disparity.pick_underrepresented(ids, names, int(np.flatnonzero(counts == 0)[0]))
  with pytest.raises(ValueError, match="3 examples"):
    disparity.group_ids(np.zeros((3, 1)), ("a",), 4)


def test_chance_rate_is_the_majority_label_rate():
  assert disparity.chance_rate([0, 1, 1, 1]) == 0.75
  assert disparity.chance_rate([0, 1, 2, 2], [True, True, False, False]) == 0.5


def test_group_drops_hand_computed_with_paired_t_interval():
  labels, dense, comp, ids = _population()
  drops = disparity.group_drops(dense, comp, ids, ["g0", "g1"], labels, paired=True)
  g1 = drops["g1"]
  # Dense members on examples 4, 5: 1, 1/2, 1 -> 5/6; compressed 0, 0, 1/2 -> 1/6.
  assert g1["count"] == 2 and g1["chance"] == 0.5
  assert g1["reference_accuracy"] == pytest.approx(5 / 6)
  assert g1["accuracy"] == pytest.approx(1 / 6)
  assert g1["drop"] == pytest.approx(4 / 6)
  d = np.array([1.0, 0.5, 0.5])  # Per-member drops.
  half = scipy.stats.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
  assert (g1["drop_low"], g1["drop_high"]) == pytest.approx((4 / 6 - half, 4 / 6 + half))
  assert g1["interpretable"]
  c = g1["comparison"]
  assert c["test"] == "paired" and c["estimate"] == pytest.approx(-4 / 6)
  assert c["p"] == pytest.approx(scipy.stats.ttest_rel(comp[:, 4:].mean(1),
                                                       dense[:, 4:].mean(1)).pvalue)
  # Group 0: dense 1, 1, 3/4; compressed 1, 3/4, 1 -> no drop on average.
  assert drops["g0"]["drop"] == pytest.approx(0.0, abs=1e-12)
  # Welch when the populations are independent.
  welch = disparity.group_drops(dense, comp, ids, ["g0", "g1"], labels, paired=False)
  assert welch["g1"]["comparison"]["p"] == pytest.approx(scipy.stats.ttest_ind(
      comp[:, 4:].mean(1), dense[:, 4:].mean(1), equal_var=False).pvalue)


def test_a_group_near_chance_is_not_tested():
  labels = np.array([0, 1, 0, 1, 0, 1, 2, 3])
  ids = np.array([0, 0, 0, 0, 1, 1, 1, 1])
  # Group 1 (labels 0, 1, 2, 3: chance 1/4) is at 1/4 under the reference.
  ref = np.array([[1, 1, 1, 1, 1, 0, 0, 0], [1, 1, 1, 0, 0, 1, 0, 0]], bool)
  new = np.array([[1, 1, 1, 1, 0, 0, 0, 0], [1, 1, 0, 1, 0, 0, 0, 0]], bool)
  drops = disparity.group_drops(ref, new, ids, ["g0", "g1"], labels, paired=True,
                                floor_margin=0.05)
  assert drops["g1"]["reference_accuracy"] == 0.25 and drops["g1"]["chance"] == 0.25
  assert not drops["g1"]["interpretable"] and drops["g1"]["comparison"] is None
  assert drops["g1"]["drop"] == pytest.approx(0.25)  # Still reported, with its interval.
  assert drops["g0"]["interpretable"] and drops["g0"]["comparison"] is not None
  test = disparity.disparity_test(ref, new, ids == 1, labels, paired=True)
  assert not test["interpretable"] and test["comparison"] is None


def test_disparity_test_hand_computed_and_against_scipy():
  labels, dense, comp, ids = _population()
  result = disparity.disparity_test(dense, comp, ids == 1, labels, paired=True)
  # Gaps rest - under: dense 0, 1/2, -1/4; compressed 1, 3/4, 1/2.
  assert result["excess_drop"] == pytest.approx(0.75 - 1 / 12)
  assert result["excess_drop"] == pytest.approx(result["drop_under"] - result["drop_rest"])
  assert result["drop_under"] == pytest.approx(4 / 6)
  expected = scipy.stats.ttest_rel([1, 0.75, 0.5], [0, 0.5, -0.25])
  assert result["comparison"]["p"] == pytest.approx(expected.pvalue)
  rng = np.random.default_rng(0)
  under = np.arange(200) < 30
  labels = rng.integers(0, 4, 200)
  dense_correct = rng.random((8, 200)) < 0.9
  comp_correct = rng.random((6, 200)) < np.where(under, 0.6, 0.85)
  result = disparity.disparity_test(dense_correct, comp_correct, under, labels, paired=True)
  gap = lambda c: c[:, ~under].mean(1) - c[:, under].mean(1)  # noqa: E731
  expected = scipy.stats.ttest_ind(gap(comp_correct), gap(dense_correct), equal_var=False)
  c = result["comparison"]
  assert c["test"] == "welch"  # Member counts differ: not paired.
  assert c["p"] == pytest.approx(expected.pvalue, rel=1e-6)
  assert c["verdict"] == "higher"  # The group lost ~30 points, the rest ~5.
  with pytest.raises(ValueError, match="some but not all"):
    disparity.disparity_test(dense_correct, comp_correct, np.ones(200, bool), labels,
                             paired=False)
