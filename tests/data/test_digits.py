"""The embedded digits datasets: built offline, fixed split, documented subgroup."""

import numpy as np
import pytest

from tradeoffs import data
from tradeoffs.data import builders


@pytest.fixture(scope="module")
def digits():
  return data.load("digits")


@pytest.fixture(scope="module")
def digits_groups():
  return data.load("digits_groups")


def test_split_sizes_and_disjoint_ids(digits):
  assert len(digits.train) == 1437 and len(digits.test) == 360
  assert not set(digits.train.ids) & set(digits.test.ids)
  assert sorted(set(digits.train.ids) | set(digits.test.ids)) == list(range(1797))
  assert digits.input_shape == (8, 8, 1) and digits.num_classes == 10
  assert digits.train.groups.shape == (1437, 0)


def test_pixels_round_trip_the_vendored_file(digits):
  images, labels = builders.read_digits_file()
  ids = digits.test.ids
  # Stored as round(v * 255 / 16) / 255, an injective map of 0..16.
  recovered = np.round(digits.test.images[..., 0] * 16.0)
  np.testing.assert_array_equal(recovered, images[ids])
  np.testing.assert_array_equal(digits.test.labels, labels[ids])


def test_subgroup_is_rotated_and_under_represented(digits, digits_groups):
  groups = digits_groups.train.groups[:, 0]
  assert digits_groups.group_names == ("subgroup",)
  assert 0.10 <= groups.mean() <= 0.15
  for c in range(10):  # every class has its share of the subgroup
    assert 0.08 < groups[digits_groups.train.labels == c].mean() < 0.16
  np.testing.assert_array_equal(digits.train.ids, digits_groups.train.ids)
  sub = groups == 1
  np.testing.assert_allclose(digits_groups.train.images[sub][..., 0],
                             np.rot90(digits.train.images[sub][..., 0], k=-1, axes=(1, 2)))
  np.testing.assert_array_equal(digits_groups.train.images[~sub], digits.train.images[~sub])


def test_loading_is_deterministic(digits):
  again = data.load("digits")
  np.testing.assert_array_equal(again.train.images, digits.train.images)
  np.testing.assert_array_equal(again.train.ids, digits.train.ids)


def test_unknown_dataset_lists_choices():
  with pytest.raises(ValueError, match="digits_groups"):
    data.load("imagenet_but_misspelled")


def test_missing_real_dataset_fails_fast_with_prepare_command(tmp_path):
  import time
  start = time.time()
  with pytest.raises(FileNotFoundError, match="python -m tradeoffs.data.prepare --datasets=cifar10"):
    data.load("cifar10", data_dir=str(tmp_path))
  assert time.time() - start < 10  # no download attempt, no retry loop
