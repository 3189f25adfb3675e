r"""Determinism study: run matrix over noise settings, metrics, records and report.

  python -m experiments.determinism --config=experiments/configs/determinism.py:smoke \
      --workdir=/tmp/determinism
  python -m experiments.determinism --compare=/runs/cpu,/runs/gpu --workdir=/tmp/compare

`--train_one` is the subprocess entry of mitigated runs: it trains the training config
given as `--config=experiments/configs/determinism.py:train_json=PATH` (with its
`mitigation` section) into `--workdir`. The logic is in `tradeoffs.determinism.study`.
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
from tradeoffs.determinism import study
from tradeoffs.train import checkpoint
from tradeoffs.train import distributed

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "determinism.py"),
    "Study configuration (`:smoke` for the seconds-long variant).", lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", None, "Directory for runs, records and report.")
_COMPARE = flags.DEFINE_list("compare", [], "Training workdirs (any machines) to compare "
                             "instead of running the matrix.")
_TRAIN_ONE = flags.DEFINE_bool("train_one", False, "Train one run of a training config "
                               "(subprocess entry of the matrix).")
flags.mark_flags_as_required(["workdir"])


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  distributed.maybe_initialize()
  checkpoint.quiet_orbax()
  config, workdir = _CONFIG.value, _WORKDIR.value
  if _TRAIN_ONE.value:
    study.train_run(config, workdir)
    return
  if _COMPARE.value:
    study.compare_workdirs(_COMPARE.value, config, workdir, environment.capture())
    logging.info("compared %d workdirs; report in %s", len(_COMPARE.value), workdir)
    return
  study.validate_config(config)  # Bad settings and unknown XLA flags fail before compiling.
  env = environment.capture()
  workdir_lib.prepare(workdir, config, env)
  logging.info("%d devices (%s); settings %s", jax.device_count(), env["device_kind"],
               list(config.settings))
  study.run_study(config, workdir, env)
  logging.info("report: %s", os.path.join(workdir, "report.md"))


if __name__ == "__main__":
  app.run(main)
