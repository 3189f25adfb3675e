"""Schedules (closed form) and the masked optax wrapper: zeros stay zero, vmap, Orbax."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import orbax.checkpoint as ocp
import pytest

from tradeoffs import sparsity


def test_gradual_schedule_closed_form():
  sched = sparsity.gradual(0.9, begin_step=10, end_step=30, frequency=5, initial_sparsity=0.1)
  np.testing.assert_allclose(sched.sparsity(0), 0.1, atol=1e-7)
  np.testing.assert_allclose(sched.sparsity(10), 0.1, atol=1e-7)
  np.testing.assert_allclose(sched.sparsity(20), 0.9 + (0.1 - 0.9) * 0.5 ** 3, rtol=1e-6)
  np.testing.assert_allclose(sched.sparsity(25), 0.9 + (0.1 - 0.9) * 0.25 ** 3, rtol=1e-6)
  np.testing.assert_allclose(sched.sparsity(30), 0.9, rtol=1e-7)
  np.testing.assert_allclose(sched.sparsity(100), 0.9, rtol=1e-7)
  updates = [int(t) for t in range(40) if sched.is_update_step(t)]
  assert updates == [10, 15, 20, 25, 30]
  odd = sparsity.gradual(0.5, 0, 7, 3)
  assert [t for t in range(10) if odd.is_update_step(t)] == [0, 3, 6, 7]  # end step included


def test_one_shot_and_fixed():
  shot = sparsity.one_shot(0.8, 5)
  assert [t for t in range(10) if shot.is_update_step(t)] == [5]
  np.testing.assert_allclose(shot.sparsity(5), 0.8, rtol=1e-7)
  assert not any(bool(sparsity.fixed(0.5).is_update_step(t)) for t in range(5))


@pytest.mark.parametrize("make, match", [
    (lambda: sparsity.gradual(0.5, 10, 5, 1), "end_step"),
    (lambda: sparsity.gradual(1.0, 0, 5, 1), "target_sparsity"),
    (lambda: sparsity.gradual(0.5, 0, 5, 0), "frequency"),
    (lambda: sparsity.masked(optax.sgd(0.1), distribution="dense"), "distribution"),
    (lambda: sparsity.masked(optax.sgd(0.1), schedule=0.5), "schedule"),
])
def test_bad_schedule_and_wrapper_input(make, match):
  with pytest.raises(ValueError, match=match):
    make()


def _problem(key, members=None):
  shape = (members,) if members else ()
  k1, k2, k3 = jax.random.split(key, 3)
  params = {"l1": {"kernel": jax.random.normal(k1, shape + (6, 8)),
                   "bias": jnp.zeros(shape + (8,))},
            "l2": {"kernel": jax.random.normal(k2, shape + (8, 3))}}
  x = jax.random.normal(k3, (16, 6))
  y = jnp.arange(16) % 3
  return params, x, y


def _loss(params, x, y):
  h = jax.nn.relu(x @ params["l1"]["kernel"] + params["l1"]["bias"])
  logits = h @ params["l2"]["kernel"]
  return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()


def _train(tx, params, x, y, steps, vmapped=False):
  def step(carry, _):
    p, s = carry
    grads = jax.grad(_loss)(p, x, y)
    updates, s = tx.update(grads, s, p)
    return (optax.apply_updates(p, updates), s), None

  init, body = tx.init, step
  if vmapped:
    init = jax.vmap(tx.init)

    def body(carry, _):
      return jax.vmap(lambda c: step(c, None)[0])(carry), None
  state = init(params)
  (params, state), _ = jax.jit(lambda c: jax.lax.scan(body, c, None, length=steps))((params, state))
  return params, state


def _assert_pruned_exactly_zero(params, masks):
  for p, m in zip(jax.tree.leaves(params), jax.tree.leaves(masks)):
    p, m = np.asarray(p), np.asarray(m)
    assert (p[~m] == 0).all()


@pytest.mark.parametrize("inner", [optax.adam(1e-2), optax.sgd(0.1, momentum=0.9)],
                         ids=["adam", "sgd_momentum"])
@pytest.mark.parametrize("vmapped", [False, True], ids=["single", "vmap"])
def test_gradual_pruning_keeps_pruned_weights_zero(inner, vmapped):
  members = 3 if vmapped else None
  params, x, y = _problem(jax.random.key(0), members)
  sched = sparsity.gradual(0.75, begin_step=2, end_step=20, frequency=3)
  tx = sparsity.masked(inner, sched, "global")
  trained, state = _train(tx, params, x, y, 30, vmapped)
  masks = sparsity.get_masks(state)
  _assert_pruned_exactly_zero(trained, masks)
  kernels = [np.asarray(masks[k]["kernel"]) for k in ("l1", "l2")]
  axes = (1, 2) if vmapped else (0, 1)
  kept = sum(k.sum(axis=axes) for k in kernels)
  np.testing.assert_array_equal(np.atleast_1d(kept), [72 - 54] * (members or 1))
  assert np.asarray(masks["l1"]["bias"]).all()
  if vmapped:  # members got their own masks from their own weights
    assert (np.asarray(masks["l1"]["kernel"][0]) != np.asarray(masks["l1"]["kernel"][1])).any()


def test_layerwise_erk_schedule_reaches_layer_targets():
  params, x, y = _problem(jax.random.key(1))
  tx = sparsity.masked(optax.adam(1e-2), sparsity.gradual(0.5, 0, 10, 2), "erk")
  trained, state = _train(tx, params, x, y, 12)
  masks = sparsity.get_masks(state)
  shapes = {"l1/kernel": (6, 8), "l2/kernel": (8, 3)}
  layer = sparsity.erk(shapes, 0.5)
  for name, key in (("l1/kernel", "l1"), ("l2/kernel", "l2")):
    size = int(np.prod(shapes[name]))
    assert np.asarray(masks[key]["kernel"]).sum() == size - round(layer[name] * size)
  _assert_pruned_exactly_zero(trained, masks)


def test_fixed_random_masks_from_init_and_replace():
  params, x, y = _problem(jax.random.key(2))
  init_masks = lambda p: sparsity.random_masks(jax.random.key(7), p, 0.6)  # noqa: E731
  tx = sparsity.masked(optax.adam(1e-2), sparsity.fixed(0.6), init_masks=init_masks)
  trained, state = _train(tx, params, x, y, 5)
  masks = sparsity.get_masks(state)
  np.testing.assert_array_equal(np.asarray(masks["l1"]["kernel"]),
                                np.asarray(init_masks(params)["l1"]["kernel"]))
  _assert_pruned_exactly_zero(trained, masks)
  new_masks = jax.tree.map(jnp.zeros_like, masks)
  replaced = sparsity.get_masks(sparsity.replace_masks(state, new_masks))
  assert not np.asarray(replaced["l2"]["kernel"]).any()
  with pytest.raises(ValueError, match="MaskedState"):
    sparsity.get_masks(optax.adam(1e-2).init(params))


def test_update_without_params_raises():
  params, _, _ = _problem(jax.random.key(3))
  tx = sparsity.masked(optax.sgd(0.1))
  with pytest.raises(ValueError, match="params"):
    tx.update(params, tx.init(params))


def test_orbax_round_trip_then_training_keeps_zeros(tmp_path):
  params, x, y = _problem(jax.random.key(4))
  tx = sparsity.masked(optax.adam(1e-2), sparsity.one_shot(0.7, 3))
  trained, state = _train(tx, params, x, y, 6)
  checkpointer = ocp.StandardCheckpointer()
  path = tmp_path / "ckpt"
  checkpointer.save(path, {"params": trained, "opt_state": state})
  checkpointer.wait_until_finished()
  abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, {"params": trained, "opt_state": state})
  restored = checkpointer.restore(path, abstract)
  assert isinstance(restored["opt_state"], sparsity.MaskedState)
  original = {"params": trained, "opt_state": state}
  for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(original)):
    assert a.dtype == b.dtype
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  # Continue training from the restored state: the one-shot masks stay and zeros stay zero.
  p, s = restored["params"], restored["opt_state"]
  for _ in range(5):
    updates, s = jax.jit(tx.update)(jax.grad(_loss)(p, x, y), s, p)
    p = optax.apply_updates(p, updates)
  _assert_pruned_exactly_zero(p, sparsity.get_masks(s))
  np.testing.assert_array_equal(np.asarray(sparsity.get_masks(s)["l1"]["kernel"]),
                                np.asarray(sparsity.get_masks(state)["l1"]["kernel"]))


def test_cond_any_member_selects_per_member_and_skips_when_none_due():
  from tradeoffs.sparsity.masks import cond_any_member
  calls = []

  def true_fn(x, y):
    jax.debug.callback(lambda: calls.append(1))
    return x + y

  fn = jax.jit(jax.vmap(lambda p, x: cond_any_member(p, true_fn, lambda x, y: x - y, x, 10.0)))
  out = fn(jnp.array([True, False, True]), jnp.array([1.0, 2.0, 3.0]))
  np.testing.assert_array_equal(np.asarray(out), [11.0, -8.0, 13.0])
  assert calls
  calls.clear()
  out = fn(jnp.array([False, False, False]), jnp.array([1.0, 2.0, 3.0]))
  jax.block_until_ready(out)
  np.testing.assert_array_equal(np.asarray(out), [-9.0, -8.0, -7.0])
  assert not calls  # a vmapped lax.cond would have run true_fn as a select
  np.testing.assert_array_equal(cond_any_member(True, true_fn, lambda x, y: x - y, 1.0, 2.0), 3.0)
