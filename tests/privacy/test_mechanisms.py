"""Output perturbation: randomized response keeps a bit with probability e^ε/(1+e^ε)
(closed form and Monte Carlo within a binomial bound), the Laplace and Gaussian tails,
the analytic Gaussian σ against its defining condition."""

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from tradeoffs.privacy import mechanisms


@pytest.mark.parametrize("eps", [0.1, 0.5, 1.0, 2.0, 5.0])
def test_randomized_response_keeps_a_bit_with_probability_e_eps_over_1_plus_e_eps(eps):
  p = math.exp(eps) / (1 + math.exp(eps))
  assert mechanisms.keep_probability(eps) == pytest.approx(p, rel=1e-12)
  n = 200_000
  bits = np.random.default_rng(1).random(n) < 0.3
  out = mechanisms.randomized_response(np.random.default_rng(2), bits, eps)
  kept = int(np.sum(out == bits))
  # Binomial(n, p): kept within 5 standard deviations (two-sided odds ~6e-7).
  assert abs(kept - n * p) <= 5 * math.sqrt(n * p * (1 - p))
  # The likelihood ratio that defines ε-local DP: P(report 1 | 1) / P(report 1 | 0) = e^ε.
  assert p / (1 - p) == pytest.approx(math.exp(eps), rel=1e-12)


def test_debiased_rr_count_is_unbiased_and_its_std_is_the_closed_form():
  rng = np.random.default_rng(0)
  eps, d, c = 1.0, 12, 3
  bits = np.zeros((50_000, d), bool)
  bits[:, :c] = True
  reports = mechanisms.randomized_response(rng, bits, eps).sum(1)
  estimate = mechanisms.debias_rr_count(reports, d, eps)
  std = float(mechanisms.rr_count_std(d, eps))
  assert abs(estimate.mean() - c) < 5 * std / math.sqrt(estimate.size)
  assert estimate.std() == pytest.approx(std, rel=0.02)
  # The exact tail against the Monte Carlo frequency.
  p = mechanisms.rr_count_exceeds(c, d, 0.5, eps)
  freq = float(np.mean(estimate >= 0.5 - 1e-9))
  assert abs(freq - p) <= 5 * math.sqrt(p * (1 - p) / estimate.size)


def test_laplace_and_gaussian_tails_match_monte_carlo():
  rng = np.random.default_rng(0)
  values = np.array([0.0, 1.0, 2.0])
  n = 100_000
  scale, sigma = 1.7, 0.9
  lap = mechanisms.laplace(rng, np.repeat(values[None], n, 0), 2.0, l1_sensitivity=3.4)
  assert np.std(lap - values) == pytest.approx(math.sqrt(2) * scale, rel=0.02)
  gau = mechanisms.gaussian(rng, np.repeat(values[None], n, 0), sigma)
  for samples, exact in ((lap, mechanisms.laplace_exceeds(values, 0.5, scale)),
                         (gau, mechanisms.gaussian_exceeds(values, 0.5, sigma))):
    freq = (samples >= 0.5).mean(0)
    assert np.all(np.abs(freq - exact) <= 5 * np.sqrt(exact * (1 - exact) / n))


@pytest.mark.parametrize("eps,delta,l2", [(0.5, 1e-5, 1.0), (1.0, 1e-6, 4.0), (8.0, 1e-5, 2.0)])
def test_analytic_gaussian_sigma_is_the_tightest_sigma_meeting_balle_wang(eps, delta, l2):
  sigma = mechanisms.analytic_gaussian_sigma(eps, delta, l2)

  def delta_of(s):  # Balle & Wang (2018), Theorem 8.
    return (scipy_stats.norm.cdf(l2 / (2 * s) - eps * s / l2)
            - math.exp(eps) * scipy_stats.norm.cdf(-l2 / (2 * s) - eps * s / l2))

  assert delta_of(sigma) <= delta * (1 + 1e-6)
  assert delta_of(sigma * (1 - 1e-6)) > delta * (1 - 1e-3)
  if eps < 1:  # The classic bound is valid there, and never tighter.
    assert mechanisms.classic_gaussian_sigma(eps, delta, l2) >= sigma


@pytest.mark.parametrize("value", [0.0, -1.0, float("inf"), float("nan"), True, "1"])
def test_epsilon_must_be_positive_and_finite(value):
  with pytest.raises(ValueError, match="must be a finite number > 0"):
    mechanisms.keep_probability(value)
