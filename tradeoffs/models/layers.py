"""Shared building blocks: activation registry, width scaling, conv/BN factories, checks.

Hyperparameter checks run in each model's `__post_init__`, so a bad value raises `ValueError`
when the module is built, before anything is traced or compiled.
"""

from __future__ import annotations

import functools
import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

# BatchNorm settings shared by every model (PyTorch-equivalent: torch momentum 0.1).
BN_MOMENTUM = 0.9
BN_EPSILON = 1e-5

# He (fan-out) initialisation for convolutions followed by BN, as in the ResNet papers and
# torchvision; dense layers keep Flax's LeCun-normal default.
conv_kernel_init = nn.initializers.variance_scaling(2.0, "fan_out", "normal")

# name -> factory building the activation inside a compact method (PReLU owns a parameter).
_ACTIVATIONS: dict[str, Callable[[], Callable[[jax.Array], jax.Array]]] = {
    "relu": lambda: nn.relu,
    "swish": lambda: nn.swish,
    "silu": lambda: nn.silu,
    # Exact (erf) GELU, as in the GELU paper and PyTorch's default; tanh approximation differs.
    "gelu": lambda: functools.partial(nn.gelu, approximate=False),
    "tanh": lambda: jnp.tanh,
    # One learned slope per layer (Flax nn.PReLU, init 0.01).
    "prelu": lambda: nn.PReLU(),
    # Slope 0.01, the usual default (Flax, PyTorch).
    "leaky_relu": lambda: functools.partial(nn.leaky_relu, negative_slope=0.01),
}


def activation_names() -> list[str]:
  return sorted(_ACTIVATIONS)


def register_activation(name: str, factory: Callable[[], Callable[[jax.Array], jax.Array]]):
  """Adds an activation; `factory()` is called inside a module's compact method."""
  if name in _ACTIVATIONS:
    raise ValueError(f"activation {name!r} is already registered")
  _ACTIVATIONS[name] = factory


def make_activation(name: str) -> Callable[[jax.Array], jax.Array]:
  """The activation `name`; call inside a compact method (PReLU creates a parameter)."""
  check_activation(name)
  return _ACTIVATIONS[name]()


def check_activation(name: Any) -> None:
  if name not in _ACTIVATIONS:
    raise ValueError(f"activation must be one of {activation_names()}, got {name!r}")


def scale_width(width: int, multiplier: float) -> int:
  """`width * multiplier` rounded to the nearest int, at least 1."""
  return max(1, int(round(width * multiplier)))


def _is_positive_int(value: Any) -> bool:
  return not isinstance(value, bool) and isinstance(value, int) and value >= 1


def check_positive_int(arg: str, value: Any) -> None:
  if not _is_positive_int(value):
    raise ValueError(f"{arg} must be a positive int, got {value!r}")


def check_widths(arg: str, value: Any, allow_empty: bool = True) -> None:
  if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
    raise ValueError(f"{arg} must be a sequence of positive ints, got {value!r}")
  if not value and not allow_empty:
    raise ValueError(f"{arg} must be a non-empty sequence of positive ints, got {value!r}")
  if not all(map(_is_positive_int, value)):
    raise ValueError(f"{arg} must be a sequence of positive ints, got {value!r}")


def check_depth(depth: Any, offset: int, examples: str) -> None:
  """Checks a CIFAR-style depth 6n + offset with n >= 1 (`examples` lists valid ones)."""
  if not _is_positive_int(depth) or depth < 6 + offset or (depth - offset) % 6:
    raise ValueError(f"depth must be 6n+{offset} with n >= 1, i.e. (depth - {offset}) % 6 == 0 "
                     f"and depth >= {6 + offset} ({examples}), got {depth!r}")


def check_images(images: jax.Array) -> None:
  if images.ndim != 4:
    raise ValueError(f"images must be [B, H, W, C], got shape {images.shape}")


def check_common(module: Any) -> None:
  """Checks fields every model has: dtype, width_multiplier, and activation/dropout if present."""
  try:
    dtype = jnp.dtype(module.dtype)
  except TypeError:
    dtype = None
  if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
    raise ValueError(f"dtype must be a floating dtype (e.g. float32, bfloat16), "
                     f"got {module.dtype!r}")
  multiplier = module.width_multiplier
  if (isinstance(multiplier, bool) or not isinstance(multiplier, (int, float))
      or not math.isfinite(multiplier) or multiplier <= 0):
    raise ValueError(f"width_multiplier must be a positive finite number, got {multiplier!r}")
  if hasattr(module, "activation"):
    check_activation(module.activation)
  if hasattr(module, "dropout"):
    rate = module.dropout
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0.0 <= rate < 1.0:
      raise ValueError(f"dropout must be a rate in [0, 1), got {rate!r}")
  check_positive_int("num_classes", module.num_classes)


def batch_norm(train: bool, dtype: Any, name: str | None = None, **kwargs: Any) -> nn.BatchNorm:
  """BatchNorm with the shared settings; running averages are used (and kept) unless training."""
  return nn.BatchNorm(use_running_average=not train, momentum=BN_MOMENTUM, epsilon=BN_EPSILON,
                      dtype=dtype, name=name, **kwargs)


def conv(features: int, kernel: int, stride: int, dtype: Any, name: str | None = None,
         use_bias: bool = False, groups: int = 1) -> nn.Conv:
  """Square conv with symmetric padding kernel//2 (PyTorch-style, unlike Flax 'SAME' at stride 2)."""
  pad = kernel // 2
  return nn.Conv(features, (kernel, kernel), strides=(stride, stride),
                 padding=((pad, pad), (pad, pad)), use_bias=use_bias, feature_group_count=groups,
                 dtype=dtype, kernel_init=conv_kernel_init, name=name)


