"""Bootstrap intervals and the MTA-F losses."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoffs import fairness


def _bernoulli(n, p=0.7, seed=0):
  return (np.random.default_rng(seed).random(n) < p).astype(np.float32)


def test_bootstrap_contains_truth_narrows_and_is_deterministic():
  key = jax.random.key(0)
  small = fairness.bootstrap_ci(key, jnp.mean, _bernoulli(200), num_samples=400)
  large = fairness.bootstrap_ci(key, jnp.mean, _bernoulli(3200), num_samples=400)
  for interval in (small, large):
    assert interval.low <= 0.7 <= interval.high
    assert interval.low <= interval.estimate <= interval.high
  width_small = small.high - small.low
  width_large = large.high - large.low
  # Width scales as 1/sqrt(n): 16x the data, about a quarter of the width.
  assert 0.15 < width_large / width_small < 0.4
  again = fairness.bootstrap_ci(key, jnp.mean, _bernoulli(200), num_samples=400)
  assert again.low == small.low and again.high == small.high
  other = fairness.bootstrap_ci(jax.random.key(1), jnp.mean, _bernoulli(200), num_samples=400)
  assert (other.low, other.high) != (small.low, small.high)


def test_bootstrap_close_to_normal_approximation_and_batched_same():
  data = _bernoulli(2000, seed=3)
  key = jax.random.key(2)
  interval = fairness.bootstrap_ci(key, jnp.mean, data, num_samples=1000)
  half = 1.96 * np.sqrt(data.mean() * (1 - data.mean()) / data.size)
  np.testing.assert_allclose(interval.high - interval.low, 2 * half, rtol=0.15)
  batched = fairness.bootstrap_ci(key, jnp.mean, data, num_samples=1000, batch_size=128)
  np.testing.assert_allclose(batched.low, interval.low)
  np.testing.assert_allclose(batched.high, interval.high)


def test_bootstrap_of_group_metric_with_population_axis():
  labels = jnp.array([1, 0, 1, 0, 1, 0, 1, 0] * 4)
  preds = jnp.stack([labels, 1 - labels])  # Members: perfect, always wrong.
  groups = jnp.arange(32) % 2
  stat = lambda y, p, g: fairness.by_group("accuracy", y, p, g, num_groups=2)  # noqa: E731
  interval = fairness.bootstrap_ci(jax.random.key(0), stat, labels, preds, groups,
                                   num_samples=50, example_axes=(0, 1, 0))
  np.testing.assert_allclose(interval.low, [[1, 1], [0, 0]])
  np.testing.assert_allclose(interval.high, [[1, 1], [0, 0]])


def test_bootstrap_bad_input():
  with pytest.raises(ValueError, match="confidence=1.5"):
    fairness.bootstrap_ci(jax.random.key(0), jnp.mean, jnp.ones(3), confidence=1.5)
  with pytest.raises(ValueError, match="disagree"):
    fairness.bootstrap_ci(jax.random.key(0), lambda a, b: a.mean(), jnp.ones(3), jnp.ones(4))


def test_mmd_squared_against_numpy_and_properties():
  rng = np.random.default_rng(0)
  a, b = rng.random(7).astype(np.float32), rng.random(5).astype(np.float32)
  k = lambda x, y: np.exp(-np.subtract.outer(x, y) ** 2 / 0.1**2)  # noqa: E731
  expected = k(a, a).mean() - 2 * k(a, b).mean() + k(b, b).mean()
  np.testing.assert_allclose(fairness.mmd_squared(a, b), expected, rtol=1e-5)
  np.testing.assert_allclose(fairness.mmd_squared(a, a), 0.0, atol=1e-6)
  np.testing.assert_allclose(fairness.mmd_squared(a, b), fairness.mmd_squared(b, a), rtol=1e-6)
  # Two single points far apart: 1 - 2 * exp(-d^2/l^2) + 1 ~= 2.
  np.testing.assert_allclose(fairness.mmd_squared(jnp.array([0.0]), jnp.array([1.0])), 2.0,
                             atol=1e-6)
  # Weights of 0/1 equal boolean selection.
  weights = np.array([1, 0, 1, 1, 0, 1, 1], np.float32)
  np.testing.assert_allclose(fairness.mmd_squared(a, b, weights_a=weights),
                             fairness.mmd_squared(a[weights > 0], b), rtol=1e-5)
  grad = jax.grad(lambda s: fairness.mmd_squared(s, b))(jnp.asarray(a))
  assert np.all(np.isfinite(grad))
  with pytest.raises(ValueError, match="bandwidth=0"):
    fairness.mmd_squared(a, b, bandwidth=0)


def test_fpr_gap_hard_and_soft():
  labels = jnp.array([0, 0, 0, 0, 1, 1])
  groups = jnp.array([0, 0, 1, 1, 0, 1])
  preds = jnp.array([1, 0, 1, 1, 1, 0])  # FPR group 0 = 1/2, group 1 = 1.
  np.testing.assert_allclose(fairness.fpr_gap(labels, preds, groups), 0.5)
  soft = jnp.array([0.2, 0.4, 0.9, 0.7, 0.5, 0.5])  # Soft FPR 0.3 vs 0.8.
  np.testing.assert_allclose(fairness.fpr_gap(labels, soft, groups), 0.5, rtol=1e-6)
  grad = jax.grad(lambda s: fairness.fpr_gap(labels, s, groups))(soft)
  np.testing.assert_allclose(grad, [-0.5, -0.5, 0.5, 0.5, 0, 0])
  assert np.isnan(fairness.fpr_gap(labels, preds, jnp.array([0, 0, 0, 0, 1, 1])))


def test_threshold_at_positive_rate_and_abs_correlation():
  scores = jnp.array([0.1, 0.9, 0.3, 0.7, 0.5])
  threshold = fairness.threshold_at_positive_rate(scores, 0.4)
  assert float(threshold) == pytest.approx(0.7)
  assert int(jnp.sum(scores >= threshold)) == 2
  membership = np.array([0, 1, 0, 1, 0], np.float32)
  np.testing.assert_allclose(fairness.abs_correlation(scores, membership),
                             abs(np.corrcoef(np.asarray(scores), membership)[0, 1]), rtol=1e-4)
