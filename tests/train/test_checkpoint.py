"""Orbax checkpoints of the whole train state, restored into another mesh's shardings."""

import jax
import numpy as np

from tradeoffs import data, models, train


def test_save_restore_into_a_different_mesh(tmp_path):
  digits = data.load("digits")
  net = models.get("mlp", num_classes=10, hidden=(16,))
  tx = train.make_optimizer({"name": "adam", "learning_rate": 1e-2}, 10)
  mesh_a = train.make_mesh(4, 4)  # 4 x 2
  state = train.create_population(net, tx, digits.input_shape, 4, train.Seeds(), mesh_a)
  state, _ = train.fit(state, digits.train, steps=5, batch_size=32, mesh=mesh_a)
  ckpt = train.Checkpointer(str(tmp_path / "ckpt"))
  ckpt.save(5, state)
  assert ckpt.latest_step() == 5
  mesh_b = train.make_mesh(4, 2)  # 2 x 4
  fresh = train.create_population(net, tx, digits.input_shape, 4, train.Seeds(init=99), mesh_b)
  restored = ckpt.restore(fresh)
  for a, b in zip(jax.tree.leaves(state), jax.tree.leaves(restored)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  kernel = jax.tree.leaves(restored.params)[1]
  assert kernel.sharding.mesh.shape == mesh_b.shape
  # Training continues identically from the restored state on the same mesh.
  ckpt.close()
