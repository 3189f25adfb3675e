"""Compression-identified exemplars (CIE; PIE when the compression is pruning).

Hooker et al. 2019/2020: an example is a (modal) CIE when the modal predicted label of
the compressed population differs from that of the dense population. The taxicab
variant ranks examples by the L1 distance between the two populations' empirical label
distributions and takes the top k.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from tradeoffs.exemplars import population
from tradeoffs.fairness import groups as groups_lib
from tradeoffs.fairness import metrics as fairness_metrics


def _check_same_examples(dense, compressed):
  d = population.predicted_labels(dense, argname="dense")
  c = population.predicted_labels(compressed, argname="compressed")
  if d.shape[1] != c.shape[1]:
    raise ValueError(f"dense has {d.shape[1]} examples but compressed has {c.shape[1]}")
  return d, c


def cie(dense, compressed, num_classes: int | None = None) -> jax.Array:
  """Modal CIE: modal labels of the two populations differ -> bool [examples].

  Args:
    dense: the reference population, scores [members, examples, classes] or labels
      [members, examples].
    compressed: the compressed population, same conventions (member counts may differ).
    num_classes: optional; the modal labels do not need it.

  >>> import numpy as np
  >>> dense = np.array([[0, 1, 2], [0, 1, 2], [0, 1, 1]])        # 3 members x 3 examples
  >>> pruned = np.array([[0, 2, 2], [0, 2, 2]])                  # 2 members, labels
  >>> np.asarray(cie(dense, pruned)).tolist()                    # modal 1 -> 2 on example 1
  [False, True, False]
  """
  _check_same_examples(dense, compressed)
  return (population.modal_labels(dense, num_classes)
          != population.modal_labels(compressed, num_classes))


pie = cie  # Pruning-identified exemplars: the same test when the compression is pruning.


class TaxicabCIE(NamedTuple):
  is_cie: jax.Array   # bool [examples], True for the top-k by score.
  scores: jax.Array   # float [examples], sum_c |p_comp - p_dense| in [0, 2].
  ranking: jax.Array  # int [examples], example indices from highest score to lowest.


def taxicab_scores(dense, compressed, num_classes: int | None = None) -> jax.Array:
  """sum_c |p_comp(c|x) - p_dense(c|x)| over empirical label distributions -> [examples].

  >>> import numpy as np
  >>> dense = np.array([[0, 1], [0, 1], [0, 1], [0, 0]])    # 4 members x 2 examples
  >>> pruned = np.array([[0, 2], [0, 2], [1, 1], [0, 1]])
  >>> np.asarray(taxicab_scores(dense, pruned, num_classes=3)).tolist()
  [0.5, 1.0]
  """
  _check_same_examples(dense, compressed)
  classes = population.infer_num_classes(dense, num_classes, argname="dense")
  classes = population.infer_num_classes(compressed, classes, argname="compressed")
  return jnp.sum(jnp.abs(population.label_distribution(compressed, classes)
                         - population.label_distribution(dense, classes)), axis=-1)


def taxicab_cie(dense, compressed, k: int, num_classes: int | None = None) -> TaxicabCIE:
  """Taxicab CIE: the k examples whose label distributions moved most.

  Ties in score are broken by example order (lower index first; a stable sort), so the
  selection is deterministic. `k` is static; `num_classes` is needed for label inputs.

  >>> import numpy as np
  >>> dense = np.array([[0, 1, 2], [0, 1, 2]])
  >>> pruned = np.array([[1, 1, 0], [0, 1, 0]])            # scores 1.0, 0.0, 2.0
  >>> t = taxicab_cie(dense, pruned, k=1, num_classes=3)
  >>> np.asarray(t.is_cie).tolist(), np.asarray(t.ranking).tolist()
  ([False, False, True], [2, 0, 1])
  """
  scores = taxicab_scores(dense, compressed, num_classes)
  num_examples = scores.shape[0]
  if not 0 <= int(k) <= num_examples:
    raise ValueError(f"k={k!r}: must be in [0, {num_examples}] (the number of examples)")
  ranking = jnp.argsort(-scores, stable=True)
  is_cie = jnp.zeros(num_examples, bool).at[ranking[:int(k)]].set(True)
  return TaxicabCIE(is_cie, scores, ranking)


def _masked_mean(values, mask):
  """Mean of values [..., examples] over mask; NaN when the mask is empty."""
  mask = mask.astype(jnp.float32)
  total = jnp.sum(mask)
  return jnp.where(total > 0, jnp.sum(values * mask, axis=-1) / jnp.maximum(total, 1.0),
                   jnp.nan)


def accuracy_split(predicted, labels, is_cie, num_classes: int | None = None) -> dict:
  """Accuracy on CIE vs non-CIE examples.

  For a population: `*_accuracy` is the mean over members of each member's accuracy on
  the subset, and `*_modal_accuracy` the accuracy of the population's modal label.
  NaN for an empty subset. Returns a dict of scalars (jit-able).

  >>> import numpy as np
  >>> predicted = np.array([[0, 1, 1, 0], [0, 1, 0, 0]])   # 2 members x 4 examples
  >>> labels = np.array([0, 1, 1, 1])
  >>> out = accuracy_split(predicted, labels, np.array([False, False, True, True]))
  >>> float(out["cie_accuracy"]), float(out["non_cie_accuracy"]), int(out["cie_count"])
  (0.25, 1.0, 2)
  """
  labels = jnp.asarray(labels)
  is_cie = jnp.asarray(is_cie, bool)
  members = population.predicted_labels(predicted, argname="predicted")
  if members.shape[1] != labels.shape[0] or is_cie.shape != labels.shape:
    raise ValueError(f"predicted {members.shape}, labels {labels.shape} and is_cie "
                     f"{is_cie.shape} disagree on the number of examples")
  correct = (members == labels).astype(jnp.float32)  # [members, examples]
  modal_correct = (population.modal_labels(predicted, num_classes) == labels).astype(
      jnp.float32)
  out = {}
  for name, mask in (("cie", is_cie), ("non_cie", ~is_cie)):
    out[f"{name}_accuracy"] = jnp.mean(_masked_mean(correct, mask))
    out[f"{name}_modal_accuracy"] = _masked_mean(modal_correct, mask)
    out[f"{name}_count"] = jnp.sum(mask)
  return out


def group_breakdown(dense, compressed, labels, groups, *, num_groups=None,
                    is_cie=None, num_classes: int | None = None) -> dict:
  """CIE rate and accuracy drop per group -> dict of [num_groups] arrays.

  Keys: count, cie_count, cie_rate, dense_accuracy and compressed_accuracy (mean over
  members), accuracy_drop (dense - compressed), and the same for the modal labels
  (`*_modal_accuracy`, `modal_accuracy_drop`). Empty groups are NaN (count 0).
  `groups` is [examples] or [examples, G] (intersections, ids as `fairness.intersect`);
  `is_cie` defaults to the modal CIE.

  >>> import numpy as np
  >>> dense = np.array([[0, 1, 1, 0], [0, 1, 1, 0]])
  >>> pruned = np.array([[0, 1, 0, 1], [0, 1, 0, 1]])      # examples 2 and 3 flip
  >>> labels, groups = np.array([0, 1, 1, 0]), np.array([0, 0, 1, 1])
  >>> out = group_breakdown(dense, pruned, labels, groups, num_groups=2)
  >>> np.asarray(out["cie_rate"]).tolist(), np.asarray(out["accuracy_drop"]).tolist()
  ([0.0, 1.0], [0.0, 1.0])
  """
  labels = jnp.asarray(labels)
  d, c = _check_same_examples(dense, compressed)
  if d.shape[1] != labels.shape[0]:
    raise ValueError(f"labels has {labels.shape[0]} examples, predictions have {d.shape[1]}")
  group_ids, num = groups_lib.as_group_ids(groups, num_groups)
  dense_modal = population.modal_labels(dense, num_classes)
  comp_modal = population.modal_labels(compressed, num_classes)
  is_cie = jnp.asarray(dense_modal != comp_modal if is_cie is None else is_cie, bool)
  count = groups_lib.segment_sums(jnp.ones_like(labels, jnp.float32), group_ids, num)
  cie_count = groups_lib.segment_sums(is_cie.astype(jnp.float32), group_ids, num)
  by_group = lambda preds: fairness_metrics.by_group(  # noqa: E731
      fairness_metrics.accuracy, labels, preds, group_ids, num_groups=num)
  out = {"count": count, "cie_count": cie_count,
         "cie_rate": jnp.where(count > 0, cie_count / jnp.maximum(count, 1.0), jnp.nan),
         "dense_accuracy": jnp.mean(by_group(d), axis=0),
         "compressed_accuracy": jnp.mean(by_group(c), axis=0),
         "dense_modal_accuracy": by_group(dense_modal),
         "compressed_modal_accuracy": by_group(comp_modal)}
  out["accuracy_drop"] = out["dense_accuracy"] - out["compressed_accuracy"]
  out["modal_accuracy_drop"] = out["dense_modal_accuracy"] - out["compressed_modal_accuracy"]
  return out
