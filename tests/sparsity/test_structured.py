"""Unit (channel/neuron) pruning: scores, kept indices, slicing, and equivalence of the
small model with the big model whose removed units are zeroed.

The forward passes here are hand-written numpy (no Flax): an MLP x -> relu(x W0 + b0) ->
relu(. W1 + b1) -> . W2 + b2, and a CNN conv -> relu -> 2x2 max-pool -> conv -> relu ->
pool -> flatten (H, W, C) -> dense -> relu -> head, the layouts of the registry models.
"""

from __future__ import annotations

import numpy as np
import pytest

from tradeoffs import sparsity
from tradeoffs.sparsity import structured

UnitLayer = sparsity.UnitLayer


def mlp_params(rng, sizes=(6, 8, 5, 3)):
  p = {}
  names = [f"dense_{i}" for i in range(len(sizes) - 2)] + ["head"]
  for name, (a, b) in zip(names, zip(sizes[:-1], sizes[1:])):
    p[name] = {"kernel": rng.normal(size=(a, b)), "bias": rng.normal(size=(b,))}
  return {"params": p}


def mlp_layers(hidden_layers=2):
  names = [f"dense_{i}" for i in range(hidden_layers)] + ["head"]
  return [UnitLayer(n, kernel=f"params/{n}/kernel", bias=f"params/{n}/bias",
                    consumer=f"params/{nxt}/kernel") for n, nxt in zip(names, names[1:])]


def mlp_forward(v, x):
  p = v["params"]
  names = sorted(k for k in p if k.startswith("dense_")) + ["head"]
  for name in names[:-1]:
    x = np.maximum(x @ p[name]["kernel"] + p[name]["bias"], 0)
  return x @ p["head"]["kernel"] + p["head"]["bias"]


def test_slice_keeps_exactly_the_kept_units_weights():
  rng = np.random.default_rng(0)
  v = mlp_params(rng)
  kept = {"dense_0": np.array([1, 4, 6]), "dense_1": np.array([0, 3])}
  small = sparsity.slice_units(v, mlp_layers(), kept)
  p, s = v["params"], small["params"]
  np.testing.assert_array_equal(s["dense_0"]["kernel"], p["dense_0"]["kernel"][:, [1, 4, 6]])
  np.testing.assert_array_equal(s["dense_0"]["bias"], p["dense_0"]["bias"][[1, 4, 6]])
  np.testing.assert_array_equal(s["dense_1"]["kernel"],
                                p["dense_1"]["kernel"][[1, 4, 6]][:, [0, 3]])
  np.testing.assert_array_equal(s["dense_1"]["bias"], p["dense_1"]["bias"][[0, 3]])
  np.testing.assert_array_equal(s["head"]["kernel"], p["head"]["kernel"][[0, 3]])
  np.testing.assert_array_equal(s["head"]["bias"], p["head"]["bias"])  # not a unit leaf
  assert s["dense_0"]["kernel"].shape == (6, 3) and s["head"]["kernel"].shape == (2, 3)
  # The input is untouched: slicing copies.
  assert v["params"]["dense_0"]["kernel"].shape == (6, 8)


def test_small_mlp_equals_masked_big_mlp():
  rng = np.random.default_rng(1)
  v = mlp_params(rng, (10, 16, 12, 4))
  layers = mlp_layers()
  for score in structured.SCORES:
    kept = sparsity.kept_units(sparsity.unit_scores(v, layers, score), 0.5)
    assert {k: len(i) for k, i in kept.items()} == {"dense_0": 8, "dense_1": 6}
    small = sparsity.slice_units(v, layers, kept)
    masked = sparsity.apply_unit_masks(v, sparsity.unit_masks(v, layers, kept))
    x = rng.normal(size=(7, 10))
    np.testing.assert_allclose(mlp_forward(small, x), mlp_forward(masked, x), rtol=1e-12,
                               atol=1e-12)
    # Zeroing only the consumer rows already gives the same function.
    assert not np.allclose(mlp_forward(small, x), mlp_forward(v, x))


