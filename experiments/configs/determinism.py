r"""Determinism study: one training config under noise settings x repeats.

Command (CPU, the default digits MLP on `digits_groups`):
  python -m experiments.determinism --config=experiments/configs/determinism.py \
      --workdir=workdirs/determinism
Smoke (2 settings x 2 repeats, 20 steps; ~30-50 s on 2 busy cores, mostly process start-up):
  python -m experiments.determinism --config=experiments/configs/determinism.py:smoke \
      --workdir=/tmp/determinism_smoke
Compare workdirs from different machines (e.g. `experiments.train` on CPU here, on GPU there):
  python -m experiments.determinism --compare=/runs/cpu,/runs/gpu --workdir=/tmp/compare

Settings (`--config.settings`): algorithmic `control`, `algo`, `init_only`,
`data_order_only`, `augment_only` (needs augmentation), `dropout_only` run in-process as one
population of `repeats` members; `control_process` is control with one member per
process (the reference of the settings below, so that they are not confounded with
population vs single-member programs); implementation settings `devices_<N>`, `fast_math`,
`opt_level_<N>`, `precision_<P>`, `prng_<impl>`, `gpu_default`, `gpu_deterministic`, `tpu`
and custom `<name>=--xla_<flag>=<value>` vary no seed and run `impl_repeats` processes each
when they change something fixed at JAX start-up (a missing backend is reported skipped).
With `mitigation.weight > 0` every implementation setting is run again with the
boundary-alignment penalty, to compare the fairness violation xi with and without it.

Expected runtime of the default: ~4-5 minutes on 2 CPU cores (5 in-process populations,
10 + 5 single-member processes of ~10-15 s each, 500 steps). Expected result: on XLA:CPU every
setting is bitwise reproducible run to run (control, devices_*, fast_math, opt_level_0:
identical logits and weights across processes); changing the device count, fast math or
the optimization level changes the bits (churn against control of a few test examples);
algorithmic noise gives top-1 std ~0.3-0.6 points and per-class std several times larger;
the cost of determinism is "not applicable: CPU kernels are deterministic".

The training config is also loadable from JSON, which is how the study hands its (possibly
overridden) training config to the subprocess runs: `determinism.py:train_json=PATH`.
"""

from __future__ import annotations

import ml_collections

from experiments.configs import common
from experiments.configs import digits_mlp


def get_config(arg=None):
  if arg and arg.startswith("train_json="):
    from tradeoffs.determinism import study  # pylint: disable=g-import-not-at-top
    return study.load_json_config(arg.split("=", 1)[1])
  args = common.parse_arg(arg, variants=("smoke",))
  smoke = args.variant == "smoke"
  c = ml_collections.ConfigDict()
  c.training = digits_mlp.get_config("smoke" if smoke else None)
  c.training.dataset.name = "digits_groups"
  c.training.seeds.vary = ""
  if not smoke:
    c.training.train.steps = 500
    c.training.train.checkpoint_every = 500
  c.settings = (("control", "devices_2") if smoke else
                ("control", "init_only", "data_order_only", "algo", "control_process",
                 "devices_2", "devices_4", "fast_math", "opt_level_0"))
  c.repeats = 2 if smoke else 4          # In-process populations (algorithmic settings).
  c.impl_repeats = 2                     # Processes per implementation setting.
  c.isolate = False                      # True: every setting in its own processes.
  c.timeout_s = 600.0
  c.group_attribute = "subgroup"
  # Section 8 mitigation: weight * sum_a |E_a[d(x)] - E[d(x)]| added to the training loss.
  c.mitigation = ml_collections.ConfigDict(dict(
      weight=0.0 if smoke else 1.0, proximity="gini", repeats=1))
  # Delta(a) over implementation settings: group test 'loss' or 'error', reduced by
  # 'range' | 'mean_abs_deviation' | 'std'.
  c.sensitivity = ml_collections.ConfigDict(dict(metric="loss", reduce="range"))
  # Per-group gradient norm and top Hessian eigenvalue (Lanczos) of the control run.
  c.mechanism = ml_collections.ConfigDict(dict(
      enabled=True, split="train", max_examples=512 if smoke else 0,
      num_iters=8 if smoke else 20))
  c.report = ml_collections.ConfigDict(dict(max_images=32))
  return c
