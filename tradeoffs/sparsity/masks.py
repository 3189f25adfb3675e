"""Masks as pytrees: magnitude, random, N:M and channel masks, applying and summarizing them.

A mask is a boolean pytree with the structure of the params; `True` keeps a weight. Leaves that
are not prunable get all-`True` masks (never `None`), so masks always `tree.map` against params.

Selection keeps exactly the target count without sorting: scores are mapped to non-negative
int32 keys whose order is the order of the scores (the bit pattern of a non-negative float32 is
monotone in its value), a bisection on the key range finds a cut with exactly k keys above it
(stopping early, typically after 15-20 counting passes, at most 31), and ties at the threshold
are broken by a keyed bijective hash of the element index (murmur3's finalizer), so the kept
count is exact and no index range is favoured. Cost: one counting pass per bisection step (plus
32 more only when ties straddle the threshold), against a full sort in jaxpruner
(ANCHOR_NUMBERS.md: ~30 dense steps per update).
"""

from __future__ import annotations

import functools
from typing import Callable, Mapping, Optional, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tradeoffs.sparsity import distributions

FilterFn = Callable[[str, jax.Array], bool]

_MAX_KEY = 0x7F800000  # bit pattern of +inf; larger patterns are NaNs, clamped to it.
_NORM_NAMES = ("norm", "scale")


def path_name(path) -> str:
  """'params/dense_0/kernel' for a tree path.

  >>> import jax
  >>> [path_name(p) for p, _ in jax.tree_util.tree_leaves_with_path({"params": {"dense": [1, 2]}})]
  ['params/dense/0', 'params/dense/1']
  """
  return jax.tree_util.keystr(path, simple=True, separator="/")


_VARIABLE_FIELDS = ("value", "raw_value")  # Flax NNX Variables flatten to '<name>/value'.


def default_filter(name: str, leaf) -> bool:
  """Prunable: at least 2-D, and not a normalisation parameter.

  A normalisation parameter is one whose own name contains 'norm' or 'scale' (Linen/NNX
  `scale`) or whose module's name contains 'norm' (`BatchNorm_0/bias`, Equinox
  `norm/weight`). Only the last two path components count (after NNX's trailing 'value'),
  so a kernel under an outer scope such as `upscale/conv/kernel` or `prenorm_block/dense`
  stays prunable. Works on any framework's naming: Linen `params/dense_0/kernel`, NNX
  `dense_0/kernel/value`, Equinox `layers/0/weight`, a plain dict `w1`.

  >>> import numpy as np
  >>> default_filter("params/dense_0/kernel", np.zeros((4, 3)))
  True
  >>> default_filter("layers/0/bias", np.zeros(3))              # 1-D: never pruned
  False
  >>> default_filter("norm/scale/value", np.zeros((8, 3)))      # NNX norm scale, batched
  False
  >>> default_filter("upscale/conv/kernel", np.zeros((3, 3, 4, 4)))
  True
  """
  parts = [p for p in name.lower().split("/") if p]
  while len(parts) > 1 and parts[-1] in _VARIABLE_FIELDS:
    parts.pop()
  own = parts[-1] if parts else ""
  owner = parts[-2] if len(parts) > 1 else ""
  is_norm = any(word in own for word in _NORM_NAMES) or "norm" in owner
  return jnp.ndim(leaf) >= 2 and not is_norm


def prunable_names(params, filter_fn: Optional[FilterFn] = None,
                   keep_dense: Sequence[str] = ()) -> list:
  """Names of the prunable leaves, in tree-flatten order.

  Args:
    params: the parameter pytree.
    filter_fn: `(name, leaf) -> bool`; defaults to `default_filter`.
    keep_dense: path substrings whose leaves stay dense (e.g. first and last layer names).

  >>> import numpy as np
  >>> params = {"conv": {"kernel": np.zeros((3, 3, 1, 4)), "bias": np.zeros(4)},
  ...           "head": {"kernel": np.zeros((4, 2))}, "norm": {"scale": np.zeros((1, 4))}}
  >>> prunable_names(params)
  ['conv/kernel', 'head/kernel']
  >>> prunable_names(params, keep_dense=["head"])
  ['conv/kernel']
  """
  filter_fn = filter_fn or default_filter
  if isinstance(keep_dense, str):
    keep_dense = (keep_dense,)
  result = []
  for path, leaf in jax.tree_util.tree_leaves_with_path(params):
    name = path_name(path)
    if filter_fn(name, leaf) and not any(s in name for s in keep_dense):
      result.append(name)
  return result


