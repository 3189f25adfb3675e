"""The long-tail subsampling: documented counts exactly, a pure function of its seed."""

from __future__ import annotations

import numpy as np
import pytest

from tradeoffs import data
from tradeoffs.data import builders
from tradeoffs.data import long_tail


def test_exponential_profile_by_hand():
  counts = long_tail.exponential_counts(10, 100, 10)
  np.testing.assert_array_equal(counts, [100, 77, 60, 46, 36, 28, 22, 17, 13, 10])
  np.testing.assert_array_equal(long_tail.exponential_counts(3, 40, 4), [40, 20, 10])
  with pytest.raises(ValueError, match="ratio"):
    long_tail.exponential_counts(10, 100, 0.5)


def test_subsample_keeps_the_counts_and_is_pure():
  labels = np.random.default_rng(5).integers(0, 4, 400)
  counts = [50, 30, 20, 10]
  train, val = long_tail.subsample(labels, counts, validation_per_class=5, seed=3)
  np.testing.assert_array_equal(np.bincount(labels[train]), counts)
  np.testing.assert_array_equal(np.bincount(labels[val]), [5] * 4)
  assert not set(train) & set(val)
  again = long_tail.subsample(labels, counts, validation_per_class=5, seed=3)
  np.testing.assert_array_equal(train, again[0])
  np.testing.assert_array_equal(val, again[1])
  other = long_tail.subsample(labels, counts, validation_per_class=5, seed=4)
  assert not np.array_equal(train, other[0])
  everything, _ = long_tail.subsample(labels, None, validation_per_class=5, seed=3)
  assert len(everything) == len(labels) - 20
  with pytest.raises(ValueError, match="do not fit"):
    long_tail.subsample(labels, [500, 1, 1, 1], seed=0)


def test_registered_datasets_hold_the_documented_splits():
  ds = data.load("digits_long_tail")
  np.testing.assert_array_equal(np.bincount(ds.train.labels),
                                [100, 77, 60, 46, 36, 28, 22, 17, 13, 10])
  val = data.load_validation("digits_long_tail")
  np.testing.assert_array_equal(np.bincount(val.labels), [20] * 10)
  assert not set(ds.train.ids) & set(val.ids)
  digits = data.load("digits")
  np.testing.assert_array_equal(ds.test.ids, digits.test.ids)
  np.testing.assert_array_equal(ds.test.images, digits.test.images)
  # Train images are digits' own, by id.
  index = np.searchsorted(digits.train.ids, ds.train.ids)
  np.testing.assert_array_equal(digits.train.images[index], ds.train.images)
  held = data.load("digits_heldout")
  cal = data.load_validation("digits_heldout")
  np.testing.assert_array_equal(np.bincount(cal.labels), [30] * 10)
  assert len(held.train.labels) + len(cal.labels) == len(digits.train.labels)
  assert sorted(set(held.train.ids) | set(cal.ids)) == sorted(digits.train.ids)
  assert set(builders.EMBEDDED_BUILDERS) >= {"digits", "digits_groups", "digits_long_tail"}
