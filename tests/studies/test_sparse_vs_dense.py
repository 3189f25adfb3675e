"""sparse_vs_dense on the study layer: the plan, validation, the verdicts' inputs on
hand-made records (against scipy and hand computation), and what a trained pair records.

The `:smoke` end-to-end run (records validate, report.md and report.html agree, bad input
exits 2) is the shared test over the STUDIES registry.
"""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments.configs import sparse_vs_dense as config_lib
from tradeoffs import errors
from tradeoffs import sparsity
from tradeoffs import stats
from tradeoffs.report import records as records_lib
from tradeoffs.studies import runner
from tradeoffs.studies import sparse_vs_dense as study


# --- plan and validation ---------------------------------------------------------------------

def test_default_plan_pairs_every_setting_dense_first():
  config = config_lib.get_config()
  variants = study.plan(config)
  assert len(variants) == 16
  settings = [f"{o}-{a}-{b}" for o in ("sgd", "adam") for a in ("relu", "swish")
              for b in ("nobn", "bn")]
  assert [v.name for v in variants] == [f"{k}-{s}" for s in settings
                                        for k in ("dense", "sparse")]
  by = {v.name: v for v in variants}
  dense, sparse = by["dense-adam-swish-bn"], by["sparse-adam-swish-bn"]
  assert dense.source is None and sparse.source == "dense-adam-swish-bn"
  # Hidden widths x 1/sqrt(1 - 0.9), rounded: 64 -> 202.
  assert dense.knobs["hidden"] == [64, 64] and sparse.knobs["hidden"] == [202, 202]
  assert sparse.knobs["sparsity"] == 0.9 and dense.knobs["sparsity"] == 0.0
  assert sparse.knobs["init_scaling"] == "dense" and dense.knobs["init_scaling"] is None
  tc = sparse.train_config
  assert tuple(tc.model.kwargs.hidden) == (202, 202)
  assert tc.model.kwargs.activation == "swish" and tc.model.kwargs.batch_norm is True
  assert tc.optimizer.name == "adam" and tc.optimizer.learning_rate == 1e-3
  assert by["dense-sgd-relu-nobn"].train_config.optimizer.learning_rate == 0.05
  assert tc.train.log_every == 550 // 11 and tc.train.eval_every == 550
  for section in ("study", "efficiency", "report"):
    assert section not in tc
  assert config.population.members == 4


def test_smoke_plan_is_two_settings_with_small_widths():
  variants = study.plan(config_lib.get_config("smoke"))
  assert [v.name for v in variants] == ["dense-sgd-relu-nobn", "sparse-sgd-relu-nobn",
                                        "dense-adam-relu-nobn", "sparse-adam-relu-nobn"]
  assert variants[1].knobs["hidden"] == [51, 51]
  assert variants[1].train_config.train.log_every == 2  # 22 steps, 11 evaluations.


@pytest.mark.parametrize("key,value,match", [
    ("optimizers", ("sgd", "rmsprop"), r"study.optimizers contains 'rmsprop'; valid"),
    ("activations", ("relu", "mish"), r"study.activations contains 'mish'; valid"),
    ("sparsity", 1.0, r"study.sparsity=1.0 is invalid; allowed: a number in \[0, 1\)"),
    ("sparsity", -0.1, r"study.sparsity=-0.1 is invalid"),
    ("batch_norm", ("yes",), r"study.batch_norm=.*a non-empty tuple of bools"),
    ("dense_hidden", (16, 0), r"study.dense_hidden=.*positive ints"),
    ("init_scaling", "xavier", r"study.init_scaling='xavier'.*'dense'"),
    ("egf_evaluations", 0, r"study.egf_evaluations=0"),
])
def test_bad_study_knob_names_it(key, value, match):
  config = config_lib.get_config("smoke")
  config.study[key] = value
  with pytest.raises(ValueError, match=match):
    study.plan(config)
  with pytest.raises(errors.ConfigError, match=match):  # One line, exit 2, in the binary.
    runner.plan(study, config)


