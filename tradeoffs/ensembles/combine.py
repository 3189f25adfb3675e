"""Combining the members' outputs into one ensemble prediction.

Every combiner maps member logits [S, B, C] to ensemble scores [B, C] that act as
logits: softmax of them is the ensemble's distribution, argmax its prediction. Callers
keep the per-member logits themselves (the analyses need them).
"""

from __future__ import annotations

import math
from typing import Callable

import jax
import jax.numpy as jnp


def mean_logits(logits: jax.Array) -> jax.Array:
  """Mean of the members' logits (the paper's default).

  >>> import numpy as np
  >>> np.asarray(mean_logits(np.array([[[2.0, 0.0]], [[0.0, 1.0]]]))).tolist()   # [S=2, B=1, C=2]
  [[1.0, 0.5]]
  """
  return jnp.mean(logits, axis=0)


def mean_probs(logits: jax.Array) -> jax.Array:
  """log(mean_i softmax(logits_i)): log-probs of the averaged distribution.

  >>> import numpy as np
  >>> members = np.array([[[0.0, 0.0]], [[np.log(3.0), 0.0]]])   # S=2, B=1: p = (.5, .5), (.75, .25)
  >>> np.exp(np.asarray(mean_probs(members), np.float64)).round(4).tolist()   # mean distribution
  [[0.625, 0.375]]
  """
  log_probs = jax.nn.log_softmax(logits, axis=-1)
  return jax.nn.logsumexp(log_probs, axis=0) - math.log(logits.shape[0])


def geometric_mean_probs(logits: jax.Array) -> jax.Array:
  """Normalized geometric mean of the members' probabilities, as log-probs.

  mean_i log p_i renormalized over classes; this equals log_softmax(mean_i logits_i),
  so it ranks classes exactly like `mean_logits` but is a calibrated distribution.

  >>> import numpy as np
  >>> members = np.array([[[0.0, 0.0]], [[np.log(3.0), 0.0]]])   # S=2, B=1: p = (.5, .5), (.75, .25)
  >>> np.exp(np.asarray(geometric_mean_probs(members), np.float64)).round(4).tolist()
  [[0.634, 0.366]]
  >>> bool(np.allclose(geometric_mean_probs(members), jax.nn.log_softmax(mean_logits(members))))
  True
  """
  mean_log = jnp.mean(jax.nn.log_softmax(logits, axis=-1), axis=0)
  return jax.nn.log_softmax(mean_log, axis=-1)


def max_logits(logits: jax.Array) -> jax.Array:
  """Element-wise max over members of the logits (class c scores its most confident
  member's logit).

  >>> import numpy as np
  >>> np.asarray(max_logits(np.array([[[2.0, 0.0]], [[0.0, 1.0]]]))).tolist()
  [[2.0, 1.0]]
  """
  return jnp.max(logits, axis=0)


def max_probs(logits: jax.Array) -> jax.Array:
  """log of the element-wise max over members of the probabilities (not renormalized:
  softmax of the result renormalizes them).

  >>> import numpy as np
  >>> members = np.array([[[0.0, 0.0]], [[np.log(3.0), 0.0]]])   # S=2, B=1: p = (.5, .5), (.75, .25)
  >>> np.exp(np.asarray(max_probs(members), np.float64)).round(4).tolist()   # not renormalised
  [[0.75, 0.5]]
  """
  return jnp.max(jax.nn.log_softmax(logits, axis=-1), axis=0)


# Name -> fn(logits [S, B, C]) -> [B, C].
COMBINERS: dict[str, Callable[[jax.Array], jax.Array]] = {
    "mean_logits": mean_logits,
    "mean_probs": mean_probs,
    "geometric_mean_probs": geometric_mean_probs,
    "max_logits": max_logits,
    "max_probs": max_probs,
}


def get_combiner(mode: str) -> Callable[[jax.Array], jax.Array]:
  """The combiner registered as `mode` in `COMBINERS`: fn(logits [S, B, C]) -> [B, C].

  >>> get_combiner("mean_probs") is mean_probs
  True
  >>> get_combiner("median")
  Traceback (most recent call last):
  ...
  ValueError: combine mode 'median' is unknown; valid: [...]
  """
  if mode not in COMBINERS:
    raise ValueError(f"combine mode {mode!r} is unknown; valid: {sorted(COMBINERS)}")
  return COMBINERS[mode]


def check_logits(logits: jax.Array, name: str = "logits") -> None:
  """ValueError unless `logits` is [members, batch, classes]."""
  if jnp.ndim(logits) != 3:
    raise ValueError(f"{name} must have shape [members, batch, classes], got shape "
                     f"{jnp.shape(logits)}")


def combine(logits: jax.Array, mode: str = "mean_logits") -> jax.Array:
  """Ensemble scores [B, C] (logits or log-probs) from member logits [S, B, C].

  >>> import numpy as np
  >>> members = np.array([[[2.0, 0.0]], [[0.0, 1.0]]])          # S=2 members, B=1, C=2
  >>> np.asarray(combine(members, "mean_logits")).tolist()
  [[1.0, 0.5]]
  """
  fn = get_combiner(mode)
  check_logits(logits)
  return fn(logits)
