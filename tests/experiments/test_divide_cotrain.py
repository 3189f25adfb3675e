"""Divide-and-co-train study: binary smoke, views, coupling, parameter parity, input checks."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import divide_cotrain as config_lib
from tradeoffs import ensembles
from tradeoffs.studies import divide_cotrain as study
from tradeoffs.train import experiment
from tradeoffs.train import population as pop_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VARIANTS = {"wide", "divided_s2", "divided_s2_cotrain", "divided_s4", "divided_s4_cotrain"}


@pytest.fixture(scope="module")
def smoke_workdir(tmp_path_factory):
  """The binary run once on `:smoke` with 4 simulated CPU devices."""
  workdir = str(tmp_path_factory.mktemp("divide_cotrain") / "wd")
  env = {**os.environ, "XLA_FLAGS": "--xla_force_host_platform_device_count=4",
         "JAX_PLATFORMS": "cpu"}
  subprocess.run([sys.executable, "-m", "experiments.divide_cotrain",
                  "--config=experiments/configs/divide_cotrain.py:smoke",
                  f"--workdir={workdir}"], cwd=REPO, env=env, check=True, timeout=600)
  return workdir


def _records(workdir):
  with open(os.path.join(workdir, "records.jsonl")) as f:
    return {r["variant"]: r for r in map(json.loads, f)}


def test_binary_writes_records_predictions_report_and_plots(smoke_workdir):
  records = _records(smoke_workdir)
  assert set(records) == VARIANTS
  repeats = config_lib.get_config("smoke").study.repeats
  for name, r in records.items():
    s = r["num_members"]
    assert r["study"] == "divide_cotrain" and r["members"] == s and r["population"] == repeats * s
    assert r["cotrain"] == name.endswith("_cotrain")
    e, a, h = r["efficiency"], r["accuracy"], r["hidden_costs"]
    for key in ("params", "params_per_member", "flops", "latency_ms", "latency_concurrent_ms",
                "latency_sequential_ms"):
      assert e[key] > 0, (name, key)
    assert e["backend"] == "cpu" and "CPU" in e["notes"]["latency_ms"]
    assert e["params"] == s * e["params_per_member"]
    assert len(a["per_ensemble_top1"]) == repeats and len(a["per_member_top1"]) == repeats * s
    assert 0 <= a["worst_class"] <= a["top1"] <= 1
    assert np.isclose(a["top1"], np.mean(a["per_ensemble_top1"]))
    assert 0 <= h["churn"] <= 1
    assert (h["member_churn"] is None) == (s == 1)
    # Member predictions [R*S, N, C] and the combined ensemble [R, N, C] are saved.
    members = np.load(os.path.join(smoke_workdir, "predictions", f"{name}.npz"))["logits"]
    combined = np.load(os.path.join(smoke_workdir, "predictions",
                                    f"{name}_ensemble.npz"))["logits"]
    assert members.shape == (repeats * s, 360, 10) and combined.shape == (repeats, 360, 10)
    np.testing.assert_allclose(
        combined, members.reshape(repeats, s, 360, 10).mean(1), rtol=1e-5, atol=1e-5)
    # The record's top-1 is the combined prediction's accuracy.
    labels = np.load(os.path.join(smoke_workdir, "predictions", f"{name}.npz"))["labels"]
    np.testing.assert_allclose(a["per_ensemble_top1"], (combined.argmax(-1) == labels).mean(-1))
  # Concurrent members ran over several (simulated) devices.
  assert records["divided_s4"]["efficiency"]["concurrent_devices"] == 4
  report = open(os.path.join(smoke_workdir, "report.md")).read()
  assert "## Divided vs wide (this run)" in report
  html = open(os.path.join(smoke_workdir, "report.html")).read()
  assert "<h2>Divided vs wide (this run)</h2>" in html and html.count("data:image/png") >= 5
  assert ("divided ensemble beat the wide model" in report or
          "no divided ensemble clearly beat the wide model" in report)
  for name in VARIANTS:
    assert f"| {name} |" in report
  for png in ("accuracy_vs_params.png", "accuracy_vs_latency.png", "frontier_params.png",
              "frontier_latency_ms.png"):
    path = os.path.join(smoke_workdir, png)
    assert os.path.getsize(path) > 1000, png
  for name in VARIANTS:
    assert os.path.isdir(os.path.join(smoke_workdir, "checkpoints", name))


def test_total_params_of_members_within_divide_tolerance_of_wide(smoke_workdir):
  records = _records(smoke_workdir)
  wide = records["wide"]["efficiency"]["params"]
  # The smoke model is the default 64-512-512-10 MLP; its closed-form count:
  assert wide == 64 * 512 + 512 + 512 * 512 + 512 + 512 * 10 + 10
  for name, r in records.items():
    ratio = r["efficiency"]["params"] / wide
    # tradeoffs.ensembles.divide states (and tests) parity within 25%.
    assert 0.75 <= ratio <= 1.25, (name, ratio)
    assert 0.75 <= r["efficiency"]["flops"] / records["wide"]["efficiency"]["flops"] <= 1.25


def test_coupling_is_logged_positive_only_when_cotraining(smoke_workdir):
  with open(os.path.join(smoke_workdir, "metrics.jsonl")) as f:
    rows = [json.loads(line) for line in f]
  for name in VARIANTS:
    values = [row[f"{name}/coupling_loss"] for row in rows if f"{name}/coupling_loss" in row]
    if name.endswith("_cotrain"):
      assert values and all(v > 0 for v in values), (name, values)
    else:
      assert not values, name
  records = _records(smoke_workdir)
  assert records["divided_s4_cotrain"]["train_metrics"]["coupling_loss"] > 0


def test_cotrained_members_see_different_views_of_the_same_images():
  config = config_lib.get_config("smoke")
  variant = next(v for v in study.make_variants(config) if v.name == "divided_s2_cotrain")
  tconfig = study.train_config(config, variant)
  assert tconfig.population.members == 2 * config.study.repeats
  # The divided weight decay (exp rule) and the divided width reach the training config.
  assert np.isclose(tconfig.optimizer.weight_decay, 5e-4 * np.exp(1 / 2 - 1))
  assert tuple(tconfig.model.kwargs.hidden) == (362, 362)
  mesh, dataset, _, state, step_config = experiment.build(tconfig)
  state = study.group_data_keys(state, 2, int(config.seeds.data))
  data = pop_lib.to_device(dataset.train, mesh)
  images, labels, _ = jax.vmap(pop_lib.member_batch, in_axes=(0, 0, None, None))(
      state.rngs, state.step, data, step_config)
  images, labels = np.asarray(images), np.asarray(labels)
  # Ensemble r = members (2r, 2r+1): same images in the same order; ensembles differ.
  np.testing.assert_array_equal(images[0], images[1])
  np.testing.assert_array_equal(labels[2], labels[3])
  assert not np.array_equal(labels[0], labels[2])
  views = np.asarray(pop_lib.augment_members(state, jnp.asarray(images), step_config))
  assert not np.allclose(views[0], views[1]) and not np.allclose(views[2], views[3])
  # A view is a shifted copy (pad 1, crop): same content scale, not noise.
  assert np.isclose(views[0].max(), images[0].max())
  # Members start from different initializations.
  kernel = np.asarray(state.params["dense_0"]["kernel"])
  assert not np.allclose(kernel[0], kernel[1])


def _js_reference(logits):
  """H(mean p) - mean H(p) in numpy, averaged over the batch; logits [S, B, C]."""
  p = np.exp(logits - logits.max(-1, keepdims=True))
  p /= p.sum(-1, keepdims=True)
  entropy = lambda q: -(q * np.log(q)).sum(-1)
  return float(np.mean(entropy(p.mean(0)) - entropy(p).mean(0)))


def test_coupling_acts_within_each_ensemble_only():
  rng = np.random.default_rng(0)
  r, s, b, c = 3, 2, 5, 4
  logits = rng.normal(size=(r * s, b, c)).astype(np.float32)
  logits[2:4] = logits[2]  # Ensemble 1's members agree: it contributes nothing.
  schedule = ensembles.cotraining_schedule(10, weight=0.5, warmup_epochs=4)
  coupling = study.make_coupling_fn(s, weight_schedule=schedule)
  labels = np.zeros((r * s, b), np.int32)
  expected = sum(_js_reference(logits[i * s:(i + 1) * s]) for i in range(r))
  # Step 20 is epoch 2 of a 4-epoch warm-up: lambda = 0.5 * 2 / 4.
  np.testing.assert_allclose(coupling(jnp.asarray(logits), labels, 20), 0.25 * expected,
                             rtol=1e-5)
  np.testing.assert_allclose(coupling(jnp.asarray(logits), labels, 100), 0.5 * expected,
                             rtol=1e-5)
  grad = jax.grad(lambda x: coupling(x, labels, 100))(jnp.asarray(logits))
  np.testing.assert_allclose(grad[2:4], 0.0, atol=1e-7)
  # Moving ensemble 2 does not change the gradient of ensemble 0.
  moved = logits.copy()
  moved[4:] += rng.normal(size=moved[4:].shape).astype(np.float32)
  grad_moved = jax.grad(lambda x: coupling(x, labels, 100))(jnp.asarray(moved))
  np.testing.assert_allclose(grad_moved[:2], grad[:2], rtol=1e-6)
  assert not np.allclose(grad_moved[4:], grad[4:])


def test_ensemble_logits_and_churn_hand_computed():
  # Two ensembles of two members, 3 examples, 2 classes.
  logits = np.array([
      [[2, 0], [0, 1], [1, 0]],
      [[0, 1], [0, 3], [3, 0]],
      [[1, 0], [1, 0], [0, 1]],
      [[1, 0], [1, 0], [0, 1]],
  ], np.float32)
  combined = study.ensemble_logits(logits, 2, "mean_logits")
  np.testing.assert_allclose(combined[0], [[1, 0.5], [0, 2], [2, 0]])
  np.testing.assert_allclose(study.ensemble_logits(logits, 2, "max_logits")[0],
                             [[2, 1], [0, 3], [3, 0]])
  # Ensemble 0's members disagree on example 0 only (1/3); ensemble 1's agree everywhere.
  assert np.isclose(study.member_churn(logits, 2), (1 / 3 + 0) / 2)
  # Combined predictions [0, 1, 0] vs [0, 0, 1]: they differ on 2 of 3 examples.
  assert np.isclose(study.run_churn(combined), 2 / 3)
  assert study.member_churn(logits, 1) is None and study.run_churn(combined[:1]) is None


@pytest.mark.parametrize("change,match", [
    (lambda c: setattr(c.study, "members", (0, 2)), r"study.members entry 0.*>= 1"),
    (lambda c: setattr(c.study, "members", (1,)), r"S=1 is the wide model"),
    (lambda c: setattr(c.model.kwargs, "hidden", (1, 1)),
     r"cannot be divided with --config.study.members S=4.*hidden=1 cannot be divided"),
    (lambda c: setattr(c.ensemble, "combine", "median"),
     r"combine='median'.*valid: \['geometric_mean_probs', 'max_logits'"),
    (lambda c: setattr(c.cotraining, "loss", "l2"), r"cotraining.loss='l2'.*js_divergence"),
    (lambda c: setattr(c.study, "weight_decay_rule", "half"), r"weight_decay_rule='half'"),
    (lambda c: setattr(c.study, "repeats", 0), r"study.repeats=0"),
])
def test_bad_input_fails_before_compiling(workdir, change, match):
  config = config_lib.get_config("smoke")
  change(config)
  compiles = []
  listener = lambda event, *_, **__: compiles.append(event) if "backend_compile" in event else None
  jax.monitoring.register_event_duration_secs_listener(listener)
  try:
    with pytest.raises(ValueError, match=match):
      study.run(config, workdir)
  finally:
    jax.monitoring.unregister_event_duration_listener(listener)
  assert not compiles
  assert not os.path.exists(os.path.join(workdir, "config.json"))


def test_config_variants():
  with pytest.raises(ValueError, match=r"variant 'cifar' is unknown"):
    config_lib.get_config("cifar")
  c100 = config_lib.get_config("cifar100_wrn28_10")
  assert c100.dataset.name == "cifar100" and c100.train.steps == 117000
  variants = {v.name: v for v in study.validate_config(c100, device_count=8)}
  assert variants["divided_s2"].division.member.kwargs["widen_factor"] == 7
  assert variants["divided_s4_cotrain"].division.member.kwargs["widen_factor"] == 5
  assert np.isclose(variants["divided_s4"].division.weight_decay, 5e-4 * np.exp(1 / 4 - 1))
  assert config_lib.get_config("smoke,repeats=5").study.repeats == 5
