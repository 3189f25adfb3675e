"""Pruning schedules: when masks are recomputed and to what sparsity.

`gradual` is Zhu & Gupta (2017) gradual magnitude pruning:
  s_t = s_f + (s_i - s_f) * (1 - (t - t0) / (t_end - t0)) ** power   (power 3),
with masks recomputed at t0, t0 + frequency, ... and at t_end; s_t = s_i before t0 and s_f
after t_end. `one_shot` is the same with t0 = t_end. `fixed` never recomputes (the masks the
wrapper starts with are kept, e.g. random masks for pruning at initialisation).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from tradeoffs.sparsity import distributions


@dataclasses.dataclass(frozen=True)
class Schedule:
  """A pruning schedule over optimizer steps (the 0-based count of `update` calls).

  Attributes:
    target_sparsity: final sparsity s_f in [0, 1).
    initial_sparsity: s_i at `begin_step`.
    begin_step: first mask update t0; None means masks are never recomputed.
    end_step: last mask update t_end (>= begin_step).
    frequency: steps between mask updates (>= 1).
    power: exponent of the polynomial ramp (3 = Zhu & Gupta).
  """
  target_sparsity: float
  initial_sparsity: float = 0.0
  begin_step: int | None = 0
  end_step: int = 0
  frequency: int = 1
  power: float = 3.0

  def __post_init__(self):
    distributions.check_sparsity(self.target_sparsity, "target_sparsity")
    distributions.check_sparsity(self.initial_sparsity, "initial_sparsity")
    if self.begin_step is None:
      return
    if int(self.begin_step) < 0:
      raise ValueError(f"begin_step must be >= 0, got {self.begin_step!r}")
    if int(self.end_step) < int(self.begin_step):
      raise ValueError(f"end_step must be >= begin_step, got end_step={self.end_step!r} "
                       f"before begin_step={self.begin_step!r}")
    if int(self.frequency) < 1:
      raise ValueError(f"frequency must be >= 1, got {self.frequency!r}")
    if self.power <= 0:
      raise ValueError(f"power must be > 0, got {self.power!r}")

  @property
  def updates_masks(self) -> bool:
    return self.begin_step is not None

  def sparsity(self, step):
    """Target sparsity at `step` (jnp float32 scalar)."""
    step = jnp.asarray(step, jnp.float32)
    if self.begin_step is None:
      return jnp.asarray(self.target_sparsity, jnp.float32) + 0.0 * step
    span = max(int(self.end_step) - int(self.begin_step), 1)
    progress = jnp.clip((step - self.begin_step) / span, 0.0, 1.0)
    if self.end_step == self.begin_step:
      progress = (step >= self.begin_step).astype(jnp.float32)
    s_f, s_i = self.target_sparsity, self.initial_sparsity
    return (s_f + (s_i - s_f) * (1.0 - progress) ** self.power).astype(jnp.float32)

  def is_update_step(self, step):
    """True at begin_step + j * frequency up to end_step, and at end_step itself."""
    step = jnp.asarray(step, jnp.int32)
    if self.begin_step is None:
      return jnp.zeros_like(step, bool)
    in_range = (step >= self.begin_step) & (step <= self.end_step)
    on_grid = (step - self.begin_step) % self.frequency == 0
    return in_range & (on_grid | (step == self.end_step))


def gradual(target_sparsity: float, begin_step: int, end_step: int, frequency: int,
            initial_sparsity: float = 0.0, power: float = 3.0) -> Schedule:
  """Zhu & Gupta gradual magnitude pruning from s_i at begin_step to s_f at end_step.

  >>> s = gradual(0.8, begin_step=0, end_step=10, frequency=5)
  >>> [round(float(s.sparsity(t)), 3) for t in (0, 5, 10, 20)]   # 0.8 (1 - (1 - t/10)^3)
  [0.0, 0.7, 0.8, 0.8]
  >>> [bool(s.is_update_step(t)) for t in (0, 3, 5, 10, 11)]
  [True, False, True, True, False]
  """
  return Schedule(target_sparsity, initial_sparsity, begin_step, end_step, frequency, power)


def one_shot(target_sparsity: float, step: int) -> Schedule:
  """Prune to `target_sparsity` once, at `step`, then keep the masks.

  >>> s = one_shot(0.9, step=100)
  >>> round(float(s.sparsity(100)), 6), [bool(s.is_update_step(t)) for t in (99, 100, 101)]
  (0.9, [False, True, False])
  """
  return Schedule(target_sparsity, target_sparsity, step, step, 1)


def fixed(target_sparsity: float = 0.0) -> Schedule:
  """Never recompute masks (keep those the wrapper starts with); sparsity is informational.

  >>> s = fixed(0.5)
  >>> s.updates_masks, bool(s.is_update_step(0)), float(s.sparsity(7))
  (False, False, 0.5)
  """
  return Schedule(target_sparsity, target_sparsity, None)


_REGISTRY = {"gradual": gradual, "one_shot": one_shot, "fixed": fixed}


def get(name: str, **kwargs) -> Schedule:
  """Builds a schedule by registry key: 'gradual', 'one_shot' or 'fixed'."""
  if name not in _REGISTRY:
    raise ValueError(f"schedule must be one of {sorted(_REGISTRY)}, got {name!r}")
  return _REGISTRY[name](**kwargs)
