"""examples/other_frameworks.py: tradeoffs on a Flax NNX model, a plain-dict jax.numpy MLP and
an Equinox model (skipped without equinox) — no Linen, no tradeoffs.train. Numbers checked:
pruned fraction per layer, |w - q| <= scale / 2 per output channel, CIE counts of a
constructed population, per-group accuracies against a numpy recount."""

from __future__ import annotations

import importlib.util
import os
import sys

import jax
import numpy as np
import pytest

from tradeoffs import exemplars
from tradeoffs import fairness
from tradeoffs import quantization
from tradeoffs import sparsity

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _load_example():
  spec = importlib.util.spec_from_file_location(
      "other_frameworks_example", os.path.join(ROOT, "examples", "other_frameworks.py"))
  module = importlib.util.module_from_spec(spec)
  sys.modules[spec.name] = module  # dataclasses look their module up
  spec.loader.exec_module(module)
  return module


ex = _load_example()
FRAMEWORKS = ["plain_dict", "flax_nnx", "equinox"]


def _framework(name):
  if name == "plain_dict":
    return ex.PLAIN
  if name == "flax_nnx":
    return ex.nnx_framework()
  pytest.importorskip("equinox")
  return ex.equinox_framework()


@pytest.fixture(scope="module")
def digits():
  return ex.load_digits()


@pytest.fixture(scope="module", params=FRAMEWORKS)
def result(request, digits):
  fw = _framework(request.param)
  return fw, ex.run_framework(fw, members=2, steps=60, prune_steps=10, target=0.75,
                              digits=digits)


def _named(tree):
  return {sparsity.path_name(p): np.asarray(v) for p, v in
          jax.tree_util.tree_leaves_with_path(tree)}


def test_no_linen_and_no_trainer_in_the_example():
  source = open(os.path.join(ROOT, "examples", "other_frameworks.py")).read()
  imports = [line.strip() for line in source.splitlines()
             if line.strip().startswith(("import ", "from "))]
  assert imports
  for line in imports:
    assert "linen" not in line and "tradeoffs.train" not in line, line
    assert not (line.startswith("from tradeoffs import") and " train" in line), line


def test_pruned_fraction_per_layer_is_exact_and_masks_live_in_the_optax_state(result):
  fw, out = result
  masks = _named(out["masks"])
  in_state = _named(sparsity.get_masks(out["opt_state"]))  # the very masks of the state
  assert set(in_state) == set(masks)
  for name in masks:
    np.testing.assert_array_equal(in_state[name], masks[name])
  params = _named(out["pruned"])
  expected_prunable = {
      "plain_dict": {"w1", "w2"},
      "flax_nnx": {"hidden/kernel/value", "head/kernel/value"},
      "equinox": {"layers/0/weight", "layers/1/weight"},
  }[fw.name]
  fractions = ex.pruned_fraction_per_layer(out["masks"])
  for name, mask in masks.items():
    members, size = mask.shape[0], mask[0].size
    if name in expected_prunable:
      # 'uniform': every prunable leaf of every member at round(0.75 * size) pruned.
      per_member = 1.0 - mask.reshape(members, -1).mean(-1)
      np.testing.assert_array_equal(per_member, np.round(0.75 * size) / size)
      assert fractions[name] == pytest.approx(np.round(0.75 * size) / size)
      assert np.all(params[name][~mask] == 0.0)  # pruned weights stay exactly zero
      assert np.all(params[name][mask] != 0.0)
    else:  # biases, NNX LayerNorm scale/bias: never pruned
      assert mask.all(), name
  assert {n for n, m in masks.items() if not m.all()} == expected_prunable


