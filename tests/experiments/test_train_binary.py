"""End to end: the train binary, resume after kill/SIGTERM, workdir guard, bad input."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow_datasets as tfds

from experiments.configs import cifar10_resnet20, cifar10_wrn28_10, digits_cnn, digits_mlp
from experiments.configs import mnist_mlp
from tradeoffs import workdir as workdir_lib
from tradeoffs.train import experiment
from tradeoffs.train import predictions

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run_binary(workdir, *flags, devices=4, wait=True, env_extra=None):
  env = dict(os.environ)
  env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
  env.update(env_extra or {})
  cmd = [sys.executable, "-m", "experiments.train",
         f"--workdir={workdir}", *flags]
  if not wait:
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
  out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  return out


def _params(workdir):
  with np.load(os.path.join(workdir, "final_params.npz")) as z:
    return {k: z[k] for k in z.files}


@pytest.mark.slow
def test_smoke_binary_writes_the_workdir(tmp_path):
  wd = str(tmp_path / "wd")
  _run_binary(wd, "--config=experiments/configs/digits_mlp.py:smoke,members=2")
  for name in ("config.json", "environment.json", "environment.jsonl", "metrics.jsonl",
               "summary.json", "records.jsonl",
               "final_params.npz", "predictions/test.npz", "checkpoints"):
    assert os.path.exists(os.path.join(wd, name)), name
  env = workdir_lib.read_json(os.path.join(wd, "environment.json"))
  for key in ("versions", "backend", "device_kind", "device_count", "mesh", "xla_flags",
              "matmul_precision", "prng_impl", "threefry_partitionable", "seeds"):
    assert key in env, key
  assert env["device_count"] == 4 and env["mesh"] == {"members": 2, "data": 2}
  preds = predictions.load(wd, "test")
  assert preds.logits.shape == (2, 360, 10) and preds.ids.shape == (360,)
  rows = workdir_lib.read_jsonl(os.path.join(wd, "metrics.jsonl"))
  assert rows[-1]["step"] == 20 and "steps_per_second" in rows[-1]
  assert any(f.startswith("events") for f in os.listdir(os.path.join(wd, "tensorboard")))


@pytest.mark.slow
def test_killed_run_resumes_bitwise_identical(tmp_path):
  flags = ["--config=experiments/configs/digits_mlp.py:smoke,members=2",
           "--config.train.steps=200", "--config.train.checkpoint_every=20"]
  reference = str(tmp_path / "reference")
  _run_binary(reference, *flags)
  killed = str(tmp_path / "killed")
  proc = _run_binary(killed, *flags, wait=False)
  ckpt_dir = os.path.join(killed, "checkpoints")
  deadline = time.time() + 120
  while time.time() < deadline and proc.poll() is None:
    steps = [d for d in os.listdir(ckpt_dir) if d.isdigit()] if os.path.isdir(ckpt_dir) else []
    if steps:
      proc.send_signal(signal.SIGKILL)
      break
    time.sleep(0.05)
  proc.wait(timeout=60)
  assert proc.returncode == -signal.SIGKILL, "the run finished before it could be killed"
  assert not os.path.exists(os.path.join(killed, "final_params.npz"))
  out = _run_binary(killed, *flags)
  assert "resumed from checkpoint" in out.stderr
  ref, res = _params(reference), _params(killed)
  assert ref.keys() == res.keys()
  for key in ref:
    np.testing.assert_array_equal(ref[key], res[key])


@pytest.mark.slow
def test_sigterm_saves_and_exits_cleanly_then_resumes(tmp_path):
  flags = ["--config=experiments/configs/digits_mlp.py:smoke,members=2",
           "--config.train.steps=400", "--config.train.checkpoint_every=100",
           "--config.train.log_every=10"]
  reference = str(tmp_path / "reference")
  _run_binary(reference, *flags)
  wd = str(tmp_path / "wd")
  proc = _run_binary(wd, *flags, wait=False)
  deadline = time.time() + 120
  while time.time() < deadline:
    if os.path.exists(os.path.join(wd, "metrics.jsonl")):
      break
    time.sleep(0.05)
  proc.send_signal(signal.SIGTERM)
  out, _ = proc.communicate(timeout=120)
  assert proc.returncode == 0, out[-2000:]
  assert "rerun the same command to resume" in out
  saved = [int(d) for d in os.listdir(os.path.join(wd, "checkpoints")) if d.isdigit()]
  assert saved and max(saved) < 400
  assert not os.path.exists(os.path.join(wd, "final_params.npz"))
  assert not os.path.exists(os.path.join(wd, workdir_lib.LOCK_FILE))
  out = _run_binary(wd, *flags)
  assert f"resumed from checkpoint at step {max(saved)}" in out.stderr
  ref, res = _params(reference), _params(wd)
  assert ref.keys() == res.keys()
  for key in ref:
    np.testing.assert_array_equal(ref[key], res[key])
  steps = [r["step"] for r in workdir_lib.read_jsonl(os.path.join(wd, "metrics.jsonl"))]
  assert steps == list(range(10, 401, 10))  # each step once, despite the interruption


@pytest.mark.slow
def test_sigterm_at_a_checkpoint_boundary_then_reruns_of_the_finished_run(tmp_path):
  """With :smoke, checkpoint_every == steps_per_dispatch: every boundary is a checkpoint,
  so the preemption save finds the step just saved (this exited 1 with
  StepAlreadyExistsError). A finished workdir is then left exactly as it is."""
  flags = ["--config=experiments/configs/digits_mlp.py:smoke,members=2"]
  wd = str(tmp_path / "wd")
  env = {experiment.SIGNAL_AT_STEP_ENV: "10"}
  proc = _run_binary(wd, *flags, wait=False, env_extra=env)
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == 0, out[-3000:]
  assert "preempted at step 10; rerun the same command to resume" in out
  assert not os.path.exists(os.path.join(wd, workdir_lib.LOCK_FILE))
  _run_binary(wd, *flags)
  files = ("config.json", "environment.json", "environment.jsonl", "metrics.jsonl",
           "records.jsonl", "summary.json", "final_params.npz")
  before = {f: open(os.path.join(wd, f), "rb").read() for f in files}
  attempts = workdir_lib.read_environments(wd)
  assert [a["device_count"] for a in attempts] == [4, 4]
  out = _run_binary(wd, *flags, devices=8)  # rerun elsewhere: nothing to do
  assert "already finished at step 20; nothing to do" in out.stderr
  for f in files:
    assert open(os.path.join(wd, f), "rb").read() == before[f], f
  assert len(workdir_lib.read_jsonl(os.path.join(wd, "records.jsonl"))) == 1


_BN_CONFIG = """
from experiments.configs import digits_cnn

