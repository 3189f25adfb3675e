"""UCI Adult and German Credit as TFDS datasets (ArrayRecord; offline, no TensorFlow).

The raw UCI files ship as package data (`tradeoffs/data/vendored/uci_adult/`,
`.../uci_german/`, gzip-compressed, with LICENSE, provenance README, SHA256SUMS and the
extraction script); `uci_adult` and `uci_german` are built from them on first use, like
`digits` (`tradeoffs.data.builders`). Every example keeps every raw column (as written in
the file, categorical codes as text) plus `id` (the row's position in its file);
`tradeoffs.data.multitask` turns them into model inputs, task labels and the sensitive
attribute.

`uci_adult` — splits `train` (adult.data, 32,561 rows) and `test` (adult.test, 16,281 rows:
its first line `|1x3 Cross validator` is not a record and its labels end in a dot,
`<=50K.`, which is stripped). Columns (`ADULT_COLUMNS`): age, workclass, fnlwgt, education,
education_num, marital_status, occupation, relationship, race, sex, capital_gain,
capital_loss, hours_per_week, native_country, income (`<=50K` / `>50K`); missing values
stay the category `?`.

`uci_german` — one split `train` of 1,000 rows (the data set has no test split;
`tradeoffs.data.multitask` draws a seeded 80/20 split, as the MTA-F reference does).
Columns (`GERMAN_COLUMNS`, UCI attributes 1–20 in order): checking_status, duration,
credit_history, purpose, credit_amount, savings, employment_since, installment_rate,
personal_status (sex and marital status: A91, A93, A94 male; A92, A95 female), debtors,
residence_since, property, age, other_installments, housing, existing_credits, job,
num_liable, telephone, foreign_worker, then `credit_class`: 1 = good, 2 = bad loan (700
good). The MTA-F reference's `is_good_loan = class − 1` is 1 for the *bad* loans; the task
here is `good_loan = (credit_class == 1)`.
"""

from __future__ import annotations

import gzip
import importlib.resources
import io
import os
from typing import Iterator

import numpy as np
import tensorflow_datasets as tfds

from tradeoffs.data import builders

VENDORED = os.fspath(importlib.resources.files("tradeoffs.data") / "vendored")
ADULT_FILES = {"train": "adult.data.gz", "test": "adult.test.gz"}
ADULT_SHA256 = {"adult.data.gz": "c7a2b4716a97f930123e0baf879188d701e798172631a654fc703d4b082907f3",
                "adult.test.gz": "8a2c1bffa6e7ce5abfa43881ae5e87c4311ebc2b3cd526c9c40a43f19f06f799"}
GERMAN_FILE = "german.data.gz"
GERMAN_SHA256 = "a4cc977b7fc38d60827f2f881d8377954ece4d7ade5d026e827307bb63395df2"

# (name, numeric?) in file order.
ADULT_COLUMNS = (
    ("age", True), ("workclass", False), ("fnlwgt", True), ("education", False),
    ("education_num", True), ("marital_status", False), ("occupation", False),
    ("relationship", False), ("race", False), ("sex", False), ("capital_gain", True),
    ("capital_loss", True), ("hours_per_week", True), ("native_country", False),
    ("income", False))
GERMAN_COLUMNS = (
    ("checking_status", False), ("duration", True), ("credit_history", False),
    ("purpose", False), ("credit_amount", True), ("savings", False),
    ("employment_since", False), ("installment_rate", True), ("personal_status", False),
    ("debtors", False), ("residence_since", True), ("property", False), ("age", True),
    ("other_installments", False), ("housing", False), ("existing_credits", True),
    ("job", False), ("num_liable", True), ("telephone", False), ("foreign_worker", False),
    ("credit_class", True))
GERMAN_FEMALE = ("A92", "A95")


def _read_gz(folder: str, name: str, sha256: str) -> list[str]:
  raw = builders.read_vendored(os.path.join(VENDORED, folder, name), sha256)
  with gzip.open(io.BytesIO(raw), "rt") as f:
    return f.read().splitlines()


