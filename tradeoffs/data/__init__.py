"""Data: TFDS sources (ArrayRecord, no TensorFlow), embedded offline sets, batching.

    ds = data.load("digits_groups")     # arrays + group attributes, offline
    ds.train.images, ds.train.labels, ds.train.groups, ds.test.ids
"""

from tradeoffs.data.augment import AUGMENTATIONS
from tradeoffs.data.augment import make_augment
from tradeoffs.data.augment import pad_and_crop
from tradeoffs.data.augment import random_erasing
from tradeoffs.data.augment import random_flip
from tradeoffs.data.batching import batch_indices
from tradeoffs.data.batching import feistel_permute
from tradeoffs.data.batching import steps_per_epoch
from tradeoffs.data import long_tail  # Registers digits_long_tail, digits_heldout.
from tradeoffs.data import multitask  # Registers digits_two_task, uci_adult, uci_german.
from tradeoffs.data import mnist_5k  # Registers mnist_5k.
from tradeoffs.data.long_tail import exponential_counts
from tradeoffs.data.long_tail import load_validation
from tradeoffs.data.long_tail import subsample
from tradeoffs.data import noise
from tradeoffs.data.noise import atypical_set
from tradeoffs.data.noise import corrupt_inputs
from tradeoffs.data.noise import label_noise
from tradeoffs.data import spoken_digits  # Registers spoken_digits.
from tradeoffs.data.sources import ArraySplit
from tradeoffs.data.sources import DATASETS
from tradeoffs.data.sources import Dataset
from tradeoffs.data.sources import DatasetSpec
from tradeoffs.data.sources import data_source
from tradeoffs.data.sources import load
from tradeoffs.data.sources import load_split
from tradeoffs.data.sources import register_dataset


def names() -> list[str]:
  return sorted(DATASETS)
