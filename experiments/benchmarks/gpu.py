r"""GPU populations: throughput, model FLOP utilisation, the cost of deterministic kernels.

    python -m experiments.benchmarks.gpu [--members=4] [--steps=50] [--batch=128]
        [--models=resnet20,wrn16_4] [--workdir=/tmp/gpu_benchmark]

On a machine with a GPU, for each model (ResNet-20; WRN-16-4 unless left out) and compute
dtype (float32, bfloat16) a population of `--members` trains on random CIFAR-shaped inputs
(32x32x3, 10 classes) with `tradeoffs.train.fit` under the GPU execution plan (`auto`:
`scan_vmap`), compilation excluded. Printed per row: population steps/s, member-images/s,
model FLOPs per step (XLA cost analysis of the compiled step), achieved TFLOP/s and model
FLOP utilisation (MFU) against the measured peak of a large matmul in the same dtype (and
the nominal dense peak for known devices). Then the same measurement runs in a subprocess
with `--xla_gpu_deterministic_ops=true` added to XLA_FLAGS (deterministic kernels, the
`control` setting of the determinism study) and the slowdown is printed.

Last, it trains `experiments/configs/digits_cnn.py:smoke` (embedded data: no download)
into `--workdir`/digits_cnn_gpu: a normal `experiments.train` workdir. Train the same
config on CPU and hold the two against each other:

    python -m experiments.train --config=experiments/configs/digits_cnn.py:smoke \
        --workdir=/tmp/digits_cnn_cpu
    python -m experiments.determinism --compare=/tmp/digits_cnn_cpu,<workdir>/digits_cnn_gpu \
        --workdir=/tmp/compare

(The execution plans differ by backend, step_loop on CPU and scan_vmap on GPU; both are
recorded in environment.json.) Without a GPU it says so in one line and exits 0.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
import types

from absl import app
from absl import flags
from absl import logging

_MEMBERS = flags.DEFINE_integer("members", 4, "Population size.")
_STEPS = flags.DEFINE_integer("steps", 50, "Timed steps per measurement (one dispatch).")
_BATCH = flags.DEFINE_integer("batch", 128, "Batch size per member.")
_ROUNDS = flags.DEFINE_integer("rounds", 3, "Timed repeats (median).")
_MODELS = flags.DEFINE_list("models", ["resnet20", "wrn16_4"], "Models to measure.")
_DTYPES = flags.DEFINE_list("dtypes", ["float32", "bfloat16"], "Compute dtypes.")
_WORKDIR = flags.DEFINE_string("workdir", "/tmp/gpu_benchmark",
                               "Where the digits CNN comparison workdir is written.")
_DETERMINISM = flags.DEFINE_bool("determinism", True,
                                 "Also measure with --xla_gpu_deterministic_ops=true.")
_CHILD = flags.DEFINE_bool("child", False, "Internal: measure only, print JSON rows.")

DETERMINISTIC_FLAG = "--xla_gpu_deterministic_ops=true"
# Nominal dense peaks (TFLOP/s) for the MFU column; the measured matmul peak is always shown.
NOMINAL_PEAK_TFLOPS = {  # device_kind substring: {dtype: TFLOP/s}
    "H200": {"float32": 67.0, "bfloat16": 989.0},
    "H100": {"float32": 67.0, "bfloat16": 989.0},
    "A100": {"float32": 19.5, "bfloat16": 312.0},
}


def gpu_present() -> tuple[bool, str]:
  """(whether JAX sees a GPU, the backend it sees), without failing when there is none."""
  import jax
  try:
    devices = jax.devices("gpu")
  except RuntimeError:
    devices = []
  return bool(devices), jax.default_backend()


def matmul_peak(dtype: str, n: int = 8192, repeats: int = 10) -> float:
  import jax
  import jax.numpy as jnp
  a = jax.random.normal(jax.random.key(0), (n, n), jnp.float32).astype(dtype)
  f = jax.jit(lambda x: x @ x)
  f(a).block_until_ready()
  times = []
  for _ in range(repeats):
    start = time.perf_counter()
    f(a).block_until_ready()
    times.append(time.perf_counter() - start)
  return 2 * n**3 / statistics.median(times)


def measure(model_name: str, dtype: str) -> dict:
  """One population's training throughput and FLOPs per step."""
  import jax
  import jax.numpy as jnp
  import numpy as np
  from tradeoffs import models, train
  from tradeoffs.train import mesh as mesh_lib
  from tradeoffs.train import plan as plan_lib
  from tradeoffs.train import population as pop_lib

  members, steps, batch = _MEMBERS.value, _STEPS.value, _BATCH.value
  rng = np.random.default_rng(0)
  n = 8192
  split = types.SimpleNamespace(
      images=rng.standard_normal((n, 32, 32, 3)).astype(np.float32),
      labels=rng.integers(0, 10, n).astype(np.int32), groups=np.zeros((n, 0), np.int32))
  net = models.get(model_name, num_classes=10, dtype=getattr(jnp, dtype))
  tx = train.make_optimizer({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9}, steps)
  mesh = mesh_lib.make_mesh(members)
  state = pop_lib.create_population(net, tx, (32, 32, 3), members, train.Seeds(), mesh)
  data = pop_lib.to_device(split, mesh)
  plan, _ = plan_lib.rule(jax.default_backend(), convolutional=True)
  config = pop_lib.StepConfig(batch_size=batch)
  runner = pop_lib.make_runner(config, mesh, steps, plan)
  flops = 0.0
  if plan.name == "scan_vmap":
    cost = runner.lower(state, data).compile().cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    flops = float(cost.get("flops", 0.0))  # a scan's body is counted once: per step
  state, _ = runner(state, data)  # compile and warm up
  jax.block_until_ready(state.params)
  times = []
  for _ in range(_ROUNDS.value):
    start = time.perf_counter()
    state, _ = runner(state, data)
    jax.block_until_ready(state.params)
    times.append(time.perf_counter() - start)
  seconds = statistics.median(times)
  return {"model": model_name, "dtype": dtype, "members": members, "batch": batch,
          "plan": plan.name, "pool": plan.pool, "conv": plan.conv,
          "steps_per_second": steps / seconds,
          "images_per_second": steps * members * batch / seconds,
          "flops_per_step": flops, "achieved_flops": flops * steps / seconds,
          "xla_flags": os.environ.get("XLA_FLAGS", "")}


