"""Orbax checkpoints of the whole train state, restored into the current mesh's shardings.

Saves are atomic (Orbax writes to a temporary directory and renames it), so a run killed at
any moment resumes from the last complete checkpoint. `PreemptionGuard` turns SIGTERM into
"save at the next step boundary and exit cleanly".
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp


def _arrays(state: Any) -> Any:
  """The state's array leaves (static fields such as apply_fn are not saved)."""
  return {"step": state.step, "params": state.params, "batch_stats": state.batch_stats,
          "opt_state": state.opt_state, "rngs": state.rngs}


class Checkpointer:
  """A thin wrapper over `ocp.CheckpointManager` for TrainState pytrees."""

  def __init__(self, directory: str, max_to_keep: int = 2, asynchronous: bool = True):
    """Async saves copy the state to host and write it in a background thread, so
    training continues while the previous checkpoint is written."""
    self.directory = os.path.abspath(directory)
    self._manager = ocp.CheckpointManager(
        self.directory,
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                             enable_async_checkpointing=asynchronous))

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def save(self, step: int, state: Any, wait: bool = False) -> None:
    self._manager.save(int(step), args=ocp.args.StandardSave(_arrays(state)), force=True)
    if wait:
      self._manager.wait_until_finished()

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def restore(self, state_like: Any, step: int | None = None) -> Any:
    """Restores into the shapes, dtypes and shardings of `state_like`."""
    step = self.latest_step() if step is None else step
    if step is None:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _arrays(state_like))
    restored = self._manager.restore(step, args=ocp.args.StandardRestore(abstract))
    return state_like.replace(**restored)

  def close(self) -> None:
    self._manager.wait_until_finished()
    self._manager.close()


class PreemptionGuard:
  """Records SIGTERM (preemption) so the loop can save and exit at a step boundary.

  With several processes, `should_stop()` is true on every process as soon as any of them
  received the signal, so all of them take part in the final (collective) save.
  """

  def __init__(self, signals: tuple[int, ...] = (signal.SIGTERM,)):
    self._event = threading.Event()
    self._previous = {}
    if threading.current_thread() is threading.main_thread():
      for sig in signals:
        self._previous[sig] = signal.signal(sig, self._handle)

  def _handle(self, signum, frame):
    del signum, frame
    self._event.set()

  def should_stop(self) -> bool:
    flag = self._event.is_set()
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      flags = multihost_utils.process_allgather(np.array([flag], np.int32))
      flag = bool(np.max(flags))
    return flag

  def restore_handlers(self) -> None:
    for sig, handler in self._previous.items():
      signal.signal(sig, handler)


class _DropOrbaxInfo:
  """absl logging filter: Orbax logs every save step at INFO; keep its warnings only."""

  def filter(self, record) -> bool:
    import logging as std_logging
    return record.levelno >= std_logging.WARNING or "/orbax/" not in record.pathname


def quiet_orbax() -> None:
  from absl import logging as absl_logging
  handler = absl_logging.get_absl_handler()
  if not any(isinstance(f, _DropOrbaxInfo) for f in handler.filters):
    handler.addFilter(_DropOrbaxInfo())
