"""Post-training fake quantization: symmetric int8/int4 weights, per tensor or per channel.

    scale = max|w| / qmax,  qmax = 2**(bits-1) - 1   (127 for int8, 7 for int4)
    code  = clip(round(w / scale), -qmax, qmax),  w_hat = code * scale

over the whole tensor ('per_tensor') or over every slice along `axis` ('per_channel', default
the last axis = output channels of Dense/Conv kernels). Symmetric with a restricted range
(-qmax..qmax, no -2**(bits-1)) so zero is exact and |w - w_hat| <= scale / 2. A tensor (or
channel) of all zeros gets scale 1 and codes 0.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tradeoffs.sparsity import masks as masks_lib

GRANULARITIES = ("per_tensor", "per_channel")


class Quantized(NamedTuple):
  """`params`: dequantized floats (params' structure and dtypes); `codes`: int8 codes and
  `scales`: float32 scales for quantized leaves, None for leaves left in float."""
  params: Any
  codes: Any
  scales: Any


def _check(bits, granularity) -> None:
  if isinstance(bits, bool) or not isinstance(bits, int) or not 2 <= bits <= 8:
    raise ValueError(f"bits must be an integer in [2, 8] (8 = int8, 4 = int4), got {bits!r}")
  if granularity not in GRANULARITIES:
    raise ValueError(f"granularity must be one of {list(GRANULARITIES)}, got {granularity!r}")


def _reduce_axes(ndim: int, granularity: str, axis: int, name: str) -> tuple:
  if granularity == "per_tensor":
    return tuple(range(ndim))
  if not -ndim <= axis < ndim:
    raise ValueError(f"axis={axis} is out of range for leaf {name!r} with {ndim} dimensions")
  return tuple(i for i in range(ndim) if i != axis % ndim)


def quantize_array(w, bits: int = 8, granularity: str = "per_channel", axis: int = -1,
                   name: str = "array"):
  """(dequantized, int8 codes, float32 scales with w's ndim, broadcastable) for one array.

  >>> import numpy as np
  >>> w = np.array([[0.7, -1.4], [0.25, 0.05]], np.float32)     # [in, out]
  >>> dq, codes, scale = quantize_array(w, bits=4)               # int4: codes in [-7, 7]
  >>> codes.tolist(), scale.shape                                # per column: 0.7/7, 1.4/7
  ([[7, -7], [2, 0]], (1, 2))
  >>> np.asarray(dq, np.float64).round(4).tolist()
  [[0.7, -1.4], [0.2, 0.0]]
  >>> quantize_array(w, bits=4, granularity="per_tensor")[2].shape   # one scale, 1.4/7
  (1, 1)
  """
  _check(bits, granularity)
  qmax = 2 ** (bits - 1) - 1
  w32 = jnp.asarray(w).astype(jnp.float32)
  reduce = _reduce_axes(w32.ndim, granularity, axis, name)
  max_abs = jnp.max(jnp.abs(w32), axis=reduce, keepdims=True) if w32.size else jnp.ones(())
  scale = jnp.where(max_abs > 0, max_abs / qmax, 1.0).astype(jnp.float32)
  codes = jnp.clip(jnp.round(w32 / scale), -qmax, qmax).astype(jnp.int8)
  dequantized = (codes.astype(jnp.float32) * scale).astype(jnp.asarray(w).dtype)
  return dequantized, codes, scale


def quantize(params, bits: int = 8, granularity: str = "per_channel", axis: int = -1, *,
             filter_fn: Optional[masks_lib.FilterFn] = None,
             keep_dense: Sequence[str] = ()) -> Quantized:
  """Fake-quantizes the leaves chosen by `filter_fn` (default: >= 2-D, not norms).

  Args:
    params: parameter pytree.
    bits: 8 (int8), 4 (int4), or any width in [2, 8].
    granularity: 'per_tensor' or 'per_channel' (one scale per slice along `axis`).
    axis: channel axis for 'per_channel'.
    filter_fn, keep_dense: which leaves are quantized; the rest are returned unchanged.

  Returns:
    `Quantized(params, codes, scales)`: params with the input's structure, shapes and
    dtypes; per quantized leaf int8 codes of its shape and float32 scales of its ndim
    (size 1 on reduced axes); None for leaves left in float.

  >>> import numpy as np
  >>> w = np.array([[1.0, -0.5], [0.3, 0.25]], np.float32)      # [in, out]
  >>> q = quantize({"w": w, "b": np.zeros(2, np.float32)}, bits=8)
  >>> np.asarray(q.codes["w"]).tolist(), q.codes["b"] is None
  ([[127, -127], [38, 64]], True)
  >>> bool(np.all(np.abs(w - q.params["w"]) <= q.scales["w"] / 2))   # |w - q| <= scale/2
  True
  """
  _check(bits, granularity)
  chosen = set(masks_lib.prunable_names(params, filter_fn, keep_dense))
  leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(params)
  values, codes, scales = [], [], []
  for path, leaf in leaves_with_path:
    name = masks_lib.path_name(path)
    if name in chosen:
      w_hat, code, scale = quantize_array(leaf, bits, granularity, axis, name)
      values.append(w_hat)
      codes.append(code)
      scales.append(scale)
    else:
      values.append(leaf)
      codes.append(None)
      scales.append(None)
  unflatten = lambda xs: jax.tree.unflatten(treedef, xs)  # noqa: E731
  return Quantized(unflatten(values), unflatten(codes), unflatten(scales))


def quantized_bytes(params, bits: int = 8, granularity: str = "per_channel", axis: int = -1, *,
                    filter_fn: Optional[masks_lib.FilterFn] = None,
                    keep_dense: Sequence[str] = ()) -> int:
  """Bytes the quantized model needs: ceil(n * bits / 8) per quantized leaf, plus 4 bytes per
  float32 scale, plus unquantized leaves at their own dtype.

  >>> import numpy as np
  >>> params = {"w": np.zeros((4, 4), np.float32), "b": np.zeros(4, np.float32)}
  >>> quantized_bytes(params, bits=4)   # 16 * 4 bits = 8 B + 4 scales * 4 B + bias 16 B
  40
  >>> quantized_bytes(params, bits=8, granularity="per_tensor")   # 16 + 4 + 16
  36
  """
  _check(bits, granularity)
  chosen = set(masks_lib.prunable_names(params, filter_fn, keep_dense))
  total = 0
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    name = masks_lib.path_name(path)
    shape, dtype = _shape_dtype(leaf)
    size = int(np.prod(shape))
    if name in chosen:
      reduce = _reduce_axes(len(shape), granularity, axis, name)
      num_scales = int(np.prod([shape[i] for i in range(len(shape)) if i not in reduce]))
      total += math.ceil(size * bits / 8) + 4 * num_scales
    else:
      total += size * dtype.itemsize
  return total


def dense_bytes(params) -> int:
  """Bytes of the params at their own dtypes (the baseline for `quantized_bytes`).

  >>> import numpy as np
  >>> import jax
  >>> dense_bytes({"w": np.zeros((4, 4), np.float32),
  ...              "b": jax.ShapeDtypeStruct((4,), np.float16)})   # 64 + 8
  72
  """
  return sum(int(np.prod(shape)) * dtype.itemsize
             for shape, dtype in map(_shape_dtype, jax.tree.leaves(params)))


def _shape_dtype(leaf):
  """Shape and dtype of an array or a jax.ShapeDtypeStruct (so sizes need no allocation)."""
  if hasattr(leaf, "shape") and hasattr(leaf, "dtype"):
    return tuple(leaf.shape), np.dtype(leaf.dtype)
  array = np.asarray(leaf)
  return array.shape, array.dtype
