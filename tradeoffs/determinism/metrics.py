"""Variation across runs (Zhuang et al., MLSys 2022; PAPERS.md section 15).

Every function takes the runs stacked on a leading axis: `predictions` int [runs, examples]
(argmax labels, see `predicted_labels`), `labels` int [examples], `groups` int [examples]
(one group attribute, values 0..num_groups-1). Standard deviations use `ddof=0` by default,
like `np.std` in NeuralNetworkRandomness' `run_ae.py`; pass `ddof=1` for the sample std.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tradeoffs.exemplars import population


def predicted_labels(logits: jax.Array) -> jax.Array:
  """int [runs, examples] from logits [runs, examples, classes].

  >>> import numpy as np
  >>> np.asarray(predicted_labels(np.array([[[0.1, 0.9], [0.8, 0.2]]]))).tolist()   # [1, 2, 2]
  [[1, 0]]
  """
  return jnp.argmax(logits, axis=-1)


def _check_predictions(predictions: Any, labels: Any = None) -> None:
  if jnp.ndim(predictions) != 2:
    raise ValueError(f"predictions shape={jnp.shape(predictions)}; need [runs, examples]")
  if labels is not None and jnp.shape(labels) != jnp.shape(predictions)[1:]:
    raise ValueError(f"labels shape={jnp.shape(labels)}; need [examples] = "
                     f"{jnp.shape(predictions)[1:]}")


def accuracy_per_run(predictions: jax.Array, labels: jax.Array) -> jax.Array:
  """float [runs]: top-1 accuracy of each run, from predictions [runs, examples] and labels
  [examples].

  >>> import numpy as np
  >>> runs = np.array([[0, 1, 1, 0], [0, 1, 0, 0], [1, 1, 1, 1]])   # 3 runs x 4 examples
  >>> labels = np.array([0, 1, 1, 0])
  >>> np.asarray(accuracy_per_run(runs, labels)).tolist()
  [1.0, 0.75, 0.5]
  """
  _check_predictions(predictions, labels)
  return jnp.mean(predictions == labels[None], axis=1)


def top1_std(predictions: jax.Array, labels: jax.Array, ddof: int = 0) -> jax.Array:
  """Standard deviation of top-1 accuracy across runs.

  >>> import numpy as np
  >>> runs = np.array([[0, 1, 1, 0], [0, 1, 0, 0], [1, 1, 1, 1]])   # 3 runs x 4 examples
  >>> labels = np.array([0, 1, 1, 0])
  >>> round(float(top1_std(runs, labels)), 4), round(float(top1_std(runs, labels, ddof=1)), 4)
  (0.2041, 0.25)
  """
  return jnp.std(accuracy_per_run(predictions, labels), ddof=ddof)


def _class_means(correct: jax.Array, labels: jax.Array, num_classes: int) -> jax.Array:
  """float [runs, classes]: mean of `correct` [runs, examples] within each class (NaN if empty)."""
  onehot = jax.nn.one_hot(labels, num_classes)                  # [examples, classes]
  hits = correct.astype(jnp.float32) @ onehot
  counts = jnp.sum(onehot, axis=0)
  return jnp.where(counts > 0, hits / jnp.maximum(counts, 1), jnp.nan)


def per_class_accuracy(predictions: jax.Array, labels: jax.Array, num_classes: int
                       ) -> jax.Array:
  """float [runs, classes]: recall of each class per run; NaN for a class with no examples.

  >>> import numpy as np
  >>> runs = np.array([[0, 1, 1, 0], [0, 1, 0, 0], [1, 1, 1, 1]])   # 3 runs x 4 examples
  >>> labels = np.array([0, 1, 1, 0])
  >>> np.asarray(per_class_accuracy(runs, labels, 3)).tolist()   # class 2 has no examples
  [[1.0, 1.0, nan], [1.0, 0.5, nan], [0.0, 1.0, nan]]
  """
  _check_predictions(predictions, labels)
  return _class_means(predictions == labels[None], labels, num_classes)


def per_class_accuracy_std(predictions: jax.Array, labels: jax.Array, num_classes: int,
                           ddof: int = 0) -> jax.Array:
  """float [classes]: std across runs of each class's accuracy.

  >>> import numpy as np
  >>> runs = np.array([[0, 1, 1, 0], [0, 1, 0, 0], [1, 1, 1, 1]])   # 3 runs x 4 examples
  >>> labels = np.array([0, 1, 1, 0])
  >>> np.asarray(per_class_accuracy_std(runs, labels, 2), np.float64).round(4).tolist()   # std of (1, 1, 0), (1, .5, 1)
  [0.4714, 0.2357]
  """
  return jnp.std(per_class_accuracy(predictions, labels, num_classes), axis=0, ddof=ddof)


@dataclasses.dataclass(frozen=True)
class PerClassStdNull:
  """Observed per-class accuracy std across runs, and its shuffled-class null.

  `per_class_std` [classes] is observed; `null_per_class_std` [draws, classes] is the same
  statistic after randomly permuting the class labels of the test examples (class sizes
  kept, each example's correctness in each run kept). Top-1 std is unchanged by the
  permutation, so the null of the ratio is the null of the per-class std over `top1_std`.
  Statistics `stat`: 'mean' or 'max' over (non-empty) classes.
  """

  top1_std: float
  per_class_std: np.ndarray
  null_per_class_std: np.ndarray

  def statistic(self, stat: str = "mean") -> float:
    return float(_reduce_classes(self.per_class_std, stat))

  def null_statistic(self, stat: str = "mean") -> np.ndarray:
    return _reduce_classes(self.null_per_class_std, stat)

  def ratio(self, stat: str = "mean") -> float:
    """Observed per-class std (`stat` over classes) / top-1 std; NaN when top-1 std is 0."""
    return self.statistic(stat) / self.top1_std if self.top1_std > 0 else float("nan")

  def null_ratio(self, stat: str = "mean") -> np.ndarray:
    """float [draws]: the null distribution of `ratio(stat)`."""
    null = self.null_statistic(stat)
    return null / self.top1_std if self.top1_std > 0 else np.full_like(null, np.nan)

  def band(self, stat: str = "mean", level: float = 0.95) -> tuple[float, float]:
    """Central `level` interval of the null ratio (quantiles of the draws)."""
    if not 0 < level < 1:
      raise ValueError(f"level={level!r}; need 0 < level < 1")
    lo, hi = np.quantile(self.null_ratio(stat), [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)

  def p_value(self, stat: str = "mean") -> float:
    """One-sided: share of null draws at least as large as observed, (1 + k) / (1 + B)."""
    null, observed = self.null_statistic(stat), self.statistic(stat)
    return float((1 + np.sum(null >= observed - 1e-12)) / (1 + null.size))


def _reduce_classes(values: np.ndarray, stat: str) -> np.ndarray:
  reducers = {"mean": np.nanmean, "max": np.nanmax}
  if stat not in reducers:
    raise ValueError(f"stat={stat!r}; valid: {sorted(reducers)}")
  return reducers[stat](np.asarray(values, np.float64), axis=-1)


@jax.jit(static_argnames=("num_classes", "num_draws", "ddof"))
def _null_per_class_std(correct, labels, key, num_classes, num_draws, ddof):
  shuffled = jax.vmap(lambda k: jax.random.permutation(k, labels))(
      jax.random.split(key, num_draws))                          # [draws, examples]
  return jax.vmap(lambda l: jnp.std(_class_means(correct, l, num_classes), axis=0,
                                    ddof=ddof))(shuffled)


def per_class_std_null(predictions: jax.Array, labels: jax.Array, num_classes: int,
                       key: jax.Array, num_draws: int = 200, ddof: int = 0
                       ) -> PerClassStdNull:
  """Per-class accuracy std across runs against a null of fragility-free classes.

  A class's accuracy is a mean over its n_k test examples, so its std across runs is
  about sqrt(n / n_k) times top-1 std even when no class is more fragile than another.
  The null keeps each example's correctness in every run and permutes which class it
  belongs to (`num_draws` permutations from `key`); an observed ratio inside the null
  band says the per-class spread is test-set sample size, not fragile classes.

  >>> import numpy as np
  >>> runs = np.array([[0, 1, 1, 0], [0, 1, 0, 0], [1, 1, 1, 1]])   # 3 runs x 4 examples
  >>> labels = np.array([0, 1, 1, 0])
  >>> import jax
  >>> null = per_class_std_null(runs, labels, 2, jax.random.key(0), num_draws=50)
  >>> null.per_class_std.astype(float).round(4).tolist(), null.null_per_class_std.shape
  ([0.4714, 0.2357], (50, 2))
  >>> round(null.ratio(), 4)                   # mean per-class std / top-1 std
  1.7321
  >>> 0 < null.p_value() <= 1
  True
  """
  _check_predictions(predictions, labels)
  if isinstance(num_draws, bool) or not isinstance(num_draws, int) or num_draws < 1:
    raise ValueError(f"num_draws={num_draws!r}; need an int >= 1")
  if jnp.shape(predictions)[0] < 2:
    raise ValueError(f"runs={jnp.shape(predictions)[0]}; a std across runs needs at least 2")
  predictions, labels = jnp.asarray(predictions), jnp.asarray(labels)
  correct = predictions == labels[None]
  null = _null_per_class_std(correct, labels, key, int(num_classes), num_draws, int(ddof))
  return PerClassStdNull(
      top1_std=float(top1_std(predictions, labels, ddof)),
      per_class_std=np.asarray(per_class_accuracy_std(predictions, labels, num_classes, ddof)),
      null_per_class_std=np.asarray(null))


def per_group_error_rates(predictions: jax.Array, labels: jax.Array, groups: jax.Array,
                          num_groups: int, positive_class: int | None = None,
                          num_classes: int | None = None) -> dict[str, jax.Array]:
  """Per-run false positive and false negative rates within each group.

  With `positive_class` the task is binary (positive = that class): returns 'fpr' and 'fnr'
  of shape [runs, groups]. Without it every class is positive in turn (one-vs-rest) and
  the shapes are [runs, groups, classes]. A rate with an empty denominator is NaN.

  >>> import numpy as np
  >>> runs = np.array([[0, 1, 1, 0], [0, 1, 0, 0], [1, 1, 1, 1]])   # 3 runs x 4 examples
  >>> labels = np.array([0, 1, 1, 0])
  >>> groups = np.array([0, 0, 1, 1])
  >>> rates = per_group_error_rates(runs, labels, groups, 2, positive_class=1)   # [runs, groups]
  >>> np.asarray(rates["fpr"]).tolist(), np.asarray(rates["fnr"]).tolist()
  ([[0.0, 0.0], [0.0, 0.0], [1.0, 1.0]], [[0.0, 0.0], [0.0, 1.0], [0.0, 0.0]])
  """
  _check_predictions(predictions, labels)
  if jnp.shape(groups) != jnp.shape(labels):
    raise ValueError(f"groups shape={jnp.shape(groups)}; need [examples] = "
                     f"{jnp.shape(labels)} (pick one group attribute column)")
  if positive_class is None:
    if num_classes is None:
      raise ValueError("num_classes=None: one-vs-rest rates (positive_class=None) need "
                       "num_classes")
    classes = jnp.arange(num_classes)
    true_pos = labels[None, :, None] == classes                 # [1, examples, classes]
    pred_pos = predictions[:, :, None] == classes               # [runs, examples, classes]
  else:
    true_pos = (labels == positive_class)[None, :, None]
    pred_pos = (predictions == positive_class)[:, :, None]
  in_group = jax.nn.one_hot(groups, num_groups, dtype=jnp.float32)   # [examples, groups]

  def count(mask):  # [runs or 1, examples, k] -> [runs or 1, groups, k]
    return jnp.einsum("rek,eg->rgk", mask.astype(jnp.float32), in_group)

  negatives, positives = count(~true_pos), count(true_pos)
  false_pos, false_neg = count(pred_pos & ~true_pos), count(~pred_pos & true_pos)
  fpr = jnp.where(negatives > 0, false_pos / jnp.maximum(negatives, 1), jnp.nan)
  fnr = jnp.where(positives > 0, false_neg / jnp.maximum(positives, 1), jnp.nan)
  if positive_class is not None:
    fpr, fnr = fpr[..., 0], fnr[..., 0]
  return {"fpr": fpr, "fnr": fnr}


def per_group_error_rate_std(predictions: jax.Array, labels: jax.Array, groups: jax.Array,
                             num_groups: int, positive_class: int | None = None,
                             num_classes: int | None = None, ddof: int = 0
                             ) -> dict[str, jax.Array]:
  """Std across runs of each group's FPR and FNR ('fpr_std', 'fnr_std').

  >>> import numpy as np
  >>> runs = np.array([[0, 1, 1, 0], [0, 1, 0, 0], [1, 1, 1, 1]])   # 3 runs x 4 examples
  >>> labels = np.array([0, 1, 1, 0])
  >>> stds = per_group_error_rate_std(runs, labels, np.array([0, 0, 1, 1]), 2, positive_class=1)
  >>> [np.asarray(stds[k], np.float64).round(4).tolist() for k in ("fpr_std", "fnr_std")]
  [[0.4714, 0.4714], [0.0, 0.4714]]
  """
  rates = per_group_error_rates(predictions, labels, groups, num_groups, positive_class,
                                num_classes)
  return {f"{k}_std": jnp.std(v, axis=0, ddof=ddof) for k, v in rates.items()}


def pairwise_churn(predictions: jax.Array) -> jax.Array:
  """float [runs, runs]: fraction of examples on which two runs' predictions differ.

  >>> import numpy as np
  >>> runs = np.array([[0, 1, 1, 0], [0, 1, 0, 0], [1, 1, 1, 1]])   # 3 runs x 4 examples
  >>> labels = np.array([0, 1, 1, 0])
  >>> np.asarray(pairwise_churn(runs)).tolist()
  [[0.0, 0.25, 0.5], [0.25, 0.0, 0.75], [0.5, 0.75, 0.0]]
  """
  _check_predictions(predictions)
  return jnp.mean(predictions[:, None, :] != predictions[None, :, :], axis=-1)


def _mean_off_diagonal(matrix: jax.Array) -> jax.Array:
  runs = matrix.shape[0]
  if runs < 2:
    raise ValueError(f"runs={runs}; a pairwise metric needs at least 2 runs")
  return (jnp.sum(matrix) - jnp.trace(matrix)) / (runs * (runs - 1))


def churn(predictions: jax.Array) -> jax.Array:
  """Mean over pairs of runs of the disagreement rate.

  This is churn as defined in the paper; NeuralNetworkRandomness' `get_churn` returns the
  agreement, i.e. 1 - this value. `predictions` int [runs, examples] -> float scalar.

  >>> import numpy as np
  >>> runs = np.array([[0, 1, 2, 3], [0, 1, 2, 0], [0, 1, 1, 0]])   # 3 runs x 4 examples
  >>> round(float(churn(runs)), 4)                  # pairs disagree on 1, 2, 1 of 4
  0.3333
  """
  return _mean_off_diagonal(pairwise_churn(predictions))


def flatten_runs(params: Any) -> jax.Array:
  """float [runs, parameters] from a pytree whose leaves have a leading run axis, or from an
  already flat [runs, parameters] array.

  >>> import numpy as np
  >>> flat = flatten_runs({"b": np.zeros((2, 3)), "w": np.ones((2, 2, 2))})   # 2 runs
  >>> flat.shape, np.asarray(flat[0]).tolist()
  ((2, 7), [0.0, 0.0, 0.0, 1.0, 1.0, 1.0, 1.0])
  """
  leaves = jax.tree.leaves(params)
  if not leaves:
    raise ValueError("params is an empty pytree")
  runs = {jnp.shape(leaf)[0] if jnp.ndim(leaf) else None for leaf in leaves}
  if len(runs) != 1 or None in runs:
    raise ValueError(f"params leaves have leading sizes {sorted(map(str, runs))}; every leaf "
                     "needs the same leading run axis")
  return jnp.concatenate([jnp.reshape(leaf, (jnp.shape(leaf)[0], -1)).astype(jnp.float32)
                          for leaf in leaves], axis=1)


def pairwise_weight_distance(params: Any) -> jax.Array:
  """float [runs, runs]: L2 distance between flattened final weights.

  >>> import numpy as np
  >>> np.asarray(pairwise_weight_distance({"w": np.array([[0.0, 0.0], [3.0, 4.0]])})).tolist()
  [[0.0, 5.0], [5.0, 0.0]]
  """
  flat = flatten_runs(params)
  diff = flat[:, None, :] - flat[None, :, :]
  return jnp.sqrt(jnp.sum(diff * diff, axis=-1))


def weight_distance(params: Any) -> jax.Array:
  """Mean over pairs of runs of the L2 distance between flattened final weights.

  >>> import numpy as np
  >>> float(weight_distance({"w": np.array([[0.0, 0.0], [3.0, 4.0], [0.0, 0.0]])}))   # (5 + 5 + 0) / 3
  3.333...
  """
  return _mean_off_diagonal(pairwise_weight_distance(params))


def bitwise_identical(runs: Sequence[Any] | Any) -> bool:
  """True when every run equals the first bit for bit (same tree, shapes, dtypes, bytes).

  `runs` is a sequence of arrays/pytrees, or one array/pytree with a leading run axis.
  NaNs compare by their bit pattern, so identical NaNs count as identical. Not jit-able.

  >>> import numpy as np
  >>> bitwise_identical([np.array([1.0, np.nan]), np.array([1.0, np.nan])])   # same NaN bits
  True
  >>> bitwise_identical([np.array([0.0]), np.array([-0.0])])                  # 0.0 == -0.0, bits differ
  False
  >>> bitwise_identical(np.array([[1, 2], [1, 2]]))                          # leading run axis
  True
  """
  if not isinstance(runs, (list, tuple)):
    leaves = jax.tree.leaves(runs)
    size = np.shape(leaves[0])[0] if leaves and np.ndim(leaves[0]) else 0
    runs = [jax.tree.map(lambda x, i=i: np.asarray(x)[i], runs) for i in range(size)]
  if len(runs) < 2:
    raise ValueError(f"runs has {len(runs)} entries; bitwise comparison needs at least 2")
  first_leaves, first_tree = jax.tree.flatten(runs[0])
  for run in runs[1:]:
    leaves, tree = jax.tree.flatten(run)
    if tree != first_tree:
      return False
    for a, b in zip(first_leaves, leaves):
      a, b = np.asarray(a), np.asarray(b)
      if a.shape != b.shape or a.dtype != b.dtype or a.tobytes() != b.tobytes():
        return False
  return True


def modal_predictions(predictions: jax.Array, num_classes: int) -> jax.Array:
  """int [examples]: the most frequent prediction across runs (ties: the smallest label).

  >>> import numpy as np
  >>> runs = np.array([[0, 1, 1, 0], [0, 1, 0, 0], [1, 1, 1, 1]])   # 3 runs x 4 examples
  >>> labels = np.array([0, 1, 1, 0])
  >>> np.asarray(modal_predictions(runs, 2)).tolist()
  [0, 1, 1, 0]
  >>> np.asarray(modal_predictions(np.array([[0], [1]]), 2)).tolist()   # a tie: smallest label
  [0]
  """
  _check_predictions(predictions)
  # Explicit: exemplars' default tie rule is the largest label (Hooker et al.).
  return population.modal_labels(predictions, num_classes, tie="smallest")


def flip_counts(predictions: jax.Array, num_classes: int) -> jax.Array:
  """int [examples]: in how many runs the prediction differs from the modal prediction.

  >>> import numpy as np
  >>> runs = np.array([[0, 1, 1, 0], [0, 1, 0, 0], [1, 1, 1, 1]])   # 3 runs x 4 examples
  >>> labels = np.array([0, 1, 1, 0])
  >>> np.asarray(flip_counts(runs, 2)).tolist()
  [1, 0, 1, 1]
  """
  modal = modal_predictions(predictions, num_classes)
  return jnp.sum(predictions != modal[None], axis=0)


def unstable_examples(predictions: jax.Array, num_classes: int,
                      ids: Any | None = None) -> np.ndarray:
  """Indices (or `ids`) of examples whose prediction is not the same in every run.

  >>> import numpy as np
  >>> runs = np.array([[0, 1, 1, 0], [0, 1, 0, 0], [1, 1, 1, 1]])   # 3 runs x 4 examples
  >>> labels = np.array([0, 1, 1, 0])
  >>> unstable_examples(runs, 2).tolist(), unstable_examples(runs, 2, ids=[10, 11, 12, 13]).tolist()
  ([0, 2, 3], [10, 12, 13])
  """
  flips = np.asarray(flip_counts(predictions, num_classes))
  where = np.flatnonzero(flips > 0)
  return where if ids is None else np.asarray(ids)[where]


def determinism_cost(deterministic_step_times: Any, default_step_times: Any) -> float:
  """Cost of determinism: median step time of the deterministic setting / of the default.

  A ratio of 1.5 is a 50% overhead (Zhuang et al. report overheads up to 746% on GPU).
  Medians make the ratio robust to compilation and warm-up outliers.

  >>> determinism_cost([1.5, 1.6, 9.0], [1.0, 1.1, 0.9])   # medians 1.6 / 1.0: 60% overhead
  1.6
  """
  det = np.asarray(deterministic_step_times, dtype=np.float64).ravel()
  default = np.asarray(default_step_times, dtype=np.float64).ravel()
  for name, times in (("deterministic_step_times", det), ("default_step_times", default)):
    if times.size == 0 or not np.all(np.isfinite(times)) or np.any(times <= 0):
      raise ValueError(f"{name}={times.tolist()[:5]}...; need finite positive seconds")
  return float(np.median(det) / np.median(default))


def summary(logits: jax.Array, labels: jax.Array, num_classes: int,
            params: Any | None = None, groups: jax.Array | None = None,
            num_groups: int | None = None, positive_class: int | None = None
            ) -> dict[str, Any]:
  """All run-to-run metrics as JSON-able values, ready for a record's hidden_costs.

  >>> import numpy as np
  >>> logits = np.eye(2)[np.array([[0, 1, 1, 0], [0, 1, 0, 0]])]      # 2 runs, [2, 4, 2]
  >>> out = summary(logits, np.array([0, 1, 1, 0]), 2)
  >>> out["runs"], out["top1_mean"], out["churn"], out["unstable_fraction"]
  (2, 0.875, 0.25, 0.25)
  >>> out["per_class_std"], out["predictions_identical"]
  ([0.0, 0.25], False)
  """
  predictions = predicted_labels(jnp.asarray(logits))
  labels = jnp.asarray(labels)
  accuracies = accuracy_per_run(predictions, labels)
  flips = flip_counts(predictions, num_classes)
  out = {
      "runs": int(predictions.shape[0]),
      "top1_mean": float(jnp.mean(accuracies)),
      "top1_std": float(jnp.std(accuracies)),
      "per_class_std": np.asarray(per_class_accuracy_std(predictions, labels,
                                                         num_classes)).tolist(),
      "churn": float(churn(predictions)) if predictions.shape[0] > 1 else 0.0,
      "unstable_fraction": float(jnp.mean(flips > 0)),
      "predictions_identical": (predictions.shape[0] < 2
                                or bitwise_identical(list(np.asarray(predictions)))),
  }
  out["per_class_std_max"] = float(np.nanmax(out["per_class_std"]))
  if params is not None and predictions.shape[0] > 1:
    out["weight_l2"] = float(weight_distance(params))
    out["weights_identical"] = bitwise_identical(list(np.asarray(flatten_runs(params))))
  if groups is not None:
    if num_groups is None:
      raise ValueError("num_groups=None: per-group rates need num_groups")
    stds = per_group_error_rate_std(predictions, labels, jnp.asarray(groups), num_groups,
                                    positive_class, num_classes)
    out.update({k: np.asarray(v).tolist() for k, v in stds.items()})
  return out
