"""IoU, the box coder and box checks against hand-computed values."""

import math

import jax
import numpy as np
import pytest

from tradeoffs.detection import boxes


def test_iou_hand_computed():
  a = np.array([[0, 0, 2, 2], [0, 0, 4, 4], [0, 0, 4, 2]], np.float32)
  b = np.array([[1, 1, 3, 3], [0, 0, 2, 2], [2, 0, 6, 2], [10, 10, 11, 11]], np.float32)
  expected = np.array([[1 / 7, 1.0, 0.0, 0.0],
                       [4 / 16, 4 / 16, 4 / 20, 0.0],   # [0,0,4,4] vs [2,0,6,2]: 4 / (16+8-4)
                       [2 / 10, 4 / 8, 4 / 12, 0.0]])  # [0,0,4,2] vs [1,1,3,3]: 2 / (8+4-2)
  np.testing.assert_allclose(np.asarray(boxes.iou(a, b)), expected, rtol=1e-6)
  np.testing.assert_allclose(boxes.iou(a, b, np), expected, rtol=1e-6)


def test_iou_of_empty_boxes_is_zero():
  empty = np.array([[3, 3, 3, 3]], np.float32)
  assert float(boxes.iou(empty, empty)[0, 0]) == 0.0


def test_encode_hand_computed_and_decode_inverts_it():
  anchor = np.array([0, 0, 10, 10], np.float32)      # centre (5, 5), 10 x 10
  box = np.array([2, 4, 12, 8], np.float32)           # centre (7, 6), 10 x 4
  codes = np.asarray(boxes.encode(box, anchor))
  np.testing.assert_allclose(codes, [2.0, 1.0, 0.0, 5 * math.log(0.4)], rtol=1e-6)
  np.testing.assert_allclose(np.asarray(boxes.decode(codes, anchor)), box, atol=1e-5)
  rng = np.random.default_rng(0)
  lo = rng.uniform(0, 50, (20, 2))
  many = np.concatenate([lo, lo + rng.uniform(1, 30, (20, 2))], 1).astype(np.float32)
  anchors = np.roll(many, 3, axis=0)
  decoded = jax.jit(boxes.decode)(boxes.encode(many, anchors), anchors)
  np.testing.assert_allclose(np.asarray(decoded), many, atol=1e-3)


def test_check_boxes_refuses_negative_size_and_outside():
  boxes.check_boxes([[0, 0, 4, 4]], (4, 4))  # Touching the border is inside.
  with pytest.raises(ValueError, match="negative size"):
    boxes.check_boxes([[0, 0, 4, 4], [5, 1, 3, 2]])
  with pytest.raises(ValueError, match="outside the 8x10 image"):
    boxes.check_boxes([[2, 2, 11, 4]], (8, 10))
  with pytest.raises(ValueError, match="outside"):
    boxes.check_boxes([[-1, 0, 2, 2]], (8, 8))
  with pytest.raises(ValueError, match="not finite"):
    boxes.check_boxes([[0, 0, np.nan, 2]])
  with pytest.raises(ValueError, match=r"\[\.\.\., 4\]"):
    boxes.check_boxes([[0, 0, 2]])


@pytest.mark.parametrize("bad", [0, -0.1, 1.5, float("nan"), True, "0.5"])
def test_iou_threshold_outside_0_1_is_refused(bad):
  with pytest.raises(ValueError, match=r"\(0, 1\]"):
    boxes.check_iou_threshold(bad)


def test_iou_threshold_accepts_one():
  assert boxes.check_iou_threshold(1) == 1.0
