"""Same-capacity sparse vs dense pairs (SC-SDC; Tessera, Hooker & Rosman 2021).

A sparse MLP and a narrower dense MLP have the same number of active weights in every layer
(||a_S^l||_0 = ||a_D^l||_0), same depth. The paper does not say how the sparse width is chosen;
here each hidden width is widened by 1/sqrt(density): an inner layer of the wide network then
has density ~ `1 - sparsity`, and the first and last layers (whose input / output size is
fixed) get density ~ sqrt(1 - sparsity). Each layer's sparsity is then solved so that the
sparse layer keeps exactly the dense layer's weight count (under `masks.num_keep`'s rounding).
Biases are not pruned and not counted (the wide network has more of them).

Initialisation of the wide network (`init_factors` + `scaled_init_fn`; the paper says only
"the same per-layer initial distribution"): each kernel of the freshly initialised wide
network (LeCun normal, std 1/sqrt(fan_in_sparse)) is multiplied by a factor named in
`INIT_SCALINGS`:
  'dense'      sqrt(fan_in_sparse / fan_in_dense): every active weight has the narrow dense
               layer's initial distribution (LeCun normal with the dense fan-in);
  'none'       1: each network keeps its own LeCun init;
  'effective'  sqrt(1 / density): LeCun normal with the sparse layer's expected active
               fan-in (density x fan_in_sparse).
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np

from tradeoffs.sparsity import distributions
from tradeoffs.sparsity import masks as masks_lib


def _layer_sparsity_for_count(active: int, size: int) -> float:
  """A sparsity s with num_keep(s, size) == active exactly."""
  s = 1.0 - active / size
  for _ in range(64):
    kept = masks_lib.num_keep_int(s, size)
    if kept == active:
      return float(s)
    s = float(np.nextafter(s, 1.0 if kept > active else 0.0))
  raise ValueError(f"cannot represent keeping {active} of {size} weights as a sparsity")


def same_capacity_pair(dense_hidden, sparsity: float, input_dim: int, num_classes: int,
                       layer_names: Sequence[str] | None = None) -> dict:
  """Widths and per-layer sparsities of a wide-sparse MLP matching a narrow-dense one.

  Args:
    dense_hidden: hidden width(s) of the narrow dense MLP (int or sequence).
    sparsity: nominal sparsity; hidden widths are widened by 1 / sqrt(1 - sparsity).
    input_dim: flattened input size.
    num_classes: output size.
    layer_names: names of the kernels, one per layer; default matches `models.get('mlp')`
      ('dense_0/kernel', ..., 'head/kernel').

  Returns:
    dict with `dense_hidden`, `sparse_hidden` (lists of ints), `layer_names`,
    `layer_sparsity` ({name: sparsity}, usable as a `distribution` mapping for `random_masks`
    or `magnitude_masks`), `dense_active` and `sparse_active` (per-layer active weights,
    equal), `sparse_size` (per-layer weights of the wide network) and `overall_sparsity`.

  >>> pair = same_capacity_pair(10, 0.75, input_dim=4, num_classes=3)
  >>> pair["dense_hidden"], pair["sparse_hidden"]           # widened by 1 / sqrt(0.25)
  ([10], [20])
  >>> pair["dense_active"] == pair["sparse_active"]         # same active weights per layer
  True
  >>> pair["sparse_active"], pair["sparse_size"]
  ({'dense_0/kernel': 40, 'head/kernel': 30}, {'dense_0/kernel': 80, 'head/kernel': 60})
  """
  distributions.check_sparsity(sparsity)
  hidden = [dense_hidden] if isinstance(dense_hidden, (int, np.integer)) else list(dense_hidden)
  if not hidden or any(int(h) < 1 for h in hidden):
    raise ValueError(f"dense_hidden must be positive width(s), got {dense_hidden!r}")
  if int(input_dim) < 1 or int(num_classes) < 1:
    raise ValueError(f"input_dim and num_classes must be >= 1, got {input_dim!r}, "
                     f"{num_classes!r}")
  widen = 1.0 / math.sqrt(1.0 - float(sparsity))
  sparse_hidden = [max(int(h), int(round(int(h) * widen))) for h in hidden]
  if layer_names is None:
    layer_names = [f"dense_{i}/kernel" for i in range(len(hidden))] + ["head/kernel"]
  layer_names = list(layer_names)
  if len(layer_names) != len(hidden) + 1:
    raise ValueError(f"layer_names must name {len(hidden) + 1} layers, got {layer_names!r}")
  dense_dims = [int(input_dim), *map(int, hidden), int(num_classes)]
  sparse_dims = [int(input_dim), *sparse_hidden, int(num_classes)]
  layer_sparsity, dense_active, sparse_active, sparse_size = {}, {}, {}, {}
  for l, name in enumerate(layer_names):
    active = dense_dims[l] * dense_dims[l + 1]
    size = sparse_dims[l] * sparse_dims[l + 1]
    s = _layer_sparsity_for_count(active, size)
    layer_sparsity[name] = s
    dense_active[name] = active
    sparse_active[name] = masks_lib.num_keep_int(s, size)
    sparse_size[name] = size
  return {
      "dense_hidden": list(map(int, hidden)),
      "sparse_hidden": sparse_hidden,
      "layer_names": layer_names,
      "layer_sparsity": layer_sparsity,
      "dense_active": dense_active,
      "sparse_active": sparse_active,
      "sparse_size": sparse_size,
      "overall_sparsity": 1.0 - sum(sparse_active.values()) / sum(sparse_size.values()),
  }


# --- initialisation of the wide network ------------------------------------------------------

def _scale_dense(fan_in_sparse: int, fan_in_dense: int, density: float) -> float:
  del density
  return math.sqrt(fan_in_sparse / fan_in_dense)


def _scale_none(fan_in_sparse: int, fan_in_dense: int, density: float) -> float:
  del fan_in_sparse, fan_in_dense, density
  return 1.0


def _scale_effective(fan_in_sparse: int, fan_in_dense: int, density: float) -> float:
  del fan_in_dense
  return math.sqrt(1.0 / density)


# name -> (fan-in of the wide layer, fan-in of the narrow layer, density) -> factor applied to
# the wide network's LeCun-normal kernels (std 1/sqrt(fan_in_sparse)).
INIT_SCALINGS: dict[str, Callable[[int, int, float], float]] = {
    "dense": _scale_dense,
    "none": _scale_none,
    "effective": _scale_effective,
}


def init_factors(pair: Mapping[str, Any], input_dim: int, scaling: str) -> dict[str, float]:
  """Per-kernel multipliers for the wide network's freshly initialised kernels.

  `pair` is a `same_capacity_pair` result; `scaling` a key of `INIT_SCALINGS`.
  """
  if scaling not in INIT_SCALINGS:
    raise ValueError(f"init scaling {scaling!r} is unknown; choose from "
                     f"{sorted(INIT_SCALINGS)}")
  dense_in = [int(input_dim), *pair["dense_hidden"]]
  sparse_in = [int(input_dim), *pair["sparse_hidden"]]
  out = {}
  for l, name in enumerate(pair["layer_names"]):
    density = pair["sparse_active"][name] / pair["sparse_size"][name]
    out[name] = float(INIT_SCALINGS[scaling](sparse_in[l], dense_in[l], density))
  return out


def scaled_init_fn(factors: Mapping[str, float]) -> Callable[[Any, jax.Array], Any]:
  """A population `init_fn(params, key)` multiplying each named kernel by its factor
  (leaves not named keep their init)."""

  def init_fn(params, key):
    del key

    def scale(path, leaf):
      return leaf * factors.get(masks_lib.path_name(path), 1.0)

    return jax.tree_util.tree_map_with_path(scale, params)

  return init_fn