def _named_leaves(tree):
  leaves_with_path, treedef = jax.tree_util.tree_flatten_with_path(tree)
  names = [path_name(path) for path, _ in leaves_with_path]
  return names, [leaf for _, leaf in leaves_with_path], treedef


def num_keep_int(sparsity: float, size: int) -> int:
  """`num_keep` of a concrete sparsity as a Python int (float64, round half to even)."""
  pruned = int(np.round(np.float64(sparsity) * size))
  return min(max(size - pruned, 0), size)


def num_keep(sparsity, size: int) -> jax.Array:
  """Weights kept: size - round(sparsity * size), rounding half to even.

  A concrete sparsity is computed in float64, so counts are exact for any layer size; a traced
  one (schedules under jit) in float32, exact up to ~2**24 weights per group.
  """
  if isinstance(sparsity, (int, float, np.number)):
    return jnp.asarray(num_keep_int(sparsity, size), jnp.int32)
  pruned = jnp.round(jnp.asarray(sparsity, jnp.float32) * size).astype(jnp.int32)
  return jnp.clip(size - pruned, 0, size).astype(jnp.int32)


def order_keys(scores, active=None) -> jax.Array:
  """int32 keys ordered like the non-negative float `scores`; inactive entries get key 0."""
  bits = jax.lax.bitcast_convert_type(jnp.abs(scores).astype(jnp.float32), jnp.int32)
  keys = jnp.minimum(bits, _MAX_KEY) + 1
  if active is not None:
    keys = jnp.where(active, keys, 0)
  return keys


@jax.custom_batching.custom_vmap
def _cond_any_member(pred, branches, operands):
  true_fn, false_fn = branches.value
  return jax.lax.cond(pred, true_fn, false_fn, *operands)


class _Static:
  """Carries the branch functions through custom_vmap as pytree aux data (no leaves)."""

  def __init__(self, value):
    self.value = value


jax.tree_util.register_pytree_node(_Static, lambda s: ((), s.value), lambda v, _: _Static(v))


@_cond_any_member.def_vmap
def _cond_any_member_vmap(axis_size, in_batched, pred, branches, operands):
  pred_batched, _, operands_batched = in_batched
  true_fn, false_fn = branches.value
  operands = jax.tree.map(
      lambda x, b: x if b else jnp.broadcast_to(x, (axis_size,) + jnp.shape(x)),
      operands, operands_batched)
  preds = pred if pred_batched else jnp.broadcast_to(pred, (axis_size,))

  def run_true(ops):
    new = jax.vmap(true_fn)(*ops)
    old = jax.vmap(false_fn)(*ops)
    return jax.tree.map(
        lambda n, o: jnp.where(preds.reshape((axis_size,) + (1,) * (n.ndim - 1)), n, o), new, old)

  out = jax.lax.cond(jnp.any(preds), run_true, lambda ops: jax.vmap(false_fn)(*ops), operands)
  return out, jax.tree.map(lambda _: True, out)


def cond_any_member(pred, true_fn, false_fn, *operands):
  """`lax.cond(pred, true_fn, false_fn, *operands)` that stays a cond under `jax.vmap`.

  Batched, it runs `true_fn` for every member and selects per member, but only when at least
  one member's `pred` holds; otherwise only `false_fn` runs. The branches must not close over
  traced values (pass them in `operands`).
  """
  return _cond_any_member(pred, _Static((true_fn, false_fn)), operands)


