"""Masks: exact counts, global vs layer-wise, ties, filters, ERK, N:M, channels, summaries."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tradeoffs import sparsity
from tradeoffs.sparsity import distributions, masks as masks_lib


def _tree():
  return {
      "dense_0": {"kernel": jnp.array([[1.0, -2.0], [3.0, -4.0]]), "bias": jnp.array([0.0, 9.0])},
      "bn_0": {"scale": jnp.ones((2, 2))},  # 2-D norm scale: still not prunable by name.
      "head": {"kernel": jnp.array([[0.5, -0.6, 7.0], [0.1, 0.2, 0.3]])},
  }


def _np(tree):
  return jax.tree.map(np.asarray, tree)


def test_global_ranks_all_prunable_weights_together():
  masks = _np(sparsity.magnitude_masks(_tree(), 0.5))
  # 10 prunable weights, keep 5 largest |w|: 1,2,3,4 (dense_0) and 7 (head).
  np.testing.assert_array_equal(masks["dense_0"]["kernel"], np.ones((2, 2), bool))
  np.testing.assert_array_equal(masks["head"]["kernel"], [[False, False, True]] + [[False] * 3])
  assert masks["dense_0"]["bias"].all() and masks["bn_0"]["scale"].all()


def test_uniform_prunes_each_layer_to_its_share():
  masks = _np(sparsity.magnitude_masks(_tree(), 0.5, "uniform"))
  np.testing.assert_array_equal(masks["dense_0"]["kernel"], [[False, False], [True, True]])
  np.testing.assert_array_equal(masks["head"]["kernel"], [[True, True, True], [False] * 3])


def test_keep_dense_and_custom_filter():
  masks = _np(sparsity.magnitude_masks(_tree(), 0.5, keep_dense=["dense_0"]))
  assert masks["dense_0"]["kernel"].all()
  assert masks["head"]["kernel"].sum() == 3  # 6 - round(3.0)
  only_head = lambda name, leaf: name.startswith("head")  # noqa: E731
  masks = _np(sparsity.magnitude_masks(_tree(), 0.5, "uniform", filter_fn=only_head))
  assert masks["dense_0"]["kernel"].all() and masks["head"]["kernel"].sum() == 3
  assert sparsity.prunable_names(_tree()) == ["dense_0/kernel", "head/kernel"]


def test_ties_keep_exact_count_without_low_index_bias():
  params = {"w": jnp.ones((64, 64))}
  first_half = []
  for seed in range(8):
    mask = np.asarray(sparsity.magnitude_masks(params, 0.5, tie_break_seed=seed)["w"])
    assert mask.sum() == 2048
    first_half.append(mask.ravel()[:2048].mean())
  # Keeping by index would keep the whole first half; the hash spreads the kept ones.
  assert all(0.4 < f < 0.6 for f in first_half)
  a = np.asarray(sparsity.magnitude_masks(params, 0.5, tie_break_seed=0)["w"])
  b = np.asarray(sparsity.magnitude_masks(params, 0.5, tie_break_seed=1)["w"])
  assert (a != b).any()


def _tie_tree():
  # Global ranking over 10 prunable weights; |w| = 1 four times, across both layers, two of
  # them at the same flat index (1) of their layer, so per-layer tie hashes would collide.
  return {"a": {"kernel": jnp.array([[3.0, -1.0], [0.0, 2.0]]), "bias": jnp.array([0.0, 100.0])},
          "b": {"kernel": jnp.array([[-4.0, 1.0, 1.0], [0.5, -1.0, 5.0]])}}


_TIES = {("a", (0, 1)), ("b", (0, 1)), ("b", (0, 2)), ("b", (1, 1))}


def test_global_threshold_tie_and_zero_hand_computed():
  winners = set()
  for seed in range(16):
    masks = _np(sparsity.magnitude_masks(_tie_tree(), 0.5, tie_break_seed=seed))
    assert masks["a"]["bias"].all()  # 1-D: not prunable, not counted.
    kept = {(layer, tuple(int(i) for i in idx))
            for layer in ("a", "b") for idx in np.argwhere(masks[layer]["kernel"])}
    # keep 10 - round(5) = 5: |w| = 5, 4, 3, 2 and exactly one of the four tied 1s.
    assert len(kept) == 5, kept
    assert {("b", (1, 2)), ("b", (0, 0)), ("a", (0, 0)), ("a", (1, 1))} <= kept
    (winner,) = kept & _TIES
    assert ("a", (1, 0)) not in kept and ("b", (1, 0)) not in kept  # The zero and 0.5.
    winners.add(winner)
    again = _np(sparsity.magnitude_masks(_tie_tree(), 0.5, tie_break_seed=seed))
    np.testing.assert_array_equal(again["b"]["kernel"], masks["b"]["kernel"])
  # The tie-break is a keyed hash, not position: the seed moves the winner, across layers.
  assert len(winners) >= 2 and {layer for layer, _ in winners} == {"a", "b"}, winners


def test_global_threshold_rounds_half_to_even_and_prunes_the_zero_first():
  # 0.25 * 10 = 2.5 -> 2 pruned (half to even): the zero and 0.5; all tied 1s survive.
  masks = _np(sparsity.magnitude_masks(_tie_tree(), 0.25))
  np.testing.assert_array_equal(masks["a"]["kernel"], [[True, True], [False, True]])
  np.testing.assert_array_equal(masks["b"]["kernel"], [[True, True, True], [False, True, True]])
  # 0.1 * 10 = 1 pruned: only the exact zero.
  masks = _np(sparsity.magnitude_masks(_tie_tree(), 0.1))
  assert (~masks["a"]["kernel"]).sum() == 1 and not masks["a"]["kernel"][1, 0]
  assert masks["b"]["kernel"].all()


def test_global_threshold_at_zero_keeps_exact_count_of_zeros():
  # Keep 3 of 6 with only two non-zeros: exactly one of the four zeros is kept.
  params = {"a": jnp.array([[0.0, 0.0], [0.0, 2.0]]), "b": jnp.array([[0.0, -3.0]])}
  masks = _np(sparsity.magnitude_masks(params, 0.5))
  assert masks["a"][1, 1] and masks["b"][0, 1]
  assert masks["a"].sum() + masks["b"].sum() == 3


@settings(max_examples=6, deadline=None)
@given(st.integers(1, 60), st.integers(1, 7), st.floats(0.0, 0.99),
       st.sampled_from(["global", "uniform", "erk"]), st.integers(0, 3))
def test_counts_match_numpy_reference(rows, cols, target, distribution, seed):
  rng = np.random.default_rng(seed)
  # Few distinct values so ties are common.
  params = {"a": jnp.asarray(rng.integers(-3, 4, (rows, cols)).astype(np.float32)),
            "b": jnp.asarray(rng.normal(size=(cols, 5)).astype(np.float32))}
  masks = _np(sparsity.magnitude_masks(params, target, distribution))
  if distribution == "global":
    scores = np.concatenate([np.abs(np.asarray(v)).ravel() for v in params.values()])
    keep = int(masks_lib.num_keep(target, scores.size))
    kept = np.concatenate([masks[k].ravel() for k in ("a", "b")])
    assert kept.sum() == keep
    if keep:  # every kept score >= every dropped score
      assert scores[kept].min() >= (scores[~kept].max() if (~kept).any() else -1)
  else:
    shapes = {k: v.shape for k, v in params.items()}
    layer = distributions.layer_sparsities(shapes, target, distribution)
    for k in ("a", "b"):
      assert masks[k].sum() == int(masks_lib.num_keep(layer[k], params[k].size))
      s = np.abs(np.asarray(params[k]))
      if masks[k].any() and (~masks[k]).any():
        assert s[masks[k]].min() >= s[~masks[k]].max()


def test_prior_masks_never_regrow():
  params = {"w": jnp.arange(1.0, 11.0).reshape(2, 5)}
  prior = {"w": jnp.array([[True] * 5, [False] * 5])}  # the large half is already pruned
  mask = np.asarray(sparsity.magnitude_masks(params, 0.7, masks=prior)["w"])
  np.testing.assert_array_equal(mask, [[False, False, True, True, True], [False] * 5])


def test_under_jit_and_vmap_with_traced_sparsity():
  params = {"w": jax.random.normal(jax.random.key(0), (3, 8, 8))}
  fn = jax.jit(jax.vmap(lambda p, s: sparsity.magnitude_masks(p, s), in_axes=(0, None)))
  masks = fn(params, jnp.float32(0.75))
  np.testing.assert_array_equal(np.asarray(masks["w"]).sum(axis=(1, 2)), [16, 16, 16])


def test_erk_matches_formula_and_total():
  shapes = {"a": (64, 256), "b": (256, 256), "c": (256, 10)}
  target = 0.9
  dens = {k: 1 - v for k, v in distributions.erk(shapes, target).items()}
  sizes = {k: np.prod(s) for k, s in shapes.items()}
  total = sum(dens[k] * sizes[k] for k in shapes)
  np.testing.assert_allclose(total, (1 - target) * sum(sizes.values()), rtol=1e-9)
  # Non-dense layers: density / ((sum dims)/(prod dims)) is one common eps.
  eps = [dens[k] / (sum(shapes[k]) / sizes[k]) for k in shapes if dens[k] < 1]
  np.testing.assert_allclose(eps, eps[0], rtol=1e-9)


def test_erk_makes_small_layers_dense_and_resolves():
  shapes = {"tiny": (2, 3), "big": (300, 400)}
  result = distributions.erk(shapes, 0.5)
  assert result["tiny"] == 0.0
  total_keep = 0.5 * (6 + 120000)
  np.testing.assert_allclose((1 - result["big"]) * 120000 + 6, total_keep)


def test_random_masks_exact_and_key_dependent():
  params = {"w": jnp.zeros((10, 10)), "b": jnp.zeros(10)}
  m0 = _np(sparsity.random_masks(jax.random.key(0), params, 0.37))
  m1 = _np(sparsity.random_masks(jax.random.key(1), params, 0.37))
  assert m0["w"].sum() == m1["w"].sum() == 63 and m0["b"].all()
  assert (m0["w"] != m1["w"]).any()


def test_nm_masks_exactly_n_per_group():
  w = jax.random.normal(jax.random.key(0), (8, 12))
  params = {"w": w, "t": jnp.ones((4, 8))}
  masks = _np(sparsity.nm_masks(params, 2, 4, axis=-1))
  assert (masks["w"].reshape(8, 3, 4).sum(-1) == 2).all()
  assert (masks["t"].reshape(4, 2, 4).sum(-1) == 2).all()  # all tied, still exact
  w_np = np.abs(np.asarray(w)).reshape(8, 3, 4)
  kept = masks["w"].reshape(8, 3, 4)
  assert (np.where(kept, w_np, np.inf).min(-1) >= np.where(kept, -np.inf, w_np).max(-1)).all()
  masks0 = _np(sparsity.nm_masks(params, 1, 2, axis=0))
  assert (masks0["w"].reshape(4, 2, 12).sum(1) == 1).all()


def test_channel_masks_drop_lowest_norm_channels():
  w = jnp.array([[1.0, 0.1, 3.0, 0.0], [1.0, 0.1, -3.0, 0.2]])
  mask = np.asarray(sparsity.channel_masks({"w": w}, 0.5, axis=-1)["w"])
  np.testing.assert_array_equal(mask, [[True, False, True, False]] * 2)
  mask_rows = np.asarray(sparsity.channel_masks({"w": w}, 0.5, axis=0)["w"])
  np.testing.assert_array_equal(mask_rows, [[False] * 4, [True] * 4])


def test_apply_and_summarize():
  params = _tree()
  masks = sparsity.magnitude_masks(params, 0.5)
  pruned = sparsity.apply_masks(params, masks)
  summary = sparsity.summarize_sparsity(pruned, filter_fn=sparsity.default_filter)
  assert summary["layers"]["head/kernel"]["nonzero"] == 1
  assert summary["total"]["size"] == 10 and int(summary["total"]["nonzero"]) == 5
  np.testing.assert_allclose(summary["total"]["sparsity"], 0.5)
  from_masks = sparsity.summarize_sparsity(masks)
  assert int(from_masks["total"]["nonzero"]) == 5 + 2 + 4  # + bias and bn scale


@pytest.mark.parametrize("call, match", [
    (lambda p: sparsity.magnitude_masks(p, 1.0), "sparsity"),
    (lambda p: sparsity.magnitude_masks(p, -0.1), "sparsity"),
    (lambda p: sparsity.magnitude_masks(p, 0.5, "nope"), "distribution"),
    (lambda p: sparsity.random_masks(jax.random.key(0), p, 0.5, "nope"), "distribution"),
    (lambda p: sparsity.nm_masks(p, 3, 2), "n=3"),
    (lambda p: sparsity.nm_masks(p, 1, 3), "multiple of m"),
    (lambda p: sparsity.channel_masks(p, 1.5), "sparsity"),
    (lambda p: sparsity.magnitude_masks(p, 0.5, {"zzz": 0.5}), "exactly once"),
])
def test_bad_input_raises_value_error(call, match):
  with pytest.raises(ValueError, match=match):
    call({"w": jnp.ones((4, 4))})
