"""Choosing between a fast and a slow model per example: the expected-benefit rule.

Formulation implemented (Ghosh, Chinchali, Duggirala, IROS 2021; the per-step reward is
R = −α·Loss − β·Cost; the rule below is the PAPERS.md reconstruction, not a verified copy
of the paper's theorem):

  * The fast model always runs. From its output o (features of its softmax: `confidence`
    = max p, `margin` = p₍₁₎ − p₍₂₎, `entropy` = −Σ p log p in nats) estimate the expected
    loss reduction of also running the slow model,
        ĝ(o) ≈ E[ℓ_fast − ℓ_slow | o],
    from a labelled calibration split that no scored example belongs to. ℓ is the 0-1
    loss by default (`loss="zero_one"`) or the cross-entropy (`loss="cross_entropy"`).
  * Invoke the slow model iff α·ĝ(o) > β·Δcost, Δcost = c_slow − c_fast (the PAPERS.md
    form). When the fast model always runs first, the marginal cost of invoking is c_slow;
    using Δcost instead only rescales β, so the set of policies a β/α sweep traces — the
    cost–loss curve — is the same.
  * Expected cost of a cascade that invokes on a fraction r of the inputs:
    c_fast + r·c_slow (computed, not timed).

Two estimators of ĝ:
  * `binned`: quantile bins of one feature on the calibration split (bins × equal counts;
    tied edges merge), ĝ = the mean calibration gain of the bin (an empty bin gets the
    overall mean). `fit_binned` / `predict_binned`.
  * `regression`: least squares of the gain on [1, confidence, margin, entropy] (optional
    ridge on the slopes). `fit_regression` / `predict_regression`.

Baselines at a matched invocation rate: `random_at_rate` (exactly round(r·N) examples at
random) and `invoke_at_rate(score, r)` (the round(r·N) examples of highest score, e.g.
score = −confidence: the confidence-threshold cascade).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

FEATURES = ("confidence", "margin", "entropy")
ESTIMATORS = ("binned", "regression")
LOSSES = ("zero_one", "cross_entropy")


def _softmax(logits: Any) -> np.ndarray:
  z = np.asarray(logits, np.float64)
  z = z - z.max(-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(-1, keepdims=True)


def features(logits: Any) -> dict[str, np.ndarray]:
  """confidence, margin and entropy of softmax(logits) over the last axis ([..., N])."""
  p = _softmax(logits)
  top = np.sort(p, axis=-1)
  entropy = -np.sum(np.where(p > 0, p * np.log(np.where(p > 0, p, 1.0)), 0.0), -1)
  return {"confidence": top[..., -1], "margin": top[..., -1] - top[..., -2],
          "entropy": entropy}


def feature_matrix(logits: Any, names: Sequence[str] = FEATURES) -> np.ndarray:
  """[..., N, F] with the named features."""
  f = features(logits)
  for name in names:
    if name not in f:
      raise ValueError(f"feature {name!r} is unknown; choose from {list(FEATURES)}")
  return np.stack([f[n] for n in names], -1)


def loss(logits: Any, labels: Any, kind: str = "zero_one") -> np.ndarray:
  """Per-example loss [..., N]: 0-1 (argmax wrong) or cross-entropy."""
  logits = np.asarray(logits, np.float64)
  labels = np.asarray(labels, np.int64)
  if kind == "zero_one":
    return (logits.argmax(-1) != labels).astype(np.float64)
  if kind == "cross_entropy":
    z = logits - logits.max(-1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return -np.take_along_axis(log_p, np.broadcast_to(labels, log_p.shape[:-1])[..., None],
                               -1)[..., 0]
  raise ValueError(f"loss {kind!r} is unknown; choose from {list(LOSSES)}")


def gain(fast_logits: Any, slow_logits: Any, labels: Any, kind: str = "zero_one"
         ) -> np.ndarray:
  """The realised loss reduction of invoking the slow model: ℓ_fast − ℓ_slow, [..., N]."""
  return loss(fast_logits, labels, kind) - loss(slow_logits, labels, kind)


def _check_bins(bins: int) -> int:
  if isinstance(bins, bool) or int(bins) != bins or int(bins) < 1:
    raise ValueError(f"bins={bins!r} must be an integer >= 1")
  return int(bins)


def fit_binned(feature: Any, gain_values: Any, bins: int = 10
               ) -> tuple[np.ndarray, np.ndarray]:
  """(interior edges [K−1], bin means [K]): quantile bins of `feature`, mean gain per bin.

  Bin k holds edges[k−1] <= x < edges[k] (the first bin everything below edges[0], the
  last everything from edges[−1] up); edges are the calibration quantiles at j/bins,
  duplicates merged; a bin with no calibration example gets the overall mean gain."""
  x = np.asarray(feature, np.float64).reshape(-1)
  g = np.asarray(gain_values, np.float64).reshape(-1)
  if x.shape != g.shape or x.size == 0:
    raise ValueError(f"feature and gain need the same non-zero length; got {x.size} and "
                     f"{g.size}")
  bins = _check_bins(bins)
  edges = np.unique(np.quantile(x, np.linspace(0.0, 1.0, bins + 1))[1:-1])
  index = np.searchsorted(edges, x, side="right")
  means = np.full(edges.size + 1, g.mean())
  for k in range(edges.size + 1):
    if np.any(index == k):
      means[k] = g[index == k].mean()
  return edges, means


def predict_binned(edges: Any, means: Any, feature: Any) -> np.ndarray:
  return np.asarray(means)[np.searchsorted(np.asarray(edges), np.asarray(feature, np.float64),
                                           side="right")]


def fit_regression(x: Any, gain_values: Any, ridge: float = 0.0) -> np.ndarray:
  """Coefficients [1 + F] (intercept first) of the least-squares fit gain ≈ [1, x]·β; a
  ridge penalty `ridge`·|β_slopes|² keeps a collinear fit finite."""
  x = np.asarray(x, np.float64)
  x = x[:, None] if x.ndim == 1 else x
  g = np.asarray(gain_values, np.float64).reshape(-1)
  if x.shape[0] != g.size or g.size == 0:
    raise ValueError(f"features ({x.shape[0]} rows) and gain ({g.size}) must match")
  if not ridge >= 0:
    raise ValueError(f"ridge={ridge} must be >= 0")
  a = np.concatenate([np.ones((g.size, 1)), x], 1)
  penalty = float(ridge) * np.eye(a.shape[1])
  penalty[0, 0] = 0.0
  return np.linalg.lstsq(a.T @ a + penalty, a.T @ g, rcond=None)[0]


def predict_regression(coef: Any, x: Any) -> np.ndarray:
  x = np.asarray(x, np.float64)
  x = x[..., None] if x.ndim == 1 else x
  coef = np.asarray(coef, np.float64)
  return coef[0] + x @ coef[1:]


def estimate_gain(fast_cal: Any, slow_cal: Any, cal_labels: Any, fast_eval: Any, *,
                  estimator: str = "binned", feature: str = "confidence", bins: int = 10,
                  ridge: float = 0.0, loss_kind: str = "zero_one"
                  ) -> tuple[np.ndarray, dict[str, Any]]:
  """ĝ on the evaluated examples [N] of one fast/slow pair, fitted on the calibration
  logits [N_cal, C]; returns (ĝ, the fitted parameters)."""
  g = gain(fast_cal, slow_cal, cal_labels, loss_kind)
  if estimator == "binned":
    if feature not in FEATURES:
      raise ValueError(f"feature {feature!r} is unknown; choose from {list(FEATURES)}")
    edges, means = fit_binned(features(fast_cal)[feature], g, bins)
    return (predict_binned(edges, means, features(fast_eval)[feature]),
            {"edges": edges.tolist(), "means": means.tolist()})
  if estimator == "regression":
    coef = fit_regression(feature_matrix(fast_cal), g, ridge)
    return predict_regression(coef, feature_matrix(fast_eval)), {"coef": coef.tolist()}
  raise ValueError(f"estimator {estimator!r} is unknown; choose from {list(ESTIMATORS)}")


def _nonnegative(value: Any, name: str) -> float:
  v = float(value)
  if not (math.isfinite(v) and v >= 0):
    raise ValueError(f"{name}={value!r} must be a finite number >= 0")
  return v


def check_costs(c_fast: Any, c_slow: Any) -> tuple[float, float]:
  """Both costs finite and >= 0 (a negative latency or FLOP count is a measurement bug)."""
  return _nonnegative(c_fast, "fast cost"), _nonnegative(c_slow, "slow cost")


def check_grid(values: Sequence[Any], name: str) -> tuple[float, ...]:
  values = tuple(values or ())
  if not values:
    raise ValueError(f"{name} is empty: give at least one value")
  return tuple(float(v) for v in values)


def check_calibration(labels: Any, num_classes: int) -> None:
  """Every class appears in the calibration split (else its gain is never estimated)."""
  present = set(np.unique(np.asarray(labels, np.int64)).tolist())
  missing = sorted(set(range(int(num_classes))) - present)
  if missing:
    raise ValueError(f"the calibration split has no example of classes {missing} "
                     f"(of {num_classes}); use a calibration split that covers every class")


def policy(gain_hat: Any, delta_cost: float, alpha: float = 1.0, beta: float = 1.0
           ) -> np.ndarray:
  """Invoke the slow model where α·ĝ > β·Δcost (boolean, shaped like ĝ)."""
  alpha = _nonnegative(alpha, "alpha")
  beta = _nonnegative(beta, "beta")
  if not math.isfinite(float(delta_cost)):
    raise ValueError(f"delta_cost={delta_cost!r} must be finite")
  return alpha * np.asarray(gain_hat, np.float64) > beta * float(delta_cost)


def combine(fast_logits: Any, slow_logits: Any, invoke: Any) -> np.ndarray:
  """The cascade's outputs: the slow model's where invoked, else the fast model's."""
  fast, slow = np.asarray(fast_logits), np.asarray(slow_logits)
  if fast.shape != slow.shape:
    raise ValueError(f"fast {fast.shape} and slow {slow.shape} logits differ in shape")
  return np.where(np.asarray(invoke, bool)[..., None], slow, fast)


