"""The error types binaries treat specially (everything else keeps its traceback).

* `ConfigError`: bad input — a flag, a config value, a workdir that cannot be used. The
  shared app prints its one line (which flag, what was given, what is allowed) and exits 2,
  before anything expensive starts.
* `RunFailed`: a run that started correctly and then cannot go on for a reason the user can
  act on (training diverged, no intact checkpoint). One line, exit 1.

Both subclass ValueError so code written against the older `ValueError` contract keeps
working.
"""


class ConfigError(ValueError):
  """Bad input: one line naming the flag, the value given and what is allowed; exit 2."""


class RunFailed(ValueError):
  """A started run that cannot continue for a stated, actionable reason; exit 1."""
