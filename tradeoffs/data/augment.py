"""Keyed, pure image augmentations over a batch [B, H, W, C] (jit- and vmap-able).

Each takes `(key, images)` and returns images of the same shape; per-example randomness is
drawn from `key`, so a population member's augmentation is a function of its own key.
"""

from __future__ import annotations

import dataclasses
import inspect
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

Augment = Callable[[jax.Array, jax.Array], jax.Array]


def random_flip(key: jax.Array, images: jax.Array) -> jax.Array:
  """Mirrors each image left–right with probability 1/2."""
  flip = jax.random.bernoulli(key, 0.5, (images.shape[0],))
  return jnp.where(flip[:, None, None, None], images[:, :, ::-1, :], images)


def pad_and_crop(key: jax.Array, images: jax.Array, pad: int = 4,
                 mode: str = "constant") -> jax.Array:
  """Pads by `pad` pixels (zeros or 'reflect') and crops back at a random offset."""
  batch, height, width, _ = images.shape
  padded = jnp.pad(images, ((0, 0), (pad, pad), (pad, pad), (0, 0)), mode=mode)
  offsets = jax.random.randint(key, (batch, 2), 0, 2 * pad + 1)

  def crop(image, offset):
    return jax.lax.dynamic_slice(image, (offset[0], offset[1], 0),
                                 (height, width, image.shape[-1]))

  return jax.vmap(crop)(padded, offsets)


def random_erasing(key: jax.Array, images: jax.Array, size: int = 8,
                   probability: float = 0.5) -> jax.Array:
  """Zeroes a random `size`×`size` square in each image with the given probability."""
  batch, height, width, _ = images.shape
  k_apply, k_pos = jax.random.split(key)
  apply = jax.random.bernoulli(k_apply, probability, (batch,))
  top = jax.random.randint(k_pos, (batch,), 0, max(1, height - size + 1))
  left = jax.random.randint(jax.random.fold_in(k_pos, 1), (batch,), 0,
                            max(1, width - size + 1))
  rows = jnp.arange(height)[None, :, None]
  cols = jnp.arange(width)[None, None, :]
  inside = ((rows >= top[:, None, None]) & (rows < top[:, None, None] + size)
            & (cols >= left[:, None, None]) & (cols < left[:, None, None] + size))
  erase = (inside & apply[:, None, None])[..., None]
  return jnp.where(erase, 0.0, images)


AUGMENTATIONS: dict[str, Callable[..., jax.Array]] = {
    "flip": random_flip,
    "pad_crop": pad_and_crop,
    "erase": random_erasing,
}


@dataclasses.dataclass(frozen=True)
class Composed:
  """Named augmentations applied in order, each with its own fold of the key.

  A value (equal and hashable by names and kwargs, not by identity), so two step configs
  built from the same augmentation settings are equal and share their compiled step.
  """
  steps: tuple[tuple[str, tuple[tuple[str, Any], ...]], ...]

  def __call__(self, key: jax.Array, images: jax.Array) -> jax.Array:
    for i, (name, kwargs) in enumerate(self.steps):
      images = AUGMENTATIONS[name](jax.random.fold_in(key, i), images, **dict(kwargs))
    return images


def make_augment(names: Sequence[str], **kwargs) -> Augment | None:
  """Composes named augmentations; `kwargs` go to those that accept them (e.g. pad=4)."""
  names = [n for n in ([names] if isinstance(names, str) else names) if n]
  unknown = [n for n in names if n not in AUGMENTATIONS]
  if unknown:
    raise ValueError(f"unknown augmentation(s) {unknown}; choose from {sorted(AUGMENTATIONS)}")
  if not names:
    return None
  steps = []
  for name in names:
    accepted = inspect.signature(AUGMENTATIONS[name]).parameters
    steps.append((name, tuple(sorted((k, v) for k, v in kwargs.items() if k in accepted))))
  return Composed(tuple(steps))
