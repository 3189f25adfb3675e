"""Convergence diagnostics: block-RIP spectrum, suboptimality, error floor, time to eps.

Two readings of "time to epsilon": `time_to_epsilon` is the first time the error dips to
epsilon; `time_to_stay_below` the time after which it never exceeds epsilon again (within
the run), which is what a scheme with a noisy floor near epsilon actually delivers.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tradeoffs.coded import encoding as encoding_lib

Array = jax.Array


def block_rip_spectrum(s: Array, num_workers: int, k: int, key: Array,
                       num_sets: int = 64) -> dict[str, Array]:
  """Eigenvalues of (1/(eta beta)) S_A^T S_A over sampled worker sets A with |A| = k.

  S's rows are split into m consecutive blocks (zero-padded as `split_blocks` does);
  beta = rows/n and eta = k/m. Returns the per-set min and max eigenvalue and
  epsilon = max |lambda - 1|, the block-RIP constant over the sampled sets.

  >>> import jax, jax.numpy as jnp
  >>> spectrum = block_rip_spectrum(jnp.eye(4), num_workers=2, k=2, key=jax.random.key(0))
  >>> float(spectrum["epsilon"])       # all blocks received: S^T S = I, no distortion
  0.0
  """
  rows, n = s.shape
  per_worker = -(-rows // num_workers)
  padded = jnp.zeros((per_worker * num_workers, n), s.dtype).at[:rows].set(s)
  blocks = padded.reshape(num_workers, per_worker, n)
  scale = num_workers / (k * rows / n)

  def one(set_key):
    chosen = jax.random.permutation(set_key, num_workers) < k
    kept = blocks * chosen[:, None, None]
    gram = jnp.einsum("mrn,mrp->np", kept, kept) * scale
    return jnp.linalg.eigvalsh(gram)

  eigs = jax.vmap(one)(jax.random.split(key, num_sets))
  return dict(min=eigs[:, 0], max=eigs[:, -1],
              epsilon=jnp.max(jnp.maximum(1.0 - eigs[:, 0], eigs[:, -1] - 1.0)))


def coherence(s: Array) -> Array:
  """Max |<s_i, s_j>| / (|s_i||s_j|) over distinct rows of S.

  >>> import jax.numpy as jnp
  >>> float(coherence(jnp.eye(3)))                  # orthogonal columns
  0.0
  >>> round(float(coherence(jnp.array([[1.0, 1.0], [0.0, 1.0]]))), 4)
  0.7071
  """
  unit = s / jnp.linalg.norm(s, axis=1, keepdims=True)
  gram = jnp.abs(unit @ unit.T)
  return jnp.max(gram - jnp.eye(s.shape[0]) * gram)


def welch_bound(num_vectors: int, dim: int) -> float:
  """Lowest possible coherence of num_vectors unit vectors in R^dim.

  >>> round(welch_bound(num_vectors=4, dim=2), 4)   # sqrt((4 - 2) / (2 * (4 - 1)))
  0.5774
  """
  return float(np.sqrt((num_vectors - dim) / (dim * (num_vectors - 1))))


def relative_suboptimality(suboptimality: np.ndarray, optimum_value: float) -> np.ndarray:
  """f(w_t) - f* over |f*| (elementwise, any shape; f* = 0 counts as 1e-30).

  >>> import numpy as np
  >>> relative_suboptimality(np.array([2.0, 1.5]), optimum_value=1.0).tolist()
  [2.0, 1.5]
  """
  return np.asarray(suboptimality) / max(abs(optimum_value), 1e-30)


def time_to_epsilon(times: np.ndarray, suboptimality: np.ndarray, epsilon: float) -> float:
  """First time the suboptimality is <= epsilon (inf when never).

  >>> import numpy as np
  >>> times, gap = np.arange(1.0, 7.0), np.array([1.0, 0.5, 0.05, 0.2, 0.01, 0.01])
  >>> time_to_epsilon(times, gap, 0.1)     # first time below
  3.0
  """
  hit = np.flatnonzero(np.asarray(suboptimality) <= epsilon)
  return float(np.asarray(times)[hit[0]]) if hit.size else float("inf")


def error_floor(suboptimality: np.ndarray, tail_fraction: float = 0.25) -> float:
  """Mean suboptimality over the last `tail_fraction` of iterations (the plateau).

  >>> import numpy as np
  >>> error_floor(np.array([4.0, 3.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0]), tail_fraction=0.5)
  1.0
  """
  values = np.asarray(suboptimality)
  tail = max(1, int(round(len(values) * tail_fraction)))
  return float(np.mean(values[-tail:]))


def settling_index(suboptimality: np.ndarray, epsilon: float) -> int | None:
  """The first iteration i with suboptimality <= epsilon at i and at every later
  iteration; None when the last iterate is above epsilon.

  >>> import numpy as np
  >>> gap = np.array([1.0, 0.5, 0.05, 0.2, 0.01, 0.01])
  >>> settling_index(gap, 0.1)        # index 2 dips below but index 3 rises again
  4
  """
  above = np.flatnonzero(~(np.asarray(suboptimality) <= epsilon))  # NaN counts as above.
  if not above.size:
    return 0
  last = int(above[-1])
  return None if last == len(suboptimality) - 1 else last + 1


def time_to_stay_below(times: np.ndarray, suboptimality: np.ndarray, epsilon: float) -> float:
  """The time after which the suboptimality stays <= epsilon (inf when it does not by
  the end of the run).

  >>> import numpy as np
  >>> times, gap = np.arange(1.0, 7.0), np.array([1.0, 0.5, 0.05, 0.2, 0.01, 0.01])
  >>> time_to_stay_below(times, gap, 0.1)  # below for good from here on
  5.0
  """
  index = settling_index(suboptimality, epsilon)
  return float("inf") if index is None else float(np.asarray(times)[index])


def block_rip_epsilon(kind: str, n: int, beta: float, num_workers: int, k: int, key: Array,
                      num_sets: int = 16) -> float:
  """The block-RIP constant of an n-column encoding (`encoding.kind`, redundancy beta)
  over `num_sets` random sets of k of num_workers blocks (`block_rip_spectrum`); Paley
  takes the smallest size >= n it exists for.

  >>> import jax
  >>> eps = block_rip_epsilon("gaussian", n=8, beta=2.0, num_workers=4, k=3,
  ...                         key=jax.random.key(0))
  >>> 0.0 < eps < 2.0
  True
  """
  if kind == "paley":
    n = encoding_lib.paley_size_at_least(n)
  s = encoding_lib.encoding_matrix(kind, n, beta, key)
  return float(block_rip_spectrum(s, num_workers, k, key, num_sets)["epsilon"])
