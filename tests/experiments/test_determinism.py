"""End-to-end tests of the determinism study (experiments/determinism.py) on tiny runs."""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import numpy as np
import pytest

from experiments.configs import determinism as config_lib
from tradeoffs import workdir as workdir_lib
from tradeoffs.determinism import matrix
from tradeoffs.determinism import study

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(settings, repeats=2, impl_repeats=2, mitigation=0.0, steps=10):
  c = config_lib.get_config("smoke")
  c.settings = tuple(settings)
  c.repeats = repeats
  c.impl_repeats = impl_repeats
  c.mitigation.weight = mitigation
  c.training.train.steps = steps
  c.training.train.steps_per_dispatch = 5
  c.training.train.log_every = 5
  c.training.train.checkpoint_every = steps
  c.training.train.eval_every = steps
  c.mechanism.max_examples = 256
  c.mechanism.num_iters = 4
  c.report.max_images = 8
  return c


def _records(workdir):
  return {r["variant"]: r for r in workdir_lib.read_jsonl(os.path.join(workdir,
                                                                        "records.jsonl"))}


def test_matrix_end_to_end_control_is_bitwise_and_subprocesses_do_not_leak(workdir):
  parent_flags = os.environ.get("XLA_FLAGS")
  parent_precision = jax.config.jax_default_matmul_precision
  config = _config(["control", "devices_2", "gpu_default"], mitigation=1.0)
  analysis = study.run_study(config, workdir)

  # Subprocess settings ran under their own environment and left the parent untouched.
  assert os.environ.get("XLA_FLAGS") == parent_flags
  assert jax.device_count() == 8
  assert jax.config.jax_default_matmul_precision == parent_precision
  child = workdir_lib.read_json(os.path.join(workdir, "runs", "devices_2", "repeat_000",
                                             "environment.json"))
  assert child["device_count"] == 2
  assert child["xla_flags"] == "--xla_force_host_platform_device_count=2"
  assert workdir_lib.read_json(os.path.join(
      workdir, "runs", "control", "population", "environment.json"))["device_count"] == 8

  # Control: two runs in separate processes, and two members of one population, agree bit
  # for bit (predictions and weights), checked here on the files, not on the summary.
  for runs_dirs in (
      [os.path.join(workdir, "runs", "devices_2", f"repeat_{r:03d}") for r in (0, 1)],
      [os.path.join(workdir, "runs", "control", "population")]):
    runs = matrix.load_runs(runs_dirs)
    assert runs.logits.shape[0] == 2
    assert runs.logits[0].tobytes() == runs.logits[1].tobytes()
    for key, value in runs.params.items():
      assert value[0].tobytes() == value[1].tobytes(), key

  measured = analysis["measured"]
  assert measured["control"]["logits_identical"] and measured["control"]["weights_identical"]
  assert measured["devices_2"]["churn"] == 0.0 and measured["devices_2"]["weight_l2"] == 0.0
  # The backend that is not here is reported, not crashed on.
  assert analysis["status"]["gpu_default"].startswith("skipped")
  assert "gpu_default" not in measured
  # The penalty changed training: mitigated control weights differ from plain control.
  versus = analysis["versus"]
  assert versus["devices_2+mitigated"]["reference"] == "control+mitigated"
  plain = matrix.load_final_params(os.path.join(workdir, "runs", "control", "population"))
  mitigated = matrix.load_final_params(os.path.join(workdir, "runs", "control+mitigated",
                                                    "population"))
  assert any(not np.array_equal(plain[k][0], mitigated[k][0]) for k in plain)
  hw = analysis["hardware"]
  for key in ("without_mitigation", "with_mitigation"):
    assert len(hw[key]["delta"]) == 2 and hw[key]["xi"] >= 0.0
    # xi is max - min of Delta, and Delta is the range over the two settings' group losses.
    assert hw[key]["xi"] == pytest.approx(max(hw[key]["delta"]) - min(hw[key]["delta"]))
  mech = analysis["mechanism"]["control"]
  assert mech["group_counts"] == [int(n) for n in mech["group_counts"]]
  assert all(g > 0 for g in mech["grad_norm"]) and all(np.isfinite(mech["top_hessian_eigenvalue"]))
  # The equal-size norms subsample every group to the smallest group's count.
  equal = mech["grad_norm_equal_size"]
  assert equal["size"] == min(n for n in mech["group_counts"] if n > 0)
  assert len(equal["mean"]) == len(mech["group_counts"]) and all(m > 0 for m in equal["mean"])
  smallest = int(np.argmin(mech["group_counts"]))
  assert equal["mean"][smallest] == pytest.approx(mech["grad_norm"][smallest], rel=1e-4)

  records = _records(workdir)
  assert set(records) == {"control", "devices_2", "control+mitigated", "devices_2+mitigated"}
  for record in records.values():
    assert record["study"] == "determinism"
    assert record["hidden_costs"]["determinism_cost_note"] == study.CPU_COST_NOTE
    assert {"churn", "per_class_std", "flips", "weight_l2"} <= set(record["hidden_costs"])
  assert records["devices_2"]["efficiency"]["seconds_per_step"] > 0
  assert records["control"]["hidden_costs"]["per_class_std"] == [0.0] * 10
  assert records["control"]["members"] == 2
  report = open(os.path.join(workdir, "report.md")).read()
  for text in ("Noise source", "| devices_2 | subprocess | 2 |", "skipped", "ξ =", "equal n",
               "with the boundary-alignment penalty", study.CPU_COST_NOTE):
    assert text in report, text
  for png in ("per_class_std_vs_top1_std.png", "unstable_examples.png",
              "frontier_seconds_per_step.png"):
    assert os.path.getsize(os.path.join(workdir, png)) > 1000, png
  # Resuming finds every run finished and records nothing twice.
  config.mechanism.enabled = False  # Only the resume is under test here.
  again = study.run_study(config, workdir)
  assert again["measured"]["devices_2"]["flips"] == measured["devices_2"]["flips"]
  assert len(workdir_lib.read_jsonl(os.path.join(workdir, "records.jsonl"))) == 4


