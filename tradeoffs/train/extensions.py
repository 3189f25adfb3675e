"""Plug-ins of the training step: extra loss terms and extra per-batch inputs.

One general mechanism instead of one `StepConfig` field per study. A `StepExtension` may

  * read per-example arrays that travel with the training set (`inputs`: names of arrays
    in `DeviceData.extras`, [N, ...], gathered with every batch by the same indices —
    teacher logits for distillation, per-example weights, ids of selected examples);
  * add a term to each member's loss (`member_loss(logits [B, C], batch) -> scalar`,
    e.g. a fairness penalty on group attributes, a distillation loss on teacher logits);
  * weight the examples of each member's data loss (`example_weights(losses [B], batch)
    -> [B] >= 0`; the data loss becomes Σ w·ℓ / max(Σ w, ε): example selection such as
    Selective Backprop, or importance weights);
  * add a term that ties members together (`population_loss(logits [M, B, C], labels
    [M, B], step) -> scalar`, e.g. co-training);
  * report metrics from the gradients (`grad_metrics(params, grads, opt_state) -> dict`,
    e.g. effective gradient flow);
  * ask for per-example gradients (`per_example_grads=True`): the optimizer then receives
    gradients with a leading batch axis [B, ...] (DP-SGD clips and noises them in optax);
  * carry state across steps (`init_state(key) -> pytree`, one member's; it lives in
    `TrainState.extension_state[name]` with a member axis, so checkpoints save it and a
    resumed run continues bitwise): `update_state(state, losses [B], batch) -> state` sees
    each step's per-example losses (a history of recent losses, running statistics);
  * select which examples are backpropagated (`select(losses [B], batch) -> (indices [k],
    weights [k], state)` with a static `backward_size` k): the step then runs a forward
    pass on the whole batch, gathers the k chosen examples and runs forward + backward on
    those only (weight-0 rows pad a short selection), so backpropagation costs k examples,
    not B. `batch.state` is the extension's state (after `update_state`); the returned
    state is carried on. At most one extension selects.

Extensions are frozen dataclasses, so a `StepConfig` holding them stays a static, hashable
key of the compiled step. Several compose; their names must differ.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, NamedTuple

import jax


class Batch(NamedTuple):
  """One member's batch as the extensions see it."""
  images: jax.Array           # [B, ...] after augmentation
  labels: jax.Array           # [B]
  groups: jax.Array           # [B, G]
  extras: dict[str, jax.Array]  # name -> [B, ...], the gathered per-example inputs
  step: jax.Array             # scalar int32
  state: Any = None           # the reading extension's own carried state (one member's)


@dataclasses.dataclass(frozen=True)
class StepExtension:
  name: str
  inputs: tuple[str, ...] = ()
  member_loss: Callable[[jax.Array, Batch], jax.Array] | None = None
  example_weights: Callable[[jax.Array, Batch], jax.Array] | None = None
  population_loss: Callable[[jax.Array, jax.Array, jax.Array], jax.Array] | None = None
  grad_metrics: Callable[[Any, Any, Any], dict[str, jax.Array]] | None = None
  per_example_grads: bool = False
  init_state: Callable[[jax.Array], Any] | None = None
  update_state: Callable[[Any, jax.Array, Batch], Any] | None = None
  select: Callable[[jax.Array, Batch], tuple[jax.Array, jax.Array, Any]] | None = None
  backward_size: int = 0

  @property
  def stateful(self) -> bool:
    return self.init_state is not None


# The weights of the examples a selecting extension chose travel with the gathered batch
# as this per-example input (the data loss multiplies them in).
SELECTION_WEIGHT = "selection_weight"


def check(extensions: tuple[StepExtension, ...], extras: dict[str, Any] | None = None
          ) -> None:
  """Unique names; every input an extension reads is present in `extras` (when given)."""
  names = [e.name for e in extensions]
  if len(set(names)) != len(names):
    raise ValueError(f"step extensions need distinct names; got {names}")
  for e in extensions:
    if not isinstance(e, StepExtension):
      raise ValueError(f"step extensions must be StepExtension, got {type(e).__name__}")
    if (e.update_state is not None or e.select is not None) and e.init_state is None:
      raise ValueError(f"step extension {e.name!r} updates or selects with a state, so it "
                       "needs init_state")
    if e.select is not None and int(e.backward_size) < 1:
      raise ValueError(f"step extension {e.name!r} selects examples and needs a "
                       f"backward_size >= 1, got {e.backward_size}")
    if extras is not None:
      missing = [k for k in e.inputs if k not in extras]
      if missing:
        raise ValueError(f"step extension {e.name!r} reads per-example inputs {missing}, "
                         f"which the training data lacks (has {sorted(extras)})")
  if sum(e.select is not None for e in extensions) > 1:
    raise ValueError("at most one step extension may select examples; got "
                     f"{[e.name for e in extensions if e.select is not None]}")


def coupling(fn: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
             name: str = "coupling") -> StepExtension:
  """A population term `fn(logits [M, B, C], labels [M, B], step)` (co-training)."""
  return StepExtension(name=name, population_loss=fn)


def group_loss(fn: Callable[[jax.Array, jax.Array, jax.Array], jax.Array],
               name: str = "group_loss") -> StepExtension:
  """A member term `fn(logits [B, C], labels [B], groups [B, G])` (group regularisers)."""
  return StepExtension(name=name, member_loss=lambda logits, b: fn(logits, b.labels, b.groups))


def grad_metrics(fn: Callable[[Any, Any, Any], dict[str, jax.Array]],
                 name: str = "grad_metrics") -> StepExtension:
  """Per-member metrics `fn(params, grads, opt_state) -> dict` (e.g. gradient flow)."""
  return StepExtension(name=name, grad_metrics=fn)


# StepConfig fields of earlier versions, mapped onto extensions by `experiment.build`.
LEGACY = {"coupling_fn": coupling, "group_loss_fn": group_loss,
          "grad_metrics_fn": grad_metrics}
