"""Shared pieces of the training configs.

A config file defines `get_config(arg=None)`. `arg` is the text after ':' in
`--config=path.py:arg`: a variant name such as `smoke`, optionally followed by
comma-separated `key=value` overrides (`:smoke,members=2`). Each config declares the
variants it handles in `parse_arg(arg, variants=(...))`; any other name raises.
"""

from __future__ import annotations

import os
import sys

import ml_collections


def parse_arg(arg: str | None, variants: tuple[str, ...] = (),
              **defaults) -> ml_collections.ConfigDict:
  """'smoke,members=2' -> {variant: 'smoke', members: 2}, typed like `defaults`.

  `variants` are the variant names the calling config handles ('' is always allowed);
  anything else raises, so that a typo (`:smokey`) cannot silently run the full config.
  """
  # The calling config file, to name it in errors (`digits_mlp.py`).
  name = os.path.basename(sys._getframe(1).f_code.co_filename)  # pylint: disable=protected-access
  allowed = ("",) + tuple(v for v in variants if v)
  out = ml_collections.ConfigDict({"variant": "", **defaults})
  for part in (arg or "").split(","):
    part = part.strip()
    if not part:
      continue
    if "=" not in part:
      out.variant = part
      continue
    key, value = part.split("=", 1)
    key = key.strip()
    if key not in out:
      raise ValueError(
          f"config arg {key!r} is unknown for {name}; allowed keys: {sorted(out.keys())}; "
          f"variants: {', '.join(map(repr, allowed))}")
    default = out[key]
    if isinstance(default, bool):  # bool('False') is True.
      if value.lower() not in ("true", "false", "1", "0"):
        raise ValueError(f"config arg {key}={value!r} for {name}: expected true or false")
      out[key] = value.lower() in ("true", "1")
    elif default is None:
      out[key] = value
    else:
      try:
        out[key] = type(default)(value)
      except ValueError:
        raise ValueError(f"config arg {key}={value!r} for {name}: expected "
                         f"{type(default).__name__}") from None
  if out.variant not in allowed:
    raise ValueError(f"config variant {out.variant!r} is unknown for {name}; "
                     f"allowed: {', '.join(map(repr, allowed))}")
  return out


def base_config() -> ml_collections.ConfigDict:
  """Defaults shared by every training config; a config overrides what it needs."""
  c = ml_collections.ConfigDict()
  c.dataset = ml_collections.ConfigDict(dict(
      name="digits", data_dir="", max_train_examples=0, max_test_examples=0,
      label_attribute="", group_attributes=(),
      # 'memory': loaded once, batched on device; 'grain': streamed from ArrayRecord.
      pipeline="memory", grain_workers=0))
  c.model = ml_collections.ConfigDict(dict(name="mlp", kwargs=ml_collections.ConfigDict()))
  c.population = ml_collections.ConfigDict(dict(members=4))
  # Sources of randomness; those named in `vary` differ per member (seed + member index).
  c.seeds = ml_collections.ConfigDict(dict(init=0, data=0, augment=0, dropout=0,
                                           vary="init,data,augment,dropout"))
  c.optimizer = ml_collections.ConfigDict(dict(
      name="adam", learning_rate=1e-3, momentum=0.9, nesterov=False, b1=0.9, b2=0.999,
      eps=1e-8, weight_decay=0.0, decay_norms_and_biases=False, schedule="constant",
      warmup_steps=0, boundaries=(0.5, 0.75), decay_factor=0.1, grad_clip_norm=0.0))
  c.train = ml_collections.ConfigDict(dict(
      steps=1100, batch_size=128, steps_per_dispatch=100, log_every=100,
      checkpoint_every=500, eval_every=500,
      # Execution plan (tradeoffs.train.plan): 'auto' (by backend and model), 'scan_vmap',
      # 'step_vmap', 'scan_loop', 'step_loop', 'scan_unroll' or 'step_unroll'; pool: how
      # max-pooling is lowered, 'auto',
      # 'window' or 'reshape'; conv: how convolutions are, 'auto', 'lax' or 'im2col' (same
      # numbers to rounding). A resumed run keeps the plan it started with.
      plan="auto", pool="auto", conv="auto"))
  c.augment = ml_collections.ConfigDict(dict(names=()))
  c.mesh = ml_collections.ConfigDict(dict(member_shards=0))  # 0: gcd(members, devices)
  c.eval = ml_collections.ConfigDict(dict(batch_size=512, save_train_predictions=False))
  return c


def smoke(c: ml_collections.ConfigDict, steps: int = 20) -> ml_collections.ConfigDict:
  """Seconds on a laptop CPU: few steps, small eval."""
  c.train.steps = steps
  c.train.steps_per_dispatch = 10
  c.train.log_every = 10
  c.train.checkpoint_every = 10
  c.train.eval_every = steps
  return c
