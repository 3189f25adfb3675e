"""Step extensions: extra loss terms, example weights, per-example inputs and per-example
gradients, each against a hand-written reference on a tiny population."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tradeoffs import models, train
from tradeoffs.train import extensions
from tradeoffs.train import mesh as mesh_lib
from tradeoffs.train import population as pop_lib


class _Split:
  def __init__(self, n=64, seed=0):
    rng = np.random.default_rng(seed)
    self.images = rng.normal(size=(n, 4, 4, 1)).astype(np.float32)
    self.labels = rng.integers(0, 3, n).astype(np.int32)
    self.groups = (rng.random((n, 1)) < 0.3).astype(np.int32)


def _state(members=2, lr=0.1, tx=None):
  mesh = mesh_lib.make_mesh(members, 1, devices=jax.devices()[:1])
  net = models.get("mlp", num_classes=3, hidden=(5,))
  tx = tx or optax.sgd(lr)
  return train.create_population(net, tx, (4, 4, 1), members, train.Seeds(), mesh), mesh


def _one_step(state, mesh, split, **step_options):
  config = pop_lib.StepConfig(batch_size=16, **step_options)
  data = pop_lib.to_device(split, mesh, step_options.pop("extras", None)
                           if "extras" in step_options else None)
  return pop_lib.train_step(state, data, config, mesh)


def _batch(state, split, member=0):
  """The indices member `member` draws at step 0 (the trainer's own rule)."""
  from tradeoffs.data import batching
  from tradeoffs.train import seeds as seeds_lib
  key = seeds_lib.wrap(state.rngs["data"][member])
  return np.asarray(batching.batch_indices(key, state.step[member], len(split.labels), 16))


def _reference_grads(state, split, member, weights=None, extra_term=None):
  params = jax.tree.map(lambda x: x[member], state.params)
  idx = _batch(state, split, member)
  x, y = jnp.asarray(split.images[idx]), jnp.asarray(split.labels[idx])

  def loss(p):
    logits = state.apply_fn({"params": p}, x, train=True)
    per = optax.softmax_cross_entropy_with_integer_labels(logits, y)
    data = jnp.mean(per) if weights is None else jnp.sum(weights * per) / jnp.sum(weights)
    return data + (0.0 if extra_term is None else extra_term(logits, idx))

  return jax.grad(loss)(params)


def _close(a, b, atol=1e-5):
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol)


def _updated_params(state, new_state, member, lr=0.1):
  # SGD: grads = (old - new) / lr.
  return jax.tree.map(lambda a, b: (a[member] - b[member]) / lr, state.params, new_state.params)


def test_no_extension_equals_plain_mean_loss_gradient():
  split = _Split()
  state, mesh = _state()
  new, _ = pop_lib.train_step(state, pop_lib.to_device(split, mesh),
                              pop_lib.StepConfig(batch_size=16), mesh)
  for m in range(2):
    _close(_updated_params(state, new, m), _reference_grads(state, split, m))


def test_example_weights_select_examples():
  split = _Split()
  state, mesh = _state()
  keep_even = extensions.StepExtension(
      name="select", example_weights=lambda losses, b: (b.labels % 2 == 0).astype(jnp.float32))
  new, _ = pop_lib.train_step(state, pop_lib.to_device(split, mesh),
                              pop_lib.StepConfig(batch_size=16, extensions=(keep_even,)), mesh)
  idx = _batch(state, split, 1)
  weights = jnp.asarray(split.labels[idx] % 2 == 0, jnp.float32)
  _close(_updated_params(state, new, 1), _reference_grads(state, split, 1, weights))


def test_member_loss_reads_per_example_inputs_gathered_with_the_batch():
  split = _Split()
  teacher = np.random.default_rng(1).normal(size=(64, 3)).astype(np.float32)
  state, mesh = _state()

  def distill(logits, b):
    return 0.5 * jnp.mean(jnp.sum((logits - b.extras["teacher"]) ** 2, -1))

  ext = extensions.StepExtension(name="kd", inputs=("teacher",), member_loss=distill)
  data = pop_lib.to_device(split, mesh, {"teacher": teacher})
  new, metrics = pop_lib.train_step(state, data, pop_lib.StepConfig(batch_size=16,
                                                                    extensions=(ext,)), mesh)
  term = lambda logits, idx: 0.5 * jnp.mean(jnp.sum((logits - teacher[idx]) ** 2, -1))
  _close(_updated_params(state, new, 0), _reference_grads(state, split, 0,
                                                              extra_term=term))
  with pytest.raises(ValueError, match="reads per-example inputs"):
    pop_lib.train_step(state, pop_lib.to_device(split, mesh),
                       pop_lib.StepConfig(batch_size=16, extensions=(ext,)), mesh)


def test_group_loss_and_coupling_extensions_add_their_terms():
  split = _Split()
  state, mesh = _state()
  plain, m0 = pop_lib.train_step(state, pop_lib.to_device(split, mesh),
                                 pop_lib.StepConfig(batch_size=16), mesh)
  penalty = extensions.group_loss(lambda logits, y, g: 3.0 + 0.0 * jnp.sum(logits))
  tied = extensions.coupling(lambda logits, y, step: 0.0 * jnp.sum(logits) + 7.0)
  _, m1 = pop_lib.train_step(state, pop_lib.to_device(split, mesh),
                             pop_lib.StepConfig(batch_size=16, extensions=(penalty, tied)),
                             mesh)
  np.testing.assert_allclose(m1["loss"], np.asarray(m0["loss"]) + 3.0, rtol=1e-6)
  np.testing.assert_allclose(m1["coupling_loss"], [7.0, 7.0])
  with pytest.raises(ValueError, match="distinct names"):
    pop_lib.StepConfig(batch_size=16, extensions=(tied, tied))


def test_per_example_gradients_reach_the_optimizer():
  split = _Split()
  seen = {}

  def mean_of_examples():
    def init(params):
      return optax.EmptyState()

    def update(grads, state, params=None):
      seen["shape"] = jax.tree.leaves(grads)[0].shape
      return jax.tree.map(lambda g: -0.1 * jnp.mean(g, 0), grads), state

    return optax.GradientTransformation(init, update)

  state, mesh = _state(tx=mean_of_examples())
  ext = extensions.StepExtension(name="dp", per_example_grads=True)
  new, _ = pop_lib.train_step(state, pop_lib.to_device(split, mesh),
                              pop_lib.StepConfig(batch_size=16, extensions=(ext,)), mesh)
  assert seen["shape"][0] == 16  # [B, ...] per member (vmapped over members)
  # Averaging the per-example gradients gives the ordinary batch gradient.
  _close(_updated_params(state, new, 0), _reference_grads(state, split, 0))
  bad = extensions.coupling(lambda logits, y, step: jnp.sum(logits))
  with pytest.raises(ValueError, match="cannot be combined"):
    pop_lib.train_step(state, pop_lib.to_device(split, mesh),
                       pop_lib.StepConfig(batch_size=16, extensions=(ext, bad)), mesh)