def _counts(rate: Any, n: int, members: int) -> np.ndarray:
  rate = np.broadcast_to(np.asarray(rate, np.float64), (members,))
  if np.any(~np.isfinite(rate)) or np.any(rate < 0) or np.any(rate > 1):
    raise ValueError(f"invocation rates must lie in [0, 1]; got {rate.tolist()}")
  return np.round(rate * n).astype(np.int64)


def invoke_at_rate(score: Any, rate: Any) -> np.ndarray:
  """Per row of `score` [M, N] (or [N]): invoke exactly round(rate·N) examples of highest
  score (ties to the lower index); `rate` a scalar or one per row."""
  score = np.asarray(score, np.float64)
  flat = score[None] if score.ndim == 1 else score
  counts = _counts(rate, flat.shape[-1], flat.shape[0])
  out = np.zeros(flat.shape, bool)
  for m, k in enumerate(counts):
    order = np.argsort(-flat[m], kind="stable")
    out[m, order[:k]] = True
  return out[0] if score.ndim == 1 else out


def random_at_rate(n: int, rate: Any, seed: int, members: int = 1) -> np.ndarray:
  """[members, n]: exactly round(rate_m·n) examples invoked at random per member, from
  `default_rng(seed)` (one draw per member, in order)."""
  counts = _counts(rate, int(n), int(members))
  rng = np.random.default_rng(int(seed))
  out = np.zeros((int(members), int(n)), bool)
  for m, k in enumerate(counts):
    out[m, rng.choice(int(n), size=int(k), replace=False)] = True
  return out


