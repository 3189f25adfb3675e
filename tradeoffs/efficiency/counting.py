"""Counting parameters and weight bytes of a parameter pytree.

These are the theoretical, hardware-independent costs: how many numbers a model
stores, how many of them are non-zero, and how many bytes they take at the
precision they are stored (or would be stored, for quantized weights).
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from tradeoffs.sparsity.masks import path_name

# A bit width per leaf: a pytree matching `params` (ints, or None for "as stored"),
# or a callback `(path_name, leaf) -> bits | None` (names as `sparsity.path_name`).
BitsPerLeaf = Any | Callable[[str, Any], "int | None"]


def _leaves(params: Any) -> list[Any]:
  return [leaf for leaf in jax.tree.leaves(params) if hasattr(leaf, "shape")]


def param_count(params: Any) -> int:
  """Number of scalars in all array leaves of `params`.

  >>> import numpy as np
  >>> param_count({"dense": {"kernel": np.zeros((3, 4)), "bias": np.zeros(4)}})
  16
  """
  return int(sum(int(np.prod(leaf.shape)) for leaf in _leaves(params)))


def nonzero_count(params: Any) -> int:
  """Number of non-zero scalars in `params` (pruned weights are exact zeros).

  >>> import numpy as np
  >>> params = {"w": np.array([[0.0, 1.0], [2.0, 0.0]]), "b": np.ones(3)}
  >>> param_count(params), nonzero_count(params)
  (7, 5)
  """
  return int(sum(int(np.count_nonzero(np.asarray(leaf))) for leaf in _leaves(params)))


def leaf_density(leaf: Any) -> float:
  """Fraction of non-zero entries of one array (1.0 for an empty array)."""
  size = int(np.prod(leaf.shape))
  return 1.0 if size == 0 else float(np.count_nonzero(np.asarray(leaf))) / size


def stored_bits(leaf: Any) -> int:
  """Bits per element of `leaf` as stored (float32 -> 32, bfloat16 -> 16, bool -> 8)."""
  return int(jnp.dtype(leaf.dtype).itemsize) * 8


def weight_bytes(params: Any, bits_per_leaf: BitsPerLeaf | None = None) -> int:
  """Bytes the weights take at their stored precision, or at `bits_per_leaf`.

  Args:
    params: the parameter pytree.
    bits_per_leaf: None (count every leaf at its dtype), a pytree with the structure of
      `params` holding a bit width per leaf (None keeps the dtype), or a callback
      `(path_name, leaf) -> bits or None`. Quantized weights simulated in float32
      ("fake quantization") count at their bit width this way, e.g. 8 or 4.

  Returns:
    Total bytes, the total rounded up to whole bytes.

  >>> import numpy as np
  >>> params = {"kernel": np.zeros((4, 4), np.float32), "bias": np.zeros(4, np.float32)}
  >>> weight_bytes(params)  # 20 float32 numbers
  80
  >>> weight_bytes(params, {"kernel": 4, "bias": None})  # 16 * 4 bits + 4 * 32 bits
  24
  >>> weight_bytes(params, lambda name, leaf: 8 if name.endswith("kernel") else None)
  32
  """
  with_paths = [(p, x) for p, x in jax.tree_util.tree_flatten_with_path(params)[0]
                if hasattr(x, "shape")]
  if bits_per_leaf is None:
    bits = [None] * len(with_paths)
  elif callable(bits_per_leaf):
    bits = [bits_per_leaf(path_name(p), x) for p, x in with_paths]
  else:
    treedef = jax.tree.structure(params)
    try:
      bits = treedef.flatten_up_to(bits_per_leaf)
    except (ValueError, TypeError) as e:
      raise ValueError(f"bits_per_leaf must have the structure of params or be a callback "
                       f"(path, leaf) -> bits; got a mismatching pytree: {e}") from None
    all_leaves = jax.tree.leaves(params)
    bits = [b for b, x in zip(bits, all_leaves) if hasattr(x, "shape")]
  total_bits = 0
  for (path, leaf), b in zip(with_paths, bits):
    b = stored_bits(leaf) if b is None else b
    if not isinstance(b, (int, np.integer)) or b <= 0:
      raise ValueError(f"bits_per_leaf for {path_name(path)!r} is {b!r}; expected a "
                       "positive int or None")
    total_bits += int(np.prod(leaf.shape)) * int(b)
  return int(-(-total_bits // 8))


def compression_ratio(params: Any, bits_per_leaf: Any = None) -> float:
  """float32 bits of the dense params / bits of the non-zero weights as stored compressed.

  Pruned weights count as free (index overhead ignored); quantized leaves count every
  entry at their bit width (codes are stored densely; scales are not counted). One
  member's params; `bits_per_leaf` a pytree like `params` with an int or None per leaf.

  >>> import numpy as np
  >>> w = np.array([[0.0, 1.0], [0.0, 2.0]])  # half pruned
  >>> compression_ratio({"w": w})
  2.0
  >>> compression_ratio({"w": w}, {"w": 8})  # quantized: every entry at 8 bits
  4.0
  """
  leaves = jax.tree.leaves(params)
  bits = (jax.tree.leaves(bits_per_leaf, is_leaf=lambda x: x is None)
          if bits_per_leaf is not None else [None] * len(leaves))
  dense = sum(int(np.prod(np.shape(leaf))) * 32 for leaf in leaves)
  stored = 0
  for leaf, b in zip(leaves, bits):
    leaf = np.asarray(leaf)
    stored += leaf.size * int(b) if b is not None else int(np.count_nonzero(leaf)) * 32
  return float(dense / max(stored, 1))
