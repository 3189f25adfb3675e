"""The frontier study: plan and validation, and its `:smoke` records against independent
references (the shared all-studies test covers running, schema, reports and bad input)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments.configs import frontier as config_lib
from tradeoffs import errors
from tradeoffs.report import hardware
from tradeoffs.report import records as records_lib
from tradeoffs.studies import frontier
from tradeoffs.studies import runner
from tradeoffs.train import predictions as predictions_lib

SMOKE_VARIANTS = ["dense_w64", "dense_w32", "pruned_s80", "channels_s50", "nm_2of4", "int8",
                  "divided_s2", "distilled_robust", "cascade_r50", "selective_backprop_k50",
                  "dp_sigma1"]
TECHNIQUES = {"dense", "pruned_one_shot", "pruned_channels", "pruned_nm", "quantized",
              "divided", "distilled", "cascade", "loss_prioritized", "dp_sgd"}


@pytest.fixture(scope="module")
def smoke_run(smoke_workdir, tmp_path_factory):
  """A copy of the all-studies test's `:smoke` run (tests/studies/conftest.py): the resume
  test below rewrites records, and the shared run must stay as it finished."""
  workdir = str(tmp_path_factory.mktemp("frontier") / "wd")
  shutil.copytree(smoke_workdir("frontier"), workdir)
  return workdir


def _modal(logits):
  """Independent numpy mode of the members' labels, ties to the largest label."""
  counts = np.stack([np.bincount(col, minlength=logits.shape[-1])
                     for col in logits.argmax(-1).T])
  return counts.shape[-1] - 1 - counts[:, ::-1].argmax(-1)


def test_smoke_records_hold_what_each_technique_saves(smoke_run):
  records = records_lib.read_records(smoke_run)
  assert [r["variant"] for r in records] == SMOKE_VARIANTS
  by = {r["variant"]: r for r in records}
  source = by["dense_w64"]
  assert source["source"] is None and source["hidden_costs"]["cie_count"] == 0
  for r in records:
    assert r["members"] == 2 and r["seconds"] > 0 and r["environment"]["versions"]
    timed = r["technique"] != "cascade"  # A cascade's latency is computed, no spread.
    for key in ("params", "nonzero_params", "flops", "latency_ms") + (
        ("latency_p10_ms",) if timed else ()):
      assert r["efficiency"][key] is not None, (r["variant"], key)
    assert len(r["accuracy"]["per_class"]) == 10 and "worst_group" in r["accuracy"]
  assert by["dense_w32"]["efficiency"]["params"] < source["efficiency"]["params"]
  pruned = by["pruned_s80"]
  assert pruned["technique"] == "pruned_one_shot" and pruned["knobs"]["sparsity"] == 0.8
  assert pruned["study_fields"]["achieved_sparsity"]["min"] == pytest.approx(0.8, abs=1e-3)
  assert pruned["efficiency"]["params"] == source["efficiency"]["params"]
  assert pruned["efficiency"]["nonzero_params"] < 0.3 * source["efficiency"]["params"]
  int8 = by["int8"]
  assert int8["efficiency"]["flops"] == source["efficiency"]["flops"]
  # Weight bytes: one byte per kernel weight + a float32 scale per output channel + biases.
  kernels = [(64, 64), (64, 64), (64, 10)]
  biases = 64 + 64 + 10
  expected = sum(a * b for a, b in kernels) + 4 * (64 + 64 + 10) + 4 * biases
  assert int8["efficiency"]["weight_bytes"] == expected
  divided = by["divided_s2"]
  assert divided["knobs"]["S"] == 2 and divided["study_fields"]["networks"] == 4
  ratio = divided["efficiency"]["params"] / source["efficiency"]["params"]
  assert divided["study_fields"]["params_ratio"] == pytest.approx(ratio)
  for field in ("latency_concurrent_ms", "latency_sequential_ms"):
    assert divided["efficiency"][field] > 0


