"""TFDS builders for the embedded, offline datasets (no TensorFlow, no download).

Both are built from the vendored UCI optical digits file into ArrayRecord files and read
back with `tfds.data_source`. The file ships inside the package as package data
(`tradeoffs/data/vendored/uci_digits/`, with its LICENSE, provenance README and SHA256SUMS),
located through `importlib.resources`, so any installation — a wheel, `pip install git+...`,
an editable checkout — builds both sets offline.

- `digits`: 1,797 8×8 grey images, 10 classes. Split: a permutation with
  `numpy.random.default_rng(0)` over the file's rows; the first 360 form `test`, the other
  1,437 `train` (the 80/20 split the anchor numbers use). Pixels 0–16 are stored as
  `round(v · 255 / 16)` in PNG (an injective map, so nothing is lost).
- `digits_groups`: the same images and split plus `subgroup` (0/1). 12% of the examples of
  every class (chosen with `default_rng(1)`) form the under-represented subgroup (label 1),
  and their images are rotated by 90° clockwise — a documented distribution shift that a
  model must learn from few examples.
"""

from __future__ import annotations

import gzip
import hashlib
import importlib.resources
import io
import os

import numpy as np
import tensorflow_datasets as tfds

VENDORED_DIR = os.fspath(importlib.resources.files("tradeoffs.data") / "vendored" / "uci_digits")
DIGITS_FILE = os.path.join(VENDORED_DIR, "digits.csv.gz")
DIGITS_SHA256 = "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"
NUM_TEST = 360
SUBGROUP_FRACTION = 0.12

_CITATION = """@misc{alpaydin1998optical,
  title={Optical Recognition of Handwritten Digits},
  author={Alpaydin, E. and Kaynak, C.},
  year={1998}, howpublished={UCI Machine Learning Repository},
  note={DOI: 10.24432/C50P49}}"""


def read_vendored(path: str, sha256: str) -> bytes:
  """The bytes of a vendored package-data file, refused unless they match `sha256` (the
  value its folder's SHA256SUMS lists): one clear error for a missing or altered file."""
  if not os.path.exists(path):
    raise FileNotFoundError(f"the vendored file {path} is missing; it ships as package data "
                            "(reinstall tradeoffs)")
  with open(path, "rb") as f:
    raw = f.read()
  if hashlib.sha256(raw).hexdigest() != sha256:
    raise ValueError(f"{path} does not match its SHA-256 {sha256} (see SHA256SUMS beside "
                     "it); reinstall tradeoffs")
  return raw


def read_digits_file(path: str = DIGITS_FILE) -> tuple[np.ndarray, np.ndarray]:
  """Images uint8 [1797, 8, 8] with values 0..16 and labels int [1797]."""
  path = os.path.abspath(path)
  if not os.path.exists(path):
    raise FileNotFoundError(
        f"the embedded digits file is missing at {path}; it ships as package data in "
        "tradeoffs/data/vendored/uci_digits (reinstall tradeoffs; a build that dropped "
        "package data is broken)")
  with open(path, "rb") as f:
    raw = f.read()
  if os.path.samefile(path, DIGITS_FILE) and hashlib.sha256(raw).hexdigest() != DIGITS_SHA256:
    raise ValueError(f"the embedded digits file {path} does not match its SHA-256 "
                     f"{DIGITS_SHA256} (see SHA256SUMS beside it); reinstall tradeoffs")
  with gzip.open(io.BytesIO(raw), "rt") as f:
    table = np.loadtxt(f, delimiter=",", dtype=np.int64)
  return table[:, :64].reshape(-1, 8, 8).astype(np.uint8), table[:, 64].astype(np.int64)


def digits_split_indices() -> dict[str, np.ndarray]:
  order = np.random.default_rng(0).permutation(1797)
  return {"test": np.sort(order[:NUM_TEST]), "train": np.sort(order[NUM_TEST:])}


def subgroup_mask(labels: np.ndarray) -> np.ndarray:
  """12% of every class, chosen with a fixed seed."""
  rng = np.random.default_rng(1)
  mask = np.zeros(len(labels), bool)
  for c in np.unique(labels):
    members = np.flatnonzero(labels == c)
    count = int(round(SUBGROUP_FRACTION * len(members)))
    mask[rng.choice(members, count, replace=False)] = True
  return mask


