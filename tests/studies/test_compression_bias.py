"""The compression-bias study: plan and validation, and a reduced `:smoke` run's records
against independent numpy/scipy recounts (the shared all-studies test covers running,
schema, reports, rerun and bad input)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
import scipy.stats

from experiments.configs import compression_bias as config_lib
from tradeoffs import stats
from tradeoffs.report import records as records_lib
from tradeoffs.studies import compression_bias as cb
from tradeoffs.studies import runner
from tradeoffs.train import predictions as predictions_lib

VARIANTS = ["dense", "gmp_0.9", "oneshot_0.9", "int8", "int4"]


def _config(**study):
  c = config_lib.get_config("smoke")  # Sparsity 0.9 per method, int8 and int4.
  c.study.update(study)
  return c


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("compression_bias") / "wd")
  result = runner.run(cb, _config(), workdir)
  assert result.finished
  return workdir


def _modal(logits):
  """Independent numpy mode of the members' labels, ties to the largest label."""
  counts = np.stack([np.bincount(col, minlength=logits.shape[-1])
                     for col in logits.argmax(-1).T])
  return counts.shape[-1] - 1 - counts[:, ::-1].argmax(-1)


def test_records_against_recounts(smoke_run):
  records = records_lib.read_records(smoke_run)
  assert [r["variant"] for r in records] == VARIANTS
  by = {r["variant"]: r for r in records}
  dense = predictions_lib.load(smoke_run, "dense")
  labels, under = dense.labels, dense.groups[:, 0] == 1
  dense_modal = _modal(dense.logits)
  for name in VARIANTS[1:]:
    r, h = by[name], by[name]["hidden_costs"]
    logits = predictions_lib.load(smoke_run, name).logits
    assert r["source"] == "dense" and r["members"] == 4
    is_cie = _modal(logits) != dense_modal
    assert h["cie_count"] == int(is_cie.sum())
    assert h["cie_kind"] == ("retrained" if name.startswith("gmp") else "derived")
    # The audit list holds every CIE, by id.
    audit = json.load(open(os.path.join(smoke_run, r["study_fields"]["audit"]["json"])))
    assert sorted(e["id"] for e in audit["examples"]) == sorted(dense.ids[is_cie].tolist())
    # Per-group drop of the rotated subgroup: per-member accuracies, t interval.
    ref = (dense.logits.argmax(-1) == labels)[:, under].mean(1)
    new = (logits.argmax(-1) == labels)[:, under].mean(1)
    paired = name != "gmp_0.9"
    d = h["group_drops"]["subgroup=1"]
    assert d["drop"] == pytest.approx((ref - new).mean())
    diff = ref - new if paired else None
    if paired:
      half = scipy.stats.t.ppf(0.975, 3) * diff.std(ddof=1) / 2
      assert (d["drop_low"], d["drop_high"]) == pytest.approx((diff.mean() - half,
                                                               diff.mean() + half))
    # The excess drop of the under-represented group and its test.
    gap = lambda p: ((p == labels)[:, ~under].mean(1)  # noqa: E731
                     - (p == labels)[:, under].mean(1))
    g_new, g_ref = gap(logits.argmax(-1)), gap(dense.logits.argmax(-1))
    c = h["disparity"]["comparison"]
    assert h["disparity"]["excess_drop"] == pytest.approx((g_new - g_ref).mean())
    expected = (scipy.stats.ttest_rel(g_new, g_ref) if paired
                else scipy.stats.ttest_ind(g_new, g_ref, equal_var=False))
    assert c["test"] == ("paired" if paired else "welch")
    assert c["p"] == pytest.approx(expected.pvalue)
    assert len(h["per_class_tests"]) == 10
  # Both pruning distributions keep round(0.1 n) weights of the kernels 64x64 and 64x10
  # (uniform: 410 + 64; global: 474) plus the 74 biases.
  for name in ("gmp_0.9", "oneshot_0.9"):
    assert by[name]["efficiency"]["nonzero_params"] == 548
  assert by["gmp_0.9"]["knobs"]["distribution"] == "uniform"
  assert by["oneshot_0.9"]["knobs"]["distribution"] == "global"
  # int4: codes at 4 bits (4736 kernel weights) + float32 scales (74) + float32 biases.
  assert by["int4"]["efficiency"]["weight_bytes"] == 4736 // 2 + 4 * 74 + 4 * 74
  assert by["int4"]["study_fields"]["compression_ratio"] == pytest.approx(
      4810 * 32 / (4736 * 4 + 74 * 32))


