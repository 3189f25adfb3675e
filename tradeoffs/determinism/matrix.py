"""Run matrices over noise settings, and reading the runs back from their workdirs.

`run_matrix` runs every setting `repeats` times, each in its own workdir under `root`:

* in-process, as one population of `repeats` members, when the setting changes nothing
  that is fixed at JAX start-up (`needs_subprocess` is False) and the caller supplies
  `population_fn(setting, members, workdir)`; matmul precision and PRNG switches are
  applied around the call. A vmapped population shares one compiled program, so it does not
  see noise that differs between processes (autotuning); pass `isolate=True` to measure
  that.
* otherwise as one subprocess per repeat: the caller's argv template (placeholders
  `{workdir}`, `{setting}`, `{repeat}`, `{members}`) plus `config_overrides(setting,
  repeat)`, under `subprocess_env(setting)`.

The trainer's outputs are read back by `load_runs` from `predictions/*.npz` (`logits`
[members, examples, classes], `labels`, `ids`, `groups`) and `final_params.npz` (flattened
params with '/'-joined keys), so workdirs produced on different machines compare directly.
"""

from __future__ import annotations

import dataclasses
import glob
import os
import subprocess
import sys
import time
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from tradeoffs import files as files_lib
from tradeoffs.determinism import settings as settings_lib

PREDICTIONS_DIR = "predictions"
FINAL_PARAMS_FILE = "final_params.npz"
SETTING_FILE = "determinism_setting.json"
DONE_FILE = "determinism_done.json"
MATRIX_FILE = "matrix.jsonl"
ON_ERROR = ("raise", "record")
# This checkout, and the study config whose `:train_json=PATH` arg loads a saved training
# config: subprocess runs of the matrix start from these wherever they run.
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STUDY_CONFIG_FILE = os.path.join(REPO, "experiments", "configs", "determinism.py")


def train_command(train_json: str, *, train_one: bool = False) -> list[str]:
  """argv template (`{workdir}` placeholder) of one run of the training config saved as
  JSON at `train_json`, for `run_matrix(command=...)`.

  `python -m experiments.train`, or with `train_one` `python -m experiments.determinism
  --train_one` (the study's trainer, which adds the config's `mitigation` penalty).
  """
  entry = (["experiments.determinism", "--train_one"] if train_one
           else ["experiments.train"])
  return [sys.executable, "-m", *entry,
          f"--config={STUDY_CONFIG_FILE}:train_json={train_json}", "--workdir={workdir}"]


def checkout_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
  """A copy of `environ` (default os.environ) with this checkout first on PYTHONPATH, so
  that a subprocess imports its `experiments` package from any working directory; pass it
  as `run_matrix(base_env=...)`."""
  env = dict(os.environ if environ is None else environ)
  env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH", "")) if p)
  return env


class RunFailedError(RuntimeError):
  """A run of the matrix exited non-zero or timed out."""


@dataclasses.dataclass(frozen=True)
class RunResult:
  """What happened to one cell of the matrix (a repeat, or a whole in-process population)."""

  setting: str
  repeat: int | None          # None for an in-process population holding all repeats.
  members: int
  workdir: str
  mode: str                   # 'in_process' | 'subprocess' | 'skipped'
  status: str                 # 'ok' | 'skipped' | 'failed' | 'resumed'
  seconds: float = 0.0
  returncode: int | None = None
  message: str = ""
  output: Any = None          # population_fn's return value (in-process only).

  def to_dict(self) -> dict[str, Any]:
    row = dataclasses.asdict(self)
    row.pop("output")
    return row


