"""The workdir: one directory holding everything a run produced.

Layout (DESIGN.md): config.json, environment.json (the first attempt's environment),
environment.jsonl (one line per attempt, never rewritten), metrics.jsonl (+ TensorBoard
events), checkpoints/, predictions/, records.jsonl, report.md, and `.lock` while a run
holds it. Only process 0 writes shared files. A workdir that already holds a different
config is refused, never overwritten; one in use by another process is refused too.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import sys
import time
from typing import Any, Callable, Iterator, Mapping

import numpy as np
from absl import logging

from tradeoffs import errors
from tradeoffs.files import (append_jsonl, atomic_write_text, is_writer, read_json,  # noqa: F401
                             read_jsonl, to_jsonable, write_json)

CONFIG_FILE = "config.json"
ENVIRONMENT_FILE = "environment.json"
ENVIRONMENTS_FILE = "environment.jsonl"
LOCK_FILE = ".lock"

class WorkdirError(errors.ConfigError):
  """The workdir cannot be used as asked (its message says what to do)."""


class ConfigMismatchError(WorkdirError):
  """The workdir was created by a run with a different config."""


class WorkdirLockedError(WorkdirError):
  """Another live process holds the workdir."""


def read_config(workdir: str) -> Any:
  """The config.json a previous run wrote, or None; a damaged file is named, not parsed."""
  path = os.path.join(workdir, CONFIG_FILE)
  if not os.path.exists(path):
    return None
  try:
    return read_json(path)
  except (json.JSONDecodeError, UnicodeDecodeError) as e:
    raise WorkdirError(f"{path}: not valid JSON ({e}); remove it or use another --workdir"
                       ) from None


def check(workdir: str, config: Any) -> bool:
  """True when `workdir` holds a run of `config` (resume); writes nothing.

  Refuses (ConfigMismatchError) when the workdir holds a different config, naming the
  keys that differ, so that two runs are never mixed in one directory.
  """
  found = read_config(workdir)
  if found is None:
    return False
  wanted = to_jsonable(config)
  if found != wanted:
    diff = [path for path, _, _ in config_diff(found, wanted)]
    raise ConfigMismatchError(
        f"--workdir={workdir} holds a run with a different config (differs at: "
        f"{', '.join(diff[:10])}{' ...' if len(diff) > 10 else ''}). Use a new --workdir, "
        "or delete the old one to start over.")
  return True


def prepare(workdir: str, config: Any, environment: Mapping[str, Any] | None = None) -> bool:
  """Creates `workdir` for `config`; returns True when resuming an existing run.

  Refuses a different config (see `check`). The environment is appended as one attempt
  (`record_environment`), never overwriting what earlier attempts recorded.
  """
  resuming = check(workdir, config)
  if is_writer():
    os.makedirs(workdir, exist_ok=True)
    if not resuming:
      write_json(os.path.join(workdir, CONFIG_FILE), to_jsonable(config))
  if environment is not None:
    record_environment(workdir, environment)
  return resuming


def record_environment(workdir: str, environment: Mapping[str, Any]) -> None:
  """Appends this attempt's environment to environment.jsonl (with `attempt` and `time`);
  environment.json is written once, by the first attempt, and kept."""
  if not is_writer():
    return
  attempts = read_environments(workdir)
  row = {**to_jsonable(dict(environment)), "attempt": len(attempts) + 1, "time": time.time()}
  append_jsonl(os.path.join(workdir, ENVIRONMENTS_FILE), row)
  first = os.path.join(workdir, ENVIRONMENT_FILE)
  if not os.path.exists(first):
    write_json(first, row)


def read_environments(workdir: str) -> list[dict[str, Any]]:
  """Every attempt's environment, oldest first (environment.json alone for old workdirs)."""
  rows = read_jsonl(os.path.join(workdir, ENVIRONMENTS_FILE))
  if not rows and os.path.exists(os.path.join(workdir, ENVIRONMENT_FILE)):
    rows = [read_json(os.path.join(workdir, ENVIRONMENT_FILE))]
  return rows


# ---------------------------------------------------------------------------------------
# The workdir lock.

_held_locks: dict[str, int] = {}


