"""Seed switches: each source's keys follow "member i uses seed + i" and no source is built
from another's seed (dropout from augment, say)."""

import jax
import numpy as np
import pytest

from tradeoffs import data, models, train
from tradeoffs.train import mesh as mesh_lib
from tradeoffs.train import population as pop_lib


@pytest.fixture(scope="module")
def digits():
  return data.load("digits")


def _mesh(members):
  return mesh_lib.make_mesh(members, 1, devices=jax.devices()[:1])


def _dropout_population(digits, members, seeds):
  net = models.get("mlp", num_classes=10, hidden=(32,), dropout=0.5)
  tx = train.make_optimizer({"name": "sgd", "learning_rate": 0.1}, 100)
  return train.create_population(net, tx, digits.input_shape, members, seeds, _mesh(members))


def _key(seed):
  return np.asarray(jax.random.key_data(jax.random.key(seed)))


def test_member_keys_follow_seed_plus_member_index():
  seeds = train.Seeds(init=3, data=5, augment=7, dropout=11, vary=("dropout", "data"))
  assert {k: v.tolist() for k, v in seeds.member_seeds(3).items()} == {
      "init": [3, 3, 3], "data": [5, 6, 7], "augment": [7, 7, 7], "dropout": [11, 12, 13]}
  keys = seeds.member_keys(3)
  for source, base, varies in (("init", 3, False), ("data", 5, True), ("augment", 7, False),
                               ("dropout", 11, True)):
    for i in range(3):
      np.testing.assert_array_equal(np.asarray(keys[source][i]),
                                    _key(base + i if varies else base), err_msg=source)


def test_the_population_carries_each_sources_own_keys(digits):
  seeds = train.Seeds(init=0, data=20, augment=40, dropout=60)
  state = _dropout_population(digits, 2, seeds)
  for source, base in (("data", 20), ("augment", 40), ("dropout", 60)):
    for i in range(2):
      np.testing.assert_array_equal(np.asarray(state.rngs[source][i]), _key(base + i),
                                    err_msg=source)


def _kernels_after(digits, seeds, members=2, steps=3):
  state = _dropout_population(digits, members, seeds)
  state, _ = train.fit(state, digits.train, steps=steps, batch_size=32, mesh=_mesh(members))
  return np.asarray(jax.tree.leaves(state.params)[1])  # first Dense kernel [M, ...]


def test_members_sharing_the_dropout_seed_get_identical_masks_whatever_the_augment_seed(
    digits):
  # Augment seed differs per member; with no augmentation it must change nothing.
  kernel = _kernels_after(digits, train.Seeds(init=1, data=2, augment=3, dropout=4,
                                              vary=("augment",)))
  np.testing.assert_array_equal(kernel[0], kernel[1])


def test_varying_only_dropout_makes_members_differ(digits):
  kernel = _kernels_after(digits, train.Seeds(init=1, data=2, augment=3, dropout=4,
                                              vary=("dropout",)))
  assert not np.allclose(kernel[0], kernel[1])


def test_dropout_member_i_equals_a_single_run_with_seed_plus_i(digits):
  pop = _kernels_after(digits, train.Seeds(init=1, data=2, augment=3, dropout=4,
                                           vary=("dropout",)))
  for i in range(2):
    single = _kernels_after(digits, train.Seeds(init=1, data=2, augment=3, dropout=4 + i,
                                                vary=()), members=1)
    np.testing.assert_allclose(pop[i], single[0], rtol=1e-5, atol=1e-6)


def test_augmentation_uses_the_augment_keys_only(digits):
  images = np.broadcast_to(digits.train.images[:8][None], (2, *digits.train.images[:8].shape))
  config = pop_lib.StepConfig(batch_size=8, augment_fn=data.make_augment(("pad_crop",), pad=2))
  same = _dropout_population(digits, 2, train.Seeds(augment=5, dropout=9, vary=("dropout",)))
  out = np.asarray(pop_lib.augment_members(same, images, config))
  np.testing.assert_array_equal(out[0], out[1])
  differ = _dropout_population(digits, 2, train.Seeds(augment=5, dropout=9, vary=("augment",)))
  out = np.asarray(pop_lib.augment_members(differ, images, config))
  assert not np.array_equal(out[0], out[1])
