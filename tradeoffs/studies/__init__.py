"""Studies: one short module per study on one protocol and one runner.

    from tradeoffs import studies
    studies.names()                          # the registry
    study = studies.get("frontier")          # a module with NAME, TITLE, plan, produce, sections
    studies.runner.run(study, config, workdir)

See `tradeoffs.studies.base` for the protocol and `tradeoffs.studies.runner` for what the
runner does around it. No study imports another study: a piece two studies need lives in
the library (or in `tradeoffs.studies.recipes`, the shared variant producers).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from tradeoffs.studies import base
from tradeoffs.studies import runner

# name -> module; a study registers by being listed here.
STUDIES = {
    "cascade": "tradeoffs.studies.cascade",
    "coded_optimization": "tradeoffs.studies.coded_optimization",
    "compression_bias": "tradeoffs.studies.compression_bias",
    "contrastive_pruning": "tradeoffs.studies.contrastive_pruning",
    "detector_frontier": "tradeoffs.studies.detector_frontier",
    "determinism": "tradeoffs.studies.determinism",
    "divide_cotrain": "tradeoffs.studies.divide_cotrain",
    "dp_tradeoff": "tradeoffs.studies.dp_tradeoff",
    "exposure_notification": "tradeoffs.studies.exposure_notification",
    "frontier": "tradeoffs.studies.frontier",
    "input_simplification": "tradeoffs.studies.input_simplification",
    "loss_prioritization": "tradeoffs.studies.loss_prioritization",
    "low_resource_mt": "tradeoffs.studies.low_resource_mt",
    "multitask_fairness": "tradeoffs.studies.multitask_fairness",
    "robust_distillation": "tradeoffs.studies.robust_distillation",
    "sparse_vs_dense": "tradeoffs.studies.sparse_vs_dense",
    "squeezed_speech": "tradeoffs.studies.squeezed_speech",
    "targeted_augmentation": "tradeoffs.studies.targeted_augmentation",
}


def names() -> list[str]:
  return sorted(STUDIES)


def get(name: str) -> ModuleType:
  if name not in STUDIES:
    raise ValueError(f"study {name!r} is unknown; choose from {names()}")
  module = importlib.import_module(STUDIES[name])
  for attribute in ("NAME", "TITLE", "plan", "produce", "sections"):
    if not hasattr(module, attribute):
      raise TypeError(f"study module {module.__name__} lacks {attribute!r} (see "
                      "tradeoffs.studies.base)")
  return module
