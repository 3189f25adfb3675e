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
  """ValueError unless bits is an int in [2, 8] and granularity a known one."""
  if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)) or not 2 <= bits <= 8:
    raise ValueError(f"{name}={bits!r}: must be an integer in [2, 8] (8 = int8, 4 = int4)")
  if granularity not in fake_quant.GRANULARITIES:
    raise ValueError(f"granularity={granularity!r} is unknown; valid: "
                     f"{list(fake_quant.GRANULARITIES)}")


def quantize_population(params: Any, bits: int, granularity: str = "per_channel", *,
                        filter_fn=None, keep_dense: Sequence[str] = ()) -> Any:
  """Every member's weights fake-quantized (dequantized values code * scale), vmapped."""
  check_quantization(bits, granularity)  # Fail before tracing.
  quantize = lambda p: fake_quant.quantize(  # noqa: E731
      p, bits, granularity, filter_fn=filter_fn, keep_dense=keep_dense).params
  return jax.jit(jax.vmap(quantize))(params)


def quantized_bits_per_leaf(params: Any, bits: int, *, filter_fn=None,
                            keep_dense: Sequence[str] = ()) -> Any:
  """Bit widths per leaf for `efficiency.measure`: `bits` for quantized leaves, else None."""
  chosen = set(masks_lib.prunable_names(params, filter_fn, keep_dense))
  return jax.tree_util.tree_map_with_path(
      lambda path, _: bits if masks_lib.path_name(path) in chosen else None, params)