def measure_all() -> list[dict]:
  return [measure(m, d) for m in _MODELS.value for d in _DTYPES.value]


def deterministic_rows() -> list[dict] | str:
  """The same measurements in a subprocess with deterministic GPU kernels."""
  env = dict(os.environ)
  env["XLA_FLAGS"] = " ".join([env.get("XLA_FLAGS", ""), DETERMINISTIC_FLAG]).strip()
  args = [sys.executable, "-m", "experiments.benchmarks.gpu", "--child",
          f"--members={_MEMBERS.value}", f"--steps={_STEPS.value}", f"--batch={_BATCH.value}",
          f"--rounds={_ROUNDS.value}", f"--models={','.join(_MODELS.value)}",
          f"--dtypes={','.join(_DTYPES.value)}"]
  done = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
  rows = [json.loads(line[len("ROW "):]) for line in done.stdout.splitlines()
          if line.startswith("ROW ")]
  if done.returncode or not rows:
    return f"deterministic-kernel run failed (exit {done.returncode}): {done.stderr[-2000:]}"
  return rows


def comparison_workdir(root: str) -> str:
  from experiments.configs import digits_cnn
  from tradeoffs.train import experiment
  workdir = os.path.join(root, "digits_cnn_gpu")
  experiment.run(digits_cnn.get_config("smoke"), workdir)
  return workdir


def main(argv):
  del argv
  present, backend = gpu_present()
  if not present:
    print(f"experiments.benchmarks.gpu: no GPU visible to JAX (backend {backend}); it "
          "measures GPU population throughput, MFU and deterministic-kernel cost on a GPU "
          "machine; nothing to do here.")
    return 0
  logging.set_verbosity(logging.WARNING)
  rows = measure_all()
  if _CHILD.value:
    for row in rows:
      print("ROW " + json.dumps(row))
    return 0
  import jax
  kind = jax.devices()[0].device_kind
  nominal = next((v for k, v in NOMINAL_PEAK_TFLOPS.items() if k in kind), {})
  peaks = {d: matmul_peak(d) for d in _DTYPES.value}
  print(f"{kind} x{jax.device_count()}; measured matmul peak "
        + ", ".join(f"{d} {p / 1e12:.0f} TFLOP/s" for d, p in peaks.items())
        + f"; population of {_MEMBERS.value}, batch {_BATCH.value}, {_STEPS.value} steps "
        f"per dispatch, median of {_ROUNDS.value}")
  print(f"{'model':10s} {'dtype':9s} {'plan':10s} {'steps/s':>8s} {'img/s':>9s} "
        f"{'GFLOP/step':>10s} {'TFLOP/s':>8s} {'MFU(meas)':>9s} {'MFU(nom)':>8s}")
  for r in rows:
    achieved = r["achieved_flops"]
    nom = nominal.get(r["dtype"])
    print(f"{r['model']:10s} {r['dtype']:9s} {r['plan']:10s} {r['steps_per_second']:8.2f} "
          f"{r['images_per_second']:9.0f} {r['flops_per_step'] / 1e9:10.1f} "
          f"{achieved / 1e12:8.2f} {achieved / peaks[r['dtype']]:9.1%} "
          + (f"{achieved / (nom * 1e12):8.1%}" if nom else f"{'-':>8s}"))
  if _DETERMINISM.value:
    det = deterministic_rows()
    if isinstance(det, str):
      print(det)
    else:
      print(f"\ndeterministic kernels ({DETERMINISTIC_FLAG}) vs default, steps/s:")
      for a, b in zip(rows, det):
        print(f"  {a['model']:10s} {a['dtype']:9s} {b['steps_per_second']:8.2f} vs "
              f"{a['steps_per_second']:8.2f}: "
              f"{a['steps_per_second'] / b['steps_per_second']:.2f}x slower")
  workdir = comparison_workdir(_WORKDIR.value)
  print(f"\ncomparison workdir: {workdir}\n  on a CPU machine: python -m experiments.train "
        "--config=experiments/configs/digits_cnn.py:smoke --workdir=/tmp/digits_cnn_cpu\n"
        f"  then: python -m experiments.determinism --compare=/tmp/digits_cnn_cpu,{workdir} "
        "--workdir=/tmp/compare")
  return 0


if __name__ == "__main__":
  app.run(main)