def _fmix32(x):
  """murmur3 finalizer: a bijection on uint32 that mixes all bits."""
  x = x ^ (x >> 16)
  x = x * jnp.uint32(0x85EBCA6B)
  x = x ^ (x >> 13)
  x = x * jnp.uint32(0xC2B2AE35)
  return x ^ (x >> 16)


def _seed_u32(seed) -> jax.Array:
  if isinstance(seed, jax.Array) and jnp.issubdtype(seed.dtype, jax.dtypes.prng_key):
    return jax.random.bits(seed, (), jnp.uint32)
  if isinstance(seed, jax.Array) and seed.dtype == jnp.uint32 and seed.shape == (2,):
    return jax.random.bits(seed, (), jnp.uint32)
  return _fmix32(jnp.asarray(seed, jnp.uint32) + jnp.uint32(0x9E3779B9))


def _tie_hash(shape, offset, seed) -> jax.Array:
  size = int(np.prod(shape))
  index = jnp.arange(size, dtype=jnp.uint32) + jnp.asarray(offset, jnp.uint32)
  return _fmix32(index ^ seed).reshape(shape)


def _search_kth(count_ge, targets):
  """Per group, an int32 key t with count_ge(t) >= targets and, unless ties straddle it,
  count_ge(t) == targets: the k-th largest key, or any key between the k-th and (k+1)-th.

  Bisection on the key range that stops as soon as every group has a cut with exactly
  `targets` keys at or above it: ~log2(key gap) passes (about 15-20 for float weights)
  instead of 31, each one counting pass over the keys.
  """
  lo = jnp.zeros(targets.shape, jnp.int32)  # count_ge(lo) = n >= target
  hi = jnp.full(targets.shape, _MAX_KEY + 2, jnp.int32)  # count_ge(hi) = 0
  hi = jnp.where(targets > 0, hi, 0)  # keep nothing: stop at once, the cut above every key
  lo = jnp.where(targets > 0, lo, _MAX_KEY + 2)
  done = targets <= 0

  def cond(carry):
    lo, hi, done = carry
    return jnp.any(~done & (hi - lo > 1))

  def body(carry):
    lo, hi, done = carry
    mid = lo + (hi - lo) // 2
    counts = count_ge(mid)
    active = ~done & (hi - lo > 1)
    up = active & (counts >= targets)
    lo = jnp.where(up, mid, lo)
    hi = jnp.where(active & (counts < targets), mid, hi)
    return lo, hi, done | (up & (counts == targets))

  lo, _, _ = jax.lax.while_loop(cond, body, (lo, hi, done))
  return lo


def _build_kth(count_ge, targets, nbits: int, dtype):
  """Largest t (bit by bit) with count_ge(t) >= targets, per group (used for tie hashes)."""
  one = jnp.asarray(1, dtype)

  def body(i, t):
    candidate = t | (one << (nbits - 1 - i).astype(dtype))
    return jnp.where(count_ge(candidate) >= targets, candidate, t)

  return jax.lax.fori_loop(0, nbits, body, jnp.zeros(targets.shape, dtype))


def select_top(keys: Sequence[jax.Array], groups: Sequence[int], keeps: jax.Array,
               seed=0) -> list:
  """Boolean masks keeping exactly `keeps[g]` largest keys in each group of leaves.

  Args:
    keys: non-negative int32 arrays (see `order_keys`).
    groups: group index of each key array; a group is ranked together (one group = global).
    keeps: int32 [num_groups], how many entries each group keeps.
    seed: int, uint32 array or PRNG key for the tie-break hash.
  """
  # Jitted with static groups so eager (Colab) calls compile once per shape, not per op.
  return _select_top_jit(list(keys), tuple(int(g) for g in groups),
                         jnp.asarray(keeps, jnp.int32), _seed_u32(seed))


