"""The SupCon loss against a numpy transcription of Khosla et al.'s eq. 2, the trainer's
multi-view batches, and per-leaf learning rates (linear evaluation's frozen encoder)
against optax's Adam."""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tradeoffs import contrastive
from tradeoffs.data import augment as augment_lib
from tradeoffs.train import population as pop_lib


def supcon_numpy(z, labels, temperature, base_temperature):
  """L^sup_out per anchor, written as the paper's sums (loops, float64)."""
  z = z / np.linalg.norm(z, axis=1, keepdims=True)
  n = len(labels)
  out = np.zeros(n)
  for i in range(n):
    denominator = sum(np.exp(z[i] @ z[a] / temperature) for a in range(n) if a != i)
    positives = [p for p in range(n) if p != i and labels[p] == labels[i]]
    total = sum(np.log(np.exp(z[i] @ z[p] / temperature) / denominator) for p in positives)
    out[i] = -(temperature / base_temperature) * total / max(len(positives), 1)
  return out


@pytest.mark.parametrize("temperature,base", [(0.5, 0.07), (0.1, 0.1), (1.0, 1.0)])
def test_supcon_matches_the_formula(temperature, base):
  rng = np.random.default_rng(0)
  labels = np.array([0, 1, 2, 1, 0, 1, 2, 1])  # two views of 4 images, view-major
  z = rng.normal(size=(8, 5))
  ours = contrastive.supcon_loss(z, labels, temperature=temperature, base_temperature=base)
  np.testing.assert_allclose(ours, supcon_numpy(z, labels, temperature, base), rtol=2e-5)
  loss = contrastive.SupConLoss(temperature, base)
  np.testing.assert_allclose(loss(z, labels), ours, rtol=1e-6)


def test_supcon_rewards_aligned_positives_and_scale_invariance():
  labels = np.array([0, 1, 0, 1])
  aligned = np.array([[1.0, 0], [0, 1], [1, 0], [0, 1]])
  crossed = np.array([[1.0, 0], [0, 1], [0, 1], [1, 0]])
  lo = contrastive.supcon_loss(aligned, labels, temperature=0.5).mean()
  hi = contrastive.supcon_loss(crossed, labels, temperature=0.5).mean()
  assert lo < hi
  # The rows are L2-normalised: scaling an embedding changes nothing.
  np.testing.assert_allclose(contrastive.supcon_loss(3.0 * aligned, labels, temperature=0.5),
                             contrastive.supcon_loss(aligned, labels, temperature=0.5),
                             rtol=1e-6)
  # An anchor without positives (one view, unique label) contributes 0.
  single = contrastive.supcon_loss(aligned[:3], np.array([0, 1, 0]), temperature=0.5)
  assert single[1] == 0.0 and single[0] > 0


def test_supcon_rejects_bad_temperatures_and_shapes():
  with pytest.raises(ValueError, match="temperature=0"):
    contrastive.SupConLoss(temperature=0)
  with pytest.raises(ValueError, match="base_temperature=-1"):
    contrastive.SupConLoss(base_temperature=-1)
  with pytest.raises(ValueError, match=r"expected \[N, D\]"):
    contrastive.supcon_loss(np.zeros((4, 2)), np.zeros(3, int))


