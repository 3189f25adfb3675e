"""A population of R ensembles of S members: member i belongs to ensemble i // S.

The pieces a trainer and a study need to train and score grouped ensembles as one
population: the co-training coupling term of every ensemble (`make_coupling_fn`,
`cotraining_coupling`), combined ensemble logits (`ensemble_logits`) and the members'
diversity (`member_diversity`). Arrays only: no Flax, no trainer.
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np

from tradeoffs.ensembles.combine import get_combiner
from tradeoffs.ensembles.divide import check_num_members
from tradeoffs.ensembles import losses as losses_lib


def _grouped(x: Any, num_members: int) -> jax.Array:
  x = jnp.asarray(x)
  if x.shape[0] % num_members:
    raise ValueError(f"{x.shape[0]} members are not a multiple of S={num_members}")
  return x.reshape(x.shape[0] // num_members, num_members, *x.shape[1:])


def make_coupling_fn(num_members: int, *, loss: str = "js_divergence",
                     weight_schedule: Callable[[Any], jax.Array] | None = None,
                     ) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
  """coupling_fn(logits [R*S, B, C], labels, step) = lambda_step * sum_r cot(logits_r).

  The co-training loss of each ensemble is computed on its own members only, so
  independent ensembles stay independent; with `weight_schedule` None the weight is 1.

  >>> import numpy as np
  >>> logits = np.array([[[1.0, 0.0]], [[1.0, 0.0]],         # ensemble 0: members agree
  ...                    [[50.0, 0.0]], [[0.0, 50.0]]])      # ensemble 1: they disagree
  >>> coupling = make_coupling_fn(2)                      # R=2 ensembles of S=2
  >>> round(float(coupling(logits, None, 0)), 4)          # JS of ensemble 1 only: ln 2
  0.6931
  >>> half = make_coupling_fn(2, weight_schedule=lambda step: 0.5)
  >>> round(float(half(logits, None, 0)), 4)
  0.3466
  """
  num_members = check_num_members(num_members, "num_members")
  cot_fn = losses_lib.get_cotraining_loss(loss)

  def coupling_fn(logits, labels, step):
    del labels
    per_ensemble = jax.vmap(cot_fn)(_grouped(logits, num_members))
    weight = 1.0 if weight_schedule is None else weight_schedule(step)
    return weight * jnp.sum(per_ensemble)

  return coupling_fn


def cotraining_coupling(ensemble_size: int, loss: str = "js_divergence", weight: float = 0.5,
                        warmup_steps: int = 0, floor: float = 0.005
                        ) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
  """`make_coupling_fn` with λ_t ramped linearly per step over `warmup_steps` (never below
  `floor`), then held at `weight` (the paper's schedule, per step instead of per epoch).

  >>> import numpy as np
  >>> logits = np.array([[[1.0, 0.0]], [[1.0, 0.0]],         # ensemble 0: members agree
  ...                    [[50.0, 0.0]], [[0.0, 50.0]]])      # ensemble 1: they disagree
  >>> coupling = cotraining_coupling(2, weight=0.5, warmup_steps=10)
  >>> js = float(losses_lib.js_divergence(logits[2:]))
  >>> [round(float(coupling(logits, None, t)) / js, 4) for t in (0, 4, 20)]   # the weight
  [0.005, 0.2, 0.5]
  """
  size = check_num_members(ensemble_size, "ensemble_size")
  schedule = lambda step: losses_lib.cotraining_weight(  # noqa: E731
      step, weight=weight, warmup_epochs=warmup_steps, floor=floor)
  return make_coupling_fn(size, loss=loss, weight_schedule=schedule)


def ensemble_logits(member_logits: Any, num_members: int, mode: str = "mean_logits"
                    ) -> np.ndarray:
  """Combined scores [R, N, C] of R ensembles from member logits [R*S, N, C].

  >>> import numpy as np
  >>> logits = np.array([[[1.0, 0.0]], [[1.0, 0.0]],         # ensemble 0: members agree
  ...                    [[50.0, 0.0]], [[0.0, 50.0]]])      # ensemble 1: they disagree
  >>> ensemble_logits(logits, 2).tolist()                  # [R, N, C], mean logits
  [[[1.0, 0.0]], [[25.0, 25.0]]]
  """
  combiner = get_combiner(mode)
  return np.asarray(jax.vmap(combiner)(_grouped(member_logits, num_members)))


def member_diversity(member_logits: Any, num_members: int, loss: str) -> float | None:
  """The co-training loss of the trained members on a test set, mean over ensembles.

  >>> import numpy as np
  >>> logits = np.array([[[1.0, 0.0]], [[1.0, 0.0]],         # ensemble 0: members agree
  ...                    [[50.0, 0.0]], [[0.0, 50.0]]])      # ensemble 1: they disagree
  >>> round(member_diversity(logits, 2, "js_divergence"), 4)   # mean of 0 and ln 2
  0.3466
  >>> member_diversity(logits, 1, "js_divergence") is None
  True
  """
  if num_members < 2:
    return None
  cot_fn = losses_lib.get_cotraining_loss(loss)
  # One program, not one per primitive (the loss runs once per variant, eagerly otherwise).
  return float(jnp.mean(jax.jit(jax.vmap(cot_fn))(_grouped(member_logits, num_members))))