def _check_args(settings: Sequence[settings_lib.Setting], repeats: Any, command: Any,
                population_fn: Any, timeout_s: Any, on_error: str) -> None:
  if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
    raise ValueError(f"repeats={repeats!r}; need an int >= 1")
  if not settings or not all(isinstance(s, settings_lib.Setting) for s in settings):
    raise ValueError(f"settings={settings!r}; need a non-empty sequence of Setting")
  names = [s.name for s in settings]
  duplicates = sorted({n for n in names if names.count(n) > 1})
  if duplicates:
    raise ValueError(f"settings have duplicate names {duplicates}; each needs its own workdir")
  if command is not None and (isinstance(command, str) or not command
                              or not all(isinstance(a, str) for a in command)):
    raise ValueError(f"command={command!r}; need a non-empty argv list of strings")
  if command is None and population_fn is None:
    raise ValueError("command=None and population_fn=None: give an argv template, a "
                     "population callback, or both")
  if not (isinstance(timeout_s, (int, float)) and timeout_s > 0):
    raise ValueError(f"timeout_s={timeout_s!r}; need a positive number of seconds")
  if on_error not in ON_ERROR:
    raise ValueError(f"on_error={on_error!r}; valid: {list(ON_ERROR)}")


def _format_argv(command: Sequence[str], **values: Any) -> list[str]:
  # Plain replacement, not str.format: argv may hold code with literal braces.
  out = []
  for arg in command:
    for key, value in values.items():
      arg = arg.replace("{" + key + "}", str(value))
    out.append(arg)
  return out


def _claim_workdir(workdir: str, setting: settings_lib.Setting, repeat: int | None) -> bool:
  """Creates `workdir` for this cell; True when a finished run is already there."""
  wanted = files_lib.to_jsonable({"setting": setting.to_dict(), "repeat": repeat})
  path = os.path.join(workdir, SETTING_FILE)
  if os.path.exists(path):
    found = files_lib.read_json(path)
    if found != wanted:
      raise ValueError(f"workdir={workdir} holds a run of a different setting ({found}); "
                       "use a new root or delete it")
  else:
    os.makedirs(workdir, exist_ok=True)
    files_lib.write_json(path, wanted)
  return os.path.exists(os.path.join(workdir, DONE_FILE))


def run_matrix(settings: Sequence[settings_lib.Setting], repeats: int, root: str, *,
               command: Sequence[str] | None = None,
               population_fn: Callable[[settings_lib.Setting, int, str], Any] | None = None,
               current: settings_lib.Setting | Mapping[str, Any] | None = None,
               isolate: bool = False, append_overrides: bool = True,
               timeout_s: float = 3600.0, base_env: Mapping[str, str] | None = None,
               check_flags: bool = True, resume: bool = True, on_error: str = "raise"
               ) -> list[RunResult]:
  """Runs each setting `repeats` times; returns one RunResult per population or repeat.

  Every argument is checked, and every XLA flag probed, before anything runs. A setting
  whose backend is not present here is returned as 'skipped'. A failed run raises
  RunFailedError with the end of its stderr (or, with on_error='record', is returned as
  'failed'). Finished workdirs are reused when `resume`. Each result is also appended to
  `root/matrix.jsonl`.

  >>> import json, os, tempfile
  >>> import numpy as np
  >>> def write_run(workdir, logits, ids, params, labels=(0, 1, 1)):   # a trainer's workdir
  ...   os.makedirs(os.path.join(workdir, "predictions"), exist_ok=True)
  ...   np.savez(os.path.join(workdir, "predictions", "test.npz"), logits=logits,
  ...            labels=np.array(labels), ids=ids)
  ...   np.savez(os.path.join(workdir, "final_params.npz"), **params)
  >>> root = tempfile.mkdtemp()
  >>> def fake_population(setting, members, workdir):    # stands in for training
  ...   logits = np.zeros((members, 3, 2)); logits[:, [1, 2], 1] = 1.0
  ...   logits[members - 1, 2] = [1.0, 0.0]              # the last member flips example 2
  ...   write_run(workdir, logits, np.arange(3), {"dense/kernel": np.ones((members, 2))})
  >>> results = run_matrix([settings_lib.Setting("control")], 2, root,
  ...                      population_fn=fake_population, current=settings_lib.Setting("here"))
  >>> [(r.setting, r.members, r.mode, r.status) for r in results]
  [('control', 2, 'in_process', 'ok')]
  >>> rerun = run_matrix([settings_lib.Setting("control")], 2, root,
  ...                    population_fn=fake_population, current=settings_lib.Setting("here"))
  >>> rerun[0].status                          # finished workdirs are reused
  'resumed'
  >>> [json.loads(line)["status"] for line in open(os.path.join(root, "matrix.jsonl"))]
  ['ok', 'resumed']
  """
  _check_args(settings, repeats, command, population_fn, timeout_s, on_error)
  subprocess_settings = [s for s in settings if isolate or population_fn is None
                         or settings_lib.needs_subprocess(s, current)]
  if subprocess_settings and command is None:
    raise ValueError(f"settings {[s.name for s in subprocess_settings]} need a fresh process "
                     "(backend, device count or XLA flags differ) but command=None")
  unavailable = set()
  for s in subprocess_settings:
    if not settings_lib.backend_available(s.backend):
      unavailable.add(s.name)
    elif check_flags:
      settings_lib.validate_xla_flags(s.xla_flags, s.backend)

  results = []
  for s in settings:
    setting_dir = os.path.join(root, s.name)
    if s not in subprocess_settings:
      results.append(_run_in_process(s, repeats, os.path.join(setting_dir, "population"),
                                     population_fn, resume))
    elif s.name in unavailable:
      results += [RunResult(s.name, r, 1, os.path.join(setting_dir, f"repeat_{r:03d}"),
                            "skipped", "skipped",
                            message=f"backend {s.backend!r} is not available here")
                  for r in range(repeats)]
    else:
      for r in range(repeats):
        results.append(_run_subprocess(
            s, r, os.path.join(setting_dir, f"repeat_{r:03d}"), command, append_overrides,
            timeout_s, base_env, resume, on_error))
    files_lib.append_jsonl(os.path.join(root, MATRIX_FILE),
                             [res.to_dict() for res in results if res.setting == s.name])
  return results