def expected_cost(rate: Any, c_fast: float, c_slow: float) -> np.ndarray:
  """c_fast + r·c_slow: the fast model always runs, the slow one on a fraction r."""
  c_fast, c_slow = check_costs(c_fast, c_slow)
  return c_fast + np.asarray(rate, np.float64) * c_slow


def cost_loss_curve(gain_hat: Any, loss_fast: Any, loss_slow: Any, c_fast: float,
                    c_slow: float, beta_over_alpha: Sequence[float]
                    ) -> dict[str, np.ndarray]:
  """The cost–loss curve of the rule over a sweep of β/α (α = 1): per value, the
  invocation rate, the mean loss of the cascade and its expected cost (means over all
  leading axes and examples)."""
  c_fast, c_slow = check_costs(c_fast, c_slow)
  ratios = check_grid(beta_over_alpha, "beta_over_alpha")
  g = np.asarray(gain_hat, np.float64)
  lf, ls = np.asarray(loss_fast, np.float64), np.asarray(loss_slow, np.float64)
  rates, losses = [], []
  for ratio in ratios:
    invoke = policy(g, c_slow - c_fast, 1.0, _nonnegative(ratio, "beta_over_alpha"))
    rates.append(invoke.mean())
    losses.append(np.where(invoke, ls, lf).mean())
  rates_a = np.asarray(rates)
  return {"beta_over_alpha": np.asarray(ratios), "rate": rates_a,
          "loss": np.asarray(losses), "cost": expected_cost(rates_a, c_fast, c_slow)}


def summary(invoke: Any) -> Mapping[str, Any]:
  invoke = np.asarray(invoke, bool)
  return {"rate": float(invoke.mean()), "per_member_rate": invoke.mean(-1).tolist()}
