"""The trade-off record: one JSON object per evaluated variant, one schema for every study.

Schema version 2 (`SCHEMA_VERSION`); every field below is validated when a record is made
and again when it is read back:

| field           | type              | meaning                                                 |
|-----------------|-------------------|---------------------------------------------------------|
| schema_version  | int               | 2; records of different versions are never merged       |
| study           | str               | the study's registered name (`tradeoffs.studies`)       |
| variant         | str               | file-safe name, unique within a workdir                 |
| technique       | str               | the recipe that produced it (dense, pruned, ...)        |
| knobs           | dict              | the settings that define the variant, as given          |
| source          | str or null       | the reference variant (CIE, verdicts)                   |
| members         | int >= 1          | population size: independent models (or ensembles) scored |
| efficiency      | dict              | params, nonzero_params, flops, weight_bytes, latency_*  |
| accuracy        | dict              | the quality block: top1, per_class, worst_class, ...    |
| hidden_costs    | dict              | cie_count and its null, churn, per-group costs, ...     |
| comparisons     | dict              | name -> `stats.Comparison.to_dict()` (verdicts)         |
| study_fields    | dict              | anything study-specific, only here                      |
| config          | dict or null      | the variant's training config (or the study's)          |
| environment     | dict              | the environment of the run that produced it            |
| seeds           | dict or null      | per-member seeds                                        |
| seconds         | number or null    | wall-clock of producing the variant                     |
| predictions     | dict or null      | {"file": relative path, "sha256": ...} of its test logits |
| ledger          | dict or null      | accountability: knobs traded, savings, who pays with the evidence (`ledger.accountability`); optional, so older records still read |

Reading adds `workdir` (where the record came from); it is never stored.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
from typing import Any, Iterable, Mapping, Sequence

from absl import logging

from tradeoffs import workdir as workdir_lib

RECORDS_FILE = "records.jsonl"
SCHEMA_VERSION = 2
REQUIRED_FIELDS = ("schema_version", "study", "variant", "technique", "members", "efficiency",
                   "accuracy", "hidden_costs")
_DICT_FIELDS = ("knobs", "efficiency", "accuracy", "hidden_costs", "comparisons",
                "study_fields")
_OPTIONAL = {"knobs": dict, "source": (str, type(None)), "comparisons": dict,
             "study_fields": dict, "config": (dict, type(None)), "environment": dict,
             "seeds": (dict, list, type(None)), "seconds": (int, float, str, type(None)),
             "predictions": (dict, type(None)), "ledger": (dict, type(None))}
FIELDS = REQUIRED_FIELDS + tuple(_OPTIONAL)
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.,=+-]*$")


class RecordError(ValueError):
  """A record that does not follow the schema (names the file and line when read)."""


def make_record(*, study: str, variant: str, efficiency: Mapping[str, Any],
                accuracy: Mapping[str, Any], hidden_costs: Mapping[str, Any] | None = None,
                members: int = 1, technique: str | None = None,
                knobs: Mapping[str, Any] | None = None, source: str | None = None,
                comparisons: Mapping[str, Any] | None = None,
                study_fields: Mapping[str, Any] | None = None, config: Any = None,
                environment: Mapping[str, Any] | None = None, seeds: Any = None,
                seconds: float | None = None, predictions: Mapping[str, Any] | None = None,
                ledger: Mapping[str, Any] | None = None, **extra: Any) -> dict[str, Any]:
  """Builds and validates a record; `extra` keywords land in `study_fields`; `ledger` is
  the optional accountability ledger (what was traded, who pays, the evidence).

  >>> r = make_record(study="prune", variant="p50", efficiency={"params": 50},
  ...                 accuracy={"top1": float("nan")}, members=8, sparsity=0.5)
  >>> r["schema_version"], r["technique"], r["members"], r["accuracy"], r["study_fields"]
  (2, 'prune', 8, {'top1': None}, {'sparsity': 0.5})
  """
  fields = dict(study_fields or {})
  fields.update(extra)
  jsonable = lambda v: _nulls(workdir_lib.to_jsonable(v))  # noqa: E731
  record = {
      "schema_version": SCHEMA_VERSION,
      "study": study,
      "variant": variant,
      "technique": technique or study,
      "knobs": workdir_lib.to_jsonable(dict(knobs or {})),
      "source": source,
      "members": int(members),
      "efficiency": jsonable(dict(efficiency)),
      "accuracy": jsonable(dict(accuracy)),
      "hidden_costs": jsonable(dict(hidden_costs or {})),
      "comparisons": jsonable(
          {k: (v.to_dict() if hasattr(v, "to_dict") else v)
           for k, v in dict(comparisons or {}).items()}),
      "study_fields": jsonable(fields),
      "config": workdir_lib.to_jsonable(config) if config is not None else None,
      "environment": workdir_lib.to_jsonable(dict(environment or {})),
      "seeds": workdir_lib.to_jsonable(seeds),
      "seconds": None if seconds is None else float(seconds),
      "predictions": dict(predictions) if predictions else None,
  }
  if ledger is not None:
    record["ledger"] = jsonable(dict(ledger))
  validate_record(record)
  return record


def _nulls(value: Any) -> Any:
  """Non-finite numbers (and to_jsonable's 'nan'/'inf' strings) become null: JSON has no NaN."""
  if isinstance(value, Mapping):
    return {k: _nulls(v) for k, v in value.items()}
  if isinstance(value, list):
    return [_nulls(v) for v in value]
  if isinstance(value, float) and not math.isfinite(value):
    return None
  if isinstance(value, str) and value in ("nan", "inf", "-inf"):
    return None
  return value


def validate_record(record: Mapping[str, Any], where: str = "") -> None:
  """Raises RecordError naming `where` (file:line) and the field when `record` is off.

  >>> r = make_record(study="prune", variant="p50", efficiency={}, accuracy={})
  >>> validate_record(dict(r, members=0), "records.jsonl:3")
  Traceback (most recent call last):
  ...
  tradeoffs.report.records.RecordError: records.jsonl:3: members=0 must be an integer >= 1 (the population size)
  """
  at = f"{where}: " if where else ""
  if not isinstance(record, Mapping):
    raise RecordError(f"{at}a record is a JSON object, got {type(record).__name__}")
  version = record.get("schema_version")
  if version != SCHEMA_VERSION:
    raise RecordError(f"{at}record schema version {version!r}; this tradeoffs reads version "
                      f"{SCHEMA_VERSION} (rerun the study into a new workdir)")
  missing = [f for f in REQUIRED_FIELDS if f not in record]
  if missing:
    raise RecordError(f"{at}record for {record.get('variant')!r} lacks {missing}")
  unknown = sorted(set(record) - set(FIELDS) - {"workdir"})
  if unknown:
    raise RecordError(f"{at}record for {record.get('variant')!r} has fields {unknown} outside "
                      "the schema; study-specific values go under 'study_fields'")
  for name in ("study", "variant", "technique"):
    if not isinstance(record[name], str) or not record[name]:
      raise RecordError(f"{at}{name}={record[name]!r} must be a non-empty string")
  if not _SAFE_NAME.match(record["variant"]):
    raise RecordError(f"{at}variant={record['variant']!r} is not file-safe (letters, digits, "
                      "'_.,=+-')")
  members = record["members"]
  if isinstance(members, bool) or not isinstance(members, int) or members < 1:
    raise RecordError(f"{at}members={members!r} must be an integer >= 1 (the population size)")
  for name in _DICT_FIELDS:
    if name in record and not isinstance(record[name], Mapping):
      raise RecordError(f"{at}{name} must be an object, got {type(record[name]).__name__}")
  for name, kind in _OPTIONAL.items():
    if name in record and not isinstance(record[name], kind):
      raise RecordError(f"{at}{name}={record[name]!r} has type {type(record[name]).__name__}")
  for name in ("efficiency", "accuracy", "hidden_costs", "ledger"):
    if record.get(name) is not None:
      _check_numbers(record[name], f"{at}{name}")


def _check_numbers(value: Any, where: str) -> None:
  """Numbers are finite or null (JSON has no NaN; to_jsonable writes 'nan' strings)."""
  if isinstance(value, Mapping):
    for k, v in value.items():
      _check_numbers(v, f"{where}.{k}")
  elif isinstance(value, list):
    for v in value:
      _check_numbers(v, where)
  elif ((isinstance(value, float) and not math.isfinite(value))
        or (isinstance(value, str) and value in ("nan", "inf", "-inf"))):
    raise RecordError(f"{where}={value!r} is not finite; store null for a missing value")


def records_path(workdir: str) -> str:
  return os.path.join(workdir, RECORDS_FILE)


def read_records(workdir: str, *, repair: bool = False) -> list[dict[str, Any]]:
  """The records of one workdir, validated; [] when it has none.

  A torn final line (an append cut short by a kill) is skipped with a warning — the
  variant is simply not finished — and with `repair` it is removed from the file so the
  next append starts on a clean line. Any other bad line raises RecordError naming the
  file and the line.

  >>> import os, tempfile
  >>> workdir = tempfile.mkdtemp()
  >>> append_records(workdir, make_record(study="s", variant="a", efficiency={}, accuracy={}))
  >>> with open(os.path.join(workdir, RECORDS_FILE), "a") as f:
  ...   _ = f.write('{"schema_version": 2, "stu')          # a torn final line (killed append)
  >>> [r["variant"] for r in read_records(workdir)]      # skipped with a warning
  ['a']
  >>> read_records(tempfile.mkdtemp())
  []
  """
  path = records_path(workdir)
  if not os.path.exists(path):
    return []
  with open(path) as f:
    text = f.read()
  lines = text.split("\n")
  out, seen = [], {}
  for number, line in enumerate(lines, 1):
    if not line.strip():
      continue
    last = number == len(lines)  # No newline after it: the append did not finish.
    try:
      record = json.loads(line)
    except json.JSONDecodeError as e:
      if last:
        logging.warning("%s:%d is a torn final line (%s); its variant will be recomputed",
                        path, number, e.msg)
        if repair and workdir_lib.is_writer():
          workdir_lib.atomic_write_text(path, "\n".join(lines[:number - 1]) + "\n"
                                        if number > 1 else "")
        break
      raise RecordError(f"{path}:{number}: not valid JSON ({e.msg}); the file is damaged — "
                        "remove that line to recompute its variant") from None
    if last:  # Parsed, but the newline is missing: finish the line before appending.
      if repair and workdir_lib.is_writer():
        workdir_lib.atomic_write_text(path, text + "\n")
    validate_record(record, f"{path}:{number}")
    key = (record["study"], record["variant"])
    if key in seen:
      raise RecordError(f"{path}:{number}: variant {record['variant']!r} is recorded twice "
                        f"(first at line {seen[key]}); records are unique per variant")
    seen[key] = number
    out.append(record)
  return out


def recorded_variants(workdir: str) -> set[str]:
  """Variants that already have a record (a resumed study skips them)."""
  return {r["variant"] for r in read_records(workdir)}


def append_records(workdir: str, records: Iterable[Mapping[str, Any]] | Mapping[str, Any]) -> None:
  """Validates and appends (process 0 only); refuses a variant the workdir already holds.

  >>> import tempfile
  >>> workdir = tempfile.mkdtemp()
  >>> r = make_record(study="prune", variant="p50", efficiency={}, accuracy={"top1": 0.9})
  >>> append_records(workdir, r)
  >>> append_records(workdir, r)
  Traceback (most recent call last):
  ...
  tradeoffs.report.records.RecordError: ... already holds variant 'p50'; records are unique per variant
  """
  if isinstance(records, Mapping):
    records = [records]
  records = [dict(r) for r in records]
  for record in records:
    record.pop("workdir", None)
    validate_record(record)
  if not workdir_lib.is_writer():
    return
  present = recorded_variants(workdir)
  for record in records:
    if record["variant"] in present:
      raise RecordError(f"{records_path(workdir)} already holds variant "
                        f"{record['variant']!r}; records are unique per variant")
    present.add(record["variant"])
  workdir_lib.append_jsonl(records_path(workdir), records)


def load_records(*workdirs: str) -> list[dict[str, Any]]:
  """Records from one or several workdirs, each tagged with the workdir it came from.

  >>> import tempfile
  >>> a, b = tempfile.mkdtemp(), tempfile.mkdtemp()
  >>> append_records(a, make_record(study="s", variant="x", efficiency={}, accuracy={}))
  >>> append_records(b, make_record(study="s", variant="x", efficiency={}, accuracy={}))
  >>> [r["workdir"] == wd for r, wd in zip(load_records(a, b), (a, b))]   # tagged, merged
  [True, True]
  """
  if not workdirs:
    raise ValueError("load_records() needs at least one workdir")
  out = []
  for wd in workdirs:
    path = records_path(wd)
    if not os.path.exists(path):
      raise FileNotFoundError(f"{wd} has no {RECORDS_FILE}: run a study into it first")
    found = read_records(wd)
    if not found:
      raise ValueError(f"{path} holds no records: the study in {wd} has not finished an "
                       "evaluation yet")
    for record in found:
      record["workdir"] = wd
      out.append(record)
  return out


def file_digest(path: str) -> str:
  h = hashlib.sha256()
  with open(path, "rb") as f:
    for chunk in iter(lambda: f.read(1 << 20), b""):
      h.update(chunk)
  return h.hexdigest()


def predictions_entry(workdir: str, relative: str) -> dict[str, str]:
  """{"file", "sha256"} of a saved predictions file, for a record's `predictions` field."""
  return {"file": relative, "sha256": file_digest(os.path.join(workdir, relative))}


def check_predictions(records: Sequence[Mapping[str, Any]]) -> None:
  """Every record's predictions file exists and has the digest recorded (report_only)."""
  for record in records:
    entry = record.get("predictions")
    if not entry:
      continue
    path = os.path.join(record.get("workdir", ""), entry["file"])
    if not os.path.exists(path):
      raise RecordError(f"{path} (predictions of variant {record['variant']!r}) is missing")
    if file_digest(path) != entry["sha256"]:
      raise RecordError(f"{path} (predictions of variant {record['variant']!r}) does not match "
                        "the digest in its record: the file changed or is damaged")


def to_dataframe(records_or_workdirs: Iterable[Any]):
  """Records (or workdirs, loaded) as a flat pandas DataFrame: one row per record, nested
  fields as dotted columns (`accuracy.top1`, `efficiency.latency_ms`, ...). Needs pandas
  (`pip install tradeoffs[notebook]`).

  >>> rows = [make_record(study="s", variant=v, efficiency={"params": p}, accuracy={"top1": t})
  ...         for v, p, t in (("dense", 100, 0.9), ("p50", 50, 0.88))]
  >>> frame = to_dataframe(rows)
  >>> frame[["variant", "efficiency.params", "accuracy.top1"]].values.tolist()
  [['dense', 100, 0.9], ['p50', 50, 0.88]]
  """
  try:
    import pandas as pd
  except ImportError as e:  # Optional: only notebooks need it.
    raise ImportError("to_dataframe needs pandas: pip install 'tradeoffs[notebook]'") from e
  items = list(records_or_workdirs)
  records = []
  for item in items:
    if isinstance(item, str):
      records += load_records(item)
    else:
      records.append(item)
  versions = {r.get("schema_version") for r in records}
  if len(versions) > 1:
    raise RecordError(f"records of schema versions {sorted(map(str, versions))} cannot be "
                      "merged; rerun the older studies")
  flat = [dict(r, config=None, environment=None) for r in records]
  frame = pd.json_normalize(flat, sep=".")
  return frame.drop(columns=[c for c in ("config", "environment") if c in frame.columns])
