"""One home for the statistics behind every claim a report makes (the verdict layer).

A claim compares two samples of one quantity — the top-1 of a dense population and of its
own pruned members, the time-to-ε of two coding schemes over seeds — and becomes one
`Comparison`: the estimate, a 95% interval, a p-value, the Holm-corrected p-value across the
family of claims of one report section, and one word from one vocabulary:

    "higher", "lower", "no detectable difference"

Which test (chosen by how the samples were drawn, never by which answer it gives):
  * paired  — the same members, seeds or examples measured twice (a population and its own
    pruned/quantized members, two schemes run on the same delay draws): a paired t-test
    on the differences, with the t interval of their mean.
  * welch   — independent populations (two retrained populations, two widths): Welch's
    t-test (unequal variances) with the Welch–Satterthwaite t interval.
t intervals keep their nominal coverage for normal data at every n; a percentile
bootstrap does not at the sizes used here (≈79% at n = 4, ≈89% at n = 8). For a statistic
that is not a mean (a correlation, a difference of correlations) `bootstrap_interval` uses
BCa. Measured coverage of the 95% t interval of a mean (20,000 simulations, see
tests/test_stats.py): normal data 95.0% at n = 8 and n = 30; exponential (skew 2) data
89.4% at n = 8 and 93.0% at n = 30 — intervals on strongly skewed quantities at small n
are optimistic, which the report's noise floors (nulls) are there to expose.

    import numpy as np
    from tradeoffs import stats
    dense = np.array([0.981, 0.978, 0.983, 0.979])
    pruned = np.array([0.902, 0.897, 0.911, 0.899])   # the same 4 members, pruned
    c = stats.compare(pruned, dense, paired=True, claim="top-1, pruned 90% vs dense")
    c.verdict                                          # 'lower'
    stats.holm([0.01, 0.04, 0.03])                      # [0.03, 0.06, 0.06]
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from typing import Any, Callable, Sequence

import numpy as np
from scipy import stats as scipy_stats

HIGHER, LOWER, NO_DIFFERENCE = "higher", "lower", "no detectable difference"
VERDICTS = (HIGHER, LOWER, NO_DIFFERENCE)
TESTS = ("paired", "welch")
ALPHA = 0.05


@dataclasses.dataclass(frozen=True)
class Comparison:
  """`a` against `b`: estimate = mean(a) - mean(b) (paired: mean of a - b).

  `p_holm` is the p-value corrected across the claim's family (equal to `p` for a family
  of one); `verdict` uses `p_holm`, so a claim is only as strong as its whole section.
  """
  claim: str
  estimate: float
  low: float
  high: float
  p: float
  p_holm: float
  verdict: str
  test: str
  n_a: int
  n_b: int
  mean_a: float
  mean_b: float
  confidence: float = 0.95

  def to_dict(self) -> dict[str, Any]:
    return {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in dataclasses.asdict(self).items()}

  @classmethod
  def from_dict(cls, d: dict[str, Any]) -> "Comparison":
    nan = float("nan")
    fields = {f.name for f in dataclasses.fields(cls)}
    return cls(**{k: (nan if v is None and k not in ("claim", "verdict", "test") else v)
                  for k, v in d.items() if k in fields})


def _sample(x: Any, name: str) -> np.ndarray:
  x = np.asarray(x, np.float64).reshape(-1)
  if not np.all(np.isfinite(x)):
    raise ValueError(f"{name} holds non-finite values: {x.tolist()}")
  return x


def t_interval(x: Any, confidence: float = 0.95) -> tuple[float, float, float]:
  """(mean, low, high): the t interval of the mean of one sample (NaN bounds for n < 2)."""
  x = _sample(x, "x")
  mean = float(x.mean()) if x.size else float("nan")
  if x.size < 2:
    return mean, float("nan"), float("nan")
  half = scipy_stats.t.ppf(0.5 + confidence / 2, x.size - 1) * x.std(ddof=1) / math.sqrt(x.size)
  return mean, mean - float(half), mean + float(half)


def _paired(a: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float, float, float]:
  if a.shape != b.shape:
    raise ValueError(f"a paired comparison needs samples of equal length; got {a.size} and "
                     f"{b.size} (use paired=False for independent populations)")
  d = a - b
  mean, low, high = t_interval(d, confidence)
  if d.size < 2:
    return mean, low, high, float("nan")
  if np.all(d == d[0]):  # No spread: the difference is exact (0 → no evidence of one).
    return mean, mean, mean, (1.0 if d[0] == 0 else 0.0)
  return mean, low, high, float(scipy_stats.ttest_rel(a, b).pvalue)


def _welch(a: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float, float, float]:
  mean = float(a.mean() - b.mean()) if a.size and b.size else float("nan")
  if a.size < 2 or b.size < 2:
    return mean, float("nan"), float("nan"), float("nan")
  va, vb = a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
  se2 = va + vb
  if se2 == 0:
    return mean, mean, mean, (1.0 if mean == 0 else 0.0)
  df = se2 ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
  half = float(scipy_stats.t.ppf(0.5 + confidence / 2, df) * math.sqrt(se2))
  p = float(scipy_stats.ttest_ind(a, b, equal_var=False).pvalue)
  return mean, mean - half, mean + half, p


def decide(estimate: float, p: float, alpha: float = ALPHA) -> str:
  """The one vocabulary: 'higher' / 'lower' when p < alpha, else no detectable difference."""
  if not math.isfinite(p) or p >= alpha or estimate == 0:
    return NO_DIFFERENCE
  return HIGHER if estimate > 0 else LOWER


def compare(a: Any, b: Any, *, paired: bool, claim: str = "", confidence: float = 0.95,
            alpha: float = ALPHA) -> Comparison:
  """One claim, uncorrected (its own family of one); `family` corrects several together."""
  if not 0 < confidence < 1:
    raise ValueError(f"confidence={confidence} must be in (0, 1)")
  a, b = _sample(a, "a"), _sample(b, "b")
  estimate, low, high, p = (_paired if paired else _welch)(a, b, confidence)
  return Comparison(claim=claim, estimate=estimate, low=low, high=high, p=p, p_holm=p,
                    verdict=decide(estimate, p, alpha), test="paired" if paired else "welch",
                    n_a=int(a.size), n_b=int(b.size),
                    mean_a=float(a.mean()) if a.size else float("nan"),
                    mean_b=float(b.mean()) if b.size else float("nan"), confidence=confidence)


def holm(pvalues: Sequence[float]) -> list[float]:
  """Holm–Bonferroni step-down adjusted p-values (NaNs stay NaN and do not count)."""
  p = np.asarray(pvalues, np.float64)
  out = np.full(p.shape, np.nan)
  finite = np.flatnonzero(np.isfinite(p))
  m = finite.size
  order = finite[np.argsort(p[finite], kind="stable")]
  running = 0.0
  for rank, index in enumerate(order):
    running = max(running, min(1.0, (m - rank) * p[index]))
    out[index] = running
  return out.tolist()


def family(comparisons: Sequence[Comparison], alpha: float = ALPHA) -> list[Comparison]:
  """The claims of one report section, Holm-corrected together; verdicts from `p_holm`."""
  adjusted = holm([c.p for c in comparisons])
  return [dataclasses.replace(c, p_holm=float(q), verdict=decide(c.estimate, q, alpha))
          for c, q in zip(comparisons, adjusted)]


def bootstrap_interval(statistic: Callable[..., float], *samples: Any, seed: int = 0,
                       n_resamples: int = 2000, confidence: float = 0.95,
                       paired: bool = True) -> tuple[float, float, float]:
  """(estimate, low, high): BCa bootstrap interval of `statistic(*samples)`.

  With `paired`, the samples are resampled together (rows of the same runs), as for a
  correlation over runs. Degenerate resamples (a constant column) fall back to the
  percentile interval rather than failing.
  """
  samples = [np.asarray(s, np.float64) for s in samples]
  estimate = float(statistic(*samples))
  rng = np.random.default_rng(seed)
  try:
    with warnings.catch_warnings():  # A degenerate BCa is handled below, not warned about.
      warnings.simplefilter("ignore")
      res = scipy_stats.bootstrap(samples, statistic, paired=paired, vectorized=False,
                                  n_resamples=n_resamples, confidence_level=confidence,
                                  method="BCa", random_state=rng)
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
  except (ValueError, FloatingPointError):
    low, high = float("nan"), float("nan")
  if not (math.isfinite(low) and math.isfinite(high)):
    res = scipy_stats.bootstrap(samples, statistic, paired=paired, vectorized=False,
                                n_resamples=n_resamples, confidence_level=confidence,
                                method="percentile", random_state=np.random.default_rng(seed))
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
  return estimate, low, high


def spearman(x: Any, y: Any) -> float:
  """Spearman rank correlation (ties averaged); NaN when either side is constant."""
  x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
  if x.size < 2 or np.all(x == x[0]) or np.all(y == y[0]):
    return float("nan")
  return float(scipy_stats.spearmanr(x, y).statistic)


def compare_correlations(target: Any, first: Any, second: Any, *, claim: str = "",
                         seed: int = 0, n_resamples: int = 2000) -> Comparison:
  """Does `first` track `target` better than `second` does? estimate = |ρ(first, target)| -
  |ρ(second, target)| (Spearman), a paired BCa bootstrap over runs for the interval, and
  the bootstrap p-value (twice the smaller tail of the resampled difference around 0)."""
  target, first, second = (np.asarray(v, np.float64) for v in (target, first, second))
  stat = lambda t, f, s: abs(spearman(f, t)) - abs(spearman(s, t))  # noqa: E731
  estimate, low, high = bootstrap_interval(stat, target, first, second, seed=seed,
                                           n_resamples=n_resamples)
  rng = np.random.default_rng(seed + 1)
  n = target.size
  draws = []
  for _ in range(n_resamples):
    idx = rng.integers(0, n, n)
    value = stat(target[idx], first[idx], second[idx])
    if math.isfinite(value):
      draws.append(value)
  draws = np.asarray(draws)
  if draws.size and math.isfinite(estimate):
    p = float(min(1.0, 2 * min((draws <= 0).mean(), (draws >= 0).mean())))
  else:
    p = float("nan")
  return Comparison(claim=claim, estimate=estimate, low=low, high=high, p=p, p_holm=p,
                    verdict=decide(estimate, p), test="bootstrap", n_a=n, n_b=n,
                    mean_a=abs(spearman(first, target)), mean_b=abs(spearman(second, target)))


def wilson_interval(successes: int, trials: int, confidence: float = 0.95
                    ) -> tuple[float, float, float]:
  """(rate, low, high): the Wilson score interval of a proportion."""
  if trials <= 0:
    return float("nan"), float("nan"), float("nan")
  z = scipy_stats.norm.ppf(0.5 + confidence / 2)
  rate = successes / trials
  denom = 1 + z * z / trials
  centre = (rate + z * z / (2 * trials)) / denom
  half = z * math.sqrt(rate * (1 - rate) / trials + z * z / (4 * trials * trials)) / denom
  return rate, max(0.0, centre - half), min(1.0, centre + half)


def null_band(values: Any, confidence: float = 0.95) -> tuple[float, float, float]:
  """(median, low, high) of a null distribution (e.g. CIE counts between random splits)."""
  v = np.asarray(values, np.float64).reshape(-1)
  if not v.size:
    return float("nan"), float("nan"), float("nan")
  tail = (1 - confidence) / 2
  return float(np.median(v)), float(np.quantile(v, tail)), float(np.quantile(v, 1 - tail))
