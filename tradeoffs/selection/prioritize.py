"""Loss-based example selection: which examples of a forward-passed batch are backpropagated.

Pure functions of arrays and keys, jit- and vmap-safe, fixed shapes throughout (the
backward batch has a static size `k`; a selection that keeps fewer examples pads with
weight-0 rows, one that keeps more drops the surplus):

  * Selective Backprop (Jiang et al. 2019; public code angelajiang/SelectiveBackprop,
    `lib/calculators.py` + `lib/hist.py`): every forward-passed loss joins a history of the
    last `history_size` (1,024) losses *before* the batch's probabilities are computed;
    example i is kept when a uniform draw is below
        P_i = max(floor, (percentile(ℓ_i) / 100) ** β),
    percentile(ℓ) = 100 · #{h in history : h < ℓ} / len(history) (strictly lower: ties
    do not count; a history shorter than `history_size` divides by its own length).
  * loss-proportional sampling: `k` draws with replacement, P(i) ∝ ℓ_i (prioritisation,
    not importance sampling: no 1/P correction).
  * uniform: `k` of the batch without replacement.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

HISTORY_SIZE = 1024  # Selective Backprop's default history of recent losses.


class LossHistory(NamedTuple):
  """A ring buffer of the most recent losses (one member's)."""
  losses: jax.Array  # float32 [H]; slots beyond `count` are unused
  count: jax.Array   # int32 scalar: losses appended so far (all time)


def empty_history(size: int = HISTORY_SIZE) -> LossHistory:
  if int(size) < 1:
    raise ValueError(f"a loss history holds >= 1 losses, got {size}")
  return LossHistory(jnp.zeros((int(size),), jnp.float32), jnp.zeros((), jnp.int32))


def push(history: LossHistory, losses: jax.Array) -> LossHistory:
  """Appends `losses` [B] in order; the oldest fall out once `H` are held."""
  size = history.losses.shape[0]
  losses = jnp.asarray(losses, jnp.float32).reshape(-1)
  kept = losses[-size:]  # Only the last H of a batch longer than the history survive.
  skipped = losses.shape[0] - kept.shape[0]
  slots = (history.count + skipped + jnp.arange(kept.shape[0])) % size
  return LossHistory(history.losses.at[slots].set(kept),
                     history.count + losses.shape[0])


def percentile_of_score(history: LossHistory, scores: jax.Array) -> jax.Array:
  """100 · (share of the held losses strictly below each score) [B]; 0 for an empty
  history."""
  size = history.losses.shape[0]
  held = jnp.minimum(history.count, size)
  valid = jnp.arange(size) < held
  below = jnp.sum(valid[None, :] & (history.losses[None, :] < scores[:, None]), axis=1)
  return 100.0 * below / jnp.maximum(held, 1)


def selective_backprop_probability(percentile: jax.Array, beta: float,
                                   floor: float = 0.0) -> jax.Array:
  """P = max(floor, (percentile / 100) ** β)."""
  return jnp.maximum(floor, (percentile / 100.0) ** beta)


def _first_selected(selected: jax.Array, k: int) -> tuple[jax.Array, jax.Array]:
  """Indices [k] of the first k selected examples in batch order (the batch is already a
  random sample, so these are a uniform subsample of the selected), padded with
  unselected ones at weight 0; weights [k] in {0, 1}."""
  order = jnp.argsort(~selected, stable=True)[:k]
  return order, selected[order].astype(jnp.float32)


def selective_backprop(key: jax.Array, history: LossHistory, losses: jax.Array, beta: float,
                       k: int, floor: float = 0.0
                       ) -> tuple[LossHistory, jax.Array, jax.Array, jax.Array]:
  """One Selective Backprop decision on a forward-passed batch `losses` [B].

  Returns (history with the batch appended, indices [k], weights [k], selected [B] bool).
  """
  history = push(history, losses)
  probability = selective_backprop_probability(percentile_of_score(history, losses), beta,
                                               floor)
  selected = jax.random.uniform(key, losses.shape) < probability
  indices, weights = _first_selected(selected, k)
  return history, indices, weights, selected


def loss_proportional(key: jax.Array, losses: jax.Array, k: int
                      ) -> tuple[jax.Array, jax.Array]:
  """`k` indices drawn with replacement with P(i) = ℓ_i / Σℓ (uniform if every loss is 0);
  weights all 1."""
  losses = jnp.maximum(jnp.asarray(losses, jnp.float32), 0.0)
  total = jnp.sum(losses)
  p = jnp.where(total > 0, losses / jnp.where(total > 0, total, 1.0),
                1.0 / losses.shape[0])
  indices = jax.random.choice(key, losses.shape[0], (k,), replace=True, p=p)
  return indices, jnp.ones((k,), jnp.float32)


def uniform(key: jax.Array, batch: int, k: int) -> tuple[jax.Array, jax.Array]:
  """`k` of `batch` indices without replacement; weights all 1."""
  return jax.random.permutation(key, batch)[:k], jnp.ones((k,), jnp.float32)
