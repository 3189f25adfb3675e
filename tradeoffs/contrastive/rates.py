"""Per-parameter learning rates held in the optimizer state (pure optax).

Linear evaluation trains the head of a frozen encoder; fine-tuning and training from
scratch train everything, perhaps at another rate. Written as different optimizers, each
is its own compiled training step. Written as one optimizer whose rates are state —
arguments of the step, not constants — they are one step: end-to-end training sets every
rate to the learning rate, linear evaluation sets the encoder's to 0 and the head's to
the probe's rate.

    tx = contrastive.leaf_rates(optax.adam(1.0), learning_rate=1e-3)   # inner at rate 1
    opt_state = contrastive.with_rates(opt_state, lambda name: 1e-2 if "head" in name else 0)
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import optax


class LeafRatesState(NamedTuple):
  """The rate of each parameter leaf (float32 scalars in the params' structure; a
  population's carry the member axis) and the inner optimizer's state."""
  rates: Any
  inner_state: Any


def _check_rate(value: Any, name: str) -> float:
  ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.number))
        and math.isfinite(float(value)) and float(value) >= 0)
  if not ok:
    raise ValueError(f"{name}={value!r}: a learning rate must be a finite number >= 0")
  return float(value)


def leaf_rates(inner: optax.GradientTransformation, learning_rate: float
               ) -> optax.GradientTransformationExtraArgs:
  """`inner`'s updates times each leaf's rate from the state (initially `learning_rate`
  for every leaf).

  `inner` is built with learning rate 1 (its schedule's shape, peak 1): SGD, Adam and
  AdamW updates are linear in the learning rate, so `inner` at rate 1 scaled by r is the
  optimizer at rate r (for Adam bitwise: -1·d·r == -r·d). A rate of 0 freezes a leaf; an
  exact zero (a pruned weight) then stays exactly zero.

  >>> params = {"w": np.ones(2, np.float32)}
  >>> tx = leaf_rates(optax.sgd(1.0), learning_rate=0.5)
  >>> updates, _ = tx.update({"w": np.ones(2, np.float32)}, tx.init(params), params)
  >>> np.asarray(updates["w"]).tolist()
  [-0.5, -0.5]
  """
  rate = _check_rate(learning_rate, "learning_rate")
  inner = optax.with_extra_args_support(inner)

  def init_fn(params):
    return LeafRatesState(jax.tree.map(lambda _: jnp.asarray(rate, jnp.float32), params),
                          inner.init(params))

  def update_fn(updates, state, params=None, **extra_args):
    updates, inner_state = inner.update(updates, state.inner_state, params, **extra_args)
    scaled = jax.tree.map(lambda u, r: (u * r).astype(u.dtype), updates, state.rates)
    return scaled, LeafRatesState(state.rates, inner_state)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _is_rates(node: Any) -> bool:
  return isinstance(node, LeafRatesState)


def with_rates(opt_state: Any, rate_of: Callable[[str], float]) -> Any:
  """`opt_state` with the rates of every `LeafRatesState` in it set to `rate_of(name)`
  ('dense_0/kernel': the leaf's path in the params), each placed like the rate it
  replaces (a population's keep their member axis and sharding).

  >>> tx = leaf_rates(optax.sgd(1.0), learning_rate=0.1)
  >>> ones = np.ones(2, np.float32)
  >>> params = {"dense_0": {"kernel": ones}, "head": {"kernel": ones}}
  >>> state = with_rates(tx.init(params), lambda name: 0.5 if "head" in name else 0.0)
  >>> updates, _ = tx.update(params, state, params)                   # gradients = ones
  >>> new = optax.apply_updates(params, updates)
  >>> [np.asarray(new[k]["kernel"]).tolist() for k in ("dense_0", "head")]   # frozen, trained
  [[1.0, 1.0], [0.5, 0.5]]
  """
  found = []

  def set_rates(node):
    if not isinstance(node, LeafRatesState):
      return node
    found.append(True)

    def one(path, old):
      value = _check_rate(rate_of(jax.tree_util.keystr(path, simple=True, separator="/")),
                          f"rate of {jax.tree_util.keystr(path, simple=True, separator='/')}")
      new = np.full(np.shape(old), value, np.float32)
      sharding = getattr(old, "sharding", None)
      return jax.device_put(new, sharding) if sharding is not None else jnp.asarray(new)

    return node._replace(rates=jax.tree_util.tree_map_with_path(one, node.rates))

  result = jax.tree.map(set_rates, opt_state, is_leaf=_is_rates)
  if not found:
    raise ValueError("opt_state holds no LeafRatesState (was the optimizer wrapped by "
                     "leaf_rates()?)")
  return result
