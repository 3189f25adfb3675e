"""NMS against a plain numpy greedy reference, jitted, with fixed-size outputs."""

import jax
import numpy as np
import pytest

from tradeoffs.detection import nms


def reference_nms(boxes, scores, iou_threshold, max_outputs):
  """Textbook greedy NMS in numpy: keep the best, drop what overlaps it by > threshold."""
  def iou(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0
  order = list(np.argsort(-scores, kind="stable"))
  keep = []
  while order and len(keep) < max_outputs:
    best = order.pop(0)
    keep.append(best)
    order = [i for i in order if iou(boxes[best], boxes[i]) <= iou_threshold]
  return keep


def test_hand_case():
  boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [20, 20, 30, 30], [0, 0, 10, 9]],
                   np.float32)
  scores = np.array([0.9, 0.8, 0.7, 0.95], np.float32)
  keep, valid = nms.nms(boxes, scores, iou_threshold=0.5, max_outputs=4)
  # 3 (0.95) suppresses 0 (IoU 0.9) and 1 (IoU 0.59); 2 survives; two slots stay empty.
  assert np.asarray(keep)[np.asarray(valid)].tolist() == [3, 2]
  assert np.asarray(valid).tolist() == [True, True, False, False]


@pytest.mark.parametrize("threshold,k", [(0.3, 5), (0.5, 100), (0.7, 20)])
def test_against_numpy_reference(threshold, k):
  run = jax.jit(lambda b, s: nms.nms(b, s, iou_threshold=threshold, max_outputs=k))
  for seed in range(4):
    rng = np.random.default_rng(seed)
    n = 60
    lo = rng.uniform(0, 40, (n, 2))
    boxes = np.concatenate([lo, lo + rng.uniform(2, 20, (n, 2))], 1).astype(np.float32)
    scores = rng.permutation(n).astype(np.float32) / n  # distinct: the order is defined
    keep, valid = run(boxes, scores)
    assert keep.shape == (k,) and valid.shape == (k,)
    got = np.asarray(keep)[np.asarray(valid)].tolist()
    assert got == reference_nms(boxes, scores, threshold, k)


def test_batched_nms_keeps_overlapping_boxes_of_other_classes():
  boxes = np.array([[0, 0, 10, 10], [0, 0, 10, 10], [0, 0, 10, 10]], np.float32)
  scores = np.array([0.9, 0.8, 0.7], np.float32)
  keep, valid = nms.batched_nms(boxes, scores, np.array([0, 1, 0]), iou_threshold=0.5,
                                max_outputs=3)
  assert np.asarray(keep)[np.asarray(valid)].tolist() == [0, 1]


def test_bad_arguments():
  boxes, scores = np.zeros((2, 4), np.float32), np.zeros(2, np.float32)
  with pytest.raises(ValueError, match=r"\(0, 1\]"):
    nms.nms(boxes, scores, iou_threshold=0.0, max_outputs=2)
  with pytest.raises(ValueError, match="max_outputs"):
    nms.nms(boxes, scores, iou_threshold=0.5, max_outputs=0)
