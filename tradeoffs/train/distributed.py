"""Multi-controller start-up: `jax.distributed.initialize()` when launched multi-process.

A run is multi-process when `TRADEOFFS_DISTRIBUTED=1` (TPU pods and SLURM: JAX detects the
cluster) or when `TRADEOFFS_COORDINATOR`, `TRADEOFFS_NUM_PROCESSES` and
`TRADEOFFS_PROCESS_ID` are set (the local launcher, `launch/local.py`). Call this before
anything touches a JAX backend.
"""

from __future__ import annotations

import os

import jax

_initialized = False


def launched_multiprocess() -> bool:
  return (os.environ.get("TRADEOFFS_DISTRIBUTED") == "1"
          or "TRADEOFFS_COORDINATOR" in os.environ)


def maybe_initialize() -> bool:
  """Initialises JAX's distributed runtime if this process was launched as one of many."""
  global _initialized
  if _initialized or not launched_multiprocess():
    return _initialized
  if os.environ.get("JAX_PLATFORMS", "") in ("cpu", "") and "TRADEOFFS_COORDINATOR" in os.environ:
    # CPU processes exchange collectives through gloo.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
  if "TRADEOFFS_COORDINATOR" in os.environ:
    jax.distributed.initialize(
        coordinator_address=os.environ["TRADEOFFS_COORDINATOR"],
        num_processes=int(os.environ["TRADEOFFS_NUM_PROCESSES"]),
        process_id=int(os.environ["TRADEOFFS_PROCESS_ID"]),
        initialization_timeout=int(os.environ.get("TRADEOFFS_INIT_TIMEOUT", "120")))
  else:
    jax.distributed.initialize()
  _initialized = True
  return True


def to_host(tree):
  """Fetches a (possibly multi-process sharded) pytree to numpy on every process."""
  if jax.process_count() == 1:
    return jax.device_get(tree)
  from jax.experimental import multihost_utils
  return multihost_utils.process_allgather(tree, tiled=True)
