"""Per-example measures of a classifier's logits against the assigned labels (jit-able).

`example_measures(logits [..., C], labels [...])` returns, per example:
  loss     the softmax cross-entropy against the assigned label,
  p_true   the softmax probability of the assigned label ("true" = given, possibly noisy),
  margin   logit[assigned] − the largest other logit (the AUM margin, Pleiss et al. 2020),
  correct  argmax == assigned label.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

MEASURES = ("loss", "p_true", "margin", "correct")


def example_measures(logits: jax.Array, labels: jax.Array) -> dict[str, jax.Array]:
  logits = logits.astype(jnp.float32)
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  assigned = jnp.take_along_axis(log_probs, labels[..., None], axis=-1)[..., 0]
  assigned_logit = jnp.take_along_axis(logits, labels[..., None], axis=-1)[..., 0]
  num_classes = logits.shape[-1]
  others = jnp.where(jax.nn.one_hot(labels, num_classes, dtype=bool), -jnp.inf, logits)
  return {"loss": -assigned, "p_true": jnp.exp(assigned),
          "margin": assigned_logit - jnp.max(others, axis=-1),
          "correct": jnp.argmax(logits, axis=-1) == labels}
