"""Files every part of the project writes: atomic text, JSON and JSON lines, and which
process writes them.

Generic I/O with no notion of a workdir, so technique packages (which may not import
`tradeoffs.workdir`) can write their own outputs; `tradeoffs.workdir` re-exports these.
"""

from __future__ import annotations

import json
import os
import tempfile
from typing import Any, Mapping

import jax
import numpy as np


def is_writer() -> bool:
  """Only process 0 writes files shared by all processes."""
  return jax.process_index() == 0


def to_jsonable(value: Any) -> Any:
  """Converts configs, numpy and JAX values into plain JSON types."""
  if hasattr(value, "to_dict"):
    value = value.to_dict()
  if isinstance(value, Mapping):
    return {str(k): to_jsonable(v) for k, v in value.items()}
  if isinstance(value, (list, tuple)):
    return [to_jsonable(v) for v in value]
  if isinstance(value, (np.ndarray, jax.Array)):
    return to_jsonable(np.asarray(value).tolist())
  if isinstance(value, np.generic):
    return value.item()
  if isinstance(value, float) and not np.isfinite(value):
    return str(value)
  return value


def atomic_write_text(path: str, text: str) -> None:
  """Writes via a temporary file and rename, so readers never see half a file."""
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp = tempfile.mkstemp(dir=directory, prefix=".tmp_")
  with os.fdopen(fd, "w") as f:
    f.write(text)
  os.replace(tmp, path)


def write_json(path: str, value: Any) -> None:
  atomic_write_text(path, json.dumps(to_jsonable(value), indent=2, sort_keys=True) + "\n")


def read_json(path: str) -> Any:
  with open(path) as f:
    return json.load(f)


def append_jsonl(path: str, rows: Any) -> None:
  """Appends one JSON object per row (a dict or a list of dicts)."""
  if isinstance(rows, Mapping):
    rows = [rows]
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  with open(path, "a") as f:
    for row in rows:
      f.write(json.dumps(to_jsonable(row), sort_keys=True) + "\n")


def read_jsonl(path: str) -> list[dict[str, Any]]:
  if not os.path.exists(path):
    return []
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]
