"""Coded and encoded optimization against stragglers: sweep schemes, write records/report.

  python -m experiments.coded_optimization \
    --config=experiments/configs/coded_optimization.py:smoke --workdir=/tmp/coded
"""

from __future__ import annotations

import os

from absl import app
from absl import flags
from absl import logging
import jax
from ml_collections import config_flags

from tradeoffs import environment
from tradeoffs import workdir as workdir_lib
from tradeoffs.coded import study

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "coded_optimization.py"),
    "Study configuration (append :smoke for the seconds-long variant).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for config, records, traces, report.")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  del argv
  config = _CONFIG.value
  study.validate_config(config)  # Bad input fails before anything compiles.
  logging.info("process %d/%d, %d devices", jax.process_index(), jax.process_count(),
               jax.device_count())
  env = environment.capture()
  workdir_lib.prepare(_WORKDIR.value, config, env)
  results = study.run_study(config, _WORKDIR.value, env)
  logging.info("wrote %d records and report.md to %s", len(results), _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
