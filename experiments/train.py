r"""Trains a population of models and writes per-example predictions to a workdir.

    python -m experiments.train                                   # digits MLP, offline
    python -m experiments.train --config=experiments/configs/cifar10_resnet20.py \
        --workdir=workdirs/c10 --config.population.members=8

This file is intentionally thin: the logic is in `tradeoffs.train.experiment`.
"""

import os

from absl import app
from absl import flags
from ml_collections import config_flags

from tradeoffs.studies import common
from tradeoffs.train import experiment

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "digits_mlp.py"),
    "Training configuration file (`path.py` or `path.py:smoke`).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "workdirs/train",
                               "Directory for config, checkpoints, metrics and predictions.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  result = experiment.run(_CONFIG.value, _WORKDIR.value)
  if result is not None:  # None: preempted, rerun to resume
    common.record_training_run(_CONFIG.value, _WORKDIR.value, result)


if __name__ == "__main__":
  app.run(main)
