"""Multi-task fairness (MTA-F; Wang et al., KDD 2021; PAPERS.md section 4): per-task fairness
losses on negatives, their split into head-exclusive and shared parts with gradients routed
to heads vs trunk, and the relative metrics ARFG and ARE.

    objective = multitask.Objective(loss="mmd", lam=1.0, routing="mtaf")
    grads, terms = multitask.routed_grads(apply_fn, params, x, labels, groups, objective)
    step = multitask.make_step(apply_fn, tx, objective, data, batch_size)   # pure
    population = multitask.train_population(init_fn, apply_fn, tx, objective, data,
                                            init_keys=..., data_keys=..., steps=..., ...)

Terms, for tasks t with weights w_t (Σ w_t = 1; two tasks: α and 1 − α), task loss L_t
(mean cross-entropy over the batch) and fairness loss F (`FAIRNESS_LOSSES`) between the
score distributions of group 1 and group 0:

  Full_t = F on all t-negatives (label_t = 0);
  Excl_t = λ_head · F on the head-exclusive t-negatives: negative for t and positive for
           every other task (two tasks: "negative for t, positive for the other", as in the
           paper; with more tasks those are the negatives no other task's fairness term
           also pulls on);
  baseline routing: every parameter gets the gradient of Σ_t w_t (L_t + λ_t Full_t);
  MTA-F routing:    head t gets the gradient of            w_t (L_t + λ_t Excl_t),
                    the trunk gets the gradient of Σ_t w_t L_t + Σ_t λ_t w_t (Full_t − Excl_t),
so the trunk never sees the head-exclusive terms and each head sees only its own.

The losses are the reference code's (`min_diff_losses.py`, `uci.py`) up to scale: the
reference sums its cross-entropy over the batch, here it is the batch mean, so λ here is
relative to a per-example loss (sweep it; do not transfer the reference's λ = 1).

Why a small loop of its own and not `Context.train`: the routed step needs two gradient
calls with different losses per parameter group, which the trainer's `StepExtension`
(extra loss terms and example weights on one loss) cannot express; and the tabular
populations train in seconds, so the runner's variant-level skip and resume suffices (no
mid-run checkpoints). The loop is one jitted `lax.scan` over steps with the population
vmapped (the models are matmul-only, so a vmapped population is fast on CPU); the
caller passes the optimizer (the study: `tradeoffs.train.make_optimizer`) and one raw init and
data-order key per member (the study: `tradeoffs.train.Seeds.member_keys`, base + i), as
plain callables and arrays (a technique package imports no models or training code).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tradeoffs.data import batching
from tradeoffs.fairness import losses

ROUTINGS = ("baseline", "mtaf")
# Top-level parameter names of the shared trunk (`tradeoffs.models.multitask` names its
# layers so); every other top-level name belongs to one task's tower and head.
TRUNK_PREFIX = "trunk_"
_EPS = 1e-12


# ---------------------------------------------------------------------------------------
# Fairness losses between group 1 and group 0 over weighted (e.g. negative) examples.


def _has_both(weights, groups):
  g = groups.astype(jnp.float32)
  return (jnp.sum(weights * g) > 0) & (jnp.sum(weights * (1.0 - g)) > 0)


def mmd_loss(scores, groups, weights, bandwidth: float = 0.1) -> jax.Array:
  """Squared MMD (Gaussian kernel, `losses.mmd_squared`) between the group-1 and group-0
  scores among the weighted examples; 0 when either group has none."""
  g = groups.astype(jnp.float32)
  value = losses.mmd_squared(scores, scores, bandwidth, weights_a=weights * g,
                             weights_b=weights * (1.0 - g))
  return jnp.where(_has_both(weights, groups), value, 0.0)


def fpr_gap_loss(scores, groups, weights, bandwidth: float = 0.1) -> jax.Array:
  """|soft FPR(group 1) − soft FPR(group 0)|: the gap of mean positive scores over the
  weighted examples (the negatives, so a soft false-positive rate); 0 when a group is empty.
  (The surrogate of `losses.fpr_gap`, made safe for training: no NaN, absolute.)"""
  del bandwidth
  g = groups.astype(jnp.float32)

  def mean_score(member):
    w = weights * member
    return jnp.sum(w * scores) / jnp.maximum(jnp.sum(w), _EPS)

  return jnp.where(_has_both(weights, groups), jnp.abs(mean_score(g) - mean_score(1.0 - g)),
                   0.0)


def correlation_loss(scores, groups, weights, bandwidth: float = 0.1) -> jax.Array:
  """|weighted Pearson correlation| of score and group over the weighted examples
  (`losses.abs_correlation`); 0 when a group is empty."""
  del bandwidth
  value = losses.abs_correlation(scores, groups.astype(jnp.float32), weights)
  return jnp.where(_has_both(weights, groups), value, 0.0)


FAIRNESS_LOSSES: dict[str, Callable[..., jax.Array]] = {
    "mmd": mmd_loss, "fpr_gap": fpr_gap_loss, "corr": correlation_loss}


# ---------------------------------------------------------------------------------------
# The objective and its terms.


@dataclasses.dataclass(frozen=True)
class Objective:
  """One multi-task training objective (hashable: a static argument of jitted steps).

  loss: a key of `FAIRNESS_LOSSES`, or "none" (the vanilla multi-task model).
  lam: λ_t, one per task (a float applies to every task).
  head_lambda: λ_head, the weight of the head-exclusive part (MTA-F routing only).
  task_weights: w_t, one per task, summing to 1 (None: uniform; two tasks: α, 1 − α).
  routing: "baseline" (the same loss everywhere) or "mtaf".
  bandwidth: the MMD kernel length scale l.
  """
  loss: str = "none"
  lam: float | tuple[float, ...] = 1.0
  head_lambda: float = 1.0
  task_weights: tuple[float, ...] | None = None
  routing: str = "baseline"
  bandwidth: float = 0.1

  def __post_init__(self):
    if self.loss != "none" and self.loss not in FAIRNESS_LOSSES:
      raise ValueError(f"loss={self.loss!r}: choose 'none' or one of {list(FAIRNESS_LOSSES)}")
    if self.routing not in ROUTINGS:
      raise ValueError(f"routing={self.routing!r}: choose one of {ROUTINGS}")
    lam = tuple(self.lam) if isinstance(self.lam, (tuple, list)) else (self.lam,)
    if any(not np.isfinite(v) or v < 0 for v in lam):
      raise ValueError(f"lam={self.lam!r}: every λ must be a finite number >= 0")
    object.__setattr__(self, "lam", tuple(float(v) for v in lam))
    if self.task_weights is not None:
      w = tuple(float(v) for v in self.task_weights)
      if any(v < 0 for v in w) or abs(sum(w) - 1.0) > 1e-6:
        raise ValueError(f"task_weights={self.task_weights!r}: non-negative, summing to 1")
      object.__setattr__(self, "task_weights", w)
    if not self.bandwidth > 0 or self.head_lambda < 0:
      raise ValueError(f"bandwidth={self.bandwidth!r} must be > 0 and head_lambda="
                       f"{self.head_lambda!r} >= 0")

  def weights(self, num_tasks: int) -> jax.Array:
    w = self.task_weights or (1.0 / num_tasks,) * num_tasks
    if len(w) != num_tasks:
      raise ValueError(f"task_weights has {len(w)} entries for {num_tasks} tasks")
    return jnp.asarray(w, jnp.float32)

  def lambdas(self, num_tasks: int) -> jax.Array:
    lam = self.lam * num_tasks if len(self.lam) == 1 else self.lam
    if len(lam) != num_tasks:
      raise ValueError(f"lam has {len(lam)} entries for {num_tasks} tasks")
    return jnp.asarray(lam, jnp.float32)


def positive_scores(logits) -> jax.Array:
  """P(label = 1) per task from logits [..., T, C]: sigmoid for C = 1, softmax for C ≥ 2."""
  if logits.shape[-1] == 1:
    return jax.nn.sigmoid(logits[..., 0])
  return jax.nn.softmax(logits, axis=-1)[..., 1]


def task_cross_entropy(logits, labels) -> jax.Array:
  """Mean cross-entropy per task [T] of logits [B, T, C] against labels [B, T]."""
  if logits.shape[-1] == 1:
    per = optax.sigmoid_binary_cross_entropy(logits[..., 0], labels.astype(jnp.float32))
  else:
    per = optax.softmax_cross_entropy_with_integer_labels(logits, labels)
  return jnp.mean(per, axis=0)


def negatives(labels) -> jax.Array:
  """[B, T] float mask: example is a negative (label 0) of task t."""
  return (labels == 0).astype(jnp.float32)


def exclusive_negatives(labels) -> jax.Array:
  """[B, T] float mask: negative for task t and positive for every other task."""
  positive = (labels != 0)
  num_tasks = labels.shape[1]
  others = jnp.stack([jnp.all(jnp.delete(positive, t, axis=1, assume_unique_indices=True),
                              axis=1) for t in range(num_tasks)], axis=1)
  return ((~positive) & others).astype(jnp.float32)


def fairness_terms(scores, labels, groups, objective: Objective) -> tuple[jax.Array,
                                                                          jax.Array]:
  """(Full [T], Excl [T]) for scores [B, T]: F on all t-negatives and λ_head · F on the
  head-exclusive t-negatives (zeros for loss "none")."""
  num_tasks = labels.shape[1]
  if objective.loss == "none":
    zero = jnp.zeros(num_tasks, jnp.float32)
    return zero, zero
  fn = functools.partial(FAIRNESS_LOSSES[objective.loss], bandwidth=objective.bandwidth)
  neg, excl = negatives(labels), exclusive_negatives(labels)
  full = jnp.stack([fn(scores[:, t], groups, neg[:, t]) for t in range(num_tasks)])
  exclusive = jnp.stack([fn(scores[:, t], groups, excl[:, t]) for t in range(num_tasks)])
  return full, objective.head_lambda * exclusive


def head_and_shared_losses(logits, labels, groups, objective: Objective
                           ) -> tuple[jax.Array, jax.Array, dict[str, jax.Array]]:
  """(Σ_t head-t loss, the trunk's loss, terms) from logits [B, T, C], labels [B, T],
  groups [B] (0/1). See the module docstring for the two routings."""
  num_tasks = labels.shape[1]
  w, lam = objective.weights(num_tasks), objective.lambdas(num_tasks)
  ce = task_cross_entropy(logits, labels)
  full, excl = fairness_terms(positive_scores(logits), labels, groups, objective)
  if objective.routing == "mtaf":
    head = jnp.sum(w * (ce + lam * excl))
    shared = jnp.sum(w * ce) + jnp.sum(lam * w * (full - excl))
  else:
    head = shared = jnp.sum(w * (ce + lam * full))
  return head, shared, {"cross_entropy": ce, "full": full, "exclusive": excl}


def is_shared(name: str) -> bool:
  """Whether a top-level parameter name belongs to the shared trunk."""
  return name.startswith(TRUNK_PREFIX)


def routed_grads(apply_fn: Callable[..., Any], params: Mapping[str, Any], inputs, labels,
                 groups, objective: Objective) -> tuple[dict[str, Any], dict[str, Any]]:
  """Gradients with MTA-F routing: the trunk's (`is_shared` names) from the shared loss, every
  task's tower and head from the head losses; one gradient of the one loss for "baseline".

  `apply_fn(params, inputs)` returns logits [B, T, C]; `params` is a dict of top-level
  layers. Returns (grads like params, terms).
  """
  def losses_of(p):
    return head_and_shared_losses(apply_fn(p, inputs), labels, groups, objective)

  if objective.routing == "baseline":
    (_, terms), grads = jax.value_and_grad(lambda p: losses_of(p)[1:], has_aux=True)(params)
    return grads, terms
  def head_loss(p):
    head, _, terms = losses_of(p)
    return head, terms

  head_grads, terms = jax.grad(head_loss, has_aux=True)(params)
  shared_grads = jax.grad(lambda p: losses_of(p)[1])(params)
  unknown = [k for k in params if not is_shared(k) and not k.startswith("task")]
  if unknown:
    raise ValueError(f"parameters {unknown} are neither trunk_* nor task*_: cannot route")
  grads = {k: (shared_grads[k] if is_shared(k) else head_grads[k]) for k in params}
  return grads, terms


# ---------------------------------------------------------------------------------------
# Training a population (vmapped over seeds).


@dataclasses.dataclass(frozen=True)
class TaskData:
  """Flat inputs [N, D] float32, task labels [N, T] int32 and the 0/1 sensitive group [N]."""
  inputs: np.ndarray
  labels: np.ndarray
  groups: np.ndarray


def make_step(apply_fn: Callable[..., Any], tx: optax.GradientTransformation,
              objective: Objective, data: TaskData, batch_size: int) -> Callable:
  """step(carry, step_index) -> (carry, metrics) for one member, carry = (params,
  opt_state, data_key); pure, for `lax.scan` under `vmap`."""
  inputs = jnp.asarray(data.inputs)
  labels = jnp.asarray(data.labels)
  groups = jnp.asarray(data.groups)
  num_examples = int(labels.shape[0])

  def step(carry, index):
    params, opt_state, key = carry
    batch = batching.batch_indices(key, index, num_examples, batch_size)
    grads, terms = routed_grads(apply_fn, params, inputs[batch], labels[batch],
                                groups[batch], objective)
    updates, opt_state = tx.update(grads, opt_state, params)
    params = optax.apply_updates(params, updates)
    return (params, opt_state, key), terms

  return step


@dataclasses.dataclass
class Population:
  params: Any          # every leaf [members, ...]
  metrics: dict        # per-step terms, each [members, steps, T]


def train_population(init_fn: Callable[..., Any], apply_fn: Callable[..., Any],
                     tx: optax.GradientTransformation, objective: Objective, data: TaskData,
                     *, init_keys, data_keys, steps: int, batch_size: int) -> Population:
  """Trains one member per row of `init_keys` / `data_keys` (raw key data [members, k]) for
  `steps` steps: one jitted `lax.scan` over steps, the population vmapped.

  `init_fn(key, sample_inputs)` returns the params dict; `apply_fn(params, inputs)` the
  logits [B, T, C].
  """
  if batch_size > len(data.labels):
    raise ValueError(f"batch_size={batch_size} exceeds the {len(data.labels)} training "
                     "examples")
  sample = jnp.asarray(data.inputs[:1])
  step = make_step(apply_fn, tx, objective, data, batch_size)

  @jax.jit
  def run(init_keys, data_keys):
    def one(init_key, data_key):
      params = init_fn(jax.random.wrap_key_data(init_key), sample)
      carry = (params, tx.init(params), jax.random.wrap_key_data(data_key))
      (params, _, _), metrics = jax.lax.scan(step, carry, jnp.arange(steps))
      return params, metrics
    return jax.vmap(one)(init_keys, data_keys)

  params, metrics = run(jnp.asarray(init_keys), jnp.asarray(data_keys))
  return Population(params=params, metrics=metrics)


def predict_scores(apply_fn: Callable[..., Any], params: Any, inputs,
                   batch_size: int = 4096) -> np.ndarray:
  """P(label_t = 1) [members, N, T] of a population (params leaves [members, ...]) on
  inputs [N, D]; `apply_fn(params, inputs)` returns logits [B, T, C]."""
  apply = jax.jit(jax.vmap(lambda p, x: positive_scores(apply_fn(p, x)), in_axes=(0, None)))
  inputs = np.asarray(inputs)
  parts = [np.asarray(apply(params, jnp.asarray(inputs[i:i + batch_size])))
           for i in range(0, len(inputs), batch_size)]
  return np.concatenate(parts, axis=1)


# ---------------------------------------------------------------------------------------
# Evaluation: per-task accuracy, FPR gap, and the relative metrics.


def task_metrics(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray,
                 positive_rates: Sequence[float]) -> dict[str, np.ndarray]:
  """Per member and task [members, T]: error, FPR gap (group 1 − group 0) and |FPR gap|.

  Predictions threshold each task's scores so that its predicted positive rate equals the
  training positive rate (`losses.threshold_at_positive_rate`, the reference's rule), per
  member. scores [members, N, T], labels [N, T], groups [N].
  """
  # float32 throughout: the threshold comes back as float32 and must compare equal to
  # the score it was taken from.
  scores = np.asarray(scores, np.float32)
  labels, groups = np.asarray(labels), np.asarray(groups)
  members, _, num_tasks = scores.shape
  error = np.zeros((members, num_tasks))
  gap = np.zeros((members, num_tasks))
  for m in range(members):
    for t in range(num_tasks):
      threshold = np.float32(losses.threshold_at_positive_rate(scores[m, :, t],
                                                               float(positive_rates[t])))
      predicted = (scores[m, :, t] >= threshold).astype(np.int32)
      error[m, t] = float(np.mean(predicted != labels[:, t]))
      gap[m, t] = float(losses.fpr_gap(labels[:, t], predicted, groups))
  return {"error": error, "fpr_gap": gap, "abs_fpr_gap": np.abs(gap)}


def relative_average(values: np.ndarray, reference: np.ndarray, floor: Any = 0.0
                     ) -> np.ndarray:
  """(1/T) Σ_t values[..., t] / max(reference[t], floor[t]): ARFG with |FPR gaps|, ARE with
  errors (PAPERS.md section 4), per member; `reference` [T] is the baseline's (mean)
  value. `floor` (a number or [T]) is the measurement resolution (e.g. one example's share),
  so that a baseline that measures exactly 0 does not divide by zero."""
  values, reference = np.asarray(values, np.float64), np.asarray(reference, np.float64)
  if values.shape[-1] != reference.shape[-1]:
    raise ValueError(f"values have {values.shape[-1]} tasks, the reference {reference.shape}")
  denominator = np.maximum(reference, np.broadcast_to(np.asarray(floor, np.float64),
                                                      reference.shape))
  if np.any(denominator <= 0):
    raise ValueError(f"reference values {reference.tolist()} must be > 0 to divide by (or "
                     "give a floor > 0)")
  return np.mean(values / denominator, axis=-1)


def arfg(abs_gaps: np.ndarray, baseline_abs_gaps: np.ndarray, floor: Any = 0.0
         ) -> np.ndarray:
  """Average relative fairness gap: (1/T) Σ_t FG_t / FG_t^base (FG = |FPR gap|)."""
  return relative_average(abs_gaps, baseline_abs_gaps, floor)


def are(errors: np.ndarray, baseline_errors: np.ndarray, floor: Any = 0.0) -> np.ndarray:
  """Average relative error: (1/T) Σ_t Err_t / Err_t^base."""
  return relative_average(errors, baseline_errors, floor)


def gap_resolution(labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
  """Per task [T], the smallest non-zero |FPR gap| a split can show: one false positive
  in the group with fewer negatives, 1 / min_g #negatives(g) (inf without negatives)."""
  labels, groups = np.asarray(labels), np.asarray(groups)
  out = []
  for t in range(labels.shape[1]):
    counts = [int(np.sum((labels[:, t] == 0) & (groups == g))) for g in (0, 1)]
    out.append(1.0 / min(counts) if min(counts) > 0 else np.inf)
  return np.asarray(out)


def pareto_front(points: Sequence[tuple[float, float]]) -> list[int]:
  """Indices of the points no other point dominates (both coordinates lower is better),
  sorted by the first coordinate."""
  pts = [tuple(map(float, p)) for p in points]
  front = [i for i, p in enumerate(pts)
           if not any(q[0] <= p[0] and q[1] <= p[1] and q != p for q in pts)]
  return sorted(front, key=lambda i: pts[i])