def test_data_order_changes_results_while_init_stays_equal_and_compare_mode(workdir,
                                                                          tmp_path):
  config = _config(["control", "data_order_only", "init_only"], steps=10)
  config.mechanism.enabled = False  # Covered by the end-to-end test; slow to compile.
  analysis = study.run_study(config, workdir)
  m = analysis["measured"]
  pop = lambda name: os.path.join(workdir, "runs", name, "population")
  with np.load(os.path.join(pop("data_order_only"), study.INITIAL_PARAMS_FILE)) as f:
    initial = {k: f[k] for k in f.files}
  final = matrix.load_final_params(pop("data_order_only"))
  assert all(np.array_equal(v[0], v[1]) for v in initial.values())
  assert any(not np.array_equal(v[0], v[1]) for v in final.values())
  assert m["data_order_only"]["init_identical"] and not m["data_order_only"]["weights_identical"]
  assert not m["data_order_only"]["logits_identical"] and m["data_order_only"]["weight_l2"] > 0
  # Changing the init seed changes the initial weights; control changes nothing.
  assert not m["init_only"]["init_identical"]
  assert m["control"]["init_identical"] and m["control"]["weights_identical"]
  # Churn agrees with an independent numpy computation on the saved predictions.
  logits = matrix.load_predictions(pop("data_order_only"))["logits"]
  preds = logits.argmax(-1)
  assert m["data_order_only"]["churn"] == pytest.approx(np.mean(preds[0] != preds[1]))
  assert m["data_order_only"]["flipped_examples"] == int(np.sum(preds[0] != preds[1]))
  assert m["data_order_only"]["mode"] == "in_process"
  # The per-class std ratio sits beside its shuffled-class null in the analysis and report.
  null = m["data_order_only"]["per_class_null"]
  assert null["mean"]["ratio"] == pytest.approx(m["data_order_only"]["per_class_std_mean"]
                                                / m["data_order_only"]["top1_std"], rel=1e-5)
  assert null["max"]["band"][0] <= null["max"]["null_median"] <= null["max"]["band"][1]
  assert m["control"]["per_class_null"] == {"draws": study.NULL_DRAWS,
                                            "skipped": "top-1 std is 0"}
  report = open(os.path.join(workdir, "report.md")).read()
  rows = [line.split(" | ") for line in report.splitlines()
          if line.startswith("| data_order_only | ") and line.count("|") == 11]
  assert len(rows) == 1 and rows[0][2] == f"{null['mean']['ratio']:.3g}", rows
  # Algorithmic settings change seeds, so they are not compared against control's bits.
  assert "data_order_only" not in analysis["versus"]

  # --compare: the same workdirs read back as if they came from other machines.
  runs = [pop("control"), pop("data_order_only")]
  out = str(tmp_path / "compare")
  compared = study.compare_workdirs(runs, config, out)
  names = list(compared["measured"])
  assert len(names) == 2 and "cpu" in names[0]
  v = compared["versus"][names[1]]
  # Member 1 differs in its data seed, so the pair of populations is not identical...
  assert v["pairs"] == 2 and v["logits_identical"] is False
  control_logits = matrix.load_predictions(pop("control"))["logits"]
  # ...but member 0 has the same seeds in both: the same bits from two compiled programs.
  assert control_logits[0].tobytes() == logits[0].tobytes()
  assert v["churn"] == pytest.approx(np.mean(control_logits.argmax(-1) != preds))
  assert compared["determinism_cost"]["note"] == study.CPU_COST_NOTE
  assert compared["hardware"]["without_mitigation"]["settings"] == names
  assert os.path.exists(os.path.join(out, "report.md"))
  with pytest.raises(ValueError, match="at least 2 workdirs"):
    study.compare_workdirs(runs[:1], config, out)


