"""experiments/sparse_vs_dense.py: end-to-end smoke, EGF logging, equal capacity, validation."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from scipy import stats

from experiments.configs import sparse_vs_dense as config_lib
from tradeoffs import sparsity
from tradeoffs.studies import sparse_vs_dense as study

_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _run_binary(workdir: str) -> None:
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
         "JAX_PLATFORMS": "cpu"}
  subprocess.run([sys.executable, "-m", "experiments.sparse_vs_dense",
                  "--config=experiments/configs/sparse_vs_dense.py:smoke",
                  f"--workdir={workdir}"], cwd=_REPO, env=env, check=True, timeout=600,
                 capture_output=True)


@pytest.fixture(scope="module")
def smoke_workdir(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("svd") / "workdir")
  _run_binary(workdir)
  return workdir


def _records(workdir):
  with open(os.path.join(workdir, "records.jsonl")) as f:
    return [json.loads(line) for line in f]


def test_smoke_writes_records_report_and_plots(smoke_workdir):
  records = _records(smoke_workdir)
  assert sorted(r["variant"] for r in records) == [
      "dense-adam-relu-nobn", "dense-sgd-relu-nobn", "sparse-adam-relu-nobn",
      "sparse-sgd-relu-nobn"]
  for r in records:
    assert r["study"] == "sparse_vs_dense" and r["members"] == 2
    assert r["efficiency"]["params"] > r["efficiency"]["nonzero_params"] > 0 or \
        r["kind"] == "dense"
    assert 0.0 <= r["accuracy"]["top1"] <= 1.0 and len(r["accuracy"]["per_member_top1"]) == 2
    for key in ("egf_1", "egf_2", "grad_norm", "grad_norm_masked"):
      assert np.isfinite(r["hidden_costs"][key]) and r["hidden_costs"][key] > 0
    assert r["egf_evaluations"] == 11
    assert r["seeds"]["init"] == [0, 1]
  by = {r["variant"]: r for r in records}
  # Same capacity: the wide network has more parameters in all, the same active weights.
  sparse, dense = by["sparse-sgd-relu-nobn"], by["dense-sgd-relu-nobn"]
  assert sparse["efficiency"]["params"] > dense["efficiency"]["params"]
  assert sparse["hidden"] == [51, 51] and dense["hidden"] == [16, 16]
  for name in ("report.md", "report.html", "analysis.json", "accuracy_sparse_vs_dense.png",
               "egf_vs_accuracy.png", "egf_traces.png"):
    path = os.path.join(smoke_workdir, name)
    assert os.path.getsize(path) > 0, name
  report = open(os.path.join(smoke_workdir, "report.md")).read()
  assert "Did sparse beat dense?" in report and "sgd-relu-nobn" in report
  assert "Spearman" in report and "correlates better here" in report
  analysis = json.load(open(os.path.join(smoke_workdir, "analysis.json")))
  comparison = analysis["comparison"]
  assert comparison["n"] == 2
  row = comparison["settings"][0]
  assert row["sparse_top1"] == pytest.approx(sparse["accuracy"]["top1"])
  assert row["difference"] == pytest.approx(sparse["accuracy"]["top1"] - dense["accuracy"]["top1"])
  # The recorded correlations are scipy's on the recorded numbers.
  xs = [r["hidden_costs"]["egf_2"] for r in records]
  ys = [r["accuracy"]["top1"] for r in records]
  assert analysis["correlations"]["all"]["egf_2"]["pearson_r"] == pytest.approx(
      stats.pearsonr(xs, ys).statistic)


def test_egf_logged_in_metrics(smoke_workdir):
  with open(os.path.join(smoke_workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  for variant in ("sparse-sgd-relu-nobn", "dense-adam-relu-nobn"):
    logged = [r for r in rows if f"{variant}/egf_2" in r]
    assert [r["step"] for r in logged] == list(range(2, 23, 2))  # 11 evaluations.
    for r in logged:
      assert r[f"{variant}/egf_1"] > r[f"{variant}/egf_2"] > 0  # ||.||_1 >= ||.||_2.
      assert r[f"{variant}/grad_norm"] > 0
    record = {r["variant"]: r for r in _records(smoke_workdir)}[variant]
    assert record["hidden_costs"]["egf_2"] == pytest.approx(
        np.mean([r[f"{variant}/egf_2"] for r in logged]))
  # Pruned positions carry gradient too: the full gradient norm exceeds the masked one.
  sparse_rows = [r for r in rows if "sparse-sgd-relu-nobn/grad_norm_masked" in r]
  assert all(r["sparse-sgd-relu-nobn/grad_norm"] > r["sparse-sgd-relu-nobn/grad_norm_masked"]
             for r in sparse_rows)


def test_trained_pair_has_equal_active_weights_per_layer(smoke_workdir):
  pair = sparsity.same_capacity_pair((16, 16), 0.9, 64, 10)
  for opt in ("sgd", "adam"):
    counts = {}
    for kind in ("sparse", "dense"):
      with np.load(os.path.join(smoke_workdir, "params", f"{kind}-{opt}-relu-nobn.npz")) as z:
        counts[kind] = {name: [int(np.count_nonzero(z[name][m])) for m in range(2)]
                        for name in pair["layer_names"]}
    for name in pair["layer_names"]:
      assert counts["sparse"][name] == counts["dense"][name] == [pair["dense_active"][name]] * 2
  # Member masks differ (drawn from each member's init key) but keep exact counts.
  with np.load(os.path.join(smoke_workdir, "params", "sparse-sgd-relu-nobn.npz")) as z:
    kernel = z["dense_1/kernel"]
    assert kernel.shape == (2, 51, 51)
    assert not np.array_equal(kernel[0] != 0, kernel[1] != 0)


def test_rerun_resumes_without_retraining(smoke_workdir):
  before = _records(smoke_workdir)
  _run_binary(smoke_workdir)
  assert [r["variant"] for r in _records(smoke_workdir)] == [r["variant"] for r in before]


def test_flow_metrics_match_hand_computed_values():
  grads = {"dense_0": {"kernel": jnp.array([[3.0, -4.0], [1.0, 2.0]]),
                       "bias": jnp.array([5.0, 5.0])},
           "head": {"kernel": jnp.array([[-6.0], [8.0]]), "bias": jnp.array([7.0])}}
  masks = {"dense_0": {"kernel": jnp.array([[True, True], [False, False]]),
                       "bias": jnp.array([True, True])},
           "head": {"kernel": jnp.array([[True], [False]]), "bias": jnp.array([True])}}
  state = sparsity.masked(optax.sgd(0.1)).init(grads)
  state = sparsity.replace_masks(state, masks)
  out = study.flow_metrics_fn(masked=True)(grads, grads, state)
  # Kernels only: layer norms (|3|+|4|, |-6|) and (5, 6); averaged over the 2 layers.
  assert float(out["egf_1"]) == pytest.approx((7.0 + 6.0) / 2)
  assert float(out["egf_2"]) == pytest.approx((5.0 + 6.0) / 2)
  # Masked gradient of all parameters, biases included: sqrt(9+16+25+25+36+49).
  assert float(out["grad_norm_masked"]) == pytest.approx(np.sqrt(160.0))
  dense = study.flow_metrics_fn(masked=False, normalize=True)(grads, grads, None)
  assert float(dense["egf_1"]) == pytest.approx((10.0 / 4 + 14.0 / 2) / 2)


def test_init_scaling_gives_active_weights_the_dense_distribution():
  pair = sparsity.same_capacity_pair((8,), 0.75, 4, 3)
  assert pair["sparse_hidden"] == [16]
  factors = study.init_factors(pair, 4, "dense")
  # LeCun std 1/sqrt(fan_in): the wide head (fan-in 16) is scaled to the narrow one's (8).
  assert factors == {"dense_0/kernel": 1.0, "head/kernel": pytest.approx(np.sqrt(2.0))}
  assert study.init_factors(pair, 4, "none") == {"dense_0/kernel": 1.0, "head/kernel": 1.0}
  params = {"dense_0": {"kernel": jnp.ones((4, 16)), "bias": jnp.ones(16)},
            "head": {"kernel": jnp.ones((16, 3)), "bias": jnp.ones(3)}}
  scaled = study.scaled_init_fn(factors)(params, jax.random.key(0))
  assert float(scaled["head"]["kernel"][0, 0]) == pytest.approx(np.sqrt(2.0))
  assert float(scaled["head"]["bias"][0]) == 1.0
  with pytest.raises(ValueError, match="init_scaling='fan_out'.*choose from"):
    study.init_factors(pair, 4, "fan_out")


def test_member_masks_keep_exact_counts_per_member():
  pair = sparsity.same_capacity_pair((6, 5), 0.8, 7, 3)
  hidden = pair["sparse_hidden"]
  dims = [7, *hidden, 3]
  params = {f"dense_{i}": {"kernel": jnp.ones((2, dims[i], dims[i + 1])),
                           "bias": jnp.ones((2, dims[i + 1]))} for i in range(2)}
  params["head"] = {"kernel": jnp.ones((2, dims[2], 3)), "bias": jnp.ones((2, 3))}
  keys = jnp.stack([jax.random.key_data(jax.random.key(s)) for s in (0, 1)])
  masks = study.member_masks(keys, params, pair["layer_sparsity"], 0.8)
  for name in pair["layer_names"]:
    layer, leaf = name.split("/")
    counts = np.asarray(masks[layer][leaf]).reshape(2, -1).sum(-1)
    assert counts.tolist() == [pair["dense_active"][name]] * 2
  assert bool(np.all(masks["head"]["bias"]))


def test_statistics_on_hand_made_records():
  def record(setting, kind, members, egf):
    return {"variant": f"{kind}-{setting}", "kind": kind, "setting": {"name": setting},
            "accuracy": {"top1": float(np.mean(members)), "per_member_top1": members},
            "hidden_costs": {"egf_1": 1.0, "egf_2": egf, "grad_norm": 1.0 / egf,
                             "grad_norm_masked": 1.0}}
  records = [record("a", "sparse", [0.9, 0.92], 3.0), record("a", "dense", [0.8, 0.82], 1.0),
             record("b", "sparse", [0.7, 0.72], 0.5), record("b", "dense", [0.75, 0.71], 2.0)]
  comp = study.compare_pairs(records)
  assert comp["n"] == 2 and comp["wins"] == 1
  assert comp["settings"][0]["difference"] == pytest.approx(0.1)
  assert comp["settings"][0]["p_sparse_better"] == pytest.approx(stats.ttest_ind(
      [0.9, 0.92], [0.8, 0.82], equal_var=False, alternative="greater").pvalue)
  assert comp["mean_difference"] == pytest.approx((0.1 - 0.02) / 2)
  corr = study.correlations(records)
  top1 = [0.91, 0.81, 0.71, 0.73]
  assert corr["all"]["egf_2"]["spearman_rho"] == pytest.approx(
      stats.spearmanr([3.0, 1.0, 0.5, 2.0], top1).statistic)
  assert corr["all"]["grad_norm_masked"]["pearson_r"] is None  # Constant: undefined.
  # grad_norm = 1/egf ranks the variants in exactly reverse order: |Spearman| ties, so
  # |Pearson| decides which correlates better.
  assert corr["all"]["basis"] == "pearson_r"
  r_egf = abs(stats.pearsonr([3.0, 1.0, 0.5, 2.0], top1).statistic)
  r_norm = abs(stats.pearsonr([1 / 3.0, 1.0, 2.0, 0.5], top1).statistic)
  assert corr["all"]["better"] == ("egf_2" if r_egf > r_norm else "grad_norm")
  assert corr["sparse"]["egf_2"]["n"] == 2 and corr["sparse"]["better"] is None


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
def test_bad_config_fails_before_compiling(key, value, match):
  config = config_lib.get_config("smoke")
  config.study[key] = value
  with pytest.raises(ValueError, match=match):
    study.validate_config(config)


def test_bad_training_config_and_default_grid():
  config = config_lib.get_config("smoke")
  config.model.name = "cnn"
  with pytest.raises(ValueError, match="model.name='cnn'.*'mlp'"):
    study.validate_config(config)
  config = config_lib.get_config("smoke")
  config.study.learning_rates = {"sgd": 0.1}
  with pytest.raises(ValueError, match="learning_rates has no entry for optimizer 'adam'"):
    study.validate_config(config)
  full = config_lib.get_config()
  study.validate_config(full)
  grid = study.settings(full)
  assert len(grid) == 8 and len({s.name for s in grid}) == 8
  assert full.population.members == 4