@functools.partial(jax.jit, static_argnames=("groups",))
def _select_top_jit(keys, groups, keeps, seed):
  num_groups = int(keeps.shape[0])

  def per_group(values):
    sums = [jnp.zeros((), jnp.int32)] * num_groups
    for g, value in zip(groups, values):
      sums[g] = sums[g] + value
    return jnp.stack(sums)

  # Each group's keys in one flat array, so a counting pass is one fused reduction.
  flat = [jnp.concatenate([k.ravel() for k, g in zip(keys, groups) if g == group])
          for group in range(num_groups)]

  def count_ge(thresholds):
    return jnp.stack([jnp.sum(f >= thresholds[g], dtype=jnp.int32) for g, f in enumerate(flat)])

  thresholds = _search_kth(count_ge, keeps)
  greater = per_group([jnp.sum(k > thresholds[g], dtype=jnp.int32)
                       for k, g in zip(keys, groups)])
  remaining = keeps - greater
  offsets, running = [], [0] * num_groups
  for k, g in zip(keys, groups):
    offsets.append(running[g])
    running[g] += int(np.prod(k.shape))

  def without_ties(keys, thresholds, remaining, seed):
    # Exactly keeps[g] keys are >= the threshold: keep them all.
    return [k >= thresholds[g] for k, g in zip(keys, groups)]

  def with_ties(keys, thresholds, remaining, seed):
    tie_hashes = [_tie_hash(k.shape, off, seed) for k, off in zip(keys, offsets)]

    def count_ties(cutoffs):
      return per_group([jnp.sum((k == thresholds[g]) & (h >= cutoffs[g]), dtype=jnp.int32)
                        for k, h, g in zip(keys, tie_hashes, groups)])

    # Hashes are distinct within a group, so exactly remaining[g] ties pass the cutoff.
    cutoffs = _build_kth(count_ties, remaining, 32, jnp.uint32)
    return [(k > thresholds[g])
            | ((k == thresholds[g]) & (h >= cutoffs[g]) & (remaining[g] > 0))
            for k, h, g in zip(keys, tie_hashes, groups)]

  needs_tie_break = jnp.any(count_ge(thresholds) > keeps)
  return cond_any_member(needs_tie_break, with_ties, without_ties,
                         list(keys), thresholds, remaining, seed)


