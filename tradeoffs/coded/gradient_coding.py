"""Gradient coding (Tandon, Lei, Dimakis, Karampatziakis, 2017).

The data is split into m partitions; worker i holds the partitions in the support of row
i of B in R^{m x m} (s+1 of them) and sends sum_j B_ij g_j. From any m - s workers F the
master finds a with B_F^T a = 1 and recovers sum_j g_j exactly. Schemes (`GRADIENT_CODES`):
  fractional_repetition  (s+1) | m; groups of s+1 workers share the same s+1 partitions
                         and each sends their sum.
  cyclic                 worker i holds partitions i..i+s (mod m); B from Tandon et al.'s
                         Algorithm 2 (a random H in R^{s x m} with H 1 = 0; every row of B
                         is in null(H), so any m-s rows span it and contain 1).
Decoding (`decode_weights`) is a masked minimum-norm least-squares solve, jit-able, as in
the reference code's `lstsq(B[completed].T, ones)`.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def check_stragglers(num_workers: int, num_stragglers: int, arg: str = "num_stragglers") -> None:
  if not 0 <= num_stragglers < num_workers:
    raise ValueError(f"{arg}={num_stragglers} is not allowed with num_workers={num_workers}: "
                     f"a gradient code tolerates 0 <= s < m stragglers")


def fractional_repetition(num_workers: int, num_stragglers: int, key: Array | None = None) -> Array:
  """B for the fractional repetition code; needs (s+1) dividing m."""
  del key
  m, s = num_workers, num_stragglers
  check_stragglers(m, s)
  if m % (s + 1):
    raise ValueError(f"num_stragglers={s} with num_workers={m}: fractional repetition needs "
                     f"(s+1) to divide m; allowed s: {[t for t in range(m) if m % (t + 1) == 0]}")
  group = np.arange(m) // (s + 1)
  return jnp.asarray((group[:, None] == group[None, :]).astype(np.float32))


def cyclic(num_workers: int, num_stragglers: int, key: Array | None = None) -> Array:
  """B for the cyclic repetition code (Tandon et al., Algorithm 2), seeded by key."""
  m, s = num_workers, num_stragglers
  check_stragglers(m, s)
  if s == 0:
    return jnp.eye(m, dtype=jnp.float32)
  seed = 0 if key is None else int(jax.random.randint(key, (), 0, 2**31 - 1))
  rng = np.random.default_rng(seed)
  h = rng.standard_normal((s, m))
  h[:, -1] = -h[:, :-1].sum(axis=1)  # H 1 = 0, so 1 is in null(H).
  b = np.zeros((m, m))
  for i in range(m):
    support = [(i + j) % m for j in range(s + 1)]
    b[i, support[0]] = 1.0
    # Solve H[:, rest] x = -H[:, first] so the row lies in null(H).
    b[i, support[1:]] = np.linalg.solve(h[:, support[1:]], -h[:, support[0]])
  return jnp.asarray(b, jnp.float32)


GRADIENT_CODES: dict[str, Callable[..., Array]] = {
    "fractional_repetition": fractional_repetition,
    "cyclic": cyclic,
}


def register_gradient_code(name: str, build: Callable[..., Array]) -> None:
  """Adds `build(num_workers, num_stragglers, key) -> B [m, m]`."""
  GRADIENT_CODES[name] = build


def gradient_code(name: str, num_workers: int, num_stragglers: int,
                  key: Array | None = None) -> Array:
  if name not in GRADIENT_CODES:
    raise ValueError(f"gradient_coding.code={name!r} is not known; valid: {sorted(GRADIENT_CODES)}")
  return GRADIENT_CODES[name](num_workers, num_stragglers, key)


def decode_weights(b: Array, received: Array) -> Array:
  """a [m] with a_i = 0 for missing workers and sum_i a_i B_i = 1 when decodable.

  The minimum-norm least-squares solution of (B^T diag(received)) a = 1 puts zero weight
  on the zeroed (missing) columns, so one jit-able solve serves every straggler set.
  """
  masked = b.T * received.astype(b.dtype)[None, :]
  ones = jnp.ones((b.shape[1],), b.dtype)
  a = jnp.linalg.pinv(masked, rtol=1e-5) @ ones
  return a * received.astype(b.dtype)

