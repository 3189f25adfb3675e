"""Same-capacity sparse vs dense pairs (SC-SDC; Tessera, Hooker & Rosman 2021).

A sparse MLP and a narrower dense MLP have the same number of active weights in every layer
(||a_S^l||_0 = ||a_D^l||_0), same depth. The paper does not say how the sparse width is chosen;
here each hidden width is widened by 1/sqrt(density): an inner layer of the wide network then
has density ~ `1 - sparsity`, and the first and last layers (whose input / output size is
fixed) get density ~ sqrt(1 - sparsity). Each layer's sparsity is then solved so that the
sparse layer keeps exactly the dense layer's weight count (under `masks.num_keep`'s rounding).
Biases are not pruned and not counted (the wide network has more of them).
"""

from __future__ import annotations

import math
from typing import Sequence

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
