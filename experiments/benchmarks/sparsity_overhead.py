"""Overhead of the sparsity wrapper vs dense training (prints ratios; asserts nothing).

    python -m experiments.benchmarks.sparsity_overhead --rounds 7

Setup (ANCHOR_NUMBERS.md): MLP 64-256-256-10 with ReLU, Adam 1e-3, batch 128, 220 steps
(20 epochs of the digits set; random data of that shape, so the numbers do not depend on the
data package). Configurations, each timed as a whole 220-step run, interleaved over rounds,
shuffled order per round, median per configuration, ratio to the dense run of the same mode:
  dense          optax.adam
  fixed          masked(adam) with fixed random 90% masks (wrapper cost only)
  gmp_global     gradual magnitude pruning to 90%, steps 0..200, masks every 10 steps, global
  gmp_uniform    same, layer-wise uniform
  one_shot       one-shot global magnitude pruning to 90% at step 110
Modes: 'step' (a jitted step called per batch from Python) and 'scan' (lax.scan over all
steps in one program). `--members N` adds the same comparison for a vmapped population of N
(the step count is batched there; `cond_any_member` keeps the mask update a cond, so it still
runs on update steps only).
"""

from __future__ import annotations

import argparse
import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tradeoffs import sparsity

SIZES = (64, 256, 256, 10)


def init_mlp(key):
  params = {}
  for i, (fan_in, fan_out) in enumerate(zip(SIZES[:-1], SIZES[1:])):
    key, sub = jax.random.split(key)
    params[f"dense_{i}"] = {
        "kernel": jax.random.normal(sub, (fan_in, fan_out)) * np.sqrt(2.0 / fan_in),
        "bias": jnp.zeros((fan_out,))}
  return params


def loss_fn(params, x, y):
  h = x
  for i in range(len(SIZES) - 1):
    layer = params[f"dense_{i}"]
    h = h @ layer["kernel"] + layer["bias"]
    if i < len(SIZES) - 2:
      h = jax.nn.relu(h)
  return optax.softmax_cross_entropy_with_integer_labels(h, y).mean()


def make_optimizers(key):
  adam = optax.adam(1e-3)
  fixed_masks = lambda p: sparsity.random_masks(key, p, 0.9)  # noqa: E731
  gmp = sparsity.gradual(0.9, begin_step=0, end_step=200, frequency=10)
  return {
      "dense": adam,
      "fixed": sparsity.masked(adam, sparsity.fixed(0.9), init_masks=fixed_masks),
      "gmp_global": sparsity.masked(adam, gmp, "global"),
      "gmp_uniform": sparsity.masked(adam, gmp, "uniform"),
      "one_shot": sparsity.masked(adam, sparsity.one_shot(0.9, 110), "global"),
  }


def _one_step(tx, carry, batch):
  params, state = carry
  grads = jax.grad(loss_fn)(params, *batch)
  updates, state = tx.update(grads, state, params)
  return optax.apply_updates(params, updates), state


def build_runners(tx, members: int):
  """(init, run_step_mode, run_scan_mode) for one optimizer; members=0 means a single model."""

  def step(carry, batch):
    return _one_step(tx, carry, batch), None

  if members:
    single_step = step

    def step(carry, batch):  # noqa: F811 - same batch for every member
      return jax.vmap(lambda c: single_step(c, batch)[0])(carry), None
    init = jax.jit(lambda p: (p, jax.vmap(tx.init)(p)))
  else:
    init = jax.jit(lambda p: (p, tx.init(p)))

  jit_step = jax.jit(lambda carry, batch: step(carry, batch)[0], donate_argnums=(0,))
  jit_scan = jax.jit(lambda carry, xs, ys: jax.lax.scan(step, carry, (xs, ys))[0],
                     donate_argnums=(0,))

  def run_step(carry, xs, ys):
    for i in range(xs.shape[0]):
      carry = jit_step(carry, (xs[i], ys[i]))
    return carry

  def run_scan(carry, xs, ys):
    return jit_scan(carry, xs, ys)

  return init, run_step, run_scan


def time_all(runners, params, xs, ys, rounds):
  # Warm up (compile) every runner once.
  for init, run in runners.values():
    jax.block_until_ready(run(init(params), xs, ys))
  times = {name: [] for name in runners}
  order = list(runners)
  rng = np.random.default_rng(0)
  for _ in range(rounds):
    rng.shuffle(order)  # a fresh order each round, so slow phases of a shared machine spread out
    for name in order:
      init, run = runners[name]
      carry = jax.block_until_ready(init(params))
      start = time.perf_counter()
      jax.block_until_ready(run(carry, xs, ys))
      times[name].append(time.perf_counter() - start)
  return {name: float(np.median(t)) for name, t in times.items()}