def test_each_section_is_one_holm_family(smoke_run):
  records = records_lib.read_records(smoke_run)
  compressed = records[1:]
  family = cb._comparisons(compressed, cb._class_claims)
  raw = [c["p"] for r in compressed for c in r["hidden_costs"]["per_class_tests"] if c]
  assert len(family) == 40  # 10 classes x 4 variants, corrected together.
  np.testing.assert_allclose([c.p_holm for c in family], stats.holm(raw))
  disparity = cb._comparisons(compressed, cb._disparity_claims)
  assert [c.claim for c in disparity] == [f"{v}: gap rest − subgroup=1" for v in VARIANTS[1:]]
  blocks = cb.sections(records, _config())
  headings = [b[1] for b in blocks if b[0] == "h2"]
  assert headings[:2] == ["Who paid for compression", "Verdicts against dense"]
  assert {"Who paid: the under-represented group", "Per-group drops", "Per-class impact",
          "Audit of the compression-identified exemplars"} <= set(headings)
  text = " ".join(b[1] for b in blocks if b[0] == "p")
  assert "layer-wise" in text and "global" in text  # Which distribution each method used.
  assert any(b[0] == "figure" and b[1] == "cie_audit.png" for b in blocks)


def test_plan_default_variants_and_knobs():
  variants = cb.plan(config_lib.get_config())
  assert [v.name for v in variants] == [
      "dense", "gmp_0.3", "gmp_0.5", "gmp_0.7", "gmp_0.9", "oneshot_0.3", "oneshot_0.5",
      "oneshot_0.7", "oneshot_0.9", "int8", "int4"]
  by = {v.name: v for v in variants}
  assert by["gmp_0.9"].technique == "pruned_gradual"
  assert by["gmp_0.9"].knobs["distribution"] == "uniform"
  assert by["gmp_0.9"].train_config.train.steps == 600
  assert by["oneshot_0.9"].knobs["distribution"] == "global"
  assert by["oneshot_0.9"].train_config.train.steps == 100
  assert by["int8"].train_config is None and by["int8"].source == "dense"
  assert "study" not in by["dense"].train_config
  assert config_lib.get_config("cifar10,members=8").population.members == 8
  celeb = config_lib.get_config("celeb_a")
  assert celeb.dataset.group_attributes == ("Male", "Young")


@pytest.mark.parametrize("changes, pattern", [
    (dict(sparsities=(0.5, 1.0)), r"--config.study.sparsities=\(0.5, 1.0\).*\(0, 1\)"),
    (dict(methods=("gradual", "random")), r"--config.study.methods=.*'one_shot'"),
    (dict(bits=(8, 1)), r"--config.study.bits=\(8, 1\).*\[2, 8\]"),
    (dict(granularity="per_row"), r"--config.study.granularity='per_row'"),
    (dict(ttest_normalize="z"), r"--config.study.ttest_normalize='z'"),
    (dict(floor_margin=2.0), r"--config.study.floor_margin=2.0"),
    (dict(audit_variant="gmp_0.3"), r"--config.study.audit_variant='gmp_0.3'.*gmp_0.9"),
    (dict(methods=(), bits=()), r"no compressed variant"),
])
def test_validation_names_the_flag(changes, pattern):
  with pytest.raises(ValueError, match=pattern):
    cb.plan(_config(**changes))


def test_validation_of_nested_knobs():
  c = _config()
  c.study.gradual.end_step = 60
  with pytest.raises(ValueError, match=r"gradual.end_step=60.*train.steps=60"):
    cb.plan(c)
  c = _config()
  c.study.gradual.distribution = "gaussian"
  with pytest.raises(ValueError, match=r"--config.study.gradual.distribution='gaussian'"):
    cb.plan(c)
  c = _config()
  c.study.one_shot.finetune_steps = 0
  with pytest.raises(ValueError, match=r"one_shot.finetune_steps=0"):
    cb.plan(c)
