"""Per-example difficulty measures used to characterise PIEs (Corti et al. 2022).

Q-score (Kalibhat et al. 2022) of a representation and prediction depth (Baldock et
al. 2021) from per-layer k-NN predictions, with a small jnp k-NN to produce them.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp


def q_score(z, *, ddof: int = 0, eps: float = 1e-12) -> jax.Array:
  """Q(z) = Z(z) / ||z||_1 with Z(z) = (max_j z_j - mean(z)) / std(z), per row of [..., D].

  Low Q means a poor (flat, unspecific) representation. `ddof` sets the std's
  denominator (D - ddof); 0 (population std) is used here, 1 matches `torch.std`.
  `eps` guards constant rows and zero vectors (their Q is 0).

  >>> import numpy as np
  >>> round(float(q_score(np.array([4.0, 0.0, 0.0, 0.0]))), 4)   # Z = 3 / sqrt(3), ||z||_1 = 4
  0.433
  >>> float(q_score(np.ones(4)))                                  # constant row: 0
  0.0
  """
  z = jnp.asarray(z, jnp.float32)
  if z.ndim < 1 or z.shape[-1] < 2:
    raise ValueError(f"z has shape {z.shape}: need [..., D] with D >= 2")
  std = jnp.std(z, axis=-1, ddof=ddof)
  z_score = (jnp.max(z, axis=-1) - jnp.mean(z, axis=-1)) / jnp.maximum(std, eps)
  return z_score / jnp.maximum(jnp.sum(jnp.abs(z), axis=-1), eps)


_DEFINITIONS = ("code", "paper")


def prediction_depth(layer_knn_predictions, labels, *, definition: str = "code") -> jax.Array:
  """Prediction depth of each example from its k-NN predictions at every layer.

  Args:
    layer_knn_predictions: int [..., layers, examples], the k-NN prediction of each
      example from each layer's representation (layers in forward order).
    labels: int [examples] (the label the depth is measured against).
    definition:
      "code" (default; Corti et al.'s `utils/prediction_depth.py`): 1 + index of the
        last layer whose prediction differs from the label, and 1 when none differs;
      "paper" (Baldock et al.): the earliest layer index L such that layers L..end are
        all correct, i.e. the same value, except 0 when every layer is correct.
      Both give the number of layers when the last layer is wrong.

  Returns:
    int32 [..., examples].

  >>> import numpy as np
  >>> knn = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1]])   # [layers=3, examples=3]
  >>> labels = np.array([0, 0, 0])
  >>> np.asarray(prediction_depth(knn, labels)).tolist()   # 1 + last wrong layer
  [1, 2, 3]
  >>> np.asarray(prediction_depth(knn, labels, definition="paper")).tolist()
  [1, 2, 3]
  >>> np.asarray(prediction_depth(np.zeros((3, 1), int), labels[:1], definition="paper")).tolist()
  [0]
  """
  if definition not in _DEFINITIONS:
    raise ValueError(f"definition={definition!r} is unknown; valid: {list(_DEFINITIONS)}")
  predictions = jnp.asarray(layer_knn_predictions)
  labels = jnp.asarray(labels)
  if predictions.ndim < 2 or predictions.shape[-1] != labels.shape[0]:
    raise ValueError(f"layer_knn_predictions has shape {predictions.shape}: expected "
                     f"[..., layers, {labels.shape[0]}] to match labels {labels.shape}")
  wrong = predictions != labels
  layer = jnp.arange(predictions.shape[-2])[:, None]
  last_wrong = jnp.max(jnp.where(wrong, layer, -1), axis=-2)  # -1 when all correct.
  if definition == "code":
    return (jnp.maximum(last_wrong, 0) + 1).astype(jnp.int32)
  return (last_wrong + 1).astype(jnp.int32)


def knn_predict(train_features, train_labels, query_features, *, k: int = 30,
                num_classes: int) -> jax.Array:
  """k-nearest-neighbour (Euclidean) majority vote -> int32 [queries].

  Ties between classes go to the smallest label (as sklearn's `KNeighborsClassifier`
  with uniform weights); ties in distance go to the lower training index.

  >>> import numpy as np
  >>> train = np.array([[0.0], [0.1], [1.0], [1.1], [1.2]])
  >>> knn_predict(train, np.array([0, 0, 1, 1, 1]), np.array([[0.05], [0.9]]), k=2,
  ...             num_classes=2).tolist()
  [0, 1]
  """
  train_features = jnp.asarray(train_features, jnp.float32)
  query_features = jnp.asarray(query_features, jnp.float32)
  train_features = train_features.reshape(train_features.shape[0], -1)
  query_features = query_features.reshape(query_features.shape[0], -1)
  if not 1 <= int(k) <= train_features.shape[0]:
    raise ValueError(f"k={k!r}: must be in [1, {train_features.shape[0]}] (training examples)")
  sq_dist = (jnp.sum(jnp.square(query_features), -1)[:, None]
             - 2.0 * query_features @ train_features.T
             + jnp.sum(jnp.square(train_features), -1)[None, :])
  _, neighbours = jax.lax.top_k(-sq_dist, int(k))
  votes = jnp.sum(jax.nn.one_hot(jnp.asarray(train_labels)[neighbours], num_classes), axis=1)
  return jnp.argmax(votes, axis=-1).astype(jnp.int32)


@functools.partial(jax.jit, static_argnames=("k", "num_classes"))
def layer_knn_predictions(train_layers, train_labels, query_layers, *, k: int = 30,
                          num_classes: int) -> jax.Array:
  """k-NN probe predictions of every layer: int32 [layers, queries].

  `train_layers` / `query_layers`: one representation per layer, in forward order, each
  [N_train, ...] / [N_query, ...] (the probe of layer l is fitted on the training set's
  layer-l representations, Baldock et al. 2021). Feed the result to `prediction_depth`.
  """
  if len(train_layers) != len(query_layers) or not len(train_layers):
    raise ValueError(f"{len(train_layers)} training and {len(query_layers)} query layers: "
                     "need the same number, at least one")
  return jnp.stack([knn_predict(t, train_labels, q, k=k, num_classes=num_classes)
                    for t, q in zip(train_layers, query_layers)])