def test_hidden_costs_match_saved_predictions(smoke_run):
  records = {r["variant"]: r for r in records_lib.read_records(smoke_run)}
  dense = predictions_lib.load(smoke_run, "dense_w64")
  for name in ("pruned_s80", "int8", "divided_s2"):
    preds = predictions_lib.load(smoke_run, name)
    assert records[name]["hidden_costs"]["cie_count"] == int(
        (_modal(dense.logits) != _modal(preds.logits)).sum()), name
    labels = preds.logits.argmax(-1)
    assert records[name]["hidden_costs"]["churn"] == pytest.approx(
        float((labels[0] != labels[1]).mean()), abs=1e-6)
    assert records[name]["accuracy"]["top1"] == pytest.approx(
        float((labels == preds.labels[None]).mean()), abs=1e-6)
  assert records["int8"]["hidden_costs"]["cie_kind"] == "derived"
  assert records["divided_s2"]["hidden_costs"]["cie_kind"] == "retrained"
  assert predictions_lib.load(smoke_run, "divided_s2_members").logits.shape[0] == 4


def test_report_sections_and_verdicts(smoke_run):
  report = open(os.path.join(smoke_run, "report.md")).read()
  for heading in ("## Headline", "## Verdicts against the dense source", "## Who pays",
                  "## What was traded for what"):
    assert heading in report
  for name in ("frontier_headline.png", "frontier_groups.png", "frontier_params.png"):
    assert os.path.getsize(os.path.join(smoke_run, name)) > 1000
  # 10 variants × 3 metrics, one family: paired for the 5 derived from the source's own
  # members (pruned, channel-pruned, N:M, int8, the cascade), Welch for the 5 retrained
  # ones (the narrower dense model, divided, distilled, Selective Backprop, DP-SGD).
  assert report.count("| paired t |") == 15 and report.count("| Welch t |") == 15
  for heading in ("## The hardware lottery", "## Accountability ledger"):
    assert heading in report
  assert "rotated digits (subgroup=1)" not in report or "Who pays" in report


def test_smoke_has_every_technique_and_a_ledger_per_record(smoke_run):
  records = records_lib.read_records(smoke_run)  # Validates every line (ledger included).
  assert {r["technique"] for r in records} == TECHNIQUES
  by = {r["variant"]: r for r in records}
  source = by["dense_w64"]
  assert source["ledger"]["reference"] is None and not source["ledger"]["payers"]
  for r in records[1:]:
    entry = r["ledger"]
    assert entry["reference"] == "dense_w64"
    assert entry["knobs"][0] == {"knob": "technique", "value": r["technique"]}
    assert {k["knob"] for k in entry["knobs"][1:]} == {
        k for k, v in r["knobs"].items() if not isinstance(v, (dict, list))}
    # Who pays, against an independent scipy test over the same members.
    for key, path in (("top1", "per_member_top1"), ("worst_class", "per_member_worst_class")):
      a, b = np.asarray(r["accuracy"][path]), np.asarray(source["accuracy"][path])
      payer = entry["payers"][key]
      assert payer["delta"] == pytest.approx(a.mean() - b.mean(), abs=1e-9)
      paired = r["hidden_costs"]["cie_kind"] == "derived"
      assert payer["test"] == ("paired" if paired else "welch"), r["variant"]
      if np.ptp(a - b if paired else np.r_[a, b]) > 0 and payer["p"] is not None:
        ref = (scipy_stats.ttest_rel(a, b) if paired
               else scipy_stats.ttest_ind(a, b, equal_var=False))
        assert payer["p"] == pytest.approx(ref.pvalue, rel=1e-6), (r["variant"], key)
    assert entry["payers"]["cie"]["count"] == r["hidden_costs"]["cie_count"]
    assert entry["saved"]["params"] == pytest.approx(
        source["efficiency"]["params"] / r["efficiency"]["params"])
  dp = by["dp_sigma1"]
  eps = dp["ledger"]["payers"]["epsilon"]
  assert eps["value"] == pytest.approx(dp["study_fields"]["epsilon"]) and eps["value"] > 0
  assert eps["delta"] == 1e-5 and dp["knobs"]["noise_multiplier"] == 1.0
  # The cascade's expected latency: fast always + rate × slow, from the measured medians.
  cascade = by["cascade_r50"]
  rate = cascade["study_fields"]["rate"]
  assert rate == pytest.approx(0.5, abs=1e-3)
  assert cascade["efficiency"]["latency_ms"] == pytest.approx(
      by["dense_w32"]["efficiency"]["latency_ms"] + rate * source["efficiency"]["latency_ms"])
  assert cascade["efficiency"]["params"] == (by["dense_w32"]["efficiency"]["params"]
                                             + source["efficiency"]["params"])
  student = by["distilled_robust"]
  assert student["efficiency"]["params"] == by["dense_w32"]["efficiency"]["params"]
  assert student["study_fields"]["teacher"] == "dense_w64"


