"""The vendored 5,000-image MNIST subset (`mnist_5k`): checksum, counts, split, pixels, and
the contrastive-pruning config that can train on it."""

import gzip
import hashlib
import os

import jax
import numpy as np
import pytest

from experiments.configs import contrastive_pruning as config_lib
from tradeoffs import data
from tradeoffs import models
from tradeoffs.data import mnist_5k
from tradeoffs.studies import contrastive_pruning as study
from tradeoffs.studies import runner

VENDORED = os.path.dirname(mnist_5k.MNIST_5K_FILE)


@pytest.fixture(scope="module")
def raw():
  return mnist_5k.read_mnist_5k()


@pytest.fixture(scope="module")
def ds(tmp_path_factory):
  return data.load("mnist_5k", data_dir=str(tmp_path_factory.mktemp("tfds")))


def test_checksum_matches_sha256sums_and_the_code():
  with open(os.path.join(VENDORED, "SHA256SUMS")) as f:
    digest, name = f.read().split()
  with open(os.path.join(VENDORED, name), "rb") as f:
    actual = hashlib.sha256(f.read()).hexdigest()
  assert name == "mnist_5k.csv.gz" and actual == digest == mnist_5k.MNIST_5K_SHA256
  for name in ("LICENSE", "README.md", "extract.sh"):
    assert os.path.exists(os.path.join(VENDORED, name)), name


def test_a_changed_file_is_refused(tmp_path):
  bad = tmp_path / "mnist_5k.csv.gz"
  bad.write_bytes(gzip.compress(b"0," * 784 + b"7\n"))
  with pytest.raises(ValueError, match="SHA-256"):
    mnist_5k.read_mnist_5k(str(bad))
  with pytest.raises(FileNotFoundError, match="package data"):
    mnist_5k.read_mnist_5k(str(tmp_path / "absent.csv.gz"))


def test_file_has_5000_images_500_per_class(raw):
  images, labels = raw
  assert images.shape == (5000, 28, 28) and images.dtype == np.uint8
  np.testing.assert_array_equal(np.bincount(labels, minlength=10), np.full(10, 500))
  # The fast parser against numpy's CSV reader on the first rows of the file.
  with gzip.open(mnist_5k.MNIST_5K_FILE, "rt") as f:
    head = np.loadtxt([next(f) for _ in range(3)] + [
        line for i, line in enumerate(f) if i in (2496, 4996)], delimiter=",", dtype=np.int64)
  rows = [0, 1, 2, 2499, 4999]
  np.testing.assert_array_equal(head[:, :784], images[rows].reshape(5, 784))
  np.testing.assert_array_equal(head[:, 784], labels[rows])


def test_split_is_stratified_seeded_and_disjoint(raw):
  _, labels = raw
  split = mnist_5k.split_indices(labels)
  train, test = split["train"], split["test"]
  assert len(train) == 4000 and len(test) == 1000
  assert not set(train) & set(test)
  np.testing.assert_array_equal(np.sort(np.concatenate([train, test])), np.arange(5000))
  np.testing.assert_array_equal(np.bincount(labels[test], minlength=10), np.full(10, 100))
  # The documented recipe, written out independently.
  rng = np.random.default_rng(0)
  expected = sorted(int(i) for c in range(10)
                    for i in np.flatnonzero(labels == c)[rng.permutation(500)[:100]])
  assert test.tolist() == expected


def test_load_gives_the_files_pixels_and_split(ds, raw):
  images, labels = raw
  assert ds.input_shape == (28, 28, 1) and ds.num_classes == 10
  assert len(ds.train) == 4000 and len(ds.test) == 1000
  assert not set(ds.train.ids) & set(ds.test.ids)
  for part in (ds.train, ds.test):
    assert part.images.dtype == np.float32
    assert 0.0 <= part.images.min() and part.images.max() <= 1.0
    np.testing.assert_array_equal(np.round(part.images[..., 0] * 255.0), images[part.ids])
    np.testing.assert_array_equal(part.labels, labels[part.ids])
  np.testing.assert_array_equal(np.sort(ds.test.ids), mnist_5k.split_indices(labels)["test"])
  assert ds.train.images.max() == 1.0  # 255 occurs: values are scaled by 1/255, not 1/256.


def test_contrastive_pruning_plans_on_mnist_5k():
  c = config_lib.get_config("dataset=mnist_5k")
  default = config_lib.get_config()
  assert c.dataset.name == "mnist_5k" and default.dataset.name == "digits"
  assert (c.augment.pad, c.augment.size) == (3, 10)
  assert (default.augment.pad, default.augment.size) == (1, 3)
  variants = runner.plan(study, c)
  assert [v.name for v in variants] == [v.name for v in runner.plan(study, default)]
  assert all(v.train_config.dataset.name == "mnist_5k" for v in variants)
  # The encoder takes its input shape from the data: 28×28×1 flattens into 784 inputs.
  model = models.get(variants[0].train_config.model.name, num_classes=10,
                       **variants[0].train_config.model.kwargs)
  params = jax.eval_shape(model.init, jax.random.key(0),
                          jax.ShapeDtypeStruct((1, 28, 28, 1), np.float32))["params"]
  assert params["dense_0"]["kernel"].shape == (784, 64)
  with pytest.raises(ValueError, match="dataset='mnist'"):
    config_lib.get_config("dataset=mnist")
