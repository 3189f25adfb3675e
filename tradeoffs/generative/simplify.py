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
              lam: Any) -> tuple[jax.Array, dict[str, jax.Array]]:
  """(mean CE(f(x̃), y) + λ·mean bits/dim(x̃), its two terms) over a batch [B]. `lam` may
  be a traced scalar (one compiled trainer serves every λ); a Python number is checked."""
  if not isinstance(lam, jax.Array):
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


Trainer = Callable[[Any, Any, Any, Any, Any], tuple[Any, Any]]


def make_trainer(simplifier: Simplifier, classify: Callable[[Any, jax.Array], jax.Array],
                 bits: Callable[[jax.Array, jax.Array], jax.Array], *, steps: int,
                 batch_size: int, learning_rate: float,
                 classifier_tx: optax.GradientTransformation | None = None) -> Trainer:
  """A compiled trainer `(lam, classifier_params [M, ...], images, labels, key) ->
  (simplifier params [M, ...], classifier params [M, ...])`, vmapped over members: member m
  trains its own simplifier (Adam at `learning_rate`) on `objective` for `steps` batches.

  classifier_tx None: the classifiers stay fixed (post-hoc simplification, the paper's
  explanation setting) and are returned as given; else each member's classifier is trained
  jointly with its simplifier on the same loss, CE(f(s(x)), y) + λ·bits(s(x)), with
  `classifier_tx` (the paper's joint setting). λ is an argument, not a constant: one
  compile serves every λ. classify(params, x̃) -> logits; bits(x̃, key) -> bits/dim [B].
  Batches and dequantization noise are a function of the member's key and the step.
  """
  tx = optax.adam(learning_rate)
  joint = classifier_tx is not None

  def member(lam, cls_params, images, labels, member_key):
    params = simplifier.init(member_key, images[:1])["params"]
    trainable = (params, cls_params) if joint else params
    opt = ((tx.init(params), classifier_tx.init(cls_params)) if joint else tx.init(params))

    def step(carry, i):
      trainable, opt = carry
      k_batch, k_noise = jax.random.split(jax.random.fold_in(member_key, i))
      idx = jax.random.randint(k_batch, (batch_size,), 0, images.shape[0])

      def loss(t):
        p, c = t if joint else (t, cls_params)
        simple = simplifier.apply({"params": p}, images[idx])
        return objective(classify(c, simple), labels[idx], bits(simple, k_noise), lam)[0]

      grads = jax.grad(loss)(trainable)
      if joint:
        (gs, gc), (os_, oc) = grads, opt
        us, os_ = tx.update(gs, os_, trainable[0])
        uc, oc = classifier_tx.update(gc, oc, trainable[1])
        updates, opt = (us, uc), (os_, oc)
      else:
        updates, opt = tx.update(grads, opt, trainable)
      return (optax.apply_updates(trainable, updates), opt), None

    (trainable, _), _ = jax.lax.scan(step, (trainable, opt), jnp.arange(steps))
    return trainable if joint else (trainable, cls_params)

  run = jax.jit(jax.vmap(member, in_axes=(None, 0, None, None, 0)))

  def train(lam, classifier_params, images, labels, key):
    lam = check_lambda(lam, "lam")
    members = jax.tree.leaves(classifier_params)[0].shape[0]
    return run(jnp.float32(lam), classifier_params, jnp.asarray(images, jnp.float32),
               jnp.asarray(labels), jax.random.split(key, members))

  return train


def train_simplifiers(simplifier: Simplifier, classify: Callable[[Any, jax.Array], jax.Array],
                      classifier_params: Any, bits: Callable[[jax.Array, jax.Array], jax.Array],
                      images: Any, labels: Any, *, lam: float, steps: int, batch_size: int,
                      learning_rate: float, seed: int) -> Any:
  """One simplifier per fixed classifier member (post-hoc simplification; `make_trainer`
  without a classifier optimizer). Returns simplifier params [M, ...]."""
  lam = check_lambda(lam, "lam")
  trainer = make_trainer(simplifier, classify, bits, steps=steps, batch_size=batch_size,
                         learning_rate=learning_rate)
  return trainer(lam, classifier_params, images, labels, jax.random.key(seed))[0]
