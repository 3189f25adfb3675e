"""Benchmark: encoded (beta=2, k=4) vs uncoded (all 8) under shifted-exponential stragglers.

Ridge regression, m = 8 workers, simulated time (k-th order statistic of delays plus
compute proportional to rows held). Prints a table; asserts nothing. Target: encoded
reaches 1% relative suboptimality >= 2x sooner than uncoded waiting for all 8, and has a
lower error floor than uncoded that ignores stragglers (beta=1, k=4).

  python -m experiments.benchmarks.coded_stragglers [--seed=0] [--steps=400]
"""

from __future__ import annotations

import argparse

import jax
import numpy as np

from tradeoffs import coded

SCHEMES = (("uncoded", 1.0, 8), ("uncoded", 1.0, 4), ("replication", 2.0, 4),
           ("gaussian", 2.0, 4), ("hadamard", 2.0, 4), ("paley", 2.0, 4))


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--seed", type=int, default=0)
  parser.add_argument("--steps", type=int, default=400)
  parser.add_argument("--n", type=int, default=4096)
  parser.add_argument("--d", type=int, default=16)
  args = parser.parse_args()
  root = jax.random.key(args.seed)
  kx, kw, ke, kd = jax.random.split(root, 4)
  x = jax.random.normal(kx, (args.n, args.d))
  y = x @ jax.random.normal(kw, (args.d,)) + jax.random.normal(ke, (args.n,))
  problem = coded.make_problem(x, y, l2=1e-3)
  w_star = coded.optimum(problem)
  m = 8
  delays = coded.sample_delays("shifted_exponential", kd, args.steps, m, shift=1.0, rate=1.0)
  rows = []
  for i, (kind, beta, k) in enumerate(SCHEMES):
    data = coded.encode_problem(problem, kind, beta, m, jax.random.fold_in(root, 100 + i))
    trace = coded.run(problem, data, delays, k, w_star=w_star, compute_seconds_per_row=1e-4)
    rel = coded.relative_suboptimality(trace.suboptimality, trace.optimum_value)
    rows.append((f"{kind} beta={beta:g} k={k}", trace.time[-1] / args.steps,
                 coded.time_to_epsilon(trace.time, rel, 0.01), coded.error_floor(rel)))
  base = rows[0][2]
  print(f"seed={args.seed} n={args.n} d={args.d} m={m} steps={args.steps} "
        "delays=shift 1 + Exp(1) s, compute 1e-4 s/row, gd step 1/L")
  print(f"{'scheme':<26}{'s/iter':>8}{'t(1%)':>9}{'speed-up':>10}{'floor':>11}")
  for name, per_iter, t_eps, floor in rows:
    speedup = base / t_eps if np.isfinite(t_eps) else 0.0
    print(f"{name:<26}{per_iter:>8.3f}{t_eps:>9.2f}{speedup:>9.2f}x{floor:>11.2e}")


if __name__ == "__main__":
  main()
