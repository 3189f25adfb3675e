"""train.dynamics.train: the plain trainer's model, dynamics that match an independent pass, and
per-example augmentation selection exactly as documented."""

from __future__ import annotations

import dataclasses

import jax
import numpy as np
import optax
import pytest

from tradeoffs import data as data_lib
from tradeoffs import dynamics
from tradeoffs.train import dynamics as train_dynamics
from tradeoffs import models
from tradeoffs.train import mesh as mesh_lib
from tradeoffs.train import population
from tradeoffs.train import seeds as seeds_lib

N, BATCH, MEMBERS = 96, 32, 2


def _split():
  rng = np.random.default_rng(0)
  images = rng.random((N, 8, 8, 1)).astype(np.float32)
  labels = (images.mean(axis=(1, 2, 3)) > 0.5).astype(np.int32) + 2 * (
      images[:, 0, 0, 0] > 0.5)
  return data_lib.ArraySplit(images=images, labels=labels.astype(np.int32),
                             ids=np.arange(N, dtype=np.int32) + 500,
                             groups=np.zeros((N, 0), np.int32), group_names=(),
                             num_classes=4)


# One model, optimizer and augmenting step config for the module: populations that share
# them (and differ only in the selection) share one compilation of the epoch program.
MODEL = models.get("mlp", num_classes=4, hidden=(16,))
TX = optax.sgd(0.1)
ERASE = population.StepConfig(BATCH, augment_fn=data_lib.make_augment(["erase"], size=3))


def _state(mesh):
  return population.create_population(MODEL, TX, (8, 8, 1), MEMBERS, seeds_lib.Seeds(), mesh)


@pytest.fixture(scope="module")
def mesh():
  return mesh_lib.make_mesh(MEMBERS)  # Members and batch sharded over the 8 test devices.


@pytest.fixture(scope="module")
def one_device():
  return mesh_lib.make_mesh(MEMBERS, devices=jax.devices()[:1])  # Compiles faster.


def _params(state):
  return jax.tree.leaves(jax.device_get(state.params))


@pytest.mark.parametrize("augment", [None, "pad_crop"])
def test_no_or_full_selection_trains_the_plain_trainers_model(mesh, augment):
  split = _split()
  augment_fn = data_lib.make_augment([augment] if augment else [], pad=1)
  config = population.StepConfig(batch_size=BATCH, augment_fn=augment_fn)
  epochs = 3
  selection = "all" if augment else "none"
  state, dyn, _ = train_dynamics.train(_state(mesh), split, config, mesh, epochs=epochs,
                                 selection=selection)
  plain, _ = population.fit(_state(mesh), split, steps=epochs * (N // BATCH),
                            batch_size=BATCH, mesh=mesh, plan="scan_vmap",
                            augment_fn=augment_fn)
  for a, b in zip(_params(state), _params(plain)):
    np.testing.assert_allclose(a, b, rtol=2e-5, atol=2e-6)
  np.testing.assert_array_equal(dyn.augmented, augment is not None)
  # The last epoch's dynamics are the trained model's own predictions on the train set.
  logits = population.predict(state, split.images, mesh=mesh)
  expected = dynamics.example_measures(logits, np.broadcast_to(split.labels, (MEMBERS, N)))
  np.testing.assert_allclose(dyn.p_true[:, -1], expected["p_true"], rtol=2e-3, atol=1e-3)
  np.testing.assert_array_equal(dyn.correct[:, -1], expected["correct"])


def test_dynamics_layout_and_round_trip(one_device, tmp_path):
  mesh = one_device
  state, dyn, metrics = train_dynamics.train(_state(mesh), _split(), population.StepConfig(BATCH),
                                       mesh, epochs=4)
  assert dyn.p_true.shape == (MEMBERS, 4, N) and dyn.p_true.dtype == np.float16
  assert dyn.correct.dtype == bool and dyn.augmented.dtype == bool
  np.testing.assert_array_equal(dyn.ids, np.arange(N) + 500)
  np.testing.assert_allclose(np.exp(-dyn.loss.astype(np.float32)), dyn.p_true, rtol=3e-3,
                             atol=1e-3)
  assert metrics["loss"].shape == (N // BATCH, MEMBERS)
  again = train_dynamics.Dynamics.load(dyn.save(str(tmp_path / "dyn.npz")))
  for f in dataclasses.fields(dyn):
    np.testing.assert_array_equal(getattr(again, f.name), getattr(dyn, f.name))
  np.testing.assert_array_equal(dyn.forgetting_events()[1],
                                dynamics.forgetting_events(dyn.correct[1]))


@pytest.mark.parametrize("selection", ["random", "lowest_p_true"])
def test_selection_picks_exactly_k_from_the_start_epoch(one_device, selection):
  mesh = one_device
  fraction, start = 0.25, 2
  k = round(fraction * N)
  _, dyn, _ = train_dynamics.train(_state(mesh), _split(), ERASE, mesh, epochs=5,
                             selection=selection, fraction=fraction, start_epoch=start)
  counts = dyn.augmented.sum(axis=2)  # [M, E]
  np.testing.assert_array_equal(counts, [[0, 0, k, k, k]] * MEMBERS)
  for m in range(MEMBERS):
    for e in range(start, 5):
      chosen = dyn.augmented[m, e]
      if selection == "lowest_p_true":  # The k lowest scores at the end of epoch e - 1.
        previous = dyn.p_true[m, e - 1].astype(np.float32)
        assert previous[chosen].max() <= previous[~chosen].min()
  if selection == "lowest_p_true":  # The paper's code: everything augmented before start.
    _, warm, _ = train_dynamics.train(_state(mesh), _split(), ERASE, mesh, epochs=3,
                                selection=selection, fraction=fraction, start_epoch=start,
                                augment_before_start=True)
    np.testing.assert_array_equal(warm.augmented.sum(axis=2), [[N, N, k]] * MEMBERS)
  if selection == "random":  # Fresh draws each epoch and per member.
    assert not np.array_equal(dyn.augmented[0, 2], dyn.augmented[0, 3])
    assert not np.array_equal(dyn.augmented[0, 2], dyn.augmented[1, 2])


def test_bad_schedules_are_refused(one_device):
  mesh = one_device
  state, split, config = _state(mesh), _split(), population.StepConfig(BATCH)
  for fraction in (0.0, 1.5, -0.2, float("nan")):
    with pytest.raises(ValueError, match=r"\(0, 1\]"):
      train_dynamics.train(state, split, config, mesh, epochs=1, selection="random",
                     fraction=fraction)
  with pytest.raises(ValueError, match="start_epoch >= 1"):
    train_dynamics.train(state, split, config, mesh, epochs=1, selection="lowest_p_true")
  with pytest.raises(ValueError, match="selection="):
    train_dynamics.train(state, split, config, mesh, epochs=1, selection="hardest")
  assert train_dynamics.selection_count(0.2, 1311) == 262 and train_dynamics.selection_count(1e-6, 10) == 1
