"""Per-group metrics, gaps and intersections on hand-computed cases."""

from __future__ import annotations

import hypothesis
import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from sklearn import metrics as sk_metrics

from tradeoffs import fairness

# Group 0: labels 1 1 0 0, preds 1 0 1 0 -> TPR 1/2, FPR 1/2, accuracy 1/2, selection 1/2.
# Group 1: labels 1 1 1 0, preds 1 1 1 1 -> TPR 1,   FPR 1,   accuracy 3/4, selection 1.
LABELS = jnp.array([1, 1, 0, 0, 1, 1, 1, 0])
PREDS = jnp.array([1, 0, 1, 0, 1, 1, 1, 1])
GROUPS = jnp.array([0, 0, 0, 0, 1, 1, 1, 1])


def test_by_group_hand_computed():
  np.testing.assert_allclose(fairness.by_group("accuracy", LABELS, PREDS, GROUPS), [0.5, 0.75])
  np.testing.assert_allclose(fairness.by_group("tpr", LABELS, PREDS, GROUPS), [0.5, 1.0])
  np.testing.assert_allclose(fairness.by_group("fpr", LABELS, PREDS, GROUPS), [0.5, 1.0])
  np.testing.assert_allclose(fairness.by_group("fnr", LABELS, PREDS, GROUPS), [0.5, 0.0])
  np.testing.assert_allclose(fairness.by_group(fairness.selection_rate, LABELS, PREDS, GROUPS),
                             [0.5, 1.0])
  np.testing.assert_allclose(fairness.by_group("count", LABELS, PREDS, GROUPS), [4, 4])


def test_gaps_hand_computed():
  np.testing.assert_allclose(fairness.equal_opportunity_difference(LABELS, PREDS, GROUPS), 0.5)
  np.testing.assert_allclose(fairness.equalized_odds_difference(LABELS, PREDS, GROUPS), 0.5)
  np.testing.assert_allclose(fairness.demographic_parity_difference(LABELS, PREDS, GROUPS),
                             0.5)
  np.testing.assert_allclose(fairness.ratio("accuracy", LABELS, PREDS, GROUPS), 0.5 / 0.75)
  # Overall accuracy 5/8: the farthest group is 0.5 -> 1/8, and 0.75 -> 1/8 as well.
  np.testing.assert_allclose(
      fairness.difference("accuracy", LABELS, PREDS, GROUPS, method="to_overall"), 0.125)
  np.testing.assert_allclose(
      fairness.ratio("accuracy", LABELS, PREDS, GROUPS, method="to_overall"), 0.5 / 0.625)


def test_other_positive_label_swaps_rates():
  # With class 0 positive, group 0's TPR is its TNR for class 1 (1/2), group 1's is 0.
  np.testing.assert_allclose(fairness.by_group("tpr", LABELS, PREDS, GROUPS, pos_label=0),
                             [0.5, 0.0])


def test_empty_group_is_nan_and_ignored_by_aggregates():
  groups = jnp.array([0, 0, 0, 0, 2, 2, 2, 2])  # Group 1 has no examples.
  values = fairness.by_group("accuracy", LABELS, PREDS, groups)
  assert np.isnan(values[1]) and values.shape == (3,)
  np.testing.assert_allclose(fairness.difference("accuracy", LABELS, PREDS, groups), 0.25)
  np.testing.assert_allclose(fairness.worst_group_accuracy(LABELS, PREDS, groups), 0.5)


def test_empty_group_inside_jit_does_not_crash():
  fn = jax.jit(lambda y, p, g: fairness.by_group("fpr", y, p, g, num_groups=3))
  values = fn(LABELS, PREDS, GROUPS)
  np.testing.assert_allclose(values[:2], [0.5, 1.0])
  assert np.isnan(values[2])


def test_population_predictions_give_one_row_per_member():
  preds = jnp.stack([PREDS, LABELS])  # Member 1 is perfect.
  np.testing.assert_allclose(fairness.by_group("accuracy", LABELS, preds, GROUPS),
                             [[0.5, 0.75], [1.0, 1.0]])
  np.testing.assert_allclose(fairness.worst_group_accuracy(LABELS, preds, GROUPS), [0.5, 1.0])