def test_robust_student_runs_eg_rounds_on_a_carved_validation_split(smoke_run):
  from tradeoffs import data as data_lib
  records = {r["variant"]: r for r in records_lib.read_records(smoke_run)}
  student = records["distilled_robust"]
  fields, knobs = student["study_fields"], student["knobs"]
  split = fields["validation"]
  ds = data_lib.load("digits_groups")
  train_ids, test_ids = set(ds.train.ids.tolist()), set(ds.test.ids.tolist())
  validation, used = set(split["ids"]), set(split["train_ids"])
  # Stratified: per_class of every class; disjoint from the rows trained on and from test;
  # together they are the whole training split (the test split untouched).
  label_of = dict(zip(ds.train.ids.tolist(), ds.train.labels.tolist()))
  assert np.bincount([label_of[i] for i in validation], minlength=10).tolist() == [10] * 10
  assert len(validation) == split["examples"] == 100 and len(used) == split["train_examples"]
  assert not validation & used and not validation & test_ids
  assert validation | used == train_ids
  # The objective's class priors are those of the rows trained on, not the whole split.
  counts = np.bincount([label_of[i] for i in used], minlength=10)
  np.testing.assert_allclose(fields["class_priors"], counts / counts.sum())
  # EG rounds: λ moves by λ·exp(η·R̂)/Z between rounds (closed form on the recorded R̂).
  assert knobs["eg_rounds"] == fields["eg_rounds"] == 2
  lam = np.asarray(fields["lambda_history"])
  risks = np.asarray(fields["validation_error_history"])
  assert lam.shape == (2, 10) and risks.shape == (1, 10)
  expected = lam[0] * np.exp(knobs["eg_step"] * risks[0])
  np.testing.assert_allclose(lam[1], expected / expected.sum(), rtol=1e-9)
  np.testing.assert_allclose(fields["target_weights"], lam[1])  # α = 1: λ itself.
  assert os.path.isdir(os.path.join(smoke_run, "checkpoints", "distilled_robust_round0"))


