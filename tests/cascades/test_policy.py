"""The cascade rule against hand-computed cases and a closed-form optimum."""

from __future__ import annotations

import numpy as np
import pytest

from tradeoffs import cascades


def test_features_by_hand():
  logits = np.log(np.array([[0.7, 0.2, 0.1], [1 / 3, 1 / 3, 1 / 3]]))
  f = cascades.features(logits)
  np.testing.assert_allclose(f["confidence"], [0.7, 1 / 3])
  np.testing.assert_allclose(f["margin"], [0.5, 0.0], atol=1e-12)
  np.testing.assert_allclose(f["entropy"], [-(0.7 * np.log(0.7) + 0.2 * np.log(0.2)
                                              + 0.1 * np.log(0.1)), np.log(3)])


def test_gain_is_fast_minus_slow_loss():
  fast = np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
  slow = np.array([[0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
  labels = np.array([1, 0, 1])
  np.testing.assert_array_equal(cascades.gain(fast, slow, labels), [1.0, 0.0, -1.0])
  ce = cascades.loss(fast, labels, "cross_entropy")
  np.testing.assert_allclose(ce[0], np.log(1 + np.e))


def test_binned_estimator_by_hand():
  x = np.array([0.1, 0.2, 0.3, 0.4])
  g = np.array([1.0, 0.0, 0.0, 0.0])
  edges, means = cascades.fit_binned(x, g, bins=2)
  np.testing.assert_allclose(edges, [0.25])  # The median of the calibration feature.
  np.testing.assert_allclose(means, [0.5, 0.0])
  np.testing.assert_allclose(cascades.predict_binned(edges, means, [0.0, 0.25, 0.9]),
                             [0.5, 0.0, 0.0])
  # Four bins on four points: each point its own bin; ties merge edges.
  edges, means = cascades.fit_binned([0.1, 0.1, 0.1, 0.4], [1.0, 0.0, 1.0, -1.0], bins=4)
  np.testing.assert_allclose(edges, [0.1, 0.175])
  np.testing.assert_allclose(means, [0.25, 2 / 3, -1.0])  # First bin empty: overall mean.


def test_regression_estimator_by_hand():
  x = np.array([[0.0], [1.0], [2.0], [3.0]])
  g = 1.0 - 0.5 * x[:, 0]
  coef = cascades.fit_regression(x, g)
  np.testing.assert_allclose(coef, [1.0, -0.5], atol=1e-12)
  np.testing.assert_allclose(cascades.predict_regression(coef, np.array([[4.0]])), [-1.0])
  # Two features, noisy: the normal equations by hand.
  rng = np.random.default_rng(0)
  x2 = rng.normal(size=(50, 2))
  y = rng.normal(size=50)
  a = np.concatenate([np.ones((50, 1)), x2], 1)
  np.testing.assert_allclose(cascades.fit_regression(x2, y), np.linalg.solve(a.T @ a, a.T @ y))


def test_rule_matches_the_closed_form_optimum():
  """x ~ U(0, 1); the fast model errs with probability 0.6(1 − x), the slow one with 0.1,
  independently. E[ℓ_fast − ℓ_slow | x] = 0.5 − 0.6x, so the optimal rule invokes iff
  α(0.5 − 0.6x) > β·Δc, i.e. x < (0.5 − τ)/0.6 with τ = β·Δc/α."""
  rng = np.random.default_rng(0)
  n = 200_000
  x = rng.uniform(size=n)
  g = (rng.uniform(size=n) < 0.6 * (1 - x)).astype(float) - (rng.uniform(size=n) < 0.1)
  x_eval = np.linspace(0.0005, 0.9995, 1000)
  alpha, beta, delta = 2.0, 0.5, 0.4  # τ = 0.1: invoke iff x < 2/3.
  optimal = x_eval < (0.5 - beta * delta / alpha) / 0.6
  coef = cascades.fit_regression(x, g)
  invoke_reg = cascades.policy(cascades.predict_regression(coef, x_eval), delta, alpha, beta)
  edges, means = cascades.fit_binned(x, g, bins=50)
  invoke_bin = cascades.policy(cascades.predict_binned(edges, means, x_eval), delta, alpha,
                               beta)
  # Disagreements only next to the boundary (within the estimation error / one bin).
  for invoke, width in ((invoke_reg, 0.01), (invoke_bin, 0.03)):
    wrong = x_eval[invoke != optimal]
    assert np.all(np.abs(wrong - 2 / 3) < width), wrong
  # The expected loss of the fitted rule is within 0.1% of the optimum's.
  lf, ls = 0.6 * (1 - x_eval), 0.1
  risk = lambda inv: np.mean(np.where(inv, ls, lf) * alpha + beta * delta * inv)  # noqa
  assert risk(invoke_reg) <= risk(optimal) + 1e-3
  assert risk(invoke_bin) <= risk(optimal) + 1e-3


def test_matched_rate_baselines_and_combine():
  score = np.array([[0.1, 0.9, 0.5, 0.3], [0.4, 0.4, 0.0, 1.0]])
  invoke = cascades.invoke_at_rate(score, [0.5, 0.25])
  np.testing.assert_array_equal(invoke, [[False, True, True, False],
                                         [False, False, False, True]])
  rand = cascades.random_at_rate(10, [0.3, 0.0, 1.0], seed=1, members=3)
  np.testing.assert_array_equal(rand.sum(1), [3, 0, 10])
  np.testing.assert_array_equal(rand, cascades.random_at_rate(10, [0.3, 0.0, 1.0], 1, 3))
  fast, slow = np.zeros((2, 4, 3)), np.ones((2, 4, 3))
  np.testing.assert_array_equal(cascades.combine(fast, slow, invoke)[..., 0], invoke)
  np.testing.assert_allclose(cascades.expected_cost(0.25, 1.0, 4.0), 2.0)


def test_cost_loss_curve_by_hand():
  g = np.array([0.5, 0.2, -0.1, 0.0])
  lf, ls = np.array([1.0, 1.0, 0.0, 0.0]), np.array([0.0, 1.0, 1.0, 0.0])
  curve = cascades.cost_loss_curve(g, lf, ls, 1.0, 3.0, [0.0, 0.1, 1.0])  # Δc = 2
  np.testing.assert_allclose(curve["rate"], [0.5, 0.25, 0.0])  # thresholds 0, 0.2, 2
  np.testing.assert_allclose(curve["loss"], [0.25, 0.25, 0.5])
  np.testing.assert_allclose(curve["cost"], [2.5, 1.75, 1.0])


def test_bad_input_is_one_clear_error():
  with pytest.raises(ValueError, match="classes \\[2\\]"):
    cascades.check_calibration([0, 1, 1, 0], 3)
  with pytest.raises(ValueError, match="fast cost"):
    cascades.check_costs(-1.0, 2.0)
  with pytest.raises(ValueError, match="empty"):
    cascades.check_grid((), "gain_thresholds")
  with pytest.raises(ValueError, match="beta"):
    cascades.policy([0.1], 1.0, 1.0, -0.5)
  with pytest.raises(ValueError, match="bins"):
    cascades.fit_binned([0.1], [1.0], bins=0)
  with pytest.raises(ValueError, match="\\[0, 1\\]"):
    cascades.invoke_at_rate([0.1, 0.2], 1.5)
