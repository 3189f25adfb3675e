"""Per-group and per-class metrics on device arrays, with fairlearn-style names.

A metric is a ratio of per-example sums (numerator / denominator), so the per-group value
is two `segment_sum`s and one division: jit-able, vmap-able, no Python loop over groups.
Predictions may carry leading axes (a population [members, examples]); labels and groups
are per example. Binary metrics (TPR, FPR, FNR, selection rate) are w.r.t. `pos_label`:
in a multiclass problem that is one class against the rest.

Empty groups: a group with no example that the metric conditions on (no examples at all
for accuracy; no positives for TPR/FNR; no negatives for FPR) gets NaN, meaning
"undefined here". Aggregates (`difference`, `ratio`, worst group/class, balanced accuracy)
ignore NaN groups, and are NaN only when every group is NaN. Nothing raises inside jit.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tradeoffs.fairness import groups as groups_lib

# (labels [E], preds [..., E], pos_label) -> (numerator [..., E], denominator [..., E] | None).
TermsFn = Callable[[jax.Array, jax.Array, int], tuple[jax.Array, jax.Array | None]]


@dataclasses.dataclass(frozen=True)
class RateMetric:
  """sum(numerator) / sum(denominator) over examples; a count when denominator is None."""
  name: str
  terms: TermsFn

  def __call__(self, labels, preds, *, pos_label: int = 1, weights=None):
    """The metric over all examples -> [...] (leading axes of preds)."""
    labels, preds = _check_inputs(labels, preds)
    group_ids = jnp.zeros(labels.shape[0], jnp.int32)
    return _grouped(self, labels, preds, group_ids, 1, pos_label, weights)[..., 0]


def _accuracy(labels, preds, pos_label):
  del pos_label
  return (preds == labels).astype(jnp.float32), jnp.ones_like(preds, jnp.float32)


def _tpr(labels, preds, pos_label):
  positive = jnp.broadcast_to(labels == pos_label, preds.shape)
  return (positive & (preds == pos_label)).astype(jnp.float32), positive.astype(jnp.float32)


def _fnr(labels, preds, pos_label):
  positive = jnp.broadcast_to(labels == pos_label, preds.shape)
  return (positive & (preds != pos_label)).astype(jnp.float32), positive.astype(jnp.float32)


def _fpr(labels, preds, pos_label):
  negative = jnp.broadcast_to(labels != pos_label, preds.shape)
  return (negative & (preds == pos_label)).astype(jnp.float32), negative.astype(jnp.float32)


def _tnr(labels, preds, pos_label):
  negative = jnp.broadcast_to(labels != pos_label, preds.shape)
  return (negative & (preds != pos_label)).astype(jnp.float32), negative.astype(jnp.float32)


def _selection_rate(labels, preds, pos_label):
  del labels
  return (preds == pos_label).astype(jnp.float32), jnp.ones_like(preds, jnp.float32)


def _count(labels, preds, pos_label):
  del labels, pos_label
  return jnp.ones_like(preds, jnp.float32), None


accuracy = RateMetric("accuracy", _accuracy)
true_positive_rate = RateMetric("tpr", _tpr)
false_negative_rate = RateMetric("fnr", _fnr)
false_positive_rate = RateMetric("fpr", _fpr)
true_negative_rate = RateMetric("tnr", _tnr)
selection_rate = RateMetric("selection_rate", _selection_rate)
count = RateMetric("count", _count)
tpr, fnr = true_positive_rate, false_negative_rate
fpr, tnr = false_positive_rate, true_negative_rate

METRICS: dict[str, RateMetric] = {
    m.name: m for m in (accuracy, tpr, fnr, fpr, tnr, selection_rate, count)}


def register_metric(name: str, terms: TermsFn) -> RateMetric:
  """Adds a ratio metric under `name`; `terms` returns per-example (numerator, denominator).

  >>> import numpy as np
  >>> labels = np.array([1, 1, 0, 0, 1, 0])
  >>> preds = np.array([1, 0, 0, 1, 1, 0])
  >>> groups = np.array([0, 0, 0, 1, 1, 1])   # selection 1/3 vs 2/3, TPR 1/2 vs 1, FPR 0 vs 1/2
  >>> precision = register_metric("precision", lambda y, p, pos: (
  ...     (p == pos) & (y == pos), p == pos))
  >>> np.asarray(by_group("precision", labels, preds, groups)).tolist()   # 1/1, 1/2
  [1.0, 0.5]
  >>> del METRICS["precision"]
  """
  if name in METRICS:
    raise ValueError(f"metric {name!r} is already registered")
  METRICS[name] = RateMetric(name, terms)
  return METRICS[name]


def get_metric(metric: str | RateMetric) -> RateMetric:
  """The registered `RateMetric` named `metric` (a RateMetric is returned as is).

  >>> get_metric("tpr") is true_positive_rate, get_metric(accuracy) is accuracy
  (True, True)
  """
  if isinstance(metric, RateMetric):
    return metric
  if metric not in METRICS:
    raise ValueError(f"metric={metric!r} is unknown; valid keys: {sorted(METRICS)}")
  return METRICS[metric]


def _check_inputs(labels, preds):
  labels = jnp.asarray(labels)
  preds = jnp.asarray(preds)
  if labels.ndim != 1:
    raise ValueError(f"labels has shape {labels.shape}: expected [examples]")
  if jnp.issubdtype(preds.dtype, jnp.floating):
    # Scores or logits [..., examples, classes]: the predicted label is the argmax.
    if preds.ndim < 2 or preds.shape[-2] != labels.shape[0]:
      raise ValueError(f"preds has float shape {preds.shape}: float preds are scores "
                       f"[..., {labels.shape[0]}, classes]; pass predicted labels as ints")
    preds = jnp.argmax(preds, axis=-1)
  if preds.ndim < 1 or preds.shape[-1] != labels.shape[0]:
    raise ValueError(f"preds has shape {preds.shape}: expected [..., {labels.shape[0]}] "
                     f"predicted labels (or [..., {labels.shape[0]}, classes] scores) "
                     f"to match labels of shape {labels.shape}")
  return labels, preds


def _safe_divide(numerator, denominator):
  """numerator / denominator, NaN where the denominator is 0 (an empty group)."""
  positive = denominator > 0
  return jnp.where(positive, numerator / jnp.where(positive, denominator, 1.0), jnp.nan)


def _grouped(metric, labels, preds, group_ids, num_groups, pos_label, weights):
  numerator, denominator = metric.terms(labels, preds, pos_label)
  # Registered terms may be boolean masks; sums need floats.
  numerator = jnp.asarray(numerator, jnp.float32)
  denominator = None if denominator is None else jnp.asarray(denominator, jnp.float32)
  if weights is not None:
    weights = jnp.asarray(weights, jnp.float32)
    numerator = numerator * weights
    denominator = None if denominator is None else denominator * weights
  num = groups_lib.segment_sums(numerator, group_ids, num_groups)
  if denominator is None:
    return num
  return _safe_divide(num, groups_lib.segment_sums(denominator, group_ids, num_groups))


def by_group(metric: str | RateMetric, labels, preds, groups, *,
             num_groups: int | Sequence[int] | None = None, pos_label: int = 1,
             weights=None) -> jax.Array:
  """The metric within each group -> [..., num_groups] (NaN for empty groups).

  Args:
    metric: a registered name (see `METRICS`) or a `RateMetric`.
    labels: int [examples].
    preds: predicted labels [..., examples] (or scores [..., examples, classes]).
    groups: int [examples], or [examples, G] for the intersection of G attributes
      (ids as in `groups.intersect`).
    num_groups: static group count (per attribute for [examples, G]); needed under jit.
    pos_label: the positive class of binary metrics.
    weights: optional per-example weights [examples] (e.g. a 0/1 mask).

  >>> import numpy as np
  >>> labels = np.array([0, 1, 1, 0])
  >>> preds = np.array([[0, 1, 0, 0], [1, 1, 1, 1]])             # 2 members
  >>> np.asarray(by_group("accuracy", labels, preds, np.array([0, 0, 1, 1]))).tolist()
  [[1.0, 0.5], [0.5, 0.5]]
  """
  metric = get_metric(metric)
  labels, preds = _check_inputs(labels, preds)
  group_ids, num_groups = groups_lib.as_group_ids(groups, num_groups)
  if group_ids.shape[0] != labels.shape[0]:
    raise ValueError(f"groups has {group_ids.shape[0]} rows: expected one per example "
                     f"({labels.shape[0]})")
  return _grouped(metric, labels, preds, group_ids, num_groups, pos_label, weights)


_METHODS = ("between_groups", "to_overall")


def _check_method(method):
  if method not in _METHODS:
    raise ValueError(f"method={method!r} is unknown; valid: {list(_METHODS)}")


def difference_of(values, overall=None, method: str = "between_groups"):
  """max - min over groups (or max |group - overall|) of [..., groups] values, NaN-aware.

  >>> import numpy as np
  >>> float(difference_of(np.array([0.5, 1.0, np.nan])))                  # NaN groups ignored
  0.5
  >>> float(difference_of(np.array([0.5, 1.0]), 0.75, method="to_overall"))
  0.25
  """
  _check_method(method)
  values = jnp.asarray(values)
  if method == "between_groups":
    return jnp.nanmax(values, axis=-1) - jnp.nanmin(values, axis=-1)
  if overall is None:
    raise ValueError("method='to_overall' needs overall=")
  return jnp.nanmax(jnp.abs(values - jnp.asarray(overall)[..., None]), axis=-1)


def _ratio(smaller, larger):
  # Equal values have ratio 1, also 0 and 0 (fairlearn gives NaN there): parity holds.
  return jnp.where(larger == smaller, 1.0, smaller / jnp.where(larger == 0, 1.0, larger))


def ratio_of(values, overall=None, method: str = "between_groups"):
  """min / max over groups (or the smallest group/overall ratio, either way up) in [0, 1].

  >>> import numpy as np
  >>> float(ratio_of(np.array([0.5, 1.0])))
  0.5
  >>> round(float(ratio_of(np.array([0.5, 1.0]), 0.75, method="to_overall")), 4)   # 0.5 / 0.75
  0.6667
  >>> float(ratio_of(np.array([0.0, 0.0])))                                 # parity holds
  1.0
  """
  _check_method(method)
  values = jnp.asarray(values)
  if method == "between_groups":
    return _ratio(jnp.nanmin(values, axis=-1), jnp.nanmax(values, axis=-1))
  if overall is None:
    raise ValueError("method='to_overall' needs overall=")
  overall = jnp.broadcast_to(jnp.asarray(overall)[..., None], values.shape)
  per_group = _ratio(jnp.minimum(values, overall), jnp.maximum(values, overall))
  return jnp.nanmin(per_group, axis=-1)


def _gap(aggregate, metric, labels, preds, groups, method, kwargs):
  """`aggregate` (difference_of or ratio_of) of the per-group values of `metric`."""
  _check_method(method)
  values = by_group(metric, labels, preds, groups, **kwargs)
  overall = None
  if method == "to_overall":
    overall = get_metric(metric)(labels, preds, pos_label=kwargs.get("pos_label", 1),
                                 weights=kwargs.get("weights"))
  return aggregate(values, overall, method)


def difference(metric: str | RateMetric, labels, preds, groups, *,
               method: str = "between_groups", **kwargs) -> jax.Array:
  """Largest gap of `metric` between groups (or to the overall value); >= 0 or NaN.

  >>> import numpy as np
  >>> labels = np.array([1, 1, 0, 0, 1, 0])
  >>> preds = np.array([1, 0, 0, 1, 1, 0])
  >>> groups = np.array([0, 0, 0, 1, 1, 1])   # selection 1/3 vs 2/3, TPR 1/2 vs 1, FPR 0 vs 1/2
  >>> float(difference("tpr", labels, preds, groups))
  0.5
  """
  return _gap(difference_of, metric, labels, preds, groups, method, kwargs)


def ratio(metric: str | RateMetric, labels, preds, groups, *,
          method: str = "between_groups", **kwargs) -> jax.Array:
  """Smallest ratio of `metric` between groups (or to the overall value); in [0, 1].

  >>> import numpy as np
  >>> labels = np.array([1, 1, 0, 0, 1, 0])
  >>> preds = np.array([1, 0, 0, 1, 1, 0])
  >>> groups = np.array([0, 0, 0, 1, 1, 1])   # selection 1/3 vs 2/3, TPR 1/2 vs 1, FPR 0 vs 1/2
  >>> float(ratio("selection_rate", labels, preds, groups))
  0.5
  """
  return _gap(ratio_of, metric, labels, preds, groups, method, kwargs)


def demographic_parity_difference(labels, preds, groups, **kwargs) -> jax.Array:
  """Gap in selection rate P(pred = pos_label) between groups.

  >>> import numpy as np
  >>> labels = np.array([1, 1, 0, 0, 1, 0])
  >>> preds = np.array([1, 0, 0, 1, 1, 0])
  >>> groups = np.array([0, 0, 0, 1, 1, 1])   # selection 1/3 vs 2/3, TPR 1/2 vs 1, FPR 0 vs 1/2
  >>> round(float(demographic_parity_difference(labels, preds, groups)), 4)
  0.3333
  """
  return difference(selection_rate, labels, preds, groups, **kwargs)


def demographic_parity_ratio(labels, preds, groups, **kwargs) -> jax.Array:
  """Smallest ratio of selection rates P(pred = pos_label) between groups, in [0, 1].

  >>> import numpy as np
  >>> labels = np.array([1, 1, 0, 0, 1, 0])
  >>> preds = np.array([1, 0, 0, 1, 1, 0])
  >>> groups = np.array([0, 0, 0, 1, 1, 1])   # selection 1/3 vs 2/3, TPR 1/2 vs 1, FPR 0 vs 1/2
  >>> float(demographic_parity_ratio(labels, preds, groups))
  0.5
  """
  return ratio(selection_rate, labels, preds, groups, **kwargs)


def equal_opportunity_difference(labels, preds, groups, **kwargs) -> jax.Array:
  """Gap in true positive rate between groups (Hardt et al.).

  >>> import numpy as np
  >>> labels = np.array([1, 1, 0, 0, 1, 0])
  >>> preds = np.array([1, 0, 0, 1, 1, 0])
  >>> groups = np.array([0, 0, 0, 1, 1, 1])   # selection 1/3 vs 2/3, TPR 1/2 vs 1, FPR 0 vs 1/2
  >>> float(equal_opportunity_difference(labels, preds, groups))
  0.5
  """
  return difference(true_positive_rate, labels, preds, groups, **kwargs)


def equalized_odds_difference(labels, preds, groups, **kwargs) -> jax.Array:
  """The larger of the TPR gap and the FPR gap between groups (fairlearn's definition).

  >>> import numpy as np
  >>> labels = np.array([1, 1, 0, 0, 1, 0])
  >>> preds = np.array([1, 0, 0, 1, 1, 0])
  >>> groups = np.array([0, 0, 0, 1, 1, 1])   # selection 1/3 vs 2/3, TPR 1/2 vs 1, FPR 0 vs 1/2
  >>> float(equalized_odds_difference(labels, preds, groups))   # max(TPR gap, FPR gap)
  0.5
  """
  return jnp.maximum(difference(true_positive_rate, labels, preds, groups, **kwargs),
                     difference(false_positive_rate, labels, preds, groups, **kwargs))


def equalized_odds_ratio(labels, preds, groups, **kwargs) -> jax.Array:
  """The smaller of the TPR ratio and the FPR ratio between groups.

  >>> import numpy as np
  >>> labels = np.array([1, 1, 0, 0, 1, 0])
  >>> preds = np.array([1, 0, 0, 1, 1, 0])
  >>> groups = np.array([0, 0, 0, 1, 1, 1])   # selection 1/3 vs 2/3, TPR 1/2 vs 1, FPR 0 vs 1/2
  >>> float(equalized_odds_ratio(labels, preds, groups))        # min(1/2, 0/(1/2))
  0.0
  """
  return jnp.minimum(ratio(true_positive_rate, labels, preds, groups, **kwargs),
                     ratio(false_positive_rate, labels, preds, groups, **kwargs))


def worst_group_accuracy(labels, preds, groups, *, num_groups=None, weights=None) -> jax.Array:
  """Lowest accuracy over non-empty groups -> [...].

  >>> import numpy as np
  >>> labels = np.array([1, 1, 0, 0, 1, 0])
  >>> preds = np.array([1, 0, 0, 1, 1, 0])
  >>> groups = np.array([0, 0, 0, 1, 1, 1])   # selection 1/3 vs 2/3, TPR 1/2 vs 1, FPR 0 vs 1/2
  >>> preds2 = np.array([[1, 0, 0, 1, 1, 0], [1, 1, 0, 0, 1, 0]])   # 2 members
  >>> np.asarray(worst_group_accuracy(labels, preds2, groups), np.float64).round(4).tolist()
  [0.6667, 1.0]
  """
  values = by_group(accuracy, labels, preds, groups, num_groups=num_groups, weights=weights)
  return jnp.nanmin(values, axis=-1)


def per_class_accuracy(labels, preds, *, num_classes: int | None = None) -> jax.Array:
  """Recall of each true class -> [..., num_classes] (NaN for classes absent from labels).

  >>> import numpy as np
  >>> labels, preds = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0])   # recall .5, 1, 0
  >>> np.asarray(per_class_accuracy(labels, preds, num_classes=4)).tolist()   # class 3 absent
  [0.5, 1.0, 0.0, nan]
  """
  labels = jnp.asarray(labels)
  return by_group(accuracy, labels, preds, labels, num_groups=num_classes)


def worst_class_accuracy(labels, preds, *, num_classes: int | None = None) -> jax.Array:
  """Lowest per-class recall over classes present in labels -> [...].

  >>> import numpy as np
  >>> labels, preds = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0])   # recall .5, 1, 0
  >>> float(worst_class_accuracy(labels, preds))
  0.0
  """
  return jnp.nanmin(per_class_accuracy(labels, preds, num_classes=num_classes), axis=-1)


def balanced_accuracy(labels, preds, *, num_classes: int | None = None) -> jax.Array:
  """Mean per-class recall over classes present in labels (as sklearn's).

  >>> import numpy as np
  >>> labels, preds = np.array([0, 0, 1, 1, 2]), np.array([0, 1, 1, 1, 0])   # recall .5, 1, 0
  >>> float(balanced_accuracy(labels, preds))     # sklearn.metrics.balanced_accuracy_score: 0.5
  0.5
  """
  return jnp.nanmean(per_class_accuracy(labels, preds, num_classes=num_classes), axis=-1)


def summary(labels, preds, groups, *, group_names: Sequence[str] | None = None,
            metrics: Sequence[str] = ("accuracy", "tpr", "fpr", "fnr", "selection_rate",
                                      "count"),
            pos_label: int = 1, num_groups=None) -> dict[str, dict]:
  """A MetricFrame-like nested dict for trade-off records (host side, not for jit).

  Returns {metric: {"overall", "by_group": {name: value}, "difference", "ratio"}}, with
  group names from `intersect` for [examples, G] groups (`group_names` names attributes).

  >>> import numpy as np
  >>> labels = np.array([1, 1, 0, 0, 1, 0])
  >>> preds = np.array([1, 0, 0, 1, 1, 0])
  >>> groups = np.array([0, 0, 0, 1, 1, 1])   # selection 1/3 vs 2/3, TPR 1/2 vs 1, FPR 0 vs 1/2
  >>> out = summary(labels, preds, groups, group_names=["a", "b"], metrics=("selection_rate", "count"))
  >>> [round(v, 4) for v in out["selection_rate"]["by_group"].values()], round(out["selection_rate"]["difference"], 4)
  ([0.3333, 0.6667], 0.3333)
  >>> out["count"]["by_group"], "difference" in out["count"]
  ({'a': 3.0, 'b': 3.0}, False)
  """
  groups = jnp.asarray(groups)
  if groups.ndim == 2:
    values = None if num_groups is None or isinstance(num_groups, int) else num_groups
    inter = groups_lib.intersect(groups, values, group_names)
    ids, num, names = inter.ids, inter.num_groups, inter.names
  else:
    ids, num = groups_lib.as_group_ids(groups, num_groups)
    names = list(group_names) if group_names is not None else [str(g) for g in range(num)]
    if len(names) != num:
      raise ValueError(f"group_names has {len(names)} names for {num} groups")
  out = {}
  for name in metrics:
    metric = get_metric(name)
    values = np.asarray(by_group(metric, labels, preds, ids, num_groups=num,
                                 pos_label=pos_label))
    overall = np.asarray(metric(labels, preds, pos_label=pos_label))
    entry: dict = {"overall": overall.tolist(),
                   "by_group": {n: values[..., i].tolist() for i, n in enumerate(names)}}
    if metric is not count:
      entry["difference"] = np.asarray(difference_of(values)).tolist()
      entry["ratio"] = np.asarray(ratio_of(values)).tolist()
    out[name] = entry
  return out


def as_mapping(values, names: Sequence[str]) -> Mapping[str, float]:
  """{group name: value} from a [num_groups] array, for records.

  >>> import numpy as np
  >>> as_mapping(np.array([0.5, 1.0]), ["a", "b"])
  {'a': 0.5, 'b': 1.0}
  """
  values = np.asarray(values)
  return {n: float(values[i]) for i, n in enumerate(names)}
