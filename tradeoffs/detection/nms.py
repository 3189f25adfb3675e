"""Greedy non-maximum suppression with fixed-size outputs, so it compiles under `jax.jit`.

The greedy rule (Faster R-CNN's, torchvision's): repeatedly keep the highest-scoring box
left and drop every remaining box whose IoU with it exceeds the threshold. Here the loop
runs exactly `max_outputs` times (`lax.fori_loop`); a slot left when no box remains is
marked invalid, so the shapes never depend on the data. Costs O(N^2) memory for the IoU
matrix: callers pass the top few hundred candidates, not every anchor.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from tradeoffs.detection import boxes as boxes_lib


def nms(boxes: Any, scores: Any, *, iou_threshold: float, max_outputs: int,
        score_threshold: float = -jnp.inf) -> tuple[jax.Array, jax.Array]:
  """Indices [max_outputs] (int32, in order of decreasing score) of the boxes greedy NMS
  keeps among boxes [N, 4] with scores [N], and valid [max_outputs] (False for unused
  slots, whose index is 0). Boxes scoring <= score_threshold are never kept."""
  boxes_lib.check_iou_threshold(iou_threshold)
  if int(max_outputs) < 1:
    raise ValueError(f"max_outputs={max_outputs!r}: expected an int >= 1")
  boxes, scores = jnp.asarray(boxes), jnp.asarray(scores)
  overlaps = boxes_lib.iou(boxes, boxes)
  live = jnp.where(scores > score_threshold, scores, -jnp.inf)

  def body(i, carry):
    live, keep, valid = carry
    best = jnp.argmax(live)
    ok = jnp.isfinite(live[best])
    keep = keep.at[i].set(jnp.where(ok, best, 0).astype(jnp.int32))
    valid = valid.at[i].set(ok)
    suppress = (overlaps[best] > iou_threshold) | (jnp.arange(live.shape[0]) == best)
    live = jnp.where(ok & suppress, -jnp.inf, live)
    return live, keep, valid

  k = int(max_outputs)
  _, keep, valid = jax.lax.fori_loop(
      0, k, body, (live, jnp.zeros((k,), jnp.int32), jnp.zeros((k,), bool)))
  return keep, valid


def batched_nms(boxes: Any, scores: Any, classes: Any, *, iou_threshold: float,
                max_outputs: int, score_threshold: float = -jnp.inf
                ) -> tuple[jax.Array, jax.Array]:
  """Class-aware NMS: boxes of different classes never suppress each other (each class's
  boxes are shifted by class x (largest coordinate + 1) so that they cannot overlap)."""
  boxes = jnp.asarray(boxes)
  offset = (jnp.max(jnp.abs(boxes)) + 1.0) * jnp.asarray(classes, boxes.dtype)
  return nms(boxes + offset[:, None], scores, iou_threshold=iou_threshold,
             max_outputs=max_outputs, score_threshold=score_threshold)
