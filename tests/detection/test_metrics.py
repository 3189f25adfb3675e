"""COCO-style mAP: hand-made cases, and agreement with pycocotools on random detections."""

import contextlib
import io

import numpy as np
import pytest

from tradeoffs.detection import metrics


def _one(gt, gc, det, ds, dc, **kw):
  return metrics.evaluate([np.array(gt, float)], [np.array(gc)], [np.array(det, float)],
                          [np.array(ds, float)], [np.array(dc)], **kw)


def test_perfect_detection_is_one():
  r = _one([[0, 0, 10, 10]], [0], [[0, 0, 10, 10]], [0.9], [0])
  assert r["map"] == pytest.approx(1.0) and r["map50"] == pytest.approx(1.0)


def test_iou_062_matches_three_of_ten_thresholds():
  r = _one([[0, 0, 10, 10]], [0], [[0, 0, 10, 6.2]], [0.9], [0])  # IoU 0.62
  assert r["map50"] == pytest.approx(1.0)
  assert r["map75"] == pytest.approx(0.0)
  assert r["map"] == pytest.approx(0.3)  # matched at 0.50, 0.55, 0.60


def test_false_positive_between_two_hits():
  # Ranked: hit (0.9), miss (0.8), hit (0.7): precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1;
  # monotone envelope 1 up to recall 0.5 (51 points), 2/3 above it (50 points).
  r = _one([[0, 0, 10, 10], [20, 20, 30, 30]], [0, 0],
           [[0, 0, 10, 10], [40, 40, 50, 50], [20, 20, 30, 30]], [0.9, 0.8, 0.7], [0, 0, 0])
  assert r["map"] == pytest.approx((51 + 50 * 2 / 3) / 101)


def test_classes_average_and_wrong_class_does_not_match():
  r = metrics.evaluate([np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10]])],
                       [np.array([0]), np.array([1])],
                       [np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10]])],
                       [np.array([0.9]), np.array([0.9])], [np.array([0]), np.array([2])])
  assert r["map"] == pytest.approx(0.5)  # class 0: 1, class 1: 0 (class 2 has no truth)


def test_max_detections_truncates_by_score():
  r = _one([[0, 0, 10, 10]], [0], [[50, 50, 60, 60], [0, 0, 10, 10]], [0.9, 0.1], [0, 0],
           max_detections=1)
  assert r["map"] == 0.0


def test_empty_bucket_is_nan_and_buckets_ignore_other_sizes():
  r = _one([[0, 0, 10, 10]], [0], [[0, 0, 10, 10]], [0.9], [0],
           ranges=metrics.area_ranges(5, 8))
  assert r["map_large"] == pytest.approx(1.0)
  assert np.isnan(r["map_small"]) and np.isnan(r["map_medium"])


def test_bad_input():
  with pytest.raises(ValueError, match="outside"):
    metrics.evaluate([np.array([[0, 0, 70, 10]])], [np.array([0])], [np.zeros((0, 4))],
                     [np.zeros(0)], [np.zeros(0, int)], image_sizes=[(64, 64)])
  with pytest.raises(ValueError, match="negative size"):
    _one([[10, 0, 0, 10]], [0], [], [], [])
  with pytest.raises(ValueError, match=r"\(0, 1\]"):
    _one([[0, 0, 1, 1]], [0], [], [], [], iou_thresholds=(0.5, 1.2))
  with pytest.raises(ValueError, match="max_detections"):
    _one([[0, 0, 1, 1]], [0], [], [], [], max_detections=0)


def _random_case(seed, images=12, classes=3):
  rng = np.random.default_rng(seed)
  gts, gcs, dets, dss, dcs = [], [], [], [], []
  for _ in range(images):
    n = int(rng.integers(0, 6))
    side = np.exp(rng.uniform(np.log(8), np.log(150), (n, 2)))
    lo = rng.uniform(0, 300, (n, 2))
    gt = np.concatenate([lo, lo + side], 1)
    gc = rng.integers(0, classes, n)
    jitter = gt + rng.normal(0, 1, gt.shape) * side.repeat(2, 1) * rng.uniform(0, 0.3, (n, 1))
    jitter = np.concatenate([np.minimum(jitter[:, :2], jitter[:, 2:]),
                             np.maximum(jitter[:, :2], jitter[:, 2:])], 1)
    m = int(rng.integers(0, 8))
    lo = rng.uniform(0, 300, (m, 2))
    fp = np.concatenate([lo, lo + np.exp(rng.uniform(np.log(5), np.log(150), (m, 2)))], 1)
    det = np.concatenate([jitter, fp])
    dc = np.concatenate([np.where(rng.uniform(size=n) < 0.8, gc, rng.integers(0, classes, n)),
                         rng.integers(0, classes, m)])
    gts.append(gt), gcs.append(gc), dets.append(det), dcs.append(dc)
    dss.append(rng.uniform(0, 1, len(det)))
  return gts, gcs, dets, dss, dcs


def _pycocotools(gts, gcs, dets, dss, dcs, classes=3):
  from pycocotools.coco import COCO
  from pycocotools.cocoeval import COCOeval
  to_xywh = lambda b: [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]
  annotations, results = [], []
  for i, (gt, gc) in enumerate(zip(gts, gcs)):
    for b, c in zip(gt, gc):
      annotations.append({"id": len(annotations) + 1, "image_id": i, "category_id": int(c),
                          "bbox": to_xywh(b), "area": float((b[2] - b[0]) * (b[3] - b[1])),
                          "iscrowd": 0})
  for i, (det, ds, dc) in enumerate(zip(dets, dss, dcs)):
    results += [{"image_id": i, "category_id": int(c), "bbox": to_xywh(b), "score": float(s)}
                for b, s, c in zip(det, ds, dc)]
  with contextlib.redirect_stdout(io.StringIO()):
    coco = COCO()
    coco.dataset = {"images": [{"id": i} for i in range(len(gts))], "annotations": annotations,
                    "categories": [{"id": c} for c in range(classes)]}
    coco.createIndex()
    evaluation = COCOeval(coco, coco.loadRes(results), "bbox")
    evaluation.evaluate()
    evaluation.accumulate()
    evaluation.summarize()
  return evaluation.stats


@pytest.mark.parametrize("seed", range(6))
def test_agrees_with_pycocotools(seed):
  case = _random_case(seed)
  expected = _pycocotools(*case)
  got = metrics.evaluate(*case)
  keys = ("map", "map50", "map75", "map_small", "map_medium", "map_large")
  for index, key in enumerate(keys):
    want = expected[index]
    if want == -1:
      assert np.isnan(got[key]), key
    else:
      assert got[key] == pytest.approx(want, abs=1e-9), key