def score_masks(scores, sparsity, distribution="global", *, filter_fn: Optional[FilterFn] = None,
                keep_dense: Sequence[str] = (), masks=None, tie_break_seed=0,
                layer_sparsity: Optional[dict] = None):
  """Masks keeping the highest non-negative `scores` (a pytree shaped like the params).

  Args:
    scores: pytree of non-negative scores (e.g. |w|); its leaves decide prunability too.
    sparsity: fraction pruned, in [0, 1); may be traced for 'global' and 'uniform'.
    distribution: 'global' (rank all prunable weights together), a layer-wise key of
      `distributions` ('uniform', 'erk', ...), or a {name substring: sparsity} mapping.
    filter_fn, keep_dense: which leaves are prunable (see `prunable_names`).
    masks: current masks; entries already pruned rank below every active one, so gradual
      pruning never regrows a weight while the kept count shrinks.
    tie_break_seed: int or PRNG key for breaking ties at the threshold.
    layer_sparsity: explicit {leaf name: sparsity} (possibly traced), overriding
      `distribution`; used by the optax wrapper to scale a layer-wise target over time.

  Returns:
    A boolean pytree like `scores`; non-prunable leaves are all True.

  >>> import numpy as np
  >>> scores = {"a": np.array([[4.0, 1.0], [3.0, 2.0]]), "b": np.array([[9.0, 8.0], [0.5, 0.1]])}
  >>> m = score_masks(scores, 0.5)                   # global: the 4 largest of 8
  >>> np.asarray(m["a"]).astype(int).tolist(), np.asarray(m["b"]).astype(int).tolist()
  ([[1, 0], [1, 0]], [[1, 1], [0, 0]])
  >>> m = score_masks(scores, 0.5, "uniform")        # per layer: 2 of 4 each
  >>> np.asarray(m["a"]).astype(int).tolist(), np.asarray(m["b"]).astype(int).tolist()
  ([[1, 0], [1, 0]], [[1, 1], [0, 0]])
  >>> m = score_masks(scores, 0.75, {"a": 0.25, "b": 0.75})   # explicit per-layer map
  >>> int(np.sum(m["a"])), int(np.sum(m["b"]))
  (3, 1)
  """
  distributions.check_sparsity(sparsity)
  distributions.check_distribution(distribution)
  names, leaves, treedef = _named_leaves(scores)
  prunable = set(prunable_names(scores, filter_fn, keep_dense))
  prior = (jax.tree.leaves(masks) if masks is not None else [None] * len(leaves))
  if len(prior) != len(leaves):
    raise ValueError(f"masks must have the structure of the params: {len(prior)} leaves given, "
                     f"{len(leaves)} expected")
  chosen = [i for i, name in enumerate(names) if name in prunable]
  result = [jnp.ones(jnp.shape(leaf), bool) for leaf in leaves]
  if not chosen:
    return jax.tree.unflatten(treedef, result)
  keys = [order_keys(leaves[i], prior[i]) for i in chosen]
  if layer_sparsity is None and distribution == distributions.GLOBAL:
    groups = [0] * len(chosen)
    keeps = num_keep(sparsity, sum(int(np.prod(jnp.shape(leaves[i]))) for i in chosen))[None]
  else:
    if layer_sparsity is None:
      concrete = isinstance(sparsity, (int, float, np.number))
      if not isinstance(distribution, Mapping) and not concrete:
        if distribution != "uniform":
          raise ValueError(f"distribution {distribution!r} needs a concrete sparsity, got a "
                           f"traced value; use masked() with a schedule for gradual pruning")
        layer_sparsity = {names[i]: sparsity for i in chosen}
      else:
        shapes = {names[i]: tuple(jnp.shape(leaves[i])) for i in chosen}
        layer_sparsity = distributions.layer_sparsities(shapes, sparsity, distribution)
    groups = list(range(len(chosen)))
    keeps = jnp.stack([num_keep(layer_sparsity[names[i]], int(np.prod(jnp.shape(leaves[i]))))
                       for i in chosen])
  selected = select_top(keys, groups, keeps, tie_break_seed)
  for i, mask in zip(chosen, selected):
    result[i] = mask
  return jax.tree.unflatten(treedef, result)


def magnitude_masks(params, sparsity, distribution="global", *,
                    filter_fn: Optional[FilterFn] = None, keep_dense: Sequence[str] = (),
                    masks=None, tie_break_seed=0):
  """Keeps the largest-|w| weights; exactly round((1 - sparsity) * n) per group.

  `distribution='global'` ranks all prunable weights together; 'uniform' and 'erk' prune each
  layer to its own sparsity. Ties at the threshold are broken by a hash keyed by
  `tie_break_seed` (int or PRNG key). See `score_masks` for the arguments.

  Shapes: `params` any pytree of arrays; the masks are bool with the same structure and
  shapes (all True on leaves that are not prunable).

  >>> import numpy as np
  >>> params = {"w": np.array([[0.1, -2.0], [0.5, 3.0]], np.float32), "b": np.ones(2)}
  >>> masks = magnitude_masks(params, 0.5)          # keep the 2 largest |w| of 4
  >>> np.asarray(masks["w"]).tolist(), np.asarray(masks["b"]).tolist()
  ([[False, True], [False, True]], [True, True])
  >>> np.asarray(apply_masks(params, masks)["w"]).tolist()
  [[0.0, -2.0], [0.0, 3.0]]
  """
  scores = jax.tree.map(jnp.abs, params)
  return score_masks(scores, sparsity, distribution, filter_fn=filter_fn, keep_dense=keep_dense,
                     masks=masks, tie_break_seed=tie_break_seed)


