"""Real datasets go through the same loader; tested offline with tfds mock data."""

import numpy as np
import pytest
import tensorflow_datasets as tfds

from tradeoffs import data


@pytest.mark.parametrize("name,shape,classes", [
    ("mnist", (28, 28, 1), 10),
    ("fashion_mnist", (28, 28, 1), 10),
    ("cifar10", (32, 32, 3), 10),
    ("cifar100", (32, 32, 3), 100),
])
def test_mock_real_dataset(name, shape, classes):
  with tfds.testing.mock_data(num_examples=12, policy=tfds.testing.MockPolicy.USE_CODE):
    ds = data.load(name)
  assert ds.train.images.shape == (12, *shape)
  assert ds.train.images.dtype == np.float32
  assert 0.0 <= ds.train.images.min() and ds.train.images.max() <= 1.0
  assert ds.num_classes == classes
  assert ds.train.labels.min() >= 0 and ds.train.labels.max() < classes
  assert len(set(ds.train.ids)) == 12


def test_mock_celeb_a_attributes_become_label_and_groups():
  with tfds.testing.mock_data(num_examples=6, policy=tfds.testing.MockPolicy.USE_CODE):
    ds = data.load("celeb_a", label_attribute="Smiling", group_attributes=("Male", "Young"),
                   max_train_examples=6, max_test_examples=6)
  assert ds.group_names == ("Male", "Young")
  assert ds.train.groups.shape == (6, 2)
  assert set(np.unique(ds.train.labels)) <= {0, 1}
  assert set(np.unique(ds.train.groups)) <= {0, 1}


def test_attributes_rejected_for_datasets_without_them():
  with pytest.raises(ValueError, match="no attributes"):
    data.load("mnist", label_attribute="Male")
