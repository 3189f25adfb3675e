r"""Compression bias: dense vs pruned and quantized populations, CIEs and who pays.

    python -m experiments.compression_bias --workdir=workdirs/compression_bias
    python -m experiments.compression_bias \
        --config=experiments/configs/compression_bias.py:smoke --workdir=/tmp/cb_smoke

Thin binary: the study is `tradeoffs.studies.compression_bias.run`. Rerunning the same
command in the same workdir resumes (recorded variants are skipped; an interrupted
variant continues from its checkpoint).
"""

from __future__ import annotations

import os

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from tradeoffs.studies import compression_bias
from tradeoffs.train import checkpoint
from tradeoffs.train import distributed

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "compression_bias.py"),
    "Study configuration (`path.py`, `path.py:smoke`, `:cifar10`, `:celeb_a`).",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "workdirs/compression_bias",
                               "Directory for config, checkpoints, predictions, records, report.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  distributed.maybe_initialize()
  checkpoint.quiet_orbax()
  records = compression_bias.run(_CONFIG.value, _WORKDIR.value)
  if records is None:
    logging.warning("preempted: rerun the same command to resume")
    return
  logging.info("wrote %d records, report.md and cie_audit.png to %s", len(records),
               _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
