"""`spoken_digits`: 1,200 synthesized utterances of 1-4 digit strings at 8 kHz (offline).

    ds = spoken_digits.load()                 # built offline into ArrayRecord on first use
    ds.train.waveforms [N, T] float32, ds.train.lengths [N], ds.train.targets [N, 4] (-1 pad)
    ds.test / ds.heldout_voice; .groups [N, 2] = (voice family, accent), .group_names

The audio ships as package data (`tradeoffs/data/vendored/spoken_digits/`: one FLAC stream,
`index.csv`, LICENSE, README.md, SHA256SUMS and the espeak-ng script that made it). Building
the TFDS dataset decodes the FLAC with `soundfile` (a pip wheel that bundles libsndfile), so
loading needs no system package and downloads nothing.

Splits (fixed by the generator, seed 0): `train` 900 and `test` 150 utterances of 16 seen
voices; `heldout_voice` 150 utterances of 3 voices (m8, f5, klatt6; one per family) that
no training utterance uses: a speaker-shift test. Group attributes: `family` (male, female,
klatt) and `accent` (six English accents). Targets are the digits 0-9; a CTC model
reserves one more class for the blank.
"""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import importlib.resources
import os

import numpy as np
import tensorflow_datasets as tfds

from tradeoffs.data import builders
from tradeoffs.data import sources

NAME = "spoken_digits"
VENDORED_DIR = os.fspath(importlib.resources.files("tradeoffs.data") / "vendored" / NAME)
SAMPLE_RATE = 8000
MAX_DIGITS = 4
NUM_CLASSES = 11  # digits 0-9 and the CTC blank (10)
BLANK = 10
# 15,440 samples (1.93 s) hold the longest utterance (15,103) and give the extractor 48
# frames, a multiple of every squeeze factor up to 16 (`tradeoffs.models.speech`).
NUM_SAMPLES = 15440
SPLITS = ("train", "test", "heldout_voice")
SPLIT_SIZES = {"train": 900, "test": 150, "heldout_voice": 150}
FAMILIES = ("male", "female", "klatt")
ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan")
GROUP_NAMES = ("family", "accent")
HELDOUT_VOICES = ("m8", "f5", "klatt6")


def vendored_sha256() -> dict[str, str]:
  """File name -> SHA-256 as listed in the vendored SHA256SUMS."""
  with open(os.path.join(VENDORED_DIR, "SHA256SUMS")) as f:
    return {name: digest for digest, name in (line.split() for line in f if line.strip())}


def read_vendored() -> tuple[list[dict[str, str]], np.ndarray]:
  """(index rows, all samples int16) from the vendored files, checked against SHA256SUMS."""
  import soundfile  # pip wheel with libsndfile bundled; only building needs it.
  expected = vendored_sha256()
  raw = {}
  for name in ("index.csv", "utterances.flac"):
    path = os.path.join(VENDORED_DIR, name)
    if not os.path.exists(path):
      raise FileNotFoundError(f"the embedded spoken_digits file {path} is missing; it ships "
                              "as package data (reinstall tradeoffs)")
    with open(path, "rb") as f:
      raw[name] = f.read()
    if hashlib.sha256(raw[name]).hexdigest() != expected[name]:
      raise ValueError(f"{path} does not match its SHA-256 in SHA256SUMS; reinstall tradeoffs")
  rows = list(csv.DictReader(raw["index.csv"].decode().splitlines()))
  samples, rate = soundfile.read(io.BytesIO(raw["utterances.flac"]), dtype="int16")
  if rate != SAMPLE_RATE:
    raise ValueError(f"spoken_digits audio is {rate} Hz, expected {SAMPLE_RATE}")
  return rows, samples


def _examples(split: str):
  rows, samples = read_vendored()
  for row in rows:
    if row["split"] != split:
      continue
    start, length = int(row["offset"]), int(row["length"])
    yield int(row["id"]), {
        "audio": samples[start:start + length], "digits": row["digits"],
        "family": row["family"], "accent": row["accent"], "voice": row["voice"],
        "speed": int(row["speed"]), "pitch": int(row["pitch"]), "id": int(row["id"])}


class SpokenDigits(tfds.core.GeneratorBasedBuilder):
  """Synthesized spoken digit strings, 8 kHz (embedded, offline)."""
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release: 1,200 espeak-ng utterances."}

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=__doc__,
        features=tfds.features.FeaturesDict({
            "audio": tfds.features.Tensor(shape=(None,), dtype=np.int16),
            "digits": tfds.features.Text(),
            "family": tfds.features.ClassLabel(names=list(FAMILIES)),
            "accent": tfds.features.ClassLabel(names=list(ACCENTS)),
            "voice": tfds.features.Text(),
            "speed": tfds.features.Scalar(dtype=np.int32),
            "pitch": tfds.features.Scalar(dtype=np.int32),
            "id": tfds.features.Scalar(dtype=np.int32),
        }),
        homepage="https://github.com/espeak-ng/espeak-ng",
        license="see tradeoffs/data/vendored/spoken_digits/LICENSE",
    )

  def _split_generators(self, dl_manager):
    del dl_manager  # Offline: the audio ships with the package.
    return {split: _examples(split) for split in SPLITS}

  def _generate_examples(self, **kwargs):  # pragma: no cover - splits yield directly.
    raise NotImplementedError


