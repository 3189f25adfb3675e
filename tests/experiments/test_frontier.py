"""The frontier study: end-to-end on `:smoke` (records, report, resume, report-only errors)
and its pure pieces against independent references."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import frontier as config_lib
from tradeoffs import ensembles
from tradeoffs.studies import frontier
from tradeoffs.train import predictions as predictions_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SMOKE_VARIANTS = {"dense_w64", "dense_w32", "pruned_s80", "int8", "divided_s2"}


def _read_records(workdir):
  with open(os.path.join(workdir, "records.jsonl")) as f:
    return [json.loads(line) for line in f]


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("frontier") / "wd")
  frontier.run(config_lib.get_config("smoke"), workdir)
  return workdir


def test_smoke_writes_records_with_design_fields(smoke_run):
  records = _read_records(smoke_run)
  assert {r["variant"] for r in records} == SMOKE_VARIANTS
  for r in records:
    assert r["study"] == "frontier" and r["members"] == 2
    assert r["seconds"] > 0 and r["config"] and r["environment"]["versions"]
    for key in ("params", "nonzero_params", "flops", "bytes", "latency_ms", "peak_bytes"):
      assert r["efficiency"][key] is not None, (r["variant"], key)
    for key in ("top1", "per_class", "worst_class", "balanced", "worst_group"):
      assert key in r["accuracy"], (r["variant"], key)
    assert len(r["accuracy"]["per_class"]) == 10
    for key in ("cie_count", "cie_accuracy", "churn", "per_class_std", "group_gap"):
      assert key in r["hidden_costs"], (r["variant"], key)
  by = {r["variant"]: r for r in records}
  source = by["dense_w64"]
  assert source["hidden_costs"]["cie_count"] == 0
  assert by["dense_w32"]["efficiency"]["params"] < source["efficiency"]["params"]
  # Pruning zeroes ~80% of the prunable weights but keeps the dense shape and FLOPs.
  pruned = by["pruned_s80"]
  assert pruned["achieved_sparsity"] == pytest.approx(0.8, abs=1e-3)
  assert pruned["efficiency"]["params"] == source["efficiency"]["params"]
  assert pruned["efficiency"]["nonzero_params"] < 0.3 * source["efficiency"]["params"]
  # int8 stores ~1/4 of the float32 bytes (plus scales) at the same FLOPs.
  int8 = by["int8"]
  assert int8["efficiency"]["weight_bytes"] < 0.3 * source["efficiency"]["weight_bytes"]
  assert int8["efficiency"]["flops"] == source["efficiency"]["flops"]
  # Two members of width 64/sqrt(2) hold about the wide model's parameters.
  divided = by["divided_s2"]
  assert divided["S"] == 2 and divided["networks"] == 4
  assert 0.9 < divided["efficiency"]["params"] / source["efficiency"]["params"] < 1.35


def test_hidden_costs_match_saved_predictions(smoke_run):
  records = {r["variant"]: r for r in _read_records(smoke_run)}
  dense = predictions_lib.load(smoke_run, "dense_w64")
  for name in ("pruned_s80", "int8", "divided_s2"):
    preds = predictions_lib.load(smoke_run, name)
    # Independent reference: modal labels by numpy bincount (ties to the smallest label).
    modal = lambda logits: np.array([np.bincount(col, minlength=10).argmax()
                                     for col in logits.argmax(-1).T])
    expected_cie = int((modal(dense.logits) != modal(preds.logits)).sum())
    assert records[name]["hidden_costs"]["cie_count"] == expected_cie, name
    labels = preds.logits.argmax(-1)
    expected_churn = float((labels[0] != labels[1]).mean())
    assert records[name]["hidden_costs"]["churn"] == pytest.approx(expected_churn, abs=1e-6)
    assert records[name]["accuracy"]["top1"] == pytest.approx(
        float((labels == preds.labels[None]).mean()), abs=1e-6)
  members = predictions_lib.load(smoke_run, "divided_s2_members")
  assert members.logits.shape[0] == 4


def test_report_files_and_figures(smoke_run):
  for name in ("report.md", "report.html", "frontier_params.png", "frontier_flops.png",
               "frontier_weight_bytes.png", frontier.HEADLINE_FIGURE,
               "frontier_latency_ms.png", frontier.GROUPS_FIGURE):
    path = os.path.join(smoke_run, name)
    assert os.path.getsize(path) > 1000, name
  report = open(os.path.join(smoke_run, "report.md")).read()
  assert "## Headline" in report and "## What was traded for what" in report
  for variant in SMOKE_VARIANTS:
    assert f"### {variant}" in report
  assert "Took:" in report and "Compared with:** dense_w64" in report
  html = open(os.path.join(smoke_run, "report.html")).read()
  assert html.count("data:image/png;base64") >= 7 and "Headline" in html


def test_resume_skips_recorded_variants(smoke_run):
  records_path = os.path.join(smoke_run, "records.jsonl")
  metrics_path = os.path.join(smoke_run, "metrics.jsonl")
  lines = open(records_path).read().splitlines()
  metrics_before = open(metrics_path).read()
  # Simulate a run killed after all but the last variant had been recorded.
  with open(records_path, "w") as f:
    f.write("\n".join(lines[:-1]) + "\n")
  frontier.run(config_lib.get_config("smoke"), smoke_run, write=False)
  after = open(records_path).read().splitlines()
  assert after[:-1] == lines[:-1]  # Finished variants untouched.
  assert json.loads(after[-1])["variant"] == json.loads(lines[-1])["variant"]
  # The missing variant came back from its final checkpoint: no training step ran.
  assert open(metrics_path).read() == metrics_before
  assert json.loads(after[-1])["accuracy"]["top1"] == json.loads(lines[-1])["accuracy"]["top1"]


def test_report_only_merges_and_rejects_unknown_axis(smoke_run, tmp_path):
  merged = str(tmp_path / "merged")
  out = frontier.report_only(merged, [smoke_run], config_lib.get_config("smoke").report)
  assert os.path.getsize(out["markdown"]) > 1000
  report = config_lib.get_config("smoke").report
  report.axes = ("efficiency.watts",)
  with pytest.raises(ValueError, match=r"axes='efficiency.watts' is not a numeric field.*"
                                       r"efficiency.flops"):
    frontier.report_only(merged, [smoke_run], report)
  report = config_lib.get_config("smoke").report
  report.reference = "dense_w999"
  with pytest.raises(ValueError, match=r"reference='dense_w999' is not a recorded variant"):
    frontier.report_only(merged, [smoke_run], report)


def test_binary_report_only_without_records_errors_clearly(tmp_path):
  empty = tmp_path / "empty"
  empty.mkdir()
  result = subprocess.run(
      [sys.executable, "-m", "experiments.frontier", "--report_only", f"--workdir={empty}"],
      cwd=REPO, capture_output=True, text=True, timeout=120,
      env={**os.environ, "JAX_PLATFORMS": "cpu"})
  assert result.returncode == 2
  assert "has no records.jsonl" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("key,value,match", [
    ("width_multipliers", (), r"width_multipliers=\(\) is empty"),
    ("sparsities", (0.5, 1.0), r"sparsities=1.0: expected a number in \(0, 1\)"),
    ("bits", (16,), r"bits=16: expected an integer in \[2, 8\]"),
    ("divided", (1,), r"divided=1: expected an integer in \[2, inf\)"),
    ("prune_schedule", "cubic", r"prune_schedule='cubic' is unknown; choose from"),
    ("cotraining_loss", "mse", r"cotraining loss 'mse' is unknown; valid"),
    ("combine", "vote", r"combine mode 'vote' is unknown; valid"),
])
def test_bad_config_raises_before_compiling(key, value, match):
  config = config_lib.get_config("smoke")
  config.frontier[key] = value
  with pytest.raises(ValueError, match=match):
    frontier.validate_config(config)


def test_bad_population_and_config_variants():
  config = config_lib.get_config("smoke")
  config.population.members = 1
  with pytest.raises(ValueError, match=r"members=1.*at least 2"):
    frontier.validate_config(config)
  with pytest.raises(ValueError, match=r"config variant 'huge' is unknown"):
    config_lib.get_config("huge")


def test_plans_of_default_and_cifar10_configs():
  default = [v.name for v in frontier.validate_config(config_lib.get_config(), 8)]
  assert default == ["dense_w256", "dense_w128", "dense_w64", "dense_w32", "pruned_s50",
                     "pruned_s80", "pruned_s90", "int8", "int4", "divided_s2", "divided_s4"]
  variants = {v.name: v for v in frontier.plan(config_lib.get_config())}
  assert variants["divided_s4"].train_config.model.kwargs.hidden == (128, 128)
  assert variants["divided_s4"].train_config.population.members == 32
  cifar = [v.name for v in frontier.validate_config(config_lib.get_config("cifar10"), 8)]
  assert cifar[:3] == ["dense_w32", "dense_w16", "dense_w8"]


def test_cotraining_coupling_sums_per_ensemble_losses():
  logits = jax.random.normal(jax.random.key(0), (6, 5, 4))  # R=3 ensembles of S=2.
  coupling = frontier.cotraining_coupling(2, "js_divergence", weight=0.5, warmup_steps=10)
  expected = sum(float(ensembles.js_divergence(logits[2 * r:2 * r + 2])) for r in range(3))
  assert float(coupling(logits, None, jnp.asarray(10))) == pytest.approx(0.5 * expected,
                                                                         rel=1e-5)
  # Half-way through the warm-up the weight is half.
  assert float(coupling(logits, None, jnp.asarray(5))) == pytest.approx(0.25 * expected,
                                                                        rel=1e-5)
  with pytest.raises(ValueError, match="ensemble_size"):
    frontier.cotraining_coupling(0)


def test_ensemble_logits_and_hidden_costs_by_hand():
  logits = np.arange(2 * 2 * 3 * 4, dtype=np.float32).reshape(4, 3, 4) % 5
  combined = frontier.ensemble_logits(logits, 2)
  np.testing.assert_allclose(combined, logits.reshape(2, 2, 3, 4).mean(1), rtol=1e-6)
  # Source votes: example 0 -> class 0 (both), 1 -> class 1, 2 -> class 2.
  eye = np.eye(3, dtype=np.float32)
  source = np.stack([eye, eye])
  # Compressed: member 0 agrees everywhere; member 1 says class 0 on example 2 (a tie
  # 0 vs 2 -> modal 0, so example 2 is a CIE).
  member1 = eye.copy()
  member1[2] = [1, 0, 0]
  compressed = np.stack([eye, member1])
  labels = np.array([0, 1, 2])
  groups = np.array([[0], [0], [1]])
  costs = frontier.hidden_costs(compressed, source, labels, groups, ("subgroup",))
  assert costs["cie_count"] == 1 and costs["cie_fraction"] == pytest.approx(1 / 3)
  assert costs["cie_accuracy"] == pytest.approx(0.5)  # Member 0 right, member 1 wrong.
  assert costs["source_cie_accuracy"] == pytest.approx(1.0)
  assert costs["churn"] == pytest.approx(1 / 3)
  assert costs["cie_rate"] == {"subgroup=0": 0.0, "subgroup=1": 1.0}
  itself = frontier.hidden_costs(source, source, labels, is_source=True)
  assert itself["cie_count"] == 0 and itself["cie_accuracy"] is None
