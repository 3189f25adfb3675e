"""An optax wrapper that prunes: masks live in the optimizer state and update on schedule.

    tx = sparsity.masked(optax.adam(1e-3), sparsity.gradual(0.9, 0, 200, 10))
    state = tx.init(params)            # or jax.vmap(tx.init)(population_params)
    updates, state = tx.update(grads, state, params)

Each step the wrapper (1) zeroes the gradients of pruned weights before the inner optimizer
(so its moments are those of the sparse network), (2) on schedule steps, under `lax.cond`,
recomputes the masks from |params + inner updates| (the magnitudes after this step), with
already-pruned weights ranked last so masks only shrink, and (3) returns
`where(mask, inner_update, -param)`: a weight pruned this step jumps to exactly 0 and stays
exactly 0 afterwards (x + (-x) == 0 in IEEE arithmetic; 0 + -0 == 0).

Under `jax.vmap` (populations) the step counter is batched, and a plain `lax.cond` would turn
into a select that recomputes masks every step. `cond_any_member` gives the cond a batching
rule instead: it runs the recomputation (for all members, then selects per member) only on
steps where some member is due, so a population pays for mask updates on update steps only.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple, Optional, Sequence

import jax
import jax.numpy as jnp
import optax

from tradeoffs.sparsity import distributions
from tradeoffs.sparsity import masks as masks_lib
from tradeoffs.sparsity import schedules


class MaskedState(NamedTuple):
  """Optimizer state of `masked`: step count, boolean masks (params' structure), inner state."""
  count: jax.Array
  masks: Any
  inner_state: Any


def _layer_targets(params, schedule, distribution, filter_fn, keep_dense):
  """Per-layer final sparsities (static), or None for global ranking."""
  if distribution == distributions.GLOBAL:
    return None
  names = masks_lib.prunable_names(params, filter_fn, keep_dense)
  shapes = {}
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    name = masks_lib.path_name(path)
    if name in names:
      shapes[name] = tuple(jnp.shape(leaf))
  return distributions.layer_sparsities(shapes, schedule.target_sparsity, distribution)


def masked(inner: optax.GradientTransformation, schedule: Optional[schedules.Schedule] = None,
           distribution="global", *, filter_fn: Optional[masks_lib.FilterFn] = None,
           keep_dense: Sequence[str] = (), init_masks: Optional[Callable[[Any], Any]] = None,
           mask_gradients: bool = True, tie_break_seed: int = 0
           ) -> optax.GradientTransformationExtraArgs:
  """Wraps `inner` so that pruned weights stay exactly zero and masks follow `schedule`.

  Args:
    inner: the optimizer to wrap.
    schedule: a `schedules.Schedule` (`gradual`, `one_shot`, `fixed`); None = fixed masks.
    distribution: 'global', a layer-wise key ('uniform', 'erk') or a {name: sparsity} map.
      Layer-wise targets are computed at the schedule's final sparsity s_f and scaled by
      s_t / s_f over time, so every layer follows the cubic ramp and the total equals s_t.
    filter_fn, keep_dense: which leaves are prunable (see `masks.prunable_names`).
    init_masks: `params -> masks` (e.g. a `random_masks` partial) for the initial masks;
      default all True. For per-member masks in a population, set them after `init` with
      `replace_masks`.
    mask_gradients: zero pruned weights' gradients before the inner optimizer.
    tie_break_seed: seed of the tie-break hash in mask recomputation.

  Returns:
    An optax transformation whose `update` requires `params`.

  >>> import numpy as np
  >>> import optax
  >>> params = {"w": np.array([[1.0, -3.0], [0.5, 2.0]], np.float32)}
  >>> tx = masked(optax.sgd(0.1), schedules.one_shot(0.5, step=0))   # 50% at the first update
  >>> state = tx.init(params)
  >>> updates, state = tx.update({"w": np.ones((2, 2), np.float32)}, state, params)
  >>> new = optax.apply_updates(params, updates)
  >>> np.asarray(new["w"], np.float64).round(3).tolist()      # the 2 smallest |w| are exactly zero
  [[0.0, -3.1], [0.0, 1.9]]
  >>> np.asarray(get_masks(state)["w"]).astype(int).tolist()
  [[0, 1], [0, 1]]
  """
  if not isinstance(inner, optax.GradientTransformation):
    raise ValueError(f"inner must be an optax.GradientTransformation, got {type(inner).__name__}")
  if schedule is not None and not isinstance(schedule, schedules.Schedule):
    raise ValueError(f"schedule must be a sparsity Schedule (gradual, one_shot, fixed) or None, "
                     f"got {schedule!r}")
  distributions.check_distribution(distribution)
  inner = optax.with_extra_args_support(inner)
  updates_masks = schedule is not None and schedule.updates_masks

  def init_fn(params):
    if init_masks is None:
      initial = jax.tree.map(lambda p: jnp.ones(jnp.shape(p), bool), params)
    else:
      initial = jax.tree.map(lambda m: jnp.asarray(m, bool), init_masks(params))
    return MaskedState(jnp.zeros((), jnp.int32), initial, inner.init(params))

  def update_fn(updates, state, params=None, **extra_args):
    if params is None:
      raise ValueError("masked(...).update needs params (to keep pruned weights at zero)")
    current = state.masks
    if mask_gradients:
      updates = masks_lib.apply_masks(updates, current)
    inner_updates, inner_state = inner.update(updates, state.inner_state, params, **extra_args)
    new_masks = current
    if updates_masks:
      layer_targets = _layer_targets(params, schedule, distribution, filter_fn, keep_dense)

      def recompute(count, params, inner_updates, current):
        sparsity = schedule.sparsity(count)
        after_step = jax.tree.map(lambda p, u: jnp.abs(p + u), params, inner_updates)
        layer_sparsity = None
        if layer_targets is not None:
          ratio = (sparsity / schedule.target_sparsity if schedule.target_sparsity > 0
                   else jnp.zeros_like(sparsity))
          layer_sparsity = {name: target * ratio for name, target in layer_targets.items()}
        return masks_lib.score_masks(
            after_step, sparsity, distributions.GLOBAL if layer_targets is None else "uniform",
            filter_fn=filter_fn, keep_dense=keep_dense, masks=current,
            tie_break_seed=tie_break_seed, layer_sparsity=layer_sparsity)

      keep_current = lambda count, params, inner_updates, current: current  # noqa: E731
      new_masks = masks_lib.cond_any_member(schedule.is_update_step(state.count), recompute,
                                            keep_current, state.count, params, inner_updates,
                                            current)
    final = jax.tree.map(lambda m, u, p: jnp.where(m, u, -p).astype(u.dtype),
                         new_masks, inner_updates, params)
    return final, MaskedState(state.count + 1, new_masks, inner_state)

  return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def _is_masked_state(x) -> bool:
  return isinstance(x, MaskedState)


def get_masks(opt_state):
  """The masks held by the (first) `MaskedState` inside an optimizer state.

  >>> import numpy as np
  >>> import optax
  >>> state = masked(optax.sgd(0.1)).init({"w": np.zeros((2, 2))})   # no schedule: all kept
  >>> np.asarray(get_masks(state)["w"]).tolist()
  [[True, True], [True, True]]
  """
  for node in jax.tree.leaves(opt_state, is_leaf=_is_masked_state):
    if isinstance(node, MaskedState):
      return node.masks
  raise ValueError("opt_state holds no MaskedState (was the optimizer wrapped by masked()?)")


def replace_masks(opt_state, new_masks):
  """`opt_state` with every `MaskedState`'s masks replaced (e.g. per-member random masks).

  >>> import numpy as np
  >>> import optax
  >>> params = {"w": np.ones((1, 2), np.float32)}
  >>> tx = masked(optax.sgd(1.0))
  >>> state = replace_masks(tx.init(params), {"w": np.array([[True, False]])})
  >>> updates, _ = tx.update({"w": np.ones((1, 2), np.float32)}, state, params)
  >>> np.asarray(optax.apply_updates(params, updates)["w"]).tolist()   # pruned entry -> 0
  [[0.0, 0.0]]
  """
  found = []

  def swap(node):
    if isinstance(node, MaskedState):
      found.append(True)
      return node._replace(masks=jax.tree.map(lambda m: jnp.asarray(m, bool), new_masks))
    return node

  result = jax.tree.map(swap, opt_state, is_leaf=_is_masked_state)
  if not found:
    raise ValueError("opt_state holds no MaskedState (was the optimizer wrapped by masked()?)")
  return result
