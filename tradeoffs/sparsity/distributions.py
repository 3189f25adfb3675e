"""Sparsity distributions: how a target sparsity is split across layers.

A distribution maps `{leaf name: shape}` of the prunable leaves and an overall sparsity to
`{leaf name: sparsity}`. `global` is not a distribution in this sense: it ranks all prunable
weights together (see `masks.magnitude_masks`), so each layer's sparsity falls out of the
weights.
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

Shapes = Mapping[str, Sequence[int]]
DistributionFn = Callable[[Shapes, float], dict]

GLOBAL = "global"


def check_sparsity(sparsity, name: str = "sparsity") -> None:
  """Raises ValueError unless a concrete sparsity lies in [0, 1); traced values pass."""
  if isinstance(sparsity, (int, float, np.floating, np.integer)) and not isinstance(sparsity, bool):
    if not 0.0 <= float(sparsity) < 1.0:
      raise ValueError(f"{name} must be in [0, 1), got {sparsity!r}")
  elif isinstance(sparsity, bool):
    raise ValueError(f"{name} must be a number in [0, 1), got {sparsity!r}")


def uniform(shapes: Shapes, sparsity: float) -> dict:
  """Every prunable layer gets the same sparsity.

  >>> uniform({"a": (4, 4), "b": (4, 2)}, 0.5)
  {'a': 0.5, 'b': 0.5}
  """
  return {name: float(sparsity) for name in shapes}


def erk(shapes: Shapes, sparsity: float, power_scale: float = 1.0) -> dict:
  """Erdős–Rényi-Kernel (Evci et al., RigL): density_l = eps * (sum(shape_l) / prod(shape_l)).

  `eps` is chosen so the prunable weights keep `(1 - sparsity) * total` in all. A layer whose
  density would exceed 1 is made dense and `eps` is re-solved over the rest; repeated until no
  density exceeds 1 (the iterative algorithm of `rigl/sparse_utils.py`). `power_scale` raises
  the raw ratio to a power (1.0 = ERK; 0.0 = uniform).

  >>> s = erk({"wide": (100, 100), "thin": (100, 2)}, 0.5)
  >>> s["thin"], round(s["wide"], 4)   # thin would exceed density 1: dense; wide keeps 4900
  (0.0, 0.51)
  """
  check_sparsity(sparsity)
  sizes = {name: int(np.prod(shape)) for name, shape in shapes.items()}
  raw = {name: (float(np.sum(shape)) / sizes[name]) ** power_scale if sizes[name] else 0.0
         for name, shape in shapes.items()}
  total_keep = (1.0 - float(sparsity)) * sum(sizes.values())
  dense: set = set()
  while True:
    rest = [name for name in shapes if name not in dense]
    if not rest:
      break
    rhs = total_keep - sum(sizes[name] for name in dense)
    divisor = sum(raw[name] * sizes[name] for name in rest)
    eps = rhs / divisor if divisor > 0 else 0.0
    max_raw = max(raw[name] for name in rest)
    if eps * max_raw > 1.0:
      dense.update(name for name in rest if raw[name] == max_raw)
    else:
      break
  return {name: 0.0 if name in dense else float(np.clip(1.0 - eps * raw[name], 0.0, 1.0))
          for name in shapes}


_REGISTRY: dict = {"uniform": uniform, "erk": erk}


def register_distribution(name: str, fn: DistributionFn) -> None:
  """Adds a distribution `fn(shapes, sparsity) -> {name: sparsity}` under `name`.

  >>> register_distribution("first_dense", lambda shapes, s: {
  ...     n: 0.0 if i == 0 else s for i, n in enumerate(shapes)})
  >>> layer_sparsities({"a": (4, 4), "b": (4, 4)}, 0.5, "first_dense")
  {'a': 0.0, 'b': 0.5}
  >>> del _REGISTRY["first_dense"]
  """
  if name == GLOBAL:
    raise ValueError(f"distribution name {name!r} is reserved")
  _REGISTRY[name] = fn


def names() -> list:
  """Valid distribution keys (including 'global')."""
  return sorted([GLOBAL, *_REGISTRY])


def check_distribution(distribution) -> None:
  """Raises ValueError for an unknown key; mappings of per-layer sparsities are checked later."""
  if isinstance(distribution, Mapping):
    for key, value in distribution.items():
      check_sparsity(value, name=f"distribution[{key!r}]")
    return
  if distribution != GLOBAL and distribution not in _REGISTRY:
    raise ValueError(f"distribution must be one of {names()} or a mapping of layer name to "
                     f"sparsity, got {distribution!r}")


def layer_sparsities(shapes: Shapes, sparsity: float, distribution) -> dict:
  """Per-layer sparsity for a layer-wise distribution key or a {name substring: sparsity} map.

  A mapping key matches every leaf whose name contains it; each leaf must match exactly one key.

  >>> shapes = {"conv/kernel": (3, 3, 8, 8), "head/kernel": (8, 10)}
  >>> layer_sparsities(shapes, 0.9, "uniform")
  {'conv/kernel': 0.9, 'head/kernel': 0.9}
  >>> layer_sparsities(shapes, 0.9, {"conv": 0.95, "head": 0.5})   # substring -> sparsity
  {'conv/kernel': 0.95, 'head/kernel': 0.5}
  """
  check_distribution(distribution)
  if isinstance(distribution, Mapping):
    result = {}
    for name in shapes:
      hits = [key for key in distribution if key in name]
      if len(hits) != 1:
        raise ValueError(f"distribution mapping must match each prunable leaf exactly once; leaf "
                         f"{name!r} matches {hits} of keys {sorted(distribution)}")
      result[name] = float(distribution[hits[0]])
    return result
  if distribution == GLOBAL:
    raise ValueError("distribution 'global' has no fixed per-layer sparsities")
  check_sparsity(sparsity)
  return _REGISTRY[distribution](shapes, float(sparsity))
