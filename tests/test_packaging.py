"""A non-editable install carries the embedded data: wheel → fresh venv → every embedded set
loads offline with an empty TFDS_DATA_DIR, from a directory outside the checkout.

The fresh venv gets the test interpreter's site-packages as a *trailing* path entry (a .pth
line), so jax & co. are not downloaded again; that entry is only appended to sys.path — its
own .pth files (the checkout's editable-install finder among them) are not processed — and
the wheel's `tradeoffs` sits in the fresh venv's own site-packages, ahead of it. The test
checks that `tradeoffs.__file__` is the wheel's copy, not the checkout's.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import sysconfig
import textwrap
import zipfile

import pytest

from tradeoffs.data import sources

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SKIP_DIRS = {".git", ".venv", "venv", "build", "workdirs", ".hypothesis", "__pycache__",
             ".pytest_cache", "tmp"}


def _copy_source(dst: str) -> None:
  """The checkout without build outputs (a stale build/ must not leak into the wheel)."""
  def ignore(directory, names):
    return [n for n in names if n in SKIP_DIRS or n.endswith(".egg-info") or n.endswith(".pyc")]
  shutil.copytree(ROOT, dst, ignore=ignore)


def _run(cmd, **kwargs) -> subprocess.CompletedProcess:
  result = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
  if result.returncode:
    raise AssertionError(f"{' '.join(map(str, cmd))} failed ({result.returncode}):\n"
                         f"{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
  return result


@pytest.mark.slow
def test_wheel_installs_and_loads_embedded_sets_offline(tmp_path):
  src, wheels, env_dir = tmp_path / "src", tmp_path / "wheels", tmp_path / "venv"
  outside = tmp_path / "elsewhere"
  outside.mkdir()
  _copy_source(str(src))
  _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", str(src),
        "-w", str(wheels)], cwd=str(src))
  (wheel,) = list(wheels.glob("tradeoffs-*.whl"))
  names = zipfile.ZipFile(wheel).namelist()
  for name in ("digits.csv.gz", "LICENSE", "README.md", "SHA256SUMS"):
    assert f"tradeoffs/data/vendored/uci_digits/{name}" in names, name
  for name in ("mnist_5k.csv.gz", "LICENSE", "README.md", "SHA256SUMS", "extract.sh"):
    assert f"tradeoffs/data/vendored/mnist_5k/{name}" in names, name

  _run([sys.executable, "-m", "venv", str(env_dir)])
  python = env_dir / "bin" / "python"
  site = _run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
              ).stdout.strip()
  with open(os.path.join(site, "zz_test_interpreter_site.pth"), "w") as f:
    f.write(sysconfig.get_paths()["purelib"] + "\n")
  _run([str(python), "-m", "pip", "install", "--no-deps", "--no-index", "--quiet", str(wheel)])

  script = textwrap.dedent(f"""
      import json, os, tradeoffs
      from tradeoffs import data
      out = {{"file": tradeoffs.__file__, "sets": {{}}}}
      for name in {sorted(n for n, s in sources.DATASETS.items() if s.embedded)!r}:
        ds = data.load(name)
        out["sets"][name] = [len(ds.train), len(ds.test), list(ds.group_names)]
      print(json.dumps(out))
  """)
  data_dir = tmp_path / "tfds_empty"
  data_dir.mkdir()
  env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
  env.update(TFDS_DATA_DIR=str(data_dir), JAX_PLATFORMS="cpu", XLA_FLAGS="",
             HOME=str(tmp_path), PYTHONNOUSERSITE="1")
  result = _run([str(python), "-c", script], cwd=str(outside), env=env, timeout=600)
  out = json.loads(result.stdout.strip().splitlines()[-1])
  installed = os.path.realpath(out["file"])
  assert installed.startswith(os.path.realpath(site)), installed
  assert not installed.startswith(os.path.realpath(ROOT)), installed
  assert out["sets"]["digits"] == [1437, 360, []]
  assert out["sets"]["digits_groups"] == [1437, 360, ["subgroup"]]
  embedded = {n for n, s in sources.DATASETS.items() if s.embedded}
  assert set(out["sets"]) == embedded and {"digits", "digits_groups"} <= embedded
  assert out["sets"]["mnist_5k"] == [4000, 1000, []]
  for name in embedded - {"digits", "digits_groups", "mnist_5k"}:  # Subsets of digits.
    train, test, _ = out["sets"][name]
    assert test == 360 and 0 < train < 1437, (name, train, test)
  # The sets were built offline into the (formerly empty) data dir.
  assert sorted(os.listdir(data_dir / "digits_groups"))
