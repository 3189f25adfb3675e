"""The grain pipeline: (seed, step) contract and per-process slices."""

import jax
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from tradeoffs import data, train
from tradeoffs.data import pipeline


@pytest.fixture(scope="module")
def source():
  return data.data_source("digits", "train")


def test_batches_are_a_function_of_seed_and_step(source):
  ds = pipeline.step_batches(source, seed=3, batch_size=32, num_steps=100)
  a, b = ds[17], ds[17]
  np.testing.assert_array_equal(a["index"], b["index"])
  np.testing.assert_array_equal(a["image"], b["image"])
  other = pipeline.step_batches(source, seed=4, batch_size=32, num_steps=100)[17]
  assert not np.array_equal(a["index"], other["index"])
  # A resumed iterator sees exactly the batches from its step on.
  it = pipeline.iterate(ds, start_step=17, num_threads=2)
  np.testing.assert_array_equal(next(it)["index"], a["index"])
  np.testing.assert_array_equal(next(it)["index"], ds[18]["index"])


def test_epoch_has_no_repeats(source):
  ds = pipeline.step_batches(source, seed=0, batch_size=100, num_steps=30)
  per_epoch = len(source) // 100
  seen = np.concatenate([ds[t]["index"] for t in range(per_epoch)])
  assert len(set(seen.tolist())) == len(seen)


def test_processes_read_disjoint_slices_of_the_global_batch(source):
  whole = pipeline.step_batches(source, seed=1, batch_size=32, num_steps=5, process_index=0,
                                process_count=1)[2]
  parts = [pipeline.step_batches(source, seed=1, batch_size=32, num_steps=5,
                                 process_index=p, process_count=4)[2] for p in range(4)]
  np.testing.assert_array_equal(np.concatenate([q["index"] for q in parts]), whole["index"])
  np.testing.assert_array_equal(np.concatenate([q["image"] for q in parts]), whole["image"])


def test_to_global_shards_over_data_axis(source):
  mesh = train.make_mesh(1)
  batch = pipeline.step_batches(source, seed=0, batch_size=64, num_steps=2)[0]
  array = pipeline.to_global(batch["image"], NamedSharding(mesh, P("data")))
  assert array.shape == (64, 8, 8, 1)
  assert len(array.addressable_shards) == jax.device_count()
  np.testing.assert_array_equal(np.asarray(array), batch["image"])


def test_global_batch_not_divisible_by_processes():
  with pytest.raises(ValueError, match="not divisible by the process count 3"):
    pipeline.process_slice(np.arange(32), 0, 3)
