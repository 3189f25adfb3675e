r"""Sweeps: a grid of config overrides, one workdir per run, one merged frontier and report.

Run locally, two at a time, then merge the records into one report:

    python -m launch.sweep run --binary=train \
        --config=experiments/configs/digits_mlp.py:smoke --sweep_dir=workdirs/sweep_width \
        --grid 'model.kwargs.width_multiplier=0.25,0.5,1' --grid 'train.steps=500,1000' --parallel=2

Emit a SLURM job array instead (one array task per run), then merge when it is done:

    python -m launch.sweep slurm --binary=train --config=experiments/configs/cifar10_resnet20.py \
        --sweep_dir=/shared/sweeps/c10 --grid 'model.kwargs.base_width=8,16,32' --partition=gpu \
        --time=04:00:00 --gpus_per_node=1
    sbatch /shared/sweeps/c10/sweep.sbatch   # prints the job id, then:
    sbatch --dependency=afterany:<jobid> --wrap \
        "python -m launch.sweep merge --sweep_dir=/shared/sweeps/c10"

Print what would run: `python -m launch.sweep list ...` (same flags as `run`).

A grid is the product of its axes. `--grid 'key=v1,v2'` adds an axis (values split on
commas, passed to the binary as `--config.key=v1`); `--grid_file` reads a JSON or Python
file: `{"key": [v1, v2], ...}` (a product), or a list of `{"key": value, ...}` dicts
(exactly those runs). A Python grid file defines `GRID` or `get_grid()`. Each run's
workdir is `<sweep_dir>/<name>`, the name made from its overrides
(`model.kwargs.width_multiplier=0.5__train.steps=500`); `<sweep_dir>/sweep.json` lists the runs, and
`merge` writes report.md / report.html over the records of every run that has any.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import importlib.util
import itertools
import json
import os
import re
import shlex
import subprocess
import sys
import time
from typing import Any, Mapping, Sequence

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MANIFEST = "sweep.json"
MAX_NAME_LENGTH = 120


@dataclasses.dataclass(frozen=True)
class Run:
  """One run of a sweep: its name, its config overrides and its workdir."""
  name: str
  overrides: tuple[tuple[str, str], ...]
  workdir: str

  def command(self, binary: str, config: str, python: str = sys.executable,
              extra_args: Sequence[str] = ()) -> list[str]:
    """`python -m experiments.<binary> --config=... --workdir=... --config.key=value ...`."""
    return ([python, "-m", f"experiments.{binary}", f"--config={config}",
             f"--workdir={self.workdir}"]
            + [f"--config.{key}={value}" for key, value in self.overrides] + list(extra_args))


def _value_string(value: Any) -> str:
  """How a grid value is written on the command line (ml_collections parses it back)."""
  if isinstance(value, str):
    return value
  if isinstance(value, (list, tuple)):
    return "(" + ",".join(_value_string(v) for v in value) + ("," if len(value) == 1 else "") + ")"
  return repr(value) if isinstance(value, float) else str(value)


_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$")


def _check_key(key: str, source: str) -> str:
  if not isinstance(key, str) or not _KEY.match(key):
    raise ValueError(f"{source}: config key {key!r} is not a dotted name like "
                     "'train.steps'")
  return key


def parse_grid_arg(text: str) -> tuple[str, list[str]]:
  """'train.steps=100,200' -> ('train.steps', ['100', '200'])."""
  if "=" not in text:
    raise ValueError(f"--grid={text!r}: expected 'key=value1,value2,...'")
  key, _, values = text.partition("=")
  key = _check_key(key.strip(), f"--grid={text!r}")
  parsed = [v.strip() for v in values.split(",") if v.strip()]
  if not parsed:
    raise ValueError(f"--grid={text!r}: no values for {key!r}; expected "
                     "'key=value1,value2,...'")
  return key, parsed


def load_grid_file(path: str) -> dict[str, list[Any]] | list[dict[str, Any]]:
  """A JSON or Python grid file: a dict of key -> values, or a list of run dicts."""
  if not os.path.exists(path):
    raise ValueError(f"--grid_file={path!r} does not exist")
  if path.endswith(".json"):
    with open(path) as f:
      grid = json.load(f)
  elif path.endswith(".py"):
    spec = importlib.util.spec_from_file_location("_sweep_grid", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    if hasattr(module, "get_grid"):
      grid = module.get_grid()
    elif hasattr(module, "GRID"):
      grid = module.GRID
    else:
      raise ValueError(f"--grid_file={path!r} defines neither GRID nor get_grid()")
  else:
    raise ValueError(f"--grid_file={path!r}: expected a .json or .py file")
  if not isinstance(grid, (Mapping, list)):
    raise ValueError(f"--grid_file={path!r} holds a {type(grid).__name__}; expected a dict "
                     "of key -> list of values, or a list of {key: value} dicts")
  return grid


def run_name(overrides: Sequence[tuple[str, str]]) -> str:
  """A filesystem-safe name from overrides, e.g. 'model.width=64__train.steps=100'."""
  raw = "__".join(f"{key}={value}" for key, value in overrides) or "default"
  name = re.sub(r"[^A-Za-z0-9._=+-]+", "_", raw).strip("_") or "run"
  if len(name) > MAX_NAME_LENGTH:
    digest = hashlib.sha1(raw.encode()).hexdigest()[:8]
    name = f"{name[:MAX_NAME_LENGTH - 9]}-{digest}"
  return name


def expand(grid: Mapping[str, Sequence[Any]] | Sequence[Mapping[str, Any]],
           sweep_dir: str) -> list[Run]:
  """Runs of a grid: the product of a dict's axes (in key order), or a list's dicts.

  Raises:
    ValueError: an empty sweep (no axes, an axis without values, an empty list), a bad
      key, or two runs that would share a workdir.
  """
  if isinstance(grid, Mapping):
    if not grid:
      raise ValueError("empty sweep: the grid has no axes. Add --grid 'key=v1,v2' or a "
                       "--grid_file")
    axes = []
    for key, values in grid.items():
      _check_key(key, "grid")
      if isinstance(values, (str, bytes)) or not isinstance(values, Sequence):
        values = [values]
      if not values:
        raise ValueError(f"empty sweep: grid axis {key!r} has no values")
      axes.append([(key, _value_string(v)) for v in values])
    combos = [tuple(c) for c in itertools.product(*axes)]
  else:
    combos = []
    for index, run in enumerate(grid):
      if not isinstance(run, Mapping):
        raise ValueError(f"grid run {index} is {run!r}; expected a {{key: value}} dict")
      combos.append(tuple((_check_key(k, f"grid run {index}"), _value_string(v))
                          for k, v in run.items()))
    if not combos:
      raise ValueError("empty sweep: the grid lists no runs")
  names = [run_name(c) for c in combos]
  duplicates = sorted({n for n in names if names.count(n) > 1})
  if duplicates:
    raise ValueError(f"the grid gives several runs the same workdir: {duplicates}")
  return [Run(n, c, os.path.join(sweep_dir, n)) for n, c in zip(names, combos)]


def grid_from_args(grid_args: Sequence[str], grid_file: str | None) -> dict | list:
  """Merges --grid flags and a --grid_file (flags add axes to a dict grid)."""
  grid: Any = load_grid_file(grid_file) if grid_file else {}
  if grid_args:
    if isinstance(grid, list):
      raise ValueError("--grid cannot be combined with a --grid_file that lists runs")
    grid = dict(grid)
    for text in grid_args:
      key, values = parse_grid_arg(text)
      if key in grid:
        raise ValueError(f"--grid {key!r} is given twice")
      grid[key] = values
  return grid


def write_manifest(sweep_dir: str, runs: Sequence[Run], commands: Sequence[Sequence[str]],
                   binary: str, config: str) -> str:
  os.makedirs(sweep_dir, exist_ok=True)
  path = os.path.join(sweep_dir, MANIFEST)
  manifest = {"binary": binary, "config": config,
              "runs": [{"name": r.name, "overrides": dict(r.overrides), "workdir": r.workdir,
                        "command": list(c)} for r, c in zip(runs, commands)]}
  with open(path, "w") as f:
    json.dump(manifest, f, indent=2)
  return path


def run_local(runs: Sequence[Run], commands: Sequence[Sequence[str]], parallel: int = 1,
              stream=sys.stdout) -> dict[str, int]:
  """Runs the commands as subprocesses, `parallel` at a time; returns name -> exit code.

  Each run's output goes to `<workdir>/sweep.log`. A failing run does not stop the others.
  """
  if parallel < 1:
    raise ValueError(f"--parallel={parallel}: expected >= 1")
  pending = list(zip(runs, commands))
  active: list[tuple[Run, subprocess.Popen, Any]] = []
  codes: dict[str, int] = {}
  while pending or active:
    while pending and len(active) < parallel:
      run, command = pending.pop(0)
      os.makedirs(run.workdir, exist_ok=True)
      log = open(os.path.join(run.workdir, "sweep.log"), "a")
      print(f"[sweep] start {run.name}: {shlex.join(command)}", file=stream, flush=True)
      active.append((run, subprocess.Popen(command, cwd=REPO_ROOT, stdout=log,
                                           stderr=subprocess.STDOUT), log))
    still = []
    for run, proc, log in active:
      code = proc.poll()
      if code is None:
        still.append((run, proc, log))
        continue
      log.close()
      codes[run.name] = code
      status = "done" if code == 0 else f"FAILED (exit {code}; see {run.workdir}/sweep.log)"
      print(f"[sweep] {status}: {run.name}", file=stream, flush=True)
    active = still
    if active:
      time.sleep(0.2)
  return codes


SBATCH_TEMPLATE = """#!/bin/bash
# Generated by launch/sweep.py: {count} runs of experiments.{binary} as a SLURM job array.
#   sbatch {script}
# When the array is done, merge the records into one frontier and report:
#   sbatch --dependency=afterany:<jobid> --wrap "{merge}"
#SBATCH --job-name={job_name}
#SBATCH --array=0-{last}{throttle}
#SBATCH --output={sweep_dir}/slurm-%A_%a.out
#SBATCH --nodes={nodes}
#SBATCH --ntasks-per-node={tasks_per_node}
{extra_sbatch}
set -euo pipefail
cd {repo_root}
# One JAX process per task; with more than one task the binaries start the multi-process
# runtime (jax.distributed.initialize() detects SLURM) when TRADEOFFS_DISTRIBUTED=1.
{distributed}
RUNS=(
{runs}
)
echo "run ${{SLURM_ARRAY_TASK_ID}}: ${{RUNS[$SLURM_ARRAY_TASK_ID]}}"
srun bash -c "${{RUNS[$SLURM_ARRAY_TASK_ID]}}"
"""


def slurm_script(runs: Sequence[Run], commands: Sequence[Sequence[str]], sweep_dir: str,
                 binary: str, *, partition: str | None = None, time_limit: str | None = None,
                 nodes: int = 1, tasks_per_node: int = 1, gpus_per_node: int | None = None,
                 cpus_per_task: int | None = None, max_parallel: int | None = None,
                 python: str = "python") -> str:
  """The text of a SLURM array script with one array task per run."""
  if not runs:
    raise ValueError("empty sweep: no runs to put in a SLURM array")
  if nodes < 1 or tasks_per_node < 1:
    raise ValueError(f"--nodes={nodes} and --tasks_per_node={tasks_per_node} must be >= 1")
  extra = []
  if partition:
    extra.append(f"#SBATCH --partition={partition}")
  if time_limit:
    extra.append(f"#SBATCH --time={time_limit}")
  if gpus_per_node:
    # GPUs per node, not per task: JAX gives task i the GPU SLURM_LOCALID, so every task
    # must see all of the node's GPUs.
    extra.append(f"#SBATCH --gpus-per-node={gpus_per_node}")
  if cpus_per_task:
    extra.append(f"#SBATCH --cpus-per-task={cpus_per_task}")
  multi = nodes * tasks_per_node > 1
  merge = f"{python} -m launch.sweep merge --sweep_dir={sweep_dir}"
  return SBATCH_TEMPLATE.format(
      count=len(runs), binary=binary, script=os.path.join(sweep_dir, "sweep.sbatch"),
      merge=merge, job_name=f"sweep-{os.path.basename(os.path.normpath(sweep_dir))}",
      last=len(runs) - 1, throttle=f"%{max_parallel}" if max_parallel else "",
      sweep_dir=sweep_dir, nodes=nodes, tasks_per_node=tasks_per_node,
      extra_sbatch="\n".join(extra), repo_root=shlex.quote(REPO_ROOT),
      distributed="export TRADEOFFS_DISTRIBUTED=1" if multi else "# (single task per run)",
      runs="\n".join("  " + shlex.quote(shlex.join(c)) for c in commands))


def merge(sweep_dir: str, title: str | None = None, reference: str | None = None,
          stream=sys.stdout) -> dict[str, Any]:
  """Merges the records of every run listed in `<sweep_dir>/sweep.json` into one report."""
  from tradeoffs import report  # Imported here so `list`/`slurm` need no JAX.

  path = os.path.join(sweep_dir, MANIFEST)
  if not os.path.exists(path):
    raise ValueError(f"--sweep_dir={sweep_dir!r} has no {MANIFEST}: run or emit a sweep "
                     "into it first")
  with open(path) as f:
    manifest = json.load(f)
  records, missing = [], []
  for run in manifest["runs"]:
    try:
      found = report.load_records(run["workdir"])
    except report.RecordError:  # A damaged records file is an error, not a missing run.
      raise
    except (FileNotFoundError, ValueError):  # No records.jsonl yet, or an empty one.
      missing.append(run["name"])
      continue
    for record in found:
      record.setdefault("run", run["name"])
    records += found
  if not records:
    raise ValueError(f"no run in {sweep_dir} has trade-off records yet "
                     f"({len(missing)} runs without records.jsonl)")
  if missing:
    print(f"[sweep] {len(missing)} runs have no records yet: {', '.join(missing)}",
          file=stream)
  title = title or f"Sweep of experiments.{manifest['binary']} ({len(manifest['runs'])} runs)"
  out = report.write_report(sweep_dir, records, title=title, reference=reference)
  out["missing"] = missing
  print(f"[sweep] report: {out['markdown']} and {out['html']}", file=stream)
  return out


def _add_grid_flags(parser: argparse.ArgumentParser) -> None:
  parser.add_argument("--binary", required=True,
                      help="experiment module under experiments/, e.g. 'train'")
  parser.add_argument("--config", required=True,
                      help="config file, optionally with ':arg', e.g. "
                           "experiments/configs/digits_mlp.py:smoke")
  parser.add_argument("--sweep_dir", required=True, help="directory holding one workdir per run")
  parser.add_argument("--grid", action="append", default=[],
                      help="an axis 'key=v1,v2,...' (repeatable)")
  parser.add_argument("--grid_file", default=None, help="a .json or .py grid file")
  parser.add_argument("--python", default=None,
                      help="python executable in the commands (default: this one locally, "
                           "'python' on SLURM)")


def main(argv: Sequence[str] | None = None) -> int:
  parser = argparse.ArgumentParser(prog="python -m launch.sweep", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
  sub = parser.add_subparsers(dest="mode", required=True)
  for mode in ("run", "list", "slurm"):
    p = sub.add_parser(mode)
    _add_grid_flags(p)
    p.add_argument("extra_args", nargs="*", help="after '--': flags passed to every run")
    if mode == "run":
      p.add_argument("--parallel", type=int, default=1, help="runs at a time")
      p.add_argument("--title", default=None)
      p.add_argument("--reference", default=None, help="variant to compare against")
    if mode == "slurm":
      p.add_argument("--partition", default=None)
      p.add_argument("--time", dest="time_limit", default=None, help="e.g. 04:00:00")
      p.add_argument("--nodes", type=int, default=1)
      p.add_argument("--tasks_per_node", type=int, default=1,
                     help="JAX processes per node (one per GPU for multi-GPU runs)")
      p.add_argument("--gpus_per_node", type=int, default=None)
      p.add_argument("--cpus_per_task", type=int, default=None)
      p.add_argument("--max_parallel", type=int, default=None, help="array throttle (%%N)")
  p = sub.add_parser("merge")
  p.add_argument("--sweep_dir", required=True)
  p.add_argument("--title", default=None)
  p.add_argument("--reference", default=None)
  args = parser.parse_args(argv)

  if args.mode == "merge":
    merge(os.path.abspath(args.sweep_dir), args.title, args.reference)
    return 0
  sweep_dir = os.path.abspath(args.sweep_dir)
  runs = expand(grid_from_args(args.grid, args.grid_file), sweep_dir)
  python = args.python or (sys.executable if args.mode != "slurm" else "python")
  commands = [r.command(args.binary, args.config, python, args.extra_args) for r in runs]
  if args.mode == "list":
    for run, command in zip(runs, commands):
      print(f"{run.name}\t{shlex.join(command)}")
    return 0
  write_manifest(sweep_dir, runs, commands, args.binary, args.config)
  if args.mode == "slurm":
    script = os.path.join(sweep_dir, "sweep.sbatch")
    with open(script, "w") as f:
      f.write(slurm_script(runs, commands, sweep_dir, args.binary, partition=args.partition,
                           time_limit=args.time_limit, nodes=args.nodes,
                           tasks_per_node=args.tasks_per_node,
                           gpus_per_node=args.gpus_per_node, cpus_per_task=args.cpus_per_task,
                           max_parallel=args.max_parallel, python=python))
    print(f"[sweep] wrote {script} ({len(runs)} array tasks); submit with: sbatch {script}")
    return 0
  codes = run_local(runs, commands, args.parallel)
  failed = sorted(name for name, code in codes.items() if code != 0)
  try:
    merge(sweep_dir, args.title, args.reference)
  except ValueError as e:
    print(f"[sweep] no report: {e}", file=sys.stderr)
  if failed:
    print(f"[sweep] {len(failed)} of {len(runs)} runs failed: {', '.join(failed)}",
          file=sys.stderr)
    return 1
  return 0


if __name__ == "__main__":
  sys.exit(main())
