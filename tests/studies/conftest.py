"""A study's `:smoke` run through its binary, once per test session: the all-studies test
and a study's own record checks read the same workdir instead of each running the smoke,
also across pytest-xdist workers (the first worker to need a study runs it under a file
lock; the others wait for it and read its workdir)."""

from __future__ import annotations

import fcntl
import os
import subprocess
import sys

import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# Study -> its smoke workdir, kept for the worker's session: under pytest-xdist the tests of
# one study need not arrive in an order that keeps a module-scoped fixture alive between them.
_SMOKE_RUNS: dict[str, str] = {}


def _binary(name, *args, timeout=600):
  env = {**os.environ, "PYTHONPATH": REPO}
  return subprocess.run([sys.executable, "-m", f"experiments.{name}", *args], cwd=REPO,
                        env=env, capture_output=True, text=True, timeout=timeout)


def _config(name, variant="smoke"):
  return f"--config={os.path.join(REPO, 'experiments', 'configs', name + '.py')}:{variant}"


@pytest.fixture(scope="session")
def study_binary():
  """`study_binary(name, *args)`: the finished process of `python -m experiments.<name>`."""
  return _binary


@pytest.fixture(scope="session")
def config_flag():
  """`config_flag(name, variant="smoke")`: the --config flag of study `name`'s config file."""
  return _config


@pytest.fixture(scope="session")
def smoke_workdir(tmp_path_factory):
  """`smoke_workdir(name)`: the workdir of study `name`'s finished `:smoke` binary run.
  Tests may read it but must not change it (others compare it before and after a rerun)."""

  # Under xdist every worker's base temp sits in one directory of this test run.
  base = tmp_path_factory.getbasetemp()
  shared = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base

  def get(name: str) -> str:
    if name not in _SMOKE_RUNS:
      with open(shared / f"smoke_{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        done = shared / f"smoke_{name}.workdir"
        if not done.exists():  # a failed attempt writes nothing: the next one reruns
          workdir = str(tmp_path_factory.mktemp(name) / "wd")
          result = _binary(name, _config(name), f"--workdir={workdir}")
          assert result.returncode == 0, result.stderr[-3000:]
          done.write_text(workdir)
        _SMOKE_RUNS[name] = done.read_text()
    return _SMOKE_RUNS[name]

  return get
