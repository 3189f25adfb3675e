r"""Same-capacity sparse vs dense comparison and effective gradient flow (PAPERS.md §16).

    python -m experiments.sparse_vs_dense --workdir=workdirs/sparse_vs_dense
    python -m experiments.sparse_vs_dense \
        --config=experiments/configs/sparse_vs_dense.py:smoke --workdir=/tmp/svd

Writes config.json, environment.json, metrics.jsonl (EGF_1, EGF_2, gradient norms per
variant), checkpoints/<variant>, predictions/<variant>.npz, params/<variant>.npz,
records.jsonl, analysis.json, report.md and its figures. A killed run resumes: rerun the same
command. The logic lives in `tradeoffs.studies.sparse_vs_dense`.
"""

import os

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from tradeoffs.studies import sparse_vs_dense
from tradeoffs.train import checkpoint
from tradeoffs.train import distributed

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "sparse_vs_dense.py"),
    "Study configuration (append :smoke for the seconds-long variant).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "workdirs/sparse_vs_dense",
                               "Directory for config, checkpoints, metrics, records, report.")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  distributed.maybe_initialize()
  checkpoint.quiet_orbax()
  # `run` validates the config before anything compiles.
  records = sparse_vs_dense.run(_CONFIG.value, _WORKDIR.value)
  if records is None:
    logging.warning("preempted: rerun the same command to resume")
    return
  logging.info("wrote %d records and report.md to %s", len(records), _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
