"""Optimizer factory: SGD (momentum, Nesterov), Adam, AdamW with schedules and decay masks.

Weight decay semantics: for `sgd` and `adam` it is coupled L2 (added to the gradient, as
PyTorch's `weight_decay`); for `adamw` it is decoupled. By default norms and biases (leaves
with ndim <= 1) are not decayed, as in the Divide-and-Co-training reference code.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import optax

OPTIMIZERS = ("sgd", "adam", "adamw")
SCHEDULES = ("constant", "cosine", "warmup_cosine", "piecewise")


def _get(config: Any, key: str, default: Any = None) -> Any:
  if isinstance(config, Mapping):
    return config.get(key, default)
  return getattr(config, key, default) if hasattr(config, key) else default


def decay_mask(params: Any) -> Any:
  """True for leaves that weight decay applies to: kernels, not biases or norm scales."""
  return jax.tree.map(lambda p: p.ndim > 1, params)


def make_schedule(config: Any, total_steps: int) -> optax.Schedule:
  name = _get(config, "schedule", "constant")
  lr = float(_get(config, "learning_rate", 1e-3))
  warmup = int(_get(config, "warmup_steps", 0))
  if name not in SCHEDULES:
    raise ValueError(f"optimizer.schedule={name!r} is unknown; choose from {SCHEDULES}")
  if warmup < 0 or warmup > total_steps:
    raise ValueError(f"optimizer.warmup_steps={warmup} must be in [0, train.steps="
                     f"{total_steps}]")
  if name == "constant":
    return optax.constant_schedule(lr)
  if name == "cosine":
    return optax.cosine_decay_schedule(lr, max(total_steps, 1))
  if name == "warmup_cosine":
    return optax.warmup_cosine_decay_schedule(0.0, lr, warmup, max(total_steps, warmup + 1))
  # piecewise: boundaries are fractions of training (0 < b < 1) or absolute steps.
  boundaries = list(_get(config, "boundaries", (0.5, 0.75)))
  scale = float(_get(config, "decay_factor", 0.1))
  steps = [int(b * total_steps) if 0 < b < 1 else int(b) for b in boundaries]
  if sorted(steps) != steps:
    raise ValueError(f"optimizer.boundaries={boundaries} must be increasing")
  base = optax.piecewise_constant_schedule(lr, {s: scale for s in steps})
  if warmup:
    return optax.join_schedules([optax.linear_schedule(0.0, lr, warmup), base], [warmup])
  return base


def make_optimizer(config: Any, total_steps: int,
                   mask: Callable[[Any], Any] | None = None) -> optax.GradientTransformation:
  """An optax transformation from an optimizer config.

  Config keys: name (sgd|adam|adamw), learning_rate, momentum (sgd, 0 = plain SGD),
  nesterov, b1, b2, eps, weight_decay, decay_norms_and_biases, schedule
  (constant|cosine|warmup_cosine|piecewise), warmup_steps, boundaries, decay_factor,
  grad_clip_norm.
  """
  name = _get(config, "name", "adam")
  if name not in OPTIMIZERS:
    raise ValueError(f"optimizer.name={name!r} is unknown; choose from {OPTIMIZERS}")
  lr = float(_get(config, "learning_rate", 1e-3))
  if not lr > 0:
    raise ValueError(f"optimizer.learning_rate={lr} must be > 0")
  schedule = make_schedule(config, total_steps)
  wd = float(_get(config, "weight_decay", 0.0) or 0.0)
  if wd < 0:
    raise ValueError(f"optimizer.weight_decay={wd} must be >= 0")
  wd_mask = None if _get(config, "decay_norms_and_biases", False) else (mask or decay_mask)
  chain = []
  clip = _get(config, "grad_clip_norm", None)
  if clip:
    chain.append(optax.clip_by_global_norm(float(clip)))
  if name == "adamw":
    chain.append(optax.adamw(schedule, b1=float(_get(config, "b1", 0.9)),
                             b2=float(_get(config, "b2", 0.999)),
                             eps=float(_get(config, "eps", 1e-8)), weight_decay=wd,
                             mask=wd_mask))
    return optax.chain(*chain)
  if wd:
    chain.append(optax.add_decayed_weights(wd, mask=wd_mask))
  if name == "sgd":
    momentum = float(_get(config, "momentum", 0.9))
    chain.append(optax.sgd(schedule, momentum=momentum or None,
                           nesterov=bool(_get(config, "nesterov", False))))
  else:
    chain.append(optax.adam(schedule, b1=float(_get(config, "b1", 0.9)),
                            b2=float(_get(config, "b2", 0.999)),
                            eps=float(_get(config, "eps", 1e-8))))
  return optax.chain(*chain)
