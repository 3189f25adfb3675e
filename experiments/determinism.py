r"""Determinism study: run matrix over noise settings (see experiments/configs/determinism.py).

  python -m experiments.determinism --config=experiments/configs/determinism.py:smoke \
      --workdir=/tmp/determinism
  python -m experiments.determinism --compare=/runs/cpu,/runs/gpu --workdir=/tmp/compare

`--compare` analyses training workdirs written anywhere (it sets `config.study.compare`).
`--train_one` is the subprocess entry of the matrix: it trains the training config given
as `--config=experiments/configs/determinism.py:train_json=PATH` (with its `mitigation`
section, if any) into `--workdir`. The study is `tradeoffs.studies.determinism`.
"""

from __future__ import annotations

from absl import flags
from absl import logging

from experiments import app

_FLAGS = {}


def _extra_flags() -> None:
  _FLAGS["compare"] = flags.DEFINE_list(
      "compare", [], "Training workdirs (any machines) to analyse instead of running the "
      "matrix; the first is the reference.")
  _FLAGS["train_one"] = flags.DEFINE_bool(
      "train_one", False, "Train one run of a training config (subprocess entry of the "
      "matrix).")


def _alternative(load_config, workdir: str) -> bool:
  from tradeoffs import errors  # pylint: disable=g-import-not-at-top
  from tradeoffs import studies  # pylint: disable=g-import-not-at-top
  from tradeoffs.studies import determinism  # pylint: disable=g-import-not-at-top
  if _FLAGS["train_one"].value:
    try:
      determinism.train_one(load_config(), workdir)
    except (FileNotFoundError, ValueError) as e:  # Bad input: one line, exit 2.
      if isinstance(e, (errors.ConfigError, errors.RunFailed)):
        raise
      raise errors.ConfigError(str(e)) from None
    return True
  if _FLAGS["compare"].value:
    config = load_config()
    with config.unlocked():
      config.study.compare = tuple(_FLAGS["compare"].value)
    result = studies.runner.run(studies.get("determinism"), config, workdir)
    if result.finished:
      logging.info("compared %d workdirs; report in %s", len(_FLAGS["compare"].value),
                   workdir)
    return True
  return False


if __name__ == "__main__":
  app.run_study("determinism", default_config="determinism.py", extra_flags=_extra_flags,
                alternative=_alternative)