@pytest.mark.parametrize("settings,match", [
    (["control", "warp_drive"], r"settings entry 'warp_drive' is unknown; valid forms"),
    (["control", "control"], "duplicate names"),
    (["augment_only"], "augment_only.*turns augmentation off"),
    (["devices_3"], r"batch"),
])
def test_bad_settings_fail_before_anything_runs(workdir, settings, match):
  with pytest.raises(ValueError, match=match):
    study.run_study(_config(settings), workdir)
  assert not os.path.exists(os.path.join(workdir, "runs"))


def test_unknown_xla_flag_is_named_before_any_subprocess(workdir):
  config = _config(["control", "bogus=--xla_this_flag_does_not_exist=1"])
  with pytest.raises(ValueError, match="--xla_this_flag_does_not_exist=1"):
    study.run_study(config, workdir)
  assert not os.path.exists(os.path.join(workdir, "runs"))


def test_parse_setting_forms():
  current = study.settings_lib.Setting("current", device_count=8,
                                       xla_flags=("--xla_cpu_use_thunk_runtime=true",))
  seeds = {"init": 3, "data": 4, "augment": 5, "dropout": 6}
  s = study.parse_setting("fast_math", current, seeds)
  assert s.vary == () and s.device_count == 8 and s.init_seed == 3
  assert s.xla_flags == ("--xla_cpu_use_thunk_runtime=true", "--xla_cpu_enable_fast_math=true")
  assert study.parse_setting("devices_2", current, seeds).device_count == 2
  assert study.parse_setting("precision_highest", current, seeds).matmul_precision == "highest"
  assert study.parse_setting("algo", current, seeds).vary == ("init", "data", "augment",
                                                              "dropout")
  gpu = study.parse_setting("gpu_deterministic", current, seeds)
  assert gpu.backend == "gpu" and gpu.xla_flags == ("--xla_gpu_deterministic_ops=true",)
  custom = study.parse_setting("slow=--xla_backend_optimization_level=0", current, seeds)
  assert custom.name == "slow" and custom.xla_flags[-1] == "--xla_backend_optimization_level=0"
  with pytest.raises(ValueError, match="matmul_precision='fastest'"):
    study.parse_setting("precision_fastest", current, seeds)


def _binary(module, *flags, devices):
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}")
  return subprocess.Popen([sys.executable, "-m", module, *flags], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_compare_binary_on_two_train_runs_without_groups(tmp_path):
  # Two real `experiments.train` smoke runs (20 steps on 'digits', no group attributes) on
  # different device counts and init seeds, compared under the default study config, whose
  # own training section says 500 steps on digits_groups with group_attribute='subgroup'.
  a, b, out = (str(tmp_path / n) for n in ("run_a", "run_b", "compare"))
  config = "--config=experiments/configs/digits_mlp.py:smoke,members=2"
  procs = [_binary("experiments.train", config, f"--workdir={a}", devices=1),
           _binary("experiments.train", config, f"--workdir={b}", "--config.seeds.init=7",
                   devices=2)]
  for p in procs:
    text = p.communicate(timeout=300)[0]
    assert p.returncode == 0, text[-3000:]
  p = _binary("experiments.determinism", f"--compare={a},{b}", f"--workdir={out}",
              devices=1)
  text = p.communicate(timeout=300)[0]
  assert p.returncode == 0, text[-3000:]
  report = open(os.path.join(out, "report.md")).read()
  assert "500 steps" not in report and "digits_groups" not in report
  # What each run did, from its own workdir: steps, seeds, backend and device count.
  rows = {line.split("|")[1].strip(): line for line in report.splitlines()
          if line.startswith("| run_") and "| mlp |" in line}
  assert set(rows) == {"run_a.cpu.x1", "run_b.cpu.x2"}, report
  for name, line in rows.items():
    cells = [c.strip() for c in line.split("|")[1:-1]]
    assert len(cells) == 10, line
    init = "7,8" if "run_b" in name else "0,1"
    assert cells[1:9] == ["mlp", "digits", "20", "128", "2",
                          f"augment 0,1; data 0,1; dropout 0,1; init {init}", "cpu",
                          f"cpu x{1 if 'run_a' in name else 2}"], line
  # No group attribute: the group sections are left out, and the report says why.
  assert "no group attribute 'subgroup'" in report
  assert "FNR std by group" not in report and "ξ =" not in report
  analysis = workdir_lib.read_json(os.path.join(out, "analysis.json"))
  assert analysis["hardware"]["without_mitigation"] is None
  assert all(m["num_groups"] is None for m in analysis["measured"].values())
  info = analysis["workdirs"]
  assert [i["steps_trained"] for i in info.values()] == [20, 20]
  assert [i["device_count"] for i in info.values()] == [1, 2]
  assert [i["seeds"]["init"] for i in info.values()] == [[0, 1], [7, 8]]
