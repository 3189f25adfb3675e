"""The SupCon loss (pure jnp)."""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp


def check_temperature(value: Any, name: str = "temperature") -> float:
  """A temperature: a finite number > 0, else a ValueError naming `name`."""
  ok = (not isinstance(value, bool) and isinstance(value, (int, float))
        and math.isfinite(float(value)) and float(value) > 0)
  if not ok:
    raise ValueError(f"{name}={value!r}: a temperature must be a finite number > 0")
  return float(value)


def supcon_loss(embeddings: jax.Array, labels: jax.Array, *, temperature: float = 0.1,
                base_temperature: float = 0.07) -> jax.Array:
  """Per-anchor supervised contrastive loss L^sup_out (Khosla et al. 2020, eq. 2).

  Every row of `embeddings` [N, D] (all views of a batch, in any order) is an anchor i;
  its positives P(i) are the other rows with its label (the other views of the same image
  among them), its contrast set A(i) every other row. With z the L2-normalised rows,

      L_i = -(τ / τ_b) · 1/|P(i)| · Σ_{p ∈ P(i)} log( exp(z_i·z_p / τ)
                                                    / Σ_{a ∈ A(i)} exp(z_i·z_a / τ) )

  (τ = `temperature`, τ_b = `base_temperature`: the reference implementation's scaling).
  The batch loss is the mean over anchors. An anchor without positives (possible only with
  one view) contributes 0. Returns float32 [N].
  """
  z = jnp.asarray(embeddings, jnp.float32)
  labels = jnp.asarray(labels)
  if z.ndim != 2 or labels.shape != z.shape[:1]:
    raise ValueError(f"embeddings {z.shape} and labels {labels.shape}: expected [N, D] "
                     "and [N]")
  z = z / jnp.maximum(jnp.linalg.norm(z, axis=-1, keepdims=True), 1e-12)
  n = z.shape[0]
  logits = z @ z.T / temperature
  not_self = ~jnp.eye(n, dtype=bool)
  # log-softmax over A(i) = all rows but i.
  log_denominator = jax.nn.logsumexp(jnp.where(not_self, logits, -jnp.inf), axis=1,
                                     keepdims=True)
  log_prob = logits - log_denominator
  positive = (labels[:, None] == labels[None, :]) & not_self
  count = jnp.sum(positive, axis=1)
  mean_log_prob = jnp.sum(jnp.where(positive, log_prob, 0.0), axis=1) / jnp.maximum(count, 1)
  return -(temperature / base_temperature) * mean_log_prob


@dataclasses.dataclass(frozen=True)
class SupConLoss:
  """`loss_fn(embeddings [V·B, D], labels [V·B]) -> [V·B]` for `StepConfig(views=V)`: the
  model's output is the projection; the step's mean over anchors is the SupCon loss.
  Frozen (hashable), so a step config holding it stays a static key of the compiled step.
  """
  temperature: float = 0.1
  base_temperature: float = 0.07

  def __post_init__(self):
    check_temperature(self.temperature, "temperature")
    check_temperature(self.base_temperature, "base_temperature")

  def __call__(self, embeddings: jax.Array, labels: jax.Array) -> jax.Array:
    return supcon_loss(embeddings, labels, temperature=self.temperature,
                       base_temperature=self.base_temperature)
