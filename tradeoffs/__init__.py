"""tradeoffs: measure what efficiency costs, in JAX.

Subpackages are imported lazily so `import tradeoffs` is cheap:
`tradeoffs.data`, `models`, `train`, `sparsity`, `quantization`, `ensembles`, `coded`,
`exemplars`, `fairness`, `determinism`, `efficiency`, `report`.
"""

import importlib

__version__ = "0.1.0"

_SUBPACKAGES = ("data", "models", "train", "sparsity", "quantization", "ensembles", "coded",
                "exemplars", "fairness", "determinism", "cascades", "efficiency", "report",
                "environment", "workdir")


def __getattr__(name):
  if name in _SUBPACKAGES:
    return importlib.import_module(f"tradeoffs.{name}")
  raise AttributeError(f"module 'tradeoffs' has no attribute {name!r}")


def __dir__():
  return sorted(list(globals()) + list(_SUBPACKAGES))
