"""ResNet v1 (He et al. 2016): CIFAR ResNets (6n+2 layers) and ImageNet ResNets / ResNeXt.

Shortcuts: identity when shapes match, else a 1x1 strided conv + BN projection ("option B" in
the paper), as torchvision and most reimplementations do. The CIFAR experiments in the paper
used option A (zero-padded identity, no parameters); the paper's "0.27M" for ResNet-20 rounds
either count (10 classes: 272,474 with option B, 269,722 with option A).

ImageNet models follow torchvision ("ResNet v1.5": the stride sits on the bottleneck's 3x3
conv). `base_width` is the stem width and the first stage's planes (stages: base, 2x, 4x, 8x);
ResNeXt: `groups` (cardinality) with `width_per_group` channels per group in the bottleneck's
3x3 at the first stage (doubling per stage); `width_per_group=None` means base_width // groups,
i.e. plain ResNet widths. So resnext50_32x4d is groups=32, width_per_group=4 and
wide_resnet50_2 is width_per_group=128.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from tradeoffs.models import layers
from tradeoffs.models.registry import register


def _shortcut(x: jax.Array, features: int, stride: int, train: bool, dtype: Any) -> jax.Array:
  """Identity when shapes match, else a 1x1 strided conv + BN projection (option B).

  Call inside a block's compact method: the projection's layers belong to that block.
  """
  if stride == 1 and x.shape[-1] == features:
    return x
  shortcut = layers.conv(features, 1, stride, dtype, name="proj_conv")(x)
  return layers.batch_norm(train, dtype, name="proj_bn")(shortcut)


class BasicBlock(nn.Module):
  """conv3x3 -> BN -> act -> conv3x3 -> BN, + shortcut, -> act."""
  features: int
  stride: int
  activation: str
  dtype: Any

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    y = layers.conv(self.features, 3, self.stride, self.dtype, name="conv1")(x)
    y = layers.batch_norm(train, self.dtype, name="bn1")(y)
    y = layers.make_activation(self.activation)(y)
    y = layers.conv(self.features, 3, 1, self.dtype, name="conv2")(y)
    y = layers.batch_norm(train, self.dtype, name="bn2")(y)
    shortcut = _shortcut(x, self.features, self.stride, train, self.dtype)
    return layers.make_activation(self.activation)(y + shortcut)


class Bottleneck(nn.Module):
  """conv1x1 -> BN -> act -> (grouped, strided) conv3x3 -> BN -> act -> conv1x1 -> BN,
  + shortcut, -> act. Output width is `features`; inner width is `inner`."""
  inner: int
  features: int
  stride: int
  groups: int
  activation: str
  dtype: Any

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    y = layers.conv(self.inner, 1, 1, self.dtype, name="conv1")(x)
    y = layers.batch_norm(train, self.dtype, name="bn1")(y)
    y = layers.make_activation(self.activation)(y)
    y = layers.conv(self.inner, 3, self.stride, self.dtype, name="conv2", groups=self.groups)(y)
    y = layers.batch_norm(train, self.dtype, name="bn2")(y)
    y = layers.make_activation(self.activation)(y)
    y = layers.conv(self.features, 1, 1, self.dtype, name="conv3")(y)
    y = layers.batch_norm(train, self.dtype, name="bn3")(y)
    shortcut = _shortcut(x, self.features, self.stride, train, self.dtype)
    return layers.make_activation(self.activation)(y + shortcut)


@register("resnet_cifar")
@register("resnet20", depth=20)
@register("resnet32", depth=32)
@register("resnet44", depth=44)
@register("resnet56", depth=56)
@register("resnet110", depth=110)
class CifarResNet(nn.Module):
  """CIFAR ResNet v1: 3x3 stem, 3 stages of n basic blocks (widths base, 2*base, 4*base;
  strides 1, 2, 2), global average pool, classifier. depth = 6n + 2."""
  num_classes: int
  depth: int = 20
  base_width: int = 16
  activation: str = "relu"
  width_multiplier: float = 1.0
  dtype: Any = jnp.float32

  def __post_init__(self):
    layers.check_common(self)
    layers.check_positive_int("base_width", self.base_width)
    layers.check_depth(self.depth, 2, "20, 32, 44, 56, 110, ...")
    super().__post_init__()

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    layers.check_images(images)
    blocks_per_stage = (self.depth - 2) // 6
    x = images.astype(self.dtype)
    width = layers.scale_width(self.base_width, self.width_multiplier)
    x = layers.conv(width, 3, 1, self.dtype, name="stem_conv")(x)
    x = layers.batch_norm(train, self.dtype, name="stem_bn")(x)
    x = layers.make_activation(self.activation)(x)
    for stage in range(3):
      width = layers.scale_width(self.base_width * 2**stage, self.width_multiplier)
      for block in range(blocks_per_stage):
        stride = 2 if stage > 0 and block == 0 else 1
        x = BasicBlock(width, stride, self.activation, self.dtype,
                       name=f"stage{stage + 1}_block{block}")(x, train)
    x = jnp.mean(x, axis=(1, 2))
    return layers.to_logits(layers.classifier(self.num_classes, self.dtype)(x))


_IMAGENET_STAGES = {18: ("basic", (2, 2, 2, 2)), 34: ("basic", (3, 4, 6, 3)),
                    50: ("bottleneck", (3, 4, 6, 3)), 101: ("bottleneck", (3, 4, 23, 3)),
                    152: ("bottleneck", (3, 8, 36, 3))}


@register("resnet_imagenet")
@register("resnet18", depth=18)
@register("resnet34", depth=34)
@register("resnet50", depth=50)
@register("resnet101", depth=101)
@register("resnet152", depth=152)
@register("resnext50_32x4d", depth=50, groups=32, width_per_group=4)
@register("wide_resnet50_2", depth=50, width_per_group=128)
class ImageNetResNet(nn.Module):
  """ImageNet ResNet v1.5: 7x7/2 conv stem + 3x3/2 max-pool, 4 stages (strides 1, 2, 2, 2),
  global average pool, classifier. depth in {18, 34} (basic) or {50, 101, 152} (bottleneck)."""
  num_classes: int
  depth: int = 50
  base_width: int = 64
  groups: int = 1
  width_per_group: int | None = None
  activation: str = "relu"
  width_multiplier: float = 1.0
  dtype: Any = jnp.float32

  def __post_init__(self):
    layers.check_common(self)
    layers.check_positive_int("base_width", self.base_width)
    layers.check_positive_int("groups", self.groups)
    if self.depth not in _IMAGENET_STAGES:
      raise ValueError(f"depth must be one of {sorted(_IMAGENET_STAGES)}, got {self.depth!r}")
    if self.width_per_group is not None:
      layers.check_positive_int("width_per_group", self.width_per_group)
    elif self.base_width % self.groups:
      raise ValueError(f"groups={self.groups} must divide base_width={self.base_width} "
                       f"unless width_per_group is given")
    if _IMAGENET_STAGES[self.depth][0] == "basic" and (self.groups != 1
                                                        or self.width_per_group is not None):
      raise ValueError(f"groups/width_per_group need a bottleneck depth (50, 101, 152), "
                       f"got depth={self.depth}")
    super().__post_init__()

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    layers.check_images(images)
    kind, blocks = _IMAGENET_STAGES[self.depth]
    scale = lambda w: layers.scale_width(w, self.width_multiplier)
    per_group = (self.width_per_group if self.width_per_group is not None
                 else self.base_width // self.groups)
    x = images.astype(self.dtype)
    x = layers.conv(scale(self.base_width), 7, 2, self.dtype, name="stem_conv")(x)
    x = layers.batch_norm(train, self.dtype, name="stem_bn")(x)
    x = layers.make_activation(self.activation)(x)
    x = nn.max_pool(x, (3, 3), strides=(2, 2), padding=((1, 1), (1, 1)))
    for stage, num_blocks in enumerate(blocks):
      planes = self.base_width * 2**stage
      for block in range(num_blocks):
        stride = 2 if stage > 0 and block == 0 else 1
        name = f"stage{stage + 1}_block{block}"
        if kind == "basic":
          x = BasicBlock(scale(planes), stride, self.activation, self.dtype, name=name)(x, train)
        else:
          # Scaling the per-group width keeps the inner width divisible by the cardinality.
          inner = self.groups * scale(per_group * 2**stage)
          x = Bottleneck(inner, scale(4 * planes), stride, self.groups, self.activation,
                         self.dtype, name=name)(x, train)
    x = jnp.mean(x, axis=(1, 2))
    return layers.to_logits(layers.classifier(self.num_classes, self.dtype)(x))