def test_bad_model_learning_rates_and_steps():
  config = config_lib.get_config("smoke")
  config.model.name = "cnn"
  with pytest.raises(ValueError, match="model.name='cnn'.*'mlp'"):
    study.plan(config)
  config = config_lib.get_config("smoke")
  config.study.learning_rates = {"sgd": 0.1}
  with pytest.raises(ValueError, match="learning_rates has no entry for optimizer 'adam'"):
    study.plan(config)
  config = config_lib.get_config("smoke")
  config.train.steps = 5
  with pytest.raises(ValueError, match="train.steps=5 must be >= .*egf_evaluations=11"):
    study.plan(config)


# --- the verdicts' inputs on hand-made records -----------------------------------------------

SEEDS = {"init": [0, 1, 2], "data": [0, 1, 2]}


@pytest.fixture(autouse=True)
def fewer_resamples(monkeypatch):
  monkeypatch.setattr(study, "BOOTSTRAP_RESAMPLES", 300)  # Seconds, not a minute.


def record(kind, optimizer, activation, bn, top1, flow=(1.0, 1.0, 1.0, 1.0), seeds=SEEDS):
  setting = study.setting_name(optimizer, activation, bn)
  egf_1, egf_2, grad_norm, masked = flow
  return records_lib.make_record(
      study=study.NAME, variant=f"{kind}-{setting}", technique=f"{kind}_same_capacity",
      knobs={"kind": kind, "setting": setting, "optimizer": optimizer,
             "activation": activation, "batch_norm": bn, "hidden": [4], "dense_hidden": [4],
             "sparsity": 0.9 if kind == "sparse" else 0.0},
      source=None if kind == "dense" else f"dense-{setting}", members=len(top1),
      efficiency={}, accuracy={"top1": float(np.mean(top1)), "per_member_top1": list(top1)},
      study_fields={"egf_1": egf_1, "egf_2": egf_2, "grad_norm": grad_norm,
                    "grad_norm_masked": masked, "egf_evaluations": 11,
                    "flow_trace": {"steps": [1, 2], "egf_2": [egf_2, egf_2]}},
      seeds=seeds)


def grid_records():
  """sgd x relu x {nobn, bn}, adam x relu x {nobn, bn}; three seeds."""
  top1 = {  # (optimizer, bn): (sparse, dense)
      ("sgd", False): ([0.90, 0.92, 0.91], [0.80, 0.83, 0.82]),
      ("sgd", True): ([0.95, 0.96, 0.97], [0.84, 0.85, 0.83]),
      ("adam", False): ([0.70, 0.72, 0.71], [0.75, 0.71, 0.74]),
      ("adam", True): ([0.80, 0.79, 0.82], [0.76, 0.74, 0.73]),
  }
  out = []
  for i, ((opt, bn), (sparse, dense)) in enumerate(top1.items()):
    out.append(record("dense", opt, "relu", bn, dense, (1.0 + i, 0.5 + i, 3.0 - i, 0.4)))
    out.append(record("sparse", opt, "relu", bn, sparse, (2.0 + i, 1.5 + 0.5 * i, 0.1 * i, 0.3)))
  return out


def test_setting_comparisons_are_paired_t_with_holm_across_settings():
  records = grid_records()
  comps = study.setting_comparisons(records)
  assert [c.claim.split(":")[0] for c in comps] == ["sgd-relu-nobn", "sgd-relu-bn",
                                                    "adam-relu-nobn", "adam-relu-bn"]
  sparse = [0.90, 0.92, 0.91]
  dense = [0.80, 0.83, 0.82]
  c = comps[0]
  assert c.test == "paired" and c.n_a == 3
  assert c.estimate == pytest.approx(np.mean(np.subtract(sparse, dense)))
  assert c.p == pytest.approx(scipy_stats.ttest_rel(sparse, dense).pvalue)
  d = np.subtract(sparse, dense)
  half = scipy_stats.t.ppf(0.975, 2) * d.std(ddof=1) / np.sqrt(3)
  assert (c.low, c.high) == pytest.approx((d.mean() - half, d.mean() + half))
  raw = [x.p for x in comps]
  order = np.argsort(raw)
  holm = np.empty(4)
  running = 0.0
  for rank, i in enumerate(order):  # Holm by hand.
    running = max(running, min(1.0, (4 - rank) * raw[i]))
    holm[i] = running
  np.testing.assert_allclose([x.p_holm for x in comps], holm)
  assert c.verdict == stats.decide(c.estimate, c.p_holm)