def adult_rows(split: str) -> list[dict]:
  """The raw rows of one Adult split as dicts of `ADULT_COLUMNS` (header and label dots
  handled; numbers as ints)."""
  rows = []
  for line in _read_gz("uci_adult", ADULT_FILES[split], ADULT_SHA256[ADULT_FILES[split]]):
    if not line.strip() or line.startswith("|"):  # Blank tail, the test file's header.
      continue
    values = [v.strip() for v in line.split(",")]
    if len(values) != len(ADULT_COLUMNS):
      raise ValueError(f"adult {split}: a row with {len(values)} fields: {line[:80]!r}")
    row = {name: (int(v) if numeric else v) for (name, numeric), v in zip(ADULT_COLUMNS,
                                                                          values)}
    row["income"] = row["income"].rstrip(".")
    rows.append(row)
  return rows


def german_rows() -> list[dict]:
  """The 1,000 raw German Credit rows as dicts of `GERMAN_COLUMNS`."""
  rows = []
  for line in _read_gz("uci_german", GERMAN_FILE, GERMAN_SHA256):
    if not line.strip():
      continue
    values = line.split()
    if len(values) != len(GERMAN_COLUMNS):
      raise ValueError(f"german: a row with {len(values)} fields: {line[:80]!r}")
    rows.append({name: (int(v) if numeric else v)
                 for (name, numeric), v in zip(GERMAN_COLUMNS, values)})
  return rows


def _features(columns) -> tfds.features.FeaturesDict:
  spec = {name: (tfds.features.Scalar(np.int64) if numeric else tfds.features.Text())
          for name, numeric in columns}
  spec["id"] = tfds.features.Scalar(np.int32)
  return tfds.features.FeaturesDict(spec)


def _examples(rows: list[dict]) -> Iterator[tuple[int, dict]]:
  for i, row in enumerate(rows):
    yield i, {**row, "id": i}


class UciAdult(tfds.core.GeneratorBasedBuilder):
  """UCI Adult (Census Income), raw columns; train 32,561 / test 16,281 (embedded)."""
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=__doc__, features=_features(ADULT_COLUMNS),
        homepage="https://doi.org/10.24432/C5XW20", license="CC BY 4.0",
        citation="Becker, B. and Kohavi, R. (1996). Adult. UCI Machine Learning Repository.")

  def _split_generators(self, dl_manager):
    del dl_manager  # Offline: the data ships with the package.
    return {split: _examples(adult_rows(split)) for split in ADULT_FILES}

  def _generate_examples(self, **kwargs):  # pragma: no cover - splits yield directly.
    raise NotImplementedError


class UciGerman(tfds.core.GeneratorBasedBuilder):
  """Statlog German Credit, raw columns; one split of 1,000 rows (embedded)."""
  VERSION = tfds.core.Version("1.0.0")
  RELEASE_NOTES = {"1.0.0": "Initial release."}

  def _info(self) -> tfds.core.DatasetInfo:
    return self.dataset_info_from_configs(
        description=__doc__, features=_features(GERMAN_COLUMNS),
        homepage="https://doi.org/10.24432/C5NC77", license="CC BY 4.0",
        citation="Hofmann, H. (1994). Statlog (German Credit Data). UCI Machine Learning "
                 "Repository.")

  def _split_generators(self, dl_manager):
    del dl_manager
    return {"train": _examples(german_rows())}

  def _generate_examples(self, **kwargs):  # pragma: no cover
    raise NotImplementedError


builders.EMBEDDED_BUILDERS.setdefault("uci_adult", UciAdult)
builders.EMBEDDED_BUILDERS.setdefault("uci_german", UciGerman)


def load_rows(name: str, split: str, data_dir: str | None = None) -> list[dict]:
  """The rows of a split of `uci_adult` / `uci_german` read back from its TFDS build (built
  offline on first use); text columns decoded to str."""
  data_dir = data_dir or tfds.core.constants.DATA_DIR
  builders.prepare_embedded(name, data_dir)
  source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  getitems = getattr(source, "__getitems__", None)
  out = []
  for start in range(0, len(source), 4096):
    index = list(range(start, min(len(source), start + 4096)))
    out += list(getitems(index)) if getitems is not None else [source[i] for i in index]
  return [{k: (v.decode() if isinstance(v, bytes) else (v.item() if hasattr(v, "item")
                                                        else v))
           for k, v in e.items()} for e in out]
