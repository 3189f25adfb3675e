"""Hardware and subgroups (Nelaturu et al., ICML 2024; PAPERS.md section 8).

Sensitivity of each group to the hardware (or any implementation setting), the fairness
violation it causes, and the two per-group quantities the paper's bound blames:

  excess loss of group a  <=  ||grad l_a|| * ||dtheta||  +  1/2 * lambda_max(H_a) * ||dtheta||^2

Everything is a pure function of a `loss_fn(params, batch) -> float [examples]` that
returns per-example losses, plus integer `groups` [examples] in 0..num_groups-1. Group a's
loss is the mean over its examples; an empty group gives NaN.

The formulas for sensitivity and mitigation are reconstructions (PAPERS.md marks them
[mem]); the docstrings say which one is implemented.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

LossFn = Callable[[Any, Any], jax.Array]


def per_example_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """float [...]: -log softmax(logits)[label] per example, logits [..., classes], labels [...].

  >>> import numpy as np
  >>> np.asarray(per_example_cross_entropy(np.zeros((2, 2)), np.array([0, 1])), np.float64).round(4).tolist()
  [0.6931, 0.6931]
  """
  return -jnp.take_along_axis(jax.nn.log_softmax(logits, axis=-1), labels[..., None],
                              axis=-1)[..., 0]


def _group_weights(groups: jax.Array, num_groups: int) -> tuple[jax.Array, jax.Array]:
  """([num_groups, examples] weights averaging within each group, counts [num_groups])."""
  if jnp.ndim(groups) != 1:
    raise ValueError(f"groups shape={jnp.shape(groups)}; need [examples] integers "
                     "(pick one group attribute column)")
  if isinstance(num_groups, bool) or not isinstance(num_groups, int) or num_groups < 1:
    raise ValueError(f"num_groups={num_groups!r}; need an int >= 1")
  onehot = jax.nn.one_hot(groups, num_groups, dtype=jnp.float32).T
  counts = jnp.sum(onehot, axis=1)
  return onehot / jnp.maximum(counts, 1)[:, None], counts


def per_group_mean(values: jax.Array, groups: jax.Array, num_groups: int) -> jax.Array:
  """float [..., num_groups]: mean of `values` [..., examples] within each group.

  >>> import numpy as np
  >>> np.asarray(per_group_mean(np.array([1.0, 2.0, 3.0, 10.0]), np.array([0, 0, 1, 1]), 3)).tolist()
  [1.5, 6.5, nan]
  """
  weights, counts = _group_weights(groups, num_groups)
  means = jnp.asarray(values, jnp.float32) @ weights.T
  return jnp.where(counts > 0, means, jnp.nan)


def _delta_range(x):
  return jnp.max(x, axis=-2) - jnp.min(x, axis=-2)


def _delta_mean_abs_deviation(x):
  return jnp.mean(jnp.abs(x - jnp.mean(x, axis=-2, keepdims=True)), axis=-2)


def _delta_std(x):
  return jnp.std(x, axis=-2)


SENSITIVITIES = {
    "range": _delta_range,
    "mean_abs_deviation": _delta_mean_abs_deviation,
    "std": _delta_std,
}


def group_sensitivity(group_metric: jax.Array, reduce: str = "range") -> jax.Array:
  """Hardware sensitivity Delta(a) of each group: float [groups].

  `group_metric` is [..., settings, groups]: a group's loss (or accuracy) under each
  backend/setting for the same seed and config; leading axes (e.g. seeds) are averaged
  after Delta is taken. `reduce` picks the formulation:
    'range' (default): max_h L_a(h) - min_h L_a(h), which for two settings is the
      paper's |L_a(theta_h) - L_a(theta_h')|;
    'mean_abs_deviation': mean_h |L_a(h) - mean_h' L_a(h')|;
    'std': standard deviation over settings.

  >>> import numpy as np
  >>> losses = np.array([[0.5, 0.25], [0.75, 0.25]])   # [settings=2, groups=2]
  >>> np.asarray(group_sensitivity(losses)).tolist()   # |L_a(h) - L_a(h')|
  [0.25, 0.0]
  >>> np.asarray(group_sensitivity(losses, "mean_abs_deviation")).tolist()
  [0.125, 0.0]
  """
  if reduce not in SENSITIVITIES:
    raise ValueError(f"reduce={reduce!r}; valid: {sorted(SENSITIVITIES)}")
  group_metric = jnp.asarray(group_metric, jnp.float32)
  if group_metric.ndim < 2 or group_metric.shape[-2] < 2:
    raise ValueError(f"group_metric shape={group_metric.shape}; need [..., settings >= 2, "
                     "groups]")
  delta = SENSITIVITIES[reduce](group_metric)
  return jnp.mean(delta.reshape(-1, delta.shape[-1]), axis=0)


def fairness_violation(delta: jax.Array) -> jax.Array:
  """xi = max_a Delta(a) - min_a Delta(a) over the last (group) axis, ignoring NaN groups.

  >>> import numpy as np
  >>> float(fairness_violation(np.array([0.25, 0.0, np.nan])))   # NaN (empty) groups ignored
  0.25
  """
  return jnp.nanmax(delta, axis=-1) - jnp.nanmin(delta, axis=-1)


def excess_loss_bound(grad_norm: jax.Array, top_eigenvalue: jax.Array,
                      distance: jax.Array) -> jax.Array:
  """The section-8 Taylor bound: ||g_a|| d + 1/2 lambda_max(H_a) d^2, d = ||theta_h - theta_h'||.

  >>> float(excess_loss_bound(2.0, 4.0, 0.5))   # 2 * 0.5 + 0.5 * 4 * 0.5^2
  1.5
  """
  return grad_norm * distance + 0.5 * top_eigenvalue * distance ** 2


def _check_losses(loss_fn: LossFn, params: Any, batch: Any, groups: jax.Array) -> None:
  shape = jax.eval_shape(loss_fn, params, batch).shape
  if shape != jnp.shape(groups):
    raise ValueError(f"loss_fn returned shape {shape}; need per-example losses shaped like "
                     f"groups {jnp.shape(groups)}")


def per_group_grad_norms(loss_fn: LossFn, params: Any, batch: Any, groups: jax.Array,
                         num_groups: int) -> jax.Array:
  """float [num_groups]: ||grad_theta of group a's mean loss|| (NaN for empty groups).

  >>> import jax
  >>> import jax.numpy as jnp
  >>> import numpy as np
  >>> loss_fn = lambda w, b: 0.5 * (b[0] @ w - b[1]) ** 2          # per-example squared error
  >>> batch = (jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]]), jnp.zeros(3))
  >>> w, groups = jnp.array([1.0, 2.0]), jnp.array([0, 0, 1])     # residuals 1, 1, 4
  >>> np.asarray(per_group_grad_norms(loss_fn, w, batch, groups, 3)).tolist()  # |[1,0]|, |[0,8]|, empty
  [1.0, 8.0, nan]
  """
  weights, counts = _group_weights(groups, num_groups)
  _check_losses(loss_fn, params, batch, groups)

  def norm(w):
    grads = jax.grad(lambda p: jnp.sum(w * loss_fn(p, batch)))(params)
    squared = sum(jnp.sum(g.astype(jnp.float32) ** 2) for g in jax.tree.leaves(grads))
    # Guarded sqrt: a zero gradient (empty group) must not make the penalty's gradient NaN.
    return jnp.where(squared > 0, jnp.sqrt(jnp.where(squared > 0, squared, 1.0)), 0.0)

  return jnp.where(counts > 0, jax.vmap(norm)(weights), jnp.nan)


def equal_size_indices(groups: Any, num_groups: int, key: jax.Array, draws: int = 8,
                       size: int | None = None) -> np.ndarray:
  """int [draws, non-empty groups, size]: per draw, `size` examples of each non-empty group
  drawn without replacement (default size: the smallest non-empty group's count).

  Group g's draws use `fold_in(fold_in(key, d), g)`. Host-side: the sizes decide shapes.

  >>> import jax
  >>> idx = equal_size_indices([0, 0, 0, 1, 1], 2, jax.random.key(0), draws=2)
  >>> idx.shape, sorted(idx[0, 1].tolist()), set(idx[:, 0].ravel()) <= {0, 1, 2}
  ((2, 2, 2), [3, 4], True)
  """
  groups = np.asarray(groups)
  _group_weights(jnp.asarray(groups), num_groups)  # Same checks as the other functions.
  if isinstance(draws, bool) or not isinstance(draws, int) or draws < 1:
    raise ValueError(f"draws={draws!r}; need an int >= 1")
  members = [np.flatnonzero(groups == g) for g in range(num_groups)]
  present = [m for m in members if m.size]
  smallest = min(m.size for m in present)
  size = smallest if size is None else size
  if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= smallest:
    raise ValueError(f"size={size!r}; need an int in 1..{smallest} (the smallest non-empty "
                     "group)")
  out = np.empty((draws, len(present), size), np.int64)
  for d in range(draws):
    for slot, (g, m) in enumerate((g, m) for g, m in enumerate(members) if m.size):
      k = jax.random.fold_in(jax.random.fold_in(key, d), g)
      out[d, slot] = m[np.asarray(jax.random.permutation(k, m.size))[:size]]
  return out


@dataclasses.dataclass(frozen=True)
class EqualSizeComparison:
  """A per-group quantity at one common group size: `values` [draws, groups] (NaN for empty
  groups), each draw on its own subsample of `size` examples per group."""

  size: int
  values: np.ndarray

  @property
  def mean(self) -> np.ndarray:
    return self.values.mean(axis=0)

  @property
  def std(self) -> np.ndarray:
    return self.values.std(axis=0)


def per_group_grad_norms_equal_size(loss_fn: LossFn, params: Any, batch: Any,
                                    groups: Any, num_groups: int, key: jax.Array,
                                    draws: int = 8, size: int | None = None
                                    ) -> EqualSizeComparison:
  """`per_group_grad_norms` with every group subsampled to the same size.

  The norm of a group's mean gradient has a noise part that shrinks like 1/sqrt(n_a), so
  raw norms rank groups by size as much as by their loss surface; at one common size the
  comparison is controlled. Draw d uses `equal_size_indices(groups, num_groups, key,
  draws, size)[d]`; leaves of `batch` have the example axis first.

  >>> import jax
  >>> import jax.numpy as jnp
  >>> import numpy as np
  >>> loss_fn = lambda w, b: 0.5 * (b[0] @ w - b[1]) ** 2          # per-example squared error
  >>> batch = (jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]]), jnp.zeros(3))
  >>> w, groups = jnp.array([1.0, 2.0]), jnp.array([0, 0, 1])     # residuals 1, 1, 4
  >>> out = per_group_grad_norms_equal_size(loss_fn, w, batch, groups, 2, jax.random.key(0),
  ...                                       draws=2)
  >>> out.size, out.values.tolist()            # one example per group in every draw
  (1, [[1.0, 8.0], [1.0, 8.0]])
  """
  idx = equal_size_indices(groups, num_groups, key, draws, size)
  size = idx.shape[-1]
  present = np.flatnonzero(np.bincount(np.asarray(groups), minlength=num_groups))
  sub_groups = jnp.asarray(np.repeat(present, size))

  @jax.jit  # One compile for all draws: params and batch are arguments, not constants.
  def one(p, b, flat_idx):
    sub = jax.tree.map(lambda x: x[flat_idx], b)
    return per_group_grad_norms(loss_fn, p, sub, sub_groups, num_groups)

  values = np.stack([np.asarray(one(params, batch, jnp.asarray(i.reshape(-1)))) for i in idx])
  return EqualSizeComparison(size=int(size), values=values)


def _power_iteration(hvp, v0, num_iters):
  def body(_, carry):
    v, _ = carry
    w = hvp(v)
    return w / jnp.maximum(jnp.linalg.norm(w), 1e-30), jnp.vdot(v, w)

  v = v0 / jnp.linalg.norm(v0)
  _, eigenvalue = jax.lax.fori_loop(0, num_iters, body, (v, jnp.zeros((), v.dtype)))
  return eigenvalue


def _lanczos(hvp, v0, num_iters):
  dim = v0.shape[0]
  steps = min(num_iters, dim)
  basis = jnp.zeros((steps + 1, dim), v0.dtype).at[0].set(v0 / jnp.linalg.norm(v0))

  def body(i, carry):
    basis, alphas, betas = carry
    w = hvp(basis[i])
    alpha = jnp.vdot(basis[i], w)
    # Full re-orthogonalisation (twice) against all earlier vectors: numerically stable.
    mask = (jnp.arange(steps + 1) <= i)[:, None]
    for _ in range(2):
      w = w - (basis * mask).T @ ((basis * mask) @ w)
    beta = jnp.linalg.norm(w)
    basis = basis.at[i + 1].set(w / jnp.maximum(beta, 1e-30))
    return basis, alphas.at[i].set(alpha), betas.at[i].set(beta)

  _, alphas, betas = jax.lax.fori_loop(
      0, steps, body, (basis, jnp.zeros(steps, v0.dtype), jnp.zeros(steps, v0.dtype)))
  tridiagonal = (jnp.diag(alphas) + jnp.diag(betas[:-1], 1) + jnp.diag(betas[:-1], -1))
  return jnp.max(jnp.linalg.eigvalsh(tridiagonal))


EIGEN_METHODS = {"power": _power_iteration, "lanczos": _lanczos}


def top_hessian_eigenvalue(scalar_fn: Callable[[Any], jax.Array], params: Any,
                           key: jax.Array, num_iters: int = 20, method: str = "lanczos"
                           ) -> jax.Array:
  """Top eigenvalue of the Hessian of `scalar_fn` at `params`, from Hessian-vector products.

  'lanczos' (default) returns the largest algebraic Ritz value after `num_iters` steps
  (exact once num_iters >= number of parameters). 'power' returns the Rayleigh quotient
  after `num_iters` power steps, which converges to the eigenvalue of largest magnitude
  (the same thing when the top of the spectrum dominates, as near a minimum).

  >>> import jax
  >>> f = lambda p: 0.5 * (3.0 * p["a"] ** 2 + p["b"] ** 2)   # Hessian diag(3, 1)
  >>> params = {"a": 1.0, "b": 1.0}
  >>> round(float(top_hessian_eigenvalue(f, params, jax.random.key(0), num_iters=2)), 4)
  3.0
  >>> round(float(top_hessian_eigenvalue(f, params, jax.random.key(0), 50, method="power")), 4)
  3.0
  """
  if method not in EIGEN_METHODS:
    raise ValueError(f"method={method!r}; valid: {sorted(EIGEN_METHODS)}")
  if isinstance(num_iters, bool) or not isinstance(num_iters, int) or num_iters < 1:
    raise ValueError(f"num_iters={num_iters!r}; need an int >= 1")
  flat, unravel = ravel_pytree(params)
  grad_flat = lambda x: ravel_pytree(jax.grad(scalar_fn)(unravel(x)))[0]
  hvp = lambda v: jax.jvp(grad_flat, (flat,), (v.astype(flat.dtype),))[1]
  v0 = jax.random.normal(key, flat.shape, flat.dtype)
  return EIGEN_METHODS[method](hvp, v0, num_iters)


def per_group_top_hessian_eigenvalue(loss_fn: LossFn, params: Any, batch: Any,
                                     groups: jax.Array, num_groups: int, key: jax.Array,
                                     num_iters: int = 20, method: str = "lanczos"
                                     ) -> jax.Array:
  """float [num_groups]: top Hessian eigenvalue of each group's mean loss (NaN if empty).

  >>> import jax
  >>> import jax.numpy as jnp
  >>> import numpy as np
  >>> loss_fn = lambda w, b: 0.5 * (b[0] @ w - b[1]) ** 2          # per-example squared error
  >>> batch = (jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]]), jnp.zeros(3))
  >>> w, groups = jnp.array([1.0, 2.0]), jnp.array([0, 0, 1])     # residuals 1, 1, 4
  >>> np.asarray(per_group_top_hessian_eigenvalue(loss_fn, w, batch, groups, 2, jax.random.key(0),
  ...                                             num_iters=2)).round(4).tolist()   # mean x x^T
  [1.0, 4.0]
  """
  weights, counts = _group_weights(groups, num_groups)
  _check_losses(loss_fn, params, batch, groups)

  def one(w):
    return top_hessian_eigenvalue(lambda p: jnp.sum(w * loss_fn(p, batch)), params, key,
                                  num_iters, method)

  return jnp.where(counts > 0, jax.vmap(one)(weights), jnp.nan)


# ---------------------------------------------------------------------------------------
# Mitigation regularisers: add `lam * penalty` to the training loss.


def _gini(probs):
  return 1.0 - jnp.sum(probs ** 2, axis=-1)


def _one_minus_max(probs):
  return 1.0 - jnp.max(probs, axis=-1)


# Proximity to the decision boundary: larger means closer.
BOUNDARY_PROXIMITY = {"gini": _gini, "one_minus_max": _one_minus_max}


def boundary_alignment_penalty(logits: jax.Array, groups: jax.Array, num_groups: int,
                               proximity: str = "gini") -> jax.Array:
  """sum_a |E_{D_a}[d(x)] - E_D[d(x)]|: aligns each group's mean distance to the boundary.

  Section 8's mitigation, in the form PAPERS.md reconstructs [mem]. d(x) is `proximity`:
  'gini' = sum_k p_k (1 - p_k) (tied to the Hessian trace of the cross-entropy) or
  'one_minus_max' = 1 - max_k p_k. Empty groups contribute nothing. Differentiable.

  >>> import numpy as np
  >>> logits = np.array([[0.0, 0.0], [0.0, 0.0], [50.0, 0.0], [50.0, 0.0]])   # gini .5, .5, 0, 0
  >>> float(boundary_alignment_penalty(logits, np.array([0, 0, 1, 1]), 2))    # |.5-.25| + |0-.25|
  0.5
  """
  if proximity not in BOUNDARY_PROXIMITY:
    raise ValueError(f"proximity={proximity!r}; valid: {sorted(BOUNDARY_PROXIMITY)}")
  weights, counts = _group_weights(groups, num_groups)
  d = BOUNDARY_PROXIMITY[proximity](jax.nn.softmax(logits, axis=-1))
  group_means = weights @ d
  return jnp.sum(jnp.where(counts > 0, jnp.abs(group_means - jnp.mean(d)), 0.0))


def gradient_norm_variance_penalty(loss_fn: LossFn, params: Any, batch: Any,
                                   groups: jax.Array, num_groups: int) -> jax.Array:
  """Variance over non-empty groups of ||grad l_a||: an alternative mitigation that targets
  the first term of the bound directly (needs second-order autodiff to train with).

  >>> import jax
  >>> import jax.numpy as jnp
  >>> import numpy as np
  >>> loss_fn = lambda w, b: 0.5 * (b[0] @ w - b[1]) ** 2          # per-example squared error
  >>> batch = (jnp.array([[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]]), jnp.zeros(3))
  >>> w, groups = jnp.array([1.0, 2.0]), jnp.array([0, 0, 1])     # residuals 1, 1, 4
  >>> float(gradient_norm_variance_penalty(loss_fn, w, batch, groups, 3))   # var of (1, 8)
  12.25
  """
  norms = per_group_grad_norms(loss_fn, params, batch, groups, num_groups)
  present = jnp.isfinite(norms)
  safe = jnp.where(present, norms, 0.0)
  mean = jnp.sum(safe) / jnp.maximum(jnp.sum(present), 1)
  return jnp.sum(jnp.where(present, (safe - mean) ** 2, 0.0)) / jnp.maximum(
      jnp.sum(present), 1)


def group_column(group_names: Any, attribute: str) -> int:
  """The column of `attribute` among a dataset's group attributes (ValueError naming both).

  >>> group_column(["sex", "age"], "age")
  1
  """
  names = [str(n) for n in group_names]
  if attribute not in names:
    raise ValueError(f"group_attribute={attribute!r} is not in the dataset's group "
                     f"attributes {names}")
  return names.index(attribute)


def penalty_fn(weight: float, column: int, num_groups: int, proximity: str):
  """A per-batch group loss `(logits, labels, groups [batch, attributes]) -> scalar`:
  `weight * boundary_alignment_penalty` on one group column (the trainer's
  `StepConfig.group_loss_fn`).

  >>> import numpy as np
  >>> loss = penalty_fn(2.0, column=1, num_groups=2, proximity="gini")
  >>> logits = np.array([[0.0, 0.0], [0.0, 0.0], [50.0, 0.0], [50.0, 0.0]])
  >>> groups = np.array([[0, 0], [1, 0], [0, 1], [1, 1]])      # column 1: 0, 0, 1, 1
  >>> float(loss(logits, None, groups))                        # 2 * 0.5
  1.0
  """
  if proximity not in BOUNDARY_PROXIMITY:
    raise ValueError(f"proximity={proximity!r}; valid: {sorted(BOUNDARY_PROXIMITY)}")

  def group_loss(logits, labels, groups):
    del labels
    return weight * boundary_alignment_penalty(logits, groups[:, column], num_groups,
                                               proximity)

  return group_loss