def time_calls(candidates, reps):
  """Median seconds per call of each jitted fn, calls interleaved across candidates."""
  for fn, args in candidates.values():
    jax.block_until_ready(fn(*args))
  times = {name: [] for name in candidates}
  for _ in range(reps):
    for name, (fn, args) in candidates.items():
      start = time.perf_counter()
      jax.block_until_ready(fn(*args))
      times[name].append(time.perf_counter() - start)
  return {name: float(np.median(t)) for name, t in times.items()}


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--rounds", type=int, default=9)
  parser.add_argument("--steps", type=int, default=220)
  parser.add_argument("--batch", type=int, default=128)
  parser.add_argument("--members", type=int, default=0, help="also time a vmapped population")
  args = parser.parse_args()

  key = jax.random.key(0)
  k_params, k_x, k_y, k_mask = jax.random.split(key, 4)
  xs = jax.random.uniform(k_x, (args.steps, args.batch, SIZES[0]))
  ys = jax.random.randint(k_y, (args.steps, args.batch), 0, SIZES[-1])
  optimizers = make_optimizers(k_mask)
  print(f"jax {jax.__version__} on {jax.devices()[0].device_kind}; {args.steps} steps, "
        f"batch {args.batch}, {args.rounds} interleaved rounds, median")

  settings = [("single", 0, init_mlp(k_params))]
  if args.members:
    settings.append((f"vmap x{args.members}", args.members,
                     jax.vmap(init_mlp)(jax.random.split(k_params, args.members))))
  for label, members, params in settings:
    runners = {}
    for name, tx in optimizers.items():
      init, run_step, run_scan = build_runners(tx, members)
      runners[(name, "step")] = (init, run_step)
      runners[(name, "scan")] = (init, run_scan)
    medians = time_all(runners, params, xs, ys, args.rounds)
    per_step = {mode: 1e3 * medians[("dense", mode)] / args.steps for mode in ("step", "scan")}
    print(f"\n[{label}] ratio to dense (dense ms/step: step {per_step['step']:.3f}, "
          f"scan {per_step['scan']:.3f})")
    print(f"{'configuration':<14} {'step per batch':>15} {'scanned':>10}")
    for name in optimizers:
      ratios = [medians[(name, mode)] / medians[("dense", mode)] for mode in ("step", "scan")]
      print(f"{name:<14} {ratios[0]:>15.3f} {ratios[1]:>10.3f}")

  # The mask update alone, in dense steps: the quantity jaxpruner's full sort made ~30.
  params = init_mlp(k_params)
  dense_init, _, _ = build_runners(optimizers["dense"], 0)
  dense_step = jax.jit(functools.partial(_one_step, optimizers["dense"]))
  kernels = [l["kernel"] for l in params.values()]
  candidates = {
      "dense step": (dense_step, (dense_init(params), (xs[0], ys[0]))),
      "magnitude_masks global": (jax.jit(lambda p: sparsity.magnitude_masks(p, 0.9)), (params,)),
      "magnitude_masks uniform": (
          jax.jit(lambda p: sparsity.magnitude_masks(p, 0.9, "uniform")), (params,)),
      "full argsort (reference)": (
          jax.jit(lambda ks: [jnp.argsort(jnp.abs(k).ravel()) for k in ks]), (kernels,)),
  }
  cost = time_calls(candidates, reps=50 * args.rounds)
  print("\nmask update cost, in dense steps (median of interleaved calls):")
  for name, seconds in cost.items():
    print(f"  {name:<26} {seconds / cost['dense step']:7.2f}   ({1e3 * seconds:.3f} ms)")

  # Check the pruned runs reach their sparsity (a sanity line, not an assertion).
  init, _, run_scan = build_runners(optimizers["gmp_global"], 0)
  final_params, state = run_scan(init(init_mlp(k_params)), xs, ys)
  summary = sparsity.summarize_sparsity(final_params, filter_fn=sparsity.default_filter)
  print(f"\ngmp_global final kernel sparsity: {float(summary['total']['sparsity']):.4f}")


if __name__ == "__main__":
  main()
