"""Wide ResNet WRN-d-k (Zagoruyko & Komodakis 2016), pre-activation, for CIFAR-size inputs.

3x3 stem (base_width channels), 3 groups of n = (d-4)/6 blocks with widths base*k, 2*base*k,
4*base*k (strides 1, 2, 2), then BN -> act -> global average pool -> classifier. A block is
BN -> act -> conv3x3 -> BN -> act -> dropout -> conv3x3, plus the shortcut: identity when
shapes match, else a 1x1 strided conv applied to the pre-activated input (as in the authors'
code). Convs have no bias. WRN-28-10 with 10 classes has 36,479,194 parameters.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from tradeoffs.models import layers
from tradeoffs.models.registry import register


class WideBlock(nn.Module):
  """Pre-activation basic block with dropout between the two convs."""
  features: int
  stride: int
  dropout: float
  activation: str
  dtype: Any

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    pre = layers.batch_norm(train, self.dtype, name="bn1")(x)
    pre = layers.make_activation(self.activation)(pre)
    y = layers.conv(self.features, 3, self.stride, self.dtype, name="conv1")(pre)
    y = layers.batch_norm(train, self.dtype, name="bn2")(y)
    y = layers.make_activation(self.activation)(y)
    if self.dropout > 0:
      y = nn.Dropout(self.dropout, deterministic=not train)(y)
    y = layers.conv(self.features, 3, 1, self.dtype, name="conv2")(y)
    if self.stride != 1 or x.shape[-1] != self.features:
      shortcut = layers.conv(self.features, 1, self.stride, self.dtype, name="proj_conv")(pre)
    else:
      shortcut = x
    return y + shortcut


@register("wrn")
@register("wrn16_2", depth=16, widen_factor=2)
@register("wrn16_4", depth=16, widen_factor=4)
@register("wrn16_8", depth=16, widen_factor=8)
@register("wrn28_10", depth=28, widen_factor=10)
@register("wrn40_10", depth=40, widen_factor=10)
class WideResNet(nn.Module):
  """WRN-depth-widen_factor; depth must be 6n+4."""
  num_classes: int
  depth: int = 28
  widen_factor: int = 10
  dropout: float = 0.0
  base_width: int = 16
  activation: str = "relu"
  width_multiplier: float = 1.0
  dtype: Any = jnp.float32

  def __post_init__(self):
    layers.check_common(self)
    layers.check_positive_int("base_width", self.base_width)
    layers.check_positive_int("widen_factor", self.widen_factor)
    layers.check_depth(self.depth, 4, "16, 22, 28, 40, ...")
    super().__post_init__()

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    layers.check_images(images)
    blocks_per_group = (self.depth - 4) // 6
    scale = lambda w: layers.scale_width(w, self.width_multiplier)
    x = images.astype(self.dtype)
    x = layers.conv(scale(self.base_width), 3, 1, self.dtype, name="stem_conv")(x)
    for group in range(3):
      width = scale(self.base_width * 2**group * self.widen_factor)
      for block in range(blocks_per_group):
        stride = 2 if group > 0 and block == 0 else 1
        x = WideBlock(width, stride, self.dropout, self.activation, self.dtype,
                      name=f"group{group + 1}_block{block}")(x, train)
    x = layers.batch_norm(train, self.dtype, name="final_bn")(x)
    x = layers.make_activation(self.activation)(x)
    x = jnp.mean(x, axis=(1, 2))
    return layers.to_logits(layers.classifier(self.num_classes, self.dtype)(x))
