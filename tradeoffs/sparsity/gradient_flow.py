"""Effective gradient flow (Tessera, Hooker & Rosman 2021, "Keep the gradients flowing").

EGF_p = (1/L) * sum_{l=1..L} ||g_l ⊙ m_l||_p over the L prunable layers (slide 22 of the
authors' talk: a per-layer p-norm of the masked gradient, averaged over layers, with no
division by the number of active weights). `normalize=True` divides each layer's norm by
||m_l||_0 (the "normalized by active weights" reading found in summaries), as an option.
"""

from __future__ import annotations

from typing import Optional, Sequence

import jax
import jax.numpy as jnp

from tradeoffs.sparsity import masks as masks_lib


def _check_p(p) -> None:
  if isinstance(p, bool) or not isinstance(p, (int, float)) or p < 1:
    raise ValueError(f"p must be a number >= 1 (1 or 2 for EGF_1 / EGF_2), got {p!r}")


def _p_norm(x, p):
  x = jnp.abs(x.astype(jnp.float32)).ravel()
  if p == 1:
    return jnp.sum(x)
  if p == 2:
    return jnp.sqrt(jnp.sum(jnp.square(x)))
  return jnp.sum(x ** p) ** (1.0 / p)


def effective_gradient_flow(grads, masks=None, p=2, normalize: bool = False, *,
                            filter_fn: Optional[masks_lib.FilterFn] = None,
                            keep_dense: Sequence[str] = ()) -> jax.Array:
  """EGF_p of `grads` under `masks` (None = dense), averaged over the prunable layers.

  Args:
    grads: gradient pytree (params' structure).
    masks: boolean masks like `grads`, or None for all ones.
    p: the norm (1 or 2 in the paper; any p >= 1 allowed).
    normalize: divide each layer's norm by its number of active weights ||m_l||_0.
    filter_fn, keep_dense: which leaves are layers (default: >= 2-D, not norms).
  """
  _check_p(p)
  if masks is None:
    masks = jax.tree.map(lambda g: jnp.ones(jnp.shape(g), bool), grads)
  names = set(masks_lib.prunable_names(grads, filter_fn, keep_dense))
  grad_leaves = jax.tree_util.tree_leaves_with_path(grads)
  mask_leaves = jax.tree.leaves(masks)
  if len(mask_leaves) != len(grad_leaves):
    raise ValueError(f"masks must have the structure of grads: {len(mask_leaves)} leaves given, "
                     f"{len(grad_leaves)} expected")
  norms = []
  for (path, g), m in zip(grad_leaves, mask_leaves):
    if masks_lib.path_name(path) not in names:
      continue
    norm = _p_norm(jnp.where(m, g, 0), p)
    if normalize:
      norm = norm / jnp.maximum(jnp.count_nonzero(m), 1)
    norms.append(norm)
  if not norms:
    raise ValueError("effective_gradient_flow found no prunable layers in grads")
  return jnp.mean(jnp.stack(norms))


def gradient_norm(grads, p=2) -> jax.Array:
  """The p-norm of all gradients together (the baseline EGF is compared with)."""
  _check_p(p)
  leaves = [jnp.abs(g.astype(jnp.float32)).ravel() for g in jax.tree.leaves(grads)]
  if not leaves:
    return jnp.zeros((), jnp.float32)
  return _p_norm(jnp.concatenate(leaves), p)
