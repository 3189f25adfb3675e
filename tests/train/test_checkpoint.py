"""Orbax checkpoints of the whole train state, restored into another mesh's shardings;
damaged checkpoints are skipped, never restored."""

import logging
import os

import jax
import numpy as np
import pytest

from tradeoffs import data, models, train
from tradeoffs.train import checkpoint as checkpoint_lib


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


def _state_and_checkpoints(directory, steps=(5, 10)):
  """A real Orbax checkpoint per step in `steps`, written by the real Checkpointer."""
  digits = data.load("digits")
  net = models.get("mlp", num_classes=10, hidden=(16,))
  tx = train.make_optimizer({"name": "adam", "learning_rate": 1e-2}, 20)
  mesh = train.make_mesh(2, 2)
  state = train.create_population(net, tx, digits.input_shape, 2, train.Seeds(), mesh)
  saved = {}
  ckpt = train.Checkpointer(directory)
  done = 0
  for step in steps:
    state, _ = train.fit(state, digits.train, steps=step - done, batch_size=32, mesh=mesh)
    done = step
    ckpt.save(step, state)
    saved[step] = jax.device_get(state.params)
  ckpt.close()
  return state, saved


def _largest_data_file(step_dir):
  """The file holding the arrays' bytes (the merged OCDBT data under default/d; the
  per-process files under ocdbt.process_0 are not read on restore)."""
  folder = os.path.join(step_dir, "default", "d")
  return max((os.path.join(folder, f) for f in os.listdir(folder)), key=os.path.getsize)


def _damage(path, how):
  raw = bytearray(open(path, "rb").read())
  if how == "truncate":
    raw = raw[:len(raw) // 2]
  elif how == "empty":
    raw = b""
  else:  # flip one bit in the middle
    raw[len(raw) // 2] ^= 0x10
  with open(path, "wb") as f:
    f.write(bytes(raw))


@pytest.mark.parametrize("how,which", [("truncate", "data"), ("empty", "data"),
                                       ("bitflip", "data"), ("empty", "_METADATA"),
                                       ("truncate", "_METADATA")])
def test_damaged_latest_checkpoint_falls_back_to_the_previous_one(tmp_path, how, which, caplog):
  directory = str(tmp_path / "ckpt")
  state, saved = _state_and_checkpoints(directory)
  latest = os.path.join(directory, "10")
  target = (_largest_data_file(latest) if which == "data"
            else os.path.join(latest, "default", "_METADATA"))
  _damage(target, how)
  ckpt = train.Checkpointer(directory)
  with caplog.at_level(logging.WARNING):
    restored = ckpt.restore(state)
  assert int(np.asarray(restored.step)[0]) == 5
  for a, b in zip(jax.tree.leaves(saved[5]), jax.tree.leaves(restored.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  assert any("10" in r.getMessage() and "skipping" in r.getMessage() for r in caplog.records)
  # The damaged step is moved aside, so the resumed run can save step 10 again.
  assert ckpt.all_steps() == [5] and os.path.isdir(latest + ".corrupt")
  assert ckpt.save(10, restored, wait=True)
  ckpt.close()


def test_no_intact_checkpoint_fails_with_one_line_naming_the_folder(tmp_path):
  directory = str(tmp_path / "ckpt")
  state, _ = _state_and_checkpoints(directory)
  for step in ("5", "10"):
    _damage(_largest_data_file(os.path.join(directory, step)), "bitflip")
  ckpt = train.Checkpointer(directory)
  with pytest.raises(checkpoint_lib.CheckpointCorruptError) as info:
    ckpt.restore(state)
  message = str(info.value)
  assert "\n" not in message and f"remove {os.path.abspath(directory)}" in message
  assert "step 10" in message and isinstance(info.value, ValueError)
  ckpt.close()


def test_saving_a_step_twice_is_a_no_op(tmp_path):
  """The preemption save after a periodic save of the same step must not raise."""
  directory = str(tmp_path / "ckpt")
  state, _ = _state_and_checkpoints(directory, steps=(5,))
  ckpt = train.Checkpointer(directory)
  assert not ckpt.save(5, state)          # already on disk
  ckpt.save(6, state)
  assert not ckpt.save(6, state, wait=True)  # just saved (maybe still in flight)
  assert ckpt.all_steps() == [5, 6]
  ckpt.close()
