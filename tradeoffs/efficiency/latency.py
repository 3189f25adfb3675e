"""Measured latency: wall-clock of a compiled function after warm-up."""

from __future__ import annotations

import time
from typing import Any, Callable

import jax
import numpy as np


# The fields a paired timing adds for its reference (`measure_latency(reference=...)`).
REFERENCE_KEYS = ("reference_latency_ms", "reference_latency_p10_ms",
                  "reference_latency_p90_ms")


def measure_latency(fn: Callable[..., Any], *args: Any, repeats: int = 20,
                    warmup: int = 3, jit: bool = True,
                    reference: tuple[Callable[..., Any], tuple[Any, ...]] | None = None
                    ) -> dict[str, float]:
  """Times `jax.jit(fn)(*args)` `repeats` times after `warmup` untimed calls.

  With `jit=False`, `fn` is timed as given, so a Python loop over already-compiled
  functions (e.g. ensemble members run one after another) stays a loop.

  Each call is synchronised with `block_until_ready`, so the time covers the device
  work, not just the asynchronous dispatch. Compilation happens in the first warm-up
  call (at least one warm-up call is always made).

  `reference=(ref_fn, ref_args)` times `ref_fn(*ref_args)` in alternation with `fn` (in
  ABBA order, so drift cancels): both medians then see the same moments of machine load,
  and their ratio is a paired measurement rather than two taken minutes apart. `ref_fn`
  is called as given (pass a jitted function: one compile serves every measurement).

  Returns:
    latency_ms (median), latency_p10_ms, latency_p90_ms, latency_iqr_ms, latency_min_ms,
    latency_mean_ms and repeats, all in milliseconds; with `reference`, also
    reference_latency_ms, reference_latency_p10_ms and reference_latency_p90_ms.

  >>> import jax.numpy as jnp
  >>> out = measure_latency(lambda x: x * 2, jnp.ones(3), repeats=5, warmup=1)
  >>> out["repeats"], out["latency_min_ms"] <= out["latency_ms"] <= out["latency_p90_ms"]
  (5, True)
  >>> paired = measure_latency(lambda x: x * 2, jnp.ones(3), repeats=4, warmup=1,
  ...                          reference=(jax.jit(lambda x: x + 1), (jnp.ones(3),)))
  >>> paired["reference_latency_ms"] > 0
  True
  """
  if not isinstance(repeats, int) or repeats < 1:
    raise ValueError(f"repeats={repeats!r}: expected an int >= 1")
  if not isinstance(warmup, int) or warmup < 0:
    raise ValueError(f"warmup={warmup!r}: expected an int >= 0")
  compiled = jax.jit(fn) if jit else fn
  calls = [(compiled, args)]
  if reference is not None:
    ref_fn, ref_args = reference
    calls.append((ref_fn, tuple(ref_args)))
  for _ in range(max(warmup, 1)):
    for f, a in calls:
      jax.block_until_ready(f(*a))
  times = np.empty((len(calls), repeats))
  for i in range(repeats):
    order = range(len(calls)) if i % 2 == 0 else reversed(range(len(calls)))
    for k in order:
      f, a = calls[k]
      start = time.perf_counter()
      jax.block_until_ready(f(*a))
      times[k, i] = (time.perf_counter() - start) * 1e3
  out = _summary(times[0])
  if reference is not None:
    ref = _summary(times[1])
    out.update({key: ref[key[len("reference_"):]] for key in REFERENCE_KEYS})
  return out


def _summary(times: np.ndarray) -> dict[str, float]:
  p10, p25, p50, p75, p90 = np.percentile(times, [10, 25, 50, 75, 90])
  return {
      "latency_ms": float(p50),
      "latency_p10_ms": float(p10),
      "latency_p90_ms": float(p90),
      "latency_iqr_ms": float(p75 - p25),
      "latency_min_ms": float(times.min()),
      "latency_mean_ms": float(times.mean()),
      "repeats": int(len(times)),
  }
