"""Post-training quantization of a population (params with a leading member axis).

Weight bytes, one definition (`quantized_bytes`): every quantized leaf (default: >= 2-D,
not norms) stores its integer codes packed at `bits` bits plus one float32 scale per
channel (per tensor for 'per_tensor'); every other leaf (biases, norm scales, batch
statistics when passed) is counted at its own dtype. Compute stays float32 (fake
quantization), so FLOPs and latency are the float model's.
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import numpy as np

from tradeoffs.quantization import fake_quant
from tradeoffs.sparsity import masks as masks_lib


def check_quantization(bits: Any, granularity: Any, name: str = "bits") -> None:
  """ValueError unless bits is an int in [2, 8] and granularity a known one.

  >>> check_quantization(4, "per_channel")        # fine: returns None
  >>> check_quantization(16, "per_channel")
  Traceback (most recent call last):
  ...
  ValueError: bits=16: must be an integer in [2, 8] (8 = int8, 4 = int4)
  """
  if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 8:
    raise ValueError(f"{name}={bits!r}: must be an integer in [2, 8] (8 = int8, 4 = int4)")
  if granularity not in fake_quant.GRANULARITIES:
    raise ValueError(f"granularity={granularity!r} is unknown; valid: "
                     f"{list(fake_quant.GRANULARITIES)}")


def quantize_population(params: Any, bits: int, granularity: str = "per_channel", *,
                        axis: int = -1, filter_fn=None, keep_dense: Sequence[str] = ()) -> Any:
  """Every member's weights fake-quantized (dequantized values code * scale), vmapped.

  Args:
    params: population params, every leaf [members, ...] (any framework's pytree).
    bits, granularity: as `fake_quant.quantize` (8 = int8, 4 = int4).
    axis: the channel axis of each member's weights for 'per_channel': -1 (default) is
      the output axis of Linen/NNX kernels ([in, out], [kh, kw, in, out]); use 0 for
      Equinox/PyTorch layouts ([out, in], [out, in, kh, kw]).
    filter_fn, keep_dense: which leaves are quantized (default `sparsity.default_filter`).

  Returns:
    Params of the same structure, shapes and dtypes, quantized leaves replaced by their
    dequantized values.

  >>> import numpy as np
  >>> w = np.array([[[0.7, -1.4], [0.26, 0.05]]], np.float32)    # 1 member, [2, 2] kernel
  >>> q = quantize_population({"w": w, "b": np.ones((1, 2), np.float32)}, bits=4)
  >>> np.asarray(q["w"], np.float64).round(4).tolist()            # scales 0.7/7, 1.4/7
  [[[0.7, -1.4], [0.3, 0.0]]]
  >>> np.asarray(q["b"]).tolist()                                 # 1-D per member: untouched
  [[1.0, 1.0]]
  """
  check_quantization(bits, granularity)  # Fail before tracing.
  quantize = lambda p: fake_quant.quantize(  # noqa: E731
      p, bits, granularity, axis, filter_fn=filter_fn, keep_dense=keep_dense).params
  return jax.jit(jax.vmap(quantize))(params)


def quantized_bits_per_leaf(params: Any, bits: int, *, filter_fn=None,
                            keep_dense: Sequence[str] = ()) -> Any:
  """Bit widths per leaf for `efficiency.measure`: `bits` for quantized leaves, else None.

  >>> import numpy as np
  >>> params = {"dense": {"kernel": np.zeros((2, 3)), "bias": np.zeros(3)}}
  >>> quantized_bits_per_leaf(params, 4)   # 1-D leaves stay in float
  {'dense': {'bias': None, 'kernel': 4}}
  """
  chosen = set(masks_lib.prunable_names(params, filter_fn, keep_dense))
  return jax.tree_util.tree_map_with_path(
      lambda path, _: bits if masks_lib.path_name(path) in chosen else None, params)