builders.EMBEDDED_BUILDERS[NAME] = SpokenDigits


@dataclasses.dataclass(frozen=True)
class SpeechSplit:
  """One split in memory: zero-padded waveforms in [-1, 1] and padded digit targets."""
  waveforms: np.ndarray   # float32 [N, T]
  lengths: np.ndarray     # int32 [N], samples before padding
  targets: np.ndarray     # int32 [N, MAX_DIGITS], digits 0-9, -1 after the string ends
  ids: np.ndarray         # int32 [N]
  groups: np.ndarray      # int32 [N, 2]: family, accent
  group_names: tuple[str, ...]
  voices: tuple[str, ...]

  def __len__(self) -> int:
    return len(self.ids)

  # The names the trainer reads (`tradeoffs.train.population.to_device`, `predict`).
  @property
  def images(self) -> np.ndarray:
    return self.waveforms

  @property
  def labels(self) -> np.ndarray:
    return self.targets

  @property
  def num_classes(self) -> int:
    return NUM_CLASSES

  @property
  def target_lengths(self) -> np.ndarray:
    return (self.targets >= 0).sum(axis=1).astype(np.int32)

  def take(self, index) -> "SpeechSplit":
    return dataclasses.replace(
        self, waveforms=self.waveforms[index], lengths=self.lengths[index],
        targets=self.targets[index], ids=self.ids[index], groups=self.groups[index],
        voices=tuple(np.asarray(self.voices, dtype=object)[index]))


@dataclasses.dataclass(frozen=True)
class SpeechDataset:
  """The three splits; `num_classes` counts the CTC blank (digits 0-9, blank 10)."""
  train: SpeechSplit
  test: SpeechSplit
  heldout_voice: SpeechSplit
  name: str = NAME

  @property
  def num_classes(self) -> int:
    return NUM_CLASSES

  @property
  def input_shape(self) -> tuple[int, ...]:
    return tuple(self.train.waveforms.shape[1:])

  @property
  def group_names(self) -> tuple[str, ...]:
    return GROUP_NAMES


def _decode_text(value) -> str:
  return value.decode() if isinstance(value, bytes) else str(value)


def to_split(examples, num_samples: int) -> SpeechSplit:
  """Stacks decoded examples (sorted by id), padding or refusing audio beyond num_samples."""
  examples = sorted(examples, key=lambda e: int(e["id"]))
  longest = max(len(e["audio"]) for e in examples)
  if longest > num_samples:
    raise ValueError(f"an utterance has {longest} samples, more than num_samples="
                     f"{num_samples}; raise num_samples (the longest is 15,103)")
  waves = np.zeros((len(examples), num_samples), np.float32)
  targets = np.full((len(examples), MAX_DIGITS), -1, np.int32)
  for i, e in enumerate(examples):
    audio = np.asarray(e["audio"], np.float32) / 32768.0
    waves[i, :len(audio)] = audio
    digits = _decode_text(e["digits"])
    targets[i, :len(digits)] = [int(c) for c in digits]
  return SpeechSplit(
      waveforms=waves, lengths=np.array([len(e["audio"]) for e in examples], np.int32),
      targets=targets, ids=np.array([int(e["id"]) for e in examples], np.int32),
      groups=np.array([[int(e["family"]), int(e["accent"])] for e in examples], np.int32),
      group_names=GROUP_NAMES, voices=tuple(_decode_text(e["voice"]) for e in examples))


def load(*, num_samples: int = NUM_SAMPLES, data_dir: str | None = None,
         max_train_examples: int | None = None,
         max_test_examples: int | None = None) -> SpeechDataset:
  """All three splits, every waveform zero-padded to `num_samples`; the first
  `max_train_examples` / `max_test_examples` (by id) of train / each test split when given."""
  data_dir = data_dir or sources.default_data_dir()
  builders.prepare_embedded(NAME, data_dir)
  splits = {}
  for split in SPLITS:
    source = tfds.data_source(NAME, split=split, data_dir=data_dir, download=False)
    try:
      examples = [source[i] for i in range(len(source))]
    except Exception as error:  # Truncated shards, undecodable records.
      raise builders.corrupt_dataset_error(NAME, data_dir, error, embedded=True) from error
    limit = max_train_examples if split == "train" else max_test_examples
    out = to_split(examples, int(num_samples))
    splits[split] = out.take(slice(0, limit)) if limit else out
  return SpeechDataset(**splits)


# `tradeoffs.data.load("spoken_digits")` (and so a training config's dataset.name) loads it.
sources.register_dataset(NAME, sources.DatasetSpec(NAME, NUM_CLASSES, loader=load,
                                                   group_keys=GROUP_NAMES))
