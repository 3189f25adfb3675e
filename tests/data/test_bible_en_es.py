"""The vendored bible_en_es pairs (checksums, split sizes, alignment, licences) and the BPE
vocabulary and frequency buckets of `tradeoffs.data.subwords`."""

from __future__ import annotations

import collections
import gzip
import hashlib
import os

import numpy as np
import pytest

from tradeoffs.data import bible, subwords

FOLDER = os.path.dirname(bible.FILE)


def test_checksums_and_provenance_files():
  for line in open(os.path.join(FOLDER, "SHA256SUMS")):
    digest, name = line.split()
    with open(os.path.join(FOLDER, name), "rb") as f:
      assert hashlib.sha256(f.read()).hexdigest() == digest == bible.SHA256
  for name in ("LICENSE", "README.md", "make_bible_en_es.py"):
    assert os.path.exists(os.path.join(FOLDER, name))
  assert "United Kingdom" in open(os.path.join(FOLDER, "LICENSE")).read()
  assert os.path.getsize(bible.FILE) < 4_000_000


def test_a_changed_or_missing_file_is_refused(tmp_path):
  bad = tmp_path / "bible_en_es.tsv.gz"
  bad.write_bytes(gzip.compress(b"Gen\t1\t1\ttrain\tIn the beginning\tEN el principio\tx\n"))
  with pytest.raises(ValueError, match="SHA-256"):
    bible.load_from_file("high", path=str(bad))
  with pytest.raises(FileNotFoundError, match="package data"):
    bible.read_rows(str(tmp_path / "absent.tsv.gz"))


def test_tfds_splits_have_their_sizes_and_equal_the_file():
  for split, size in bible.TFDS_SPLIT_SIZES.items():
    examples = bible.read_split(split)
    assert len(examples) == size, split
    assert len({e["id"] for e in examples}) == size
  for level in ("low", "high"):
    from_tfds, from_file = bible.load(level), bible.load_from_file(level)
    for name in ("train", "valid", "test", "test_ood"):
      assert getattr(from_tfds, name) == getattr(from_file, name), (level, name)
  assert bible.load("low", max_test_examples=5).test_ood == bible.load_from_file(
      "low", max_test_examples=5).test_ood
  assert len(bible.load("high", max_test_examples=5).test) == 5
  with pytest.raises(ValueError, match="split must be one of"):
    bible.read_split("training")


def test_split_sizes_resource_levels_and_alignment():
  rows = bible.read_rows()
  assert collections.Counter(r[3] for r in rows) == bible.SPLIT_SIZES
  assert all(len(r[4].split()) <= 40 and r[5] and r[6] for r in rows)
  assert all("<" not in r[4] and "<" not in r[5] for r in rows)  # markup stripped
  high, low = bible.load("high"), bible.load("low")
  assert len(high.train) == 25778 and len(low.train) == 6000
  assert set(low.train.refs) <= set(high.train.refs)
  assert not set(high.train.refs) & set(high.test.refs)
  assert not set(high.valid.refs) & set(high.test.refs)
  assert high.test_ood.refs == high.test.refs and high.test_ood.target == high.test.target
  assert high.test_ood.source != high.test.source
  first = dict(zip(high.train.refs, zip(high.train.source, high.train.target)))["Gen.1.1"]
  assert first == ("In the beginning, God created the heavens and the earth.",
                   "EN el principio crió Dios los cielos y la tierra.")
  with pytest.raises(ValueError, match="resource must be one of"):
    bible.load("medium")


def test_bpe_hand_example():
  # Words 'low'x5 'lower'x2 'newest'x6 'widest'x3 (Sennrich et al.'s example).
  text = ["low"] * 5 + ["lower"] * 2 + ["newest"] * 6 + ["widest"] * 3
  vocab = subwords.train_bpe([" ".join(text)], num_merges=3)
  # Pair counts: (e,s)=9, (s,t</w>)=9, ...; tie -> lexicographically smaller (e,s) first;
  # then (es,t</w>)=9; then (l,o)=7.
  assert vocab.merges == (("e", "s"), ("es", "t</w>"), ("l", "o"))
  assert vocab.tokens("lowest") == ["lo", "w", "est</w>"]
  assert vocab.encode("low")[-1] == subwords.EOS
  assert vocab.encode("lo@")[-2] == subwords.UNK  # '@' was never seen


def test_bpe_round_trip_determinism_and_length_errors():
  pairs = bible.load("low")
  texts = pairs.train.source[:300] + pairs.train.target[:300]
  vocab = subwords.train_bpe(texts, num_merges=200)
  assert vocab.digest == subwords.train_bpe(list(texts), num_merges=200).digest
  for text in texts[::12]:  # characters seen in training round-trip exactly
    assert vocab.decode(vocab.encode(text)) == " ".join(text.split())
  batch = vocab.encode_batch(["a b", "c"], max_length=8)
  assert batch.shape == (2, 8) and batch[1, 1] == subwords.EOS and batch[1, 2] == 0
  with pytest.raises(ValueError, match="more than the model's max_length 3"):
    vocab.encode_batch([pairs.test.source[0]], max_length=3)


def test_frequency_buckets_partition_by_mean_frequency():
  freq = np.array([0, 0, 0, 0, 1, 10, 100, 1000])
  ids = np.array([[4, 4, 2, 0], [7, 2, 0, 0], [5, 6, 2, 0], [4, 7, 2, 0], [6, 2, 0, 0],
                  [5, 2, 0, 0]])
  # means: 1, 1000, 55, 500.5, 100, 10 -> order by mean: rows 0,5,2,4,3,1
  buckets = subwords.frequency_buckets(ids, freq, 3)
  np.testing.assert_array_equal(buckets, [0, 2, 1, 2, 1, 0])
  rng = np.random.default_rng(0)
  many = rng.integers(4, 8, size=(103, 5))
  for k in (1, 5, 103):
    b = subwords.frequency_buckets(many, freq, k)
    assert set(b) == set(range(k)) and len(b) == 103  # every sentence in exactly one
    assert np.ptp(np.bincount(b)) <= 1
  with pytest.raises(ValueError, match="num_buckets must be an int >= 1, got 0"):
    subwords.frequency_buckets(ids, freq, 0)