def test_grid_comparison_averages_each_seed_over_settings():
  records = grid_records()
  c = study.grid_comparison(records)
  sparse = np.mean([[0.90, 0.92, 0.91], [0.95, 0.96, 0.97], [0.70, 0.72, 0.71],
                    [0.80, 0.79, 0.82]], 0)
  dense = np.mean([[0.80, 0.83, 0.82], [0.84, 0.85, 0.83], [0.75, 0.71, 0.74],
                   [0.76, 0.74, 0.73]], 0)
  assert c.test == "paired" and c.n_a == 3
  assert c.estimate == pytest.approx((sparse - dense).mean())
  assert c.p == pytest.approx(scipy_stats.ttest_rel(sparse, dense).pvalue)
  assert c.p_holm == c.p  # A family of one.


def test_batch_norm_gain_of_sparse_vs_dense_by_hand():
  comps = study.batch_norm_comparisons(grid_records())
  assert len(comps) == 3
  s_bn = np.mean([[0.95, 0.96, 0.97], [0.80, 0.79, 0.82]], 0)
  s_no = np.mean([[0.90, 0.92, 0.91], [0.70, 0.72, 0.71]], 0)
  d_bn = np.mean([[0.84, 0.85, 0.83], [0.76, 0.74, 0.73]], 0)
  d_no = np.mean([[0.80, 0.83, 0.82], [0.75, 0.71, 0.74]], 0)
  sparse_gain, dense_gain, difference = comps
  assert sparse_gain.estimate == pytest.approx((s_bn - s_no).mean())
  assert dense_gain.estimate == pytest.approx((d_bn - d_no).mean())
  assert difference.estimate == pytest.approx(((s_bn - s_no) - (d_bn - d_no)).mean())
  assert difference.p == pytest.approx(
      scipy_stats.ttest_rel(s_bn - s_no, d_bn - d_no).pvalue)
  assert max(c.p_holm for c in comps) <= 1 and all(c.p_holm >= c.p for c in comps)
  # Without both batch-norm values there is no claim.
  assert study.batch_norm_comparisons([r for r in grid_records()
                                       if not r["knobs"]["batch_norm"]]) == []


def test_pairs_need_both_kinds_and_the_same_seeds():
  records = grid_records()
  other_seeds = {"init": [5, 6, 7], "data": [5, 6, 7]}
  records[1] = record("sparse", "sgd", "relu", False, [0.9, 0.9, 0.9], seeds=other_seeds)
  del records[2]  # dense-sgd-relu-bn
  assert [s["variant"] for s, _ in study.pairs(records)] == ["sparse-adam-relu-nobn",
                                                            "sparse-adam-relu-bn"]


def test_correlation_comparisons_are_the_bootstrap_of_abs_spearman_differences():
  records = grid_records()
  comps = study.correlation_comparisons(records)
  # 8 variants in all (>= 6) get claims; the 4 sparse ones are too few.
  assert [c.claim for c in comps] == [
      "all 8 variants: |ρ| with top-1, egf_1 vs grad_norm",
      "all 8 variants: |ρ| with top-1, egf_2 vs grad_norm"]
  top1 = [r["accuracy"]["top1"] for r in records]
  egf_2 = [r["study_fields"]["egf_2"] for r in records]
  norm = [r["study_fields"]["grad_norm"] for r in records]
  expected = stats.compare_correlations(top1, egf_2, norm, claim=comps[1].claim,
                                        n_resamples=300)
  assert comps[1].estimate == pytest.approx(
      abs(scipy_stats.spearmanr(egf_2, top1).statistic)
      - abs(scipy_stats.spearmanr(norm, top1).statistic))
  assert (comps[1].low, comps[1].high, comps[1].p) == pytest.approx(
      (expected.low, expected.high, expected.p))
  holm = stats.holm([c.p for c in comps])
  assert [c.p_holm for c in comps] == pytest.approx(holm)
  rows = {(c["subset"], c["metric"]): c for c in study.correlations(records)}
  assert rows[("all", "egf_2")]["rho"] == pytest.approx(
      scipy_stats.spearmanr(egf_2, top1).statistic)
  assert np.isfinite(rows[("all", "egf_2")]["low"])
  assert not np.isfinite(rows[("sparse", "egf_2")]["low"])  # 4 variants: no interval.


