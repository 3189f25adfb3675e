"""The vendored `bible_en_es` pairs (WEB → RV1909, KJV as out-of-domain source), offline.

    pairs = bible.load("low")      # Pairs: train / valid / test / test_ood, each (src, tgt)
    pairs.train.source[0], pairs.train.target[0]

Provenance, licences and the split rule: `vendored/bible_en_es/README.md`. Resource levels:
'high' is every training pair (25,778), 'low' a fixed 6,000 of them (seeded permutation), the
same valid/test sets for both. Needs neither pysword nor SWORD.
"""

from __future__ import annotations

import dataclasses
import functools
import gzip
import os

import numpy as np

from tradeoffs.data import builders

FILE = os.path.join(os.path.dirname(__file__), "vendored", "bible_en_es", "bible_en_es.tsv.gz")
SHA256 = "6633e527cb5bd89abc99be2b3a615c8eced6691fec39302bae96a8e0f594665b"
RESOURCE_LEVELS = {"low": 6000, "high": None}
SPLIT_SIZES = {"train": 25778, "valid": 1392, "test": 1423}


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


def load(resource: str = "high", max_test_examples: int | None = None) -> Pairs:
  """The pairs at resource level 'low' or 'high'; optionally the first test verses only."""
  if resource not in RESOURCE_LEVELS:
    raise ValueError(f"resource must be one of {sorted(RESOURCE_LEVELS)}, got {resource!r}")
  rows = read_rows()

  def side(split):
    return [r for r in rows if r[3] == split]

  def make(chosen, source_column=4):
    return Side(source=tuple(r[source_column] for r in chosen),
                target=tuple(r[5] for r in chosen),
                refs=tuple(f"{r[0]}.{r[1]}.{r[2]}" for r in chosen))

  train = side("train")
  keep = RESOURCE_LEVELS[resource]
  if keep is not None:
    order = np.sort(np.random.default_rng(0).permutation(len(train))[:keep])
    train = [train[i] for i in order]
  test = side("test")[:max_test_examples] if max_test_examples else side("test")
  return Pairs(train=make(train), valid=make(side("valid")), test=make(test),
               test_ood=make(test, source_column=6))