def test_scores_by_hand():
  v = {"params": {"dense_0": {"kernel": np.array([[3.0, 0.0, 1.0], [4.0, 1.0, 0.0]]),
                              "bias": np.array([0.0, 0.0, 1.0])},
                  "head": {"kernel": np.array([[1.0, 0.0], [0.0, 10.0], [1.0, 1.0]]),
                           "bias": np.zeros(2)}}}
  layers = mlp_layers(1)
  s_in = sparsity.unit_scores(v, layers, "in")["dense_0"]
  s_out = sparsity.unit_scores(v, layers, "out")["dense_0"]
  np.testing.assert_allclose(s_in, [5.0, 1.0, np.sqrt(2)])
  np.testing.assert_allclose(s_out, [1.0, 10.0, np.sqrt(2)])
  np.testing.assert_allclose(sparsity.unit_scores(v, layers)["dense_0"], [5.0, 10.0, 2.0])
  # Top 2 of 3 at sparsity 0.34 (round(1.02) = 1 removed), ascending indices.
  kept = sparsity.kept_units(sparsity.unit_scores(v, layers), 0.34)
  np.testing.assert_array_equal(kept["dense_0"], [0, 1])
  # ReLU rescaling invariance: in x a, out / a leaves in_out unchanged.
  w = {"params": {k: {n: a.copy() for n, a in d.items()} for k, d in v["params"].items()}}
  w["params"]["dense_0"]["kernel"][:, 2] *= 7
  w["params"]["dense_0"]["bias"][2] *= 7
  w["params"]["head"]["kernel"][2] /= 7
  np.testing.assert_allclose(sparsity.unit_scores(w, layers)["dense_0"], [5.0, 10.0, 2.0])


def test_norm_scores_read_gamma_beta_and_statistics_are_sliced():
  rng = np.random.default_rng(2)
  v = {"params": {"dense_0": {"kernel": rng.normal(size=(3, 4))},
                  "bn_0": {"scale": np.array([1.0, -3.0, 0.1, 0.0]),
                           "bias": np.array([0.0, 4.0, 0.0, 0.2])},
                  "head": {"kernel": np.ones((4, 2)), "bias": np.zeros(2)}},
       "batch_stats": {"bn_0": {"mean": np.arange(4.0), "var": np.arange(4.0) + 1}}}
  layer = UnitLayer("dense_0", kernel="params/dense_0/kernel", consumer="params/head/kernel",
                    norm_scale="params/bn_0/scale", norm_bias="params/bn_0/bias",
                    per_unit=("batch_stats/bn_0/mean", "batch_stats/bn_0/var"))
  np.testing.assert_allclose(sparsity.unit_scores(v, [layer], "in")["dense_0"],
                             [1.0, 5.0, 0.1, 0.2])
  kept = sparsity.kept_units(sparsity.unit_scores(v, [layer], "in"), 0.5)
  np.testing.assert_array_equal(kept["dense_0"], [0, 1])
  small = sparsity.slice_units(v, [layer], kept)
  np.testing.assert_array_equal(small["batch_stats"]["bn_0"]["mean"], [0.0, 1.0])
  np.testing.assert_array_equal(small["batch_stats"]["bn_0"]["var"], [1.0, 2.0])
  np.testing.assert_array_equal(small["params"]["bn_0"]["scale"], [1.0, -3.0])
  np.testing.assert_array_equal(small["params"]["dense_0"]["kernel"],
                                v["params"]["dense_0"]["kernel"][:, :2])


# A CNN in numpy: SAME 3x3 conv (NHWC, kernel [3, 3, in, out]), relu, 2x2 max-pool.
def conv_same(x, k, b):
  n, h, w, _ = x.shape
  xp = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)))
  out = np.zeros((n, h, w, k.shape[-1]))
  for i in range(3):
    for j in range(3):
      out += np.einsum("nhwc,cd->nhwd", xp[:, i:i + h, j:j + w], k[i, j])
  return out + b