def test_selective_backprop_records_what_its_training_saves(smoke_run):
  records = {r["variant"]: r for r in records_lib.read_records(smoke_run)}
  source, sb = records["dense_w64"], records["selective_backprop_k50"]
  steps, batch = 30, 128
  k = round(0.5 * batch)
  assert sb["technique"] == "loss_prioritized" and sb["knobs"]["method"] == "selective_backprop"
  assert sb["study_fields"]["backward_examples"] == [k * steps] * 2
  assert sb["study_fields"]["forward_examples"] == [batch * steps] * 2
  assert all(0 < n <= k * steps for n in sb["study_fields"]["selected_examples"])
  e, es = sb["efficiency"], source["efficiency"]
  assert e["params"] == es["params"] and e["flops"] == es["flops"]  # The same model.
  assert (e["train_forward_examples"], e["train_backward_examples"]) == (batch * steps,
                                                                       k * steps)
  assert es["train_backward_examples"] == batch * steps
  # Forward FLOPs × (the selection pass over the batch + 3 × the backpropagated rows).
  assert e["train_flops"] == pytest.approx(e["flops"] * steps * (batch + 3 * k))
  assert es["train_flops"] == pytest.approx(es["flops"] * steps * 3 * batch)
  assert e["train_seconds"] > 0 and es["train_seconds"] > 0
  saved = sb["ledger"]["saved"]
  assert saved["train_backward_examples"] == pytest.approx(2.0)
  assert saved["train_flops"] == pytest.approx(3 * batch / (batch + 3 * k))  # 1.2×
  row = next(r for r in hardware.lottery(list(records.values()))["rows"]
             if r["variant"] == "selective_backprop_k50")
  assert row["theoretical"]["training FLOPs"] == pytest.approx(saved["train_flops"])
  assert row["measured"]["cpu"]["train"]["ratio"] == pytest.approx(
      es["train_seconds"] / e["train_seconds"])
  report = open(os.path.join(smoke_run, "report.md")).read()
  assert "Training took" in report and "train_backward_examples 2.00×" in report
  assert "1.92k of 3.84k forward-passed rows" in report
  assert "The distilled students train on 1337 training images; 100 (10 per class" in report


def test_hardware_lottery_sets_counted_beside_measured(smoke_run):
  records = records_lib.read_records(smoke_run)
  by = {r["variant"]: r for r in records}
  source = by["dense_w64"]
  result = hardware.lottery(records)
  assert result["backends"] == ["cpu"]
  rows = {row["variant"]: row for row in result["rows"]}
  assert "dense_w64" not in rows
  assert "reference_latency_ms" not in source["efficiency"]  # The source is not self-paired.
  assert by["divided_s2"]["efficiency"]["reference_latency_ms"] > 0  # Ensembles too.
  for name in ("pruned_s80", "channels_s50", "int8"):
    row, r = rows[name], by[name]
    assert row["theoretical"]["non-zero params"] == pytest.approx(
        source["efficiency"]["nonzero_params"] / r["efficiency"]["nonzero_params"])
    measured = row["measured"]["cpu"]["b1"]
    # Timed in alternation with the source (paired_timing): the ratio is that pair's.
    e = r["efficiency"]
    assert measured["paired"] and e["reference_latency_ms"] > 0
    assert measured["ratio"] == pytest.approx(e["reference_latency_ms"] / e["latency_ms"])
    spread_apart = e["latency_p90_ms"] < e["reference_latency_p10_ms"]
    band = result["controls"]["cpu"]["b1"]
    beyond_noise = not hardware.is_control(row) and measured["ratio"] > band["high"]
    assert (measured["verdict"] == hardware.REALISED) == (spread_apart and beyond_noise)
  # Masked zeros run the source's dense program: controls, never a realised saving.
  assert hardware.is_control(rows["pruned_s80"]) and hardware.is_control(rows["nm_2of4"])
  assert not hardware.is_control(rows["channels_s50"]) and not hardware.is_control(rows["int8"])
  assert "pruned_s80" in result["controls"]["cpu"]["b1"]["variants"]
  assert rows["pruned_s80"]["theoretical"]["params"] == pytest.approx(1.0)
  assert rows["int8"]["theoretical"]["weight bytes"] > 3
  assert rows["cascade_r50"]["measured"]["cpu"]["b1"]["verdict"] == hardware.EXPECTED
  report = open(os.path.join(smoke_run, "report.md")).read()
  section = report[report.index("## The hardware lottery"):]
  line = next(l for l in section.splitlines() if l.startswith("| pruned_s80 |"))
  assert "4.7" in line.split("|")[3] and " ms " in line  # Counted and measured, one row.
  assert "pruned_s80's savings exist only on paper" in section or "On cpu, pruned_s80" in section


