"""Techniques and analyses import no Flax, `models`, `train`, `report`, `studies` or `workdir`.

Not at the top of a module and not inside functions either: every `import` / `from ... import`
node of every module under the technique packages is checked (relative imports resolved),
and so are `importlib.import_module("...")` / `__import__("...")` calls with a literal name.
A technique receives what it needs from models and training as numbers, plain dicts and
callables (e.g. `ensembles.divide(spec, S, model_info=models.division_info(...))`).
"""

from __future__ import annotations

import ast
import pathlib
import subprocess
import sys

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGES = ("sparsity", "quantization", "ensembles", "coded", "exemplars", "fairness",
            "privacy", "cascades", "distill", "selection", "contrastive", "detection",
            "dynamics",
            "determinism", "efficiency")
FORBIDDEN = ("flax", "tradeoffs.models", "tradeoffs.train", "tradeoffs.report",
             "tradeoffs.studies", "tradeoffs.workdir")


def _module_name(path: pathlib.Path) -> str:
  parts = list(path.relative_to(ROOT).with_suffix("").parts)
  if parts[-1] == "__init__":
    parts = parts[:-1]
  return ".".join(parts)


def _imported(tree: ast.AST, path: pathlib.Path) -> list[tuple[int, str]]:
  """(line, dotted name) of everything the module imports, anywhere in it."""
  module = _module_name(path)
  package = module if path.name == "__init__.py" else module.rpartition(".")[0]
  out = []
  for node in ast.walk(tree):
    if isinstance(node, ast.Import):
      out += [(node.lineno, alias.name) for alias in node.names]
    elif isinstance(node, ast.ImportFrom):
      base = node.module or ""
      if node.level:
        anchor = package.split(".")
        anchor = anchor[:len(anchor) - (node.level - 1)]
        base = ".".join(anchor + ([base] if base else []))
      out.append((node.lineno, base))
      # `from tradeoffs import models` imports tradeoffs.models.
      out += [(node.lineno, f"{base}.{alias.name}") for alias in node.names]
    elif (isinstance(node, ast.Call) and node.args
          and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
      func = node.func
      name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
      if name in ("import_module", "__import__"):
        out.append((node.lineno, node.args[0].value))
  return out


def _forbidden(name: str) -> bool:
  return any(name == f or name.startswith(f + ".") for f in FORBIDDEN)


def violations(path: pathlib.Path) -> list[str]:
  tree = ast.parse(path.read_text(), filename=str(path))
  return sorted({f"{path.relative_to(ROOT)}:{line}: imports {name}"
                 for line, name in _imported(tree, path) if _forbidden(name)})


FILES = sorted(p for pkg in PACKAGES for p in (ROOT / "tradeoffs" / pkg).rglob("*.py"))


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.relative_to(ROOT).as_posix())
def test_technique_imports_no_models_training_or_reporting(path):
  found = violations(path)
  assert not found, "\n".join(found)


def test_the_scan_sees_every_form_of_import():
  pkg = ROOT / "tradeoffs" / "ensembles"
  source = "\n".join([
      "import flax.linen as nn", "from flax import linen", "from tradeoffs import models",
      "from tradeoffs.train import experiment", "from .. import report",
      "from ..studies import base", "import tradeoffs.workdir",
      "def f():", "  from tradeoffs import models as m", "  import importlib",
      "  return importlib.import_module('tradeoffs.train.experiment')",
      "from tradeoffs import stats", "from . import combine", "import jax",
      "from tradeoffs.modelsx import y",
  ])
  fake = pkg / "_import_rules_probe.py"  # Never written: parsed with its would-be path.
  names = [name for _, name in _imported(ast.parse(source), fake) if _forbidden(name)]
  assert set(names) == {"flax.linen", "flax", "tradeoffs.models", "tradeoffs.train",
                        "tradeoffs.train.experiment", "tradeoffs.report", "tradeoffs.studies",
                        "tradeoffs.studies.base", "tradeoffs.workdir"}
  assert not {n for n in names if n in ("tradeoffs.stats", "tradeoffs.ensembles.combine",
                                         "tradeoffs.modelsx", "tradeoffs.modelsx.y")}
  lines = {line for line, name in _imported(ast.parse(source), fake) if _forbidden(name)}
  assert {9, 11} <= lines  # Inside a function too.


def test_importing_ensembles_loads_no_flax_or_models():
  code = ("import sys, tradeoffs.ensembles; "
          "bad = sorted(m for m in sys.modules if m == 'flax' or m.startswith(('flax.', "
          "'tradeoffs.models', 'tradeoffs.train', 'tradeoffs.report', 'tradeoffs.studies'))); "
          "print(bad); sys.exit(1 if bad else 0)")
  result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True,
                          text=True, timeout=300, check=False)
  assert result.returncode == 0, result.stdout + result.stderr
