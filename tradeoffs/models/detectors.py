"""Detector heads on the registry's small convolutional backbone, behind their own
registry (`get`, `names`): their outputs are dicts of maps, not the [B, classes] logits
every model of `tradeoffs.models.get` returns.

    net = detectors.get("centernet", num_classes=13, width_multiplier=0.5)
    outputs = net.apply(variables, images)          # images [B, S, S, C]

The backbone is the registered `cnn`'s convolutional stack (3x3 conv -> activation ->
2x2 max-pool per entry of `channels`, widths scaled by `width_multiplier` with
`layers.scale_width`), except that the last convolution is not pooled: the feature map
has stride 2^(len(channels) - 1) (4 for the default three convolutions). The registry's
`cnn` cannot hand out that map (it pools and classifies), so the stack is rebuilt here
from the same layers. The head is one shared 3x3 conv of `head` channels (scaled too), then 1x1 outputs:

  centernet  heatmap logits [B, g, g, C] (bias -2.19: initial score 0.1, CenterNet's
             prior), size [B, g, g, 2] and offset [B, g, g, 2] in cells
  ssd        class_logits [B, g*g*A, C] (bias log(0.01/0.99), RetinaNet's prior) and
             box_codes [B, g*g*A, 4] for A = len(anchor_sizes) * len(anchor_ratios)
             anchors per cell; anchor sizes are fractions of the input side

Decoding, losses and targets live in `tradeoffs.detection` (`centernet`, `ssd`);
`outputs_fn`, `loss_fn` and `decode_fn` bind them to a built detector.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from tradeoffs.detection import centernet as centernet_lib
from tradeoffs.detection import ssd as ssd_lib
from tradeoffs.models import layers


class Backbone(nn.Module):
  """The `cnn` model's conv stack with the last pool left out (see the module docstring)."""
  channels: Sequence[int] = (8, 16, 32)
  width_multiplier: float = 1.0
  activation: str = "relu"
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = images.astype(self.dtype)
    for i, width in enumerate(self.channels):
      x = nn.Conv(layers.scale_width(width, self.width_multiplier), (3, 3), padding="SAME",
                  dtype=self.dtype, name=f"conv_{i}")(x)
      x = layers.make_activation(self.activation)(x)
      if i < len(self.channels) - 1:
        x = nn.max_pool(x, (2, 2), strides=(2, 2))
    return x


def _check(module) -> None:
  layers.check_widths("channels", module.channels, allow_empty=False)
  object.__setattr__(module, "channels", tuple(module.channels))
  layers.check_positive_int("head", module.head)
  layers.check_common(module)


class CenterNet(nn.Module):
  num_classes: int
  channels: Sequence[int] = (8, 16, 32)
  head: int = 32
  width_multiplier: float = 1.0
  activation: str = "relu"
  dtype: Any = jnp.float32

  def __post_init__(self):
    _check(self)
    super().__post_init__()

  @property
  def stride(self) -> int:
    return 2 ** (len(self.channels) - 1)

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> dict[str, jax.Array]:
    del train
    x = Backbone(self.channels, self.width_multiplier, self.activation, self.dtype,
                 name="backbone")(images)
    h = nn.Conv(layers.scale_width(self.head, self.width_multiplier), (3, 3), padding="SAME",
                dtype=self.dtype, name="head_conv")(x)
    h = layers.make_activation(self.activation)(h)
    out = {}
    for name, size, bias in (("heatmap", self.num_classes, -2.19), ("size", 2, 0.0),
                             ("offset", 2, 0.0)):
      out[name] = nn.Conv(size, (1, 1), dtype=self.dtype, name=f"{name}_out",
                          bias_init=nn.initializers.constant(bias))(h).astype(jnp.float32)
    return out


