"""The SupCon loss against a numpy transcription of Khosla et al.'s eq. 2, the trainer's
multi-view batches, and the frozen-encoder optimizer of linear evaluation."""

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


def test_linear_probe_freezes_everything_but_the_head():
  params = {"dense_0": {"kernel": jnp.ones((3, 2))}, "head": {"kernel": jnp.ones((2, 2)),
                                                              "bias": jnp.zeros(2)}}
  grads = jax.tree.map(jnp.ones_like, params)
  tx = contrastive.linear_probe(optax.sgd(0.5), ("head",))
  updates, _ = tx.update(grads, tx.init(params), params)
  np.testing.assert_array_equal(updates["dense_0"]["kernel"], 0.0)
  np.testing.assert_allclose(updates["head"]["kernel"], -0.5)
  np.testing.assert_allclose(updates["head"]["bias"], -0.5)
  with pytest.raises(ValueError, match="at least one"):
    contrastive.linear_probe(optax.sgd(0.1), ())
