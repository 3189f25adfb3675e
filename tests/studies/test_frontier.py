"""The frontier study: plan and validation, and its `:smoke` records against independent
references (the shared all-studies test covers running, schema, reports and bad input)."""

from __future__ import annotations

import os

import numpy as np
import pytest

from experiments.configs import frontier as config_lib
from tradeoffs import errors
from tradeoffs.report import records as records_lib
from tradeoffs.studies import frontier
from tradeoffs.studies import runner
from tradeoffs.train import predictions as predictions_lib

SMOKE_VARIANTS = ["dense_w64", "dense_w32", "pruned_s80", "channels_s50", "nm_2of4", "int8",
                  "divided_s2"]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("frontier") / "wd")
  result = runner.run(frontier, config_lib.get_config("smoke"), workdir)
  assert result.finished
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
    for key in ("params", "nonzero_params", "flops", "latency_ms", "latency_p10_ms"):
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
  # 6 variants × 3 metrics, one family: paired for the 4 derived from the source's own
  # members (pruned, channel-pruned, N:M, int8), Welch for the 2 retrained ones.
  assert report.count("| paired t |") == 12 and report.count("| Welch t |") == 6
  assert "rotated digits (subgroup=1)" not in report or "Who pays" in report


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
      "divided_s2", "divided_s4"]
  variants = {v.name: v for v in default}
  assert variants["divided_s4"].train_config.model.kwargs.hidden == (128, 128)
  assert variants["divided_s4"].train_config.population.members == 32
  assert all(v.source == "dense_w256" for v in default[1:])
  assert variants["pruned_s90"].train_config.train.steps == 100
  # Fine-tune length is a recorded axis of the most pruned variant.
  assert variants["pruned_s90_ft400"].train_config.train.steps == 400
  assert variants["pruned_s90_ft400"].knobs["finetune_steps"] == 400
  cifar = [v.name for v in frontier.plan(config_lib.get_config("cifar10"))]
  assert cifar[:3] == ["dense_w32", "dense_w16", "dense_w8"]
