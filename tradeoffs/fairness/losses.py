"""Fairness losses and gaps of MTA-F (Wang et al., KDD 2021), reusable by any study.

Following the reference code (`min_diff_losses.py`), the losses compare score
distributions of two groups, usually restricted to negative examples (label 0) so that
they target the false-positive-rate gap. Groups are selected by weights, not by boolean
indexing, so everything stays jit-able with fixed shapes.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _weighted_kernel_mean(kernel, weights_a, weights_b):
  total = jnp.sum(weights_a) * jnp.sum(weights_b)
  return jnp.sum(kernel * weights_a[:, None] * weights_b[None, :]) / jnp.maximum(total, 1e-12)


def mmd_squared(scores_a, scores_b, bandwidth: float = 0.1, *, weights_a=None,
                weights_b=None) -> jax.Array:
  """Squared MMD between two score samples with k(a, b) = exp(-(a - b)^2 / bandwidth^2).

  MMD^2 = mean k(a, a') - 2 mean k(a, b) + mean k(b, b'), the biased (V-statistic) form
  with the diagonal included, and no square root (its gradient blows up near 0), as in
  the MTA-F code. Optional weights (e.g. 0/1 masks of negatives in each group) turn every
  mean into a weighted mean.

  Args:
    scores_a: [Na] scores of group a (e.g. sigmoid probabilities).
    scores_b: [Nb] scores of group b.
    bandwidth: kernel length scale l > 0.
    weights_a, weights_b: optional non-negative weights [Na], [Nb].

  >>> import numpy as np
  >>> float(mmd_squared(np.array([0.2, 0.7]), np.array([0.7, 0.2])))   # same sample
  0.0
  >>> round(float(mmd_squared(np.array([0.0]), np.array([0.1]))), 4)   # 2 - 2 exp(-1)
  1.2642
  """
  if not bandwidth > 0:
    raise ValueError(f"bandwidth={bandwidth!r}: must be > 0")
  a = jnp.asarray(scores_a, jnp.float32).reshape(-1)
  b = jnp.asarray(scores_b, jnp.float32).reshape(-1)
  wa = jnp.ones_like(a) if weights_a is None else jnp.asarray(weights_a, jnp.float32)
  wb = jnp.ones_like(b) if weights_b is None else jnp.asarray(weights_b, jnp.float32)

  def kernel(x, y):
    return jnp.exp(-jnp.square(x[:, None] - y[None, :]) / bandwidth**2)

  return (_weighted_kernel_mean(kernel(a, a), wa, wa)
          - 2.0 * _weighted_kernel_mean(kernel(a, b), wa, wb)
          + _weighted_kernel_mean(kernel(b, b), wb, wb))


def fpr_gap(labels, preds, groups, *, pos_label: int = 1) -> jax.Array:
  """FPR(group 1) - FPR(group 0), the MTA-F fairness gap (signed, as the code reports it).

  `preds` may be hard predictions (1 = predicted positive) or soft probabilities of the
  positive class in [0, 1], which makes the gap a differentiable loss (the soft FPR of a
  group is its mean positive probability over its negatives). `groups` is 0/1 per
  example. NaN when a group has no negatives.

  >>> import numpy as np
  >>> labels, groups = np.array([1, 1, 0, 0, 1, 0]), np.array([0, 0, 0, 1, 1, 1])
  >>> float(fpr_gap(labels, np.array([1, 0, 0, 1, 1, 0]), groups))     # 1/2 - 0
  0.5
  >>> float(fpr_gap(labels, np.array([0.9, 0.2, 0.1, 0.6, 0.8, 0.2]), groups))   # soft: .4 - .1
  0.3...
  """
  labels = jnp.asarray(labels)
  preds = jnp.asarray(preds, jnp.float32)
  groups = jnp.asarray(groups)
  if labels.shape != preds.shape or labels.shape != groups.shape:
    raise ValueError(f"labels {labels.shape}, preds {preds.shape} and groups {groups.shape} "
                     "must all have shape [examples]")
  negative = (labels != pos_label).astype(jnp.float32)

  def group_fpr(member):
    mask = negative * member
    denom = jnp.sum(mask)
    return jnp.where(denom > 0, jnp.sum(preds * mask) / jnp.maximum(denom, 1.0), jnp.nan)

  return group_fpr((groups == 1).astype(jnp.float32)) - group_fpr(
      (groups == 0).astype(jnp.float32))


def threshold_at_positive_rate(scores, positive_rate) -> jax.Array:
  """The score threshold that predicts `positive_rate` of examples positive.

  As in the MTA-F code: sorted(scores)[int((1 - positive_rate) * N)], so that
  `scores >= threshold` selects about the training positive rate.

  >>> import numpy as np
  >>> float(threshold_at_positive_rate(np.array([0.1, 0.4, 0.35, 0.8]), 0.25))   # top quarter
  0.8...
  """
  scores = jnp.sort(jnp.asarray(scores).reshape(-1))
  index = jnp.clip(jnp.floor((1.0 - positive_rate) * scores.shape[0]).astype(jnp.int32), 0,
                   scores.shape[0] - 1)
  return scores[index]


def abs_correlation(scores, membership, weights=None) -> jax.Array:
  """|weighted Pearson correlation| between scores and 0/1 group membership (MTA-F alt).

  >>> import numpy as np
  >>> membership = np.array([0.0, 0.0, 1.0, 1.0])
  >>> round(float(abs_correlation(1.0 - membership, membership)), 4)   # |-1|
  1.0
  >>> float(abs_correlation(np.array([1.0, 2.0, 1.0, 2.0]), membership))
  0.0
  """
  scores = jnp.asarray(scores, jnp.float32)
  membership = jnp.asarray(membership, jnp.float32)
  w = jnp.ones_like(scores) if weights is None else jnp.asarray(weights, jnp.float32)
  w = w / jnp.maximum(jnp.sum(w), 1e-12)
  ms, mg = jnp.sum(w * scores), jnp.sum(w * membership)
  cov = jnp.sum(w * (scores - ms) * (membership - mg))
  var_s = jnp.sum(w * jnp.square(scores - ms))
  var_g = jnp.sum(w * jnp.square(membership - mg))
  return jnp.abs(cov / (jnp.sqrt(var_s + 1e-7) * jnp.sqrt(var_g + 1e-7)))
