"""Boxes as [..., 4] arrays (x0, y0, x1, y1) in pixels of the image they belong to.

A box covers the pixels with x0 <= column < x1 and y0 <= row < y1 (pixel edges, no +1),
so its width is x1 - x0: the convention of COCO's `bbox` = [x, y, w, h] and of pycocotools'
IoU. `encode`/`decode` are the anchor box coder of SSD and Faster R-CNN: the offset of the
box centre from the anchor centre in anchor widths and heights and the log of the size
ratios, multiplied by `scales` (10, 10, 5, 5 by default; they only rescale the regression
targets to roughly unit variance).
"""

from __future__ import annotations

import math
from typing import Any

import jax.numpy as jnp
import numpy as np

DEFAULT_SCALES = (10.0, 10.0, 5.0, 5.0)


def check_boxes(boxes: Any, image_size: tuple[int, int] | None = None,
                name: str = "boxes") -> np.ndarray:
  """`boxes` as float64 [..., 4] after checking them: finite, x1 >= x0 and y1 >= y0 (no
  negative size) and, with `image_size` = (height, width), inside [0, width] x [0, height].
  Raises ValueError naming the first offending box."""
  b = np.asarray(boxes, np.float64)
  if b.ndim < 1 or b.shape[-1] != 4:
    raise ValueError(f"{name} has shape {b.shape}; expected [..., 4] (x0, y0, x1, y1)")
  flat = b.reshape(-1, 4)
  bad = ~np.isfinite(flat).all(axis=1)
  if bad.any():
    raise ValueError(f"{name}[{int(np.argmax(bad))}] = {flat[bad][0].tolist()} is not finite")
  negative = (flat[:, 2] < flat[:, 0]) | (flat[:, 3] < flat[:, 1])
  if negative.any():
    i = int(np.argmax(negative))
    raise ValueError(f"{name}[{i}] = {flat[i].tolist()} has negative size (need x1 >= x0 and "
                     "y1 >= y0)")
  if image_size is not None:
    height, width = image_size
    outside = ((flat[:, 0] < 0) | (flat[:, 1] < 0) | (flat[:, 2] > width)
               | (flat[:, 3] > height))
    if outside.any():
      i = int(np.argmax(outside))
      raise ValueError(f"{name}[{i}] = {flat[i].tolist()} lies outside the {height}x{width} "
                       "image (need 0 <= x0 <= x1 <= width, 0 <= y0 <= y1 <= height)")
  return b


def check_iou_threshold(value: Any, name: str = "iou_threshold") -> float:
  """`value` as a float after checking it lies in (0, 1]; ValueError naming `name` else."""
  ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.number))
        and math.isfinite(float(value)) and 0 < float(value) <= 1)
  if not ok:
    raise ValueError(f"{name}={value!r}: an IoU threshold must be a number in (0, 1]")
  return float(value)


def area(boxes: Any, xp: Any = jnp) -> Any:
  """Areas [...] of boxes [..., 4] (zero for empty boxes); `xp` is jax.numpy or numpy."""
  boxes = xp.asarray(boxes)
  return (xp.maximum(boxes[..., 2] - boxes[..., 0], 0)
          * xp.maximum(boxes[..., 3] - boxes[..., 1], 0))


def iou(a: Any, b: Any, xp: Any = jnp) -> Any:
  """Pairwise intersection over union [N, M] of boxes a [N, 4] and b [M, 4]; 0 where the
  union is empty. `xp=numpy` for host-side use (the evaluator, the scene generator)."""
  a, b = xp.asarray(a), xp.asarray(b)
  x0 = xp.maximum(a[:, None, 0], b[None, :, 0])
  y0 = xp.maximum(a[:, None, 1], b[None, :, 1])
  x1 = xp.minimum(a[:, None, 2], b[None, :, 2])
  y1 = xp.minimum(a[:, None, 3], b[None, :, 3])
  inter = xp.maximum(x1 - x0, 0) * xp.maximum(y1 - y0, 0)
  union = area(a, xp)[:, None] + area(b, xp)[None, :] - inter
  return xp.where(union > 0, inter / xp.where(union > 0, union, 1), 0.0)


def to_center(boxes: Any) -> Any:
  """(x0, y0, x1, y1) -> (cx, cy, w, h)."""
  boxes = jnp.asarray(boxes)
  size = boxes[..., 2:] - boxes[..., :2]
  return jnp.concatenate([boxes[..., :2] + size / 2, size], axis=-1)


def from_center(center: Any) -> Any:
  """(cx, cy, w, h) -> (x0, y0, x1, y1)."""
  center = jnp.asarray(center)
  half = center[..., 2:] / 2
  return jnp.concatenate([center[..., :2] - half, center[..., :2] + half], axis=-1)


def encode(boxes: Any, anchors: Any, scales: tuple[float, ...] = DEFAULT_SCALES,
           min_size: float = 1e-6) -> Any:
  """Regression targets [..., 4] (tx, ty, tw, th) of `boxes` relative to `anchors`
  (broadcast together): tx = sx (cx - cx_a) / w_a, tw = sw log(w / w_a), ..."""
  b, a = to_center(boxes), to_center(anchors)
  s = jnp.asarray(scales, b.dtype)
  wh = jnp.maximum(b[..., 2:], min_size)
  return jnp.concatenate([(b[..., :2] - a[..., :2]) / a[..., 2:] * s[:2],
                          jnp.log(wh / a[..., 2:]) * s[2:]], axis=-1)


def decode(codes: Any, anchors: Any, scales: tuple[float, ...] = DEFAULT_SCALES,
           max_log_ratio: float = math.log(1000.0 / 16)) -> Any:
  """The inverse of `encode`; log size ratios are clipped at `max_log_ratio` so that an
  untrained head cannot overflow (Detectron's clip)."""
  codes, a = jnp.asarray(codes), to_center(anchors)
  s = jnp.asarray(scales, codes.dtype)
  center = codes[..., :2] / s[:2] * a[..., 2:] + a[..., :2]
  size = jnp.exp(jnp.minimum(codes[..., 2:] / s[2:], max_log_ratio)) * a[..., 2:]
  return from_center(jnp.concatenate([center, size], axis=-1))