def _run_in_process(setting, members, workdir, population_fn, resume) -> RunResult:
  if _claim_workdir(workdir, setting, None) and resume:
    return RunResult(setting.name, None, members, workdir, "in_process", "resumed",
                     message="finished run found in workdir")
  start = time.perf_counter()
  with settings_lib.implementation_context(setting):
    output = population_fn(setting, members, workdir)
  seconds = time.perf_counter() - start
  files_lib.write_json(os.path.join(workdir, DONE_FILE), {"seconds": seconds})
  return RunResult(setting.name, None, members, workdir, "in_process", "ok", seconds,
                   output=output)


def _run_subprocess(setting, repeat, workdir, command, append_overrides, timeout_s,
                    base_env, resume, on_error) -> RunResult:
  if _claim_workdir(workdir, setting, repeat) and resume:
    return RunResult(setting.name, repeat, 1, workdir, "subprocess", "resumed",
                     message="finished run found in workdir")
  argv = _format_argv(command, workdir=workdir, setting=setting.name, repeat=repeat,
                      members=1)
  if append_overrides:
    argv += settings_lib.config_overrides(setting, repeat, members=1)
  env = settings_lib.subprocess_env(setting, base_env)
  start = time.perf_counter()
  try:
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=timeout_s,
                          check=False)
    returncode, stdout, stderr = done.returncode, done.stdout, done.stderr
    problem = f"exited with status {returncode}" if returncode != 0 else ""
  except subprocess.TimeoutExpired as e:
    returncode = None
    stdout, stderr = _text(e.stdout), _text(e.stderr)
    problem = f"timed out after {timeout_s}s"
  seconds = time.perf_counter() - start
  for name, text in (("stdout.log", stdout), ("stderr.log", stderr)):
    with open(os.path.join(workdir, name), "w") as f:
      f.write(text or "")
  if problem:
    message = (f"setting {setting.name!r} repeat {repeat} {problem} (workdir {workdir}).\n"
               f"argv: {argv}\nstderr tail:\n{settings_lib._tail(stderr)}")
    if on_error == "raise":
      raise RunFailedError(message)
    return RunResult(setting.name, repeat, 1, workdir, "subprocess", "failed", seconds,
                     returncode, message)
  files_lib.write_json(os.path.join(workdir, DONE_FILE), {"seconds": seconds})
  return RunResult(setting.name, repeat, 1, workdir, "subprocess", "ok", seconds, returncode)


def _text(value: str | bytes | None) -> str:
  if isinstance(value, bytes):
    return value.decode(errors="replace")
  return value or ""