def test_merged_backends_add_columns_not_rows(smoke_run, tmp_path):
  other = str(tmp_path / "gpu_run")
  shutil.copytree(smoke_run, other, ignore=shutil.ignore_patterns("checkpoints"))
  path = records_lib.records_path(other)
  rewritten = []
  for line in open(path).read().splitlines():
    record = json.loads(line)
    record["environment"]["backend"] = "gpu"
    record["efficiency"]["backend"] = "gpu"
    for key in ("latency_ms", "reference_latency_ms"):  # As if the other backend were
      if key in record["efficiency"]:                 # faster, its paired source too.
        record["efficiency"][key] /= 4
    rewritten.append(json.dumps(record))
  open(path, "w").write("\n".join(rewritten) + "\n")
  merged = str(tmp_path / "merged")
  runner.report_only(frontier, config_lib.get_config("smoke"), merged, [smoke_run, other])
  records = records_lib.load_records(smoke_run, other)
  result = hardware.lottery(records)
  assert result["backends"] == ["cpu", "gpu"]
  assert [row["variant"] for row in result["rows"]] == SMOKE_VARIANTS[1:]
  for row in result["rows"]:
    assert set(row["measured"]) == {"cpu", "gpu"}
  report = open(os.path.join(merged, "report.md")).read()
  section = report[report.index("## The hardware lottery"):report.index("## Accountability")]
  header = next(l for l in section.splitlines() if l.startswith("| Variant"))
  assert "cpu: latency b=1" in header and "gpu: latency b=1" in header
  table_rows = [l.split(" | ")[0] for l in section.splitlines()
                if l.startswith("| ") and not l.startswith("| Variant")]
  assert table_rows == [f"| {name}" for name in SMOKE_VARIANTS[1:]]  # One row each.
  # Each backend against its own source: a uniform 4x speed-up changes no ratio.
  cpu = {r["variant"]: r["measured"]["cpu"]["b1"] for r in result["rows"]}
  gpu = {r["variant"]: r["measured"]["gpu"]["b1"] for r in result["rows"]}
  assert gpu["pruned_s80"]["ratio"] == pytest.approx(cpu["pruned_s80"]["ratio"])
  assert gpu["pruned_s80"]["median_ms"] == pytest.approx(cpu["pruned_s80"]["median_ms"] / 4)


def test_resume_recomputes_only_the_missing_variant(smoke_run):
  path = records_lib.records_path(smoke_run)
  lines = open(path).read().splitlines()
  metrics = open(os.path.join(smoke_run, "metrics.jsonl")).read()
  with open(path, "w") as f:  # As if killed after all but the last variant.
    f.write("\n".join(lines[:-1]) + "\n")
  runner.run(frontier, config_lib.get_config("smoke"), smoke_run, write=False)
  after = records_lib.read_records(smoke_run)
  assert [r["variant"] for r in after] == SMOKE_VARIANTS
  # Restored from its final checkpoint: no training step ran again, same accuracy.
  assert open(os.path.join(smoke_run, "metrics.jsonl")).read() == metrics
  import json
  assert after[-1]["accuracy"]["top1"] == json.loads(lines[-1])["accuracy"]["top1"]


def test_report_only_merges_and_rejects_unknown_axis(smoke_run, tmp_path):
  merged = str(tmp_path / "merged")
  out = runner.report_only(frontier, config_lib.get_config("smoke"), merged, [smoke_run])
  assert os.path.getsize(out["markdown"]) > 1000
  config = config_lib.get_config("smoke")
  config.report.axes = ("efficiency.watts",)
  with pytest.raises(ValueError, match=r"axes='efficiency.watts' is not a numeric field"):
    runner.report_only(frontier, config, merged, [smoke_run])