def test_quantized_error_bound_per_output_channel(result):
  fw, out = result
  member = jax.tree.map(lambda x: x[0], out["pruned"])
  q = quantization.quantize(member, 8, axis=fw.channel_axis)
  weights, values = _named(member), _named(q.params)
  scales, codes = _named(q.scales), _named(q.codes)
  assert set(scales) == {n for n, w in weights.items() if w.ndim >= 2 and "norm" not in n}
  for name, scale in scales.items():
    w = weights[name]
    out_channels = w.shape[fw.channel_axis]
    assert scale.size == out_channels  # one scale per output channel
    max_abs = np.abs(np.moveaxis(w, fw.channel_axis, 0)).reshape(out_channels, -1).max(-1)
    # An all-zero channel (pruned away entirely) gets scale 1 and codes 0.
    np.testing.assert_allclose(scale.reshape(-1), np.where(max_abs > 0, max_abs / 127, 1.0),
                               rtol=1e-6)
    assert np.all(np.abs(w - values[name]) <= scale / 2 + 1e-7)
    assert np.all(np.abs(codes[name]) <= 127)
    np.testing.assert_array_equal(values[name], codes[name].astype(np.float32) * scale)
    assert np.all(values[name][w == 0] == 0)  # pruned zeros stay zero
  population = _named(out["quantized"])
  for name, v in values.items():  # quantize_population = quantize per member
    np.testing.assert_array_equal(population[name][0], v)


def test_cie_count_of_a_constructed_population(result):
  fw, out = result
  dense = np.asarray(out["logits"]["dense"])
  labels, groups = np.asarray(out["labels"]), np.asarray(out["groups"])
  modal = np.asarray(exemplars.modal_labels(dense))
  flipped = np.array([3, 17, 42, 99, 100, 250, 359])  # these examples' modal label moves
  compressed = dense.copy()
  for i in flipped:
    target = (modal[i] + 1) % 10
    compressed[:, i, :] = 0.0
    compressed[:, i, target] = 1.0
  is_cie = np.asarray(exemplars.cie(dense, compressed))
  assert int(is_cie.sum()) == len(flipped)
  np.testing.assert_array_equal(np.flatnonzero(is_cie), flipped)
  assert int(np.asarray(exemplars.cie(dense, dense)).sum()) == 0
  breakdown = exemplars.group_breakdown(dense, compressed, labels, groups, num_groups=2)
  np.testing.assert_array_equal(np.asarray(breakdown["cie_count"]),
                                [np.sum(~groups[flipped].astype(bool)),
                                 np.sum(groups[flipped])])
  # The example's own count agrees with exemplars.cie on its real pruned population.
  assert out["scores"]["pruned"]["cie_count"] == int(
      np.asarray(exemplars.cie(dense, out["logits"]["pruned"])).sum())


def test_fairness_scores_match_a_numpy_recount(result):
  fw, out = result
  labels, groups = np.asarray(out["labels"]), np.asarray(out["groups"])
  for variant, logits in out["logits"].items():
    preds = np.asarray(logits).argmax(-1)
    correct = preds == labels
    per_group = np.stack([correct[:, groups == g].mean(-1) for g in (0, 1)], -1)
    np.testing.assert_allclose(out["scores"][variant]["per_group"], per_group.mean(0),
                               rtol=1e-6)
    np.testing.assert_allclose(out["scores"][variant]["worst_group"],
                               per_group.min(-1).mean(), rtol=1e-6)
    got = np.asarray(fairness.by_group("accuracy", labels, preds, groups, num_groups=2))
    np.testing.assert_allclose(got, per_group, rtol=1e-6)
  assert out["scores"]["dense"]["top1"] > 0.8  # it learned something


def test_default_filter_reads_any_frameworks_names():
  leaf2, leaf1 = np.zeros((4, 3)), np.zeros(3)
  f = sparsity.default_filter
  assert f("params/dense_0/kernel", leaf2)              # Linen
  assert f("hidden/kernel/value", leaf2)                # NNX
  assert f("layers/0/weight", leaf2)                    # Equinox
  assert f("w1", leaf2)                                 # plain dict
  assert not f("layers/0/bias", leaf1)
  assert not f("norm/scale/value", leaf2)               # NNX norm scale, batched over members
  assert not f("params/BatchNorm_0/scale", leaf2)       # Linen
  assert not f("params/BatchNorm_0/bias", leaf2)        # Linen, batched
  assert not f("norm/weight", leaf2)                    # Equinox LayerNorm, batched
  # Outer scopes do not decide: these kernels used to be skipped silently.
  assert f("upscale/conv/kernel", np.zeros((3, 3, 4, 4)))
  assert f("prenorm_block/dense/kernel/value", leaf2)
  params = {"upscale": {"conv": {"kernel": np.ones((3, 3, 4, 4), np.float32)}}}
  masks = sparsity.magnitude_masks(params, 0.5)
  assert float(np.asarray(masks["upscale"]["conv"]["kernel"]).mean()) == 0.5
