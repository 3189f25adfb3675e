r"""Framework overhead: the project's training loop against a bare jitted step.

    python -m experiments.benchmarks.training_overhead [--steps=1100] [--rounds=3]
        [--models=mlp,cnn] [--cnn_steps=1100]

Same model, optimizer (Adam 1e-3), batch 128 and process, for the MLP 64-256-256-10 and
the digits CNN 32-64-128 (pad-crop; one member, under its execution plan: on CPU one step
per dispatch, max-pooling reshaped, `tradeoffs.train.plan`). Compared:
  bare/step   a jitted (params, opt_state, x, y) step called once per pre-batched array
              (the CNN lowered as the plan lowers it; bare/as-written: flax's own pooling)
  bare/scan   the same step scanned over an epoch of pre-batched arrays
  project     `tradeoffs.train.experiment.train_population` with its in-jit data pipeline,
              logging (every 100 steps), evaluation and checkpoint cadence (every 500)
  project/steps-only  the same with evaluation and checkpoints only at the end: the
              per-step overhead alone (the difference to `project` is the cadence's cost)
Rounds are interleaved; the median steps/s of each is printed with ratios. Compilation
is excluded (each contender runs once before timing). Prints; asserts nothing.

Measured 2026-12-02 on this 2-core machine (load ~1.1, 1100 steps, median of 3), project /
bare-step: MLP 0.91 (steps only 1.01; 1151 against 1259 steps/s), digits CNN 0.90 (steps
only 0.92; 264 against 294 steps/s). The CNN used to be timed over 200 steps, where the
final checkpoint's wait is a larger share of a run than in any real one.
"""

from __future__ import annotations

import os
import shutil
import statistics
import tempfile
import time

from absl import app
from absl import flags
from absl import logging

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.configs import digits_cnn, digits_mlp
from experiments.benchmarks.bare_loops import bare_step_loop
from tradeoffs import data, models
from tradeoffs.train import checkpoint as checkpoint_lib
from tradeoffs.train import experiment
from tradeoffs.train import plan as plan_lib

_STEPS = flags.DEFINE_integer("steps", 1100, "Training steps per timed run.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Interleaved timing rounds.")
_MODELS = flags.DEFINE_list("models", ["mlp", "cnn"], "Models to measure.")
_CNN_STEPS = flags.DEFINE_integer("cnn_steps", 1100, "Training steps per CNN run (the "
                                  "digits CNN config's length: its eval/checkpoint cadence).")


