r"""Divide and co-train: a wide model against S = 2 and 4 members at equal parameters.

    python -m experiments.divide_cotrain --config=experiments/configs/divide_cotrain.py \
        --workdir=workdirs/divide_cotrain
    python -m experiments.divide_cotrain \
        --config=experiments/configs/divide_cotrain.py:smoke --workdir=/tmp/dc_smoke

Writes config.json, environment.json, metrics.jsonl, checkpoints/<variant>,
predictions/<variant>.npz (members) and <variant>_ensemble.npz (combined), records.jsonl,
report.md/html and figures. Rerun the same command to resume a killed study. This file is
intentionally thin: the logic is in `tradeoffs.studies.divide_cotrain`.
"""

from __future__ import annotations

import os

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from tradeoffs.studies import divide_cotrain

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "divide_cotrain.py"),
    "Study configuration (`path.py`, `path.py:smoke`, `path.py:cifar10_wrn28_10`).",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None,
                               "Directory for config, checkpoints, predictions, records, report.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  # `run` starts the distributed runtime, validates the config before anything compiles
  # and records the environment (with the seeds).
  records = divide_cotrain.run(_CONFIG.value, _WORKDIR.value)
  if records is None:
    logging.warning("preempted: rerun the same command to resume")
    return
  logging.info("wrote %d records and report.md to %s", len(records), _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
