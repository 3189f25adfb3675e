"""Loading TFDS datasets (ArrayRecord, no TensorFlow) into in-memory arrays.

Every dataset goes through `tfds.data_source`. The embedded ones (`digits`,
`digits_groups`) are built offline on first use; real ones (mnist, fashion_mnist, cifar10,
cifar100, celeb_a) must be prepared once with `python -m tradeoffs.data.prepare`, and a
missing one fails at once with that command in the message — never a download attempt.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import tensorflow_datasets as tfds

from tradeoffs.data import builders


class _QuietTfds:
  """Drops TFDS's per-load 'Load dataset info' INFO lines and its 'OpenCV is not installed'
  warning (PIL decodes these small images fine); every other TFDS record passes."""

  def filter(self, record) -> bool:
    if f"{os.sep}tensorflow_datasets{os.sep}" not in (record.pathname or ""):
      return True
    message = str(record.msg)
    return not (message.startswith("Load dataset info from")
                or message.startswith("OpenCV is not installed"))


def _quiet_tfds_logs() -> None:
  # TFDS logs through absl, i.e. the Python logger 'absl'.
  logger = logging.getLogger("absl")
  if not any(isinstance(f, _QuietTfds) for f in logger.filters):
    logger.addFilter(_QuietTfds())


_quiet_tfds_logs()


@dataclasses.dataclass(frozen=True)
class DatasetSpec:
  """How a TFDS dataset maps to (image, label, id, groups)."""
  tfds_name: str
  num_classes: int
  embedded: bool = False
  group_keys: tuple[str, ...] = ()  # example keys holding integer group attributes
  train_split: str = "train"
  test_split: str = "test"
  # celeb_a: the label is one boolean attribute, groups are others.
  label_attribute: str | None = None
  group_attributes: tuple[str, ...] = ()
  # A dataset that is not images (e.g. `spoken_digits`): `load` returns loader(**options).
  loader: Callable[..., Any] | None = None


DATASETS: dict[str, DatasetSpec] = {
    "digits": DatasetSpec("digits", 10, embedded=True),
    "digits_groups": DatasetSpec("digits_groups", 10, embedded=True, group_keys=("subgroup",)),
    "mnist": DatasetSpec("mnist", 10),
    "fashion_mnist": DatasetSpec("fashion_mnist", 10),
    "cifar10": DatasetSpec("cifar10", 10),
    "cifar100": DatasetSpec("cifar100", 100),
    "celeb_a": DatasetSpec("celeb_a", 2, label_attribute="Blond_Hair",
                           group_attributes=("Male", "Young")),
}


def register_dataset(name: str, spec: DatasetSpec) -> None:
  """Adds a TFDS dataset to `load`'s choices (e.g. a project's own ArrayRecord builder)."""
  DATASETS[name] = spec


@dataclasses.dataclass(frozen=True)
class ArraySplit:
  """One split held in memory. Images float32 in [0, 1], [N, H, W, C]."""
  images: np.ndarray
  labels: np.ndarray  # int32 [N]
  ids: np.ndarray  # int32 [N], stable example ids
  groups: np.ndarray  # int32 [N, G]; G may be 0
  group_names: tuple[str, ...]
  num_classes: int

  def __len__(self) -> int:
    return len(self.labels)

  def take(self, index: np.ndarray | slice) -> "ArraySplit":
    return dataclasses.replace(self, images=self.images[index], labels=self.labels[index],
                               ids=self.ids[index], groups=self.groups[index])


@dataclasses.dataclass(frozen=True)
class Dataset:
  name: str
  train: ArraySplit
  test: ArraySplit

  @property
  def num_classes(self) -> int:
    return self.train.num_classes

  @property
  def input_shape(self) -> tuple[int, ...]:
    return tuple(self.train.images.shape[1:])

  @property
  def group_names(self) -> tuple[str, ...]:
    return self.train.group_names


def default_data_dir() -> str:
  return os.environ.get("TFDS_DATA_DIR", os.path.join(os.path.expanduser("~"),
                                                      "tensorflow_datasets"))


def spec_for(name: str, *, label_attribute: str | None = None,
             group_attributes: Sequence[str] | None = None) -> DatasetSpec:
  if name not in DATASETS:
    raise ValueError(f"unknown dataset {name!r}; choose one of {sorted(DATASETS)}")
  spec = DATASETS[name]
  if label_attribute is not None or group_attributes is not None:
    if spec.label_attribute is None:
      raise ValueError(f"dataset {name!r} has no attributes; label_attribute/group_attributes "
                       "apply only to celeb_a-style datasets")
    spec = dataclasses.replace(
        spec, label_attribute=label_attribute or spec.label_attribute,
        group_attributes=tuple(group_attributes if group_attributes is not None
                               else spec.group_attributes))
  return spec


def prepare_command(name: str, data_dir: str) -> str:
  return (f"pip install -e '.[prepare]' && python -m tradeoffs.data.prepare "
          f"--datasets={name} --data_dir={data_dir}")


def data_source(name: str, split: str, data_dir: str | None = None,
                spec: DatasetSpec | None = None) -> Sequence[Mapping[str, Any]]:
  """The random-access TFDS source of one split; builds embedded sets offline."""
  spec = spec or spec_for(name)
  data_dir = data_dir or default_data_dir()
  if spec.embedded:
    builders.prepare_embedded(spec.tfds_name, data_dir)
  try:
    return tfds.data_source(spec.tfds_name, split=split, data_dir=data_dir, download=False)
  except Exception as error:  # TFDS raises several types for "not there".
    if spec.embedded or _has_cached_build(spec.tfds_name, data_dir):
      raise _corrupt(name, data_dir, spec, error) from error
    raise FileNotFoundError(
        f"dataset {name!r} (split {split!r}) is not prepared as ArrayRecord in {data_dir}. "
        f"Prepare it once, on a machine with internet: {prepare_command(name, data_dir)} "
        f"(underlying error: {type(error).__name__}: {str(error)[:200]})") from None


def _has_cached_build(tfds_name: str, data_dir: str) -> bool:
  """Whether some version folder of the dataset has a dataset_info.json (was prepared)."""
  root = os.path.join(data_dir, tfds_name)
  if not os.path.isdir(root):
    return False
  return any(os.path.exists(os.path.join(root, d, "dataset_info.json"))
             for d in os.listdir(root))


def _corrupt(name: str, data_dir: str, spec: DatasetSpec,
             error: BaseException) -> builders.CorruptDatasetError:
  return builders.corrupt_dataset_error(spec.tfds_name, data_dir, error,
                                        embedded=spec.embedded,
                                        prepare=prepare_command(name, data_dir))


def _read_all(source: Sequence[Mapping[str, Any]], max_examples: int | None) -> list[dict]:
  count = len(source) if max_examples is None else min(len(source), max_examples)
  getitems = getattr(source, "__getitems__", None)
  out = []
  for start in range(0, count, 4096):
    idx = list(range(start, min(count, start + 4096)))
    try:
      out += list(getitems(idx)) if getitems is not None else [source[i] for i in idx]
    except TypeError:  # tfds' mock data source lacks a working batched read.
      getitems = None
      out += [source[i] for i in idx]
  return out


def to_arrays(examples: list[Mapping[str, Any]], spec: DatasetSpec,
              transform: Callable[[np.ndarray], np.ndarray] | None = None) -> ArraySplit:
  """Stacks decoded examples into an ArraySplit sorted by example id."""
  images = np.stack([np.asarray(e["image"]) for e in examples])
  if images.ndim == 3:
    images = images[..., None]
  images = images.astype(np.float32) / 255.0
  if transform is not None:
    images = transform(images)
  if spec.label_attribute is not None:
    labels = np.array([int(e["attributes"][spec.label_attribute]) for e in examples])
    groups = np.array([[int(e["attributes"][g]) for g in spec.group_attributes]
                       for e in examples]).reshape(len(examples), -1)
    names = spec.group_attributes
  else:
    labels = np.array([int(e["label"]) for e in examples])
    groups = np.array([[int(e[g]) for g in spec.group_keys] for e in examples]).reshape(
        len(examples), -1)
    names = spec.group_keys
  if spec.embedded:
    ids = np.array([int(e["id"]) for e in examples])
  else:  # Real datasets: the position in the ArrayRecord source is a stable id.
    ids = np.arange(len(examples))
  order = np.argsort(ids, kind="stable")
  return ArraySplit(images=images[order], labels=labels[order].astype(np.int32),
                    ids=ids[order].astype(np.int32), groups=groups[order].astype(np.int32),
                    group_names=tuple(names), num_classes=spec.num_classes)


def load_split(name: str, split: str, *, data_dir: str | None = None,
               max_examples: int | None = None, spec: DatasetSpec | None = None,
               transform: Callable[[np.ndarray], np.ndarray] | None = None) -> ArraySplit:
  spec = spec or spec_for(name)
  data_dir = data_dir or default_data_dir()
  source = data_source(name, split, data_dir, spec)
  try:
    examples = _read_all(source, max_examples)
  except Exception as error:  # Truncated ArrayRecord shards, undecodable records.
    raise _corrupt(name, data_dir, spec, error) from error
  return to_arrays(examples, spec, transform)


def load(name: str, *, data_dir: str | None = None, max_train_examples: int | None = None,
         max_test_examples: int | None = None, label_attribute: str | None = None,
         group_attributes: Sequence[str] | None = None,
         transform: Callable[[np.ndarray], np.ndarray] | None = None) -> Dataset:
  """Loads a dataset's train and test splits into memory.

  Args:
    name: one of `DATASETS` (digits, digits_groups, mnist, fashion_mnist, cifar10,
      cifar100, celeb_a, or a registered one).
    data_dir: TFDS data dir (default $TFDS_DATA_DIR or ~/tensorflow_datasets).
    max_train_examples / max_test_examples: read only the first N examples of the source.
    label_attribute, group_attributes: for celeb_a, which attribute is the label and which
      are group attributes (defaults Blond_Hair; Male, Young).
    transform: optional function on the float image array (e.g. resizing for celeb_a).
  """
  spec = spec_for(name, label_attribute=label_attribute, group_attributes=group_attributes)
  if spec.loader is not None:
    return spec.loader(data_dir=data_dir, max_train_examples=max_train_examples,
                       max_test_examples=max_test_examples)
  train = load_split(name, spec.train_split, data_dir=data_dir,
                     max_examples=max_train_examples, spec=spec, transform=transform)
  test = load_split(name, spec.test_split, data_dir=data_dir, max_examples=max_test_examples,
                    spec=spec, transform=transform)
  return Dataset(name=name, train=train, test=test)
