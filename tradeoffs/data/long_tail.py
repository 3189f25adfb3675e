"""Long-tailed and held-out variants of the embedded digits set (offline, seeded, pure).

    counts = long_tail.exponential_counts(10, head=100, ratio=10)   # [100, 77, ..., 13, 10]
    train, validation = long_tail.subsample(labels, counts, validation_per_class=20, seed=0)

Two datasets are registered from these functions (built offline into ArrayRecord on first
use, like `digits`, from the same vendored file and the same 1,437 / 360 train / test split):

- `digits_long_tail`: an exponential long-tail profile over the digits train split.
  Class c keeps n_c = round(head · ratio^(−c / (C − 1))) training examples, class 0 the
  head and class 9 the tail: head = 100, ratio = 10 (imbalance 10:1), so
  n = [100, 77, 60, 46, 36, 28, 22, 17, 13, 10] (409 training images; digits has 133–149
  training images per class). Before subsampling, `validation_per_class = 20` images of
  every class are held out as a balanced `validation` split (200 images; the robust
  objectives estimate their class weights there). The test split is digits' test split,
  unchanged (balanced up to digits' own 29–42 per class), as in the long-tailed CIFAR
  benchmarks (Cao et al. 2019; Menon et al. 2021), whose test sets stay balanced.
- `digits_heldout`: the digits train split with 30 images of every class held out as a
  balanced `validation` split (300 images, e.g. a calibration split that no scored example
  belongs to); the other 1,137 train images are kept. Test unchanged.

Which images go where is `subsample(labels, counts, validation_per_class, seed=0)` on the
digits train labels: per class (in class order) one permutation drawn from
`numpy.random.default_rng(seed)`; its first `validation_per_class` images are validation,
the next n_c are train. Example ids are digits' ids, so any example can be traced back.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tradeoffs.data import builders
from tradeoffs.data import sources

LONG_TAIL = dict(head=100, ratio=10.0, validation_per_class=20, seed=0)
HELDOUT = dict(validation_per_class=30, seed=0)


def exponential_counts(num_classes: int, head: int, ratio: float) -> np.ndarray:
  """n_c = round(head · ratio^(−c/(C−1))) for c = 0..C−1 (class 0 the head, C−1 the tail)."""
  if int(num_classes) < 2:
    raise ValueError(f"num_classes={num_classes}: a long tail needs at least 2 classes")
  if int(head) < 1:
    raise ValueError(f"head={head}: the head class needs at least one example")
  if not float(ratio) >= 1.0:
    raise ValueError(f"ratio={ratio}: the imbalance ratio head/tail must be >= 1")
  c = np.arange(int(num_classes), dtype=np.float64)
  counts = np.round(int(head) * float(ratio) ** (-c / (int(num_classes) - 1))).astype(np.int64)
  if counts.min() < 1:
    raise ValueError(f"head={head}, ratio={ratio} leaves a class with no example")
  return counts


def subsample(labels: Sequence[int], counts: Sequence[int] | None, *,
              validation_per_class: int = 0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """(train indices, validation indices) into `labels`, each sorted; a pure function of
  its arguments. Per class c (in class order): one permutation of the class's indices
  from `default_rng(seed)`; the first `validation_per_class` are validation, the next
  `counts[c]` are train (`counts=None`: all the rest)."""
  labels = np.asarray(labels, np.int64)
  num_classes = int(labels.max()) + 1 if labels.size else 0
  if counts is not None and len(counts) != num_classes:
    raise ValueError(f"counts has {len(counts)} entries for {num_classes} classes")
  if int(validation_per_class) < 0:
    raise ValueError(f"validation_per_class={validation_per_class} must be >= 0")
  rng = np.random.default_rng(int(seed))
  train, validation = [], []
  for c in range(num_classes):
    members = np.flatnonzero(labels == c)
    order = rng.permutation(members)
    v = int(validation_per_class)
    n = len(members) - v if counts is None else int(counts[c])
    if v + n > len(members) or n < 0:
      raise ValueError(f"class {c} has {len(members)} examples; {v} validation + {n} train "
                       "do not fit")
    validation.append(order[:v])
    train.append(order[v:v + n])
  return (np.sort(np.concatenate(train)) if train else np.zeros(0, np.int64),
          np.sort(np.concatenate(validation)) if validation else np.zeros(0, np.int64))


def digits_splits(counts: np.ndarray | None, validation_per_class: int, seed: int
                  ) -> dict[str, np.ndarray]:
  """Row indices into the digits file of each split of a derived dataset."""
  _, labels = builders.read_digits_file()
  base = builders.digits_split_indices()
  train_rows = base["train"]
  train, validation = subsample(labels[train_rows], counts,
                                validation_per_class=validation_per_class, seed=seed)
  return {"train": train_rows[train], "validation": train_rows[validation],
          "test": base["test"]}


def long_tail_splits() -> dict[str, np.ndarray]:
  p = LONG_TAIL
  return digits_splits(exponential_counts(10, p["head"], p["ratio"]),
                       p["validation_per_class"], p["seed"])


def heldout_splits() -> dict[str, np.ndarray]:
  return digits_splits(None, HELDOUT["validation_per_class"], HELDOUT["seed"])


def _examples(rows: np.ndarray):
  images, labels = builders.read_digits_file()
  scaled = np.round(images.astype(np.float64) * 255.0 / 16.0).astype(np.uint8)
  for i in rows:
    yield int(i), {"image": builders._png(np.ascontiguousarray(scaled[i])),  # noqa: SLF001
                   "label": int(labels[i]), "id": int(i)}


class DigitsLongTail(builders._DigitsBase):  # noqa: SLF001
  """Digits with an exponential 10:1 long tail over classes and a balanced validation
  split (embedded, offline; see `tradeoffs.data.long_tail`)."""

  def _split_generators(self, dl_manager):
    del dl_manager
    return {split: _examples(rows) for split, rows in long_tail_splits().items()}


class DigitsHeldout(builders._DigitsBase):  # noqa: SLF001
  """Digits with 30 train images per class held out as a `validation` split (embedded,
  offline; see `tradeoffs.data.long_tail`)."""

  def _split_generators(self, dl_manager):
    del dl_manager
    return {split: _examples(rows) for split, rows in heldout_splits().items()}


builders.EMBEDDED_BUILDERS.setdefault("digits_long_tail", DigitsLongTail)
builders.EMBEDDED_BUILDERS.setdefault("digits_heldout", DigitsHeldout)
for _name in ("digits_long_tail", "digits_heldout"):
  if _name not in sources.DATASETS:
    sources.register_dataset(_name, sources.DatasetSpec(_name, 10, embedded=True))


def load_validation(name: str, data_dir: str | None = None) -> sources.ArraySplit:
  """The `validation` split of a dataset that has one (digits_long_tail, digits_heldout)."""
  if name not in ("digits_long_tail", "digits_heldout"):
    raise ValueError(f"dataset {name!r} has no validation split; use digits_long_tail or "
                     "digits_heldout")
  return sources.load_split(name, "validation", data_dir=data_dir)
