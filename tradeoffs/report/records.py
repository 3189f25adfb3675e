"""The trade-off record: one JSON object per evaluated configuration (DESIGN.md).

Fields: study, variant, config, environment, efficiency, accuracy, hidden_costs, members.
The frontier and the report are functions of these records only.
"""

from __future__ import annotations

import os
from typing import Any, Iterable, Mapping

from tradeoffs import workdir as workdir_lib

RECORDS_FILE = "records.jsonl"
REQUIRED_FIELDS = ("study", "variant", "efficiency", "accuracy", "hidden_costs", "members")


def make_record(*, study: str, variant: str, efficiency: Mapping[str, Any],
                accuracy: Mapping[str, Any], hidden_costs: Mapping[str, Any] | None = None,
                members: int = 1, config: Any = None,
                environment: Mapping[str, Any] | None = None,
                **extra: Any) -> dict[str, Any]:
  """Builds a record; `extra` holds study-specific fields (e.g. sparsity, S, seconds)."""
  record = {
      "study": study,
      "variant": variant,
      "config": workdir_lib.to_jsonable(config) if config is not None else None,
      "environment": dict(environment or {}),
      "efficiency": workdir_lib.to_jsonable(dict(efficiency)),
      "accuracy": workdir_lib.to_jsonable(dict(accuracy)),
      "hidden_costs": workdir_lib.to_jsonable(dict(hidden_costs or {})),
      "members": int(members),
  }
  record.update(workdir_lib.to_jsonable(extra))
  return record


def append_records(workdir: str, records: Iterable[Mapping[str, Any]] | Mapping[str, Any]) -> None:
  if isinstance(records, Mapping):
    records = [records]
  records = list(records)
  for record in records:
    missing = [f for f in REQUIRED_FIELDS if f not in record]
    if missing:
      raise ValueError(f"trade-off record for {record.get('variant')!r} lacks {missing}")
  if workdir_lib.is_writer():
    workdir_lib.append_jsonl(os.path.join(workdir, RECORDS_FILE), records)


def load_records(*workdirs: str) -> list[dict[str, Any]]:
  """Records from one or several workdirs, each tagged with the workdir it came from."""
  if not workdirs:
    raise ValueError("load_records() needs at least one workdir")
  out = []
  for wd in workdirs:
    path = os.path.join(wd, RECORDS_FILE)
    if not os.path.exists(path):
      raise FileNotFoundError(f"{wd} has no {RECORDS_FILE}: run a study into it first")
    found = workdir_lib.read_jsonl(path)
    if not found:
      raise ValueError(f"{path} holds no records: the study in {wd} has not finished an "
                       "evaluation yet")
    for record in found:
      record.setdefault("workdir", wd)
      out.append(record)
  return out
