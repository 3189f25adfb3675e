"""The embedded spoken_digits set: checksums, split sizes, held-out voices, audio round trip."""

import csv
import hashlib
import os

import numpy as np
import pytest

from tradeoffs.data import spoken_digits


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
  return spoken_digits.load(data_dir=str(tmp_path_factory.mktemp("tfds")))


def test_vendored_files_match_their_checksums():
  sums = spoken_digits.vendored_sha256()
  assert set(sums) == {"index.csv", "utterances.flac"}
  for name, digest in sums.items():
    with open(os.path.join(spoken_digits.VENDORED_DIR, name), "rb") as f:
      assert hashlib.sha256(f.read()).hexdigest() == digest, name
  for name in ("LICENSE", "README.md", "make_spoken_digits.py"):
    assert os.path.exists(os.path.join(spoken_digits.VENDORED_DIR, name)), name
  size = sum(os.path.getsize(os.path.join(spoken_digits.VENDORED_DIR, n)) for n in sums)
  assert size < 20e6


def test_split_sizes_ids_and_heldout_voices(dataset):
  splits = {s: getattr(dataset, s) for s in spoken_digits.SPLITS}
  assert {s: len(v) for s, v in splits.items()} == spoken_digits.SPLIT_SIZES
  ids = np.concatenate([v.ids for v in splits.values()])
  assert sorted(ids) == list(range(1200))
  seen = set(dataset.train.voices) | set(dataset.test.voices)
  assert set(dataset.heldout_voice.voices) == set(spoken_digits.HELDOUT_VOICES)
  assert not seen & set(spoken_digits.HELDOUT_VOICES) and len(seen) == 16
  for split in splits.values():  # Every family appears in every split.
    assert set(split.groups[:, 0]) == {0, 1, 2}
    assert split.group_names == ("family", "accent")


def test_targets_and_audio_round_trip_the_index(dataset):
  with open(os.path.join(spoken_digits.VENDORED_DIR, "index.csv")) as f:
    rows = {int(r["id"]): r for r in csv.DictReader(f)}
  split = dataset.test
  for i in range(len(split)):
    row = rows[int(split.ids[i])]
    n = int(split.target_lengths[i])
    assert 1 <= n <= 4 and "".join(map(str, split.targets[i, :n])) == row["digits"]
    assert np.all(split.targets[i, n:] == -1)
    assert split.lengths[i] == int(row["length"]) and split.voices[i] == row["voice"]
    assert spoken_digits.FAMILIES[split.groups[i, 0]] == row["family"]
    assert spoken_digits.ACCENTS[split.groups[i, 1]] == row["accent"]
  # The padded waveform is the FLAC segment, then zeros.
  _, samples = spoken_digits.read_vendored()
  row = rows[int(split.ids[0])]
  start, length = int(row["offset"]), int(row["length"])
  np.testing.assert_array_equal(split.waveforms[0, :length] * 32768.0,
                                samples[start:start + length].astype(np.float32))
  assert np.all(split.waveforms[0, length:] == 0)
  assert np.abs(split.waveforms).max() <= 0.9 + 1e-4


def test_too_short_a_padding_is_refused():
  example = {"audio": np.zeros(20, np.int16), "digits": "12", "family": 0, "accent": 0,
             "voice": "m1", "id": 0}
  with pytest.raises(ValueError, match="num_samples=10"):
    spoken_digits.to_split([example], 10)
