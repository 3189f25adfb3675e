"""Encoding matrices for encoded distributed optimization (Karakus et al. 2017, 2019).

The data (X, y) with n rows is encoded as (SX, Sy) with S in R^{rows x n}, rows ~ beta*n,
and the encoded rows are split into m equal row blocks, one per worker. Every encoding is
normalised so that S^T S = beta*I exactly (uncoded, replication, Paley ETF, Hadamard with
all rows) or in expectation (Gaussian, subsampled Hadamard); the master then rescales the
k responding workers by 1/(eta*beta), eta = k/m, which is the block-RIP normalisation.

Kinds (the `ENCODINGS` registry):
  uncoded      identity, beta = 1.
  replication  [I; I; ...] (beta copies, beta an integer); consecutive worker blocks hold
               copy c of data partition p, so each partition lives on beta workers.
  gaussian     i.i.d. N(0, 1/n) entries.
  hadamard     subsampled randomized Hadamard transform sqrt(N/n) * P H D applied with a
               fast Walsh-Hadamard transform (O(N log N) per column, no dense matrix):
               D random signs, H the orthonormal N x N Sylvester Hadamard, N the next
               power of two >= rows; the n data rows go to n random positions of the
               length-N input (`hadamard_layout`) and P picks `rows` distinct rows.
  paley        Paley equiangular tight frame: for a prime q = 1 mod 4 the symmetric
               conference matrix C (C^2 = qI) gives the rank-(q+1)/2 projection
               (I + C/sqrt(q))/2; its q+1 rows, as vectors in R^{(q+1)/2}, form an ETF with
               coherence 1/sqrt(q) (the Welch bound). Needs n = (q+1)/2 and beta = 2.
"""

from __future__ import annotations

import functools
import math
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

Array = jax.Array


