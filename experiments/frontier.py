r"""The main job: dense widths, pruned, quantized and divided variants on one frontier.

    python -m experiments.frontier                            # workdirs/frontier, offline
    python -m experiments.frontier --config=experiments/configs/frontier.py:smoke \
        --workdir=/tmp/frontier_smoke
    python -m experiments.frontier --workdir=workdirs/frontier --report_only
    python -m experiments.frontier --workdir=workdirs/merged --merge=workdirs/a,workdirs/b

Writes records.jsonl, predictions/, checkpoints/<variant>/, report.md, report.html and
frontier_*.png into --workdir; a killed run resumes (finished variants are skipped).
The logic lives in `tradeoffs.studies.frontier`.
"""

from __future__ import annotations

import os
import sys

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from tradeoffs.studies import frontier
from tradeoffs.workdir import ConfigMismatchError

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(__file__), "configs", "frontier.py"),
    "Study configuration (`frontier.py`, `frontier.py:smoke`, `frontier.py:cifar10`).",
    lock_config=True)
_WORKDIR = flags.DEFINE_string("workdir", "workdirs/frontier",
                               "Directory for config, checkpoints, predictions, records and "
                               "the report.")
_REPORT_ONLY = flags.DEFINE_bool("report_only", False,
                                 "Rebuild the report from the records already in --workdir "
                                 "(and --merge workdirs); train nothing.")
_MERGE = flags.DEFINE_list("merge", [],
                           "Workdirs whose records are merged into one report written to "
                           "--workdir (implies --report_only).")


def main(argv):
  if len(argv) > 1:
    raise app.UsageError(f"unexpected arguments: {argv[1:]}")
  config, workdir = _CONFIG.value, _WORKDIR.value
  try:
    if _REPORT_ONLY.value or _MERGE.value:
      out = frontier.report_only(workdir, _MERGE.value, config.report)
      logging.info("wrote %s, %s and %d figures", out["markdown"], out["html"],
                   len(out["figures"]))
      return
    records = frontier.run(config, workdir)
    logging.info("%d records in %s; report: %s", len(records), workdir,
                 os.path.join(workdir, "report.md"))
  except (ValueError, FileNotFoundError, ConfigMismatchError) as e:
    # Bad input gets one clear line, not a traceback.
    print(f"experiments.frontier: error: {e}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
  app.run(main)
