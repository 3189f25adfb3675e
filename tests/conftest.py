"""Tests run on CPU with 8 simulated devices, set before JAX initialises."""

import os

os.environ["XLA_FLAGS"] = " ".join(
    [f for f in os.environ.get("XLA_FLAGS", "").split()
     if not f.startswith("--xla_force_host_platform_device_count")]
    + ["--xla_force_host_platform_device_count=8"])
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# One data folder per pytest-xdist worker: two workers building the same embedded set into
# one folder would race on its final rename.
os.environ.setdefault("TFDS_DATA_DIR", os.path.join(os.path.dirname(__file__), "..", "build",
                                                    "tensorflow_datasets",
                                                    os.environ.get("PYTEST_XDIST_WORKER", "")))

# One persistent XLA compilation cache for the whole run, the binaries it starts included:
# the suite compiles the same programs many times (each smoke run in-process and again as a
# binary, reruns, resumes); a cached executable is the one a fresh compile would build.
os.environ.setdefault("JAX_COMPILATION_CACHE_DIR", os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "build", "jax_compilation_cache"))
# Programs of 0.1 s and more (JAX's default, 1 s, leaves most smoke-run programs out):
# measured on the frontier's smoke, a second run took 25 s instead of 40 s on idle cores.
# Checked across processes: a second cascade smoke binary run with the same cache found
# 120 of its 153 programs cached (the 33 below the threshold compiled in 0.4 CPU s) and took
# 12.5 instead of 26.7 CPU s; a threshold of 0 (caching those too) gained nothing.
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.1")

import jax  # noqa: E402
import pytest  # noqa: E402

assert jax.device_count() == 8, "tests expect 8 simulated CPU devices"


@pytest.fixture
def workdir(tmp_path):
  return str(tmp_path / "workdir")
