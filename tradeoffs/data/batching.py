"""Batches as a pure function of (key, step), computed inside `jit`.

The order of an epoch is a keyed pseudo-random permutation of [0, n): a 4-round Feistel
network over the next power of four with cycle-walking, so a batch costs O(batch) work —
no sort of the whole set per step (a `jax.random.permutation` of the epoch would cost more
than a small model's training step). Epochs drop the remainder: step t reads positions
[(t mod E)·B, (t mod E + 1)·B) of epoch t // E, with E = n // B.

Because a batch depends only on (key, step), a resumed run sees exactly the data the
uninterrupted run saw, and each member of a population can have its own data order.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np

_ROUNDS = 4


def _mix32(x):
  """A 32-bit integer hash (the 'lowbias32' finaliser); numpy or jax uint32 arrays."""
  x = x ^ (x >> 16)
  x = x * x.dtype.type(0x7FEB352D)
  x = x ^ (x >> 15)
  x = x * x.dtype.type(0x846CA68B)
  return x ^ (x >> 16)


def _half_bits(n: int) -> int:
  bits = max(2, int(n - 1).bit_length())
  return (bits + 1) // 2


def _encrypt(x, round_keys, half: int):
  """One pass of the Feistel network on uint32 values < 4**half (numpy or jax arrays)."""
  mask = (1 << half) - 1
  left, right = x >> half, x & mask
  for r in range(_ROUNDS):
    left, right = right, left ^ (_mix32(right ^ round_keys[r]) & mask)
  return (left << half) | right


def feistel_permute(key: jax.Array, index: jax.Array, n: int) -> jax.Array:
  """Maps `index` (int array, values in [0, n)) through a keyed bijection of [0, n)."""
  if n < 1:
    raise ValueError(f"feistel_permute needs n >= 1, got {n}")
  half = _half_bits(n)
  round_keys = jax.random.bits(key, (_ROUNDS,), jnp.uint32)
  encrypt = functools.partial(_encrypt, round_keys=round_keys, half=half)
  # Cycle-walking: re-encrypt values that land outside [0, n) until all are inside.
  x = encrypt(index.astype(jnp.uint32))
  x = jax.lax.while_loop(lambda v: jnp.any(v >= n),
                         lambda v: jnp.where(v >= n, encrypt(v), v), x)
  return x.astype(jnp.int32)


def feistel_permute_np(seed: int, epoch: int, index: np.ndarray, n: int) -> np.ndarray:
  """The same network on the host (round keys from numpy's Philox with (seed, epoch))."""
  if n < 1:
    raise ValueError(f"feistel_permute needs n >= 1, got {n}")
  half = _half_bits(n)
  round_keys = np.random.Generator(np.random.Philox(key=[seed, epoch])).integers(
      0, 2**32, _ROUNDS, dtype=np.uint32)
  with np.errstate(over="ignore"):
    x = _encrypt(np.asarray(index, np.uint32), round_keys, half)
    while np.any(x >= n):
      x = np.where(x >= n, _encrypt(x, round_keys, half), x)
  return x.astype(np.int64)


def steps_per_epoch(num_examples: int, batch_size: int) -> int:
  if batch_size < 1 or batch_size > num_examples:
    raise ValueError(f"batch_size={batch_size} must be in [1, {num_examples}] "
                     f"(the number of training examples)")
  return num_examples // batch_size


def batch_indices(key: jax.Array, step: jax.Array, num_examples: int,
                  batch_size: int) -> jax.Array:
  """Example indices of the batch at `step` for data-order `key` (int32 [batch_size])."""
  per_epoch = steps_per_epoch(num_examples, batch_size)
  epoch = step // per_epoch
  position = step % per_epoch
  slots = position * batch_size + jnp.arange(batch_size, dtype=jnp.int32)
  return feistel_permute(jax.random.fold_in(key, epoch), slots, num_examples)
