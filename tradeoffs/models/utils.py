"""Initialising models and counting their parameters."""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from tradeoffs.models import registry


def _check_shape(input_shape: Any) -> tuple[int, ...]:
  try:
    shape = tuple(int(d) for d in input_shape)
  except TypeError:
    shape = ()
  if len(shape) < 2 or any(d < 1 for d in shape):
    raise ValueError(f"input_shape must be a full [B, H, W, C] shape of positive ints, "
                     f"got {input_shape!r}")
  return shape


def init(module: nn.Module, key: jax.Array, input_shape: Sequence[int],
         dtype: Any = jnp.float32) -> dict[str, Any]:
  """Variables (`params`, and `batch_stats` where BN is used) from `module.init` on zeros.

  Initialises in eval mode (train=False), so no `dropout` rng is needed.
  """
  shape = _check_shape(input_shape)
  return module.init({"params": key}, jnp.zeros(shape, dtype), train=False)


def abstract_init(module: nn.Module, input_shape: Sequence[int],
                  dtype: Any = jnp.float32) -> dict[str, Any]:
  """Shapes and dtypes of `init`'s variables (`jax.ShapeDtypeStruct` leaves), allocating nothing."""
  shape = _check_shape(input_shape)
  return jax.eval_shape(lambda key: init(module, key, shape, dtype), jax.random.key(0))


def param_count(params: Any) -> int:
  """Number of scalars over all leaves (arrays or `jax.ShapeDtypeStruct`s) of a pytree.

  For a population (leading member axis) this is the total over all members.
  """
  return int(sum(int(np.prod(leaf.shape, dtype=np.int64))
                 for leaf in jax.tree.leaves(params)))


def describe(module: nn.Module | str, input_shape: Sequence[int],
             **get_kwargs: Any) -> dict[str, int]:
  """Parameter count per layer, keyed by the layer's path ('stage1_block0/conv1'), in order.

  `module` is a module, or a registry name built with `get(module, **get_kwargs)` (which then
  needs `num_classes`). Computed with `jax.eval_shape`, so it is cheap even for ImageNet-size
  models.
  """
  if isinstance(module, str):
    module = registry.get(module, **get_kwargs)
  elif get_kwargs:
    raise ValueError(f"get_kwargs {sorted(get_kwargs)} are only for a model name, "
                     f"got a module {type(module).__name__}")
  params = abstract_init(module, input_shape)["params"]
  counts: dict[str, int] = {}
  for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
    layer = "/".join(str(getattr(k, "key", k)) for k in path[:-1])
    counts[layer] = counts.get(layer, 0) + param_count(leaf)
  return counts