# How a model's non-overlapping max-pooling is lowered (chosen by the execution plan,
# `tradeoffs.train.plan`): 'window' is `lax.reduce_window` (its gradient is XLA's
# select_and_scatter_add, slow on XLA:CPU); 'reshape' views the input as windows and takes
# their max, with a VJP that sends each cotangent to the window's first maximum, as
# select_and_scatter_add does, so both give the same values and gradients bit for bit
# (the programs around them may still fuse differently: agreement to rounding).
POOLINGS = ("window", "reshape")


def check_pooling(pooling: Any) -> None:
  if pooling not in POOLINGS:
    raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")


def max_pool(x: jax.Array, window: int, pooling: str = "window") -> jax.Array:
  """Max over non-overlapping `window` x `window` patches of [B, H, W, C] ('VALID': trailing
  rows/columns that do not fill a window are dropped), lowered as `pooling` says."""
  check_pooling(pooling)
  if pooling == "window":
    return nn.max_pool(x, (window, window), strides=(window, window))
  b, h, w, c = x.shape
  if h < window or w < window:
    raise ValueError(f"max_pool: a {window}x{window} window does not fit {h}x{w} inputs")
  return _reshape_max_pool(x, window)


def _windows(x: jax.Array, window: int) -> jax.Array:
  """[B, H, W, C] → [B, H/k, W/k, C, k·k] (window entries row-major, as reduce_window scans)."""
  b, h, w, c = x.shape
  x = x[:, :h // window * window, :w // window * window]
  x = x.reshape(b, h // window, window, w // window, window, c)
  return x.transpose(0, 1, 3, 5, 2, 4).reshape(b, h // window, w // window, c, window * window)


@functools.partial(jax.custom_vjp, nondiff_argnums=(1,))
def _reshape_max_pool(x: jax.Array, window: int) -> jax.Array:
  return jnp.max(_windows(x, window), axis=-1)


def _reshape_max_pool_fwd(x, window):
  patches = _windows(x, window)
  return jnp.max(patches, axis=-1), (jnp.argmax(patches, axis=-1), x.shape)


def _reshape_max_pool_bwd(window, residuals, cotangent):
  first, shape = residuals
  b, h, w, c = shape
  hp, wp = h // window, w // window
  scattered = jax.nn.one_hot(first, window * window, dtype=cotangent.dtype) * cotangent[..., None]
  scattered = scattered.reshape(b, hp, wp, c, window, window).transpose(0, 1, 4, 2, 5, 3)
  scattered = scattered.reshape(b, hp * window, wp * window, c)
  return (jnp.pad(scattered, ((0, 0), (0, h - hp * window), (0, w - wp * window), (0, 0))),)


_reshape_max_pool.defvjp(_reshape_max_pool_fwd, _reshape_max_pool_bwd)


# How a model's convolutions are lowered (chosen by the execution plan): 'lax' is
# `lax.conv_general_dilated`; 'im2col' stacks the k·k shifted views of the padded input
# along the channels and multiplies once by the flattened kernel. Vmapped over members,
# XLA:CPU turns a lax convolution into a grouped convolution and runs it ~7x slower than
# the im2col form's batched matmul (digits CNN, experiments/benchmarks/populations.py).
# The sums run in another order: the two agree to float rounding, not bitwise.
CONVOLUTIONS = ("lax", "im2col")


def check_convolution(convolution: Any) -> None:
  if convolution not in CONVOLUTIONS:
    raise ValueError(f"convolution must be one of {CONVOLUTIONS}, got {convolution!r}")


def conv_general_dilated_for(convolution: str) -> Callable[..., jax.Array]:
  """The `conv_general_dilated` a Flax `nn.Conv` should call for `convolution`."""
  check_convolution(convolution)
  return jax.lax.conv_general_dilated if convolution == "lax" else im2col_conv


def im2col_conv(lhs, rhs, window_strides, padding, lhs_dilation=None, rhs_dilation=None,
                dimension_numbers=None, feature_group_count=1, precision=None,
                **kwargs) -> jax.Array:
  """`lax.conv_general_dilated` for 2-D NHWC inputs and HWIO kernels as one matmul over
  shifted views; any other case (dilation, groups, layouts) falls back to lax."""
  plain = (lhs.ndim == 4 and feature_group_count == 1 and not kwargs
           and all(d in (None, 1) for d in tuple(lhs_dilation or ()) + tuple(rhs_dilation or ()))
           and dimension_numbers is not None
           and tuple(jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dimension_numbers))
           == tuple(jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape,
                                                   ("NHWC", "HWIO", "NHWC"))))
  if not plain:
    return jax.lax.conv_general_dilated(
        lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
        rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
        feature_group_count=feature_group_count, precision=precision, **kwargs)
  kh, kw, cin, cout = rhs.shape
  if isinstance(padding, str):
    padding = jax.lax.padtype_to_pads(lhs.shape[1:3], (kh, kw), window_strides, padding)
  x = jnp.pad(lhs, ((0, 0), *[tuple(p) for p in padding], (0, 0)))
  sh, sw = window_strides
  ho, wo = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
  views = [x[:, i:i + (ho - 1) * sh + 1:sh, j:j + (wo - 1) * sw + 1:sw, :]
           for i in range(kh) for j in range(kw)]  # (i, j, c) order: HWIO flattened
  return jnp.einsum("bhwk,ko->bhwo", jnp.concatenate(views, axis=-1),
                    rhs.reshape(kh * kw * cin, cout), precision=precision)


def classifier(num_classes: int, dtype: Any) -> nn.Dense:
  return nn.Dense(num_classes, dtype=dtype, name="head")


def to_logits(x: jax.Array) -> jax.Array:
  """Logits are always float32, whatever the computation dtype."""
  return x.astype(jnp.float32)
