"""Population training that records per-example dynamics and selects examples to augment.

    state, dyn = training.train(state, dataset.train, step_config, mesh, epochs=30,
                                selection="lowest_p_true", fraction=0.2, start_epoch=4)
    dyn.p_true          # float16 [M, E, N]: each member's true-class probability per epoch
    dyn.save(path)      # one .npz, written once

How the dynamics are measured: a dedicated pass over the whole training set at every epoch
boundary, in eval mode on the unaugmented images, inside the epoch's compiled program (one
dispatch per epoch: a `lax.scan` over the epoch's steps followed by a `lax.scan` over the
training set in batches of `eval_batch`). The per-epoch rows stay on device and come to the
host once, at the end. Why a pass and not the training batches' own forward passes: (1)
every example is scored with the same parameters (the end of the epoch), not at whichever
step it happened to be drawn; (2) the score of an example chosen for augmentation is not
measured on its augmented view, so the selection does not feed on its own effect; (3)
dropout and batch norm do not move the score. It costs one forward pass over the training
set per epoch (about a third of an epoch of training).

Which examples an epoch augments (`selection`; per member, from that member's own scores):
  none            no example;
  all             every example (uniform augmentation);
  random          exactly k = round(fraction · N) examples drawn uniformly each epoch
                  (the budget-matched control of the targeted selection);
  lowest_p_true   the k examples with the lowest true-class probability at the end of the
                  previous epoch (D'souza et al. 2021, "A tale of two long tails": the
                  bottom 20% by softmax probability of the label are augmented next epoch).
Epochs before `start_epoch` augment nothing, or, with `augment_before_start=True`, every
example (except under `none`) — what the paper's code does (`dsouzadaniel/long_tail`,
train_c10.py: all examples are augmented until the bottom 20% are first chosen at the end of
epoch 4; its scores are the training batches' own softmax outputs). The selection is
a traced input of the compiled epoch, so populations that differ only in it (a study's
variants, given the same `step_config` object) share one compilation.

The step itself is the trainer's (`population.update_step`: loss, extensions, optimizer);
batches are `population.member_batch`'s (a function of each member's data key and step);
augmentation is the step config's `augment_fn` with the member's augment key folded with
the step, exactly as `population.augment_members` applies it — so `selection="all"`,
`start_epoch=0` trains the same model as the plain trainer with that augmentation, and
`selection="none"` the same as the plain trainer without it (tests/dynamics). Only the
vmapped (`scan_vmap`) execution plan is supported; training starts at step 0 and is not
checkpointed within a call (a study variant reruns whole when preempted).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh

from tradeoffs.data import batching
from tradeoffs.dynamics import measures as measures_lib
from tradeoffs.dynamics import summaries
from tradeoffs.train import distributed
from tradeoffs.train import mesh as mesh_lib
from tradeoffs.train import population
from tradeoffs.train import seeds as seeds_lib

SELECTIONS = ("none", "all", "random", "lowest_p_true")
_SELECTION_SALT = 0x5E1EC7  # Folded into the augment key for the random selection's draws.


def check_fraction(fraction: float, name: str = "fraction") -> float:
  value = float(fraction)
  if not (np.isfinite(value) and 0.0 < value <= 1.0):
    raise ValueError(f"{name}={fraction!r} must be in (0, 1] (the share of the training "
                     "examples augmented each epoch)")
  return value


def selection_count(fraction: float, num_examples: int) -> int:
  """k = round(fraction · N), at least 1: the examples the random / lowest selections pick."""
  return max(1, int(round(check_fraction(fraction) * int(num_examples))))


@dataclasses.dataclass(frozen=True)
class Dynamics:
  """Per-example dynamics of a population: [M, E, N] per quantity (float16 / bool)."""
  loss: np.ndarray
  p_true: np.ndarray
  margin: np.ndarray
  correct: np.ndarray
  augmented: np.ndarray  # which examples each epoch augmented (the honest count of work)
  ids: np.ndarray        # [N] example ids of the training split

  @property
  def members(self) -> int:
    return int(self.loss.shape[0])

  @property
  def epochs(self) -> int:
    return int(self.loss.shape[1])

  def save(self, path: str) -> str:
    with open(path, "wb") as f:
      np.savez_compressed(f, **dataclasses.asdict(self))
    return path

  @classmethod
  def load(cls, path: str) -> "Dynamics":
    with np.load(path) as z:
      return cls(**{f.name: z[f.name] for f in dataclasses.fields(cls)})

  def per_member(self, fn, quantity: str, **kwargs) -> np.ndarray:
    """`fn(quantity[m] [E, N])` for every member, stacked [M, ...] (e.g. summaries)."""
    values = getattr(self, quantity)
    return np.stack([fn(values[m], **kwargs) for m in range(self.members)])

  def area_under_margin(self, start: int = 0) -> np.ndarray:
    return self.per_member(summaries.area_under_margin, "margin", start=start)

  def first_learned(self) -> np.ndarray:
    return self.per_member(summaries.first_learned, "correct")

  def forgetting_events(self) -> np.ndarray:
    return self.per_member(summaries.forgetting_events, "correct")

  def forgetting_score(self) -> np.ndarray:
    return self.per_member(summaries.forgetting_score, "correct")


def _select(p_true: jax.Array, keys: jax.Array, epoch: jax.Array, selection: jax.Array,
            count: int, start_epoch: int, augment_before_start: bool = False) -> jax.Array:
  """The augmentation mask [M, N] of epoch `epoch` from the scores at its start.

  `selection` is traced (an index into SELECTIONS), so one compiled program serves every
  selection: the variants of a study share their compilation.
  """
  members, n = p_true.shape

  def draw(key):
    key = jax.random.fold_in(jax.random.fold_in(seeds_lib.wrap(key), _SELECTION_SALT), epoch)
    return jax.random.uniform(key, (n,))

  order_by = jnp.where(selection == SELECTIONS.index("random"), jax.vmap(draw)(keys), p_true)
  chosen = jnp.argsort(order_by, axis=1, stable=True)[:, :count]  # Ties: by position.
  lowest = jnp.zeros((members, n), bool).at[jnp.arange(members)[:, None], chosen].set(True)
  mask = jnp.where(selection == SELECTIONS.index("all"), True,
                   jnp.where(selection == SELECTIONS.index("none"), False, lowest))
  before = jnp.logical_and(augment_before_start, selection != SELECTIONS.index("none"))
  return jnp.where(epoch >= start_epoch, mask, before)


def _member_batch_and_mask(rngs, step, data, mask, batch_size):
  """One member's batch (as `population.member_batch` draws it) and its mask entries."""
  config = population.StepConfig(batch_size=batch_size)
  idx = batching.batch_indices(seeds_lib.wrap(rngs["data"]), step, data.num_examples,
                               batch_size)
  return population.member_batch(rngs, step, data, config), mask[idx]