def test_scores_are_turned_into_argmax_labels():
  logits = jax.nn.one_hot(PREDS, 2) * 3.0
  np.testing.assert_allclose(fairness.by_group("tpr", LABELS, logits, GROUPS), [0.5, 1.0])


def test_intersection_groups_and_names():
  attrs = jnp.array([[0, 0], [0, 1], [1, 0], [1, 1], [1, 1], [0, 0]])
  inter = fairness.intersect(attrs, names=["sex", "age"])
  np.testing.assert_array_equal(inter.ids, [0, 1, 2, 3, 3, 0])
  assert inter.num_groups == 4
  assert inter.names == ["sex=0&age=0", "sex=0&age=1", "sex=1&age=0", "sex=1&age=1"]
  labels = jnp.array([1, 1, 1, 1, 0, 0])
  preds = jnp.array([1, 0, 1, 1, 1, 1])
  np.testing.assert_allclose(fairness.by_group("accuracy", labels, preds, attrs),
                             [0.5, 0.0, 1.0, 0.5])
  # Under jit the value counts per attribute are given; an unseen combination is NaN.
  fn = jax.jit(lambda y, p, g: fairness.by_group("count", y, p, g, num_groups=(2, 3)))
  np.testing.assert_allclose(fn(labels, preds, attrs), [2, 1, 0, 1, 2, 0])
  summary = fairness.summary(labels, preds, attrs, group_names=["sex", "age"])
  assert summary["accuracy"]["by_group"]["sex=1&age=1"] == 0.5


def test_class_metrics_against_sklearn():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 5, 200)
  preds = np.where(rng.random(200) < 0.6, labels, rng.integers(0, 5, 200))
  recall = sk_metrics.recall_score(labels, preds, average=None)
  np.testing.assert_allclose(fairness.per_class_accuracy(labels, preds), recall, rtol=1e-6)
  np.testing.assert_allclose(fairness.worst_class_accuracy(labels, preds), recall.min(),
                             rtol=1e-6)
  np.testing.assert_allclose(fairness.balanced_accuracy(labels, preds),
                             sk_metrics.balanced_accuracy_score(labels, preds), rtol=1e-6)


def test_balanced_accuracy_skips_absent_classes():
  labels = jnp.array([0, 0, 2, 2])
  preds = jnp.array([0, 1, 2, 2])
  np.testing.assert_allclose(fairness.balanced_accuracy(labels, preds, num_classes=3), 0.75)


def test_bad_input_raises_value_error_naming_it():
  with pytest.raises(ValueError, match="metric='precision'.*valid keys"):
    fairness.by_group("precision", LABELS, PREDS, GROUPS)
  with pytest.raises(ValueError, match="method='largest'"):
    fairness.difference("accuracy", LABELS, PREDS, GROUPS, method="largest")
  with pytest.raises(ValueError, match="preds has shape"):
    fairness.by_group("accuracy", LABELS, PREDS[:5], GROUPS)
  with pytest.raises(ValueError, match="negative id"):
    fairness.by_group("accuracy", LABELS, PREDS, GROUPS - 1)
  with pytest.raises(ValueError, match="num_groups"):
    jax.jit(lambda g: fairness.by_group("accuracy", LABELS, PREDS, g))(GROUPS)


def test_register_metric():
  name = "precision_test_only"
  precision = fairness.register_metric(
      name, lambda y, p, pos: ((p == pos) & (y == pos), (p == pos) * jnp.ones_like(y)))
  # Group 0 predicts 1 twice, once correctly; group 1 predicts 1 four times, three correct.
  np.testing.assert_allclose(fairness.by_group(name, LABELS, PREDS, GROUPS), [0.5, 0.75])
  assert fairness.get_metric(name) is precision
  with pytest.raises(ValueError, match="already registered"):
    fairness.register_metric(name, precision.terms)


_SETTINGS = dict(max_examples=25, deadline=None)


@st.composite
def _cases(draw):
  n = 10  # A fixed size keeps compiled shapes the same across examples (fast).
  ints = lambda hi: hnp.arrays(np.int32, n, elements=st.integers(0, hi))  # noqa: E731
  return draw(ints(2)), draw(ints(2)), draw(ints(3))