def fwht(x: Array) -> Array:
  """Unnormalised fast Walsh-Hadamard transform along axis 0 (Sylvester order).

  Equals `scipy.linalg.hadamard(N) @ x` for N = x.shape[0], a power of two, in
  O(N log N) per column: log2(N) butterfly stages, each a reshape and an add/subtract.

  >>> import numpy as np
  >>> import jax.numpy as jnp
  >>> np.asarray(fwht(jnp.array([1.0, 0.0, 0.0, 0.0]))).tolist()   # column 0 of H_4
  [1.0, 1.0, 1.0, 1.0]
  >>> np.asarray(fwht(jnp.array([1.0, 2.0, 3.0, 4.0]))).tolist()   # H_4 @ x
  [10.0, -2.0, -4.0, 0.0]
  """
  n = x.shape[0]
  if n < 1 or n & (n - 1):
    raise ValueError(f"fwht needs a power-of-two length along axis 0, got x.shape={x.shape}")
  rest = x.shape[1:]
  half = n // 2
  while half >= 1:
    blocks = x.reshape((n // (2 * half), 2, half) + rest)
    top, bottom = blocks[:, 0], blocks[:, 1]
    x = jnp.stack([top + bottom, top - bottom], axis=1).reshape((n,) + rest)
    half //= 2
  return x


def _is_prime(q: int) -> bool:
  if q < 2:
    return False
  return all(q % p for p in range(2, int(math.isqrt(q)) + 1))


def paley_sizes(limit: int = 200) -> list[int]:
  """The data sizes n = (q+1)/2 (q prime, q = 1 mod 4) that admit a Paley ETF.

  >>> paley_sizes(20)   # q = 5, 13, 17, 29, 37: n = (q+1)/2
  [3, 7, 9, 15, 19]
  """
  return [(q + 1) // 2 for q in range(5, 2 * limit) if q % 4 == 1 and _is_prime(q)
          and (q + 1) // 2 <= limit]


def paley_size_at_least(n: int) -> int:
  """The smallest Paley size >= n (pad the data with zero rows up to it)."""
  q = max(5, 2 * n - 1)
  while not (q % 4 == 1 and _is_prime(q)):
    q += 1
  return (q + 1) // 2


def conference_matrix(q: int) -> np.ndarray:
  """The symmetric Paley conference matrix of order q+1 (q prime, q = 1 mod 4)."""
  if not (q % 4 == 1 and _is_prime(q)):
    raise ValueError(f"conference_matrix needs a prime q = 1 mod 4, got q={q}")
  residues = {(i * i) % q for i in range(1, q)}
  chi = np.array([0] + [1 if r in residues else -1 for r in range(1, q)], dtype=np.int64)
  idx = np.arange(q)
  c = np.zeros((q + 1, q + 1), dtype=np.float64)
  c[0, 1:] = 1.0
  c[1:, 0] = 1.0
  c[1:, 1:] = chi[(idx[:, None] - idx[None, :]) % q]
  return c


@functools.lru_cache(maxsize=4)
def paley_frame(n: int) -> np.ndarray:
  """The Paley ETF S [2n, n] (float32, read-only), computed once per n.

  The eigh is O(q^3) (an 8,210 x 8,210 matrix for the default n = 4096 padded to 4105),
  and the frame is deterministic, so every scheme and straggler model shares one copy.
  """
  q = 2 * n - 1
  c = conference_matrix(q)
  projection = (np.eye(q + 1) + c / math.sqrt(q)) / 2.0
  eigvals, eigvecs = np.linalg.eigh(projection)
  basis = eigvecs[:, eigvals > 0.5]  # Orthonormal basis of the range (eigenvalue 1).
  # basis^T basis = I, so S = sqrt(2) * basis has S^T S = 2I = beta*I, rows = frame vectors.
  frame = (math.sqrt(2.0) * basis).astype(np.float32)
  frame.flags.writeable = False  # Shared by every caller.
  return frame


def _paley(n: int, rows: int, key: Array) -> Array:
  del key, rows  # Deterministic; rows = 2n is checked by `encoded_rows`.
  return jnp.asarray(paley_frame(n))


def _uncoded_apply(x: Array, rows: int, key: Array) -> Array:
  del rows, key
  return x


def _replication_apply(x: Array, rows: int, key: Array) -> Array:
  del key
  return jnp.concatenate([x] * (rows // x.shape[0]), axis=0)


def _gaussian_apply(x: Array, rows: int, key: Array) -> Array:
  n = x.shape[0]
  s = jax.random.normal(key, (rows, n), dtype=x.dtype) / math.sqrt(n)
  return s @ x


def hadamard_layout(n: int, rows: int, key: Array) -> tuple[int, Array, Array, Array]:
  """(N, columns [n], signs [n], picked rows [rows]) of the subsampled Hadamard encoding.

  S = sqrt(N/n) * H_N[picked][:, columns] * signs / sqrt(N): the data sit at n random
  distinct positions of the length-N transform (not the first n, where row i and row
  i + N/2 of H restricted to columns < N/2 coincide, so half the encoded rows would be
  copies up to sign), with random signs, and `rows` distinct transform rows are kept.
  """
  big_n = 1 << max(0, (max(rows, n) - 1).bit_length())  # Next power of two >= rows, n.
  sign_key, row_key, col_key = jax.random.split(key, 3)
  signs = jax.random.rademacher(sign_key, (n,), dtype=jnp.float32)
  columns = jax.random.permutation(col_key, big_n)[:n]
  picked = jax.random.permutation(row_key, big_n)[:rows]
  return big_n, columns, signs, picked


@functools.partial(jax.jit, static_argnums=1)
def _hadamard_apply(x: Array, rows: int, key: Array) -> Array:
  n = x.shape[0]
  big_n, columns, signs, picked = hadamard_layout(n, rows, key)
  signed = x * signs.astype(x.dtype).reshape((n,) + (1,) * (x.ndim - 1))
  padded = jnp.zeros((big_n,) + x.shape[1:], x.dtype).at[columns].set(signed)
  transformed = fwht(padded) / math.sqrt(big_n)  # Orthonormal H.
  return math.sqrt(big_n / n) * transformed[picked]


def _paley_apply(x: Array, rows: int, key: Array) -> Array:
  return _paley(x.shape[0], rows, key).astype(x.dtype) @ x


# name -> apply(x, rows, key) computing S @ x for x with n rows.
ENCODINGS: dict[str, Callable[[Array, int, Array], Array]] = {
    "uncoded": _uncoded_apply,
    "replication": _replication_apply,
    "gaussian": _gaussian_apply,
    "hadamard": _hadamard_apply,
    "paley": _paley_apply,
}


def register_encoding(name: str, apply: Callable[[Array, int, Array], Array]) -> None:
  """Adds an encoding `apply(x, rows, key) -> S @ x`, with S^T S ~ (rows/n) I.

  >>> import jax
  >>> import jax.numpy as jnp
  >>> register_encoding("negated_copies", lambda x, rows, key: -jnp.concatenate([x, x]))
  >>> encode("negated_copies", jnp.array([[1.0], [2.0]]), 2, jax.random.key(0)).ravel().tolist()
  [-1.0, -2.0, -1.0, -2.0]
  >>> del ENCODINGS["negated_copies"]
  """
  ENCODINGS[name] = apply


def _check_kind(kind: str, arg: str = "kind") -> None:
  if kind not in ENCODINGS:
    raise ValueError(f"{arg}={kind!r} is not a known encoding; valid: {sorted(ENCODINGS)}")


def encoded_rows(kind: str, n: int, beta: float, *, arg_prefix: str = "") -> int:
  """Rows of S for data with n rows at redundancy beta; validates the combination."""
  _check_kind(kind, f"{arg_prefix}kind")
  if not beta >= 1:
    raise ValueError(f"{arg_prefix}beta={beta} is not allowed: the redundancy must be >= 1")
  if n < 1:
    raise ValueError(f"n={n} is not allowed: the data needs at least one row")
  if kind == "uncoded":
    if beta != 1:
      raise ValueError(f"{arg_prefix}beta={beta} with kind='uncoded': uncoded means beta=1")
    return n
  if kind == "replication":
    if float(beta) != int(beta):
      raise ValueError(f"{arg_prefix}beta={beta} with kind='replication': the number of "
                       "copies must be an integer")
    return int(beta) * n
  if kind == "paley":
    if beta != 2:
      raise ValueError(f"{arg_prefix}beta={beta} with kind='paley': a Paley ETF has beta=2")
    if n not in paley_sizes(max(n, 3)):
      raise ValueError(
          f"n={n} with kind='paley': a Paley ETF needs n = (q+1)/2 for a prime q = 1 mod 4, "
          f"i.e. n in {paley_sizes(60)}...; the nearest allowed size above is "
          f"{paley_size_at_least(n)} (pad the data with zero rows)")
    return 2 * n
  return int(math.ceil(beta * n))


def encode(kind: str, x: Array, beta: float, key: Array) -> Array:
  """S @ x for the encoding `kind` at redundancy `beta` (x has n rows; any trailing dims).

  >>> import jax
  >>> import jax.numpy as jnp
  >>> x = jnp.array([[1.0, 2.0], [3.0, 4.0]])                        # n = 2 rows, d = 2
  >>> encode("replication", x, 2, jax.random.key(0)).tolist()        # [beta * n, d]
  [[1.0, 2.0], [3.0, 4.0], [1.0, 2.0], [3.0, 4.0]]
  >>> encode("gaussian", x, 1.5, jax.random.key(0)).shape            # ceil(1.5 * 2) rows
  (3, 2)
  """
  rows = encoded_rows(kind, x.shape[0], beta)
  return ENCODINGS[kind](jnp.asarray(x), rows, key)


def encoding_matrix(kind: str, n: int, beta: float, key: Array) -> Array:
  """The dense S in R^{rows x n} (for diagnostics and tests; `encode` never builds it).

  >>> import jax
  >>> import numpy as np
  >>> s = np.asarray(encoding_matrix("paley", 3, 2, jax.random.key(0)))   # [2n, n], q = 5
  >>> s.shape, bool(np.allclose(s.T @ s, 2 * np.eye(3), atol=1e-5))       # S^T S = beta I
  ((6, 3), True)
  >>> s = np.asarray(encoding_matrix("hadamard", 4, 2, jax.random.key(0)))  # all 8 rows of H_8
  >>> bool(np.allclose(s.T @ s, 2 * np.eye(4), atol=1e-5))
  True
  """
  return encode(kind, jnp.eye(n, dtype=jnp.float32), beta, key)


def split_blocks(encoded: Array, num_workers: int) -> Array:
  """Row blocks for m workers, [m, rows/m, ...]; zero rows pad rows up to a multiple of m.

  Zero rows contribute nothing to any worker's least-squares gradient.
  """
  if num_workers < 1:
    raise ValueError(f"num_workers={num_workers} is not allowed: need at least one worker")
  rows = encoded.shape[0]
  per_worker = -(-rows // num_workers)
  pad = per_worker * num_workers - rows
  if pad:
    encoded = jnp.concatenate(
        [encoded, jnp.zeros((pad,) + encoded.shape[1:], encoded.dtype)], axis=0)
  return encoded.reshape((num_workers, per_worker) + encoded.shape[1:])
