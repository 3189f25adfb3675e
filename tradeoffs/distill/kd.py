"""Knowledge distillation with a temperature (Hinton et al., 2015), the usual convention.

Per example, with p^T = softmax(z / T):

    kd_loss = CE(y, softmax(s)) + w · T² · KL(p^T_teacher ‖ p^T_student)

The T² factor keeps the gradient of the soft term on the scale of the hard term as T
changes (Hinton et al. §2); `w` (default 1) weights the soft term, so w = 1 is the plain sum
"T²·KL + CE". The KL is Σ_j p_t,j (log p_t,j − log p_s,j) in nats; the teacher's
probabilities are constants (no gradient flows into the teacher).
"""

from __future__ import annotations

import math
from typing import Any

import jax
import jax.numpy as jnp


def check_temperature(temperature: Any) -> float:
  t = float(temperature)
  if not (math.isfinite(t) and t > 0):
    raise ValueError(f"temperature={temperature!r} must be a finite number > 0")
  return t


def distillation_kl(teacher_logits: jax.Array, student_logits: jax.Array,
                    temperature: float) -> jax.Array:
  """T²·KL(softmax(t/T) ‖ softmax(s/T)) per example [...]."""
  t = float(temperature)
  log_pt = jax.nn.log_softmax(jax.lax.stop_gradient(teacher_logits).astype(jnp.float32) / t)
  log_ps = jax.nn.log_softmax(student_logits.astype(jnp.float32) / t)
  return t * t * jnp.sum(jnp.exp(log_pt) * (log_pt - log_ps), axis=-1)


def kd_loss(student_logits: jax.Array, teacher_logits: jax.Array, labels: jax.Array,
            temperature: float, weight: float = 1.0) -> jax.Array:
  """CE(y, s) + weight·T²·KL(softmax(t/T) ‖ softmax(s/T)), per example [...]."""
  log_ps = jax.nn.log_softmax(student_logits.astype(jnp.float32))
  ce = -jnp.take_along_axis(log_ps, labels[..., None].astype(jnp.int32), axis=-1)[..., 0]
  return ce + weight * distillation_kl(teacher_logits, student_logits, temperature)
