"""The procedural detection set: a pure function of its seed, boxes inside the image and
tight around the drawn object, every background kind present, exact box scaling."""

import dataclasses

import numpy as np
import pytest

from tradeoffs.detection import synthetic

CONFIG = synthetic.SceneConfig(image_size=32, max_side=16)


@pytest.fixture(scope="module")
def scenes():
  return synthetic.generate(3, 40, CONFIG, "test")


def test_a_pure_function_of_the_seed(scenes):
  again = synthetic.generate(3, 40, CONFIG, "test")
  for field in ("images", "boxes", "classes", "valid", "background"):
    np.testing.assert_array_equal(getattr(scenes, field), getattr(again, field))
  other = synthetic.generate(4, 40, CONFIG, "test")
  assert not np.array_equal(scenes.images, other.images)
  # The first scenes do not depend on how many are drawn.
  np.testing.assert_array_equal(synthetic.generate(3, 5, CONFIG, "test").images,
                                scenes.images[:5])


def test_boxes_inside_the_image_with_positive_size(scenes):
  b = scenes.boxes[scenes.valid]
  assert len(b) >= 40
  assert (b[:, :2] >= 0).all() and (b[:, 2:] <= 32).all()
  assert ((b[:, 2:] - b[:, :2]) >= 1).all()
  assert (scenes.classes[scenes.valid] >= 0).all()
  assert (scenes.classes[~scenes.valid] == -1).all()
  assert set(scenes.background.tolist()) == set(range(len(synthetic.BACKGROUNDS)))


def test_a_box_is_tight_around_its_object():
  # On a flat background an object changes only pixels inside its box, and touches all
  # four edges of it.
  for index in range(60):
    image, boxes, _, kind = synthetic.scene(0, "train", index, CONFIG)
    if synthetic.BACKGROUNDS[kind] != "flat" or len(boxes) != 1:
      continue
    x0, y0, x1, y1 = boxes[0].astype(int)
    level = np.median(np.concatenate([image[:y0].ravel(), image[y1:].ravel(),
                                      image[:, :x0].ravel(), image[:, x1:].ravel()]))
    changed = np.abs(image - level) > 1e-6
    rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
    assert [cols[0], rows[0], cols[-1] + 1, rows[-1] + 1] == [x0, y0, x1, y1]
    return
  pytest.fail("no single-object scene on a flat background among the first 60")


def test_resize_scales_boxes_exactly(scenes):
  small = synthetic.resize(scenes, 16)
  assert small.images.shape == (40, 16, 16, 1)
  np.testing.assert_allclose(small.boxes, scenes.boxes / 2)
  assert 0 <= small.images.min() and small.images.max() <= 1


def test_bad_configs_are_refused():
  with pytest.raises(ValueError, match="must fit inside the image"):
    synthetic.generate(0, 2, dataclasses.replace(CONFIG, max_side=40))
  with pytest.raises(ValueError, match="max_objects"):
    synthetic.generate(0, 2, dataclasses.replace(CONFIG, min_objects=3, max_objects=2))
  with pytest.raises(ValueError, match="count"):
    synthetic.generate(0, 0, CONFIG)
  with pytest.raises(ValueError, match="split"):
    synthetic.generate(0, 2, CONFIG, "validation")
