"""Output perturbation for one bit or one count at a given ε (numpy; `rng` a Generator).

  randomized_response(bits, ε)   keeps each bit with probability e^ε / (1 + e^ε) (Warner
                                 1965): ε-local DP for the bit, the optimal binary mechanism.
  laplace(values, ε, l1)         adds Lap(l1 / ε): ε-DP for a query of L1 sensitivity l1.
  gaussian(values, ε, δ, l2)     adds N(0, σ²) with σ from the analytic Gaussian mechanism
                                 (Balle & Wang 2018, Thm. 8): the smallest σ with
                                 Φ(Δ/2σ − εσ/Δ) − e^ε Φ(−Δ/2σ − εσ/Δ) ≤ δ; valid at every ε
                                 (the classic √(2 ln(1.25/δ)) Δ/ε needs ε < 1).

Each also has its closed-form probability of exceeding a threshold, used to check the
Monte Carlo measurements of `tradeoffs.privacy.exposure` against what the mechanism
implies.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import special
from scipy import stats as scipy_stats

MECHANISMS = ("randomized_response", "laplace", "gaussian")


def check_epsilon(value: object, name: str = "epsilon") -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or \
      not math.isfinite(float(value)) or float(value) <= 0:
    raise ValueError(f"{name}={value!r} must be a finite number > 0")
  return float(value)


def check_mechanism(name: object) -> str:
  if name not in MECHANISMS:
    raise ValueError(f"mechanism {name!r} is unknown; choose from {list(MECHANISMS)}")
  return str(name)


def keep_probability(epsilon: float) -> float:
  """Randomized response's probability of reporting the true bit: e^ε / (1 + e^ε)."""
  return float(special.expit(check_epsilon(epsilon)))


def randomized_response(rng: np.random.Generator, bits: np.ndarray, epsilon: float
                        ) -> np.ndarray:
  """Each bit kept with probability e^ε/(1+e^ε), flipped otherwise."""
  bits = np.asarray(bits).astype(bool)
  flip = rng.random(bits.shape) >= keep_probability(epsilon)
  return bits ^ flip


def debias_rr_count(reported: np.ndarray, total: np.ndarray, epsilon: float) -> np.ndarray:
  """Unbiased estimate of a count of true bits from `reported` positives among `total`
  randomized-response reports: (s − n(1 − p)) / (2p − 1)."""
  p = keep_probability(epsilon)
  return (np.asarray(reported, np.float64) - np.asarray(total) * (1 - p)) / (2 * p - 1)


def rr_count_std(total: np.ndarray, epsilon: float) -> np.ndarray:
  """Std of the debiased count's noise: √(n p (1 − p)) / (2p − 1)."""
  p = keep_probability(epsilon)
  return np.sqrt(np.asarray(total, np.float64) * p * (1 - p)) / (2 * p - 1)


def laplace_scale(epsilon: float, l1_sensitivity: float = 1.0) -> float:
  return float(l1_sensitivity) / check_epsilon(epsilon)


def laplace(rng: np.random.Generator, values: np.ndarray, epsilon: float,
            l1_sensitivity: float = 1.0) -> np.ndarray:
  values = np.asarray(values, np.float64)
  return values + rng.laplace(0.0, laplace_scale(epsilon, l1_sensitivity), values.shape)


def laplace_exceeds(values: np.ndarray, threshold: float, scale: float) -> np.ndarray:
  """P(value + Lap(scale) ≥ threshold), elementwise."""
  x = (threshold - np.asarray(values, np.float64)) / scale
  return np.where(x >= 0, 0.5 * np.exp(-np.abs(x)), 1 - 0.5 * np.exp(-np.abs(x)))


def _gaussian_delta(sigma: float, epsilon: float, l2: float) -> float:
  a, b = l2 / (2 * sigma), epsilon * sigma / l2
  first = scipy_stats.norm.cdf(a - b)
  second = math.exp(epsilon + scipy_stats.norm.logcdf(-a - b))
  return float(first - second)


def classic_gaussian_sigma(epsilon: float, delta: float, l2_sensitivity: float = 1.0) -> float:
  """Dwork & Roth Thm. A.1: σ = √(2 ln(1.25/δ)) Δ / ε (a valid bound for ε < 1)."""
  return math.sqrt(2 * math.log(1.25 / delta)) * l2_sensitivity / check_epsilon(epsilon)


def analytic_gaussian_sigma(epsilon: float, delta: float, l2_sensitivity: float = 1.0) -> float:
  """The smallest σ for which N(0, σ²) noise is (ε, δ)-DP at L2 sensitivity Δ (bisection
  on Balle & Wang's exact condition, to a relative 1e-10)."""
  epsilon = check_epsilon(epsilon)
  if isinstance(delta, bool) or not 0 < float(delta) < 1:
    raise ValueError(f"delta={delta!r} must be a number in (0, 1) (exclusive)")
  if not l2_sensitivity > 0:
    raise ValueError(f"l2_sensitivity={l2_sensitivity!r} must be > 0")
  low, high = 1e-6 * l2_sensitivity, l2_sensitivity
  while _gaussian_delta(high, epsilon, l2_sensitivity) > delta:
    high *= 2
  while high / low > 1 + 1e-10:
    mid = math.sqrt(low * high)
    if _gaussian_delta(mid, epsilon, l2_sensitivity) > delta:
      low = mid
    else:
      high = mid
  return high


def gaussian(rng: np.random.Generator, values: np.ndarray, sigma: float) -> np.ndarray:
  values = np.asarray(values, np.float64)
  return values + rng.normal(0.0, sigma, values.shape)


def gaussian_exceeds(values: np.ndarray, threshold: float, sigma: float) -> np.ndarray:
  """P(value + N(0, σ²) ≥ threshold), elementwise."""
  return scipy_stats.norm.sf((threshold - np.asarray(values, np.float64)) / sigma)


def rr_count_exceeds(true_count: int, total: int, threshold: float, epsilon: float) -> float:
  """P(debiased randomized-response count ≥ threshold) when `true_count` of `total` bits
  are 1: reported positives S = Bin(c, p) + Bin(n − c, 1 − p), exactly."""
  p = keep_probability(epsilon)
  c, n = int(true_count), int(total)
  pmf = np.convolve(scipy_stats.binom.pmf(np.arange(c + 1), c, p),
                    scipy_stats.binom.pmf(np.arange(n - c + 1), n - c, 1 - p))
  s = np.arange(pmf.size)
  return float(pmf[debias_rr_count(s, n, epsilon) >= threshold - 1e-12].sum())