def _png(image: np.ndarray) -> bytes:
  from PIL import Image  # Pillow ships with matplotlib.
  buf = io.BytesIO()
  Image.fromarray(image[..., 0] if image.ndim == 3 else image, mode="L").save(buf, format="PNG")
  return buf.getvalue()


def _examples(split: str, with_groups: bool):
  images, labels = read_digits_file()
  groups = subgroup_mask(labels)
  scaled = np.round(images.astype(np.float64) * 255.0 / 16.0).astype(np.uint8)
  for i in digits_split_indices()[split]:
    image = np.rot90(scaled[i], k=-1) if (with_groups and groups[i]) else scaled[i]
    example = {"image": _png(np.ascontiguousarray(image)), "label": int(labels[i]), "id": int(i)}
    if with_groups:
      example["subgroup"] = int(groups[i])
    yield int(i), example


class _DigitsBase(tfds.core.GeneratorBasedBuilder):
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}
  _WITH_GROUPS = False

  def _info(self) -> tfds.core.DatasetInfo:
    features = {
        "image": tfds.features.Image(shape=(8, 8, 1), dtype=np.uint8),
        "label": tfds.features.ClassLabel(num_classes=10),
        "id": tfds.features.Scalar(dtype=np.int32),
    }
    if self._WITH_GROUPS:
      features["subgroup"] = tfds.features.ClassLabel(names=["majority", "subgroup"])
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict(features),
        supervised_keys=("image", "label"),
        homepage="https://doi.org/10.24432/C50P49",
        citation=_CITATION,
        license="CC BY 4.0",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Offline: the data ships with the repository.
    return {split: _examples(split, self._WITH_GROUPS) for split in ("train", "test")}

  def _generate_examples(self, **kwargs):  # pragma: no cover - splits yield directly.
    raise NotImplementedError


class Digits(_DigitsBase):
  """UCI optical digits, 8×8, 10 classes (embedded, offline)."""


class DigitsGroups(_DigitsBase):
  """UCI optical digits with a rotated, under-represented `subgroup` (embedded, offline)."""
  _WITH_GROUPS = True


EMBEDDED_BUILDERS = {"digits": Digits, "digits_groups": DigitsGroups}


class CorruptDatasetError(RuntimeError):
  """A cached, prepared dataset cannot be read back (truncated or damaged files)."""


def corrupt_dataset_error(name: str, data_dir: str, error: BaseException, *,
                          embedded: bool, prepare: str = "") -> CorruptDatasetError:
  """One line naming the folder to delete and how the dataset comes back."""
  folder = os.path.join(os.path.abspath(data_dir), name)
  again = ("it is rebuilt offline on the next load" if embedded else
           f"then prepare it again: {prepare}")
  detail = " ".join(str(error).split())[:200]
  return CorruptDatasetError(
      f"cached dataset {name!r} in {folder} is corrupt or incomplete "
      f"({type(error).__name__}: {detail}); delete {folder} and {again}")


def prepare_embedded(name: str, data_dir: str | None) -> tfds.core.DatasetBuilder:
  """Builds an embedded dataset to ArrayRecord in `data_dir` if it is not there yet."""
  import fcntl  # Several local processes may ask at once: build once, under a file lock.
  data_dir = data_dir or tfds.core.constants.DATA_DIR
  os.makedirs(data_dir, exist_ok=True)
  with open(os.path.join(data_dir, f".{name}.lock"), "w") as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    try:  # Reads dataset_info.json / features.json of a cached build.
      builder = EMBEDDED_BUILDERS[name](data_dir=data_dir, file_format="array_record")
    except Exception as error:  # json, protobuf and OS errors: any means a damaged cache.
      raise corrupt_dataset_error(name, data_dir, error, embedded=True) from error
    if not builder.is_prepared():
      tfds.disable_progress_bar()
      builder.download_and_prepare(file_format="array_record")
      builder = EMBEDDED_BUILDERS[name](data_dir=data_dir, file_format="array_record")
  return builder
