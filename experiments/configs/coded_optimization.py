"""Coded and encoded optimization against stragglers (Karakus et al.; Tandon et al.).

Command:
  python -m experiments.coded_optimization \
    --config=experiments/configs/coded_optimization.py --workdir=/tmp/coded
Smoke (seconds, laptop CPU):
  python -m experiments.coded_optimization \
    --config=experiments/configs/coded_optimization.py:smoke --workdir=/tmp/coded_smoke

Hardware: CPU is enough (the workers are simulated; `mesh_devices` lays them out over
devices with shard_map). Expected runtime: ~2-4 minutes on a laptop CPU for the default
sweep, ~15-30 s for smoke (mostly compilation).
Expected result (ridge, m=8, shifted-exponential delays): encoded schemes with beta=2
waiting for k=4 reach 1% relative suboptimality in roughly half the simulated time of
uncoded waiting for all 8, at a small error floor; uncoded ignoring stragglers (beta=1,
k=4) plateaus at a higher floor; gradient codes (s=1, k=7) converge to the exact optimum.
"""

from __future__ import annotations

import ml_collections


def get_config(arg: str | None = None) -> ml_collections.ConfigDict:
  smoke = arg == "smoke"
  if arg not in (None, "", "smoke"):
    raise ValueError(f"config arg {arg!r} is not known; allowed: '' or 'smoke'")
  config = ml_collections.ConfigDict()
  config.seed = 0
  config.problem = ml_collections.ConfigDict(dict(
      loss="least_squares",  # least_squares | logistic
      num_examples=256 if smoke else 4096, dim=8 if smoke else 16, noise=1.0,
      l2=1e-3, l1=0.0))
  config.num_workers = 8
  config.steps = 60 if smoke else 400
  config.optimizer = "gd"  # gd | lbfgs | prox (prox when problem.l1 > 0)
  config.step_scale = 1.0  # gd/prox: step = step_scale / L; lbfgs: step = step_scale; in (0, 2).
  config.memory = 5  # L-BFGS pairs.
  config.compute_seconds_per_row = 1e-4  # Simulated compute, proportional to a worker's rows.
  config.epsilon = 0.01  # Time to reach (f - f*) / f* <= epsilon.
  config.mesh_devices = 0  # 0: single device; -1: all devices; else that many devices.
  config.sweep = ml_collections.ConfigDict(dict(
      encodings=("uncoded", "gaussian", "hadamard") if smoke else
      ("uncoded", "replication", "gaussian", "hadamard", "paley"),
      betas=(1.0, 2.0) if smoke else (1.0, 1.5, 2.0, 3.0),
      ks=(4, 8),
      stragglers=("shifted_exponential",) if smoke else
      ("shifted_exponential", "fixed_slow", "pareto", "bimodal")))
  config.straggler_params = ml_collections.ConfigDict(dict(
      shifted_exponential=dict(shift=1.0, rate=1.0),
      fixed_slow=dict(num_slow=2, base=1.0, slow_delay=4.0, persistent=False),
      pareto=dict(scale=1.0, alpha=2.0),
      bimodal=dict(base=1.0, slow_delay=4.0, p_slow=0.2, jitter=0.1),
      trace=dict(path="", wrap=False)))
  config.gradient_coding = ml_collections.ConfigDict(dict(
      codes=("fractional_repetition", "cyclic"), num_stragglers=1, k=7))
  config.diagnostics = ml_collections.ConfigDict(dict(rip_n=32 if smoke else 64, rip_sets=16))
  # Real executor ('' off, 'ray' or 'process_pool'): re-runs the encoded schemes with
  # delays injected (scaled by time_scale) for executor_steps iterations.
  config.executor = ml_collections.ConfigDict(dict(
      name="", steps=10, time_scale=0.01, schemes=("hadamard/beta=2/k=4",)))
  return config
