"""Gradient coding (Tandon, Lei, Dimakis, Karampatziakis, 2017).

The data is split into m partitions; worker i holds the partitions in the support of row
i of B in R^{m x m} (s+1 of them) and sends sum_j B_ij g_j. From any m - s workers F the
master finds a with B_F^T a = 1 and recovers sum_j g_j exactly. Schemes (`GRADIENT_CODES`):
  fractional_repetition  (s+1) | m; groups of s+1 workers share the same s+1 partitions
                         and each sends their sum.
  cyclic                 worker i holds partitions i..i+s (mod m); B from Tandon et al.'s
                         Algorithm 2 (a random H in R^{s x m} with H 1 = 0; every row of B
                         is in null(H), so any m-s rows span it and contain 1).
Decoding (`decode_weights`) is the reference code's `lstsq(B[completed].T, ones)`, done
on the host in float64 (the weights depend only on which workers answered, not on w).
B is stored in float32 (what the workers multiply by), and a random cyclic B_F can be so
ill-conditioned (cond up to ~1e8 at m = 12) that B_F^T a = 1 has no accurate solution for
the rounded B. So the decoder checks the residual: `decode_weights` raises
`NotDecodableError` when ||B_F^T a - 1|| / sqrt(m) > `DECODE_TOLERANCE`, and
`wait_until_decodable` is the fallback the simulator and executors use: the master waits
for the next-fastest worker until the responders decode (all m always do for these codes).
"""

from __future__ import annotations

from typing import Callable, Sequence

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
  """Adds `build(num_workers, num_stragglers, key) -> B [m, m]`.

  >>> import jax.numpy as jnp
  >>> register_gradient_code("all_partitions", lambda m, s, key: jnp.ones((m, m)))
  >>> gradient_code("all_partitions", 3, 2).tolist()
  [[1.0, 1.0, 1.0], [1.0, 1.0, 1.0], [1.0, 1.0, 1.0]]
  >>> del GRADIENT_CODES["all_partitions"]
  """
  GRADIENT_CODES[name] = build


def gradient_code(name: str, num_workers: int, num_stragglers: int,
                  key: Array | None = None) -> Array:
  """B [m, m] float32 of the gradient code `name` ('fractional_repetition', 'cyclic' or a
  registered one) for m = num_workers tolerating s = num_stragglers; ValueError if unknown.

  >>> import numpy as np
  >>> b = gradient_code("fractional_repetition", 4, 1)   # groups {0, 1}, {2, 3}
  >>> np.asarray(b).astype(int).tolist()
  [[1, 1, 0, 0], [1, 1, 0, 0], [0, 0, 1, 1], [0, 0, 1, 1]]
  >>> b = np.asarray(gradient_code("cyclic", 4, 1), np.float64)   # worker i: partitions i, i+1
  >>> (b != 0).astype(int).tolist()
  [[1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1], [1, 0, 0, 1]]
  """
  if name not in GRADIENT_CODES:
    raise ValueError(f"gradient_coding.code={name!r} is not known; valid: {sorted(GRADIENT_CODES)}")
  return GRADIENT_CODES[name](num_workers, num_stragglers, key)


# Relative residual above which a responder set counts as not decodable. With float32
# messages, accepted sets decode every pattern of m <= 12 (both codes) to <~1e-4 relative.
DECODE_TOLERANCE = 1e-5


class NotDecodableError(ValueError):
  """The responders' rows of B do not (numerically) span the all-ones vector."""


def solve_weights(b, received) -> tuple[np.ndarray, float]:
  """(a [m], relative residual ||B_F^T a - 1|| / sqrt(m)), float64 least squares on the host."""
  b = np.asarray(b, np.float64)
  received = np.asarray(received, bool)
  if received.shape != b.shape[:1]:
    raise ValueError(f"received has shape {received.shape}; allowed: [num_workers={b.shape[0]}]")
  ones = np.ones(b.shape[1])
  a = np.zeros(b.shape[0])
  if not received.any():
    return a, 1.0
  rows = b[received]
  a[received] = np.linalg.lstsq(rows.T, ones, rcond=None)[0]
  return a, float(np.linalg.norm(rows.T @ a[received] - ones) / np.sqrt(b.shape[1]))


def decode_weights(b, received, tol: float = DECODE_TOLERANCE) -> np.ndarray:
  """a [m] (float64 numpy) with a_i = 0 for missing workers and sum_i a_i B_i = 1.

  Raises NotDecodableError when the residual exceeds `tol` instead of returning weights
  that would silently give a wrong gradient.
  """
  a, residual = solve_weights(b, received)
  if not residual <= tol:
    missing = np.flatnonzero(~np.asarray(received, bool)).tolist()
    raise NotDecodableError(
        f"gradient code cannot decode without workers {missing}: relative residual "
        f"{residual:.2e} > tolerance {tol:g} (B_F is ill-conditioned); wait for more workers")
  return a


def wait_until_decodable(b, arrival_order: Sequence[int], k: int,
                         tol: float = DECODE_TOLERANCE) -> np.ndarray:
  """Responder mask: the first k workers of `arrival_order`, plus the next ones until decodable."""
  m = np.asarray(b).shape[0]
  received = np.zeros(m, bool)
  received[list(arrival_order[:k])] = True
  for extra in list(arrival_order[k:]) + [None]:
    if solve_weights(b, received)[1] <= tol:
      return received
    if extra is None:
      break
    received[extra] = True
  raise NotDecodableError(f"gradient code does not decode even from all {m} workers "
                          f"(tolerance {tol:g})")
