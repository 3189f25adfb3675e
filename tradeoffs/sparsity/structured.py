"""Structured (unit) pruning that physically shrinks layers: scores, kept indices, slicing.

Unstructured zeros and N:M masks save nothing on dense hardware (a dense matmul does the
same work with zeros in it, and sparse kernels lose at these sizes); removing whole hidden
units — MLP neurons, CNN channels — leaves a smaller *dense* model that really is faster.

    layers = [UnitLayer("dense_0", kernel="params/dense_0/kernel", bias="params/dense_0/bias",
                        consumer="params/dense_1/kernel"), ...]
    kept = kept_units(unit_scores(variables, layers, "in_out"), sparsity=0.5)
    small = slice_units(variables, layers, kept)          # the smaller model's variables

Plain pytrees only (nested dicts; paths are '/'-joined, rooted at the collection, e.g.
'params/dense_0/kernel' or 'batch_stats/bn_0/mean'); no Flax, no models. Which layer feeds
which is the caller's knowledge (`UnitLayer`); the slicing follows from it:

  * the unit's producer: the kernel's last axis (Dense [in, out], Conv [kh, kw, in, out]),
    its bias, its norm's scale and bias, and any other per-unit leaves (batch statistics);
  * its consumer: the next kernel's input axis (`consumer_axis`: 0 for a Dense after a
    Dense or after a flatten, -2 for a Conv after a Conv). When that axis is `repeat`
    times the number of units, it is read as (repeat, units) with the unit index fastest:
    a flatten of [H, W, C] activations feeds index (h·W + w)·C + c, so a channel slice
    keeps the same c at every spatial position.

Scores (`SCORES`; one number per unit from the trained weights, larger = keep):
  "in":     what the unit emits: the L2 norm of its incoming weights with its bias,
            ||[W_in[:, u]; b_u]||; with a norm layer after it, sqrt(γ_u² + β_u²) instead
            (the RMS of the normalised pre-activation; the incoming norm is meaningless
            there, batch norm divides it out — network slimming reads γ the same way).
  "out":    how much the next layer reads it: the L2 norm of the consumer's rows for u
            (all spatial positions, for a flatten).
  "in_out": the product of the two (the default). Why: with a positively homogeneous
            activation (ReLU) the network is unchanged when a unit's incoming weights and
            bias are scaled by a > 0 and its outgoing weights by 1/a, so either norm alone
            ranks units by an arbitrary rescaling; the product is invariant, and it bounds
            the unit's contribution to the next layer's pre-activation (for a 1-Lipschitz
            activation with act(0) = 0: |contribution| ≤ ||out|| · ||in|| · ||[x; 1]||).

Kept indices: per layer, the top k = max(1, n - round(s·n)) units by score (rounding half
to even, as elsewhere in `sparsity`), ties broken by the lower index, returned in
ascending order so the surviving units keep their relative order. The same count for every
member of a population, so the small members stack into one population.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping, Sequence

import numpy as np

from tradeoffs.sparsity import masks as masks_lib

SCORES = ("in_out", "in", "out")
DEFAULT_SCORE = "in_out"


@dataclasses.dataclass(frozen=True)
class UnitLayer:
  """One layer of prunable units and the leaves its units index.

  name: a label (records, errors), e.g. "dense_0" or "conv_1".
  kernel: path of the producing kernel; its last axis are the units.
  consumer: path of the next layer's kernel, whose `consumer_axis` reads the units.
  consumer_axis: 0 for a Dense consumer (also after a flatten), -2 for a Conv consumer.
  bias: path of the producer's bias, if any.
  norm_scale / norm_bias: paths of the norm layer's γ / β after the producer, if any.
  per_unit: further 1-D leaves indexed by unit (batch statistics: mean, var).
  """
  name: str
  kernel: str
  consumer: str
  consumer_axis: int = 0
  bias: str | None = None
  norm_scale: str | None = None
  norm_bias: str | None = None
  per_unit: tuple[str, ...] = ()

  def unit_leaves(self) -> tuple[str, ...]:
    """The 1-D leaves indexed by unit (bias, γ, β, statistics)."""
    return tuple(p for p in (self.bias, self.norm_scale, self.norm_bias) if p) + tuple(
        self.per_unit)


# ---------------------------------------------------------------------------------------
# Paths into nested dicts.


def _split(path: str) -> list[str]:
  return [part for part in path.split("/") if part]


def get_path(tree: Mapping[str, Any], path: str) -> Any:
  node: Any = tree
  for part in _split(path):
    if not isinstance(node, Mapping) or part not in node:
      raise ValueError(f"path {path!r} is not in the variables (at {part!r}; keys there: "
                       f"{sorted(node) if isinstance(node, Mapping) else type(node).__name__})")
    node = node[part]
  return node


def _to_dicts(tree: Any) -> Any:
  if isinstance(tree, Mapping):
    return {k: _to_dicts(v) for k, v in tree.items()}
  return tree


def _set_path(tree: dict, path: str, value: Any) -> None:
  parts = _split(path)
  node = tree
  for part in parts[:-1]:
    node = node[part]
  node[parts[-1]] = value


# ---------------------------------------------------------------------------------------
# Scores and kept indices (one model).


def check_sparsity(sparsity: Any, name: str = "sparsity") -> float:
  """A unit sparsity in [0, 1) (1 would remove every unit), else a ValueError naming it."""
  ok = (not isinstance(sparsity, bool) and isinstance(sparsity, (int, float, np.number))
        and 0.0 <= float(sparsity) < 1.0)
  if not ok:
    raise ValueError(f"{name}={sparsity!r}: expected a number in [0, 1) (the fraction of "
                     "units removed per layer; 1 would remove them all)")
  return float(sparsity)


def check_score(score: Any, name: str = "score") -> str:
  if score not in SCORES:
    raise ValueError(f"{name}={score!r} is unknown; choose from {list(SCORES)}")
  return str(score)


def _units(variables: Mapping[str, Any], layer: UnitLayer) -> int:
  kernel = np.asarray(get_path(variables, layer.kernel))
  if kernel.ndim < 2:
    raise ValueError(f"layer {layer.name!r}: kernel {layer.kernel!r} has shape "
                     f"{kernel.shape}; expected at least 2-D (units on the last axis)")
  return int(kernel.shape[-1])


def _consumer_view(variables: Mapping[str, Any], layer: UnitLayer, units: int
                   ) -> tuple[np.ndarray, int, int]:
  """The consumer kernel with its input axis moved first and split as [repeat, units, ...]."""
  consumer = np.asarray(get_path(variables, layer.consumer))
  axis = masks_lib._check_axis(layer.consumer_axis, consumer.ndim, layer.consumer)
  size = consumer.shape[axis]
  if size % units:
    raise ValueError(f"layer {layer.name!r}: consumer {layer.consumer!r} axis {axis} has "
                     f"size {size}, not a multiple of the layer's {units} units")
  moved = np.moveaxis(consumer, axis, 0)
  return moved.reshape((size // units, units) + moved.shape[1:]), axis, size // units


def _consumer_index(idx: np.ndarray, units: int, repeat: int) -> np.ndarray:
  """Consumer input positions of units `idx`: r·units + u for every repeat r (unit fastest)."""
  return (np.arange(repeat)[:, None] * units + np.asarray(idx)[None, :]).reshape(-1)


def unit_scores(variables: Mapping[str, Any], layers: Sequence[UnitLayer],
                score: str = DEFAULT_SCORE) -> dict[str, np.ndarray]:
  """{layer name: float64 scores [units]} of one model's variables (see the module doc).

  >>> import numpy as np
  >>> variables = {"params": {
  ...     "d0": {"kernel": np.array([[1.0, 0.0, 3.0], [0.0, 0.5, 4.0]]), "bias": np.zeros(3)},
  ...     "d1": {"kernel": np.array([[1.0], [2.0], [0.5]])}}}           # 2 -> 3 units -> 1
  >>> layers = [UnitLayer("d0", kernel="params/d0/kernel", consumer="params/d1/kernel",
  ...                     bias="params/d0/bias")]
  >>> {k: v.tolist() for k, v in unit_scores(variables, layers, "in").items()}  # column norms
  {'d0': [1.0, 0.5, 5.0]}
  >>> unit_scores(variables, layers)["d0"].tolist()       # in * out (out: rows of d1)
  [1.0, 1.0, 2.5]
  """
  check_score(score)
  out = {}
  for layer in layers:
    units = _units(variables, layer)
    kernel = np.asarray(get_path(variables, layer.kernel), np.float64).reshape(-1, units)
    if layer.norm_scale or layer.norm_bias:
      gamma = (np.asarray(get_path(variables, layer.norm_scale), np.float64)
               if layer.norm_scale else np.ones(units))
      beta = (np.asarray(get_path(variables, layer.norm_bias), np.float64)
              if layer.norm_bias else np.zeros(units))
      incoming = np.sqrt(gamma ** 2 + beta ** 2)
    else:
      squares = np.sum(kernel ** 2, axis=0)
      if layer.bias:
        squares = squares + np.asarray(get_path(variables, layer.bias), np.float64) ** 2
      incoming = np.sqrt(squares)
    view, _, _ = _consumer_view(variables, layer, units)
    view = np.moveaxis(view.astype(np.float64), 1, 0).reshape(units, -1)
    outgoing = np.sqrt(np.sum(view ** 2, axis=1))
    out[layer.name] = {"in": incoming, "out": outgoing, "in_out": incoming * outgoing}[score]
  return out


def kept_count(units: int, sparsity: float) -> int:
  """Units kept of `units` at `sparsity`: max(1, units - round(sparsity·units)).

  >>> kept_count(10, 0.25), kept_count(10, 0.35), kept_count(3, 0.9)   # never below one unit
  (8, 6, 1)
  """
  check_sparsity(sparsity)
  return max(1, masks_lib.num_keep_int(float(sparsity), int(units)))


def kept_units(scores: Mapping[str, np.ndarray], sparsity: float) -> dict[str, np.ndarray]:
  """{layer: ascending int indices of the top `kept_count` units by score}; ties go to
  the lower index.

  >>> kept_units({"d0": [1.0, 1.0, 2.5]}, 1 / 3)    # top 2; the tie goes to the lower index
  {'d0': array([0, 2])}
  """
  check_sparsity(sparsity)
  out = {}
  for name, s in scores.items():
    s = np.asarray(s, np.float64)
    if s.ndim != 1 or not np.all(np.isfinite(s)):
      raise ValueError(f"scores of layer {name!r} must be finite and 1-D, got shape "
                       f"{s.shape}")
    k = kept_count(s.shape[0], sparsity)
    order = np.lexsort((np.arange(s.shape[0]), -s))  # score descending, then index
    out[name] = np.sort(order[:k]).astype(np.int64)
  return out


# ---------------------------------------------------------------------------------------
# Slicing and masking (one model).


def _checked(variables: Mapping[str, Any], layers: Sequence[UnitLayer],
             kept: Mapping[str, Any]) -> dict[str, np.ndarray]:
  out = {}
  producers = {}
  for layer in layers:
    if layer.name not in kept:
      raise ValueError(f"no kept indices for layer {layer.name!r}; got {sorted(kept)}")
    if layer.kernel in producers:
      raise ValueError(f"layers {producers[layer.kernel]!r} and {layer.name!r} share the "
                       f"kernel {layer.kernel!r}")
    producers[layer.kernel] = layer.name
    units = _units(variables, layer)
    idx = np.asarray(kept[layer.name], np.int64)
    if (idx.ndim != 1 or not idx.size or np.any(idx < 0) or np.any(idx >= units)
        or len(np.unique(idx)) != idx.size):
      raise ValueError(f"kept indices of layer {layer.name!r} must be distinct, non-empty "
                       f"and in [0, {units}); got {idx.tolist()}")
    for path in layer.unit_leaves():
      shape = np.shape(get_path(variables, path))
      if shape != (units,):
        raise ValueError(f"layer {layer.name!r}: per-unit leaf {path!r} has shape {shape}; "
                         f"expected ({units},)")
    _consumer_view(variables, layer, units)
    out[layer.name] = idx
  return out


def slice_units(variables: Mapping[str, Any], layers: Sequence[UnitLayer],
                kept: Mapping[str, Any]) -> dict[str, Any]:
  """The variables of the smaller model: exactly the kept units' weights.

  The producer kernel keeps its columns `kept` (last axis), every per-unit leaf its
  entries `kept`, the consumer its input rows/channels `kept` (at every spatial position,
  for a flatten). Other leaves are copied. Returns plain nested dicts of numpy arrays.

  >>> import numpy as np
  >>> variables = {"params": {
  ...     "d0": {"kernel": np.array([[1.0, 0.0, 3.0], [0.0, 0.5, 4.0]]), "bias": np.zeros(3)},
  ...     "d1": {"kernel": np.array([[1.0], [2.0], [0.5]])}}}           # 2 -> 3 units -> 1
  >>> layers = [UnitLayer("d0", kernel="params/d0/kernel", consumer="params/d1/kernel",
  ...                     bias="params/d0/bias")]
  >>> small = slice_units(variables, layers, {"d0": [0, 2]})
  >>> small["params"]["d0"]["kernel"].tolist(), small["params"]["d1"]["kernel"].tolist()
  ([[1.0, 3.0], [0.0, 4.0]], [[1.0], [0.5]])
  """
  kept = _checked(variables, layers, kept)
  out = _to_dicts(variables)
  for layer in layers:
    idx = kept[layer.name]
    units = _units(variables, layer)
    kernel = np.asarray(get_path(out, layer.kernel))
    _set_path(out, layer.kernel, np.take(kernel, idx, axis=-1))
    for path in layer.unit_leaves():
      _set_path(out, path, np.take(np.asarray(get_path(out, path)), idx, axis=0))
    # The consumer may already be sliced on its output axis (it is the next producer):
    # read it from `out`.
    consumer = np.asarray(get_path(out, layer.consumer))
    _, axis, repeat = _consumer_view(out, layer, units)
    sliced = np.take(consumer, _consumer_index(idx, units, repeat), axis=axis)
    _set_path(out, layer.consumer, sliced)
  return out


def unit_masks(variables: Mapping[str, Any], layers: Sequence[UnitLayer],
               kept: Mapping[str, Any]) -> dict[str, Any]:
  """Boolean masks (the variables' structure) that zero every weight of the removed units:
  producer columns, per-unit entries and consumer rows. The big model with these masks
  applied computes what `slice_units` computes (the consumer reads nothing from a removed
  unit), which is how the slicing is tested.

  >>> import numpy as np
  >>> variables = {"params": {
  ...     "d0": {"kernel": np.array([[1.0, 0.0, 3.0], [0.0, 0.5, 4.0]]), "bias": np.zeros(3)},
  ...     "d1": {"kernel": np.array([[1.0], [2.0], [0.5]])}}}           # 2 -> 3 units -> 1
  >>> layers = [UnitLayer("d0", kernel="params/d0/kernel", consumer="params/d1/kernel",
  ...                     bias="params/d0/bias")]
  >>> masks = unit_masks(variables, layers, {"d0": [0, 2]})
  >>> masks["params"]["d0"]["kernel"].astype(int).tolist(), masks["params"]["d1"]["kernel"].ravel().tolist()
  ([[1, 0, 1], [1, 0, 1]], [True, False, True])
  """
  kept = _checked(variables, layers, kept)
  leaves = {}

  def ones(path):
    if path not in leaves:
      leaves[path] = np.ones(np.shape(get_path(variables, path)), bool)
    return leaves[path]

  for layer in layers:
    units = _units(variables, layer)
    drop = np.ones(units, bool)
    drop[kept[layer.name]] = False
    ones(layer.kernel)[..., drop] = False
    for path in layer.unit_leaves():
      ones(path)[drop] = False
    mask = ones(layer.consumer)
    _, axis, repeat = _consumer_view(variables, layer, units)
    np.moveaxis(mask, axis, 0)[np.tile(drop, repeat)] = False  # A view: writes reach mask.

  def build(tree, prefix):
    if isinstance(tree, Mapping):
      return {k: build(v, f"{prefix}/{k}" if prefix else k) for k, v in tree.items()}
    return leaves.get(prefix, np.ones(np.shape(tree), bool))

  return build(variables, "")


def apply_unit_masks(variables: Mapping[str, Any], masks: Mapping[str, Any]) -> dict[str, Any]:
  """Variables with the masked entries set to zero (numpy; structure of `masks`).

  >>> import numpy as np
  >>> out = apply_unit_masks({"p": {"w": np.array([1.0, 2.0, 3.0])}},
  ...                        {"p": {"w": np.array([True, False, True])}})
  >>> out["p"]["w"].tolist()
  [1.0, 0.0, 3.0]
  """
  if isinstance(masks, Mapping):
    return {k: apply_unit_masks(variables[k], masks[k]) for k in masks}
  return np.where(masks, np.asarray(variables), np.zeros_like(np.asarray(variables)))


# ---------------------------------------------------------------------------------------
# Populations (a leading member axis on every leaf).


def _member(tree: Any, index: int) -> Any:
  if isinstance(tree, Mapping):
    return {k: _member(v, index) for k, v in tree.items()}
  return np.asarray(tree)[index]


def _stack(trees: Sequence[Any]) -> Any:
  if isinstance(trees[0], Mapping):
    return {k: _stack([t[k] for t in trees]) for k in trees[0]}
  return np.stack([np.asarray(t) for t in trees])


def population_size(variables: Mapping[str, Any]) -> int:
  sizes = set()

  def visit(tree):
    if isinstance(tree, Mapping):
      for v in tree.values():
        visit(v)
    else:
      sizes.add(int(np.shape(tree)[0]) if np.ndim(tree) else -1)

  visit(variables)
  if len(sizes) != 1 or -1 in sizes:
    raise ValueError(f"population variables need one leading member axis on every leaf; "
                     f"leading sizes {sorted(sizes)}")
  return sizes.pop()


def prune_units_population(variables: Mapping[str, Any], layers: Sequence[UnitLayer],
                           sparsity: float, score: str = DEFAULT_SCORE
                           ) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
  """Each member's own units ranked and sliced: (small population variables, kept).

  `kept[layer]` is [members, k] (each member keeps its own units; k is the same for every
  member, so the small members stack). Host numpy; the members are looped over.

  >>> import numpy as np
  >>> variables = {"params": {
  ...     "d0": {"kernel": np.array([[1.0, 0.0, 3.0], [0.0, 0.5, 4.0]]), "bias": np.zeros(3)},
  ...     "d1": {"kernel": np.array([[1.0], [2.0], [0.5]])}}}           # 2 -> 3 units -> 1
  >>> layers = [UnitLayer("d0", kernel="params/d0/kernel", consumer="params/d1/kernel",
  ...                     bias="params/d0/bias")]
  >>> other = {"params": {"d0": {"kernel": variables["params"]["d0"]["kernel"][:, ::-1],
  ...                             "bias": np.zeros(3)},
  ...                      "d1": {"kernel": variables["params"]["d1"]["kernel"][::-1]}}}
  >>> pop = {"params": {k: {n: np.stack([variables["params"][k][n], other["params"][k][n]])
  ...                       for n in variables["params"][k]} for k in ("d0", "d1")}}
  >>> small, kept = prune_units_population(pop, layers, 1 / 3)
  >>> kept["d0"].tolist(), small["params"]["d0"]["kernel"].shape   # member 1: units reversed
  ([[0, 2], [0, 1]], (2, 2, 2))
  """
  check_sparsity(sparsity)
  check_score(score)
  members = population_size(variables)
  small, kept = [], {layer.name: [] for layer in layers}
  for m in range(members):
    member = _member(variables, m)
    idx = kept_units(unit_scores(member, layers, score), sparsity)
    small.append(slice_units(member, layers, idx))
    for name, i in idx.items():
      kept[name].append(i)
  return _stack(small), {name: np.stack(v) for name, v in kept.items()}
