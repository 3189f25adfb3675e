"""Named, independent sources of randomness for a population.

Each source (init, data order, augmentation, dropout) has a base seed and either varies
per member (member i uses seed base + i, so member i of a population equals a single run
with seed base + i) or is shared by all members (everyone uses base).
"""

from __future__ import annotations

import dataclasses
import jax
import jax.numpy as jnp
import numpy as np

SOURCES = ("init", "data", "augment", "dropout")


@dataclasses.dataclass(frozen=True)
class Seeds:
  init: int = 0
  data: int = 0
  augment: int = 0
  dropout: int = 0
  vary: tuple[str, ...] = SOURCES

  def __post_init__(self):
    vary = (self.vary,) if isinstance(self.vary, str) else tuple(self.vary)
    vary = tuple(v.strip() for part in vary for v in part.split(",") if v.strip())
    unknown = [v for v in vary if v not in SOURCES]
    if unknown:
      raise ValueError(f"seeds.vary={self.vary!r} names unknown source(s) {unknown}; "
                       f"choose from {SOURCES}")
    object.__setattr__(self, "vary", vary)

  @classmethod
  def from_config(cls, config) -> "Seeds":
    return cls(init=int(config.init), data=int(config.data), augment=int(config.augment),
               dropout=int(config.dropout), vary=config.vary)

  def member_seeds(self, members: int) -> dict[str, np.ndarray]:
    offsets = np.arange(members)
    return {s: getattr(self, s) + (offsets if s in self.vary else 0 * offsets)
            for s in SOURCES}

  def member_keys(self, members: int) -> dict[str, jax.Array]:
    """Raw key data per source, shape [members, key_size] (default PRNG implementation)."""
    seeds = self.member_seeds(members)
    return {s: jnp.stack([jax.random.key_data(jax.random.key(int(v))) for v in seeds[s]])
            for s in SOURCES}


def wrap(raw_key: jax.Array) -> jax.Array:
  return jax.random.wrap_key_data(raw_key)


def describe(seeds: Seeds, members: int) -> dict[str, list[int]]:
  return {s: v.tolist() for s, v in seeds.member_seeds(members).items()}


def group_data_keys(state, group_size: int,
                    base_seed: int):
  """Member i draws batches with data seed base_seed + i // group_size: the S members of
  an ensemble see the same images in the same order, ensembles differ."""
  members = state.members
  if members % group_size:
    raise ValueError(f"population of {members} members is not a multiple of S={group_size}")
  seeds = base_seed + np.arange(members) // group_size
  keys = jnp.stack([jax.random.key_data(jax.random.key(int(s))) for s in seeds])
  keys = jax.device_put(keys, state.rngs["data"].sharding)
  return state.replace(rngs={**state.rngs, "data": keys})
