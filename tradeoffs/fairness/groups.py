"""Group ids: one attribute, or the intersection of several, as one id per example.

Per-group metrics sum over examples with `jax.ops.segment_sum`, which needs the number of
groups as a static int. It is inferred from concrete arrays; under `jit` pass it explicitly.
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np


class Intersection(NamedTuple):
  """Combined group ids of several attributes (first attribute most significant)."""
  ids: jax.Array  # [examples] int32 in [0, num_groups).
  num_groups: int
  names: list[str]  # One name per combined id, e.g. "subgroup=1&sex=0".


def is_traced(x) -> bool:
  return isinstance(x, jax.core.Tracer)


def infer_num_groups(groups, num_groups: int | None = None, *, argname: str = "groups") -> int:
  """`num_groups` if given, else max id + 1 of a concrete `groups` array (>= 1)."""
  if num_groups is not None:
    if int(num_groups) < 1:
      raise ValueError(f"num_groups={num_groups!r}: must be a positive int")
    return int(num_groups)
  if is_traced(groups):
    raise ValueError(f"{argname} is traced (inside jit/vmap): pass num_groups= as a static int")
  values = np.asarray(groups)
  if values.size == 0:
    return 1
  if values.min() < 0:
    raise ValueError(f"{argname} holds negative id {int(values.min())}: ids must be >= 0")
  return int(values.max()) + 1


def intersect(groups, num_values: Sequence[int] | None = None,
              names: Sequence[str] | None = None) -> Intersection:
  """Intersects the attributes in the columns of `groups` [examples, G] into one id.

  Args:
    groups: int array [examples, G], one column per attribute (a 1-D array is one attribute).
    num_values: number of values of each attribute; inferred from concrete data if None.
      Every combination gets an id, also combinations no example has (their metrics are NaN).
    names: attribute names (length G), used for the combination names.

  Returns:
    `Intersection(ids, num_groups, names)`; the id is the mixed-radix number of the row.

  >>> import numpy as np
  >>> inter = intersect(np.array([[0, 1], [1, 0], [1, 1]]), names=["sex", "age"])
  >>> np.asarray(inter.ids).tolist(), inter.num_groups     # mixed radix: 2 * sex + age
  ([1, 2, 3], 4)
  >>> inter.names
  ['sex=0&age=0', 'sex=0&age=1', 'sex=1&age=0', 'sex=1&age=1']
  """
  groups = jnp.asarray(groups)
  if groups.ndim == 1:
    groups = groups[:, None]
  if groups.ndim != 2:
    raise ValueError(f"groups has shape {groups.shape}: expected [examples] or [examples, G]")
  num_attributes = groups.shape[1]
  if num_values is None:
    num_values = [infer_num_groups(groups[:, j], argname=f"groups[:, {j}]")
                  for j in range(num_attributes)]
  num_values = [int(v) for v in num_values]
  if len(num_values) != num_attributes or min(num_values) < 1:
    raise ValueError(f"num_values={num_values!r}: need {num_attributes} positive ints, "
                     "one per column of groups")
  if names is None:
    names = [f"g{j}" for j in range(num_attributes)]
  names = list(names)
  if len(names) != num_attributes:
    raise ValueError(f"names={names!r}: need {num_attributes} attribute names")
  ids = jnp.zeros(groups.shape[0], jnp.int32)
  for j, radix in enumerate(num_values):
    ids = ids * radix + groups[:, j].astype(jnp.int32)
  combos = np.stack(np.unravel_index(np.arange(int(np.prod(num_values))), num_values), axis=1)
  combo_names = ["&".join(f"{n}={int(v)}" for n, v in zip(names, row)) for row in combos]
  return Intersection(ids, int(np.prod(num_values)), combo_names)


def as_group_ids(groups, num_groups: int | Sequence[int] | None = None) -> tuple[jax.Array, int]:
  """Group ids [examples] and their count from [examples] or [examples, G] attributes.

  For [examples, G], `num_groups` may be the per-attribute value counts (a sequence).

  >>> import numpy as np
  >>> ids, num = as_group_ids(np.array([0, 2, 1]))
  >>> np.asarray(ids).tolist(), num
  ([0, 2, 1], 3)
  >>> ids, num = as_group_ids(np.array([[0, 2], [1, 0]]), [2, 3])   # two attributes
  >>> np.asarray(ids).tolist(), num
  ([2, 3], 6)
  """
  groups = jnp.asarray(groups)
  if groups.ndim == 2:
    num_values = num_groups
    if isinstance(num_groups, int):
      if groups.shape[1] != 1:
        raise ValueError(f"num_groups={num_groups!r} for {groups.shape[1]} group attributes: "
                         "pass one value count per attribute (a sequence)")
      num_values = [num_groups]
    inter = intersect(groups, num_values)
    return inter.ids, inter.num_groups
  if groups.ndim != 1:
    raise ValueError(f"groups has shape {groups.shape}: expected [examples] or [examples, G]")
  if num_groups is not None and not isinstance(num_groups, (int, np.integer)):
    raise ValueError(f"num_groups={num_groups!r}: expected an int for one group attribute")
  return groups.astype(jnp.int32), infer_num_groups(groups, num_groups)


def segment_sums(values, group_ids, num_groups: int):
  """Sums `values` [..., examples] within groups -> [..., num_groups]."""
  values = jnp.asarray(values)
  moved = jnp.moveaxis(values, -1, 0)
  sums = jax.ops.segment_sum(moved, group_ids, num_segments=num_groups)
  return jnp.moveaxis(sums, 0, -1)