@hypothesis.settings(**_SETTINGS)
@hypothesis.given(_cases(), st.sampled_from(["accuracy", "tpr", "fpr", "selection_rate"]),
                  st.sampled_from(["between_groups", "to_overall"]))
def test_difference_nonnegative_and_ratio_in_unit_interval(case, metric, method):
  labels, preds, groups = case
  diff = float(fairness.difference(metric, labels, preds, groups, num_groups=4, method=method))
  rat = float(fairness.ratio(metric, labels, preds, groups, num_groups=4, method=method))
  values = np.asarray(fairness.by_group(metric, labels, preds, groups, num_groups=4))
  if np.all(np.isnan(values)):
    assert np.isnan(diff) and np.isnan(rat)
  else:
    assert diff >= 0.0 and 0.0 <= rat <= 1.0 + 1e-6
    finite = values[~np.isnan(values)]
    if method == "between_groups":
      np.testing.assert_allclose(diff, finite.max() - finite.min(), atol=1e-6)


@hypothesis.settings(**_SETTINGS)
@hypothesis.given(_cases())
def test_by_group_matches_numpy_loop(case):
  labels, preds, groups = case
  values = np.asarray(fairness.by_group("tpr", labels, preds, groups, num_groups=4))
  for g in range(4):
    positive = (groups == g) & (labels == 1)
    expected = np.mean(preds[positive] == 1) if positive.any() else np.nan
    np.testing.assert_allclose(values[g], expected, rtol=1e-6)


# Unequal gaps, so that a swapped max/min or a single-rate equalized odds changes the answer.
# Case A (FPR gap larger):
#   group 0: labels 1 1 0 0 0 0, preds 1 0 1 0 0 0 -> TPR 1/2, FPR 1/4, selection 1/3
#   group 1: labels 1 1 1 1 0 0, preds 1 1 1 0 1 1 -> TPR 3/4, FPR 1,   selection 5/6
#   overall: TPR 4/6 = 2/3, FPR 3/6 = 1/2, selection 7/12.
A_LABELS = np.array([1, 1, 0, 0, 0, 0, 1, 1, 1, 1, 0, 0])
A_PREDS = np.array([1, 0, 1, 0, 0, 0, 1, 1, 1, 0, 1, 1])
A_GROUPS = np.array([0] * 6 + [1] * 6)
# Case B (TPR gap larger, three groups):
#   group 0: labels 1 1 1 1 0 0,       preds 1 1 1 1 1 0       -> TPR 1,   FPR 1/2, sel 5/6
#   group 1: labels 1 1 0 0 0,         preds 1 0 1 0 0         -> TPR 1/2, FPR 1/3, sel 2/5
#   group 2: labels 1 1 1 1 0 0 0 0,   preds 1 0 0 0 1 1 0 0   -> TPR 1/4, FPR 1/2, sel 3/8
B_LABELS = np.array([1, 1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0])
B_PREDS = np.array([1, 1, 1, 1, 1, 0, 1, 0, 1, 0, 0, 1, 0, 0, 0, 1, 1, 0, 0])
B_GROUPS = np.array([0] * 6 + [1] * 5 + [2] * 8)