# ---------------------------------------------------------------------------------------
# Reading runs back.


def load_predictions(workdir: str, split: str | None = None) -> dict[str, np.ndarray]:
  """Arrays of `workdir/predictions/<split>.npz` (`logits`, `labels`, `ids`, `groups`).

  Without `split`: the only file there, or `test.npz` when there are several.

  >>> import json, os, tempfile
  >>> import numpy as np
  >>> def write_run(workdir, logits, ids, params, labels=(0, 1, 1)):   # a trainer's workdir
  ...   os.makedirs(os.path.join(workdir, "predictions"), exist_ok=True)
  ...   np.savez(os.path.join(workdir, "predictions", "test.npz"), logits=logits,
  ...            labels=np.array(labels), ids=ids)
  ...   np.savez(os.path.join(workdir, "final_params.npz"), **params)
  >>> root = tempfile.mkdtemp()
  >>> write_run(os.path.join(root, "a"), np.zeros((2, 3, 2)), np.arange(3), {})
  >>> arrays = load_predictions(os.path.join(root, "a"))      # the only split there
  >>> sorted(arrays), arrays["logits"].shape
  (['ids', 'labels', 'logits'], (2, 3, 2))
  """
  directory = os.path.join(workdir, PREDICTIONS_DIR)
  files = sorted(glob.glob(os.path.join(directory, "*.npz")))
  names = [os.path.splitext(os.path.basename(f))[0] for f in files]
  if split is None:
    split = names[0] if len(names) == 1 else "test"
  if split not in names:
    raise FileNotFoundError(f"split={split!r} has no predictions in {directory}; "
                            f"found: {names}")
  with np.load(os.path.join(directory, f"{split}.npz"), allow_pickle=False) as f:
    arrays = {k: f[k] for k in f.files}
  missing = [k for k in ("logits", "labels", "ids") if k not in arrays]
  if missing:
    raise ValueError(f"{directory}/{split}.npz lacks {missing}; has {sorted(arrays)}")
  if arrays["logits"].ndim != 3:
    raise ValueError(f"{directory}/{split}.npz: logits shape={arrays['logits'].shape}; "
                     "need [members, examples, classes]")
  return arrays


def load_final_params(workdir: str) -> dict[str, np.ndarray]:
  """The flattened final params of `workdir/final_params.npz` ('/'-joined keys).

  >>> import json, os, tempfile
  >>> import numpy as np
  >>> def write_run(workdir, logits, ids, params, labels=(0, 1, 1)):   # a trainer's workdir
  ...   os.makedirs(os.path.join(workdir, "predictions"), exist_ok=True)
  ...   np.savez(os.path.join(workdir, "predictions", "test.npz"), logits=logits,
  ...            labels=np.array(labels), ids=ids)
  ...   np.savez(os.path.join(workdir, "final_params.npz"), **params)
  >>> root = tempfile.mkdtemp()
  >>> write_run(os.path.join(root, "a"), np.zeros((1, 3, 2)), np.arange(3),
  ...           {"dense/kernel": np.ones((1, 2, 2))})
  >>> {k: v.shape for k, v in load_final_params(os.path.join(root, "a")).items()}
  {'dense/kernel': (1, 2, 2)}
  """
  path = os.path.join(workdir, FINAL_PARAMS_FILE)
  if not os.path.exists(path):
    raise FileNotFoundError(f"{path} does not exist: did the run finish?")
  with np.load(path, allow_pickle=False) as f:
    return {k: f[k] for k in f.files}


@dataclasses.dataclass(frozen=True)
class Runs:
  """Runs gathered from one or several workdirs, examples sorted by id.

  `logits` [runs, examples, classes]; `params` maps each '/'-joined key to [runs, ...]
  (None when not loaded); `sources` names (workdir, member) for each run.
  """

  logits: np.ndarray
  labels: np.ndarray
  ids: np.ndarray
  groups: np.ndarray | None
  group_names: tuple[str, ...]
  params: dict[str, np.ndarray] | None
  sources: tuple[tuple[str, int], ...]


