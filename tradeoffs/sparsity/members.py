"""Fixed random masks for every member of a population (pruning at init, SC-SDC).

    masks = members.member_masks(init_keys, pop_params, layer_sparsity, 0.9)   # [M, ...]
    state = members.mask_state_fn(init_keys, layer_sparsity, 0.9)(state)

Member i's masks are uniformly random per layer with exactly the per-layer kept counts of
`layer_sparsity` (e.g. `same_capacity_pair(...)["layer_sparsity"]`), drawn from member i's
init key folded with a fixed salt, so they differ across members, repeat across runs, and
do not depend on how the population is sharded. `mask_state_fn` zeroes the pruned weights
and stores the masks in the `wrapper.masked` optimizer state, where they stay fixed (no
schedule): pruned weights and their updates stay exactly zero.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Mapping

import jax

from tradeoffs.sparsity import masks as masks_lib
from tradeoffs.sparsity import wrapper

MASK_SALT = 0x6D61736B  # 'mask': member i's masks come from its init key folded with this.


def member_masks(init_keys: jax.Array, params: Any, layer_sparsity: Mapping[str, float],
                 nominal_sparsity: float) -> Any:
  """Random masks per member [M, ...] with exactly the per-layer kept counts.

  Args:
    init_keys: raw key data [M, ...] (uint32), one per member.
    params: population params with a leading member axis.
    layer_sparsity: {kernel name: sparsity}, a `random_masks` distribution mapping.
    nominal_sparsity: the sparsity of prunable leaves the mapping does not name.
  """
  return _member_masks_program()(init_keys, params, tuple(sorted(layer_sparsity.items())),
                                 float(nominal_sparsity))


@functools.cache
def _member_masks_program():
  # One jit with static sparsities: populations of the same parameter structure share one
  # compilation (mask selection is the costliest compile here). Masks are drawn once per
  # population, so on CPU they compile without LLVM's optimisations (6 -> ~1 CPU s for the
  # sparse_vs_dense smoke's MLP); integer draws and a ranking give the same masks. Built
  # on first use: asking for the backend at import would initialise it before XLA flags.
  options = {"xla_backend_optimization_level": 0} if jax.default_backend() == "cpu" else None
  return jax.jit(_member_masks, static_argnames=("layer_sparsity", "nominal_sparsity"),
                 compiler_options=options)


def _member_masks(init_keys, params, layer_sparsity, nominal_sparsity):
  def one(raw_key, member_params):
    key = jax.random.fold_in(jax.random.wrap_key_data(raw_key), MASK_SALT)
    return masks_lib.random_masks(key, member_params, nominal_sparsity,
                                  distribution=dict(layer_sparsity))

  return jax.vmap(one)(init_keys, params)


def mask_state_fn(init_keys: jax.Array, layer_sparsity: Mapping[str, float],
                  nominal_sparsity: float) -> Callable[[Any], Any]:
  """A `state_fn` for a fresh population state (anything with `params`, `opt_state` and
  `replace`, its optimizer wrapped by `wrapper.masked`): draws per-member masks, zeroes
  the pruned weights and stores the masks in the optimizer state."""

  def state_fn(state):
    masks = member_masks(init_keys, state.params, layer_sparsity, nominal_sparsity)
    new = state.replace(params=masks_lib.apply_masks(state.params, masks),
                        opt_state=wrapper.replace_masks(state.opt_state, masks))
    # Keep the population's member sharding (the eager vmap may have placed them elsewhere).
    return jax.tree.map(lambda n, o: jax.device_put(n, o.sharding), new, state)

  return state_fn
