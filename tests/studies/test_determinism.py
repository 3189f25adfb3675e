"""The determinism study on the runner: tiny matrices end to end, its plan and its claims.

The shared test over the STUDIES registry runs `:smoke` through the binary; these test
what is specific to this study: bitwise control, subprocess isolation, data order vs init,
the mitigation runs, --compare (also without groups), and the ξ claim's inputs.
"""

from __future__ import annotations

import os
import subprocess
import sys

import jax
import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments.configs import determinism as config_lib
from tradeoffs import errors
from tradeoffs import stats
from tradeoffs import workdir as workdir_lib
from tradeoffs.determinism import analysis
from tradeoffs.determinism import matrix
from tradeoffs.studies import determinism as study
from tradeoffs.studies import runner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _config(settings, members=2, impl_repeats=2, mitigation=0.0, steps=10, mechanism=False):
  c = config_lib.get_config("smoke")
  c.population.members = members
  c.study.settings = tuple(settings)
  c.study.impl_repeats = impl_repeats
  c.study.mitigation.weight = mitigation
  c.study.mitigation.repeats = 2
  c.train.steps = steps
  c.train.steps_per_dispatch = 5
  c.train.log_every = 5
  c.train.checkpoint_every = steps
  c.train.eval_every = steps
  c.study.mechanism.enabled = mechanism
  c.study.mechanism.max_examples = 256
  c.study.mechanism.num_iters = 4
  c.study.max_images = 8
  return c


def _records(result):
  return {r["variant"]: r for r in result.records}


def _report(workdir):
  return open(os.path.join(workdir, "report.md")).read()


def test_matrix_end_to_end_control_is_bitwise_and_subprocesses_do_not_leak(workdir):
  parent_flags = os.environ.get("XLA_FLAGS")
  parent_precision = jax.config.jax_default_matmul_precision
  config = _config(["control", "devices_2", "gpu_default"], mitigation=1.0, mechanism=True)
  result = runner.run(study, config, workdir)
  assert result.finished

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
  # for bit (predictions and weights), checked here on the files, not on the records.
  for runs_dirs in (
      [os.path.join(workdir, "runs", "devices_2", f"repeat_{r:03d}") for r in (0, 1)],
      [os.path.join(workdir, "runs", "control", "population")]):
    runs = matrix.load_runs(runs_dirs)
    assert runs.logits.shape[0] == 2
    assert runs.logits[0].tobytes() == runs.logits[1].tobytes()
    for key, value in runs.params.items():
      assert value[0].tobytes() == value[1].tobytes(), key

  records = _records(result)
  assert list(records) == ["control", "devices_2", "gpu_default", "control+mitigated",
                           "devices_2+mitigated", "gpu_default+mitigated"]
  f = {name: r["study_fields"] for name, r in records.items()}
  assert f["control"]["logits_identical"] and f["control"]["weights_identical"]
  assert f["control"]["init_identical"] and f["devices_2"]["init_identical"]
  assert f["devices_2"]["churn"] == 0.0 and f["devices_2"]["weight_l2"] == 0.0
  # The backend that is not here is recorded as skipped, not crashed on.
  for name in ("gpu_default", "gpu_default+mitigated"):
    assert f[name]["status"].startswith("skipped: backend 'gpu'"), f[name]
    assert not records[name]["accuracy"]
  # The penalty changed training: mitigated control weights differ from plain control.
  assert records["devices_2+mitigated"]["source"] == "control+mitigated"
  assert f["devices_2+mitigated"]["versus"]["reference"] == "control+mitigated"
  plain = matrix.load_final_params(os.path.join(workdir, "runs", "control", "population"))
  mitigated = matrix.load_final_params(os.path.join(workdir, "runs", "control+mitigated",
                                                    "population"))
  assert any(not np.array_equal(plain[k][0], mitigated[k][0]) for k in plain)
  # xi is max - min of Delta, and Delta is the range over the two settings' group losses.
  for suffix in ("", "+mitigated"):
    losses = {n: f[n + suffix]["group_loss"] for n in ("control", "devices_2")}
    h = analysis.sensitivity(losses, "range")
    expected = np.mean(np.ptp(np.stack([losses["control"], losses["devices_2"]], 1), 1), 0)
    np.testing.assert_allclose(h["delta"], expected, rtol=1e-5, atol=1e-7)
    assert h["xi"] == pytest.approx(max(h["delta"]) - min(h["delta"]), abs=1e-7)
  claims, reason = study.hardware_claims(list(records.values()), "loss", "range")
  assert not claims and "at least 3 runs" in reason  # 2 runs each: no claim.
  mech = f["control"]["mechanism"]
  assert all(g > 0 for g in mech["grad_norm"])
  assert all(np.isfinite(mech["top_hessian_eigenvalue"]))
  # The equal-size norms subsample every group to the smallest group's count.
  equal = mech["grad_norm_equal_size"]
  assert equal["size"] == min(n for n in mech["group_counts"] if n > 0)
  smallest = int(np.argmin(mech["group_counts"]))
  assert equal["mean"][smallest] == pytest.approx(mech["grad_norm"][smallest], rel=1e-4)
  assert "mechanism" in f["control+mitigated"] and "mechanism" not in f["devices_2"]

  for name in ("control", "devices_2", "control+mitigated", "devices_2+mitigated"):
    record = records[name]
    assert record["study"] == "determinism" and record["members"] == 2
    assert {"churn", "per_class_std", "flips", "weight_l2"} <= set(record["hidden_costs"])
  assert records["devices_2"]["efficiency"]["seconds_per_step"] > 0
  assert f["control"]["per_class_std"] == [0.0] * 10
  assert records["devices_2"]["hidden_costs"]["churn_vs_source"] == 0.0
  report = _report(workdir)
  for text in ("Noise source", "| devices_2 | subprocess | 2 |", "skipped", "ξ =", "equal n",
               "with the boundary-alignment penalty", "Mitigation: no claim",
               analysis.CPU_COST_NOTE):
    assert text in report, text
  for png in ("per_class_std_vs_top1_std.png", "frontier_seconds_per_step.png"):
    assert os.path.getsize(os.path.join(workdir, png)) > 1000, png
  # Resuming finds every variant recorded and records nothing twice.
  again = runner.run(study, config, workdir)
  assert again.finished and len(again.records) == 6


