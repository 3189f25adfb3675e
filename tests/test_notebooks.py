"""Every notebook under notebooks/ runs top to bottom, headless (nbclient, a kernel from
this interpreter), offline, with TRADEOFFS_NOTEBOOK_SMOKE=1; and the committed notebooks
carry no outputs or execution counts, and open with a Colab badge and the install cell."""

from __future__ import annotations

import glob
import os
import sys
import time

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
NAMES = [os.path.basename(p) for p in NOTEBOOKS]


def test_the_four_notebooks_exist():
  assert {"quickstart.ipynb", "frontier.ipynb", "coded.ipynb",
          "determinism.ipynb"} <= set(NAMES)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_committed_notebook_is_stripped_and_opens_with_badge_and_install(path):
  nb = nbformat.read(path, as_version=4)
  nbformat.validate(nb)
  for cell in nb.cells:
    if cell.cell_type == "code":
      assert cell.get("outputs") == [], f"{path}: a code cell has outputs"
      assert cell.get("execution_count") is None, f"{path}: a code cell has a count"
  first, second = nb.cells[0], nb.cells[1]
  assert first.cell_type == "markdown" and "colab-badge.svg" in first.source
  assert f"notebooks/{os.path.basename(path)}" in first.source
  assert second.cell_type == "code" and "pip" in second.source
  assert 'find_spec("tradeoffs") is None' in second.source  # skips where installed


def test_notebooks_are_what_build_py_writes():
  import importlib.util
  spec = importlib.util.spec_from_file_location("nb_build", os.path.join(ROOT, "notebooks",
                                                                          "build.py"))
  build = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(build)
  for name, cells in build.NOTEBOOKS.items():
    written = nbformat.read(os.path.join(ROOT, "notebooks", name), as_version=4)
    assert [c.source for c in written.cells] == [src for _, src in cells], (
        f"{name} differs from notebooks/build.py: run python notebooks/build.py")


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=NAMES)
def test_notebook_runs_top_to_bottom(path, tmp_path, monkeypatch):
  nb = nbformat.read(path, as_version=4)
  monkeypatch.setenv("TRADEOFFS_NOTEBOOK_SMOKE", "1")
  monkeypatch.setenv("MPLBACKEND", "agg")
  monkeypatch.setenv("TFDS_DATA_DIR", os.environ.get("TFDS_DATA_DIR",
                                                     str(tmp_path / "tfds")))
  # The kernel is this interpreter (the venv); the checkout is importable from the kernel.
  monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
      [ROOT] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]))
  # ipykernel's native 'python3' spec launches sys.executable: the kernel is this venv's.
  nb.cells.insert(0, nbformat.v4.new_code_cell(
      f"import sys; assert sys.executable == {sys.executable!r}, sys.executable"))
  client = nbclient.NotebookClient(
      nb, timeout=600, kernel_name="python3", allow_errors=False,
      resources={"metadata": {"path": str(tmp_path)}})
  start = time.perf_counter()
  client.execute()  # raises CellExecutionError on the first failing cell
  seconds = time.perf_counter() - start
  print(f"{os.path.basename(path)}: {seconds:.1f} s")
  outputs = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
  assert not [o for o in outputs if o.get("output_type") == "error"]
