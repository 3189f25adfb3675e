"""COCO-style average precision (numpy): mAP at IoU 0.5, at 0.5:0.05:0.95, and per object
size, computed the way `pycocotools.cocoeval.COCOeval` (bbox) computes it — checked
against it in tests/detection/test_metrics.py.

The protocol, per class and IoU threshold: each image's detections sorted by score (the
first `max_detections` kept) are matched greedily to the unmatched ground truth of best
IoU >= threshold; ground truth outside the size range is "ignored" (a detection matched to
it, or unmatched and itself outside the range, counts neither way); over all images the
detections are ranked by score, precision is made monotone, and AP is the mean precision
at the 101 recall points 0, 0.01, ..., 1. mAP is the mean over classes (and thresholds)
that have ground truth in the range; pycocotools reports -1 where none has, this returns
NaN. No crowd annotations exist here.

Size buckets are by box area: COCO's small < 32^2 <= medium < 96^2 <= large (pixels);
`area_ranges` takes other bounds (the study scales them with the image side).
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from tradeoffs.detection import boxes as boxes_lib

COCO_IOU_THRESHOLDS = tuple(np.round(np.linspace(0.5, 0.95, 10), 2).tolist())
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
COCO_AREA_RANGES = {"all": (0.0, 1e10), "small": (0.0, 32.0 ** 2),
                    "medium": (32.0 ** 2, 96.0 ** 2), "large": (96.0 ** 2, 1e10)}


def area_ranges(small: float, large: float) -> dict[str, tuple[float, float]]:
  """COCO-shaped buckets with side bounds `small` < `large` (in pixels): small has area <
  small^2, medium between, large >= large^2."""
  if not 0 < small < large:
    raise ValueError(f"size bucket sides ({small}, {large}): need 0 < small < large")
  return {"all": (0.0, 1e10), "small": (0.0, small ** 2), "medium": (small ** 2, large ** 2),
          "large": (large ** 2, 1e10)}


def _box_area(b: np.ndarray) -> np.ndarray:
  return boxes_lib.area(b, np)


def _match(det_boxes, gt_boxes, gt_ignore, det_area_out, thresholds):
  """pycocotools' evaluateImg for one (image, class, area): per threshold, which detections
  matched (and whether to ignore them). Inputs are sorted (dets by score, gts ignored last)."""
  t, d, g = len(thresholds), len(det_boxes), len(gt_boxes)
  matched = np.zeros((t, d), bool)
  ignored = np.zeros((t, d), bool)
  ious = boxes_lib.iou(det_boxes, gt_boxes, np) if d and g else np.zeros((d, g))
  for ti, threshold in enumerate(thresholds):
    taken = np.zeros(g, bool)
    for di in range(d):
      best_iou, m = min(threshold, 1 - 1e-10), -1
      for gi in range(g):
        if taken[gi]:
          continue
        if m > -1 and not gt_ignore[m] and gt_ignore[gi]:
          break  # Matched a counted box; the ignored ones come after it.
        if ious[di, gi] < best_iou:
          continue
        best_iou, m = ious[di, gi], gi
      if m == -1:
        continue
      taken[m] = True
      matched[ti, di] = True
      ignored[ti, di] = gt_ignore[m]
  ignored |= ~matched & det_area_out[None, :]
  return matched, ignored


def _average_precision(scores, matched, ignored, n_gt):
  """AP [thresholds] from the pooled detections of one class (pycocotools' accumulate)."""
  order = np.argsort(-scores, kind="mergesort")
  matched, ignored = matched[:, order], ignored[:, order]
  tps = np.cumsum(matched & ~ignored, axis=1).astype(np.float64)
  fps = np.cumsum(~matched & ~ignored, axis=1).astype(np.float64)
  out = np.zeros(matched.shape[0])
  for ti in range(matched.shape[0]):
    tp, fp = tps[ti], fps[ti]
    recall = tp / n_gt
    precision = tp / (fp + tp + np.spacing(1))
    precision = np.maximum.accumulate(precision[::-1])[::-1] if len(precision) else precision
    where = np.searchsorted(recall, RECALL_POINTS, side="left")
    q = np.where(where < len(precision),
                 precision[np.minimum(where, max(len(precision) - 1, 0))]
                 if len(precision) else 0.0, 0.0)
    out[ti] = q.mean()
  return out


def evaluate(gt_boxes: Sequence[Any], gt_classes: Sequence[Any], det_boxes: Sequence[Any],
             det_scores: Sequence[Any], det_classes: Sequence[Any], *,
             iou_thresholds: Sequence[float] = COCO_IOU_THRESHOLDS,
             ranges: Mapping[str, tuple[float, float]] | None = None,
             max_detections: int = 100,
             image_sizes: Sequence[tuple[int, int]] | None = None) -> dict[str, float]:
  """COCO-style AP over images (lists with one entry per image: boxes [n, 4] in pixels,
  classes [n] int, scores [m]).

  Returns `map` (mean over `iou_thresholds`, area 'all'), `map50` and `map75` (when those
  thresholds are among `iou_thresholds`), `map_<bucket>` per other key of `ranges`, and
  `ap_per_threshold` (a list). NaN where no class has ground truth in the bucket.
  With `image_sizes` ((height, width) per image) ground-truth boxes outside their image
  are refused.
  """
  n = len(gt_boxes)
  if not (len(gt_classes) == len(det_boxes) == len(det_scores) == len(det_classes) == n):
    raise ValueError("gt_boxes, gt_classes, det_boxes, det_scores and det_classes need one "
                     "entry per image")
  thresholds = [boxes_lib.check_iou_threshold(t, "iou_thresholds") for t in iou_thresholds]
  if not thresholds:
    raise ValueError("iou_thresholds is empty")
  if isinstance(max_detections, bool) or int(max_detections) != max_detections or \
      max_detections < 1:
    raise ValueError(f"max_detections={max_detections!r}: expected an int >= 1")
  ranges = dict(COCO_AREA_RANGES if ranges is None else ranges)
  images = []
  for i in range(n):
    size = None if image_sizes is None else tuple(image_sizes[i])
    gb = boxes_lib.check_boxes(np.reshape(gt_boxes[i], (-1, 4)), size, f"gt_boxes[{i}]")
    db = boxes_lib.check_boxes(np.reshape(det_boxes[i], (-1, 4)), None, f"det_boxes[{i}]")
    gc = np.asarray(gt_classes[i], np.int64).reshape(-1)
    ds = np.asarray(det_scores[i], np.float64).reshape(-1)
    dc = np.asarray(det_classes[i], np.int64).reshape(-1)
    if len(gc) != len(gb) or len(ds) != len(db) or len(dc) != len(db):
      raise ValueError(f"image {i}: boxes, classes and scores differ in length")
    images.append((gb, gc, db, ds, dc))
  classes = sorted({int(c) for im in images for c in np.concatenate([im[1], im[4]])})
  results: dict[str, Any] = {}
  for name, (low, high) in ranges.items():
    per_class = []
    for c in classes:
      scores, matched, ignored, n_gt, any_entry = [], [], [], 0, False
      for gb, gc, db, ds, dc in images:
        g, d = gb[gc == c], db[dc == c]
        s = ds[dc == c]
        if not len(g) and not len(d):
          continue
        any_entry = True
        ga = _box_area(g)
        g_ignore = (ga < low) | (ga > high)
        g_order = np.argsort(g_ignore, kind="mergesort")
        g, g_ignore = g[g_order], g_ignore[g_order]
        d_order = np.argsort(-s, kind="mergesort")[:int(max_detections)]
        d, s = d[d_order], s[d_order]
        da = _box_area(d)
        m, ig = _match(d, g, g_ignore, (da < low) | (da > high), thresholds)
        scores.append(s)
        matched.append(m)
        ignored.append(ig)
        n_gt += int((~g_ignore).sum())
      if not any_entry or n_gt == 0:
        continue
      per_class.append(_average_precision(np.concatenate(scores), np.concatenate(matched, 1),
                                          np.concatenate(ignored, 1), n_gt))
    ap = np.stack(per_class) if per_class else np.full((0, len(thresholds)), np.nan)
    mean_over_classes = ap.mean(axis=0) if len(ap) else np.full(len(thresholds), np.nan)
    key = "map" if name == "all" else f"map_{name}"
    results[key] = float(mean_over_classes.mean())
    if name == "all":
      results["ap_per_threshold"] = [float(v) for v in mean_over_classes]
      for t, label in ((0.5, "map50"), (0.75, "map75")):
        hits = [j for j, u in enumerate(thresholds) if math.isclose(u, t)]
        if hits:
          results[label] = float(mean_over_classes[hits[0]])
  return results
