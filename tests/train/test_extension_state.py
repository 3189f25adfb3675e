"""Step extensions that carry state and select the examples that are backpropagated:
the state against hand-summed losses, the selected-batch gradient against a reference,
and a preempted run that resumes bitwise (params and carried state)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax

from experiments.configs import digits_mlp
from tradeoffs import models, train
from tradeoffs.data import batching
from tradeoffs.studies import recipes
from tradeoffs.train import experiment
from tradeoffs.train import extensions
from tradeoffs.train import mesh as mesh_lib
from tradeoffs.train import population as pop_lib
from tradeoffs.train import seeds as seeds_lib


def _setup(members=2, n=48):
  rng = np.random.default_rng(0)
  split = type("S", (), {})()
  split.images = rng.normal(size=(n, 4, 4, 1)).astype(np.float32)
  split.labels = rng.integers(0, 3, n).astype(np.int32)
  split.groups = np.zeros((n, 0), np.int32)
  mesh = mesh_lib.make_mesh(members, 1, devices=jax.devices()[:1])
  net = models.get("mlp", num_classes=3, hidden=(5,))
  state = train.create_population(net, optax.sgd(0.1), (4, 4, 1), members, train.Seeds(),
                                  mesh)
  return state, mesh, split


def _indices(state, member, n, batch):
  key = seeds_lib.wrap(state.rngs["data"][member])
  return np.asarray(batching.batch_indices(key, state.step[member], n, batch))


def test_update_state_sees_every_steps_per_example_losses():
  state, mesh, split = _setup()
  ext = extensions.StepExtension(
      name="loss_sum", init_state=lambda key: {"sum": jnp.zeros(()), "steps": jnp.zeros(
          (), jnp.int32)},
      update_state=lambda s, losses, b: {"sum": s["sum"] + jnp.sum(losses),
                                         "steps": s["steps"] + 1})
  config = pop_lib.StepConfig(batch_size=8, extensions=(ext,))
  state = pop_lib.init_extension_state(state, config.extensions)
  data = pop_lib.to_device(split, mesh)
  total = np.zeros(2)
  for _ in range(3):
    state, metrics = pop_lib.train_step(state, data, config, mesh)
    total += 8 * np.asarray(metrics["loss"])  # mean loss of the step × batch
  carried = jax.device_get(state.extension_state["loss_sum"])
  np.testing.assert_array_equal(carried["steps"], [3, 3])
  np.testing.assert_allclose(carried["sum"], total, rtol=1e-5)


def test_selection_backpropagates_only_the_gathered_examples():
  state, mesh, split = _setup()
  chosen = jnp.array([1, 4, 6])
  ext = extensions.StepExtension(
      name="pick", init_state=lambda key: {"calls": jnp.zeros((), jnp.int32)},
      select=lambda losses, b: (chosen, jnp.array([1.0, 1.0, 0.0]),
                                {"calls": b.state["calls"] + 1}),
      backward_size=3)
  config = pop_lib.StepConfig(batch_size=8, extensions=(ext,))
  state = pop_lib.init_extension_state(state, config.extensions)
  new, metrics = pop_lib.train_step(state, pop_lib.to_device(split, mesh), config, mesh)
  np.testing.assert_array_equal(metrics["backward_examples"], [3, 3])
  np.testing.assert_array_equal(metrics["selected_examples"], [2, 2])
  np.testing.assert_array_equal(jax.device_get(new.extension_state["pick"]["calls"]), [1, 1])
  for m in range(2):
    idx = _indices(state, m, len(split.labels), 8)[[1, 4]]  # weight-0 row 6 drops out
    params = jax.tree.map(lambda x: x[m], state.params)

    def loss(p):
      logits = state.apply_fn({"params": p}, jnp.asarray(split.images[idx]), train=True)
      return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
          logits, jnp.asarray(split.labels[idx])))

    grads = jax.grad(loss)(params)
    got = jax.tree.map(lambda a, b: (a[m] - b[m]) / 0.1, state.params, new.params)
    for x, y in zip(jax.tree.leaves(got), jax.tree.leaves(grads), strict=True):
      np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=1e-5)


def _config():
  config = digits_mlp.get_config("smoke,members=2")
  config.model.kwargs.hidden = (16,)
  config.train.update(dict(steps=40, steps_per_dispatch=10, log_every=10,
                           checkpoint_every=20, eval_every=40))
  return config


def _train(config, workdir):
  ext = recipes.selection_extension("selective_backprop", 8, 1.0, 0.0, 64)
  mesh, dataset, _, state, step_config = experiment.build(
      config, step_overrides={"extensions": (ext,)})
  extras = {recipes.NOISY_INPUT: np.zeros(len(dataset.train.labels), np.int32)}
  return experiment.train_population(config, workdir, state=state, mesh=mesh,
                                     dataset=dataset, step_config=step_config,
                                     extras=extras)


def test_a_preempted_run_with_carried_state_resumes_bitwise(tmp_path, monkeypatch):
  config = _config()
  straight, _, preempted = _train(config, str(tmp_path / "straight"))
  assert not preempted
  monkeypatch.setenv(experiment.SIGNAL_AT_STEP_ENV, "20")
  half, _, preempted = _train(config, str(tmp_path / "resumed"))
  assert preempted and int(jax.device_get(half.step)[0]) == 20
  monkeypatch.delenv(experiment.SIGNAL_AT_STEP_ENV)
  resumed, _, preempted = _train(config, str(tmp_path / "resumed"))
  assert not preempted
  assert os.path.isdir(tmp_path / "resumed" / "checkpoints" / "20")
  a = jax.device_get((straight.params, straight.extension_state))
  b = jax.device_get((resumed.params, resumed.extension_state))
  for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
    np.testing.assert_array_equal(x, y)
  history = jax.device_get(resumed.extension_state["selection"])
  assert history["history_count"].tolist() == [40 * config.train.batch_size] * 2
  assert (history["selected"] > 0).all() and (history["selected"] <= 40 * 8).all()