def test_data_order_changes_results_while_init_stays_equal_and_compare_mode(workdir,
                                                                          tmp_path):
  result = runner.run(study, _config(["control", "data_order_only", "init_only"]), workdir)
  records = _records(result)
  f = {name: r["study_fields"] for name, r in records.items()}
  pop = lambda name: os.path.join(workdir, "runs", name, "population")  # noqa: E731
  with np.load(os.path.join(pop("data_order_only"), analysis.INITIAL_PARAMS_FILE)) as npz:
    initial = {k: npz[k] for k in npz.files}
  final = matrix.load_final_params(pop("data_order_only"))
  assert all(np.array_equal(v[0], v[1]) for v in initial.values())
  assert any(not np.array_equal(v[0], v[1]) for v in final.values())
  d = f["data_order_only"]
  assert d["init_identical"] and not d["weights_identical"]
  assert not d["logits_identical"] and d["weight_l2"] > 0
  # Changing the init seed changes the initial weights; control changes nothing.
  assert not f["init_only"]["init_identical"]
  assert f["control"]["init_identical"] and f["control"]["weights_identical"]
  # Churn agrees with an independent numpy computation on the saved predictions, and
  # the sheet's churn in the record is the same number.
  logits = matrix.load_predictions(pop("data_order_only"))["logits"]
  preds = logits.argmax(-1)
  assert d["churn"] == pytest.approx(np.mean(preds[0] != preds[1]))
  assert records["data_order_only"]["hidden_costs"]["churn"] == pytest.approx(d["churn"])
  assert d["flipped_examples"] == int(np.sum(preds[0] != preds[1])) > 0
  assert d["mode"] == "in_process"
  # The per-class std ratio sits beside its shuffled-class null in the record and report.
  null = d["per_class_null"]
  assert null["mean"]["ratio"] == pytest.approx(d["per_class_std_mean"] / d["top1_std"],
                                                rel=1e-5)
  assert null["max"]["band"][0] <= null["max"]["null_median"] <= null["max"]["band"][1]
  assert f["control"]["per_class_null"] == {"draws": analysis.NULL_DRAWS,
                                            "skipped": "top-1 std is 0"}
  report = _report(workdir)
  rows = [line.split(" | ") for line in report.splitlines()
          if line.startswith("| data_order_only | ") and line.count("|") == 11
          and ({"inside", "above", "below"} & set(line.split(" | ")))]
  assert len(rows) == 1 and rows[0][2] == f"{null['mean']['ratio']:.3g}", rows
  assert os.path.getsize(os.path.join(workdir, "unstable_examples.png")) > 1000
  # Algorithmic settings change seeds, so they are not compared against control's bits.
  assert records["data_order_only"]["source"] is None and "versus" not in d

  # --compare: the same workdirs read back as if they came from other machines.
  compare = _config([])
  compare.study.compare = (pop("control"), pop("data_order_only"))
  compare.study.mitigation.weight = 1.0  # Ignored: compared runs have no mitigated twins.
  out = str(tmp_path / "compare")
  compared = _records(runner.run(study, compare, out))
  names = list(compared)
  assert len(names) == 2 and "cpu" in names[0]
  v = compared[names[1]]["study_fields"]["versus"]
  # Member 1 differs in its data seed, so the pair of populations is not identical...
  assert v["pairs"] == 2 and v["logits_identical"] is False
  control_logits = matrix.load_predictions(pop("control"))["logits"]
  # ...but member 0 has the same seeds in both: the same bits from two compiled programs.
  assert control_logits[0].tobytes() == logits[0].tobytes()
  assert v["churn"] == pytest.approx(np.mean(control_logits.argmax(-1) != preds))
  # Each compared record carries the run's own config and what the run did.
  info = compared[names[1]]["study_fields"]["run_info"]
  assert info["steps_trained"] == 10 and info["members"] == 2
  assert compared[names[1]]["config"]["seeds"]["vary"] == "data"
  text = _report(out)
  assert analysis.CPU_COST_NOTE in text and "Workdirs compared" in text
  assert "Mitigation" not in text and "boundary-alignment" not in text
  assert f"range over {names[0]}, {names[1]}" in text
  one = _config([])
  one.study.compare = (pop("control"),)
  with pytest.raises(errors.ConfigError, match="at least 2 workdirs"):
    runner.run(study, one, str(tmp_path / "one"))


