r"""Trains a population of models and writes per-example predictions to a workdir.

    python -m experiments.train                                   # digits MLP, offline
    python -m experiments.train --config=experiments/configs/cifar10_resnet20.py \
        --workdir=workdirs/c10 --config.population.members=8

Rerunning the same command resumes an interrupted run and does nothing for a finished one.
Exit status: 0 on success, on preemption (SIGTERM: state saved, rerun to resume) and for a
finished workdir; 2 with one `experiments.train: error: ...` line for bad input or a run
that cannot continue (bad config, workdir in use or holding another config, no intact
checkpoint, training diverged); 1 with a traceback for anything unexpected.

This file is intentionally thin: the logic is in `tradeoffs.train.experiment`.
"""

import os
import sys

from absl import app
from absl import flags
from ml_collections import config_flags

from tradeoffs.studies import runner
from tradeoffs.train import experiment

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "digits_mlp.py"),
    "Training configuration file (`path.py` or `path.py:smoke`).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "workdirs/train",
                               "Directory for config, checkpoints, metrics and predictions.")


def record_once(config, workdir, result) -> None:
  """Appends the run's trade-off record unless the workdir already holds it (one run per
  workdir, so one 'train' record)."""
  runner.record_training_run(config, workdir, result)


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  config, workdir = _CONFIG.value, _WORKDIR.value
  try:
    experiment.run(config, workdir, on_result=lambda r: record_once(config, workdir, r))
  except (ValueError, FileNotFoundError) as e:
    # Bad input or a run that cannot continue gets one clear line, not a traceback.
    print(f"experiments.train: error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
