"""End-to-end smoke of experiments/compression_bias.py: records, report, audit, resume."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
# Fewer variants than :smoke (one sparsity, one bit width) to keep the test short.
FLAGS = ["--config=experiments/configs/compression_bias.py:smoke",
         "--config.compression.sparsities=(0.9,)", "--config.compression.quantization_bits=(4,)",
         "--config.efficiency.repeats=2"]


def _run_binary(workdir):
  env = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=4",
             JAX_PLATFORMS="cpu")
  return subprocess.run([sys.executable, "-m", "experiments.compression_bias", *FLAGS,
                         f"--workdir={workdir}"], cwd=REPO, env=env, check=True,
                        timeout=600, capture_output=True, text=True)


def _records(workdir):
  with open(os.path.join(workdir, "records.jsonl")) as f:
    return [json.loads(line) for line in f]


def _modal(logits):
  """Independent numpy mode of the members' argmax labels (ties to the largest, as
  Hooker et al.'s `mode().max()`)."""
  predicted = logits.argmax(-1)
  counts = np.stack([np.bincount(col, minlength=logits.shape[-1]) for col in predicted.T])
  return counts.shape[-1] - 1 - counts[:, ::-1].argmax(-1)


@pytest.fixture(scope="module")
def study(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("compression_bias") / "workdir")
  _run_binary(workdir)
  return workdir


def test_records_hold_efficiency_accuracy_and_hidden_costs(study):
  records = {r["variant"]: r for r in _records(study)}
  assert list(records) == ["dense", "gmp_0.9", "oneshot_0.9", "int4"]
  for r in records.values():
    assert r["study"] == "compression_bias" and r["members"] == 4
    for key in ("top1", "per_class", "worst_class", "balanced", "per_group", "worst_group"):
      assert key in r["accuracy"], key
    for key in ("params", "nonzero_params", "flops", "weight_bytes", "latency_ms"):
      assert r["efficiency"][key] is not None, key
    h = r["hidden_costs"]
    for key in ("cie_count", "taxicab", "cie_accuracy", "per_class_ttest", "per_group",
                "group_gap", "disparity", "underrepresented"):
      assert key in h, key
    assert {"cie_rate", "accuracy_drop"} <= set(h["per_group"]["subgroup=1"])
    assert isinstance(h["per_class_ttest"]["significant_hurt"], int)
    assert r["seeds"]["init"] == [0, 1, 2, 3]
  dense = records["dense"]
  assert dense["hidden_costs"]["cie_count"] == 0
  for name in ("gmp_0.9", "oneshot_0.9"):
    # Pruned: about a tenth of the prunable weights left, counted as non-zero params.
    assert records[name]["efficiency"]["nonzero_params"] < 0.2 * dense["efficiency"]["params"]
    assert records[name]["measured_sparsity"]["min"] == pytest.approx(0.9, abs=1e-3)
  assert records["int4"]["efficiency"]["weight_bytes"] < 0.2 * dense["efficiency"]["weight_bytes"]
  assert records["int4"]["efficiency"]["params"] == dense["efficiency"]["params"]
  # The recorded CIE count agrees with an independent recount from the saved predictions.
  with np.load(os.path.join(study, "predictions", "dense.npz")) as z:
    dense_modal = _modal(z["logits"])
  for name in ("gmp_0.9", "oneshot_0.9", "int4"):
    with np.load(os.path.join(study, "predictions", f"{name}.npz")) as z:
      assert z["logits"].shape[0] == 4
      assert records[name]["hidden_costs"]["cie_count"] == int(
          (_modal(z["logits"]) != dense_modal).sum())


def test_pruned_final_params_are_exactly_zero_at_the_requested_sparsity(study):
  for name in ("gmp_0.9", "oneshot_0.9", "dense"):
    with np.load(os.path.join(study, "final_params", f"{name}.npz")) as z:
      kernels = [z[k] for k in z.files if k.endswith("kernel")]
    assert kernels and all(k.shape[0] == 4 for k in kernels)
    total = sum(int(np.prod(k.shape[1:])) for k in kernels)
    zeros = [sum(int((k[m] == 0).sum()) for k in kernels) for m in range(4)]
    if name == "dense":
      assert max(zeros) < 0.01 * total
    else:  # Global magnitude pruning keeps exactly round(0.1 * n) weights per member.
      assert zeros == [total - int(round(0.1 * total))] * 4, (name, zeros, total)


def test_report_figures_and_audit(study):
  report = open(os.path.join(study, "report.md")).read()
  assert "Compression bias: who paid" in report
  assert "under-represented group (subgroup=1)" in report
  assert ("Yes: compression hit" in report) or ("No: at this scale" in report)
  for name in ("top1_vs_sparsity.png", "cie_vs_sparsity.png", "cie_accuracy.png",
               "group_drop_vs_sparsity.png", "cie_audit.png", "frontier_params.png"):
    path = os.path.join(study, name)
    assert os.path.getsize(path) > 1000, name
    assert f"({name})" in report, name
  html = open(os.path.join(study, "report.html")).read()
  assert html.count("Compression bias: who paid") == 1 and html.rstrip().endswith("</html>")
  audit = json.load(open(os.path.join(study, "cie_ids.json")))
  records = {r["variant"]: r for r in _records(study)}
  most = max((r for r in records.values() if r["method"] != "dense"),
             key=lambda r: r["compression_ratio"])
  assert audit["variant"] == most["variant"]
  assert audit["count"] == most["hidden_costs"]["cie_count"] == len(audit["examples"])
  assert {"id", "dense_modal", "compressed_modal", "label", "score"} <= set(
      audit["examples"][0])


def test_rerun_skips_recorded_variants(study):
  path = os.path.join(study, "records.jsonl")
  lines = open(path).read().splitlines()
  # Drop the last record (as if the study was killed before recording int4) and rerun.
  with open(path, "w") as f:
    f.write("\n".join(lines[:-1]) + "\n")
  before = {n: os.path.getmtime(os.path.join(study, "predictions", f"{n}.npz"))
            for n in ("dense", "gmp_0.9", "oneshot_0.9")}
  result = _run_binary(study)
  assert "1 to run: ['int4']" in result.stderr
  after = open(path).read().splitlines()
  assert after[:-1] == lines[:-1]
  assert json.loads(after[-1])["variant"] == "int4"
  # Restored dense population + same quantization: the same int4 record numbers.
  assert json.loads(after[-1])["accuracy"] == json.loads(lines[-1])["accuracy"]
  for name, mtime in before.items():
    assert os.path.getmtime(os.path.join(study, "predictions", f"{name}.npz")) == mtime
