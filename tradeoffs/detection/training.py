"""A compact jitted training loop for detectors (their loss is not the classifier
trainer's: targets are assigned from padded boxes inside the step).

    step = training.make_step(apply_fn, image_loss, tx)   # compiled once, reused per seed
    params, info = training.fit(params, step, tx, data, steps=300, batch_size=32, seed=0)

`image_loss(outputs_of_one_image, boxes, classes, valid) -> (loss, parts)` is vmapped over
the batch and averaged. Batches are a pure function of (seed, step): the step-th slice of
a seeded permutation per epoch. Seeds run one after another, not as a vmapped population:
these models are convolutions, and a vmapped convolution population runs ~3x slower on
XLA:CPU than its members one after another (the rule `tradeoffs.train.plan` applies:
CPU + convolutions -> a loop over members). No checkpoints: one fit is tens of seconds;
the study records each finished variant, so an interrupted run loses at most the
trainings of the variant in progress.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax


def batch_indices(seed: int, step: int, size: int, batch_size: int) -> np.ndarray:
  """Example indices of batch `step`: epochs are seeded permutations, a pure function of
  (seed, step)."""
  per_epoch = max(size // batch_size, 1)
  epoch, position = divmod(int(step), per_epoch)
  order = np.random.default_rng([int(seed), epoch]).permutation(size)
  return order[position * batch_size:(position + 1) * batch_size]


def make_step(apply_fn: Callable[[Any, Any], Any], image_loss: Callable[..., Any],
              tx: optax.GradientTransformation) -> Callable[..., Any]:
  """The jitted step (params, opt_state, images, boxes, classes, valid) ->
  (params, opt_state, loss, parts)."""

  def objective(params, images, boxes, classes, valid):
    outputs = apply_fn(params, images)
    losses, parts = jax.vmap(image_loss)(outputs, boxes, classes, valid)
    return jnp.mean(losses), jax.tree.map(jnp.mean, parts)

  @jax.jit
  def step(params, opt_state, images, boxes, classes, valid):
    (value, parts), grads = jax.value_and_grad(objective, has_aux=True)(
        params, images, boxes, classes, valid)
    updates, opt_state = tx.update(grads, opt_state, params)
    return optax.apply_updates(params, updates), opt_state, value, parts

  return step


def fit(params: Any, step_fn: Callable[..., Any], tx: optax.GradientTransformation,
        data: Any, *, steps: int, batch_size: int, seed: int) -> tuple[Any, dict[str, Any]]:
  """Trains `params` with `step_fn` (from `make_step` with the same `tx`) on `data` (a
  `synthetic.DetectionSet`) for `steps` steps; returns the params and {"loss": per-step
  losses, "seconds": wall time}."""
  if int(steps) < 1 or int(batch_size) < 1:
    raise ValueError(f"steps={steps!r}, batch_size={batch_size!r}: expected ints >= 1")
  opt_state = tx.init(params)
  losses = []
  start = time.time()
  for i in range(int(steps)):
    index = batch_indices(seed, i, len(data), int(batch_size))
    params, opt_state, value, _ = step_fn(params, opt_state, data.images[index],
                                          data.boxes[index], data.classes[index],
                                          data.valid[index])
    losses.append(value)
  losses = [float(v) for v in jax.device_get(losses)]
  if not np.isfinite(losses[-1]):
    raise FloatingPointError(f"detector training diverged (loss {losses[-1]}) at seed {seed}")
  return params, {"loss": losses, "seconds": time.time() - start}