def test_sections_state_verdicts_with_intervals_and_build_figures():
  from matplotlib.figure import Figure
  blocks = study.sections(grid_records(), config_lib.get_config("smoke"))
  heads = [b[1] for b in blocks if b[0] in ("h2", "h3")]
  assert heads == [study.TITLE, "Did sparse beat dense over the grid?",
                   "Sparse vs dense per setting",
                   "Does batch norm help sparse more than dense?",
                   "Does EGF track accuracy better than the gradient norm?"]
  text = " ".join(b[1] for b in blocks if b[0] == "p")
  grid = study.grid_comparison(grid_records())
  assert f"{grid.verdict} (Δ " in text and "95% CI [" in text and "Holm p = " in text
  for c in study.correlation_comparisons(grid_records()):
    assert "bootstrap p = " in text and c.verdict in text
  tables = [b for b in blocks if b[0] == "table"]
  per_setting = tables[0]
  assert per_setting[1][:5] == ["Setting", "Sparse top-1 % [CI]", "Dense top-1 % [CI]",
                                "Sparse − dense (pp)", "95% CI"]
  assert per_setting[2][0][0] == "sgd-relu-nobn" and per_setting[2][0][1].startswith("91.00 [")
  figs = [b for b in blocks if b[0] == "figure"]
  assert [b[1] for b in figs] == ["accuracy_sparse_vs_dense.png", "egf_vs_accuracy.png",
                                  "egf_traces.png"]
  assert all(isinstance(b[2], Figure) and b[3].endswith(".") for b in figs)


# --- a trained pair --------------------------------------------------------------------------

@pytest.fixture(scope="module")
def trained_pair(tmp_path_factory):
  config = config_lib.get_config("smoke")
  config.study.optimizers = ("sgd",)
  workdir = str(tmp_path_factory.mktemp("svd") / "workdir")
  result = runner.run(study, config, workdir)
  assert result.finished
  return workdir, {r["variant"]: r for r in records_lib.read_records(workdir)}


def test_trained_pair_records_equal_active_weights_and_logged_egf(trained_pair):
  workdir, records = trained_pair
  sparse, dense = records["sparse-sgd-relu-nobn"], records["dense-sgd-relu-nobn"]
  pair = sparsity.same_capacity_pair((16, 16), 0.9, 64, 10)
  for r in (sparse, dense):
    f = r["study_fields"]
    assert f["active_per_layer"] == {n: [pair["dense_active"][n]] * 2
                                     for n in pair["layer_names"]}
    assert f["egf_evaluations"] == 11 and f["flow_trace"]["steps"] == list(range(2, 23, 2))
    assert f["egf_1"] > f["egf_2"] > 0  # ||.||_1 >= ||.||_2.
  assert sparse["study_fields"]["layer_sparsity"] == pair["layer_sparsity"]
  # Same capacity: more parameters in all, the same non-zero weights in the kernels.
  assert sparse["efficiency"]["params"] > dense["efficiency"]["params"]
  assert sparse["efficiency"]["nonzero_params"] < sparse["efficiency"]["params"]
  assert sparse["source"] == "dense-sgd-relu-nobn"
  assert sparse["hidden_costs"]["cie_kind"] == "retrained"
  assert sparse["seeds"] == dense["seeds"] == {**sparse["seeds"], "init": [0, 1]}
  with open(os.path.join(workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  logged = [r for r in rows if "sparse-sgd-relu-nobn/egf_2" in r]
  assert sparse["study_fields"]["egf_2"] == pytest.approx(
      np.mean([r["sparse-sgd-relu-nobn/egf_2"] for r in logged]))
  # Pruned positions carry gradient too: the full gradient norm exceeds the masked one.
  assert all(r["sparse-sgd-relu-nobn/grad_norm"] > r["sparse-sgd-relu-nobn/grad_norm_masked"]
             for r in logged)
  dense_rows = [r for r in rows if "dense-sgd-relu-nobn/egf_2" in r]
  assert all(r["dense-sgd-relu-nobn/grad_norm"] == pytest.approx(
      r["dense-sgd-relu-nobn/grad_norm_masked"], rel=1e-5) for r in dense_rows)
