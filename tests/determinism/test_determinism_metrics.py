"""Run-to-run metrics against hand-computed values and numpy/scipy references."""

from __future__ import annotations

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from scipy.spatial.distance import pdist

from tradeoffs.determinism import metrics

# Three runs, four examples (see the hand computations in each test).
RUNS = np.array([[0, 1, 2, 3],
                 [0, 1, 2, 0],
                 [1, 1, 0, 3]])
LABELS = np.array([0, 1, 2, 3])


def test_churn_by_hand():
  # Pairs (0,1): differ at example 3 -> 1/4; (0,2): examples 0, 2 -> 2/4; (1,2): 0, 2, 3 -> 3/4.
  np.testing.assert_allclose(metrics.pairwise_churn(RUNS)[[0, 0, 1], [1, 2, 2]],
                             [0.25, 0.5, 0.75])
  np.testing.assert_allclose(metrics.churn(RUNS), 0.5)
  assert float(metrics.churn(RUNS[[0, 0]])) == 0.0


def test_churn_needs_two_runs():
  with pytest.raises(ValueError, match="at least 2 runs"):
    metrics.churn(RUNS[:1])


def test_flip_counts_and_unstable_examples_by_hand():
  # Modal predictions: [0, 1, 2, 3]; runs away from it: 1, 0, 1, 1.
  np.testing.assert_array_equal(metrics.modal_predictions(RUNS, 4), [0, 1, 2, 3])
  np.testing.assert_array_equal(metrics.flip_counts(RUNS, 4), [1, 0, 1, 1])
  np.testing.assert_array_equal(metrics.unstable_examples(RUNS, 4), [0, 2, 3])
  np.testing.assert_array_equal(metrics.unstable_examples(RUNS, 4, ids=[10, 11, 12, 13]),
                                [10, 12, 13])


def test_modal_ties_go_to_smallest_label():
  np.testing.assert_array_equal(metrics.modal_predictions(np.array([[2], [1]]), 3), [1])


def test_top1_and_per_class_std_by_hand():
  # Accuracies per run: 4/4, 3/4, 2/4 -> population std of [1, .75, .5].
  np.testing.assert_allclose(metrics.top1_std(RUNS, LABELS), np.std([1, .75, .5]), rtol=1e-6)
  np.testing.assert_allclose(metrics.top1_std(RUNS, LABELS, ddof=1),
                             np.std([1, .75, .5], ddof=1), rtol=1e-6)
  # Per class (one example each): class 0 correct in runs 0,1; class 3 in runs 0,2.
  expected = np.std([[1, 1, 1, 1], [1, 1, 1, 0], [0, 1, 0, 1]], axis=0)
  np.testing.assert_allclose(metrics.per_class_accuracy_std(RUNS, LABELS, 4), expected,
                             rtol=1e-6)
  # A class with no examples is NaN, not 0.
  assert np.isnan(metrics.per_class_accuracy(RUNS, LABELS, 5)[0, 4])


def _numpy_rates(preds, labels, groups, num_groups, positive):
  fpr = np.full((len(preds), num_groups), np.nan)
  fnr = np.full((len(preds), num_groups), np.nan)
  for r, g in itertools.product(range(len(preds)), range(num_groups)):
    p, y = preds[r][groups == g] == positive, labels[groups == g] == positive
    if (~y).sum():
      fpr[r, g] = (p & ~y).sum() / (~y).sum()
    if y.sum():
      fnr[r, g] = (~p & y).sum() / y.sum()
  return fpr, fnr


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_group_error_rates_match_numpy(seed):
  rng = np.random.default_rng(seed)
  preds = rng.integers(0, 3, size=(4, 12))
  labels = rng.integers(0, 3, size=12)
  groups = rng.integers(0, 3, size=12)
  out = metrics.per_group_error_rates(preds, labels, groups, 3, positive_class=1)
  fpr, fnr = _numpy_rates(preds, labels, groups, 3, 1)
  np.testing.assert_allclose(out["fpr"], fpr, rtol=1e-6)
  np.testing.assert_allclose(out["fnr"], fnr, rtol=1e-6)
  ovr = metrics.per_group_error_rates(preds, labels, groups, 3, num_classes=3)
  for c in range(3):
    fpr_c, fnr_c = _numpy_rates(preds, labels, groups, 3, c)
    np.testing.assert_allclose(ovr["fpr"][..., c], fpr_c, rtol=1e-6)
    np.testing.assert_allclose(ovr["fnr"][..., c], fnr_c, rtol=1e-6)
  stds = metrics.per_group_error_rate_std(preds, labels, groups, 3, positive_class=1)
  np.testing.assert_allclose(stds["fpr_std"], np.std(fpr, axis=0), rtol=1e-5, atol=1e-7)


