"""Privacy accounting for DP-SGD: ε of a Poisson-subsampled Gaussian mechanism over steps.

    eps = dp_sgd_epsilon(noise_multiplier=1.12, sample_rate=256 / 60000, steps=14063,
                         delta=1e-5)                     # 2.52 (dp-accounting's conversion)
    dp_sgd_epsilon(1.12, 256 / 60000, 14063, 1e-5, conversion="classic")   # 2.92

The RDP values come from the maintained `dp-accounting` library (Google's
`dp_accounting.rdp.RdpAccountant`, add-or-remove-one neighbours, events
`SelfComposedDpEvent(PoissonSampledDpEvent(q, GaussianDpEvent(σ)), steps)`); only the
RDP → (ε, δ) conversion is chosen here, and pinned:

  * "improved" (the default): dp-accounting's own `compute_epsilon`, Proposition 12 of
    Canonne, Kamath & Steinke (2020) / Asoodeh et al. (2020):
    ε = min_α  rdp(α) + log(1 − 1/α) − (log δ + log α) / (α − 1).
  * "classic": Mironov (2017), Proposition 3, as TF-Privacy's `compute_dp_sgd_privacy`
    used it for its published numbers: ε = min_α  rdp(α) − log δ / (α − 1).

Both minimise over the same orders `ORDERS` (TF-Privacy's: 1 + x/10 for x = 1…99 and the
integers 12…63). TF-Privacy's MNIST tutorial setting (60,000 examples, batch 256,
σ = 1.12, 60 epochs = ⌈60 · 60000 / 256⌉ = 14,063 steps, δ = 1e-5) gives ε = 2.92 with
the classic conversion (their published value) and 2.52 with the improved one
(tests/privacy/test_accounting.py pins both).

What the number assumes: each step samples every example independently with probability
q (Poisson sampling). A trainer that shuffles and takes fixed-size batches (as
`tradeoffs.train` does) is accounted *as if* Poisson-sampled — common practice (TF-Privacy's
tutorials do the same) but not a formal guarantee for shuffled batches.
"""

from __future__ import annotations

import logging
import math
from typing import Sequence

import numpy as np

ORDERS: tuple[float, ...] = tuple([1 + x / 10.0 for x in range(1, 100)]
                                  + [float(a) for a in range(12, 64)])
CONVERSIONS = ("improved", "classic")
DEFAULT_CONVERSION = "improved"


def check_noise_multiplier(value: object, name: str = "noise_multiplier") -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or \
      not math.isfinite(float(value)) or float(value) < 0:
    raise ValueError(f"{name}={value!r} must be a finite number >= 0")
  return float(value)


def check_rate(value: object, name: str = "sample_rate") -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or \
      not 0 < float(value) <= 1:
    raise ValueError(f"{name}={value!r} must be a number in (0, 1]")
  return float(value)


def check_delta(value: object, name: str = "delta") -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or \
      not 0 < float(value) < 1:
    raise ValueError(f"{name}={value!r} must be a number in (0, 1) (exclusive)")
  return float(value)


def check_steps(value: object, name: str = "steps") -> int:
  if isinstance(value, bool) or not isinstance(value, (int, np.integer, float)) or \
      float(value) != int(value) or int(value) < 0:
    raise ValueError(f"{name}={value!r} must be an integer >= 0")
  return int(value)


def rdp(noise_multiplier: float, sample_rate: float, steps: int,
        orders: Sequence[float] = ORDERS) -> np.ndarray:
  """RDP ε(α) of `steps` Poisson-subsampled Gaussian steps, per order (dp-accounting)."""
  import dp_accounting  # pylint: disable=import-outside-toplevel
  from dp_accounting import rdp as rdp_lib  # pylint: disable=import-outside-toplevel
  event = dp_accounting.SelfComposedDpEvent(
      dp_accounting.PoissonSampledDpEvent(sample_rate,
                                          dp_accounting.GaussianDpEvent(noise_multiplier)),
      steps)
  accountant = rdp_lib.RdpAccountant(list(orders))
  # dp-accounting logs a warning per order it drops (infinite RDP at small σ, large q);
  # those orders then simply do not win the minimum.
  absl_logger = logging.getLogger("absl")
  level = absl_logger.level
  absl_logger.setLevel(logging.ERROR)
  try:
    accountant.compose(event)
  finally:
    absl_logger.setLevel(level)
  # The accountant's composed RDP curve (it exposes ε only through its own conversion).
  return np.asarray(accountant._rdp, np.float64)  # pylint: disable=protected-access


def epsilon_from_rdp(rdp_values: Sequence[float], delta: float,
                     orders: Sequence[float] = ORDERS,
                     conversion: str = DEFAULT_CONVERSION) -> tuple[float, float]:
  """(ε, optimal order) for an RDP curve at δ, by the pinned `conversion`."""
  if conversion not in CONVERSIONS:
    raise ValueError(f"conversion={conversion!r} is unknown; choose from {list(CONVERSIONS)}")
  delta = check_delta(delta)
  orders = np.asarray(orders, np.float64)
  values = np.asarray(rdp_values, np.float64)
  if conversion == "improved":
    from dp_accounting.rdp import rdp_privacy_accountant  # pylint: disable=import-outside-toplevel
    eps, order = rdp_privacy_accountant.compute_epsilon(orders, values, delta)
    return float(eps), float(order)
  with np.errstate(divide="ignore", invalid="ignore"):
    eps = values - math.log(delta) / (orders - 1)
  eps = np.where(orders > 1, eps, np.inf)
  i = int(np.argmin(eps))
  return float(max(0.0, eps[i])), float(orders[i])


def dp_sgd_epsilon(noise_multiplier: float, sample_rate: float, steps: int, delta: float,
                   *, conversion: str = DEFAULT_CONVERSION,
                   orders: Sequence[float] = ORDERS) -> float:
  """ε of DP-SGD at δ: `steps` steps, each example sampled with probability `sample_rate`,
  Gaussian noise of std `noise_multiplier` × clip norm on the summed clipped gradients.

  σ = 0 (clipping only) and any step count with σ = 0 give ε = inf; steps = 0 gives 0.
  """
  sigma = check_noise_multiplier(noise_multiplier)
  q = check_rate(sample_rate)
  steps = check_steps(steps)
  check_delta(delta)
  if steps == 0:
    return 0.0
  if sigma == 0:
    return math.inf
  eps, _ = epsilon_from_rdp(rdp(sigma, q, steps, orders), delta, orders, conversion)
  return eps
