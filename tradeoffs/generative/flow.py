"""A RealNVP-style normalizing flow (Dinh et al. 2017) over flattened images, and bits
per dimension under uniform dequantization.

The flow maps w ∈ R^D to z = f(w) through `layers` affine couplings; coupling l keeps the
coordinates of one parity (even indices for even l, odd for odd l) and transforms the
others as x ← x·exp(s(x_kept)) + t(x_kept), s = tanh(·) (bounded scales), so
log|det ∂f/∂w| = Σ_l Σ_transformed s. The base density is N(0, I).

Images in [0, 1] with `levels` grey levels are uniformly dequantized,
y = (x·(levels − 1) + u) / levels with u ~ U[0, 1)^D, mapped into R^D by the logit
transform w = logit(α + (1 − 2α)·y), and scored as

    bits/dim = (−log p_Y(y) + D·log(levels)) / (D·ln 2)

(the bound −log P(x) ≤ E_u[−log p_Y(y)] + D·log(levels) of Theis et al. 2016).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

ALPHA = 1e-3  # keeps the logit transform away from 0 and 1


def check_levels(levels: Any, name: str = "levels") -> int:
  if isinstance(levels, bool) or not isinstance(levels, int) or levels < 2:
    raise ValueError(f"{name}={levels!r}: the number of grey levels is an integer >= 2")
  return levels


def standard_normal_log_prob(z: jax.Array) -> jax.Array:
  """log N(z; 0, I) summed over the last axis."""
  return -0.5 * jnp.sum(jnp.square(z) + math.log(2 * math.pi), axis=-1)


def logit_transform(y: jax.Array, alpha: float = ALPHA) -> tuple[jax.Array, jax.Array]:
  """(w, log|dw/dy| summed over the last axis) for w = logit(α + (1 − 2α)·y)."""
  s = alpha + (1 - 2 * alpha) * y
  w = jnp.log(s) - jnp.log1p(-s)
  logdet = jnp.sum(math.log(1 - 2 * alpha) - jnp.log(s) - jnp.log1p(-s), axis=-1)
  return w, logdet


class _Coupling(nn.Module):
  dim: int
  hidden: int
  parity: int

  @nn.compact
  def __call__(self, x: jax.Array) -> tuple[jax.Array, jax.Array]:
    keep = (jnp.arange(self.dim) % 2 == self.parity).astype(x.dtype)
    h = x * keep
    h = nn.relu(nn.Dense(self.hidden, name="hidden_0")(h))
    h = nn.relu(nn.Dense(self.hidden, name="hidden_1")(h))
    # Zero-initialised outputs: the flow starts as the identity.
    s = jnp.tanh(nn.Dense(self.dim, kernel_init=nn.initializers.zeros, name="scale")(h))
    t = nn.Dense(self.dim, kernel_init=nn.initializers.zeros, name="shift")(h)
    s, t = s * (1 - keep), t * (1 - keep)
    return x * jnp.exp(s) + t, jnp.sum(s, axis=-1)


class RealNVP(nn.Module):
  """`__call__(w [B, D]) -> (z [B, D], log|det ∂z/∂w| [B])`."""
  dim: int
  layers: int = 4
  hidden: int = 64

  @nn.compact
  def __call__(self, w: jax.Array) -> tuple[jax.Array, jax.Array]:
    if w.shape[-1] != self.dim:
      raise ValueError(f"input has {w.shape[-1]} dimensions; the flow was built for {self.dim}")
    logdet = jnp.zeros(w.shape[:-1], jnp.float32)
    for l in range(self.layers):
      w, ld = _Coupling(self.dim, self.hidden, l % 2, name=f"coupling_{l}")(w)
      logdet = logdet + ld
    return w, logdet

  def log_prob(self, w: jax.Array) -> jax.Array:
    z, logdet = self(w)
    return standard_normal_log_prob(z) + logdet


def dequantized_bits_per_dim(log_density: jax.Array, dim: int, levels: int) -> jax.Array:
  """Bits per dimension of discrete data from the log-density of its dequantized version
  y ∈ [0, 1]^D: (−log p_Y(y) + D·log(levels)) / (D·ln 2)."""
  check_levels(levels)
  return (-log_density + dim * math.log(levels)) / (dim * math.log(2.0))


def bits_per_dim(flow: RealNVP, params: Any, images: jax.Array, *, levels: int,
                 key: jax.Array | None = None) -> jax.Array:
  """Bits per dimension of each image [B, ...] with values in [0, 1] under the flow
  (uniform dequantization noise from `key`; None: the bin centres, u = 1/2). Continuous
  inputs (a simplifier's output) are scored the same way: the density of their bin.
  Differentiable in `images` and `params`."""
  check_levels(levels)
  x = jnp.reshape(images, (images.shape[0], -1)).astype(jnp.float32)
  u = (jnp.full_like(x, 0.5) if key is None else jax.random.uniform(key, x.shape))
  y = jnp.clip((x * (levels - 1) + u) / levels, 0.0, 1.0)
  w, logit_logdet = logit_transform(y)
  log_density = flow.apply({"params": params}, w, method=RealNVP.log_prob) + logit_logdet
  return dequantized_bits_per_dim(log_density, x.shape[-1], levels)


def fit(flow: RealNVP, images: Any, *, levels: int, steps: int, batch_size: int,
        learning_rate: float, seed: int) -> tuple[Any, list[float]]:
  """Maximum-likelihood training of `flow` on images [N, ...] in [0, 1] (Adam, batches and
  dequantization noise a function of `seed` and the step, one compiled scan). Returns
  (params, mean bits/dim of each tenth of the steps)."""
  import optax  # Only the fit needs it.

  check_levels(levels)
  x = jnp.reshape(jnp.asarray(images, jnp.float32), (len(images), -1))
  key = jax.random.key(seed)
  params = flow.init(key, x[:1])["params"]
  tx = optax.adam(learning_rate)

  def step(carry, i):
    params, opt = carry
    k_batch, k_noise = jax.random.split(jax.random.fold_in(key, i))
    batch = x[jax.random.randint(k_batch, (batch_size,), 0, x.shape[0])]
    loss, grads = jax.value_and_grad(
        lambda p: bits_per_dim(flow, p, batch, levels=levels, key=k_noise).mean())(params)
    updates, opt = tx.update(grads, opt, params)
    return (optax.apply_updates(params, updates), opt), loss

  (params, _), losses = jax.jit(lambda p: jax.lax.scan(
      step, (p, tx.init(p)), jnp.arange(steps)))(params)
  tenths = [float(c.mean()) for c in jnp.array_split(losses, min(10, steps))]
  return params, tenths
