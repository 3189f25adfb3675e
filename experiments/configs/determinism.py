r"""Determinism study: one training config under noise settings x repeats.

Command (CPU, the digits MLP on `digits_groups`):
  python -m experiments.determinism --workdir=workdirs/determinism
Smoke (control and devices_2, 2 runs each, 20 steps, no mitigation, no mechanism; 31 s
wall, 32 s CPU on 2 nearly idle cores (load ~2), half of it the two processes' start-up):
  python -m experiments.determinism --config=experiments/configs/determinism.py:smoke \
      --workdir=/tmp/determinism_smoke
Compare workdirs from different machines (e.g. `experiments.train` on CPU here, on GPU there):
  python -m experiments.determinism --compare=/runs/cpu,/runs/gpu --workdir=/tmp/compare

Settings (`--config.study.settings`): algorithmic `control`, `algo`, `init_only`,
`data_order_only`, `augment_only` (needs augmentation), `dropout_only` run in-process as one
population of `population.members`; `control_process` is control with one member per
process (the reference of the process settings, so that they are not confounded with
population vs single-member programs); implementation settings `devices_<N>`, `fast_math`,
`opt_level_<N>`, `precision_<P>`, `prng_<impl>`, `plan_<plan>` (the trainer's execution
plan, e.g. `plan_step_loop`: members looped, not vmapped), `gpu_default`, `gpu_deterministic`, `tpu`
and custom `<name>=--xla_<flag>=<value>` vary no seed and run `study.impl_repeats`
processes each when they change something fixed at JAX start-up (a missing backend is
recorded as skipped). `study.impl_seeds`: 'fixed' (every run of an implementation setting
has the same seeds: the runs test reproducibility) or 'per_run' (run r has base seeds + r
in every setting: independent samples, as the ξ comparison needs). With
`study.mitigation.weight > 0` every implementation setting runs again with the
boundary-alignment penalty, and ξ with and without it is compared over runs.

Default: 10 settings, populations of 4, 3 processes per process setting, seeds per run,
mitigation on (7 more settings), 500 steps: 17 variants, 30 processes. Measured before
`plan_step_loop` was added (two more in-process populations of 4): 718 s wall, 368 s CPU, on 2 CPU cores shared with other jobs (load average ~6). Result then:
top-1 97.6-97.9% without the penalty; on XLA:CPU the device count, fast math and the
optimization level change the bits (L2 against control_process 0.04-0.11, weights never
identical) but almost no label (churn 0-0.09%); seed noise gives top-1 std 0.1-0.5 pt and
per-class std max ~2 pt, every per-class/top-1 ratio inside its shuffled-class null. With
the boundary-alignment penalty (weight 1): top-1 ~97.0%, runs far less stable across
implementations (churn against the reference 1.0-1.4%), the max per-class ratio above its
null; mean Δ higher with the penalty (Welch over 3 runs, Holm p = 0.03), ξ no detectable
difference (p = 0.25). The cost of determinism is "not applicable: CPU kernels are
deterministic". Smoke expected result: control's 2 members and devices_2's 2 processes are
each bitwise identical (fixed seeds); devices_2 differs from control in the bits (L2 ~1e-6)
but not in any label.

`train_json=PATH` loads a training config saved as JSON: how the study hands its training
config to the subprocess runs (`python -m experiments.determinism --train_one`).
"""

from __future__ import annotations

import json

import ml_collections

from experiments.configs import common


def load_json_config(path: str) -> ml_collections.ConfigDict:
  """A training config saved as JSON (the subprocess runs' `train_config.json`)."""
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))


def get_config(arg=None):
  if arg and arg.startswith("train_json="):
    return load_json_config(arg.split("=", 1)[1])
  args = common.parse_arg(arg, variants=("smoke",))
  smoke = args.variant == "smoke"
  c = common.base_config()
  c.dataset.name = "digits_groups"
  c.model.name = "mlp"
  c.model.kwargs.hidden = (256, 256)
  c.model.kwargs.width_multiplier = 1.0
  c.seeds.vary = ""  # Each setting says which seeds vary.
  c.population.members = 2 if smoke else 4  # In-process populations.
  c.train.steps = 500
  c.train.checkpoint_every = 500
  if smoke:
    common.smoke(c)
  c.study = ml_collections.ConfigDict(dict(
      settings=(("control", "devices_2") if smoke else
                ("control", "init_only", "data_order_only", "algo", "control_process",
                 "devices_2", "devices_4", "fast_math", "opt_level_0", "plan_step_loop")),
      impl_repeats=2 if smoke else 3,     # Processes per process setting.
      impl_seeds="fixed" if smoke else "per_run",
      isolate=False,                      # True: every setting in its own processes.
      timeout_s=600.0,
      group_attribute="subgroup",         # '' for none.
      # Section 8 mitigation: weight * sum_a |E_a[d(x)] - E[d(x)]| added to the loss.
      mitigation=ml_collections.ConfigDict(dict(
          weight=0.0 if smoke else 1.0, proximity="gini", repeats=3)),
      # Delta(a) over implementation settings: group test 'loss' or 'error', reduced by
      # 'range' | 'mean_abs_deviation' | 'std'.
      sensitivity=ml_collections.ConfigDict(dict(metric="loss", reduce="range")),
      # Per-group gradient norm and top Hessian eigenvalue (Lanczos) of the control run.
      # Off in the smoke: its compilation alone is ~10 s (tests/studies cover it).
      mechanism=ml_collections.ConfigDict(dict(
          enabled=not smoke, split="train", max_examples=512 if smoke else 0,
          num_iters=8 if smoke else 20)),
      max_images=32,
      compare=(),                         # Workdirs to analyse instead (--compare).
  ))
  c.efficiency = ml_collections.ConfigDict(dict(latency_repeats=1, measure_batch=1,
                                                time_latency=False))
  c.report = ml_collections.ConfigDict(dict(
      title="Determinism: run-to-run variation",
      axes=("efficiency.seconds_per_step",), metrics=("accuracy.top1", "hidden_costs.churn",
                                                       "hidden_costs.per_class_std_max"),
      reference=""))
  return c
