"""Concurrent (member-sharded) inference equals the sequential loop."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoffs import ensembles, models


def mlp_params(rng, n_in=6, hidden=5, n_out=3):
  return {"dense_0": {"kernel": rng.normal(size=(n_in, hidden)), "bias": rng.normal(size=hidden)},
          "dense_1": {"kernel": rng.normal(size=(hidden, n_out)), "bias": np.ones(n_out)}}


def mlp_apply(params, x):
  h = jnp.tanh(x @ params["dense_0"]["kernel"] + params["dense_0"]["bias"])
  return h @ params["dense_1"]["kernel"] + params["dense_1"]["bias"]


def stacked_mlp(num_members):
  # Numpy-made parameters: nothing to compile before the code under test.
  rng = np.random.default_rng(0)
  members = [mlp_params(rng) for _ in range(num_members)]
  return jax.tree.map(lambda *leaves: jnp.asarray(np.stack(leaves), jnp.float32), *members)


def test_members_mesh_uses_largest_even_split():
  assert ensembles.members_mesh(4).shape == {"members": 4}
  assert ensembles.members_mesh(16).shape == {"members": 8}
  assert ensembles.members_mesh(6).shape == {"members": 6}
  assert ensembles.members_mesh(12).shape == {"members": 6}
  assert ensembles.members_mesh(7).shape == {"members": 7}
  assert ensembles.members_mesh(6, jax.devices()[:4]).shape == {"members": 3}
  with pytest.raises(ValueError, match="num_members must be >= 1"):
    ensembles.members_mesh(0)


@pytest.mark.parametrize("method,member_loop", [("sharded_jit", "vmap"), ("shard_map", "vmap"),
                                                ("shard_map", "map")])
@pytest.mark.parametrize("num_members", [4, 16])
def test_concurrent_equals_sequential(method, member_loop, num_members):
  params = stacked_mlp(num_members)
  x = jnp.asarray(np.random.default_rng(1).normal(size=(7, 6)), jnp.float32)
  mesh = ensembles.members_mesh(num_members)
  concurrent = ensembles.concurrent_apply_fn(mlp_apply, mesh, method=method,
                                             member_loop=member_loop)
  out = concurrent(ensembles.shard_members(params, mesh), x)
  reference = ensembles.sequential_apply_fn(mlp_apply)(ensembles.unstack_members(params), x)
  assert out.shape == (num_members, 7, 3)
  np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-5)
  # Each device holds its own members' logits.
  assert len({s.device for s in out.addressable_shards}) == mesh.size
  assert {s.data.shape[0] for s in out.addressable_shards} == {num_members // mesh.size}
  # And the numpy loop agrees, member by member.
  params_np, x_np = jax.tree.map(np.asarray, params), np.asarray(x)
  for i in range(num_members):
    h = np.tanh(x_np @ params_np["dense_0"]["kernel"][i] + params_np["dense_0"]["bias"][i])
    expected = h @ params_np["dense_1"]["kernel"][i] + params_np["dense_1"]["bias"][i]
    np.testing.assert_allclose(out[i], expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("member_loop", ensembles.MEMBER_LOOPS)
def test_per_member_inputs(member_loop):
  params = stacked_mlp(8)
  views = jnp.asarray(np.random.default_rng(2).normal(size=(8, 3, 6)), jnp.float32)
  out = ensembles.concurrent_apply(mlp_apply, params, views, per_member_inputs=True,
                                   mesh=ensembles.members_mesh(8, jax.devices()[:4]),
                                   method="shard_map", member_loop=member_loop)
  seq = ensembles.sequential_apply_fn(mlp_apply, per_member_inputs=True)
  np.testing.assert_allclose(out, seq(ensembles.unstack_members(params), views),
                             rtol=1e-5, atol=1e-5)
  with pytest.raises(ValueError, match="leading axis of 8 members"):
    ensembles.concurrent_apply(mlp_apply, params, views[:3], per_member_inputs=True)


def test_concurrent_flax_mlp_with_batch_stats():
  net = models.get("mlp", num_classes=4, hidden=(5,), batch_norm=True)
  keys = jax.random.split(jax.random.key(0), 4)
  variables = jax.jit(jax.vmap(lambda k: models.init(net, k, (1, 8, 8, 1))))(keys)
  apply = lambda v, x: net.apply(v, x, train=False)
  x = jnp.asarray(np.random.default_rng(3).uniform(size=(2, 8, 8, 1)), jnp.float32)
  out = ensembles.concurrent_apply(apply, variables, x)
  seq = ensembles.sequential_apply_fn(apply)(ensembles.unstack_members(variables), x)
  assert out.shape == (4, 2, 4)
  np.testing.assert_allclose(out, seq, rtol=1e-5, atol=1e-5)
  # Members are different networks, so their outputs differ.
  assert not np.allclose(out[0], out[1])


def test_bad_arguments():
  mesh = ensembles.members_mesh(4)
  with pytest.raises(ValueError, match="method='pmap'.*'sharded_jit'"):
    ensembles.concurrent_apply_fn(mlp_apply, mesh, method="pmap")
  with pytest.raises(ValueError, match="member_loop='map' needs method='shard_map'"):
    ensembles.concurrent_apply_fn(mlp_apply, mesh, member_loop="map")
  with pytest.raises(ValueError, match="member_loop='scan'.*'vmap'"):
    ensembles.concurrent_apply_fn(mlp_apply, mesh, method="shard_map", member_loop="scan")
  data_mesh = jax.make_mesh((2,), ("data",), axis_types=(jax.sharding.AxisType.Auto,),
                            devices=jax.devices()[:2])
  with pytest.raises(ValueError, match="'members' axis"):
    ensembles.concurrent_apply_fn(mlp_apply, data_mesh)
  with pytest.raises(ValueError, match="leading sizes \\[2, 3\\]"):
    ensembles.concurrent_apply(mlp_apply, {"a": jnp.zeros((2, 1)), "b": jnp.zeros((3, 1))},
                               jnp.zeros((1, 1)))
