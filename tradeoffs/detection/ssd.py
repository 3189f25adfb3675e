"""SSD-style anchors, target assignment, loss and decoding (Liu et al., 2016), for one
stride-`stride` feature map. Pure jnp; functions handle one image and are vmapped by the
caller; ground truth comes padded to M objects with a `valid` mask.

Formulations chosen: one feature map (the inputs are <= 64 px; SSD adds coarser maps for
large objects, here the anchor sizes span the object sizes instead), anchors of every
(size, aspect ratio) at every cell centre. An anchor is positive for the object of
highest IoU when that IoU >= 0.5, or when it is that object's best anchor (SSD's
bipartite step); negative below 0.4, ignored between. Classification is a per-class
sigmoid with the focal loss (α = 0.25, γ = 2; RetinaNet's, in place of SSD's softmax with
3:1 hard-negative mining, which needs a sort per image), normalised by the positive
count; box codes (`boxes.encode`) regress with a Huber loss (δ = 1) on positives.
Decoding: the top `pre_nms` (anchor, class) scores, decoded, then class-aware greedy NMS
(`nms.batched_nms`) to `max_detections` fixed slots (unused slots score 0).
"""

from __future__ import annotations

from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tradeoffs.detection import boxes as boxes_lib
from tradeoffs.detection import nms as nms_lib

POSITIVE_IOU = 0.5
NEGATIVE_IOU = 0.4


def anchors(grid: int, stride: float, sizes: Sequence[float],
            ratios: Sequence[float] = (1.0,)) -> np.ndarray:
  """Anchors [grid * grid * A, 4] float32 (x0, y0, x1, y1), cell-major: for each cell
  (row-major), each size, each aspect ratio w/h (the area stays size^2). numpy: a
  constant, built once per detector outside any trace."""
  shapes = np.asarray([(s * r ** 0.5, s / r ** 0.5) for s in sizes for r in ratios],
                      np.float64)
  yy, xx = np.mgrid[0:grid, 0:grid]
  centres = (np.stack([xx.reshape(-1), yy.reshape(-1)], -1) + 0.5) * stride
  c = np.repeat(centres, shapes.shape[0], axis=0)
  wh = np.tile(shapes, (grid * grid, 1))
  return np.concatenate([c - wh / 2, c + wh / 2], axis=-1).astype(np.float32)


def assign(boxes: Any, classes: Any, valid: Any, anchor_boxes: Any
           ) -> tuple[jax.Array, jax.Array, jax.Array]:
  """Per anchor: label [A] (class >= 0 positive, -1 negative, -2 ignored), the index of its
  object [A], and its regression target [A, 4]."""
  overlaps = jnp.where(valid[None, :], boxes_lib.iou(anchor_boxes, boxes), -1.0)
  best = jnp.argmax(overlaps, axis=1)
  best_iou = jnp.max(overlaps, axis=1)
  # Every real object keeps its best anchor, even below the IoU threshold.
  forced = jnp.argmax(overlaps, axis=0)
  hit = jnp.zeros(anchor_boxes.shape[0], bool).at[forced].max(valid)
  owner = jnp.zeros(anchor_boxes.shape[0], jnp.int32).at[forced].max(
      jnp.where(valid, jnp.arange(boxes.shape[0]), 0))
  best = jnp.where(hit, owner, best)
  positive = hit | (best_iou >= POSITIVE_IOU)
  label = jnp.where(positive, classes[best],
                    jnp.where(best_iou < NEGATIVE_IOU, -1, -2)).astype(jnp.int32)
  return label, best, boxes_lib.encode(boxes[best], anchor_boxes)


def sigmoid_focal(logits: Any, targets: Any, alpha: float = 0.25, gamma: float = 2.0
                  ) -> jax.Array:
  p = jax.nn.sigmoid(logits)
  ce = optax.sigmoid_binary_cross_entropy(logits, targets)
  p_t = p * targets + (1 - p) * (1 - targets)
  a_t = alpha * targets + (1 - alpha) * (1 - targets)
  return a_t * (1 - p_t) ** gamma * ce


def loss(outputs: dict[str, Any], boxes: Any, classes: Any, valid: Any, *,
         anchor_boxes: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The loss of one image's outputs (class_logits [A, C], box_codes [A, 4]) and parts."""
  label, _, codes = assign(boxes, classes, valid, anchor_boxes)
  num_classes = outputs["class_logits"].shape[-1]
  positive = label >= 0
  count = jnp.maximum(jnp.sum(positive), 1.0)
  target = jax.nn.one_hot(jnp.maximum(label, 0), num_classes) * positive[:, None]
  cls = jnp.sum(sigmoid_focal(outputs["class_logits"], target) * (label != -2)[:, None])
  box = jnp.sum(optax.huber_loss(outputs["box_codes"], codes).sum(-1) * positive)
  return (cls + box) / count, {"class": cls / count, "box": box / count}


def decode(outputs: dict[str, Any], *, anchor_boxes: Any, max_detections: int,
           pre_nms: int = 300, iou_threshold: float = 0.5) -> dict[str, jax.Array]:
  """Detections of one image: boxes [K, 4] (pixels), scores [K], classes [K]."""
  anchor_boxes = jnp.asarray(anchor_boxes)
  scores = jax.nn.sigmoid(outputs["class_logits"])
  num_classes = scores.shape[-1]
  k = min(int(pre_nms), scores.size)
  top, flat = jax.lax.top_k(scores.reshape(-1), k)
  anchor, label = flat // num_classes, flat % num_classes
  candidates = boxes_lib.decode(outputs["box_codes"][anchor], anchor_boxes[anchor])
  keep, ok = nms_lib.batched_nms(candidates, top, label, iou_threshold=iou_threshold,
                                 max_outputs=int(max_detections))
  return {"boxes": candidates[keep], "scores": jnp.where(ok, top[keep], 0.0),
          "classes": label[keep].astype(jnp.int32)}
