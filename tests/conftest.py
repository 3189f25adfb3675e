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

import jax  # noqa: E402
import pytest  # noqa: E402

assert jax.device_count() == 8, "tests expect 8 simulated CPU devices"


@pytest.fixture
def workdir(tmp_path):
  return str(tmp_path / "workdir")
