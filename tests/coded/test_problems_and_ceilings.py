"""The pieces the coded study moved down: synthetic problems, "stays below" times, the
block-RIP constant of an encoding, and E[T(k:m)] (closed forms against Monte Carlo)."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.integrate
import scipy.stats

from tradeoffs import coded
from tradeoffs.coded import diagnostics, problems, stragglers


def test_synthetic_problem_at_condition_one_is_the_old_construction():
  key = jax.random.key(3)
  p = problems.synthetic_problem(key, num_examples=64, dim=5, noise=0.5, l2=1e-3)
  kx, kw, ke = jax.random.split(key, 3)
  x = jax.random.normal(kx, (64, 5))
  y = x @ jax.random.normal(kw, (5,)) + 0.5 * jax.random.normal(ke, (64,))
  np.testing.assert_array_equal(p.features, x)
  np.testing.assert_array_equal(p.targets, y)
  assert (p.loss, p.l2, p.l1) == ("least_squares", 1e-3, 0.0)


def test_synthetic_problem_spreads_the_gram_spectrum_to_the_condition_number():
  p = problems.synthetic_problem(jax.random.key(0), num_examples=200_000, dim=4,
                                 condition_number=100.0)
  eig = np.linalg.eigvalsh(np.asarray(p.features.T @ p.features, np.float64) / 200_000)
  np.testing.assert_allclose(eig, [0.01, 0.01 ** (2 / 3), 0.01 ** (1 / 3), 1.0], rtol=0.02)
  labels = problems.synthetic_problem(jax.random.key(0), num_examples=50, dim=3,
                                      loss="logistic").targets
  assert set(np.unique(labels).tolist()) <= {0.0, 1.0}
  with pytest.raises(ValueError, match="condition_number=0.5"):
    problems.synthetic_problem(jax.random.key(0), num_examples=8, dim=2, condition_number=0.5)


def test_settling_is_the_time_after_which_the_error_stays_below():
  times = np.array([0.0, 1.0, 2.5, 4.0, 6.0, 7.0])
  sub = np.array([5.0, 0.05, 0.2, 0.08, 0.09, 0.01])
  assert diagnostics.time_to_epsilon(times, sub, 0.1) == 1.0  # The first dip.
  assert diagnostics.settling_index(sub, 0.1) == 3
  assert diagnostics.time_to_stay_below(times, sub, 0.1) == 4.0
  assert diagnostics.settling_index(sub, 10.0) == 0
  assert diagnostics.settling_index(np.array([1.0, 0.01, 0.5]), 0.1) is None
  assert diagnostics.time_to_stay_below(times[:3], np.array([1.0, 0.01, 0.5]), 0.1) == math.inf
  assert diagnostics.settling_index(np.array([1.0, 0.01, np.nan, 0.01]), 0.1) == 3


def test_block_rip_epsilon_of_a_tight_frame_with_every_worker_is_zero():
  eps = diagnostics.block_rip_epsilon("hadamard", 16, 2.0, 4, 4, jax.random.key(0), 4)
  assert eps < 1e-5
  assert diagnostics.block_rip_epsilon("uncoded", 16, 1.0, 4, 2, jax.random.key(0), 8) == \
      pytest.approx(1.0)  # Half the identity's blocks: eigenvalues 0 and 2 after rescaling.
  assert diagnostics.block_rip_epsilon("gaussian", 16, 2.0, 4, 2, jax.random.key(0), 8) > 0.1


def test_expected_kth_delay_closed_forms():
  # 1 + Exp(1), m = 8: E[T(8:8)] = 1 + H_8, E[T(4:8)] = 1 + 1/8 + 1/7 + 1/6 + 1/5.
  h8 = sum(1 / i for i in range(1, 9))
  assert stragglers.expected_kth_delay("shifted_exponential", 8, 8) == pytest.approx(1 + h8)
  e4 = stragglers.expected_kth_delay("shifted_exponential", 4, 8, shift=1.0, rate=1.0)
  assert e4 == pytest.approx(1 + 1 / 8 + 1 / 7 + 1 / 6 + 1 / 5)
  assert (1 + h8) / e4 == pytest.approx(2.2746, abs=1e-4)  # The ceiling ~2.28.
  assert stragglers.expected_kth_delay("shifted_exponential", 2, 4, shift=0.5, rate=2.0) == \
      pytest.approx(0.5 + (1 / 4 + 1 / 3) / 2)
  slow = dict(num_slow=2, base=1.0, slow_delay=4.0)
  assert stragglers.expected_kth_delay("fixed_slow", 6, 8, **slow) == 1.0
  assert stragglers.expected_kth_delay("fixed_slow", 7, 8, **slow) == 5.0
  # Pareto(alpha=2, scale 1), k = 1 of m: the minimum is Pareto(m alpha), mean m a/(m a - 1).
  assert stragglers.expected_kth_delay("pareto", 1, 8, alpha=2.0) == pytest.approx(16 / 15)
  # The maximum of m = 1 Pareto(alpha = 1) has no mean.
  assert stragglers.expected_kth_delay("pareto", 1, 1, alpha=1.0) == math.inf


@pytest.mark.parametrize("k", [1, 4, 8])
def test_expected_pareto_order_statistic_matches_numerical_integration(k):
  m, alpha, scale = 8, 2.0, 1.5
  dist = scipy.stats.pareto(alpha, scale=scale)
  # Density of the k-th smallest of m: m!/((k-1)!(m-k)!) F^(k-1) (1-F)^(m-k) f.
  coef = math.factorial(m) / (math.factorial(k - 1) * math.factorial(m - k))
  integrand = lambda x: x * coef * dist.cdf(x) ** (k - 1) * dist.sf(x) ** (m - k) * dist.pdf(x)
  expected = scipy.integrate.quad(integrand, scale, np.inf, limit=200)[0]
  got = stragglers.expected_kth_delay("pareto", k, m, scale=scale, alpha=alpha)
  assert got == pytest.approx(expected, rel=1e-6)


@pytest.mark.parametrize("model,params", [
    ("shifted_exponential", dict(shift=1.0, rate=1.0)),
    ("pareto", dict(scale=1.0, alpha=3.0)),
    ("fixed_slow", dict(num_slow=2, base=1.0, slow_delay=4.0)),
])
@pytest.mark.parametrize("k", [2, 6])
def test_closed_forms_agree_with_the_sampled_delays(model, params, k):
  delays = np.asarray(coded.sample_delays(model, jax.random.key(5), 100_000, 8, **params))
  sampled = float(np.mean(np.sort(delays, axis=-1)[:, k - 1]))
  assert stragglers.expected_kth_delay(model, k, 8, **params) == pytest.approx(sampled,
                                                                                rel=0.01)


def test_monte_carlo_and_trace_means():
  # bimodal without jitter, k = m = 2: slow unless neither straggles, P(fast) = 0.8^2.
  got = stragglers.expected_kth_delay("bimodal", 2, 2, samples=200_000, base=1.0,
                                      slow_delay=4.0, p_slow=0.2, jitter=0.0)
  assert got == pytest.approx(1.0 + 4.0 * (1 - 0.8 ** 2), rel=0.01)
  again = stragglers.expected_kth_delay("bimodal", 2, 2, samples=200_000, base=1.0,
                                        slow_delay=4.0, p_slow=0.2, jitter=0.0)
  assert got == again  # Seeded.


def test_trace_mean_uses_the_replayed_rows(tmp_path):
  path = tmp_path / "t.npy"
  np.save(path, np.array([[1.0, 3.0], [2.0, 8.0], [100.0, 100.0]], np.float32))
  assert stragglers.expected_kth_delay("trace", 2, 2, path=str(path), num_iterations=2) == 5.5
  assert stragglers.expected_kth_delay("trace", 1, 2, path=str(path)) == pytest.approx(103 / 3)
  with pytest.raises(ValueError, match="k=3"):
    stragglers.expected_kth_delay("trace", 3, 2, path=str(path))