def pool(x):
  n, h, w, c = x.shape
  return x.reshape(n, h // 2, 2, w // 2, 2, c).max(axis=(2, 4))


def cnn_forward(v, x):
  p = v["params"]
  for name in ("conv_0", "conv_1"):
    x = pool(np.maximum(conv_same(x, p[name]["kernel"], p[name]["bias"]), 0))
  x = x.reshape(x.shape[0], -1)
  x = np.maximum(x @ p["dense"]["kernel"] + p["dense"]["bias"], 0)
  return x @ p["head"]["kernel"] + p["head"]["bias"]


def test_small_cnn_equals_masked_big_cnn():
  rng = np.random.default_rng(3)
  c0, c1, hidden, classes = 6, 8, 10, 3
  v = {"params": {
      "conv_0": {"kernel": rng.normal(size=(3, 3, 2, c0)), "bias": rng.normal(size=(c0,))},
      "conv_1": {"kernel": rng.normal(size=(3, 3, c0, c1)), "bias": rng.normal(size=(c1,))},
      "dense": {"kernel": rng.normal(size=(2 * 2 * c1, hidden)),
                "bias": rng.normal(size=(hidden,))},
      "head": {"kernel": rng.normal(size=(hidden, classes)), "bias": rng.normal(size=(classes,))},
  }}
  layers = [
      UnitLayer("conv_0", "params/conv_0/kernel", "params/conv_1/kernel", -2,
                bias="params/conv_0/bias"),
      UnitLayer("conv_1", "params/conv_1/kernel", "params/dense/kernel", 0,
                bias="params/conv_1/bias"),
      UnitLayer("dense", "params/dense/kernel", "params/head/kernel", 0,
                bias="params/dense/bias"),
  ]
  kept = sparsity.kept_units(sparsity.unit_scores(v, layers), 0.5)
  assert {k: len(i) for k, i in kept.items()} == {"conv_0": 3, "conv_1": 4, "dense": 5}
  small = sparsity.slice_units(v, layers, kept)
  s = small["params"]
  assert s["conv_1"]["kernel"].shape == (3, 3, 3, 4)
  assert s["dense"]["kernel"].shape == (2 * 2 * 4, 5)
  # The flatten reads (h, w, c) with c fastest: the kept channel c at every position.
  positions = (np.arange(4)[:, None] * c1 + kept["conv_1"][None]).reshape(-1)
  np.testing.assert_array_equal(s["dense"]["kernel"],
                                v["params"]["dense"]["kernel"][positions][:, kept["dense"]])
  masked = sparsity.apply_unit_masks(v, sparsity.unit_masks(v, layers, kept))
  x = rng.normal(size=(3, 8, 8, 2))
  np.testing.assert_allclose(cnn_forward(small, x), cnn_forward(masked, x), rtol=1e-10,
                             atol=1e-10)


def test_population_keeps_equal_counts_and_each_members_own_units():
  rng = np.random.default_rng(4)
  members = [mlp_params(rng, (5, 9, 7, 2)) for _ in range(3)]
  pop = structured._stack(members)
  small, kept = sparsity.prune_units_population(pop, mlp_layers(), 0.6)
  assert kept["dense_0"].shape == (3, 4) and kept["dense_1"].shape == (3, 3)
  assert small["params"]["dense_0"]["kernel"].shape == (3, 5, 4)
  assert small["params"]["head"]["kernel"].shape == (3, 3, 2)
  for m, member in enumerate(members):
    own = sparsity.kept_units(sparsity.unit_scores(member, mlp_layers()), 0.6)
    expected = sparsity.slice_units(member, mlp_layers(), own)
    np.testing.assert_array_equal(kept["dense_0"][m], own["dense_0"])
    np.testing.assert_array_equal(small["params"]["dense_1"]["kernel"][m],
                                  expected["params"]["dense_1"]["kernel"])
  assert len({tuple(k) for k in kept["dense_0"]}) > 1  # members rank their own units


def test_kept_count_rounds_and_keeps_one():
  assert sparsity.kept_count(64, 0.5) == 32
  assert sparsity.kept_count(10, 0.25) == 8  # round(2.5) = 2 (half to even)
  assert sparsity.kept_count(1, 0.9) == 1 and sparsity.kept_count(3, 0.0) == 3


@pytest.mark.parametrize("bad", [1.0, -0.1, 1.5, "0.5", True, None])
def test_bad_sparsity_names_the_knob(bad):
  with pytest.raises(ValueError, match=r"sparsity=.*\[0, 1\)"):
    sparsity.kept_count(8, bad)
  v = mlp_params(np.random.default_rng(0))
  with pytest.raises(ValueError, match="sparsity"):
    sparsity.prune_units_population(structured._stack([v]), mlp_layers(), bad)


def test_bad_inputs_are_named():
  v = mlp_params(np.random.default_rng(0))
  with pytest.raises(ValueError, match="score='l1' is unknown"):
    sparsity.unit_scores(v, mlp_layers(), "l1")
  with pytest.raises(ValueError, match="'params/nope/kernel' is not in the variables"):
    sparsity.unit_scores(v, [UnitLayer("x", "params/nope/kernel", "params/head/kernel")])
  with pytest.raises(ValueError, match="kept indices of layer 'dense_0'"):
    sparsity.slice_units(v, mlp_layers(), {"dense_0": [0, 0], "dense_1": [1]})
  with pytest.raises(ValueError, match="no kept indices for layer 'dense_1'"):
    sparsity.slice_units(v, mlp_layers(), {"dense_0": [0]})
  bad = [UnitLayer("dense_0", "params/dense_0/kernel", "params/head/kernel")]
  with pytest.raises(ValueError, match="not a multiple"):
    sparsity.unit_scores(v, bad)
