"""The input-simplification objective (Schirrmeister et al. 2022; PAPERS.md §11):
L = CE(f(x̃), y) + λ·bits_G(x̃), with x̃ = s_φ(x) the simplified input and bits_G its bits
per dimension under the generative prior G."""

from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax


def check_lambda(value: Any, name: str = "lambda") -> float:
  """λ: a finite number >= 0 (0: no pressure to simplify), else a ValueError naming it."""
  ok = (not isinstance(value, bool) and isinstance(value, (int, float))
        and math.isfinite(float(value)) and float(value) >= 0)
  if not ok:
    raise ValueError(f"{name}={value!r}: the simplicity weight λ must be a finite number "
                     ">= 0")
  return float(value)


def objective(logits: jax.Array, labels: jax.Array, bits_per_dim: jax.Array,
              lam: float) -> tuple[jax.Array, dict[str, jax.Array]]:
  """(mean CE(f(x̃), y) + λ·mean bits/dim(x̃), its two terms) over a batch [B]."""
  lam = check_lambda(lam, "lam")
  ce = jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
      jnp.asarray(logits, jnp.float32), labels))
  bits = jnp.mean(bits_per_dim)
  return ce + lam * bits, {"cross_entropy": ce, "bits_per_dim": bits}


class Simplifier(nn.Module):
  """x̃ = sigmoid(4·(2x − 1) + g(x)) per pixel, g an MLP with a zero-initialised output:
  it starts close to the identity on [0, 1] images and can move any pixel anywhere."""
  hidden: Sequence[int] = (128,)

  @nn.compact
  def __call__(self, images: jax.Array) -> jax.Array:
    x = jnp.reshape(images, (images.shape[0], -1)).astype(jnp.float32)
    h = x
    for i, width in enumerate(self.hidden):
      h = nn.relu(nn.Dense(width, name=f"dense_{i}")(h))
    g = nn.Dense(x.shape[-1], kernel_init=nn.initializers.zeros, name="out")(h)
    return jnp.reshape(jax.nn.sigmoid(4.0 * (2.0 * x - 1.0) + g), images.shape)


def train_simplifiers(simplifier: Simplifier, classify: Callable[[Any, jax.Array], jax.Array],
                      classifier_params: Any, bits: Callable[[jax.Array, jax.Array], jax.Array],
                      images: Any, labels: Any, *, lam: float, steps: int, batch_size: int,
                      learning_rate: float, seed: int) -> Any:
  """One simplifier per classifier member (the classifiers fixed: post-hoc simplification),
  each trained with Adam on `objective` for `steps` batches; vmapped over members.

  classify(params, x̃) -> logits; classifier_params: a pytree with a leading member axis;
  bits(x̃, key) -> bits/dim [B] under the prior. Returns simplifier params [M, ...].
  """
  lam = check_lambda(lam, "lam")
  images = jnp.asarray(images, jnp.float32)
  labels = jnp.asarray(labels)
  members = jax.tree.leaves(classifier_params)[0].shape[0]
  key = jax.random.key(seed)
  tx = optax.adam(learning_rate)

  def member(cls_params, member_key):
    params = simplifier.init(member_key, images[:1])["params"]

    def step(carry, i):
      params, opt = carry
      k_batch, k_noise = jax.random.split(jax.random.fold_in(member_key, i))
      idx = jax.random.randint(k_batch, (batch_size,), 0, images.shape[0])

      def loss(p):
        simple = simplifier.apply({"params": p}, images[idx])
        return objective(classify(cls_params, simple), labels[idx], bits(simple, k_noise),
                         lam)[0]

      grads = jax.grad(loss)(params)
      updates, opt = tx.update(grads, opt, params)
      return (optax.apply_updates(params, updates), opt), None

    (params, _), _ = jax.lax.scan(step, (params, tx.init(params)), jnp.arange(steps))
    return params

  keys = jax.random.split(key, members)
  return jax.jit(jax.vmap(member))(classifier_params, keys)