def random_masks(key, params, sparsity, distribution="uniform", *,
                 filter_fn: Optional[FilterFn] = None, keep_dense: Sequence[str] = ()):
  """Uniformly random masks with exactly the target count per group (pruning at init).

  >>> import jax
  >>> import numpy as np
  >>> params = {"w": np.ones((4, 5)), "b": np.ones(5)}
  >>> m = random_masks(jax.random.key(0), params, 0.6)      # exactly 8 of 20 kept
  >>> int(np.sum(m["w"])), bool(np.all(m["b"]))
  (8, True)
  """
  distributions.check_sparsity(sparsity)
  distributions.check_distribution(distribution)
  leaves, treedef = jax.tree.flatten(params)
  score_key, tie_key = jax.random.split(key)
  scores = [jax.random.uniform(k, jnp.shape(leaf))
            for k, leaf in zip(jax.random.split(score_key, max(len(leaves), 1)), leaves)]
  # Score leaves must carry the params' ndim for the filter; uniform scores are in [0, 1).
  scores = jax.tree.unflatten(treedef, scores)
  prunable = set(prunable_names(params, filter_fn, keep_dense))
  return score_masks(scores, sparsity, distribution,
                     filter_fn=lambda name, leaf: name in prunable, masks=None,
                     tie_break_seed=tie_key)


def _check_axis(axis: int, ndim: int, name: str) -> int:
  if not -ndim <= axis < ndim:
    raise ValueError(f"axis={axis} is out of range for leaf {name!r} with {ndim} dimensions")
  return axis % ndim


