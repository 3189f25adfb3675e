"""RoI Align against a numpy loop of its definition (Detectron2's aligned sampling, zero
padding at the border), a hand case, and fixed output shapes under jit."""

import jax
import numpy as np
import pytest

from tradeoffs.detection import roi


def _reference(features, box, output_size, stride, ratio):
  """Aligned RoI Align with a zero-padded border, one box, written as plain loops."""
  height, width, channels = features.shape
  x0, y0, x1, y1 = np.asarray(box, np.float64) / stride - 0.5
  bin_w, bin_h = (x1 - x0) / output_size, (y1 - y0) / output_size
  out = np.zeros((output_size, output_size, channels))
  for by in range(output_size):
    for bx in range(output_size):
      total = np.zeros(channels)
      for iy in range(ratio):
        for ix in range(ratio):
          y = y0 + (by + (iy + 0.5) / ratio) * bin_h
          x = x0 + (bx + (ix + 0.5) / ratio) * bin_w
          for yy in (int(np.floor(y)), int(np.floor(y)) + 1):
            for xx in (int(np.floor(x)), int(np.floor(x)) + 1):
              if 0 <= yy < height and 0 <= xx < width:
                total += (1 - abs(y - yy)) * (1 - abs(x - xx)) * features[yy, xx]
      out[by, bx] = total / ratio ** 2
  return out


def test_a_box_on_pixel_centres_reads_the_pixels():
  # A 4x4 map with values 10*row + col, stride 1; the box [1, 1, 3, 3] in pixel edges
  # covers pixels (1..2, 1..2); output 2x2 with one sample per bin lands on their centres.
  features = (10 * np.arange(4)[:, None] + np.arange(4)[None, :]).astype(np.float32)[..., None]
  got = roi.roi_align(features, [[1.0, 1.0, 3.0, 3.0]], output_size=2, stride=1,
                      sampling_ratio=1)
  np.testing.assert_allclose(got[0, ..., 0], [[11, 12], [21, 22]], atol=1e-5)


def test_matches_the_reference_on_random_boxes_and_is_jittable():
  rng = np.random.default_rng(0)
  features = rng.normal(size=(8, 8, 3)).astype(np.float32)
  corners = rng.uniform(-4, 36, size=(6, 2, 2))
  boxes = np.concatenate([corners.min(1), corners.max(1)], -1)  # some cross the border
  run = jax.jit(lambda f, b: roi.roi_align(f, b, output_size=3, stride=4, sampling_ratio=2))
  got = np.asarray(run(features, boxes))
  assert got.shape == (6, 3, 3, 3)
  for k, box in enumerate(boxes):
    np.testing.assert_allclose(got[k], _reference(features, box, 3, 4, 2), atol=1e-5)


def test_bad_sizes_are_refused():
  with pytest.raises(ValueError, match="output_size=0"):
    roi.roi_align(np.zeros((2, 2, 1)), np.zeros((1, 4)), output_size=0, stride=1)
