"""The API reference stays true: the docstring examples of the public modules run (part of
the default `pytest` run)."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = [
    "tradeoffs.sparsity.masks",
    "tradeoffs.sparsity.population",
    "tradeoffs.quantization.fake_quant",
    "tradeoffs.quantization.population",
    "tradeoffs.exemplars.cie",
    "tradeoffs.fairness.metrics",
    "tradeoffs.efficiency.counting",
    "tradeoffs.ensembles.combine",
    "tradeoffs.report.verdict",
    "tradeoffs.determinism.metrics",
    "tradeoffs.coded.stragglers",
]
# Modules that must carry at least this many docstrings with examples.
MINIMUM = {"tradeoffs.sparsity.masks": 2}


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
  module = importlib.import_module(name)
  result = doctest.testmod(module, optionflags=doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE,
                           verbose=False)
  assert result.failed == 0, f"{name}: {result.failed} of {result.attempted} examples failed"
  assert result.attempted >= 1, f"{name} has no docstring examples"
  documented = sum(1 for t in doctest.DocTestFinder().find(module) if t.examples)
  assert documented >= MINIMUM.get(name, 1), name