@pytest.mark.parametrize("key,value,match", [
    ("width_multipliers", (), r"width_multipliers=\(\) is empty"),
    ("sparsities", (0.5, 1.0), r"--config.study.sparsities=1.0: expected a number in \(0, 1\)"),
    ("bits", (16,), r"--config.study.bits=16: expected an integer in \[2, 8\]"),
    ("divided", (1,), r"--config.study.divided=1: expected an integer in \[2, inf\)"),
    ("prune_schedule", "cubic", r"prune_schedule='cubic' is unknown; choose from"),
    ("cotraining_loss", "mse", r"cotraining loss 'mse' is unknown; valid"),
    ("combine", "vote", r"combine mode 'vote' is unknown; valid"),
    ("distilled", ("fancy",), r"--config.study.distilled=\('fancy',\): each student"),
    ("cascade_rates", (1.5,), r"--config.study.cascade_rates=1.5: expected a number in"),
    ("dp_noise_multipliers", (0.0,),
     r"--config.study.dp_noise_multipliers=0.0: expected a number in \(0, inf\)"),
    ("loss_prioritized", ("full",), r"--config.study.loss_prioritized=\('full',\): each"),
    ("backward_fraction", 1.0, r"--config.study.backward_fraction=1.0: expected a number"),
    ("distill_validation_per_class", 0,
     r"--config.study.distill_validation_per_class=0: expected an integer in \[1, inf\)"),
    ("distill_eg_rounds", 31, r"--config.study.distill_eg_rounds=31: expected an integer"),
])
def test_bad_config_raises_before_compiling(key, value, match):
  config = config_lib.get_config("smoke")
  config.study[key] = value
  with pytest.raises(errors.ConfigError, match=match):
    runner.plan(frontier, config)


def test_population_of_one_is_refused():
  config = config_lib.get_config("smoke")
  config.population.members = 1
  with pytest.raises(errors.ConfigError, match=r"members=1.*at least 2"):
    runner.plan(frontier, config)


def test_plans_of_default_and_cifar10_configs():
  default = runner.plan(frontier, config_lib.get_config())
  assert [v.name for v in default] == [
      "dense_w256", "dense_w128", "dense_w64", "dense_w32", "pruned_s50", "pruned_s80",
      "pruned_s90", "pruned_s90_ft400", "channels_s50", "nm_2of4", "int8", "int4",
      "divided_s2", "divided_s4", "distilled_standard", "distilled_robust", "cascade_r20",
      "cascade_r50", "selective_backprop_k50", "dp_sigma1", "dp_sigma3"]
  variants = {v.name: v for v in default}
  assert variants["divided_s4"].train_config.model.kwargs.hidden == (128, 128)
  assert variants["divided_s4"].train_config.population.members == 32
  assert variants["distilled_robust"].train_config.model.kwargs.width_multiplier == 0.125
  assert variants["cascade_r20"].knobs == {"fast": "dense_w32", "slow": "dense_w256",
                                           "rate": 0.2, "policy": "confidence",
                                           "cost": "latency_ms"}
  assert all(v.source == "dense_w256" for v in default[1:])
  assert variants["pruned_s90"].train_config.train.steps == 100
  # Fine-tune length is a recorded axis of the most pruned variant.
  assert variants["pruned_s90_ft400"].train_config.train.steps == 400
  assert variants["pruned_s90_ft400"].knobs["finetune_steps"] == 400
  full = {v.name: v for v in frontier.plan(config_lib.get_config("full"))}
  # A superset, but for the fine-tune axis, which moves to the most pruned (95%) model.
  assert set(variants) - set(full) == {"pruned_s90_ft400"} and "dense_w16" in full
  assert full["pruned_s95_ft1600"].train_config.train.steps == 1600
  assert full["dense_w256"].train_config.population.members == 16
  cifar = [v.name for v in frontier.plan(config_lib.get_config("cifar10"))]
  assert cifar[:3] == ["dense_w32", "dense_w16", "dense_w8"]


def _timed(batch, ratio, verdict):
  return {"batch": batch, "ratio": ratio, "verdict": verdict}