def _stack_members(params: dict[str, np.ndarray], members: int, workdir: str
                   ) -> dict[str, np.ndarray]:
  leading = {k: (v.shape[0] if v.ndim else None) for k, v in params.items()}
  if all(n == members for n in leading.values()):
    return params
  if members == 1:  # A single-member run may save params without the member axis.
    return {k: v[None] for k, v in params.items()}
  bad = {k: n for k, n in leading.items() if n != members}
  raise ValueError(f"{workdir}/{FINAL_PARAMS_FILE}: leading sizes {bad} do not match the "
                   f"{members} members of its predictions")


def load_runs(workdirs: Sequence[str], split: str | None = None, params: bool = True
              ) -> Runs:
  """Concatenates the members of several workdirs into one set of runs.

  Examples are aligned by `ids`, so runs written on different machines or in different
  orders compare example by example; differing id sets, labels or param keys raise.

  >>> import json, os, tempfile
  >>> import numpy as np
  >>> def write_run(workdir, logits, ids, params, labels=(0, 1, 1)):   # a trainer's workdir
  ...   os.makedirs(os.path.join(workdir, "predictions"), exist_ok=True)
  ...   np.savez(os.path.join(workdir, "predictions", "test.npz"), logits=logits,
  ...            labels=np.array(labels), ids=ids)
  ...   np.savez(os.path.join(workdir, "final_params.npz"), **params)
  >>> root = tempfile.mkdtemp()
  >>> a, b = os.path.join(root, "a"), os.path.join(root, "b")
  >>> write_run(a, np.eye(2)[[[0, 1, 1]]], np.array([0, 1, 2]), {"w": np.zeros((1, 2))})
  >>> write_run(b, np.eye(2)[[[1, 1, 0]]], np.array([2, 1, 0]), {"w": np.ones((1, 2))},
  ...           labels=(1, 1, 0))
  >>> runs = load_runs([a, b])                  # b wrote its examples in another order
  >>> runs.ids.tolist(), runs.logits.argmax(-1).tolist()   # aligned by id
  ([0, 1, 2], [[0, 1, 1], [0, 1, 1]])
  >>> runs.params["w"].tolist(), [os.path.basename(w) for w, _ in runs.sources]
  ([[0.0, 0.0], [1.0, 1.0]], ['a', 'b'])
  """
  if isinstance(workdirs, str) or not workdirs:
    raise ValueError(f"workdirs={workdirs!r}; need a non-empty list of workdirs")
  logits, sources, flat = [], [], []
  reference = None
  for wd in workdirs:
    arrays = load_predictions(wd, split)
    order = np.argsort(arrays["ids"], kind="stable")
    current = {"ids": arrays["ids"][order], "labels": arrays["labels"][order],
               "groups": arrays["groups"][order] if "groups" in arrays else None}
    if reference is None:
      reference = dict(current, workdir=wd, group_names=tuple(
          str(n) for n in arrays.get("group_names", ())))
    else:
      for key in ("ids", "labels", "groups"):
        a, b = reference[key], current[key]
        if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
          raise ValueError(f"workdirs {reference['workdir']} and {wd} differ in {key}; "
                           "runs must predict the same examples")
    members = arrays["logits"].shape[0]
    logits.append(arrays["logits"][:, order])
    sources += [(wd, m) for m in range(members)]
    if params:
      flat.append(_stack_members(load_final_params(wd), members, wd))
  stacked_params = None
  if params:
    keys = sorted(flat[0])
    for wd, p in zip(workdirs, flat):
      if sorted(p) != keys:
        raise ValueError(f"{wd}/{FINAL_PARAMS_FILE} keys differ from {workdirs[0]}'s: "
                         f"{sorted(set(p) ^ set(keys))}")
    stacked_params = {k: np.concatenate([p[k] for p in flat]) for k in keys}
  return Runs(np.concatenate(logits), reference["labels"], reference["ids"],
              reference["groups"], reference["group_names"], stacked_params,
              tuple(sources))


