"""A damaged cached dataset fails with one line naming the folder to delete; TFDS's
per-load INFO lines and OpenCV warning are filtered, other TFDS logs are not."""

from __future__ import annotations

import logging
import os
import re
import shutil

import numpy as np
import pytest

from tradeoffs import data
from tradeoffs.data import builders
from tradeoffs.data import sources


@pytest.fixture
def cached_digits(tmp_path):
  """A copy of the built digits dataset in a fresh data dir."""
  data.load("digits")  # Builds into the tests' TFDS_DATA_DIR if missing.
  data_dir = str(tmp_path / "tfds")
  shutil.copytree(os.path.join(sources.default_data_dir(), "digits"),
                  os.path.join(data_dir, "digits"))
  return data_dir


def _version_dir(data_dir):
  (version,) = os.listdir(os.path.join(data_dir, "digits"))
  return os.path.join(data_dir, "digits", version)


def _corrupt_info(data_dir):
  with open(os.path.join(_version_dir(data_dir), "dataset_info.json"), "w") as f:
    f.write("{not json")


def _truncate_train_shard(data_dir):
  (shard,) = [f for f in os.listdir(_version_dir(data_dir)) if "-train.array_record" in f]
  path = os.path.join(_version_dir(data_dir), shard)
  with open(path, "rb") as f:
    head = f.read(100)
  with open(path, "wb") as f:
    f.write(head)


@pytest.mark.parametrize("corrupt", [_corrupt_info, _truncate_train_shard])
def test_corrupt_cache_names_the_folder_and_deleting_it_rebuilds(cached_digits, corrupt):
  expected = data.load("digits", data_dir=cached_digits)
  corrupt(cached_digits)
  with pytest.raises(builders.CorruptDatasetError) as err:
    data.load("digits", data_dir=cached_digits)
  message = str(err.value)
  folder = os.path.join(os.path.abspath(cached_digits), "digits")
  assert "\n" not in message
  assert re.search(rf"delete {re.escape(folder)} and it is rebuilt offline on the next load$",
                   message), message
  shutil.rmtree(folder)  # What the message says to do.
  rebuilt = data.load("digits", data_dir=cached_digits)
  np.testing.assert_array_equal(rebuilt.train.images, expected.train.images)
  np.testing.assert_array_equal(rebuilt.test.labels, expected.test.labels)


def test_corrupt_prepared_real_dataset_says_to_prepare_again(tmp_path):
  data_dir = str(tmp_path / "tfds")
  os.makedirs(os.path.join(data_dir, "cifar10", "3.0.2"))
  with open(os.path.join(data_dir, "cifar10", "3.0.2", "dataset_info.json"), "w") as f:
    f.write("{not json")
  with pytest.raises(builders.CorruptDatasetError,
                     match=r"delete .*cifar10 and then prepare it again: .*"
                           r"python -m tradeoffs.data.prepare --datasets=cifar10"):
    data.data_source("cifar10", "train", data_dir)
  # Never prepared: still the 'not prepared' message.
  with pytest.raises(FileNotFoundError, match="is not prepared"):
    data.data_source("cifar100", "train", data_dir)


def _record(pathname, level, msg):
  return logging.LogRecord("absl", level, pathname, 1, msg, None, None)


def test_tfds_log_filter_drops_only_the_per_load_noise():
  (quiet,) = [f for f in logging.getLogger("absl").filters
              if isinstance(f, sources._QuietTfds)]  # pylint: disable=protected-access
  tfds_file = os.path.join(os.sep, "venv", "tensorflow_datasets", "core", "dataset_info.py")
  assert not quiet.filter(_record(tfds_file, logging.INFO, "Load dataset info from %s"))
  assert not quiet.filter(_record(tfds_file, logging.WARNING, "OpenCV is not installed. We"))
  # Real problems from TFDS, and everybody else's lines, pass.
  assert quiet.filter(_record(tfds_file, logging.WARNING, "Variant folder %s has no info"))
  assert quiet.filter(_record(tfds_file, logging.ERROR, "Failed to read %s"))
  assert quiet.filter(_record("/work/tradeoffs/x.py", logging.INFO, "Load dataset info from"))
  sources._quiet_tfds_logs()  # pylint: disable=protected-access
  assert sum(isinstance(f, sources._QuietTfds)  # pylint: disable=protected-access
             for f in logging.getLogger("absl").filters) == 1


def test_loading_logs_no_dataset_info_lines(cached_digits, caplog):
  with caplog.at_level(logging.DEBUG):
    data.load("digits", data_dir=cached_digits)
  assert "Load dataset info" not in caplog.text
  assert "OpenCV" not in caplog.text
