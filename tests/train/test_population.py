"""Population training: one compiled program equals members trained one by one."""

import jax
import numpy as np
import pytest

from tradeoffs import data, models, train
from tradeoffs.train import mesh as mesh_lib


@pytest.fixture(scope="module")
def digits():
  return data.load("digits")


def _population(digits, members, seeds, mesh, hidden=(32,), lr=1e-2):
  net = models.get("mlp", num_classes=10, hidden=hidden)
  tx = train.make_optimizer({"name": "adam", "learning_rate": lr}, 100)
  return train.create_population(net, tx, digits.input_shape, members, seeds, mesh)


def _one_device_mesh(members=1):
  return mesh_lib.make_mesh(members, 1, devices=jax.devices()[:1])


def test_train_step_lowers_the_loss(digits):
  mesh = train.make_mesh(4)
  state = _population(digits, 4, train.Seeds(), mesh)
  state, first = train.fit(state, digits.train, steps=1, batch_size=64, mesh=mesh)
  state, later = train.fit(state, digits.train, steps=40, batch_size=64, mesh=mesh,
                           steps_per_dispatch=40)
  assert np.all(later["loss"][-5:].mean(0) < 0.5 * first["loss"][0])
  assert np.all(np.asarray(state.step) == 41)


def test_vmapped_population_equals_members_trained_one_by_one(digits):
  mesh = _one_device_mesh(3)
  seeds = train.Seeds(init=5, data=7, augment=0, dropout=0)
  pop = _population(digits, 3, seeds, mesh)
  pop, _ = train.fit(pop, digits.train, steps=25, batch_size=32, mesh=mesh)
  for i in range(3):
    single_seeds = train.Seeds(init=5 + i, data=7 + i, augment=i, dropout=i)
    single = _population(digits, 1, single_seeds, _one_device_mesh())
    single, _ = train.fit(single, digits.train, steps=25, batch_size=32,
                          mesh=_one_device_mesh())
    for a, b in zip(jax.tree.leaves(pop.params), jax.tree.leaves(single.params)):
      np.testing.assert_allclose(np.asarray(a)[i], np.asarray(b)[0], rtol=1e-5, atol=1e-6)


def test_all_sources_fixed_gives_identical_members(digits):
  mesh = train.make_mesh(4)
  seeds = train.Seeds(init=1, data=2, augment=3, dropout=4, vary=())
  state = _population(digits, 4, seeds, mesh)
  state, _ = train.fit(state, digits.train, steps=20, batch_size=64, mesh=mesh)
  for leaf in jax.tree.leaves(state.params):
    leaf = np.asarray(leaf)
    for i in range(1, 4):
      np.testing.assert_array_equal(leaf[i], leaf[0])


def test_varying_only_data_order_keeps_init_equal(digits):
  mesh = train.make_mesh(2)
  seeds = train.Seeds(vary=("data",))
  state = _population(digits, 2, seeds, mesh)
  for leaf in jax.tree.leaves(state.params):
    np.testing.assert_array_equal(np.asarray(leaf)[0], np.asarray(leaf)[1])
  state, _ = train.fit(state, digits.train, steps=10, batch_size=64, mesh=mesh)
  kernel = np.asarray(jax.tree.leaves(state.params)[1])
  assert not np.allclose(kernel[0], kernel[1])


def test_varying_only_init_changes_init(digits):
  state = _population(digits, 2, train.Seeds(vary=("init",)), train.make_mesh(2))
  kernel = np.asarray(jax.tree.leaves(state.params)[1])
  assert not np.allclose(kernel[0], kernel[1])


def test_sharded_equals_unsharded(digits):
  seeds = train.Seeds()
  sharded_mesh = train.make_mesh(4)  # 4 members x 2 data shards over 8 devices
  assert dict(sharded_mesh.shape) == {"members": 4, "data": 2}
  outs = []
  for mesh in (sharded_mesh, _one_device_mesh(4)):
    state = _population(digits, 4, seeds, mesh)
    state, _ = train.fit(state, digits.train, steps=15, batch_size=64, mesh=mesh)
    outs.append(train.predict(state, digits.test.images, mesh=mesh))
  # Reductions split across devices round differently; the math is the same.
  np.testing.assert_allclose(outs[0], outs[1], rtol=1e-4, atol=1e-4)


def test_predict_shape_and_padding(digits):
  mesh = train.make_mesh(2)
  state = _population(digits, 2, train.Seeds(), mesh)
  logits = train.predict(state, digits.test.images[:37], batch_size=16, mesh=mesh)
  full = train.predict(state, digits.test.images, batch_size=512, mesh=mesh)
  assert logits.shape == (2, 37, 10)
  np.testing.assert_allclose(logits, full[:, :37], rtol=1e-5, atol=1e-5)


def test_population_and_batch_divisibility_errors():
  with pytest.raises(ValueError, match="population.members=3 is not divisible"):
    mesh_lib.make_mesh(3, 2)
  mesh = train.make_mesh(4)
  with pytest.raises(ValueError, match="batch_size=31 is not divisible by the data-parallel "
                     "degree 2"):
    mesh_lib.check_batch(31, mesh)


def test_eval_step_is_each_member_applied_alone(digits):
  mesh = _one_device_mesh(2)
  state = _population(digits, 2, train.Seeds(), mesh)
  x = digits.test.images[:5]
  logits = np.asarray(train.eval_step(state, x))
  net = models.get("mlp", num_classes=10, hidden=(32,))
  for i in range(2):
    params = jax.tree.map(lambda p: p[i], state.params)
    np.testing.assert_allclose(logits[i], net.apply({"params": params}, x), rtol=1e-5,
                               atol=1e-6)


def test_a_repeated_init_reuses_its_compiled_program_and_still_honours_the_seeds(digits):
  from tradeoffs.train import population as pop_lib
  pop_lib._COMPILED_INITS.clear()
  mesh = train.make_mesh(2)
  first = _population(digits, 2, train.Seeds(init=1), mesh)
  again = _population(digits, 2, train.Seeds(init=2), mesh)
  assert len(pop_lib._COMPILED_INITS) == 1
  _population(digits, 2, train.Seeds(init=1), mesh, hidden=(48,))  # Another program.
  assert len(pop_lib._COMPILED_INITS) == 2
  pop_lib._COMPILED_INITS.clear()
  fresh = _population(digits, 2, train.Seeds(init=2), mesh)
  for b, c in zip(jax.tree.leaves(again.params), jax.tree.leaves(fresh.params)):
    np.testing.assert_array_equal(np.asarray(b), np.asarray(c))
    assert b.sharding == c.sharding
  kernel = [np.asarray(jax.tree.leaves(s.params)[1]) for s in (first, again)]
  assert not np.allclose(kernel[0], kernel[1])
