"""Batches are a pure function of (key, step); epochs visit every example at most once."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tradeoffs.data import batching


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 3000), seed=st.integers(0, 2**31 - 1))
def test_feistel_is_a_bijection(n, seed):
  perm = np.asarray(batching.feistel_permute(jax.random.key(seed), jnp.arange(n), n))
  np.testing.assert_array_equal(np.sort(perm), np.arange(n))


def test_epoch_batches_partition_a_subset_of_the_examples():
  key, n, bs = jax.random.key(3), 100, 16
  per_epoch = batching.steps_per_epoch(n, bs)
  assert per_epoch == 6
  seen = np.concatenate([np.asarray(batching.batch_indices(key, s, n, bs))
                         for s in range(per_epoch)])
  assert len(seen) == len(set(seen.tolist())) == 96  # no repeats within an epoch
  next_epoch = np.concatenate([np.asarray(batching.batch_indices(key, s, n, bs))
                               for s in range(per_epoch, 2 * per_epoch)])
  assert not np.array_equal(np.sort(seen), np.sort(next_epoch)) or not np.array_equal(
      seen, next_epoch)  # a new order each epoch


def test_same_key_and_step_same_batch_jit_or_not():
  key = jax.random.key(7)
  eager = batching.batch_indices(key, 41, 1437, 128)
  jitted = jax.jit(batching.batch_indices, static_argnums=(2, 3))(key, 41, 1437, 128)
  np.testing.assert_array_equal(eager, jitted)
  other = batching.batch_indices(jax.random.key(8), 41, 1437, 128)
  assert not np.array_equal(eager, other)


def test_order_is_not_the_identity():
  idx = np.asarray(batching.batch_indices(jax.random.key(0), 0, 1000, 100))
  assert np.abs(np.corrcoef(idx, np.arange(100))[0, 1]) < 0.5


@pytest.mark.parametrize("batch", [0, 101])
def test_bad_batch_size(batch):
  with pytest.raises(ValueError, match="batch_size"):
    batching.steps_per_epoch(100, batch)
