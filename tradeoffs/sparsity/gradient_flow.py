"""Effective gradient flow (Tessera, Hooker & Rosman 2021, "Keep the gradients flowing").

EGF_p = (1/L) * sum_{l=1..L} ||g_l ⊙ m_l||_p over the L prunable layers (slide 22 of the
authors' talk: a per-layer p-norm of the masked gradient, averaged over layers, with no
division by the number of active weights). `normalize=True` divides each layer's norm by
||m_l||_0 (the "normalized by active weights" reading found in summaries), as an option.

During training (`flow_metrics_fn`, a per-member `grad_metrics_fn(params, grads, opt_state)`
of the population step): EGF_1 and EGF_2 of the member's minibatch gradient under the masks
held in its `wrapper.masked` optimizer state (None = dense), and `grad_norm_masked`, the L2
norm of the gradient the optimizer actually uses (pruned positions zeroed, all parameters).
The trainer's own `grad_norm` is the L2 norm of the whole gradient (pruned positions
included). `flow_summary` averages the logged evaluations of one population.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tradeoffs.sparsity import masks as masks_lib
from tradeoffs.sparsity import wrapper

# Flow metrics of a population: EGF_1, EGF_2 (the paper's), the trainer's global gradient
# norm and the masked gradient norm.
FLOW_METRICS = ("egf_1", "egf_2", "grad_norm", "grad_norm_masked")


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

  >>> import numpy as np
  >>> grads = {"a": np.array([[3.0, 4.0]]), "b": np.array([[1.0, 1.0]]), "bias": np.ones(2)}
  >>> float(effective_gradient_flow(grads))          # mean of the layer norms 5 and sqrt(2)
  3.207...
  >>> masks = {"a": np.array([[False, True]]), "b": np.array([[True, True]]), "bias": np.ones(2, bool)}
  >>> float(effective_gradient_flow(grads, masks, p=1, normalize=True))   # (4/1 + 2/2) / 2
  2.5
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
  """The p-norm of all gradients together (the baseline EGF is compared with).

  >>> import numpy as np
  >>> float(gradient_norm({"a": np.array([3.0]), "b": np.array([[4.0]])}))
  5.0
  >>> float(gradient_norm({"a": np.array([3.0]), "b": np.array([[-4.0]])}, p=1))
  7.0
  """
  _check_p(p)
  leaves = [jnp.abs(g.astype(jnp.float32)).ravel() for g in jax.tree.leaves(grads)]
  if not leaves:
    return jnp.zeros((), jnp.float32)
  return _p_norm(jnp.concatenate(leaves), p)


def flow_metrics_fn(masked: bool, normalize: bool = False
                    ) -> Callable[[Any, Any, Any], dict[str, jax.Array]]:
  """`grad_metrics_fn(params, grads, opt_state)`: EGF_1, EGF_2 and the masked gradient norm
  of one member.

  Args:
    masked: read the masks from the `wrapper.masked` optimizer state (else dense: no masks).
    normalize: divide each layer's EGF norm by its active weights.
  """

  def fn(params, grads, opt_state):
    del params
    masks = wrapper.get_masks(opt_state) if masked else None
    effective = grads if masks is None else masks_lib.apply_masks(grads, masks)
    return {
        "egf_1": effective_gradient_flow(grads, masks, p=1, normalize=normalize),
        "egf_2": effective_gradient_flow(grads, masks, p=2, normalize=normalize),
        "grad_norm_masked": gradient_norm(effective, 2),
    }

  return fn


def flow_summary(rows: Sequence[Mapping[str, Any]], name: str) -> dict[str, Any]:
  """Mean of the flow metrics over a population's logged evaluations, and the traces.

  `rows` are logged metric rows ({"step": s, "<name>/egf_2": ..., ...}, population means);
  a step logged twice (a resumed run) keeps its last row. Returns {"means": {metric: mean
  or None}, "trace": {"steps": [...], metric: [...]}, "evaluations": count}.
  """
  by_step: dict[int, Mapping[str, Any]] = {}
  for row in rows:
    if f"{name}/egf_2" in row:
      by_step[int(row["step"])] = row
  steps = sorted(by_step)
  trace: dict[str, Any] = {"steps": steps}
  means: dict[str, Any] = {}
  for metric in FLOW_METRICS:
    values = [float(by_step[s][f"{name}/{metric}"]) for s in steps
              if f"{name}/{metric}" in by_step[s]]
    trace[metric] = values
    means[metric] = float(np.mean(values)) if values else None
  return {"means": means, "trace": trace, "evaluations": len(steps)}


def active_per_layer(params: Any, layer_names: Sequence[str]) -> dict[str, list[int]]:
  """Non-zero weights of each named kernel, per member (params with a leading member axis)."""
  counts = jax.vmap(lambda p: masks_lib.summarize_sparsity(p)["layers"])(params)
  return {name: np.asarray(counts[name]["nonzero"]).astype(int).tolist()
          for name in layer_names}
