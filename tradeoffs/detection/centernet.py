"""CenterNet-style targets, loss and decoding (Zhou et al., "Objects as Points", 2019):
a per-class centre heatmap, a box size and a sub-cell centre offset at every cell of a
stride-`stride` feature map. Pure jnp; every function handles one image and is vmapped
by the caller; ground truth comes padded to M objects with a `valid` mask.

Formulations chosen: the heatmap target at a class's cells is the max over its objects of
exp(-d^2 / 2σ^2), d the distance in cells to the object's centre cell and σ = max(w, h) /
(6 · stride), at least 0.5 cell (CenterNet derives σ from a radius that keeps IoU >= 0.7;
this rule is of the same order and simpler). Loss: the penalty-reduced pixel focal loss
(α = 2, β = 4) normalised by the object count, plus L1 on the size (in cells, weight 0.1)
and on the offset (weight 1) at the centre cells. Decoding keeps the 3x3 local maxima of
the heatmap and takes the top `max_detections` (CenterNet uses no NMS).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

SIZE_WEIGHT = 0.1
OFFSET_WEIGHT = 1.0


def targets(boxes: Any, classes: Any, valid: Any, *, grid: int, stride: float,
            num_classes: int) -> dict[str, jax.Array]:
  """heatmap [grid, grid, C], and per object: cell index [M] (row-major), size [M, 2]
  (w, h in cells), offset [M, 2] (centre minus its cell, in cells), mask [M]."""
  centre = (boxes[:, :2] + boxes[:, 2:]) / 2 / stride
  cell = jnp.clip(jnp.floor(centre), 0, grid - 1)
  size = (boxes[:, 2:] - boxes[:, :2]) / stride
  sigma = jnp.maximum(jnp.max(size, axis=1) / 6, 0.5)
  yy, xx = jnp.mgrid[0:grid, 0:grid]
  d2 = (xx[None] - cell[:, None, None, 0]) ** 2 + (yy[None] - cell[:, None, None, 1]) ** 2
  bumps = jnp.exp(-d2 / (2 * sigma[:, None, None] ** 2)) * valid[:, None, None]
  onehot = jax.nn.one_hot(jnp.where(valid, classes, 0), num_classes) * valid[:, None]
  heatmap = jnp.max(bumps[..., None] * onehot[:, None, None, :], axis=0)
  index = (cell[:, 1] * grid + cell[:, 0]).astype(jnp.int32)
  return {"heatmap": heatmap, "index": index, "size": size, "offset": centre - cell,
          "mask": valid.astype(jnp.float32)}


def focal_loss(logits: Any, target: Any, alpha: float = 2.0, beta: float = 4.0) -> jax.Array:
  """CenterNet's penalty-reduced focal loss summed over cells (positives: target == 1)."""
  p = jax.nn.sigmoid(logits)
  log_p, log_not_p = jax.nn.log_sigmoid(logits), jax.nn.log_sigmoid(-logits)
  positive = target >= 1.0 - 1e-6
  pos = ((1 - p) ** alpha) * log_p
  neg = ((1 - target) ** beta) * (p ** alpha) * log_not_p
  return -jnp.sum(jnp.where(positive, pos, neg))


def loss(outputs: dict[str, Any], boxes: Any, classes: Any, valid: Any, *, stride: float
         ) -> tuple[jax.Array, dict[str, jax.Array]]:
  """The loss of one image's outputs (heatmap [g, g, C] logits, size [g, g, 2], offset
  [g, g, 2]) and its parts."""
  grid, _, num_classes = outputs["heatmap"].shape
  t = targets(boxes, classes, valid, grid=grid, stride=stride, num_classes=num_classes)
  count = jnp.maximum(jnp.sum(t["mask"]), 1.0)
  heat = focal_loss(outputs["heatmap"], t["heatmap"]) / count
  size = outputs["size"].reshape(-1, 2)[t["index"]]
  offset = outputs["offset"].reshape(-1, 2)[t["index"]]
  size_l1 = jnp.sum(jnp.abs(size - t["size"]) * t["mask"][:, None]) / count
  offset_l1 = jnp.sum(jnp.abs(offset - t["offset"]) * t["mask"][:, None]) / count
  total = heat + SIZE_WEIGHT * size_l1 + OFFSET_WEIGHT * offset_l1
  return total, {"heatmap": heat, "size": size_l1, "offset": offset_l1}


def decode(outputs: dict[str, Any], *, stride: float, max_detections: int
           ) -> dict[str, jax.Array]:
  """Detections of one image: boxes [K, 4] (pixels), scores [K], classes [K]; K =
  `max_detections` (slots beyond the local maxima score 0)."""
  heat = jax.nn.sigmoid(outputs["heatmap"])
  grid, _, num_classes = heat.shape
  pooled = jax.lax.reduce_window(heat, -jnp.inf, jax.lax.max, (3, 3, 1), (1, 1, 1), "SAME")
  peaks = jnp.where(heat >= pooled, heat, 0.0).reshape(-1)
  k = min(int(max_detections), peaks.shape[0])
  scores, flat = jax.lax.top_k(peaks, k)
  cell, label = flat // num_classes, flat % num_classes
  cx, cy = (cell % grid).astype(jnp.float32), (cell // grid).astype(jnp.float32)
  offset = outputs["offset"].reshape(-1, 2)[cell]
  size = jnp.maximum(outputs["size"].reshape(-1, 2)[cell], 0.0)
  centre = jnp.stack([cx, cy], -1) + offset
  boxes = jnp.concatenate([centre - size / 2, centre + size / 2], -1) * stride
  return {"boxes": boxes, "scores": scores, "classes": label.astype(jnp.int32)}