def test_unequal_gaps_hand_computed_fpr_gap_larger():
  args = (A_LABELS, A_PREDS, A_GROUPS)
  np.testing.assert_allclose(fairness.by_group("tpr", *args), [1 / 2, 3 / 4])
  np.testing.assert_allclose(fairness.by_group("fpr", *args), [1 / 4, 1.0])
  # TPR gap 1/4, FPR gap 3/4: equalized odds is the larger; its ratio the smaller ratio.
  np.testing.assert_allclose(fairness.equal_opportunity_difference(*args), 1 / 4)
  np.testing.assert_allclose(fairness.equalized_odds_difference(*args), 3 / 4)
  np.testing.assert_allclose(fairness.ratio("tpr", *args), 2 / 3, rtol=1e-6)
  np.testing.assert_allclose(fairness.equalized_odds_ratio(*args), 1 / 4)
  np.testing.assert_allclose(fairness.demographic_parity_difference(*args), 5 / 6 - 1 / 3,
                             rtol=1e-6)
  np.testing.assert_allclose(fairness.demographic_parity_ratio(*args), 2 / 5, rtol=1e-6)
  # To the overall value: TPR max(|1/2 - 2/3|, |3/4 - 2/3|) = 1/6, FPR max(1/4, 1/2) = 1/2.
  kw = dict(method="to_overall")
  np.testing.assert_allclose(fairness.equal_opportunity_difference(*args, **kw), 1 / 6,
                             rtol=1e-6)
  np.testing.assert_allclose(fairness.equalized_odds_difference(*args, **kw), 1 / 2)
  # Ratios to overall: TPR min(3/4, 8/9) = 3/4, FPR min(1/2, 1/2) = 1/2.
  np.testing.assert_allclose(fairness.ratio("tpr", *args, **kw), 3 / 4, rtol=1e-6)
  np.testing.assert_allclose(fairness.equalized_odds_ratio(*args, **kw), 1 / 2, rtol=1e-6)
  np.testing.assert_allclose(fairness.demographic_parity_difference(*args, **kw), 1 / 4,
                             rtol=1e-6)


def test_unequal_gaps_hand_computed_tpr_gap_larger():
  args = (B_LABELS, B_PREDS, B_GROUPS)
  np.testing.assert_allclose(fairness.by_group("tpr", *args), [1.0, 1 / 2, 1 / 4])
  np.testing.assert_allclose(fairness.by_group("fpr", *args), [1 / 2, 1 / 3, 1 / 2], rtol=1e-6)
  # TPR gap 3/4 > FPR gap 1/6; TPR ratio 1/4 < FPR ratio 2/3.
  np.testing.assert_allclose(fairness.equal_opportunity_difference(*args), 3 / 4)
  np.testing.assert_allclose(fairness.equalized_odds_difference(*args), 3 / 4)
  np.testing.assert_allclose(fairness.difference("fpr", *args), 1 / 6, rtol=1e-6)
  np.testing.assert_allclose(fairness.equalized_odds_ratio(*args), 1 / 4)
  np.testing.assert_allclose(fairness.ratio("fpr", *args), 2 / 3, rtol=1e-6)
  np.testing.assert_allclose(fairness.demographic_parity_difference(*args), 5 / 6 - 3 / 8,
                             rtol=1e-6)
  np.testing.assert_allclose(fairness.demographic_parity_ratio(*args), 9 / 20, rtol=1e-6)


def _numpy_gaps(labels, preds, groups, method):
  """fairlearn's definitions written directly in numpy (fairlearn is not a dependency)."""
  def rate(mask, hit):
    return np.mean(hit[mask])

  def rates(name):
    cond = {"tpr": labels == 1, "fpr": labels == 0, "sel": np.ones_like(labels, bool)}[name]
    per = np.array([rate(cond & (groups == g), preds == 1) for g in np.unique(groups)])
    return per, rate(cond, preds == 1)

  def diff(name):
    per, overall = rates(name)
    return per.max() - per.min() if method == "between_groups" else np.abs(per - overall).max()

  def ratio(name):
    per, overall = rates(name)
    if method == "between_groups":
      return per.min() / per.max()
    return np.min(np.minimum(per, overall) / np.maximum(per, overall))

  return {"demographic_parity_difference": diff("sel"),
          "demographic_parity_ratio": ratio("sel"),
          "equal_opportunity_difference": diff("tpr"),
          "equalized_odds_difference": max(diff("tpr"), diff("fpr")),
          "equalized_odds_ratio": min(ratio("tpr"), ratio("fpr"))}


@pytest.mark.parametrize("case", ["A", "B"])
@pytest.mark.parametrize("method", ["between_groups", "to_overall"])
def test_gaps_match_direct_numpy(case, method):
  labels, preds, groups = {"A": (A_LABELS, A_PREDS, A_GROUPS),
                           "B": (B_LABELS, B_PREDS, B_GROUPS)}[case]
  for name, expected in _numpy_gaps(labels, preds, groups, method).items():
    got = getattr(fairness, name)(labels, preds, groups, method=method)
    np.testing.assert_allclose(got, expected, rtol=1e-6, err_msg=f"{name} {method}")
