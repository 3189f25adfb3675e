"""What determines a run's numbers, recorded explicitly.

`capture()` returns a JSON-able dict with library versions, backend, device kind and count,
process layout, mesh, XLA_FLAGS, matmul precision and PRNG settings. Every binary writes it
to `environment.json`; the determinism study compares it across runs.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

import jax

_PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "tensorflow-datasets",
             "grain", "numpy", "ml-collections")


def package_versions() -> dict[str, str | None]:
  versions = {}
  for name in _PACKAGES:
    try:
      versions[name] = metadata.version(name)
    except metadata.PackageNotFoundError:
      versions[name] = None
  return versions


def capture(mesh: jax.sharding.Mesh | None = None) -> dict[str, Any]:
  """The environment of this process: call after JAX's backend is initialised."""
  devices = jax.devices()
  env = {
      "python": sys.version.split()[0],
      "platform": platform.platform(),
      "versions": package_versions(),
      "backend": jax.default_backend(),
      "device_kind": devices[0].device_kind,
      "device_count": jax.device_count(),
      "local_device_count": jax.local_device_count(),
      "process_count": jax.process_count(),
      "process_index": jax.process_index(),
      "xla_flags": os.environ.get("XLA_FLAGS", ""),
      "jax_platforms": os.environ.get("JAX_PLATFORMS", ""),
      "matmul_precision": str(jax.config.jax_default_matmul_precision),
      "prng_impl": str(jax.config.jax_default_prng_impl),
      "threefry_partitionable": bool(jax.config.jax_threefry_partitionable),
      "enable_x64": bool(jax.config.jax_enable_x64),
      "disable_jit": bool(jax.config.jax_disable_jit),
  }
  if mesh is not None:
    env["mesh"] = {name: int(size) for name, size in mesh.shape.items()}
  return env