def step_times(workdir: str, skip_first: int = 1) -> np.ndarray:
  """Seconds per training step between consecutive rows of `workdir/metrics.jsonl`.

  Uses each row's `step` and wall-clock `time`; the first `skip_first` intervals (compile
  and warm-up) are dropped. Intervals that include an evaluation are kept, so compare
  settings with the same eval schedule; `metrics.determinism_cost` takes medians.

  >>> import json, os, tempfile
  >>> workdir = tempfile.mkdtemp()
  >>> rows = [{"step": 0, "time": 0.0}, {"step": 10, "time": 30.0}, {"step": 20, "time": 31.0},
  ...         {"step": 40, "time": 33.0}, {"loss": 1.0}]
  >>> with open(os.path.join(workdir, "metrics.jsonl"), "w") as f:
  ...   for row in rows:
  ...     print(json.dumps(row), file=f)
  >>> step_times(workdir).tolist()              # the first (compiling) interval dropped
  [0.1, 0.1]
  """
  rows = [r for r in files_lib.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
          if "step" in r and "time" in r]
  rows = sorted({int(r["step"]): float(r["time"]) for r in rows}.items())
  intervals = [(t1 - t0) / (s1 - s0) for (s0, t0), (s1, t1) in zip(rows, rows[1:])]
  if len(intervals) <= skip_first:
    raise ValueError(f"{workdir}/metrics.jsonl has {len(rows)} timed steps; need more than "
                     f"skip_first + 1 = {skip_first + 1}")
  return np.asarray(intervals[skip_first:])


def result_workdirs(results: Sequence[RunResult], setting: str) -> list[str]:
  """Workdirs of the finished runs of `setting`, for `load_runs`.

  >>> import json, os, tempfile
  >>> import numpy as np
  >>> def write_run(workdir, logits, ids, params, labels=(0, 1, 1)):   # a trainer's workdir
  ...   os.makedirs(os.path.join(workdir, "predictions"), exist_ok=True)
  ...   np.savez(os.path.join(workdir, "predictions", "test.npz"), logits=logits,
  ...            labels=np.array(labels), ids=ids)
  ...   np.savez(os.path.join(workdir, "final_params.npz"), **params)
  >>> root = tempfile.mkdtemp()
  >>> def fake_population(setting, members, workdir):    # stands in for training
  ...   logits = np.zeros((members, 3, 2)); logits[:, [1, 2], 1] = 1.0
  ...   logits[members - 1, 2] = [1.0, 0.0]              # the last member flips example 2
  ...   write_run(workdir, logits, np.arange(3), {"dense/kernel": np.ones((members, 2))})
  >>> results = run_matrix([settings_lib.Setting("control")], 2, root,
  ...                      population_fn=fake_population, current=settings_lib.Setting("here"))
  >>> [os.path.relpath(w, root) for w in result_workdirs(results, "control")]
  ['control/population']
  >>> result_workdirs(results, "other")
  []
  """
  return [r.workdir for r in results
          if r.setting == setting and r.status in ("ok", "resumed")]


def run_info(workdir: str) -> dict[str, Any]:
  """What the run in `workdir` did, from its own files (not from any current config).

  Model, dataset, planned `steps`, `steps_trained` (the last step in metrics.jsonl), batch,
  members from `config.json`; per-member seeds, backend, device kind and count, XLA flags
  from `environment.json`. Missing files give None entries.
  """
  def read(name):
    path = os.path.join(workdir, name)
    return files_lib.read_json(path) if os.path.exists(path) else {}

  config, env = read("config.json"), read("environment.json")
  section = lambda name: config.get(name) or {}
  logged = [int(r["step"]) for r in files_lib.read_jsonl(os.path.join(workdir,
                                                                      "metrics.jsonl"))
            if isinstance(r.get("step"), (int, float))]
  return {
      "workdir": workdir,
      "model": section("model").get("name"),
      "dataset": section("dataset").get("name"),
      "steps": section("train").get("steps"),
      "steps_trained": max(logged) if logged else None,
      "batch_size": section("train").get("batch_size"),
      "members": section("population").get("members"),
      "seeds": env.get("seeds"),
      "backend": env.get("backend"),
      "device_kind": env.get("device_kind"),
      "device_count": env.get("device_count"),
      "xla_flags": env.get("xla_flags"),
  }
