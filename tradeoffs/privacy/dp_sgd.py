"""DP-SGD (Abadi et al. 2016) as an optax transformation over per-example gradients.

    tx = privacy.dp_sgd(clip_norm=1.0, noise_multiplier=1.1, seed=0,
                        inner=optax.sgd(0.1))
    updates, state = tx.update(per_example_grads, state, params)   # grads [B, ...]

One step: every example's gradient (the pytree of leaves [B, ...], one row per example)
is clipped to L2 norm ≤ C over all its leaves together (g · min(1, C / ‖g‖)), the clipped
gradients are summed, Gaussian noise N(0, (σ·C)²) is added to every coordinate, and the
result is divided by the batch size B — the noisy mean, whose noise std is σ·C/B — and
handed to the inner optimizer (SGD, Adam, ...), which sees ordinary gradients.

Randomness: the noise key of a step is `fold_in(PRNGKey(seed), count)`, a pure function of
the transformation's seed and its own step counter, both in the optimizer state; a run
resumed from a checkpoint draws bitwise the same noise. In a population (the optimizer
state initialised under vmap), every member starts with the same seed: give each member its
own with `with_noise_seeds(opt_state, seeds)`.

In `tradeoffs.train`, the optimizer receives per-example gradients when a step extension
sets `per_example_grads=True` (`tradeoffs.train.extensions.StepExtension`).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax


def check_clip_norm(value: object, name: str = "clip_norm") -> float:
  if isinstance(value, bool) or not isinstance(value, (int, float, np.number)) or \
      not math.isfinite(float(value)) or float(value) <= 0:
    raise ValueError(f"{name}={value!r} must be a finite number > 0")
  return float(value)


def per_example_norms(grads: Any) -> jax.Array:
  """[B] L2 norm of each example's gradient over all leaves together."""
  leaves = jax.tree.leaves(grads)
  if not leaves:
    raise ValueError("per_example_norms: the gradient pytree has no leaves")
  squares = [jnp.sum(jnp.reshape(g, (g.shape[0], -1)).astype(jnp.float32) ** 2, axis=1)
             for g in leaves]
  return jnp.sqrt(sum(squares))


def clip_per_example(grads: Any, clip_norm: float) -> tuple[Any, jax.Array]:
  """(clipped gradients [B, ...], norms before clipping [B]): g · min(1, C / ‖g‖)."""
  norms = per_example_norms(grads)
  factor = jnp.minimum(1.0, clip_norm / jnp.maximum(norms, 1e-30))

  def scale(g):
    return (g * factor.reshape((-1,) + (1,) * (g.ndim - 1)).astype(g.dtype)).astype(g.dtype)

  return jax.tree.map(scale, grads), norms


class DpSgdState(NamedTuple):
  count: jax.Array  # int32: steps taken (the noise key's second half)
  seed: jax.Array   # int32: the noise seed


def noise_key(seed: jax.Array | int, count: jax.Array | int) -> jax.Array:
  """The step's noise key: a pure function of (seed, step)."""
  return jax.random.fold_in(jax.random.PRNGKey(seed), count)


def gaussian_noise(key: jax.Array, like: Any, std: jax.Array | float) -> Any:
  """N(0, std²) noise shaped like the pytree `like`: one draw of every coordinate at once,
  cut into the leaves in tree order. (One subkey per leaf would give each leaf its own
  threefry kernel: XLA:CPU took ~8× longer to compile that for a 6-leaf MLP.)

  >>> like = {"b": jnp.zeros(2), "w": jnp.zeros((2, 3))}
  >>> noise = gaussian_noise(jax.random.PRNGKey(0), like, 1.0)
  >>> flat = jax.random.normal(jax.random.PRNGKey(0), (8,))
  >>> bool(jnp.all(noise["b"] == flat[:2]))
  True
  >>> bool(jnp.all(noise["w"] == flat[2:].reshape(2, 3)))
  True
  """
  leaves, treedef = jax.tree.flatten(like)
  sizes = [int(np.prod(leaf.shape)) for leaf in leaves]
  draw = std * jax.random.normal(key, (sum(sizes),), jnp.float32)
  cuts = np.cumsum([0] + sizes)
  return jax.tree.unflatten(treedef, [draw[a:b].reshape(leaf.shape)
                                      for a, b, leaf in zip(cuts[:-1], cuts[1:], leaves)])


