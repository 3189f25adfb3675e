"""Bare JAX training loops the benchmarks measure the project against (no flags here, so
every benchmark binary can import them)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax


def bare_step_loop(net, tx, images, labels, steps, batch_size, augment_fn=None, seed=0):
  """One model trained by the usual bare loop: one jitted step per pre-batched device array
  (batch norm and augmentation handled as the project does). Returns a callable."""
  variables = net.init(jax.random.key(seed), jnp.zeros((1, *images.shape[1:])), train=False)
  params, stats = variables["params"], variables.get("batch_stats", {})
  rng = np.random.default_rng(seed)
  order = rng.integers(0, len(labels), (steps, batch_size))
  xs = [jax.device_put(images[i]) for i in order]
  ys = [jax.device_put(labels[i]) for i in order]

  def loss_fn(p, s, x, y, key):
    if augment_fn is not None:
      x = augment_fn(key, x)
    v = {"params": p, **({"batch_stats": s} if s else {})}
    if s:
      logits, updates = net.apply(v, x, train=True, mutable=["batch_stats"],
                                  rngs={"dropout": key})
      s = updates["batch_stats"]
    else:
      logits = net.apply(v, x, train=True, rngs={"dropout": key})
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
    return loss, s

  @functools.partial(jax.jit, donate_argnums=(0,))
  def step(carry, x, y, key):
    p, s, o = carry
    grads, s = jax.grad(loss_fn, has_aux=True)(p, s, x, y, key)
    updates, o = tx.update(grads, o, p)
    return optax.apply_updates(p, updates), s, o

  keys = [jax.random.key(i) for i in range(steps)]

  def run():
    carry = jax.tree.map(jnp.copy, (params, stats, tx.init(params)))
    for i in range(steps):
      carry = step(carry, xs[i], ys[i], keys[i])
    jax.block_until_ready(carry)

  return run
