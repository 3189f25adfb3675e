"""Orbax checkpoints of the whole train state, restored into the current mesh's shardings.

Saves are atomic (Orbax writes to a temporary directory and renames it), so a run killed at
any moment resumes from the last complete checkpoint. Each checkpoint also stores a
fingerprint of every array (a wrapping uint32 sum of its bits), because Orbax restores a
bit-flipped data file without complaint; `restore` falls back past unreadable or
mismatching checkpoints to the newest intact one. `PreemptionGuard` turns SIGTERM into
"save at the next step boundary and exit cleanly".
"""

from __future__ import annotations

import os
import signal
import threading
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import orbax.checkpoint as ocp
from absl import logging

FINGERPRINT = "fingerprint"
CORRUPT_SUFFIX = ".corrupt"


class CheckpointCorruptError(ValueError):
  """No checkpoint in the directory can be restored."""


def _arrays(state: Any) -> Any:
  """The state's array leaves (static fields such as apply_fn are not saved); step
  extensions' carried state only when there is some, so older checkpoints still match."""
  arrays = {"step": state.step, "params": state.params, "batch_stats": state.batch_stats,
            "opt_state": state.opt_state, "rngs": state.rngs}
  extension_state = getattr(state, "extension_state", None)
  if extension_state:
    arrays["extension_state"] = extension_state
  return arrays


@jax.jit
def _fingerprint(tree: Any) -> jax.Array:
  """One uint32 per leaf: the wrapping sum of the leaf's bits (any single flip changes it)."""
  def one(x):
    x = jnp.asarray(x)
    if x.dtype == jnp.bool_:
      x = x.astype(jnp.uint8)
    width = {1: jnp.uint8, 2: jnp.uint16, 4: jnp.uint32, 8: jnp.uint32}[x.dtype.itemsize]
    bits = jax.lax.bitcast_convert_type(x, width).astype(jnp.uint32)
    return jnp.sum(bits, dtype=jnp.uint32)
  leaves = jax.tree.leaves(tree)
  return jnp.stack([one(x) for x in leaves]) if leaves else jnp.zeros((0,), jnp.uint32)


def _first_line(error: BaseException) -> str:
  text = str(error).strip().splitlines()
  return f"{type(error).__name__}: {text[0][:200] if text else ''}"


class Checkpointer:
  """A thin wrapper over `ocp.CheckpointManager` for TrainState pytrees."""

  def __init__(self, directory: str, max_to_keep: int = 2, asynchronous: bool = True):
    """Async saves copy the state to host and write it in a background thread, so
    training continues while the previous checkpoint is written."""
    self.directory = os.path.abspath(directory)
    self._manager = ocp.CheckpointManager(
        self.directory, item_handlers=ocp.StandardCheckpointHandler(),
        options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True,
                                             enable_async_checkpointing=asynchronous))
    self._last_saved: int | None = None

  def latest_step(self) -> int | None:
    return self._manager.latest_step()

  def all_steps(self) -> list[int]:
    return sorted(int(s) for s in self._manager.all_steps())

  def save(self, step: int, state: Any, wait: bool = False) -> bool:
    """Saves `state` as `step`; a step already saved (e.g. by the periodic save just
    before a preemption save) is not written twice. Returns whether it wrote."""
    step = int(step)
    wrote = False
    if step != self._last_saved and step not in self._manager.all_steps():
      arrays = _arrays(state)
      arrays[FINGERPRINT] = np.asarray(jax.device_get(_fingerprint(arrays)))
      self._manager.save(step, args=ocp.args.StandardSave(arrays), force=True)
      self._last_saved = step
      wrote = True
    if wait:
      self._manager.wait_until_finished()
    return wrote

  def wait(self) -> None:
    self._manager.wait_until_finished()

  def _restore_step(self, state_like: Any, step: int) -> Any:
    # Shapes, dtypes and shardings only: `state_like` may hold donated (deleted) buffers.
    abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, _arrays(state_like))
    has_fingerprint = FINGERPRINT in self._manager.item_metadata(step)
    if has_fingerprint:  # Checkpoints written before fingerprints lack it.
      abstract[FINGERPRINT] = np.zeros((len(jax.tree.leaves(abstract)),), np.uint32)
    restored = dict(self._manager.restore(step, args=ocp.args.StandardRestore(abstract)))
    if has_fingerprint:
      stored = np.asarray(jax.device_get(restored.pop(FINGERPRINT)))
      found = np.asarray(jax.device_get(_fingerprint(restored)))
      if stored.shape != found.shape or not np.array_equal(stored, found):
        paths = [jax.tree_util.keystr(p) for p, _ in jax.tree_util.tree_leaves_with_path(
            restored)]
        bad = [p for p, a, b in zip(paths, stored, found) if a != b] or ["<leaf count>"]
        raise ValueError(f"array contents do not match the saved fingerprint at {bad[0]}")
    return state_like.replace(**restored)

  def restore(self, state_like: Any, step: int | None = None) -> Any:
    """Restores into the shapes, dtypes and shardings of `state_like`.

    Without `step`, restores the newest intact checkpoint: newer unreadable ones are
    logged, renamed to `<step>.corrupt` (so the run can save that step again) and
    skipped. Raises CheckpointCorruptError when none is intact.
    """
    if step is not None:
      return self._restore_step(state_like, step)
    steps = self.all_steps()
    if not steps:
      raise FileNotFoundError(f"no checkpoint in {self.directory}")
    skipped = []
    for candidate in reversed(steps):
      try:
        restored = self._restore_step(state_like, candidate)
      except Exception as e:  # pylint: disable=broad-except
        reason = _first_line(e)
        logging.warning("checkpoint %s is unreadable (%s); skipping it",
                        os.path.join(self.directory, str(candidate)), reason)
        skipped.append((candidate, reason))
        continue
      self._quarantine([s for s, _ in skipped])
      return restored
    newest, reason = skipped[0]
    raise CheckpointCorruptError(
        f"no intact checkpoint in {self.directory} (newest, step {newest}: {reason}); "
        f"remove {self.directory} to start over")

  def _quarantine(self, steps: list[int]) -> None:
    if not steps:
      return
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      multihost_utils.sync_global_devices("checkpoint_restored")
    if jax.process_index() == 0:
      for s in steps:
        src = os.path.join(self.directory, str(s))
        dst = src + CORRUPT_SUFFIX
        n = 1
        while os.path.exists(dst):
          dst, n = f"{src}{CORRUPT_SUFFIX}{n}", n + 1
        os.rename(src, dst)
        logging.warning("moved the unreadable checkpoint %s to %s", src, dst)
    if jax.process_count() > 1:
      from jax.experimental import multihost_utils
      multihost_utils.sync_global_devices("checkpoint_quarantined")
    self._manager.reload()

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
