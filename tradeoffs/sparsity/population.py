"""Pruning a population: params with a leading member axis, one mask per member.

    masks = sparsity.population_masks(pop_params, 0.9, "global")    # vmapped per member
    pruned = sparsity.apply_masks(pop_params, masks)

One-shot magnitude pruning (`population_masks`) ranks each member's own trained weights
and keeps exactly round((1 - sparsity) * n) prunable weights per member ('global') or per
layer (a layer-wise distribution); pruned weights are exactly zero.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np

from tradeoffs.sparsity import distributions
from tradeoffs.sparsity import masks as masks_lib


def population_masks(params: Any, sparsity_level: float, distribution: Any = "global", *,
                     filter_fn=None, keep_dense: Sequence[str] = ()) -> Any:
  """Per-member magnitude masks for population params [members, ...] (vmapped).

  Prunable leaves follow `masks.default_filter` (>= 2-D, not norms) unless `filter_fn`
  says otherwise.

  >>> import numpy as np
  >>> pop = {"w": np.array([[[1.0, 4.0], [3.0, 2.0]], [[5.0, 0.0], [0.0, 6.0]]])}  # [2, 2, 2]
  >>> np.asarray(population_masks(pop, 0.5)["w"]).astype(int).tolist()   # per member: top 2
  [[[0, 1], [1, 0]], [[1, 0], [0, 1]]]
  """
  distributions.check_sparsity(sparsity_level, "sparsity")
  distributions.check_distribution(distribution)
  prune = lambda p: masks_lib.magnitude_masks(  # noqa: E731
      p, sparsity_level, distribution, filter_fn=filter_fn, keep_dense=keep_dense)
  return jax.jit(jax.vmap(prune))(params)


def prune_population(params: Any, sparsity_level: float, distribution: Any = "global", *,
                     filter_fn=None, keep_dense: Sequence[str] = ()) -> tuple[Any, Any]:
  """One-shot magnitude pruning of every member: (pruned params, masks).

  Shapes: every leaf of `params` is [members, ...]; both outputs have the same structure
  and shapes (masks bool). Each member keeps exactly round((1 - s) * n) prunable weights.

  >>> import numpy as np
  >>> pop = {"w": np.arange(1, 9, dtype=np.float32).reshape(2, 2, 2)}   # 2 members, [2, 2]
  >>> pruned, masks = prune_population(pop, 0.75)
  >>> np.asarray(masks["w"]).sum(axis=(1, 2)).tolist()                 # 1 of 4 kept each
  [1, 1]
  >>> np.asarray(pruned["w"])[1].tolist()
  [[0.0, 0.0], [0.0, 8.0]]
  """
  masks = population_masks(params, sparsity_level, distribution, filter_fn=filter_fn,
                           keep_dense=keep_dense)
  return masks_lib.apply_masks(params, masks), masks


def measured_sparsity(params: Any, filter_fn=None) -> dict[str, float]:
  """Fraction of exact zeros among the prunable weights, per member: mean, min, max.

  >>> import numpy as np
  >>> pop = {"w": np.array([[[0.0, 1.0], [2.0, 3.0]], [[0.0, 0.0], [0.0, 1.0]]]),
  ...        "b": np.zeros((2, 2))}                 # biases are not prunable: not counted
  >>> measured_sparsity(pop)
  {'mean': 0.5, 'min': 0.25, 'max': 0.75}
  """
  summary = jax.jit(jax.vmap(lambda p: masks_lib.summarize_sparsity(  # One program.
      p, filter_fn or masks_lib.default_filter)["total"]["sparsity"]))(params)
  values = np.asarray(jax.device_get(summary), np.float64)
  return {"mean": float(values.mean()), "min": float(values.min()),
          "max": float(values.max())}