@pytest.mark.parametrize("settings,match", [
    (["control", "warp_drive"], r"settings entry 'warp_drive' is unknown; valid forms"),
    (["control", "control"], "duplicate names"),
    (["augment_only"], "augment_only.*turns augmentation off"),
    (["devices_3"], r"batch"),
    (["control", "plan_bogus"], r"'plan_bogus': unknown execution plan; valid: \['plan_scan_vmap'"),
])
def test_bad_settings_fail_before_anything_runs(workdir, settings, match):
  with pytest.raises(errors.ConfigError, match=match):
    runner.run(study, _config(settings), workdir)
  assert not os.path.exists(workdir)


def test_an_execution_plan_is_an_in_process_implementation_setting():
  variants = {v.name: v for v in study.plan(_config(["control", "plan_step_loop"]))}
  looped = variants["plan_step_loop"]
  assert looped.knobs["mode"] == "in_process" and looped.knobs["implementation"]
  assert looped.source == "control"
  assert looped.train_config.train.plan == "step_loop"
  assert variants["control"].train_config.train.plan == _config([]).train.plan


def test_unknown_xla_flag_is_named_before_any_subprocess(workdir):
  config = _config(["control", "bogus=--xla_this_flag_does_not_exist=1"])
  with pytest.raises(errors.ConfigError, match="--xla_this_flag_does_not_exist=1"):
    runner.run(study, config, workdir)
  assert not os.path.exists(workdir)


@pytest.mark.parametrize("key,value,match", [
    ("impl_seeds", "sometimes", r"--config.study.impl_seeds='sometimes'; valid: \['fixed'"),
    ("impl_repeats", 0, r"--config.study.impl_repeats=0; need an int >= 1"),
    ("timeout_s", -1.0, r"--config.study.timeout_s=-1.0"),
    ("max_images", -1, r"--config.study.max_images=-1"),
])
def test_plan_names_the_bad_knob(key, value, match):
  config = _config(["control"])
  config.study[key] = value
  with pytest.raises(ValueError, match=match):
    study.plan(config)


def test_plan_orders_references_first_and_pairs_seeds():
  config = _config(["devices_2", "algo", "control_process", "control", "precision_highest"],
                   members=4, impl_repeats=3, mitigation=0.5)
  variants = study.plan(config)
  by_name = {v.name: v for v in variants}
  assert [v.name for v in variants] == [
      "control", "control_process", "devices_2", "algo", "precision_highest",
      "control+mitigated", "control_process+mitigated", "devices_2+mitigated",
      "precision_highest+mitigated"]
  modes = {v.name: (v.knobs["mode"], v.knobs["runs"], v.source) for v in variants}
  assert modes["control"] == ("in_process", 4, None)
  assert modes["control_process"] == ("subprocess", 3, "control")
  assert modes["devices_2"] == ("subprocess", 3, "control_process")
  assert modes["precision_highest"] == ("in_process", 4, "control")  # In-process setting.
  assert modes["algo"] == ("in_process", 4, None)                    # Seeds vary: no pair.
  assert modes["devices_2+mitigated"] == ("subprocess", 2, "control_process+mitigated")
  assert by_name["devices_2+mitigated"].knobs["mitigation"]["weight"] == 0.5
  # The training config of a setting is its population: member i = repeat i.
  tc = by_name["algo"].train_config
  assert tc.seeds.vary == "init,data,augment,dropout" and tc.population.members == 4
  assert "study" not in tc and by_name["control"].train_config.seeds.vary == ""
  # per_run: implementation settings vary every seed across runs, paired across settings.
  config.study.impl_seeds = "per_run"
  per_run = {v.name: v for v in study.plan(config)}
  assert per_run["devices_2"].train_config.seeds.vary == "init,data,augment,dropout"
  assert per_run["devices_2"].knobs["implementation"]
  assert per_run["devices_2"].source == "control_process"


