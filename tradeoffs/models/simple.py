"""Small models for the offline datasets: `mlp` and `cnn`."""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from tradeoffs.models import layers
from tradeoffs.models.registry import register


@register("mlp")
class MLP(nn.Module):
  """Flatten, then [Dense -> (BN) -> activation -> (dropout)] per hidden width, then Dense.

  With `batch_norm`, hidden Dense layers drop their bias (BN's shift replaces it).
  """
  num_classes: int
  hidden: Sequence[int] = (256, 256)
  activation: str = "relu"
  batch_norm: bool = False
  dropout: float = 0.0
  width_multiplier: float = 1.0
  dtype: Any = jnp.float32

  def __post_init__(self):
    layers.check_common(self)
    layers.check_widths("hidden", self.hidden)
    object.__setattr__(self, "hidden", tuple(self.hidden))  # hashable, like every field
    super().__post_init__()

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    x = images.reshape((images.shape[0], -1)).astype(self.dtype)
    for i, width in enumerate(self.hidden):
      x = nn.Dense(layers.scale_width(width, self.width_multiplier), use_bias=not self.batch_norm,
                   dtype=self.dtype, name=f"dense_{i}")(x)
      if self.batch_norm:
        x = layers.batch_norm(train, self.dtype, name=f"bn_{i}")(x)
      x = layers.make_activation(self.activation)(x)
      if self.dropout > 0:
        x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return layers.to_logits(layers.classifier(self.num_classes, self.dtype)(x))


@register("cnn")
class CNN(nn.Module):
  """[3x3 conv -> (BN) -> activation -> 2x2 max-pool] per channel width, then one hidden Dense
  layer (-> (BN) -> activation -> (dropout)) and the classifier.

  Convs use 'SAME' padding; with `batch_norm`, convs and the hidden Dense drop their bias.
  `pooling` is how the max-pooling is lowered (`layers.POOLINGS`; the same numbers either
  way, up to how the surrounding program is fused) and `convolution` how the convs are
  (`layers.CONVOLUTIONS`; the same numbers to rounding); both are set by the execution plan
  (`tradeoffs.train.plan`), not by configs.
  """
  num_classes: int
  channels: Sequence[int] = (32, 64)
  dense: int = 128
  activation: str = "relu"
  batch_norm: bool = False
  dropout: float = 0.0
  width_multiplier: float = 1.0
  dtype: Any = jnp.float32
  pooling: str = "window"
  convolution: str = "lax"

  def __post_init__(self):
    layers.check_common(self)
    layers.check_pooling(self.pooling)
    layers.check_convolution(self.convolution)
    layers.check_widths("channels", self.channels)
    object.__setattr__(self, "channels", tuple(self.channels))  # hashable, like every field
    layers.check_positive_int("dense", self.dense)
    super().__post_init__()

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    layers.check_images(images)
    x = images.astype(self.dtype)
    for i, width in enumerate(self.channels):
      x = nn.Conv(layers.scale_width(width, self.width_multiplier), (3, 3), padding="SAME",
                  use_bias=not self.batch_norm, dtype=self.dtype, name=f"conv_{i}",
                  conv_general_dilated=layers.conv_general_dilated_for(self.convolution))(x)
      if self.batch_norm:
        x = layers.batch_norm(train, self.dtype, name=f"conv_bn_{i}")(x)
      x = layers.make_activation(self.activation)(x)
      x = layers.max_pool(x, 2, self.pooling)
    x = x.reshape((x.shape[0], -1))
    x = nn.Dense(layers.scale_width(self.dense, self.width_multiplier),
                 use_bias=not self.batch_norm, dtype=self.dtype, name="dense")(x)
    if self.batch_norm:
      x = layers.batch_norm(train, self.dtype, name="dense_bn")(x)
    x = layers.make_activation(self.activation)(x)
    if self.dropout > 0:
      x = nn.Dropout(self.dropout, deterministic=not train)(x)
    return layers.to_logits(layers.classifier(self.num_classes, self.dtype)(x))