@functools.partial(jax.jit, static_argnames=("n", "m", "axis"))
def _nm_leaf(leaf, offset, seed, *, n: int, m: int, axis: int):
  """Keep mask of one leaf: rank each entry within its group of m by (|w|, hash)."""
  moved = jnp.moveaxis(leaf, axis, -1)
  grouped_shape = moved.shape[:-1] + (moved.shape[-1] // m, m)
  keys = order_keys(moved).reshape(grouped_shape)
  hashes = _tie_hash(grouped_shape, offset, seed)
  beats = ((keys[..., None, :] > keys[..., :, None])
           | ((keys[..., None, :] == keys[..., :, None])
              & (hashes[..., None, :] > hashes[..., :, None])))
  keep = (jnp.sum(beats, axis=-1) < n).reshape(moved.shape)
  return jnp.moveaxis(keep, -1, axis)


def nm_masks(params, n: int, m: int, axis: int = -1, *, filter_fn: Optional[FilterFn] = None,
             keep_dense: Sequence[str] = (), tie_break_seed=0):
  """N:M structured masks: in each run of `m` consecutive weights along `axis`, keep the `n`
  largest |w| (ties broken by the keyed hash, not by position).

  >>> import numpy as np
  >>> w = np.array([[0.1, -0.9, 0.3, 0.2], [1.0, 0.0, 0.0, -2.0]])
  >>> np.asarray(nm_masks({"w": w}, 2, 4)["w"]).astype(int).tolist()   # 2:4 along the last axis
  [[0, 1, 1, 0], [1, 0, 0, 1]]
  """
  if not (isinstance(n, int) and isinstance(m, int)) or not 0 < n <= m:
    raise ValueError(f"N:M needs integers 0 < n <= m, got n={n!r}, m={m!r}")
  names, leaves, treedef = _named_leaves(params)
  prunable = set(prunable_names(params, filter_fn, keep_dense))
  axes = {}
  for name, leaf in zip(names, leaves):  # validate every leaf before compiling any
    if name in prunable:
      shape = jnp.shape(leaf)
      axes[name] = _check_axis(axis, len(shape), name)
      if shape[axes[name]] % m:
        raise ValueError(f"N:M with m={m} needs leaf {name!r} dimension {axes[name]} (size "
                         f"{shape[axes[name]]}) to be a multiple of m")
  seed = _seed_u32(tie_break_seed)
  result = []
  offset = 0
  for name, leaf in zip(names, leaves):
    shape = jnp.shape(leaf)
    if name not in prunable:
      result.append(jnp.ones(shape, bool))
      continue
    result.append(_nm_leaf(leaf, jnp.uint32(offset), seed, n=n, m=m, axis=axes[name]))
    offset += int(np.prod(shape))
  return jax.tree.unflatten(treedef, result)


def channel_masks(params, sparsity, axis: int = -1, *, filter_fn: Optional[FilterFn] = None,
                  keep_dense: Sequence[str] = (), tie_break_seed=0):
  """Whole-channel masks: per prunable leaf, drop round(sparsity * C) of the C slices along
  `axis` with the smallest L2 norm (over all other axes). Default axis -1 = output channels of
  Dense/Conv kernels.

  >>> import numpy as np
  >>> w = np.array([[1.0, 0.1, 3.0], [1.0, 0.1, 4.0]])            # [in, out]: column norms
  >>> np.asarray(channel_masks({"w": w}, 1 / 3)["w"]).astype(int).tolist()   # drop 1 of 3
  [[1, 0, 1], [1, 0, 1]]
  """
  distributions.check_sparsity(sparsity)
  names, leaves, treedef = _named_leaves(params)
  prunable = set(prunable_names(params, filter_fn, keep_dense))
  axes = {name: _check_axis(axis, jnp.ndim(leaf), name)
          for name, leaf in zip(names, leaves) if name in prunable}
  result = []
  for name, leaf in zip(names, leaves):
    shape = jnp.shape(leaf)
    if name not in prunable:
      result.append(jnp.ones(shape, bool))
      continue
    ax = axes[name]
    other = tuple(i for i in range(len(shape)) if i != ax)
    norms = jnp.sqrt(jnp.sum(jnp.square(leaf.astype(jnp.float32)), axis=other))
    (keep,) = select_top([order_keys(norms)], [0], num_keep(sparsity, shape[ax])[None],
                         tie_break_seed)
    result.append(jnp.broadcast_to(jnp.expand_dims(keep, other), shape))
  return jax.tree.unflatten(treedef, result)


def apply_masks(params, masks):
  """Zeros the pruned weights (`where`, so inf/nan in pruned weights become exactly 0).

  >>> import numpy as np
  >>> params = {"w": np.array([[np.inf, 2.0]])}
  >>> np.asarray(apply_masks(params, {"w": np.array([[False, True]])})["w"]).tolist()
  [[0.0, 2.0]]
  """
  return jax.tree.map(lambda p, m: jnp.where(m, p, jnp.zeros_like(p)), params, masks)


def summarize_sparsity(tree, filter_fn: Optional[FilterFn] = None) -> dict:
  """Per-leaf and total {size, nonzero, sparsity} of params or masks (jit- and vmap-able).

  Args:
    tree: params (nonzero = entries != 0) or boolean masks (nonzero = True entries).
    filter_fn: optional `(name, leaf) -> bool` restricting the leaves summarized (e.g.
      `default_filter` for prunable layers only).

  Returns:
    {'layers': {name: {'size', 'nonzero', 'sparsity'}}, 'total': {'size', 'nonzero',
    'sparsity'}}; sizes are Python ints, the rest jnp scalars.

  >>> import numpy as np
  >>> s = summarize_sparsity({"w": np.array([[0.0, 1.0], [0.0, 0.0]]), "b": np.ones(2)})
  >>> s["layers"]["w"]["size"], int(s["layers"]["w"]["nonzero"]), float(s["layers"]["w"]["sparsity"])
  (4, 1, 0.75)
  >>> s["total"]["size"], float(s["total"]["sparsity"])           # 3 non-zeros of 6
  (6, 0.5)
  """
  layers = {}
  total_size, total_nonzero = 0, jnp.zeros((), jnp.int32)
  for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
    name = path_name(path)
    if filter_fn is not None and not filter_fn(name, leaf):
      continue
    size = int(np.prod(jnp.shape(leaf)))
    nonzero = jnp.count_nonzero(leaf).astype(jnp.int32)
    layers[name] = {"size": size, "nonzero": nonzero,
                    "sparsity": 1.0 - nonzero / max(size, 1)}
    total_size += size
    total_nonzero = total_nonzero + nonzero
  total = {"size": total_size, "nonzero": total_nonzero,
           "sparsity": 1.0 - total_nonzero / max(total_size, 1)}
  return {"layers": layers, "total": total}
