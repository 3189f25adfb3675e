"""Coded and encoded optimization against stragglers: sweep schemes, write records/report.

  python -m experiments.coded_optimization \
    --config=experiments/configs/coded_optimization.py:smoke --workdir=/tmp/coded
"""

from __future__ import annotations

import os
import sys

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


def _usage_error(message: str) -> None:
  """Bad input gets one clear line on stderr and exit code 2, not a traceback."""
  print(f"experiments.coded_optimization: error: {message}", file=sys.stderr)
  sys.exit(2)


def main(argv):
  if len(argv) > 1:
    _usage_error(f"unexpected positional arguments {argv[1:]}; allowed: only --flags")
  config = _CONFIG.value
  try:
    study.validate_config(config)  # Bad input fails before anything compiles.
  except ValueError as e:
    _usage_error(str(e))
  logging.info("process %d/%d, %d devices", jax.process_index(), jax.process_count(),
               jax.device_count())
  env = environment.capture()
  workdir_lib.prepare(_WORKDIR.value, config, env)
  results = study.run_study(config, _WORKDIR.value, env)
  logging.info("wrote %d records and report.md to %s", len(results), _WORKDIR.value)


if __name__ == "__main__":
  app.run(main)