def _pid_alive(pid: int) -> bool:
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return False
  except PermissionError:
    return True
  try:  # A zombie (exited, not yet reaped) holds nothing.
    with open(f"/proc/{pid}/stat") as f:
      return f.read().rsplit(")", 1)[1].split()[0] != "Z"
  except (OSError, IndexError):
    return True


def _read_lock(path: str) -> dict[str, Any] | None:
  try:
    with open(path) as f:
      holder = json.load(f)
    return holder if isinstance(holder, dict) else None
  except (OSError, ValueError):
    return None


def _describe(holder: Mapping[str, Any]) -> str:
  since = datetime.datetime.fromtimestamp(holder.get("time", 0)).isoformat(timespec="seconds")
  return f"pid {holder.get('pid')} on host {holder.get('host')} (since {since})"


def _acquire(path: str, workdir: str) -> None:
  os.makedirs(os.path.dirname(path), exist_ok=True)
  host, pid = socket.gethostname(), os.getpid()
  deadline = time.time() + 5.0
  while True:
    try:
      fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
    except FileExistsError:
      pass
    else:
      with os.fdopen(fd, "w") as f:
        json.dump({"host": host, "pid": pid, "time": time.time(), "argv": sys.argv}, f)
        f.flush()
        os.fsync(f.fileno())
      return
    holder = _read_lock(path)
    if holder is None:  # Being written right now, or left half-written by a crash.
      try:
        age = time.time() - os.path.getmtime(path)
      except FileNotFoundError:
        continue
      if age < 5.0 and time.time() < deadline:
        time.sleep(0.05)
        continue
      reason = "an unreadable lock file"
    elif holder.get("host") == host and (holder.get("pid") == pid
                                         or not _pid_alive(int(holder.get("pid", -1)))):
      # Our own PID can only be a leftover (containers reuse PIDs): we track what we hold.
      reason = f"a stale lock of {_describe(holder)}, which is no longer running"
    else:
      raise WorkdirLockedError(
          f"--workdir={workdir} is in use by {_describe(holder)}; wait for that run to "
          f"finish or use another --workdir (if it is gone, remove {path})")
    # Take over atomically: only one of several racing processes renames the stale file.
    stale = f"{path}.stale.{host}.{pid}"
    try:
      os.rename(path, stale)
    except FileNotFoundError:
      continue
    os.remove(stale)
    logging.warning("took over %s from %s", path, reason)


def _release(path: str) -> None:
  holder = _read_lock(path)
  if holder and holder.get("pid") == os.getpid() and holder.get("host") == socket.gethostname():
    with contextlib.suppress(FileNotFoundError):
      os.remove(path)


@contextlib.contextmanager
def lock(workdir: str) -> Iterator[str | None]:
  """Claims `workdir` for this run: `with workdir.lock(path): ...`.

  Creates `<workdir>/.lock` atomically (O_EXCL) holding host, PID and start time, and
  removes it on exit, including on exceptions and after a SIGTERM that the run turned into
  a clean stop. A second process raises WorkdirLockedError at once, naming the holder; a
  lock left by a dead process on this host is taken over with a warning. Re-entrant within
  a process (a study runner and the run it calls may both take it). In a multi-process JAX
  job only process 0 takes it: the lock belongs to the job. Yields the lock path (None on
  other processes).
  """
  if not is_writer():
    yield None
    return
  path = os.path.join(os.path.abspath(workdir), LOCK_FILE)
  if path in _held_locks:
    _held_locks[path] += 1
    try:
      yield path
    finally:
      _held_locks[path] -= 1
    return
  _acquire(path, workdir)
  _held_locks[path] = 1
  try:
    yield path
  finally:
    del _held_locks[path]
    _release(path)


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

  def drop_after(self, step: int, belongs: Callable[[Mapping[str, Any]], bool] = None) -> int:
    """Removes rows with step > `step` (those `belongs` accepts; default all), so that a
    run resumed from checkpoint `step` logs each later step once. Returns rows dropped."""
    if not self._active or not os.path.exists(self._path):
      return 0
    rows = read_jsonl(self._path)
    drop = [r.get("step", 0) > step and (belongs is None or belongs(r)) for r in rows]
    if any(drop):
      atomic_write_text(self._path, "".join(
          json.dumps(r, sort_keys=True) + "\n" for r, d in zip(rows, drop) if not d))
    return sum(drop)

  def close(self) -> None:
    if self._tb is not None:
      self._tb.flush()
      self._tb.close()
