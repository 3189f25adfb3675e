"""The input-simplification objective (Schirrmeister et al. 2022; PAPERS.md §11):
L = CE(f(x̃), y) + λ·bits_G(x̃), with x̃ = s_φ(x) the simplified input and bits_G its bits
per dimension under the generative prior G."""

from __future__ import annotations

import math
from typing import Any

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
