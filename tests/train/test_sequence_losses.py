"""Named per-example losses (`tradeoffs.train.losses`) and sequence models in the population
trainer: token cross-entropy against numpy, decoder inputs travelling with the batch."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tradeoffs import models
from tradeoffs.models import transformer as tf
from tradeoffs.train import losses
from tradeoffs.train import mesh as mesh_lib
from tradeoffs.train import population as pop
from tradeoffs.train import seeds as seeds_lib


def _log_softmax(x):
  x = x - x.max(-1, keepdims=True)
  return x - np.log(np.exp(x).sum(-1, keepdims=True))


def test_token_cross_entropy_and_accuracy_match_numpy():
  rng = np.random.default_rng(0)
  logits = rng.normal(size=(3, 4, 6)).astype(np.float32)
  labels = np.array([[3, 4, 2, 0], [5, 2, 0, 0], [0, 0, 0, 0]])
  got = np.asarray(losses.token_cross_entropy(jnp.asarray(logits), jnp.asarray(labels)))
  logp = _log_softmax(logits.astype(np.float64))
  for b in range(3):
    real = [t for t in range(4) if labels[b, t] != 0]
    want = -np.mean([logp[b, t, labels[b, t]] for t in real]) if real else 0.0
    assert got[b] == pytest.approx(want, rel=1e-5)
  hits = [(logits[b, t].argmax() == labels[b, t]) for b in range(3) for t in range(4)
          if labels[b, t] != 0]
  assert float(losses.token_accuracy(jnp.asarray(logits), jnp.asarray(labels))) == (
      pytest.approx(np.mean(hits)))


def test_losses_by_name():
  assert losses.get("token_cross_entropy") is losses.token_cross_entropy
  assert pop.StepConfig(batch_size=2, loss_fn="token_cross_entropy").loss_fn is (
      losses.token_cross_entropy)
  assert losses.accuracy_for(losses.token_cross_entropy) is losses.token_accuracy
  with pytest.raises(ValueError, match="unknown loss 'ctc2'"):
    pop.StepConfig(batch_size=2, loss_fn="ctc2")


@dataclasses.dataclass
class _Split:
  images: np.ndarray
  labels: np.ndarray
  groups: np.ndarray


def test_seq2seq_population_step_uses_decoder_inputs():
  """Each member's step loss equals the teacher-forced token cross-entropy of its own batch
  computed outside the trainer; training on a copy task lowers it."""
  rng = np.random.default_rng(0)
  source = rng.integers(3, 9, size=(16, 5)).astype(np.int32)
  source[:, -1] = tf.EOS
  targets = source.copy()
  net = models.get("transformer_seq2seq", num_classes=9, d_model=16, num_heads=2,
                   num_layers=1, ffn_dim=32, max_length=8, dropout=0.0)
  tx = optax.adam(3e-3)
  mesh = mesh_lib.make_mesh(2)
  state = pop.create_population(net, tx, (5,), 2, seeds_lib.Seeds(init=0, data=0), mesh)
  config = pop.StepConfig(batch_size=8, loss_fn="token_cross_entropy",
                          model_inputs=("decoder_inputs",))
  split = _Split(images=source, labels=targets, groups=np.zeros((16, 0), np.int32))
  data = pop.to_device(split, mesh, {"decoder_inputs": np.asarray(tf.shift_right(targets))})
  images, labels, _, extras = pop.over_members(pop.member_batch, (0, 0, None, None))(
      state.rngs, state.step, data, config)
  params = jax.device_get(state.params)
  want = []
  for m in range(2):
    logits = net.apply({"params": jax.tree.map(lambda x: x[m], params)}, images[m],
                       extras["decoder_inputs"][m])
    logp = _log_softmax(np.asarray(logits, np.float64))
    lab = np.asarray(labels[m])
    want.append(-np.mean(np.take_along_axis(logp, lab[..., None], -1)[..., 0]))
  new_state, metrics = jax.jit(lambda s, d: pop.train_step(s, d, config, mesh))(state, data)
  np.testing.assert_allclose(np.asarray(metrics["loss"]), want, rtol=1e-4)
  assert metrics["accuracy"].shape == (2,)
  state, last = pop.fit(new_state, data, steps=60, batch_size=8, mesh=mesh, plan="scan_vmap",
                        loss_fn="token_cross_entropy", model_inputs=("decoder_inputs",))
  assert np.all(last["loss"][-1] < 0.5 * np.asarray(want))
  with pytest.raises(ValueError, match=r"model reads per-example inputs \['decoder_inputs'\]"):
    pop.train_step(state, pop.to_device(split, mesh), config)