def _hw_record(name, group_loss, identical=False, implementation=True):
  return {"variant": name, "knobs": {"implementation": implementation},
          "study_fields": {"workdirs": ["x"], "group_loss": group_loss,
                           "logits_identical": identical}}


def test_hardware_claims_are_welch_over_per_run_xi():
  rng = np.random.default_rng(0)
  plain = {n: rng.normal(1.0, 0.1, (4, 2)).tolist() for n in ("control", "devices_2")}
  treated = {n: rng.normal(1.0, 0.1, (3, 2)).tolist() for n in ("control", "devices_2")}
  records = ([_hw_record(n, v) for n, v in plain.items()]
             + [_hw_record(n + "+mitigated", v) for n, v in treated.items()]
             + [_hw_record("algo", plain["control"], implementation=False)])
  claims, reason = study.hardware_claims(records, "loss", "range")
  assert reason is None and [c.claim for c in claims] == [
      "ξ: with mitigation vs without", "mean Δ: with mitigation vs without"]
  xi = lambda d: [abs(abs(a[0] - b[0]) - abs(a[1] - b[1]))  # noqa: E731
                  for a, b in zip(d["control"], d["devices_2"])]
  with_xi = analysis.per_run_sensitivity(treated, "range")["xi"]
  without_xi = analysis.per_run_sensitivity(plain, "range")["xi"]
  np.testing.assert_allclose(with_xi, xi(treated), atol=1e-6)  # float32 group losses
  np.testing.assert_allclose(without_xi, xi(plain), atol=1e-6)
  assert claims[0].estimate == pytest.approx(np.mean(with_xi) - np.mean(without_xi))
  p = scipy_stats.ttest_ind(with_xi, without_xi, equal_var=False).pvalue
  assert claims[0].p == pytest.approx(p, rel=1e-4) and claims[0].test == "welch"
  assert claims[0].n_a == 3 and claims[0].n_b == 4
  assert [c.p_holm for c in claims] == pytest.approx(stats.holm([c.p for c in claims]))
  assert claims[0].verdict in stats.VERDICTS
  # Runs that are bitwise copies are one measurement: no claim.
  copies = [dict(r, study_fields=dict(r["study_fields"], logits_identical=True))
            for r in records]
  claims, reason = study.hardware_claims(copies, "loss", "range")
  assert not claims and "bitwise copies" in reason and "impl_seeds=per_run" in reason


def _binary(module, *flags, devices):
  env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}",
             PYTHONPATH=ROOT)
  return subprocess.Popen([sys.executable, "-m", module, *flags], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


@pytest.mark.slow
def test_compare_binary_on_two_train_runs_without_groups(tmp_path):
  # Two real `experiments.train` smoke runs (20 steps on 'digits', no group attributes) on
  # different device counts and init seeds, compared under the default study config, whose
  # own training config says 500 steps on digits_groups with group_attribute='subgroup'.
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
  report = _report(out)
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
  from tradeoffs.report import records as records_lib  # pylint: disable=g-import-not-at-top
  records = records_lib.read_records(out)
  assert all(r["study_fields"]["num_groups"] is None for r in records)
  info = [r["study_fields"]["run_info"] for r in records]
  assert [i["steps_trained"] for i in info] == [20, 20]
  assert [i["device_count"] for i in info] == [1, 2]
  assert [i["seeds"]["init"] for i in info] == [[0, 1], [7, 8]]
  # One bad entry: one line, exit 2.
  p = _binary("experiments.determinism", f"--compare={a}", f"--workdir={out}_bad", devices=1)
  text = p.communicate(timeout=300)[0]
  assert p.returncode == 2 and "need at least 2 workdirs" in text, text[-2000:]
