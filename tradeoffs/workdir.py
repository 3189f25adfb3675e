"""The workdir: one directory holding everything a run produced.

Layout (DESIGN.md): config.json, environment.json, metrics.jsonl (+ TensorBoard events),
checkpoints/, predictions/, records.jsonl, report.md. Only process 0 writes shared files.
A workdir that already holds a different config is refused, never overwritten.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from typing import Any, Mapping

import jax
import numpy as np

from tradeoffs import errors


class ConfigMismatchError(errors.ConfigError):
  """The workdir was created by a run with a different config."""


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


def prepare(workdir: str, config: Any, environment: Mapping[str, Any] | None = None) -> bool:
  """Creates `workdir` for `config`; returns True when resuming an existing run.

  Refuses (ConfigMismatchError) when the workdir holds a different config, naming the
  keys that differ, so that two runs are never mixed in one directory.
  """
  config_path = os.path.join(workdir, "config.json")
  wanted = to_jsonable(config)
  resuming = os.path.exists(config_path)
  if resuming:
    found = read_json(config_path)
    if found != wanted:
      diff = [path for path, _, _ in config_diff(found, wanted)]
      raise ConfigMismatchError(
          f"--workdir={workdir} holds a run with a different config (differs at: "
          f"{', '.join(diff[:10])}{' ...' if len(diff) > 10 else ''}). Use a new --workdir, "
          "or delete the old one to start over.")
  if is_writer():
    os.makedirs(workdir, exist_ok=True)
    if not resuming:
      write_json(config_path, wanted)
    if environment is not None:
      write_json(os.path.join(workdir, "environment.json"), environment)
  return resuming


def config_diff(a: Any, b: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
  """(dotted path, value in a, value in b) for every leaf where two nested configs differ,
  in sorted path order."""
  if isinstance(a, Mapping) and isinstance(b, Mapping):
    out = []
    for key in sorted(set(a) | set(b)):
      out += config_diff(a.get(key), b.get(key), f"{prefix}{key}.")
    return out
  return [] if a == b else [(prefix.rstrip(".") or "<root>", a, b)]


class MetricWriter:
  """Writes scalars to metrics.jsonl and TensorBoard events (process 0 only)."""

  def __init__(self, workdir: str, tensorboard: bool = True):
    self._path = os.path.join(workdir, "metrics.jsonl")
    self._active = is_writer()
    self._tb = None
    if self._active and tensorboard:
      try:
        from tensorboardX import SummaryWriter  # TF-free event writer.
        self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
      except ImportError:
        self._tb = None

  def write(self, step: int, scalars: Mapping[str, Any]) -> None:
    if not self._active:
      return
    row = {"step": int(step), "time": time.time(), **to_jsonable(dict(scalars))}
    append_jsonl(self._path, row)
    if self._tb is not None:
      for key, value in scalars.items():
        if np.ndim(value) == 0:
          self._tb.add_scalar(key, float(value), int(step))

  def close(self) -> None:
    if self._tb is not None:
      self._tb.flush()
      self._tb.close()
