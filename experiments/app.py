"""The shared absl main of every study binary: flags, start-up and one error policy.

    # experiments/<study>.py
    from experiments import app
    if __name__ == "__main__":
      app.run_study("frontier", default_config="frontier.py")

Flags: --config (a config file, `path.py:variant`, with `--config.a.b=value` overrides),
--workdir, --report_only, --merge. Error policy: a `tradeoffs.errors.ConfigError` (bad
input: a flag, a config value, an unusable workdir) prints one line naming the flag, the
value and what is allowed, and exits 2; a `RunFailed` (divergence, no intact checkpoint)
prints one line and exits 1; anything else is a bug or an infrastructure failure and keeps
its traceback.
"""

from __future__ import annotations

import os
import re
import sys
from typing import Callable

from absl import app
from absl import flags
from absl import logging
from ml_collections import config_flags

from tradeoffs import errors

CONFIG_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "configs")


def fail(program: str, error: BaseException, code: int) -> None:
  message = " ".join(str(error).split("\n")[0:1]) or type(error).__name__
  print(f"{program}: error: {message}", file=sys.stderr)
  sys.exit(code)


def _cause_text(error: BaseException) -> str:
  """The innermost message of a config-loading failure, on one line."""
  while error.__cause__ is not None or (error.__context__ is not None
                                        and not str(error)):
    error = error.__cause__ or error.__context__
  text = str(error).replace("\\n", " ")
  found = re.findall(r"(?:\w+(?:Error|Exception)): (.+?)(?=$| File \")", " ".join(
      text.split()))
  text = found[-1] if found else text
  text = " ".join(text.split()).replace("\\'", "'")
  if len(text) > 1 and text[0] == text[-1] and text[0] in "'\"":
    text = text[1:-1]  # repr() quotes around a KeyError's message
  return text


def load_config(config_flag) -> object:
  """The parsed config (overrides applied), or a ConfigError naming --config."""
  try:
    config = config_flag.value
    config.to_dict()  # A config that failed to load raises only when it is touched.
    return config
  except (OSError, AttributeError, KeyError, TypeError, ValueError) as e:
    text = _cause_text(e)
    if "No such file" in text or "Failed loading config file" in text:
      given = next((a.split("=", 1)[1] for a in sys.argv if a.startswith("--config=")), "")
      text = (f"--config={given}: no such config file; give an "
              "existing file such as experiments/configs/<name>.py[:variant]")
    elif "Did you mean" in text or isinstance(e, (AttributeError, KeyError)):
      text = f"--config override: {text}"
    raise errors.ConfigError(text) from None


def guarded(program: str, body: Callable[[], None]) -> None:
  """Runs `body` under the error policy (see the module docstring)."""
  try:
    body()
  except errors.ConfigError as e:
    fail(program, e, 2)
  except errors.RunFailed as e:
    fail(program, e, 1)


def quiet_start() -> None:
  """Keep first-run logs to what the user needs (absl INFO for our own progress)."""
  logging.set_verbosity(logging.INFO)
  for name in ("jax._src.xla_bridge", "absl", "tensorflow_datasets", "orbax"):
    import logging as py_logging
    py_logging.getLogger(name).setLevel(py_logging.WARNING if name != "absl"
                                        else py_logging.INFO)


def apply_xla_flags(config) -> None:
  """Appends the XLA_FLAGS the study config asks for (`tradeoffs.studies.base.xla_flags`)
  to this process's XLA_FLAGS: before anything starts JAX's backend (planning does)."""
  from tradeoffs.studies import base
  try:
    extra = base.xla_flags(config)
  except ValueError as e:
    raise errors.ConfigError(str(e)) from None
  if extra:
    os.environ["XLA_FLAGS"] = " ".join([os.environ.get("XLA_FLAGS", ""), *extra]).strip()


def run_study(study_name: str, default_config: str, default_workdir: str | None = None, *,
              extra_flags: Callable[[], None] | None = None,
              alternative: Callable[[Callable[[], object], str], bool] | None = None
              ) -> None:
  """Defines the flags and runs the study binary `study_name` under the error policy.

  `extra_flags()` defines the binary's own absl flags (after the shared ones).
  `alternative(load_config, workdir)` runs first, under the same error policy; it returns
  True when it handled the command (another mode of the binary, e.g. `--compare`), and
  the study is then not run. `load_config()` gives the parsed --config (a ConfigError
  naming --config when it does not load).
  """
  from tradeoffs import studies  # Imported late: flags first, then the library.

  program = f"experiments.{study_name}"
  try:  # Overrides on the command line are applied here, when the default loads.
    config_flag = config_flags.DEFINE_config_file(
        "config", os.path.join(CONFIG_DIR, default_config),
        f"Study configuration (`{default_config}`, `{default_config}:smoke`, ...).",
        lock_config=True)
  except (OSError, AttributeError, KeyError, TypeError, ValueError, flags.Error) as e:
    fail(program, errors.ConfigError(f"--config override: {_cause_text(e)}"), 2)
  workdir_flag = flags.DEFINE_string(
      "workdir", default_workdir or f"workdirs/{study_name}",
      "Directory for config, environment, checkpoints, predictions, records and the report.")
  report_only_flag = flags.DEFINE_bool(
      "report_only", False, "Rebuild the report from the records already in --workdir (and "
      "--merge workdirs); train nothing.")
  merge_flag = flags.DEFINE_list(
      "merge", [], "Workdirs whose records are merged into one report written to --workdir "
      "(implies --report_only).")
  if extra_flags is not None:
    extra_flags()

  def main(argv):
    if len(argv) > 1:
      fail(program, errors.ConfigError(f"unexpected positional arguments {argv[1:]}; pass "
                                       "settings as --config.<path>=<value>"), 2)
    quiet_start()

    def body():
      workdir = workdir_flag.value
      apply_xla_flags(load_config(config_flag))
      if alternative is not None and alternative(lambda: load_config(config_flag), workdir):
        return
      study = studies.get(study_name)
      config = load_config(config_flag)
      if report_only_flag.value or merge_flag.value:
        out = studies.runner.report_only(study, config, workdir, merge_flag.value)
        logging.info("wrote %s, %s and %d figures", out["markdown"], out["html"],
                     len(out["figures"]))
        return
      result = studies.runner.run(study, config, workdir)
      if result.finished:
        logging.info("%s: %d records in %s; report: %s", study_name, len(result.records),
                     workdir, os.path.join(workdir, "report.md"))

    guarded(program, body)

  def parse_flags(argv):
    try:
      return flags.FLAGS(argv)
    except flags.Error as e:  # A bad flag value, e.g. a config file or variant typo.
      fail(program, errors.ConfigError(_cause_text(e)), 2)

  app.run(main, flags_parser=parse_flags)
