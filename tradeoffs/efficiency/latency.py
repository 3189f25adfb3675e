"""Measured latency: wall-clock of a compiled function after warm-up."""

from __future__ import annotations

import time
from typing import Any, Callable

import jax
import numpy as np


def measure_latency(fn: Callable[..., Any], *args: Any, repeats: int = 20,
                    warmup: int = 3, jit: bool = True) -> dict[str, float]:
  """Times `jax.jit(fn)(*args)` `repeats` times after `warmup` untimed calls.

  With `jit=False`, `fn` is timed as given, so a Python loop over already-compiled
  functions (e.g. ensemble members run one after another) stays a loop.

  Each call is synchronised with `block_until_ready`, so the time covers the device
  work, not just the asynchronous dispatch. Compilation happens in the first warm-up
  call (at least one warm-up call is always made).

  Returns:
    latency_ms (median), latency_p10_ms, latency_p90_ms, latency_iqr_ms, latency_min_ms,
    latency_mean_ms and repeats, all in milliseconds.

  >>> import jax.numpy as jnp
  >>> out = measure_latency(lambda x: x * 2, jnp.ones(3), repeats=5, warmup=1)
  >>> out["repeats"], out["latency_min_ms"] <= out["latency_ms"] <= out["latency_p90_ms"]
  (5, True)
  """
  if not isinstance(repeats, int) or repeats < 1:
    raise ValueError(f"repeats={repeats!r}: expected an int >= 1")
  if not isinstance(warmup, int) or warmup < 0:
    raise ValueError(f"warmup={warmup!r}: expected an int >= 0")
  compiled = jax.jit(fn) if jit else fn
  for _ in range(max(warmup, 1)):
    jax.block_until_ready(compiled(*args))
  times = np.empty(repeats)
  for i in range(repeats):
    start = time.perf_counter()
    jax.block_until_ready(compiled(*args))
    times[i] = (time.perf_counter() - start) * 1e3
  p10, p25, p50, p75, p90 = np.percentile(times, [10, 25, 50, 75, 90])
  return {
      "latency_ms": float(p50),
      "latency_p10_ms": float(p10),
      "latency_p90_ms": float(p90),
      "latency_iqr_ms": float(p75 - p25),
      "latency_min_ms": float(times.min()),
      "latency_mean_ms": float(times.mean()),
      "repeats": int(repeats),
  }
