"""Seeded straggler models: per-iteration worker delays, and the first k of m.

`sample_delays(model, key, num_iterations, num_workers, **params)` returns delays in
seconds, shape [num_iterations, num_workers]; the same key gives the same delays. Models
(the `STRAGGLER_MODELS` registry):
  fixed_slow           `num_slow` workers take `base + slow_delay`, the rest `base`;
                       the slow set is redrawn every iteration (`persistent=False`) or
                       fixed for the whole run (`persistent=True`).
  shifted_exponential  shift + Exponential(rate).
  pareto               scale * Pareto(alpha) (heavy tail, minimum `scale`).
  bimodal              base, or base + slow_delay with probability p_slow, plus
                       uniform jitter in [0, jitter).
  trace                replay of a measured trace (`path` to .npy or .csv, [T, m]).
The master waits for the first k responses: `fastest_k_mask`, and the simulated
iteration time is the k-th order statistic of the delays (`kth_delay`) plus compute;
`expected_kth_delay` is its mean E[T(k:m)] (closed form where one exists, else Monte Carlo).
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def _fixed_slow(key, shape, *, num_slow: int = 1, base: float = 1.0, slow_delay: float = 4.0,
                persistent: bool = False):
  iterations, workers = shape
  if not 0 <= num_slow <= workers:
    raise ValueError(f"straggler.num_slow={num_slow} is not allowed: need 0 <= num_slow <= "
                     f"num_workers={workers}")
  if persistent:
    order = jnp.broadcast_to(jax.random.permutation(key, workers), shape)
  else:
    keys = jax.random.split(key, iterations)
    order = jax.vmap(lambda k: jax.random.permutation(k, workers))(keys)
  slow = order < num_slow  # Worker i is slow when its random rank is among the first.
  return base + slow_delay * slow.astype(jnp.float32)


def _shifted_exponential(key, shape, *, shift: float = 1.0, rate: float = 1.0):
  if rate <= 0:
    raise ValueError(f"straggler.rate={rate} is not allowed: need rate > 0")
  return shift + jax.random.exponential(key, shape) / rate


def _pareto(key, shape, *, scale: float = 1.0, alpha: float = 2.0):
  if alpha <= 0 or scale <= 0:
    raise ValueError(f"straggler.alpha={alpha}, straggler.scale={scale}: both must be > 0")
  return scale * jax.random.pareto(key, alpha, shape)


def _bimodal(key, shape, *, base: float = 1.0, slow_delay: float = 4.0, p_slow: float = 0.2,
             jitter: float = 0.1):
  if not 0.0 <= p_slow <= 1.0:
    raise ValueError(f"straggler.p_slow={p_slow} is not allowed: need 0 <= p_slow <= 1")
  slow_key, jitter_key = jax.random.split(key)
  slow = jax.random.bernoulli(slow_key, p_slow, shape)
  return base + slow_delay * slow + jitter * jax.random.uniform(jitter_key, shape)


def load_trace(path: str, num_workers: int, num_iterations: int | None = None,
               wrap: bool = False) -> np.ndarray:
  """A measured delay trace [T, m] from .npy or .csv, checked against m and T."""
  if not os.path.exists(path):
    raise ValueError(f"straggler.path={path!r} does not exist")
  if path.endswith(".npy"):
    trace = np.load(path)
  elif path.endswith(".csv"):
    trace = np.loadtxt(path, delimiter=",", ndmin=2)
  else:
    raise ValueError(f"straggler.path={path!r}: allowed trace files are .npy or .csv")
  trace = np.asarray(trace, dtype=np.float32)
  if trace.ndim != 2 or trace.shape[1] != num_workers or trace.shape[0] < 1:
    raise ValueError(f"straggler.path={path!r} holds shape {trace.shape}; allowed: "
                     f"[iterations, num_workers={num_workers}]")
  if not np.all(np.isfinite(trace)) or np.any(trace < 0):
    raise ValueError(f"straggler.path={path!r}: delays must be finite and >= 0")
  if num_iterations is not None and trace.shape[0] < num_iterations:
    if not wrap:
      raise ValueError(
          f"straggler.path={path!r} has {trace.shape[0]} iterations but steps={num_iterations}"
          " are needed; allowed: a trace with >= steps rows, or straggler.wrap=True to cycle")
    trace = np.resize(trace, (num_iterations, num_workers))
  return trace[:num_iterations] if num_iterations is not None else trace


def _trace(key, shape, *, path: str, wrap: bool = False):
  del key
  return jnp.asarray(load_trace(path, shape[1], shape[0], wrap=wrap))


STRAGGLER_MODELS: dict[str, Callable[..., Array]] = {
    "fixed_slow": _fixed_slow,
    "shifted_exponential": _shifted_exponential,
    "pareto": _pareto,
    "bimodal": _bimodal,
    "trace": _trace,
}


def register_straggler_model(name: str, sample: Callable[..., Array]) -> None:
  """Adds `sample(key, (iterations, workers), **params) -> delays`.

  >>> import jax.numpy as jnp
  >>> register_straggler_model("constant", lambda key, shape, delay=1.0: jnp.full(shape, delay))
  >>> sample_delays("constant", None, 2, 3, delay=0.5).tolist()
  [[0.5, 0.5, 0.5], [0.5, 0.5, 0.5]]
  >>> del STRAGGLER_MODELS["constant"]
  """
  STRAGGLER_MODELS[name] = sample


def sample_delays(model: str, key: Array, num_iterations: int, num_workers: int,
                  **params: Any) -> Array:
  """Per-iteration worker delays [num_iterations, num_workers] (seconds), seeded by key.

  >>> import jax
  >>> import numpy as np
  >>> d = sample_delays("fixed_slow", jax.random.key(0), 3, 4, num_slow=1, slow_delay=4.0)
  >>> d.shape, np.asarray(d == 5.0).sum(axis=1).tolist()   # [T, m]; one slow worker per row
  ((3, 4), [1, 1, 1])
  >>> d = sample_delays("shifted_exponential", jax.random.key(0), 100, 4, shift=1.0)
  >>> bool(d.min() >= 1.0)
  True
  """
  if model not in STRAGGLER_MODELS:
    raise ValueError(f"straggler.model={model!r} is not known; valid: {sorted(STRAGGLER_MODELS)}")
  if num_iterations < 1 or num_workers < 1:
    raise ValueError(f"num_iterations={num_iterations}, num_workers={num_workers}: both >= 1")
  try:
    delays = STRAGGLER_MODELS[model](key, (num_iterations, num_workers), **params)
  except TypeError as e:  # Unknown parameter names.
    raise ValueError(f"straggler.model={model!r} got bad parameters {sorted(params)}: {e}")
  return jnp.asarray(delays, jnp.float32)


def check_k(k: int, num_workers: int) -> None:
  if not 1 <= k <= num_workers:
    raise ValueError(f"k={k} is not allowed with num_workers={num_workers}: the master waits "
                     f"for the first k of m workers, 1 <= k <= m")


def fastest_k_mask(delays: Array, k: int) -> Array:
  """True for the k fastest workers per row; ties go to the lower worker index.

  `delays` [..., workers] -> bool of the same shape.

  >>> import numpy as np
  >>> np.asarray(fastest_k_mask(np.array([[0.3, 0.1, 0.9, 0.1]]), 2)).tolist()
  [[False, True, False, True]]
  >>> round(float(kth_delay(np.array([0.3, 0.1, 0.9, 0.1]), 3)), 4)   # the 3rd response
  0.3
  """
  order = jnp.argsort(delays, axis=-1, stable=True)
  ranks = jnp.argsort(order, axis=-1, stable=True)
  return ranks < k


def kth_delay(delays: Array, k: int) -> Array:
  """The k-th order statistic of each row: when the master has its k-th response.

  >>> import numpy as np
  >>> kth_delay(np.array([[0.3, 0.1, 0.9], [2.0, 1.0, 3.0]]), 2).tolist()   # per row
  [0.3..., 2.0]
  """
  return jnp.sort(delays, axis=-1)[..., k - 1]


def expected_kth_delay(model: str, k: int, num_workers: int, *, key: Array | None = None,
                       samples: int = 200_000, num_iterations: int | None = None,
                       **params: Any) -> float:
  """E[T(k:m)]: the mean k-th smallest of the m workers' delays in one iteration.

  Closed forms: shifted_exponential shift + (1/rate) sum_{j<k} 1/(m - j) (Renyi);
  fixed_slow base, or base + slow_delay when k > m - num_slow (exactly num_slow are
  slow); pareto scale * B(a - 1/alpha, k) / B(a, k) with a = m - k + 1 (the k-th
  smallest delay is scale * U^(-1/alpha) for the (m-k+1)-th smallest of m uniforms U,
  a Beta(a, k) variable; inf when a <= 1/alpha). trace: the mean over the trace's
  first `num_iterations` rows (the rows a run replays). Any other model (bimodal, a
  registered one): the mean over `samples` seeded draws of `sample_delays`.

  >>> expected_kth_delay("shifted_exponential", 2, 3, shift=1.0, rate=1.0)   # 1 + 1/3 + 1/2
  1.833...
  >>> expected_kth_delay("fixed_slow", 3, 3, num_slow=1, base=1.0, slow_delay=4.0)
  5.0
  """
  check_k(k, num_workers)
  m = num_workers
  if model == "shifted_exponential":
    shift, rate = float(params.get("shift", 1.0)), float(params.get("rate", 1.0))
    if rate <= 0:
      raise ValueError(f"straggler.rate={rate} is not allowed: need rate > 0")
    return shift + sum(1.0 / (m - j) for j in range(k)) / rate
  if model == "fixed_slow":
    num_slow = int(params.get("num_slow", 1))
    base, slow = float(params.get("base", 1.0)), float(params.get("slow_delay", 4.0))
    if not 0 <= num_slow <= m:
      raise ValueError(f"straggler.num_slow={num_slow} is not allowed: need 0 <= num_slow <= "
                       f"num_workers={m}")
    return base + (slow if k > m - num_slow else 0.0)
  if model == "pareto":
    scale, alpha = float(params.get("scale", 1.0)), float(params.get("alpha", 2.0))
    if alpha <= 0 or scale <= 0:
      raise ValueError(f"straggler.alpha={alpha}, straggler.scale={scale}: both must be > 0")
    a = m - k + 1
    if a <= 1.0 / alpha:
      return float("inf")
    log_ratio = (math.lgamma(a - 1 / alpha) - math.lgamma(a - 1 / alpha + k)
                 - math.lgamma(a) + math.lgamma(a + k))
    return scale * math.exp(log_ratio)
  if model == "trace":
    trace = load_trace(params["path"], m, num_iterations, wrap=bool(params.get("wrap", False)))
    return float(np.mean(np.sort(trace.astype(np.float64), axis=-1)[:, k - 1]))
  key = jax.random.key(0) if key is None else key
  delays = np.asarray(sample_delays(model, key, samples, m, **params), np.float64)
  return float(np.mean(np.sort(delays, axis=-1)[:, k - 1]))