def bare_contenders(ds, steps, batch_size=128):
  net = models.get("mlp", num_classes=10, hidden=(256, 256))
  tx = optax.adam(1e-3)
  params = net.init(jax.random.key(0), jnp.zeros((1, 8, 8, 1)))["params"]
  per_epoch = len(ds.train) // batch_size
  rng = np.random.default_rng(0)
  order = np.concatenate([rng.permutation(len(ds.train))[:per_epoch * batch_size]
                          for _ in range(-(-steps // per_epoch))])[:steps * batch_size]
  xs = jax.device_put(ds.train.images[order].reshape(steps, batch_size, 8, 8, 1))
  ys = jax.device_put(ds.train.labels[order].reshape(steps, batch_size))

  def loss_fn(p, x, y):
    logits = net.apply({"params": p}, x, train=True)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

  def step(carry, batch):
    p, o = carry
    grads = jax.grad(loss_fn)(p, *batch)
    updates, o = tx.update(grads, o, p)
    return (optax.apply_updates(p, updates), o), None

  step_jit = jax.jit(lambda c, x, y: step(c, (x, y))[0], donate_argnums=(0,))
  scan_jit = jax.jit(lambda c, x, y: jax.lax.scan(step, c, (x, y))[0], donate_argnums=(0,))

  def per_step():
    carry = jax.tree.map(jnp.copy, (params, tx.init(params)))
    for i in range(steps):
      carry = step_jit(carry, xs[i], ys[i])
    jax.block_until_ready(carry)

  def scanned():
    chunk = 100
    carry = jax.tree.map(jnp.copy, (params, tx.init(params)))
    for start in range(0, steps, chunk):
      carry = scan_jit(carry, xs[start:start + chunk], ys[start:start + chunk])
    jax.block_until_ready(carry)

  return {"bare/step": per_step, "bare/scan": scanned}


def project_contender(ds, steps, config=None, name="project"):
  config = config or digits_mlp.get_config("members=1")
  config.train.steps = steps
  # Built once, like a run: every round trains a fresh copy of the same initial state.
  mesh, dataset, _, initial, step_config = experiment.build(config, dataset=ds)

  def run():
    workdir = tempfile.mkdtemp(prefix="overhead_")
    try:
      state = jax.tree.map(jnp.copy, initial)
      state, _, _ = experiment.train_population(config, workdir, state=state, mesh=mesh,
                                                dataset=dataset, step_config=step_config)
      jax.block_until_ready(state.params)
    finally:
      shutil.rmtree(workdir, ignore_errors=True)

  return {name: run}


def steps_only(config, steps):
  """`config` with evaluation, checkpoints and logging only at the end of `steps`."""
  config.train.eval_every = config.train.checkpoint_every = config.train.log_every = steps
  return config


def cnn_contenders(ds, steps):
  config = digits_cnn.get_config("members=1")
  project = {**project_contender(ds, steps, config),
             **project_contender(ds, steps, steps_only(digits_cnn.get_config("members=1"),
                                                       steps), "project/steps-only")}
  net = models.get("cnn", num_classes=10, channels=(32, 64), dense=128)
  # One member: the auto plan is step_loop with its lowerings (tradeoffs.train.plan).
  plan, _ = plan_lib.rule(jax.default_backend(), convolutional=True)
  loop = lambda model: bare_step_loop(model, optax.adam(1e-3), ds.train.images,  # noqa: E731
                                      ds.train.labels, steps, 128,
                                      data.make_augment(("pad_crop",), pad=1))
  return {"bare/step": loop(net.clone(pooling=plan.pool, convolution=plan.conv)),
          "bare/as-written": loop(net), **project}


def measure(contenders, rounds):
  for fn in contenders.values():  # compile and warm up
    fn()
  times = {name: [] for name in contenders}
  for _ in range(rounds):
    for name, fn in contenders.items():
      start = time.perf_counter()
      fn()
      times[name].append(time.perf_counter() - start)
  return {name: statistics.median(t) for name, t in times.items()}


def main(argv):
  del argv
  checkpoint_lib.quiet_orbax()
  logging.set_verbosity(logging.WARNING)
  ds = data.load("digits")
  load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
  print(f"backend {jax.default_backend()}, {jax.device_count()} device(s), {os.cpu_count()} "
        f"cores, load average {load:.1f}; median of {_ROUNDS.value} interleaved rounds")
  for model in _MODELS.value:
    if model == "mlp":
      steps = _STEPS.value
      contenders = {**bare_contenders(ds, steps), **project_contender(ds, steps),
                    **project_contender(ds, steps, steps_only(
                        digits_mlp.get_config("members=1"), steps), "project/steps-only")}
      title = "MLP 64-256-256-10"
    elif model == "cnn":
      steps = _CNN_STEPS.value
      contenders = cnn_contenders(ds, steps)
      title = "digits CNN 32-64-128 (pad-crop)"
    else:
      raise app.UsageError(f"--models: {model!r} is not 'mlp' or 'cnn'")
    seconds = measure(contenders, _ROUNDS.value)
    rate = {name: steps / s for name, s in seconds.items()}
    print(f"\n{title}: {steps} steps, 1 member")
    for name, r in rate.items():
      print(f"  {name:16s} {r:8.1f} steps/s")
    print(f"  project / bare-step steps/s: {rate['project'] / rate['bare/step']:.2f}  "
          f"(target >= 0.9); steps only: "
          f"{rate['project/steps-only'] / rate['bare/step']:.2f}")
    if "bare/scan" in rate:
      print(f"  project / bare-scan steps/s: {rate['project'] / rate['bare/scan']:.2f}")


if __name__ == "__main__":
  app.run(main)