def test_one_vs_rest_needs_num_classes():
  with pytest.raises(ValueError, match="num_classes"):
    metrics.per_group_error_rates(RUNS, LABELS, np.zeros(4, int), 1)


def test_weight_distance_by_hand_and_against_scipy():
  # Runs flattened: [0, 0], [3, 4], [0, 0] -> distances 5, 0, 5 -> mean 10/3.
  params = {"a": np.array([[0.0], [3.0], [0.0]]), "b": np.array([[0.0], [4.0], [0.0]])}
  np.testing.assert_allclose(metrics.weight_distance(params), 10 / 3, rtol=1e-6)
  rng = np.random.default_rng(0)
  tree = {"w": rng.normal(size=(5, 3, 2)), "b": rng.normal(size=(5, 4))}
  flat = np.concatenate([tree["b"].reshape(5, -1), tree["w"].reshape(5, -1)], axis=1)
  np.testing.assert_allclose(metrics.weight_distance(tree), pdist(flat).mean(), rtol=1e-5)


def test_flatten_runs_rejects_mismatched_run_axes():
  with pytest.raises(ValueError, match="leading run axis"):
    metrics.flatten_runs({"a": np.zeros((3, 2)), "b": np.zeros((2, 2))})


def test_bitwise_identical():
  x = np.array([1.0, np.nan, 2.0], np.float32)
  assert metrics.bitwise_identical([x, x.copy(), jnp.asarray(x)])
  assert metrics.bitwise_identical(np.stack([x, x]))
  # Equal as numbers but not as bits: -0.0 and 0.0.
  assert not metrics.bitwise_identical([np.zeros(2), -np.zeros(2)])
  assert not metrics.bitwise_identical([np.zeros(2, np.float32), np.zeros(2, np.float64)])
  assert not metrics.bitwise_identical([{"a": x}, {"b": x}])
  assert metrics.bitwise_identical([{"a": x, "b": [x]}, {"a": x.copy(), "b": [x.copy()]}])
  with pytest.raises(ValueError, match="at least 2"):
    metrics.bitwise_identical([x])


def test_determinism_cost():
  # Medians 2 and 1 -> 2x; the 100 s outlier (a compile) does not move it.
  assert metrics.determinism_cost([2, 2, 100], [1, 1, 1]) == 2.0
  with pytest.raises(ValueError, match="default_step_times"):
    metrics.determinism_cost([1.0], [0.0])


def test_metrics_jit():
  churn = jax.jit(metrics.churn)(jnp.asarray(RUNS))
  np.testing.assert_allclose(churn, 0.5)
  flips = jax.jit(metrics.flip_counts, static_argnums=1)(jnp.asarray(RUNS), 4)
  np.testing.assert_array_equal(flips, [1, 0, 1, 1])


def test_summary_values():
  logits = jax.nn.one_hot(RUNS, 4)
  out = metrics.summary(logits, LABELS, 4, params={"w": np.array([[0., 0], [3, 4], [0, 0]])},
                        groups=np.array([0, 0, 1, 1]), num_groups=2, positive_class=0)
  assert out["runs"] == 3 and out["churn"] == pytest.approx(0.5)
  assert out["top1_mean"] == pytest.approx(0.75)
  assert out["unstable_fraction"] == pytest.approx(0.75)
  assert out["weight_l2"] == pytest.approx(10 / 3, rel=1e-6)
  assert not out["predictions_identical"] and not out["weights_identical"]
  assert len(out["fpr_std"]) == 2


def _runs_from_correct(correct, labels, num_classes):
  """Predictions that are right exactly where `correct` [runs, examples] is True."""
  return np.where(correct, labels[None], (labels[None] + 1) % num_classes)


