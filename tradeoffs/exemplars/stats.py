"""Per-class impact of compression: Welch's t-test on normalised per-class recall.

Hooker et al. (`per_class_accuracy/gen_tstatistic.py`) test, per class, whether the
recall of the dense population differs from that of the compressed population after
subtracting model accuracy, so a class is flagged only when it moves more than the
top line: `ttest_ind(dense, compressed, equal_var=False)`.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp_special

from tradeoffs.exemplars import population
from tradeoffs.fairness import metrics as fairness_metrics


class TTest(NamedTuple):
  statistic: jax.Array
  pvalue: jax.Array  # Two-sided.
  dof: jax.Array     # Welch-Satterthwaite degrees of freedom.


def student_t_two_sided_pvalue(statistic, dof) -> jax.Array:
  """P(|T| >= |t|) for Student's t with `dof` degrees of freedom (jit-able).

  Uses P = I_{dof / (dof + t^2)}(dof / 2, 1 / 2), the regularized incomplete beta function.

  >>> round(float(student_t_two_sided_pvalue(0.0, 5)), 4), round(float(student_t_two_sided_pvalue(1.0, 1)), 4)
  (1.0, 0.5)
  """
  statistic = jnp.asarray(statistic, jnp.float32)
  dof = jnp.asarray(dof, jnp.float32)
  x = dof / (dof + jnp.square(statistic))
  return jsp_special.betainc(dof / 2.0, 0.5, x)


def welch_ttest(a, b, axis: int = 0) -> TTest:
  """Welch's unequal-variance t-test of mean(a) vs mean(b) along `axis`.

  t = (mean_a - mean_b) / sqrt(var_a / n_a + var_b / n_b), sample variances (ddof=1);
  dof = (var_a/n_a + var_b/n_b)^2 / ((var_a/n_a)^2/(n_a-1) + (var_b/n_b)^2/(n_b-1)).
  Agrees with `scipy.stats.ttest_ind(a, b, equal_var=False)`. NaN inputs propagate;
  zero variance in both samples gives t = +-inf (or NaN when the means are equal).

  >>> import numpy as np
  >>> t = welch_ttest(np.array([1.0, 2.0, 3.0]), np.array([4.0, 5.0, 6.0]))
  >>> round(float(t.statistic), 4), round(float(t.dof), 4)   # -3 / sqrt(2/3), dof 4
  (-3.6742, 4.0)
  >>> round(float(t.pvalue), 4)     # scipy.stats.ttest_ind(..., equal_var=False): 0.0213
  0.0213
  """
  a = jnp.moveaxis(jnp.asarray(a, jnp.float32), axis, 0)
  b = jnp.moveaxis(jnp.asarray(b, jnp.float32), axis, 0)
  n_a, n_b = a.shape[0], b.shape[0]
  if n_a < 2 or n_b < 2:
    raise ValueError(f"welch_ttest needs >= 2 samples per side along axis={axis}: "
                     f"got {n_a} and {n_b}")
  se_a = jnp.var(a, axis=0, ddof=1) / n_a
  se_b = jnp.var(b, axis=0, ddof=1) / n_b
  statistic = (jnp.mean(a, axis=0) - jnp.mean(b, axis=0)) / jnp.sqrt(se_a + se_b)
  dof = jnp.square(se_a + se_b) / (jnp.square(se_a) / (n_a - 1) + jnp.square(se_b) / (n_b - 1))
  return TTest(statistic, student_t_two_sided_pvalue(statistic, dof), dof)


class PerClassTTest(NamedTuple):
  statistic: jax.Array            # [classes]; > 0 when compression lowered the class.
  pvalue: jax.Array               # [classes], two-sided.
  dof: jax.Array                  # [classes].
  dense_mean_recall: jax.Array    # [classes], unnormalised.
  compressed_mean_recall: jax.Array


_NORMALIZATIONS = ("model", "population", "none")


def per_class_ttest(dense_pred, comp_pred, labels, num_classes: int, *,
                    normalize: str = "model") -> PerClassTTest:
  """Welch t-test per class of normalised recall, dense vs compressed populations.

  Args:
    dense_pred: dense population, labels [members, examples] or scores [..., classes].
    comp_pred: compressed population, same conventions (>= 2 members each).
    labels: true labels [examples].
    num_classes: number of classes (static).
    normalize: what is subtracted from each member's per-class recall:
      "model" (default): that member's own overall accuracy;
      "population": the population's mean accuracy, a constant per population, as in
        Hooker et al.'s `gen_tstatistic.py` (which hard-codes the 30-model means);
      "none": raw recall.

  Returns:
    `PerClassTTest`; the statistic is for dense minus compressed (scipy argument order
    `ttest_ind(dense, compressed)`), so positive means the class lost more than average.
    Classes absent from `labels` are NaN.

  >>> import numpy as np
  >>> labels = np.array([0, 0, 1, 1])
  >>> dense = np.array([[0, 0, 1, 1], [0, 0, 1, 1], [0, 1, 1, 1]])
  >>> pruned = np.array([[0, 0, 0, 0], [0, 0, 0, 1], [0, 0, 1, 0]])   # class 1 suffers
  >>> t = per_class_ttest(dense, pruned, labels, 2, normalize="none")
  >>> [np.asarray(r, np.float64).round(3).tolist() for r in (t.dense_mean_recall, t.compressed_mean_recall)]
  [[0.833, 1.0], [1.0, 0.333]]
  >>> bool(t.statistic[1] > 0), bool(t.statistic[0] < 0)
  (True, True)
  """
  if normalize not in _NORMALIZATIONS:
    raise ValueError(f"normalize={normalize!r} is unknown; valid: {list(_NORMALIZATIONS)}")
  labels = jnp.asarray(labels)

  def normalised_recall(pred, argname):
    members = population.predicted_labels(pred, argname=argname)
    if members.shape[1] != labels.shape[0]:
      raise ValueError(f"{argname} has {members.shape[1]} examples, labels {labels.shape[0]}")
    recall = fairness_metrics.per_class_accuracy(labels, members, num_classes=num_classes)
    accuracy = jnp.mean(members == labels, axis=-1)  # [members]
    if normalize == "model":
      return recall, recall - accuracy[:, None]
    if normalize == "population":
      return recall, recall - jnp.mean(accuracy)
    return recall, recall

  dense_recall, dense_norm = normalised_recall(dense_pred, "dense_pred")
  comp_recall, comp_norm = normalised_recall(comp_pred, "comp_pred")
  test = welch_ttest(dense_norm, comp_norm, axis=0)
  return PerClassTTest(test.statistic, test.pvalue, test.dof, jnp.mean(dense_recall, axis=0),
                       jnp.mean(comp_recall, axis=0))