def test_step_views_tile_the_batch_view_major():
  members, batch = 2, 3
  state = types.SimpleNamespace(
      rngs={"augment": jax.random.key_data(jax.random.split(jax.random.key(0), members))},
      step=jnp.zeros((members,), jnp.int32))
  images = jnp.arange(members * batch * 16, dtype=jnp.float32).reshape(members, batch, 4, 4, 1)
  labels = jnp.array([[0, 1, 2], [3, 4, 5]])
  extras = {"w": jnp.ones((members, batch))}
  augment = augment_lib.make_augment(("pad_crop",), pad=1)
  one = pop_lib.StepConfig(batch_size=batch, augment_fn=augment)
  two = pop_lib.StepConfig(batch_size=batch, augment_fn=augment, views=2)
  x1, y1, _, _ = pop_lib.multi_view(state, images, labels, None, extras, one)
  x2, y2, g2, e2 = pop_lib.multi_view(state, images, labels, labels[..., None], extras, two)
  assert x2.shape == (members, 2 * batch, 4, 4, 1)
  np.testing.assert_array_equal(x2[:, :batch], x1)  # View 0 is the single-view batch.
  assert not np.array_equal(x2[:, batch:], x2[:, :batch])  # View 1 draws its own crops.
  np.testing.assert_array_equal(y2, jnp.concatenate([labels, labels], 1))
  assert g2.shape == (members, 2 * batch, 1) and e2["w"].shape == (members, 2 * batch)
  np.testing.assert_array_equal(y1, labels)
  with pytest.raises(ValueError, match="views=0"):
    pop_lib.StepConfig(batch_size=2, views=0)


def test_leaf_rates_match_adam_at_each_rate_and_freeze_at_zero():
  """Adam built at rate 1 and scaled per leaf is optax's Adam at that leaf's rate
  (bitwise, over several steps); rate 0 leaves a leaf (and its exact zeros) untouched."""
  rng = np.random.default_rng(0)
  params = {"dense_0": {"kernel": jnp.asarray(rng.normal(size=(3, 2)), jnp.float32)},
            "head": {"kernel": jnp.asarray(rng.normal(size=(2, 2)), jnp.float32),
                     "bias": jnp.zeros(2)}}
  params["dense_0"]["kernel"] = params["dense_0"]["kernel"].at[0].set(0.0)  # "pruned"
  tx = contrastive.leaf_rates(optax.adam(1.0), learning_rate=1e-3)
  probe = contrastive.with_rates(tx.init(params), lambda n: 1e-2 if "head" in n else 0.0)
  reference = optax.adam(1e-2)
  head = params["head"]
  ref_state = reference.init(head)
  ours = params
  for step in range(3):
    grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), jnp.float32), ours)
    updates, probe = tx.update(grads, probe, ours)
    ours = optax.apply_updates(ours, updates)
    ref_updates, ref_state = reference.update(grads["head"], ref_state, head)
    head = optax.apply_updates(head, ref_updates)
  np.testing.assert_array_equal(ours["dense_0"]["kernel"], params["dense_0"]["kernel"])
  assert np.all(np.asarray(ours["dense_0"]["kernel"])[0] == 0.0)
  for name in ("kernel", "bias"):
    np.testing.assert_array_equal(ours["head"][name], head[name])
  # The default rate is the learning rate everywhere: plain Adam at 1e-3.
  state = tx.init(params)
  grads = jax.tree.map(jnp.ones_like, params)
  updates, _ = tx.update(grads, state, params)
  expected, _ = optax.adam(1e-3).update(grads, optax.adam(1e-3).init(params), params)
  for got, want in zip(jax.tree.leaves(updates), jax.tree.leaves(expected)):
    np.testing.assert_array_equal(got, want)


def test_with_rates_keeps_a_populations_member_axis_and_checks_rates():
  tx = contrastive.leaf_rates(optax.sgd(1.0), learning_rate=0.1)
  population = jax.vmap(tx.init)({"w": jnp.ones((4, 3))})  # 4 members
  state = contrastive.with_rates(population, lambda name: 0.25)
  assert state.rates["w"].shape == (4,)
  np.testing.assert_array_equal(state.rates["w"], 0.25)
  with pytest.raises(ValueError, match="rate of w=-1"):
    contrastive.with_rates(population, lambda name: -1)
  with pytest.raises(ValueError, match="no LeafRatesState"):
    contrastive.with_rates(optax.sgd(0.1).init({"w": jnp.ones(2)}), lambda name: 0.1)
  with pytest.raises(ValueError, match="learning_rate=nan"):
    contrastive.leaf_rates(optax.sgd(1.0), learning_rate=float("nan"))
