"""Population views of per-example predictions: predicted labels, modes, label distributions.

Conventions: population logits or probabilities [members, examples, classes] (float);
predicted labels [members, examples] (int). A single model ([examples] int or
[examples, classes] float) is a population of one.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from tradeoffs.fairness import groups as groups_lib


def predicted_labels(predictions, *, argname: str = "predictions") -> jax.Array:
  """Predicted labels [members, examples] from labels or float scores.

  >>> import numpy as np
  >>> logits = np.array([[[0.1, 0.9], [2.0, 1.0]]])        # [members=1, examples=2, classes=2]
  >>> np.asarray(predicted_labels(logits)).tolist()
  [[1, 0]]
  >>> np.asarray(predicted_labels(np.array([2, 0, 1]))).tolist()   # one model's labels
  [[2, 0, 1]]
  """
  predictions = jnp.asarray(predictions)
  if jnp.issubdtype(predictions.dtype, jnp.floating):
    if predictions.ndim == 2:
      predictions = predictions[None]
    if predictions.ndim != 3:
      raise ValueError(f"{argname} has float shape {predictions.shape}: expected scores "
                       "[members, examples, classes] (or [examples, classes])")
    return jnp.argmax(predictions, axis=-1).astype(jnp.int32)
  if predictions.ndim == 1:
    predictions = predictions[None]
  if predictions.ndim != 2:
    raise ValueError(f"{argname} has int shape {predictions.shape}: expected predicted "
                     "labels [members, examples] (or [examples])")
  return predictions.astype(jnp.int32)


def infer_num_classes(predictions, num_classes: int | None, *, argname: str = "predictions"):
  """Classes from the scores' last axis, or `num_classes` (checked against them)."""
  predictions = jnp.asarray(predictions)
  if jnp.issubdtype(predictions.dtype, jnp.floating):
    inferred = predictions.shape[-1]
    if num_classes is not None and int(num_classes) != inferred:
      raise ValueError(f"num_classes={num_classes!r} but {argname} has {inferred} classes "
                       f"(shape {predictions.shape})")
    return inferred
  if num_classes is None:
    raise ValueError(f"{argname} are predicted labels: pass num_classes=")
  if int(num_classes) < 1:
    raise ValueError(f"num_classes={num_classes!r}: must be a positive int")
  if not groups_lib.is_traced(predictions) and predictions.size:
    values = np.asarray(predictions)
    if values.min() < 0 or values.max() >= int(num_classes):
      raise ValueError(f"{argname} holds labels in [{values.min()}, {values.max()}]: outside "
                       f"[0, num_classes={num_classes})")
  return int(num_classes)


def label_counts(predictions, num_classes: int | None = None) -> jax.Array:
  """How many members predict each class, per example -> [examples, classes] float.

  >>> import numpy as np
  >>> labels = np.array([[0, 2], [1, 2], [0, 2]])          # 3 members x 2 examples
  >>> np.asarray(label_counts(labels, num_classes=3)).tolist()
  [[2.0, 1.0, 0.0], [0.0, 0.0, 3.0]]
  """
  classes = infer_num_classes(predictions, num_classes)
  labels = predicted_labels(predictions)
  return jnp.sum(jax.nn.one_hot(labels, classes, dtype=jnp.float32), axis=0)


def label_distribution(predictions, num_classes: int | None = None) -> jax.Array:
  """Empirical distribution of predicted labels across members -> [examples, classes].

  Each member votes with its argmax label (not its probabilities), as in Hooker et al.

  >>> import numpy as np
  >>> labels = np.array([[0, 2], [1, 2], [0, 2], [1, 2]])
  >>> np.asarray(label_distribution(labels, num_classes=3)).tolist()
  [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0]]
  """
  counts = label_counts(predictions, num_classes)
  return counts / jnp.sum(counts, axis=-1, keepdims=True)


MODAL_TIES = ("largest", "smallest")


def modal_labels(predictions, num_classes: int | None = None, *,
                 tie: str = "largest") -> jax.Array:
  """Most frequent predicted label across members, per example -> [examples] int32.

  Ties among the most frequent labels go to the largest by default, as in Hooker et al.'s
  `aggregate_predictions.py` (pandas `Series.mode().max()`); `tie="smallest"` gives the
  smallest instead (`scipy.stats.mode`, `np.bincount(...).argmax()`). `num_classes` is not
  needed: for predicted labels without it, the mode is found by pairwise comparison of
  members (O(members^2 * examples)), which gives the same answer.

  >>> import numpy as np
  >>> labels = np.array([[0, 2], [1, 2], [0, 1], [1, 2]])  # example 0: 0 and 1 tie
  >>> np.asarray(modal_labels(labels)).tolist()
  [1, 2]
  >>> np.asarray(modal_labels(labels, tie="smallest")).tolist()
  [0, 2]
  """
  if tie not in MODAL_TIES:
    raise ValueError(f"tie={tie!r} is unknown; allowed: {', '.join(map(repr, MODAL_TIES))}")
  predictions = jnp.asarray(predictions)
  if jnp.issubdtype(predictions.dtype, jnp.floating) or num_classes is not None:
    counts = label_counts(predictions, num_classes)
    # argmax returns the first maximum: the smallest tied label, or from the reversed
    # classes, the largest.
    if tie == "smallest":
      return jnp.argmax(counts, axis=-1).astype(jnp.int32)
    return (counts.shape[-1] - 1 - jnp.argmax(counts[..., ::-1], axis=-1)).astype(jnp.int32)
  labels = predicted_labels(predictions)
  votes = jnp.sum(labels[:, None, :] == labels[None, :, :], axis=1)  # [members, examples]
  is_mode = votes == jnp.max(votes, axis=0, keepdims=True)
  if tie == "smallest":
    return jnp.min(jnp.where(is_mode, labels, jnp.iinfo(jnp.int32).max), axis=0).astype(
        jnp.int32)
  return jnp.max(jnp.where(is_mode, labels, -1), axis=0).astype(jnp.int32)
