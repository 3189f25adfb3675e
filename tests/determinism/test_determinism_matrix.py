"""Run matrices: subprocess runs in their own workdirs, in-process populations, read-back."""

from __future__ import annotations

import os
import sys

import jax
import numpy as np
import pytest

from tradeoffs import workdir as workdir_lib
from tradeoffs.determinism import matrix, metrics
from tradeoffs.determinism import settings as st

# A stand-in trainer: records what it saw and writes predictions (examples in a shuffled
# order, as another machine might) and final params in the trainer's file format.
FAKE_TRAINER = r"""
import json, os, sys
import numpy as np
import jax
workdir, repeat = sys.argv[1], int(sys.argv[2])
init = int([a for a in sys.argv if a.startswith("--config.seeds.init=")][0].split("=")[1])
os.makedirs(os.path.join(workdir, "predictions"))
ids = np.random.default_rng(repeat).permutation(5).astype(np.int32)
logits = np.eye(3, dtype=np.float32)[(ids + init) % 3][None]
np.savez(os.path.join(workdir, "predictions", "test.npz"), logits=logits, labels=ids % 3,
         ids=ids, groups=(ids[:, None] % 2).astype(np.int32), group_names=np.array(["odd"]))
np.savez(os.path.join(workdir, "final_params.npz"),
         **{"dense/kernel": np.full((1, 2, 2), float(init)), "dense/bias": np.zeros((1, 2))})
json.dump({"device_count": jax.device_count(), "xla_flags": os.environ["XLA_FLAGS"],
           "precision": str(jax.config.jax_default_matmul_precision), "argv": sys.argv[1:]},
          open(os.path.join(workdir, "seen.json"), "w"))
"""
COMMAND = [sys.executable, "-c", FAKE_TRAINER, "{workdir}", "{repeat}"]


def _population_fn(calls):
  def run(setting, members, workdir):
    calls.append((setting.name, members, str(jax.config.jax_default_matmul_precision)))
    seeds = setting.init_seed + np.arange(members)  # member i = repeat i (seed + i)
    ids = np.arange(5, dtype=np.int32)
    os.makedirs(os.path.join(workdir, "predictions"), exist_ok=True)
    np.savez(os.path.join(workdir, "predictions", "test.npz"),
             logits=np.eye(3, dtype=np.float32)[(ids[None] + seeds[:, None]) % 3],
             labels=ids % 3, ids=ids, groups=(ids[:, None] % 2).astype(np.int32),
             group_names=np.array(["odd"]))
    np.savez(os.path.join(workdir, "final_params.npz"),
             **{"dense/kernel": np.broadcast_to(seeds[:, None, None], (members, 2, 2)) * 1.0,
                "dense/bias": np.zeros((members, 2))})
    return "trained"
  return run


def test_subprocess_and_in_process_runs_compare(tmp_path):
  before = os.environ["XLA_FLAGS"]
  in_process = st.preset("algo", device_count=8, matmul_precision="highest")
  two_devices = st.Setting("two_devices", vary=("init",), device_count=2)
  calls = []
  results = matrix.run_matrix([in_process, two_devices], 2, str(tmp_path), command=COMMAND,
                              population_fn=_population_fn(calls))
  assert [(r.setting, r.mode, r.status, r.repeat) for r in results] == [
      ("algo", "in_process", "ok", None), ("two_devices", "subprocess", "ok", 0),
      ("two_devices", "subprocess", "ok", 1)]
  assert calls == [("algo", 2, "highest")] and results[0].output == "trained"
  # Each repeat ran in its own workdir with the setting's switches, not the parent's.
  seen = [workdir_lib.read_json(os.path.join(r.workdir, "seen.json"))
          for r in results[1:]]
  assert len({r.workdir for r in results}) == 3
  assert [s["device_count"] for s in seen] == [2, 2]
  assert "--xla_force_host_platform_device_count=2" in seen[0]["xla_flags"]
  assert "--config.seeds.init=1" in seen[1]["argv"]
  assert os.environ["XLA_FLAGS"] == before and jax.device_count() == 8
  # Read back: ids align the shuffled subprocess outputs; runs agree member for member.
  sub = matrix.load_runs(matrix.result_workdirs(results, "two_devices"))
  pop = matrix.load_runs(matrix.result_workdirs(results, "algo"))
  np.testing.assert_array_equal(sub.ids, np.arange(5))
  np.testing.assert_array_equal(sub.logits, pop.logits)
  assert sub.group_names == ("odd",) and sub.params["dense/kernel"].shape == (2, 2, 2)
  assert metrics.bitwise_identical([sub.params, pop.params])
  preds = metrics.predicted_labels(sub.logits)
  assert float(metrics.churn(preds)) == 1.0                # (id + 0) % 3 vs (id + 1) % 3
  np.testing.assert_allclose(metrics.weight_distance(sub.params), 2.0)  # 4 entries, 0 vs 1
  both = matrix.load_runs(matrix.result_workdirs(results, "algo")
                          + matrix.result_workdirs(results, "two_devices"))
  assert both.logits.shape == (4, 5, 3) and both.sources[2] == (results[1].workdir, 0)
  assert len(workdir_lib.read_jsonl(os.path.join(tmp_path, "matrix.jsonl"))) == 3
  # Running again reuses finished workdirs.
  again = matrix.run_matrix([in_process, two_devices], 2, str(tmp_path), command=COMMAND,
                            population_fn=_population_fn(calls))
  assert [r.status for r in again] == ["resumed"] * 3 and len(calls) == 1


