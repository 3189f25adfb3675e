"""`tradeoffs.privacy` is a technique package: no Flax, models, train, report, studies or
workdir imports anywhere in it (the rule of tests/test_import_rules.py)."""

import ast
import pathlib

ROOT = pathlib.Path(__file__).resolve().parents[2]
FORBIDDEN = ("flax", "tradeoffs.models", "tradeoffs.train", "tradeoffs.report",
             "tradeoffs.studies", "tradeoffs.workdir")


def test_privacy_imports_no_framework_or_study_code():
  bad = []
  for path in sorted((ROOT / "tradeoffs" / "privacy").rglob("*.py")):
    for node in ast.walk(ast.parse(path.read_text())):
      names = []
      if isinstance(node, ast.Import):
        names = [a.name for a in node.names]
      elif isinstance(node, ast.ImportFrom):
        base = node.module or ""
        names = [base] + [f"{base}.{a.name}" for a in node.names]
      bad += [f"{path.name}:{node.lineno}: {n}" for n in names
              if any(n == f or n.startswith(f + ".") for f in FORBIDDEN)]
  assert not bad, bad