def _train_measures(state: population.TrainState, data: population.DeviceData,
                    eval_batch: int) -> dict[str, jax.Array]:
  """Per-example measures [M, N] of every member on the whole (unaugmented) training set."""
  n = data.num_examples
  batch = min(int(eval_batch), n)
  padded = -(-n // batch) * batch
  pad = [(0, padded - n)] + [(0, 0)] * (data.images.ndim - 1)
  images = jnp.pad(data.images, pad).reshape(padded // batch, batch, *data.images.shape[1:])
  labels = jnp.pad(data.labels, (0, padded - n)).reshape(padded // batch, batch)

  def one(_, xy):
    logits = population.eval_step(state, xy[0])  # [M, B, C]
    return None, measures_lib.example_measures(logits, jnp.broadcast_to(xy[1], logits.shape[:2]))

  _, rows = jax.lax.scan(one, None, (images, labels))  # {name: [nb, M, B]}
  return {k: jnp.moveaxis(v, 0, 1).reshape(v.shape[1], padded)[:, :n] for k, v in rows.items()}


@functools.lru_cache(maxsize=32)
def _epoch_program(step_config: population.StepConfig, mesh: Mesh, steps: int, count: int,
                   start_epoch: int, eval_batch: int, augment_before_start: bool):
  augment_fn = step_config.augment_fn
  plain = dataclasses.replace(step_config, augment_fn=None)  # Augmentation is applied here.
  batch_size = int(step_config.batch_size)

  def one_step(carry, _):
    state, mask, data = carry
    (images, labels, groups, extras), chosen = population.over_members(
        functools.partial(_member_batch_and_mask, batch_size=batch_size),
        in_axes=(0, 0, None, 0))(state.rngs, state.step, data, mask)
    if augment_fn is not None:
      augmented = population.over_members(lambda k, s, x: augment_fn(
          jax.random.fold_in(seeds_lib.wrap(k), s), x))(state.rngs["augment"], state.step,
                                                          images)
      keep = chosen.reshape(chosen.shape + (1,) * (images.ndim - chosen.ndim))
      images = jnp.where(keep, augmented, images)
    state, metrics = population.update_step(state, images, labels, plain, mesh,
                                            groups=groups, extras=extras)
    return (state, mask, data), metrics

  def run(state, data, mask, epoch, selection):
    (state, _, _), metrics = jax.lax.scan(one_step, (state, mask, data), None, length=steps)
    row = _train_measures(state, data, eval_batch)
    next_mask = _select(row["p_true"], state.rngs["augment"], epoch + 1, selection, count,
                        start_epoch, augment_before_start)
    row = {k: v if v.dtype == jnp.bool_ else v.astype(jnp.float16) for k, v in row.items()}
    row["augmented"] = mask
    replicated = mesh_lib.replicated(mesh)
    return (state, jax.lax.with_sharding_constraint(row, replicated), next_mask,
            jax.lax.with_sharding_constraint(metrics, replicated))

  return jax.jit(run, donate_argnums=(0,))


@functools.lru_cache(maxsize=32)
def _first_mask_program(count: int, start_epoch: int, n: int, augment_before_start: bool):
  return jax.jit(lambda keys, selection: _select(jnp.zeros((keys.shape[0], n)), keys,
                                                 jnp.int32(0), selection, count, start_epoch,
                                                 augment_before_start))


def check_schedule(*, epochs: int, selection: str, fraction: float, start_epoch: int) -> None:
  if int(epochs) < 1:
    raise ValueError(f"epochs={epochs} must be >= 1")
  if selection not in SELECTIONS:
    raise ValueError(f"selection={selection!r}: choose from {list(SELECTIONS)}")
  check_fraction(fraction)
  if int(start_epoch) < 0:
    raise ValueError(f"start_epoch={start_epoch} must be >= 0")
  if selection == "lowest_p_true" and int(start_epoch) < 1:
    raise ValueError("selection='lowest_p_true' needs start_epoch >= 1: an epoch's scores "
                     "come from the end of the epoch before it")


def train(state: population.TrainState, split: Any, step_config: population.StepConfig,
          mesh: Mesh, *, epochs: int, selection: str = "none", fraction: float = 1.0,
          start_epoch: int = 0, augment_before_start: bool = False, eval_batch: int = 512,
          extras: dict[str, Any] | None = None
          ) -> tuple[population.TrainState, Dynamics, dict[str, np.ndarray]]:
  """Trains a fresh population for `epochs` epochs of N // batch steps; see the module doc.

  Returns (state, dynamics [M, E, N] on host, the last epoch's step metrics {name: [T, M]}).
  """
  check_schedule(epochs=epochs, selection=selection, fraction=fraction,
                 start_epoch=start_epoch)
  if int(np.max(distributed.to_host(state.step))) != 0:
    raise ValueError("dynamics.train starts from a fresh population (step 0)")
  n = len(split.labels)
  steps = batching.steps_per_epoch(n, int(step_config.batch_size))
  count = selection_count(fraction, n)
  data = population.to_device(split, mesh, extras)
  program = _epoch_program(step_config, mesh, steps, count, int(start_epoch), int(eval_batch),
                           bool(augment_before_start))
  code = jnp.int32(SELECTIONS.index(selection))
  mask = _first_mask_program(count, int(start_epoch), n, bool(augment_before_start))(
      state.rngs["augment"], code)
  rows, metrics = [], {}
  for epoch in range(int(epochs)):  # One dispatch per epoch; rows stay on device.
    state, row, mask, metrics = program(state, data, mask, jnp.int32(epoch), code)
    rows.append(row)
  host = distributed.to_host(rows)
  stacked = {k: np.stack([np.asarray(r[k]) for r in host], axis=1) for k in host[0]}
  dynamics = Dynamics(loss=stacked["loss"], p_true=stacked["p_true"],
                      margin=stacked["margin"], correct=stacked["correct"],
                      augmented=stacked["augmented"], ids=np.asarray(split.ids))
  return state, dynamics, {k: np.asarray(v) for k, v in distributed.to_host(metrics).items()}