@pytest.mark.parametrize("b1, bn, says, never", [
    # Slower at batch 1, unchanged at batch N: the sentence must not also claim "no difference".
    (_timed(1, 1 / 2.6, hardware.SLOWER), _timed(256, 1.0, hardware.UNCHANGED),
     "latency at batch 1 2.60× slower.", "no latency difference"),
    (_timed(1, 1.01, hardware.UNCHANGED), _timed(256, 0.99, hardware.UNCHANGED),
     "no latency difference beyond the spread.", "slower"),
    (_timed(1, 3.0, hardware.REALISED), None, "realises latency at batch 1 3.00× faster",
     "only on paper"),
])
def test_hardware_sentence_is_consistent(b1, bn, says, never):
  row = {"variant": "int8", "theoretical": {"weight bytes": 4.0},
         "measured": {"cpu": {"b1": b1, "bN": bn, "peak_bytes": None}}}
  text = hardware.sentence(row, "cpu")
  assert says in text and never not in text, text


def _row(variant, ratio, verdict, **theory):
  return {"variant": variant, "theoretical": theory,
          "measured": {"cpu": {"b1": _timed(1, ratio, verdict), "bN": None}}}


def test_controls_turn_a_saving_inside_their_noise_band_into_no_change():
  same = dict(params=1.0, FLOPs=1.0, **{"weight bytes": 1.0})
  rows = [_row("masked", 3.0, hardware.REALISED, **same),       # The source, mis-timed.
          _row("slow_control", 0.9, hardware.UNCHANGED, **same),
          _row("narrow_inside", 2.9, hardware.REALISED, params=4.0, FLOPs=4.0),
          _row("narrow_beyond", 3.2, hardware.REALISED, params=4.0, FLOPs=4.0),
          _row("ensemble", 0.5, hardware.SLOWER, params=0.9, FLOPs=0.9)]
  bands = hardware.apply_controls(rows, ["cpu"])
  assert bands["cpu"]["b1"]["low"] == 0.9 and bands["cpu"]["b1"]["high"] == 3.0
  assert bands["cpu"]["b1"]["variants"] == ["masked", "slow_control"]
  verdicts = [r["measured"]["cpu"]["b1"]["verdict"] for r in rows]
  assert verdicts == [hardware.UNCHANGED, hardware.UNCHANGED, hardware.UNCHANGED,
                      hardware.REALISED, hardware.SLOWER]
  assert "no latency difference beyond the spread" in hardware.sentence(rows[2], "cpu")


def _timed_record(name, median, p10, p90, reference=None):
  e = {"latency_ms": median, "latency_p10_ms": p10, "latency_p90_ms": p90, "params": 10}
  if reference:
    e.update(zip(("reference_latency_ms", "reference_latency_p10_ms",
                  "reference_latency_p90_ms"), reference))
  return {"variant": name, "technique": "pruned", "source": "dense", "efficiency": e}


def test_measured_saving_divides_by_the_paired_source_timing_when_there_is_one():
  source = {**_timed_record("dense", 10.0, 9.0, 11.0), "technique": "dense", "source": None}
  # Timed in alternation with the source, which then read 4 ms (the machine was idle).
  paired = hardware.measured_saving(_timed_record("v", 2.0, 1.9, 2.1, (4.0, 3.8, 4.2)),
                                    source, None)
  assert paired["paired"] and paired["ratio"] == pytest.approx(2.0)
  assert paired["source_median_ms"] == 4.0 and paired["verdict"] == hardware.REALISED
  # Without a paired timing: the source record's own (10 ms, taken at another moment).
  alone = hardware.measured_saving(_timed_record("v", 2.0, 1.9, 2.1), source, None)
  assert not alone["paired"] and alone["ratio"] == pytest.approx(5.0)
  # A paired source spread that overlaps the variant's: no measurable change.
  overlap = hardware.measured_saving(_timed_record("v", 2.0, 1.9, 2.1, (2.2, 2.0, 2.4)),
                                     source, None)
  assert overlap["verdict"] == hardware.UNCHANGED