class SSD(nn.Module):
  num_classes: int
  channels: Sequence[int] = (8, 16, 32)
  head: int = 32
  width_multiplier: float = 1.0
  activation: str = "relu"
  anchor_sizes: Sequence[float] = (0.125, 0.25, 0.4)
  anchor_ratios: Sequence[float] = (1.0, 0.6)
  dtype: Any = jnp.float32

  def __post_init__(self):
    _check(self)
    object.__setattr__(self, "anchor_sizes", tuple(self.anchor_sizes))
    object.__setattr__(self, "anchor_ratios", tuple(self.anchor_ratios))
    if not self.anchor_sizes or not self.anchor_ratios or any(
        not v > 0 for v in self.anchor_sizes + self.anchor_ratios):
      raise ValueError(f"anchor_sizes={self.anchor_sizes!r}, anchor_ratios="
                       f"{self.anchor_ratios!r}: expected non-empty tuples of numbers > 0")
    super().__post_init__()

  @property
  def stride(self) -> int:
    return 2 ** (len(self.channels) - 1)

  @property
  def anchors_per_cell(self) -> int:
    return len(self.anchor_sizes) * len(self.anchor_ratios)

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> dict[str, jax.Array]:
    del train
    x = Backbone(self.channels, self.width_multiplier, self.activation, self.dtype,
                 name="backbone")(images)
    b, g = x.shape[0], x.shape[1]
    a = self.anchors_per_cell
    h = nn.Conv(layers.scale_width(self.head, self.width_multiplier), (3, 3), padding="SAME",
                dtype=self.dtype, name="head_conv")(x)
    h = layers.make_activation(self.activation)(h)
    out = {}
    for name, size, bias in (("class_logits", self.num_classes, math.log(0.01 / 0.99)),
                             ("box_codes", 4, 0.0)):
      o = nn.Conv(a * size, (1, 1), dtype=self.dtype, name=f"{name}_out",
                  bias_init=nn.initializers.constant(bias))(h)
      out[name] = o.reshape(b, g * g * a, size).astype(jnp.float32)
    return out


DETECTORS: dict[str, Callable[..., nn.Module]] = {"centernet": CenterNet, "ssd": SSD}


def names() -> list[str]:
  return sorted(DETECTORS)


def get(name: str, *, num_classes: int, **kwargs: Any) -> nn.Module:
  """The registered detector `name` (ValueError naming the valid names / kwargs)."""
  if name not in DETECTORS:
    raise ValueError(f"unknown detector {name!r}; valid: {names()}")
  factory = DETECTORS[name]
  accepted = [f for f in factory.__dataclass_fields__ if f not in ("parent", "name",
                                                                    "num_classes")]
  unknown = sorted(set(kwargs) - set(accepted))
  if unknown:
    raise ValueError(f"unknown kwarg(s) {unknown} for detector {name!r}; accepted: {accepted}")
  if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
    raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
  return factory(num_classes=num_classes, **kwargs)


def _anchors(net: SSD, image_size: int) -> jax.Array:
  grid = image_size // net.stride
  return ssd_lib.anchors(grid, net.stride, [s * image_size for s in net.anchor_sizes],
                         net.anchor_ratios)


def loss_fn(net: nn.Module, image_size: int) -> Callable[..., Any]:
  """image_loss(outputs_of_one_image, boxes, classes, valid) for `detection.training`."""
  if isinstance(net, CenterNet):
    return lambda out, b, c, v: centernet_lib.loss(out, b, c, v, stride=net.stride)
  anchor_boxes = _anchors(net, image_size)
  return lambda out, b, c, v: ssd_lib.loss(out, b, c, v, anchor_boxes=anchor_boxes)


def decode_fn(net: nn.Module, image_size: int, *, max_detections: int, pre_nms: int = 300,
              iou_threshold: float = 0.5) -> Callable[[Any, Any], dict[str, jax.Array]]:
  """inference(variables, images) -> batched detections (boxes clipped to the image):
  the whole test-time computation, for latency and FLOPs."""
  if isinstance(net, CenterNet):
    def one(out):
      return centernet_lib.decode(out, stride=net.stride, max_detections=max_detections)
  else:
    anchor_boxes = _anchors(net, image_size)

    def one(out):
      return ssd_lib.decode(out, anchor_boxes=anchor_boxes, max_detections=max_detections,
                            pre_nms=pre_nms, iou_threshold=iou_threshold)

  def inference(variables, images):
    dets = jax.vmap(one)(net.apply(variables, images))
    dets["boxes"] = jnp.clip(dets["boxes"], 0.0, float(image_size))
    return dets
  return inference
