"""`bible_en_es`: verse-aligned WEB English → Reina-Valera 1909 Spanish, a TFDS dataset, offline.

    pairs = bible.load("low")      # Pairs: train / valid / test / test_ood, each (src, tgt)
    pairs.train.source[0], pairs.train.target[0]

The pairs ship as package data (`vendored/bible_en_es/`: one gzipped TSV with its LICENSE,
provenance README, SHA256SUMS and the pysword script that made it). On first use the TFDS
builder `BibleEnEs` writes them to ArrayRecord in the TFDS data dir (the checksum is checked
while building); `load` reads them back with `tfds.data_source`. Splits: `train` (25,778
pairs, the high-resource level), `train_low` (a fixed 6,000 of them: the low-resource level,
a seeded permutation), `valid` (1,392), `test` (1,423) and `test_kjv` (the test verses with
the King James Version as source: the out-of-domain test). Each example: `source`,
`target`, `ref` ("Gen.1.1") and `id` (its row in the file; reads are sorted by it). Needs
neither pysword nor SWORD. `load_from_file` reads the file directly (the reference the
tests compare the dataset with).
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import os

import numpy as np
import tensorflow_datasets as tfds

from tradeoffs.data import builders
from tradeoffs.data import sources

FILE = os.path.join(os.path.dirname(__file__), "vendored", "bible_en_es", "bible_en_es.tsv.gz")
SHA256 = "6633e527cb5bd89abc99be2b3a615c8eced6691fec39302bae96a8e0f594665b"
NAME = "bible_en_es"
RESOURCE_LEVELS = {"low": 6000, "high": None}
SPLIT_SIZES = {"train": 25778, "valid": 1392, "test": 1423}  # the file's split column
# The TFDS splits: resource level -> training split, plus the shared evaluation splits.
TRAIN_SPLITS = {"high": "train", "low": "train_low"}
TFDS_SPLIT_SIZES = {"train": 25778, "train_low": 6000, "valid": 1392, "test": 1423,
                    "test_kjv": 1423}


@dataclasses.dataclass(frozen=True)
class Side:
  source: tuple[str, ...]
  target: tuple[str, ...]
  refs: tuple[str, ...]  # "Gen.1.1"

  def __len__(self) -> int:
    return len(self.source)


@dataclasses.dataclass(frozen=True)
class Pairs:
  train: Side
  valid: Side
  test: Side
  test_ood: Side  # the test verses, KJV source


@functools.lru_cache(maxsize=1)
def read_rows(path: str = FILE) -> tuple[tuple[str, ...], ...]:
  """The file's rows (book, chapter, verse, split, web, rv1909, kjv), checksum-checked."""
  raw = builders.read_vendored(path, SHA256)
  lines = gzip.decompress(raw).decode("utf-8").splitlines()
  return tuple(tuple(line.split("\t")) for line in lines if line)


def _check_resource(resource: str) -> None:
  if resource not in RESOURCE_LEVELS:
    raise ValueError(f"resource must be one of {sorted(RESOURCE_LEVELS)}, got {resource!r}")


def _split_rows(split: str, path: str = FILE) -> list[tuple[int, tuple[str, ...]]]:
  """(row index, row) of a TFDS split, in file order (`split_rows('train_low')` is the
  low-resource subset: `RESOURCE_LEVELS['low']` rows of `train` by a seeded permutation)."""
  rows = read_rows(path)
  column = {"train_low": "train", "test_kjv": "test"}.get(split, split)
  chosen = [(i, r) for i, r in enumerate(rows) if r[3] == column]
  if split == "train_low":
    keep = np.sort(np.random.default_rng(0).permutation(len(chosen))[:RESOURCE_LEVELS["low"]])
    chosen = [chosen[i] for i in keep]
  return chosen


def _example(index: int, row: tuple[str, ...], split: str) -> dict:
  return {"source": row[6] if split == "test_kjv" else row[4], "target": row[5],
          "ref": f"{row[0]}.{row[1]}.{row[2]}", "id": index}


def _side(examples) -> Side:
  return Side(source=tuple(e["source"] for e in examples),
              target=tuple(e["target"] for e in examples),
              refs=tuple(e["ref"] for e in examples))


def load_from_file(resource: str = "high", max_test_examples: int | None = None,
                   path: str = FILE) -> Pairs:
  """`load` straight from the vendored file, without TFDS."""
  _check_resource(resource)
  def side(split, limit=None):
    return _side([_example(i, r, split) for i, r in _split_rows(split, path)][:limit])
  limit = max_test_examples or None
  return Pairs(train=side(TRAIN_SPLITS[resource]), valid=side("valid"),
               test=side("test", limit), test_ood=side("test_kjv", limit))


def _examples(split: str):
  for i, row in _split_rows(split):
    yield i, _example(i, row, split)


class BibleEnEs(tfds.core.GeneratorBasedBuilder):
  """Verse-aligned English → Spanish Bible pairs, KJV out-of-domain source (embedded)."""
  name = NAME
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: 28,593 verses, five splits."}

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "source": tfds.features.Text(), "target": tfds.features.Text(),
            "ref": tfds.features.Text(), "id": tfds.features.Scalar(dtype=np.int32)}),
        supervised_keys=("source", "target"),
        homepage="https://ebible.org/web/",
        license="see tradeoffs/data/vendored/bible_en_es/LICENSE")

  def _split_generators(self, dl_manager):
    del dl_manager  # Offline: the pairs ship with the package.
    return {split: _examples(split) for split in TFDS_SPLIT_SIZES}

  def _generate_examples(self, **kwargs):  # pragma: no cover - splits yield directly.
    raise NotImplementedError


builders.EMBEDDED_BUILDERS[NAME] = BibleEnEs


def _text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def read_split(split: str, data_dir: str | None = None) -> list[dict]:
  """A TFDS split's examples (source/target/ref as str, id as int), sorted by id; the set is
  built offline into `data_dir` (default: the TFDS data dir) on first use."""
  if split not in TFDS_SPLIT_SIZES:
    raise ValueError(f"split must be one of {sorted(TFDS_SPLIT_SIZES)}, got {split!r}")
  data_dir = data_dir or sources.default_data_dir()
  builders.prepare_embedded(NAME, data_dir)
  source = tfds.data_source(NAME, split=split, data_dir=data_dir, download=False)
  try:
    raw = source.__getitems__(list(range(len(source))))
  except Exception as error:  # Truncated shards, undecodable records.
    raise builders.corrupt_dataset_error(NAME, data_dir, error, embedded=True) from error
  examples = [{"source": _text(e["source"]), "target": _text(e["target"]),
               "ref": _text(e["ref"]), "id": int(e["id"])} for e in raw]
  return sorted(examples, key=lambda e: e["id"])


@functools.lru_cache(maxsize=8)
def load(resource: str = "high", max_test_examples: int | None = None,
         data_dir: str | None = None) -> Pairs:
  """The pairs at resource level 'low' or 'high' from the TFDS dataset; optionally the first
  `max_test_examples` test verses only (the same verses in `test_ood`)."""
  _check_resource(resource)
  limit = max_test_examples or None
  return Pairs(train=_side(read_split(TRAIN_SPLITS[resource], data_dir)),
               valid=_side(read_split("valid", data_dir)),
               test=_side(read_split("test", data_dir)[:limit]),
               test_ood=_side(read_split("test_kjv", data_dir)[:limit]))