def test_failure_reports_stderr_tail(tmp_path):
  failing = [sys.executable, "-c", "import sys; sys.stderr.write('boom: no data'); sys.exit(3)"]
  control = st.preset("control", device_count=2)
  with pytest.raises(matrix.RunFailedError, match=r"(?s)status 3.*boom: no data"):
    matrix.run_matrix([control], 1, str(tmp_path / "a"), command=failing)
  results = matrix.run_matrix([control], 2, str(tmp_path / "b"), command=failing,
                              on_error="record")
  assert [r.status for r in results] == ["failed", "failed"]
  assert "boom" in open(os.path.join(results[0].workdir, "stderr.log")).read()
  sleeping = [sys.executable, "-c", "import time; time.sleep(30)"]
  with pytest.raises(matrix.RunFailedError, match="timed out after 0.5s"):
    matrix.run_matrix([control], 1, str(tmp_path / "c"), command=sleeping, timeout_s=0.5)


def test_bad_input_is_rejected_before_anything_runs(tmp_path):
  root = str(tmp_path / "root")
  touch = [sys.executable, "-c", "open('{workdir}/ran', 'w')"]
  control = st.preset("control", device_count=2)
  with pytest.raises(ValueError, match="repeats=0"):
    matrix.run_matrix([control], 0, root, command=touch)
  with pytest.raises(ValueError, match="duplicate names"):
    matrix.run_matrix([control, control], 1, root, command=touch)
  with pytest.raises(ValueError, match=r"\['control'\] need a fresh process"):
    matrix.run_matrix([control], 1, root, population_fn=lambda *a: None)
  with pytest.raises(ValueError, match="on_error='ignore'"):
    matrix.run_matrix([control], 1, root, command=touch, on_error="ignore")
  bogus = st.Setting("bogus", xla_flags=("--xla_this_flag_does_not_exist=1",))
  with pytest.raises(ValueError, match="--xla_this_flag_does_not_exist=1"):
    matrix.run_matrix([control, bogus], 1, root, command=touch)
  assert not os.path.exists(root)


def test_missing_backend_is_skipped(tmp_path):
  if st.backend_available("gpu"):
    pytest.skip("a GPU is present here")
  results = matrix.run_matrix([st.preset("impl", backend="gpu")], 2, str(tmp_path),
                              command=COMMAND)
  assert [(r.mode, r.status) for r in results] == [("skipped", "skipped")] * 2


def test_load_runs_refuses_runs_of_different_examples(tmp_path):
  for name, ids in (("a", [0, 1, 2]), ("b", [0, 1, 3])):
    os.makedirs(tmp_path / name / "predictions")
    np.savez(tmp_path / name / "predictions" / "test.npz", logits=np.zeros((1, 3, 2)),
             labels=np.zeros(3, int), ids=np.array(ids))
  with pytest.raises(ValueError, match="differ in ids"):
    matrix.load_runs([str(tmp_path / "a"), str(tmp_path / "b")], params=False)
  with pytest.raises(FileNotFoundError, match=r"split='train'.*\['test'\]"):
    matrix.load_predictions(str(tmp_path / "a"), "train")
  with pytest.raises(FileNotFoundError, match="final_params.npz"):
    matrix.load_runs([str(tmp_path / "a")])


def test_step_times_and_cost_of_determinism(tmp_path):
  # Steps 0 -> 10 take 5 s (compile, dropped), then 0.1 s/step, then 0.3 s/step.
  def write(name, times):
    workdir_lib.append_jsonl(str(tmp_path / name / "metrics.jsonl"),
                             [{"step": s, "time": t} for s, t in times])
  write("det", [(0, 100.0), (10, 105.0), (20, 106.0), (30, 109.0), (40, 112.0)])
  write("default", [(0, 50.0), (10, 52.0), (20, 52.5), (30, 53.5), (40, 54.5)])
  np.testing.assert_allclose(matrix.step_times(str(tmp_path / "det")), [0.1, 0.3, 0.3])
  cost = metrics.determinism_cost(matrix.step_times(str(tmp_path / "det")),
                                  matrix.step_times(str(tmp_path / "default")))
  assert cost == pytest.approx(3.0)
  with pytest.raises(ValueError, match="skip_first"):
    matrix.step_times(str(tmp_path / "det"), skip_first=4)


def test_train_command_and_checkout_env_start_this_checkout_anywhere(tmp_path):
  import subprocess  # pylint: disable=g-import-not-at-top
  argv = matrix.train_command("/runs/train_config.json")
  assert argv[:3] == [sys.executable, "-m", "experiments.train"]
  assert argv[3] == f"--config={matrix.STUDY_CONFIG_FILE}:train_json=/runs/train_config.json"
  assert argv[4] == "--workdir={workdir}" and os.path.isfile(matrix.STUDY_CONFIG_FILE)
  one = matrix.train_command("/runs/c.json", train_one=True)
  assert one[2:4] == ["experiments.determinism", "--train_one"] and one[-1] == argv[-1]
  env = matrix.checkout_env({"PYTHONPATH": "/elsewhere", "KEEP": "1"})
  assert env["PYTHONPATH"] == os.pathsep.join([matrix.REPO, "/elsewhere"]) and env["KEEP"] == "1"
  assert matrix.checkout_env({})["PYTHONPATH"] == matrix.REPO
  # From another directory, a subprocess under this env imports this checkout's packages
  # and resolves the study config the command names.
  code = ("import experiments.configs.determinism as c, os; "
          "print(os.path.abspath(c.__file__))")
  env = matrix.checkout_env({k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
  out = subprocess.run([sys.executable, "-c", code], cwd=str(tmp_path), env=env,
                       capture_output=True, text=True, timeout=120, check=True)
  assert out.stdout.strip() == matrix.STUDY_CONFIG_FILE