def get_config(arg=None):
  c = digits_cnn.get_config("smoke,members=2")
  c.model.kwargs.channels = (4, 8)
  c.model.kwargs.dense = 16
  c.model.kwargs.batch_norm = True
  c.train.steps = 30
  c.train.steps_per_dispatch = c.train.log_every = c.train.checkpoint_every = 5
  c.train.eval_every = 30
  return c
"""


@pytest.mark.slow
def test_batch_norm_model_killed_then_preempted_resumes_bitwise(tmp_path, monkeypatch):
  """Killed (-9) after step 15 is logged but before it is saved, then SIGTERM at step 25:
  the final predictions and batch statistics equal an uninterrupted run's bit for bit
  (a checkpoint without batch_stats would restart them and differ)."""
  import importlib.util
  path = tmp_path / "bn_cnn.py"
  path.write_text(_BN_CONFIG)
  spec = importlib.util.spec_from_file_location("bn_cnn", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  reference = experiment.run(config, str(tmp_path / "reference"))
  assert jax_leaves(reference.state.batch_stats)
  wd = str(tmp_path / "wd")
  proc = _run_binary(wd, f"--config={path}", devices=8, wait=False,
                     env_extra={experiment.SIGNAL_AT_STEP_ENV: "15:KILL"})
  out, _ = proc.communicate(timeout=300)
  assert proc.returncode == -signal.SIGKILL, out[-3000:]
  rows = workdir_lib.read_jsonl(os.path.join(wd, "metrics.jsonl"))
  assert rows[-1]["step"] == 15  # logged, never checkpointed
  monkeypatch.setenv(experiment.SIGNAL_AT_STEP_ENV, "25")
  assert experiment.run(config, wd) is None
  monkeypatch.delenv(experiment.SIGNAL_AT_STEP_ENV)
  resumed = experiment.run(config, wd)
  np.testing.assert_array_equal(reference.predictions.logits, resumed.predictions.logits)
  for name in ("batch_stats", "params", "opt_state"):
    a, b = jax_leaves(getattr(reference.state, name)), jax_leaves(getattr(resumed.state, name))
    assert len(a) == len(b)
    for x, y in zip(a, b):
      np.testing.assert_array_equal(x, y, err_msg=name)
  steps = [r["step"] for r in workdir_lib.read_jsonl(os.path.join(wd, "metrics.jsonl"))]
  assert steps == [5, 10, 15, 20, 25, 30]
  assert len(workdir_lib.read_environments(wd)) == 3


def jax_leaves(tree):
  import jax
  return [np.asarray(x) for x in jax.tree.leaves(tree)]


def test_workdir_with_another_config_is_refused(tmp_path):
  wd = str(tmp_path / "wd")
  workdir_lib.prepare(wd, digits_mlp.get_config("smoke"))
  other = digits_mlp.get_config("smoke")
  other.train.steps = 21
  with pytest.raises(workdir_lib.ConfigMismatchError, match="train.steps"):
    workdir_lib.prepare(wd, other)
  assert workdir_lib.prepare(wd, digits_mlp.get_config("smoke")) is True  # same: resume


@pytest.mark.parametrize("key,value,match", [
    ("dataset.name", "digitz", "dataset.name='digitz' is unknown"),
    ("model.name", "transformer9000", "model.name='transformer9000' is unknown"),
    ("optimizer.name", "lion", "optimizer.name='lion' is unknown"),
    ("train.batch_size", 127, "batch_size=127 is not divisible"),
    ("population.members", 3, "members=3 is not divisible"),
    ("seeds.vary", "init,weather", "unknown source"),
    ("train.steps", 0, r"--config.train.steps=0 must be >= 1"),
    ("train.steps", -1, r"--config.train.steps=-1 must be >= 1"),
    ("train.batch_size", 0, r"--config.train.batch_size=0 must be >= 1"),
])
def test_bad_config_fails_before_compilation(key, value, match):
  config = digits_mlp.get_config("smoke")
  config.mesh.member_shards = 2 if key == "population.members" else 0
  section, name = key.split(".")
  config[section][name] = value
  with pytest.raises(ValueError, match=match):
    experiment.validate(config)


def test_unknown_model_kwarg_is_named():
  config = digits_mlp.get_config("smoke")
  config.model.kwargs.depth = 3
  with pytest.raises(ValueError, match=r"\['depth'\]"):
    experiment.validate(config)


@pytest.mark.slow
@pytest.mark.parametrize("module", [digits_cnn, mnist_mlp, cifar10_resnet20, cifar10_wrn28_10])
def test_smoke_configs_run_end_to_end(module, tmp_path):
  config = module.get_config("smoke")
  config.population.members = 2
  config.train.steps = 4
  config.optimizer.warmup_steps = 0
  config.train.steps_per_dispatch = 2
  config.train.log_every = config.train.checkpoint_every = config.train.eval_every = 2
  if config.dataset.name != "digits":
    config.train.batch_size = 8
    config.dataset.max_train_examples = 16
    config.dataset.max_test_examples = 8
    with tfds.testing.mock_data(num_examples=16, policy=tfds.testing.MockPolicy.USE_CODE):
      result = experiment.run(config, str(tmp_path / "wd"))
  else:
    result = experiment.run(config, str(tmp_path / "wd"))
  assert result.predictions.logits.shape[0] == 2
  assert np.isfinite(result.metrics["loss"])


@pytest.mark.slow
def test_two_processes_match_one_process(tmp_path):
  flags = ["--config=experiments/configs/digits_mlp.py:smoke,members=2",
           "--config.train.steps=40"]
  single = str(tmp_path / "single")
  _run_binary(single, *flags, devices=4)
  multi = str(tmp_path / "multi")
  cmd = [sys.executable, "-m", "launch.local", "--num_processes=2", "--devices_per_process=2",
         "--timeout=240", "--", sys.executable, "-m", "experiments.train",
         f"--workdir={multi}", *flags]
  env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
  out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stdout[-4000:]
  a = json.load(open(os.path.join(single, "summary.json")))
  b = json.load(open(os.path.join(multi, "summary.json")))
  env_multi = json.load(open(os.path.join(multi, "environment.json")))
  assert env_multi["process_count"] == 2 and env_multi["device_count"] == 4
  # Same mesh (2 members x 2 data shards); cross-process reductions may round differently.
  assert abs(a["test_accuracy"] - b["test_accuracy"]) <= 1 / 360
  np.testing.assert_allclose(a["loss"], b["loss"], rtol=1e-4)
  pa, pb = _params(single), _params(multi)
  for key in pa:
    np.testing.assert_allclose(pa[key], pb[key], rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_sweep_of_train_runs_merges_into_one_report(tmp_path):
  sweep = str(tmp_path / "sweep")
  cmd = [sys.executable, "-m", "launch.sweep", "run", "--binary=train",
         "--config=experiments/configs/digits_mlp.py:smoke,members=2", f"--sweep_dir={sweep}",
         "--grid", "model.kwargs.width_multiplier=0.25,1.0"]
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2")
  out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
  assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
  report = open(os.path.join(sweep, "report.md")).read()
  assert "width_multiplier=0.25" in report and "width_multiplier=1.0" in report
  assert os.path.getsize(os.path.join(sweep, "frontier_params.png")) > 1000