def test_per_class_std_null_keeps_class_sizes_by_hand():
  # Class 0 has example 0 only, class 1 has examples 1-3; only example 0 changes across the
  # two runs. A permutation puts example 0 in the 1-example class (per-class std [1/2, 0],
  # probability 1/4) or in the 3-example class ([0, 1/6]); any other row means the class
  # sizes were not kept (e.g. labels drawn with replacement).
  labels = np.array([0, 1, 1, 1])
  correct = np.array([[1, 1, 1, 1], [0, 1, 1, 1]], bool)
  result = metrics.per_class_std_null(_runs_from_correct(correct, labels, 2), labels, 2,
                                      jax.random.key(0), num_draws=2000)
  np.testing.assert_allclose(result.per_class_std, [0.5, 0.0])
  assert result.top1_std == pytest.approx(0.125)       # Accuracies 1 and 3/4.
  rows = result.null_per_class_std
  small = np.all(np.isclose(rows, [0.5, 0.0]), axis=1)
  large = np.all(np.isclose(rows, [0.0, 1 / 6]), axis=1)
  assert np.all(small | large)
  assert 0.21 < small.mean() < 0.29
  # Ratios: observed mean over classes 0.25 / 0.125 = 2; null ratios 2 or 2/3.
  assert result.ratio("mean") == pytest.approx(2.0)
  np.testing.assert_allclose(np.unique(np.round(result.null_ratio("mean"), 6)), [2 / 3, 2.0],
                             rtol=1e-5)
  assert result.p_value("mean") == pytest.approx((1 + small.sum()) / 2001)


def test_per_class_std_null_covers_iid_correctness():
  # Correctness iid Bernoulli(0.85) per (run, example), independent of the class: the
  # observed class partition is one more draw of the null, so the 95% band should cover
  # the observed ratio about 95% of the time (here: over 20 independent data sets).
  rng = np.random.default_rng(0)
  labels = np.repeat(np.arange(10), 50)
  inside, ratios = {"mean": 0, "max": 0}, []
  for i in range(20):
    correct = rng.random((10, labels.size)) < 0.85
    result = metrics.per_class_std_null(_runs_from_correct(correct, labels, 10), labels, 10,
                                        jax.random.key(i), num_draws=400)
    for stat in inside:
      lo, hi = result.band(stat)
      inside[stat] += lo <= result.ratio(stat) <= hi
    ratios.append(result.ratio("mean"))
  assert inside["mean"] >= 16 and inside["max"] >= 16, inside
  # The ratio is large (about sqrt(10) for the mean) with no fragile class: sample size.
  assert 2.5 < np.median(ratios) < 4.5


def test_per_class_std_null_flags_a_fragile_class():
  # Class 3 is right in every other run and half wrong in the rest; the other classes are
  # iid Bernoulli(0.9). Its per-class std is far above what a shuffled class shows.
  rng = np.random.default_rng(1)
  labels = np.repeat(np.arange(10), 50)
  correct = rng.random((10, labels.size)) < 0.9
  fragile = labels == 3
  correct[0::2][:, fragile] = True
  correct[1::2][:, fragile] = rng.random((5, fragile.sum())) < 0.5
  result = metrics.per_class_std_null(_runs_from_correct(correct, labels, 10), labels, 10,
                                      jax.random.key(0), num_draws=400)
  assert int(np.argmax(result.per_class_std)) == 3
  assert result.ratio("max") > result.band("max")[1]
  assert result.p_value("max") < 0.01


def test_per_class_std_null_bad_input():
  labels = np.array([0, 1])
  with pytest.raises(ValueError, match="num_draws=0"):
    metrics.per_class_std_null(np.array([[0, 1], [1, 1]]), labels, 2, jax.random.key(0), 0)
  with pytest.raises(ValueError, match="at least 2"):
    metrics.per_class_std_null(np.array([[0, 1]]), labels, 2, jax.random.key(0))
  with pytest.raises(ValueError, match="stat='median'"):
    metrics.per_class_std_null(np.array([[0, 1], [1, 1]]), labels, 2,
                               jax.random.key(0)).ratio("median")
