"""EGF on hand-computed pytrees; same-capacity pairs have equal active weights per layer."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoffs import sparsity


def _grads():
  return {"a": {"kernel": jnp.array([[3.0, -4.0], [1.0, 0.0]]), "bias": jnp.array([100.0, 100.0])},
          "b": {"kernel": jnp.array([[-2.0, 2.0, 1.0]]).reshape(3, 1)}}


def _masks():
  return {"a": {"kernel": jnp.array([[True, True], [False, True]]), "bias": jnp.ones(2, bool)},
          "b": {"kernel": jnp.array([True, False, True]).reshape(3, 1)}}


def test_egf_hand_computed():
  g, m = _grads(), _masks()
  # Layer a masked: [3, -4, 0, 0]; layer b masked: [-2, 0, 1]; biases are not layers.
  np.testing.assert_allclose(sparsity.effective_gradient_flow(g, m, p=2), (5.0 + np.sqrt(5)) / 2,
                             rtol=1e-6)
  np.testing.assert_allclose(sparsity.effective_gradient_flow(g, m, p=1), (7.0 + 3.0) / 2,
                             rtol=1e-6)
  np.testing.assert_allclose(sparsity.effective_gradient_flow(g, m, p=1, normalize=True),
                             (7.0 / 3 + 3.0 / 2) / 2, rtol=1e-6)
  dense = sparsity.effective_gradient_flow(g, None, p=1)
  np.testing.assert_allclose(dense, (8.0 + 5.0) / 2, rtol=1e-6)
  np.testing.assert_allclose(sparsity.gradient_norm(g, p=2),
                             np.sqrt(9 + 16 + 1 + 2 * 100 ** 2 + 4 + 4 + 1), rtol=1e-6)
  jitted = jax.jit(lambda g, m: sparsity.effective_gradient_flow(g, m, p=2))(g, m)
  np.testing.assert_allclose(jitted, (5.0 + np.sqrt(5)) / 2, rtol=1e-6)


@pytest.mark.parametrize("p", [0, 0.5, "2", True])
def test_egf_bad_p(p):
  with pytest.raises(ValueError, match="p must be"):
    sparsity.effective_gradient_flow(_grads(), _masks(), p=p)


@pytest.mark.parametrize("hidden, target", [(31, 0.9), ([17, 23, 11], 0.8)])
def test_same_capacity_pair_equal_active_weights(hidden, target):
  pair = sparsity.same_capacity_pair(hidden, target, input_dim=12, num_classes=10)
  assert pair["sparse_active"] == pair["dense_active"]
  widths = [hidden] if isinstance(hidden, int) else hidden
  for d, s in zip(widths, pair["sparse_hidden"]):
    assert s == round(d / np.sqrt(1 - target))
  # Random masks built from the mapping on the wide network keep exactly those counts.
  dims = [12, *pair["sparse_hidden"], 10]
  params = {name.split("/")[0]: {"kernel": jnp.zeros((dims[i], dims[i + 1]))}
            for i, name in enumerate(pair["layer_names"])}
  masks = sparsity.random_masks(jax.random.key(0), params, 0.0, pair["layer_sparsity"])
  for name in pair["layer_names"]:
    layer = name.split("/")[0]
    assert int(masks[layer]["kernel"].sum()) == pair["dense_active"][name]


def test_same_capacity_paper_widths_are_exact():
  for hidden in (308, 923, 1538, 2153, 2768):  # the paper's dense widths, CIFAR-sized input
    pair = sparsity.same_capacity_pair([hidden, hidden], 0.9, input_dim=3072, num_classes=100)
    assert pair["sparse_active"] == pair["dense_active"]


def test_same_capacity_inner_density_is_nominal():
  pair = sparsity.same_capacity_pair([100, 100], 0.75, input_dim=64, num_classes=10)
  assert pair["sparse_hidden"] == [200, 200]
  np.testing.assert_allclose(pair["layer_sparsity"]["dense_1/kernel"], 0.75, rtol=1e-6)
  np.testing.assert_allclose(pair["layer_sparsity"]["dense_0/kernel"], 0.5, rtol=1e-6)


def test_same_capacity_bad_input():
  with pytest.raises(ValueError, match="sparsity"):
    sparsity.same_capacity_pair(100, 1.0, 64, 10)
  with pytest.raises(ValueError, match="dense_hidden"):
    sparsity.same_capacity_pair([0], 0.5, 64, 10)


# --- flow metrics during training, init scalings, per-member masks ----------------------------

import flax  # noqa: E402
import optax  # noqa: E402

from tradeoffs.sparsity import capacity  # noqa: E402
from tradeoffs.sparsity import gradient_flow  # noqa: E402
from tradeoffs.sparsity import members  # noqa: E402


def test_flow_metrics_match_hand_computed_values():
  grads = {"dense_0": {"kernel": jnp.array([[3.0, -4.0], [1.0, 2.0]]),
                       "bias": jnp.array([5.0, 5.0])},
           "head": {"kernel": jnp.array([[-6.0], [8.0]]), "bias": jnp.array([7.0])}}
  masks = {"dense_0": {"kernel": jnp.array([[True, True], [False, False]]),
                       "bias": jnp.array([True, True])},
           "head": {"kernel": jnp.array([[True], [False]]), "bias": jnp.array([True])}}
  state = sparsity.masked(optax.sgd(0.1)).init(grads)
  state = sparsity.replace_masks(state, masks)
  out = gradient_flow.flow_metrics_fn(masked=True)(grads, grads, state)
  # Kernels only: layer norms (|3|+|4|, |-6|) and (5, 6); averaged over the 2 layers.
  assert float(out["egf_1"]) == pytest.approx((7.0 + 6.0) / 2)
  assert float(out["egf_2"]) == pytest.approx((5.0 + 6.0) / 2)
  # Masked gradient of all parameters, biases included: sqrt(9+16+25+25+36+49).
  assert float(out["grad_norm_masked"]) == pytest.approx(np.sqrt(160.0))
  dense = gradient_flow.flow_metrics_fn(masked=False, normalize=True)(grads, grads, None)
  assert float(dense["egf_1"]) == pytest.approx((10.0 / 4 + 14.0 / 2) / 2)
  assert float(dense["grad_norm_masked"]) == pytest.approx(
      np.sqrt(9 + 16 + 1 + 4 + 25 + 25 + 36 + 64 + 49))


def test_flow_summary_means_traces_and_resumed_rows():
  rows = [{"step": 2, "v/egf_1": 4.0, "v/egf_2": 2.0, "v/grad_norm": 3.0,
           "v/grad_norm_masked": 1.0},
          {"step": 4, "v/egf_1": 9.0, "v/egf_2": 5.0, "v/grad_norm": 6.0,
           "v/grad_norm_masked": 2.0},
          {"step": 4, "v/egf_1": 8.0, "v/egf_2": 4.0, "v/grad_norm": 5.0,
           "v/grad_norm_masked": 3.0},   # The same step again after a resume: last wins.
          {"step": 4, "w/egf_2": 100.0},   # Another population.
          {"step": 6, "v/loss": 1.0}]      # Not an evaluation row.
  out = gradient_flow.flow_summary(rows, "v")
  assert out["evaluations"] == 2 and out["trace"]["steps"] == [2, 4]
  assert out["trace"]["egf_2"] == [2.0, 4.0]
  assert out["means"] == {"egf_1": 6.0, "egf_2": 3.0, "grad_norm": 4.0,
                          "grad_norm_masked": 2.0}
  empty = gradient_flow.flow_summary(rows, "missing")
  assert empty["evaluations"] == 0 and empty["means"]["egf_2"] is None


def test_active_per_layer_counts_nonzeros_per_member():
  params = {"dense_0": {"kernel": jnp.array([[[1.0, 0.0], [0.0, 2.0]],
                                             [[1.0, 1.0], [0.0, 3.0]]]),
                        "bias": jnp.zeros((2, 2))}}
  assert gradient_flow.active_per_layer(params, ["dense_0/kernel"]) == {
      "dense_0/kernel": [2, 3]}


def test_init_scaling_gives_active_weights_the_dense_distribution():
  pair = sparsity.same_capacity_pair((8,), 0.75, 4, 3)
  assert pair["sparse_hidden"] == [16]
  factors = capacity.init_factors(pair, 4, "dense")
  # LeCun std 1/sqrt(fan_in): the wide head (fan-in 16) is scaled to the narrow one's (8).
  assert factors == {"dense_0/kernel": 1.0, "head/kernel": pytest.approx(np.sqrt(2.0))}
  assert capacity.init_factors(pair, 4, "none") == {"dense_0/kernel": 1.0, "head/kernel": 1.0}
  # 'effective': 1/sqrt(density); the first layer keeps 4*8 of 4*16 weights (density 1/2),
  # the head 8*3 of 16*3 (density 1/2).
  effective = capacity.init_factors(pair, 4, "effective")
  assert effective == {"dense_0/kernel": pytest.approx(np.sqrt(2.0)),
                       "head/kernel": pytest.approx(np.sqrt(2.0))}
  params = {"dense_0": {"kernel": jnp.ones((4, 16)), "bias": jnp.ones(16)},
            "head": {"kernel": jnp.ones((16, 3)), "bias": jnp.ones(3)}}
  scaled = capacity.scaled_init_fn(factors)(params, jax.random.key(0))
  assert float(scaled["head"]["kernel"][0, 0]) == pytest.approx(np.sqrt(2.0))
  assert float(scaled["dense_0"]["kernel"][0, 0]) == 1.0
  assert float(scaled["head"]["bias"][0]) == 1.0
  with pytest.raises(ValueError, match="init scaling 'fan_out' is unknown; choose from"):
    capacity.init_factors(pair, 4, "fan_out")


def _population_params(pair, inputs, classes, m=2):
  dims = [inputs, *pair["sparse_hidden"], classes]
  names = [n.split("/")[0] for n in pair["layer_names"]]
  return {name: {"kernel": jnp.ones((m, dims[i], dims[i + 1])),
                 "bias": jnp.ones((m, dims[i + 1]))} for i, name in enumerate(names)}


def _keys(*seeds):
  return jnp.stack([jax.random.key_data(jax.random.key(s)) for s in seeds])


def test_member_masks_keep_exact_counts_per_member_and_differ():
  pair = sparsity.same_capacity_pair((6, 5), 0.8, 7, 3)
  params = _population_params(pair, 7, 3)
  masks = members.member_masks(_keys(0, 1), params, pair["layer_sparsity"], 0.8)
  for name in pair["layer_names"]:
    layer, leaf = name.split("/")
    counts = np.asarray(masks[layer][leaf]).reshape(2, -1).sum(-1)
    assert counts.tolist() == [pair["dense_active"][name]] * 2
  assert bool(np.all(masks["head"]["bias"]))
  kernel = np.asarray(masks["dense_1"]["kernel"])
  assert not np.array_equal(kernel[0], kernel[1])  # Each member its own draw ...
  again = members.member_masks(_keys(0, 5), params, pair["layer_sparsity"], 0.8)
  # ... a function of its own init key only.
  np.testing.assert_array_equal(np.asarray(again["dense_1"]["kernel"])[0], kernel[0])


@flax.struct.dataclass
class _State:  # A population state's shape: a pytree with params, opt_state and replace.
  params: object
  opt_state: object


def test_mask_state_fn_zeroes_pruned_weights_and_fixes_masks_in_opt_state():
  pair = sparsity.same_capacity_pair((4,), 0.75, 3, 2)
  params = _population_params(pair, 3, 2)
  tx = sparsity.masked(optax.sgd(0.1))
  opt_state = jax.vmap(tx.init)(params)
  state = members.mask_state_fn(_keys(3, 4), pair["layer_sparsity"], 0.75)(
      _State(params, opt_state))
  masks = sparsity.get_masks(state.opt_state)
  for name in pair["layer_names"]:
    layer = name.split("/")[0]
    kernel = np.asarray(state.params[layer]["kernel"])
    np.testing.assert_array_equal(kernel != 0, np.asarray(masks[layer]["kernel"]))
    assert [int(np.count_nonzero(k)) for k in kernel] == [pair["dense_active"][name]] * 2
  # An update through the wrapper keeps pruned weights at exactly zero.
  grads = jax.tree.map(jnp.ones_like, state.params)
  updates, _ = jax.vmap(tx.update)(grads, state.opt_state, state.params)
  new = optax.apply_updates(state.params, updates)
  np.testing.assert_array_equal(np.asarray(new["head"]["kernel"]) == 0,
                                ~np.asarray(masks["head"]["kernel"]))


def test_member_masks_compiled_for_speed_equal_an_optimised_build():
  pair = sparsity.same_capacity_pair((64, 48), 0.9, 64, 10)
  params = _population_params(pair, 64, 10, m=3)
  args = (_keys(0, 1, 2), params, tuple(sorted(pair["layer_sparsity"].items())), 0.9)
  fast = members.member_masks(*args[:2], pair["layer_sparsity"], 0.9)
  optimised = jax.jit(members._member_masks, static_argnums=(2, 3))(*args)
  for a, b in zip(jax.tree.leaves(fast), jax.tree.leaves(optimised)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
