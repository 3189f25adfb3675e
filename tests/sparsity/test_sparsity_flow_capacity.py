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
