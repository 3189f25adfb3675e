"""Bootstrap confidence intervals: resample examples, recompute, take percentiles."""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Sequence

import jax
import jax.numpy as jnp


class Interval(NamedTuple):
  """Point estimate on the original data and the percentile interval (pytrees alike)."""
  estimate: Any
  low: Any
  high: Any


def bootstrap_ci(key: jax.Array, statistic_fn: Callable[..., Any], *arrays,
                 num_samples: int = 1000, confidence: float = 0.95,
                 example_axes: int | Sequence[int] = 0,
                 batch_size: int | None = None) -> Interval:
  """Percentile bootstrap interval of `statistic_fn(*arrays)`.

  Every resample draws the examples with replacement (the same indices for all arrays),
  and the statistic is evaluated for all resamples by `vmap` (in chunks of `batch_size`
  when given, to bound memory). Deterministic given `key`. The statistic may return any
  pytree of arrays; NaN resamples (e.g. an empty group) are ignored by the percentiles.

  Args:
    key: a `jax.random` key.
    statistic_fn: jit-able function of the arrays.
    *arrays: arrays sharing the example axis, e.g. labels [E] and preds [members, E].
    num_samples: number of bootstrap resamples.
    confidence: interval mass in (0, 1); the interval is the
      ((1 - confidence)/2, (1 + confidence)/2) quantiles.
    example_axes: the example axis of every array (an int), or one per array.
    batch_size: resamples evaluated together; None evaluates all at once.

  >>> import jax
  >>> import jax.numpy as jnp
  >>> import numpy as np
  >>> ci = bootstrap_ci(jax.random.key(0), jnp.mean, np.arange(10.0), num_samples=100)
  >>> float(ci.estimate), bool(ci.low < 4.5 < ci.high), bool(2.0 < ci.low and ci.high < 7.0)
  (4.5, True, True)
  """
  if not arrays:
    raise ValueError("bootstrap_ci needs at least one array to resample")
  if not 0.0 < confidence < 1.0:
    raise ValueError(f"confidence={confidence!r}: must be in (0, 1)")
  if int(num_samples) < 1:
    raise ValueError(f"num_samples={num_samples!r}: must be a positive int")
  arrays = [jnp.asarray(a) for a in arrays]
  axes = [example_axes] * len(arrays) if isinstance(example_axes, int) else list(example_axes)
  if len(axes) != len(arrays):
    raise ValueError(f"example_axes={example_axes!r}: need one axis per array ({len(arrays)})")
  sizes = {a.shape[ax] for a, ax in zip(arrays, axes)}
  if len(sizes) != 1:
    raise ValueError(f"arrays disagree on the number of examples along example_axes: {sizes}")
  num_examples = sizes.pop()

  def resampled(sample_key):
    index = jax.random.randint(sample_key, (num_examples,), 0, num_examples)
    return statistic_fn(*[jnp.take(a, index, axis=ax) for a, ax in zip(arrays, axes)])

  keys = jax.random.split(key, int(num_samples))
  samples = jax.lax.map(resampled, keys, batch_size=batch_size or int(num_samples))
  tail = (1.0 - confidence) / 2.0 * 100.0
  low = jax.tree.map(lambda s: jnp.nanpercentile(s, tail, axis=0), samples)
  high = jax.tree.map(lambda s: jnp.nanpercentile(s, 100.0 - tail, axis=0), samples)
  return Interval(statistic_fn(*arrays), low, high)