def dp_aggregate(clip_norm: float, noise_multiplier: float, seed: int = 0
                 ) -> optax.GradientTransformation:
  """Per-example gradients [B, ...] → their clipped, noised mean (see module docstring).

  `noise_multiplier` = 0 clips without noise (no privacy: ε = inf)."""
  clip_norm = check_clip_norm(clip_norm)
  if isinstance(noise_multiplier, bool) or not isinstance(
      noise_multiplier, (int, float, np.number)) or not math.isfinite(
          float(noise_multiplier)) or float(noise_multiplier) < 0:
    raise ValueError(f"noise_multiplier={noise_multiplier!r} must be a finite number >= 0")
  noise_multiplier = float(noise_multiplier)
  if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
    raise ValueError(f"seed={seed!r} must be an integer")
  seed = int(seed)

  def init(params):
    del params
    return DpSgdState(count=jnp.zeros((), jnp.int32), seed=jnp.asarray(seed, jnp.int32))

  def update(grads, state, params=None):
    del params
    leaves = jax.tree.leaves(grads)
    batch = leaves[0].shape[0]
    if any(leaf.ndim < 1 or leaf.shape[0] != batch for leaf in leaves):
      raise ValueError("dp_sgd expects per-example gradients with one leading batch axis "
                       "[B, ...] on every leaf (set per_example_grads=True on a step "
                       "extension)")
    clipped, _ = clip_per_example(grads, clip_norm)
    summed = jax.tree.map(lambda g: jnp.sum(g, axis=0), clipped)
    if noise_multiplier > 0:
      noise = gaussian_noise(noise_key(state.seed, state.count), summed,
                             noise_multiplier * clip_norm)
      summed = jax.tree.map(lambda s, z: s + z.astype(s.dtype), summed, noise)
    mean = jax.tree.map(lambda s: s / batch, summed)
    return mean, DpSgdState(count=state.count + 1, seed=state.seed)

  return optax.GradientTransformation(init, update)


def dp_sgd(clip_norm: float, noise_multiplier: float, seed: int = 0,
           inner: optax.GradientTransformation | None = None
           ) -> optax.GradientTransformation:
  """`dp_aggregate` followed by `inner` (default: the noisy mean gradient itself)."""
  aggregate = dp_aggregate(clip_norm, noise_multiplier, seed)
  return aggregate if inner is None else optax.chain(aggregate, inner)


def _is_dp_state(x: Any) -> bool:
  return isinstance(x, DpSgdState)


def with_noise_seeds(opt_state: Any, seeds: Any) -> Any:
  """`opt_state` with every `DpSgdState.seed` replaced by `seeds` (e.g. [M] per member of
  a population: seed + member index), placed like the seeds they replace."""
  def replace(x):
    if not _is_dp_state(x):
      return x
    new = jnp.asarray(seeds, jnp.int32).reshape(jnp.shape(x.seed))
    sharding = getattr(x.seed, "sharding", None)
    if sharding is not None:
      new = jax.device_put(new, sharding)
    return x._replace(seed=new)

  found = [x for x in jax.tree.leaves(opt_state, is_leaf=_is_dp_state) if _is_dp_state(x)]
  if not found:
    raise ValueError("with_noise_seeds: the optimizer state holds no dp_sgd state")
  return jax.tree.map(replace, opt_state, is_leaf=_is_dp_state)


def noise_seeds(opt_state: Any) -> list[Any]:
  """The seeds of every `DpSgdState` in `opt_state`."""
  return [x.seed for x in jax.tree.leaves(opt_state, is_leaf=_is_dp_state)
          if _is_dp_state(x)]
