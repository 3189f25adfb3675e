"""Concurrent inference of ensemble members: members on different devices at once.

The reference code runs member i on GPU i (`models[idx].cuda(idx)`). Here the members
are one stacked pytree [S, ...]; `concurrent_apply_fn` shards its leading axis over a
`members` mesh axis and runs the vmapped apply as one program, so every device computes
its own members at the same time. `sequential_apply_fn` is the baseline: one member
after another on one device.

`apply_fn(params, x) -> logits` is any pure function (e.g.
`lambda v, x: model.apply(v, x, train=False)`).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from tradeoffs.ensembles.divide import check_num_members

MEMBERS_AXIS = "members"
CONCURRENCY_METHODS = ("sharded_jit", "shard_map")
MEMBER_LOOPS = ("vmap", "map")


def members_mesh(num_members: int, devices: Sequence[jax.Device] | None = None) -> Mesh:
  """A 1-D mesh over as many devices as can split S members evenly.

  Uses the largest divisor of S not above the device count, so each device holds S/d
  whole members (e.g. S=4 on 8 devices uses 4; S=6 on 4 devices uses 3).

  >>> import jax
  >>> mesh = members_mesh(6, devices=jax.devices()[:1])
  >>> mesh.axis_names, mesh.size
  (('members',), 1)
  """
  num_members = check_num_members(num_members)
  devices = list(jax.devices() if devices is None else devices)
  if not devices:
    raise ValueError("devices must not be empty")
  size = max(d for d in range(1, min(num_members, len(devices)) + 1) if num_members % d == 0)
  return jax.make_mesh((size,), (MEMBERS_AXIS,), axis_types=(jax.sharding.AxisType.Auto,),
                       devices=devices[:size])


def _num_members(stacked: Any) -> int:
  sizes = {leaf.shape[0] for leaf in jax.tree.leaves(stacked)}
  if len(sizes) != 1:
    raise ValueError(f"stacked member params must share one leading member axis, "
                     f"got leading sizes {sorted(sizes)}")
  return sizes.pop()


def shard_members(stacked: Any, mesh: Mesh) -> Any:
  """Places a stacked pytree [S, ...] with its member axis split over `mesh`.

  >>> import jax
  >>> import numpy as np
  >>> stacked = np.stack([np.ones((3, 2)), 2 * np.ones((3, 2))]).astype(np.float32)  # S=2, [3, 2]
  >>> x = np.ones((5, 3), np.float32)                                              # B=5
  >>> sharded = shard_members(stacked, members_mesh(2))
  >>> sharded.shape, tuple(sharded.sharding.spec)
  ((2, 3, 2), ('members',))
  """
  return jax.device_put(stacked, NamedSharding(mesh, P(MEMBERS_AXIS)))


def concurrent_apply_fn(apply_fn: Callable[[Any, Any], jax.Array], mesh: Mesh, *,
                        per_member_inputs: bool = False, method: str = "sharded_jit",
                        member_loop: str = "vmap") -> Callable[[Any, Any], jax.Array]:
  """A compiled fn(stacked_params, x) -> per-member logits [S, B, ...] run concurrently.

  Args:
    apply_fn: the single-member apply, fn(params, x) -> logits.
    mesh: a mesh with a `members` axis (see `members_mesh`).
    per_member_inputs: x is [S, B, ...] (one view per member, sharded like the
      members) instead of one batch [B, ...] replicated to all devices.
    method: "sharded_jit" (jit of vmap with member-sharded inputs and outputs; XLA
      partitions it) or "shard_map" (each device explicitly runs vmap over its own
      members, no communication).
    member_loop: how a device runs its own S/d members: "vmap" (batched) or "map"
      (`jax.lax.map`, one after another; shard_map only). vmap turns a conv over
      per-member kernels into a grouped convolution, which XLA:CPU runs slowly; "map"
      keeps each member an ordinary convolution.

  >>> import jax
  >>> import numpy as np
  >>> stacked = np.stack([np.ones((3, 2)), 2 * np.ones((3, 2))]).astype(np.float32)  # S=2, [3, 2]
  >>> x = np.ones((5, 3), np.float32)                                              # B=5
  >>> fn = concurrent_apply_fn(lambda w, x: x @ w, members_mesh(2))
  >>> out = fn(stacked, x)                              # [S, B, 2]
  >>> out.shape, np.asarray(out[:, 0]).tolist()
  ((2, 5, 2), [[3.0, 3.0], [6.0, 6.0]])
  """
  if method not in CONCURRENCY_METHODS:
    raise ValueError(f"method={method!r} is unknown; valid: {list(CONCURRENCY_METHODS)}")
  if member_loop not in MEMBER_LOOPS:
    raise ValueError(f"member_loop={member_loop!r} is unknown; valid: {list(MEMBER_LOOPS)}")
  if member_loop == "map" and method != "shard_map":
    raise ValueError(f"member_loop='map' needs method='shard_map', got method={method!r}")
  if MEMBERS_AXIS not in mesh.axis_names:
    raise ValueError(f"mesh must have a {MEMBERS_AXIS!r} axis, got axes {mesh.axis_names}")
  x_axis = 0 if per_member_inputs else None
  x_spec = P(MEMBERS_AXIS) if per_member_inputs else P()
  if member_loop == "map":
    if per_member_inputs:
      batched = lambda params, x: jax.lax.map(lambda px: apply_fn(*px), (params, x))
    else:
      batched = lambda params, x: jax.lax.map(lambda p: apply_fn(p, x), params)
  else:
    batched = jax.vmap(apply_fn, in_axes=(0, x_axis))
  if method == "shard_map":
    batched = jax.shard_map(batched, mesh=mesh, in_specs=(P(MEMBERS_AXIS), x_spec),
                            out_specs=P(MEMBERS_AXIS))
  member_sharding = NamedSharding(mesh, P(MEMBERS_AXIS))
  return jax.jit(batched, in_shardings=(member_sharding, NamedSharding(mesh, x_spec)),
                 out_shardings=member_sharding)


def concurrent_apply(apply_fn: Callable[[Any, Any], jax.Array], stacked_params: Any, x: Any, *,
                     mesh: Mesh | None = None, per_member_inputs: bool = False,
                     method: str = "sharded_jit", member_loop: str = "vmap") -> jax.Array:
  """Per-member logits [S, B, ...], members sharded over devices and run at once.

  >>> import jax
  >>> import numpy as np
  >>> stacked = np.stack([np.ones((3, 2)), 2 * np.ones((3, 2))]).astype(np.float32)  # S=2, [3, 2]
  >>> x = np.ones((5, 3), np.float32)                                              # B=5
  >>> out = concurrent_apply(lambda w, x: x @ w, stacked, x, method="shard_map")
  >>> out.shape, np.asarray(out[:, 0, 0]).tolist()
  ((2, 5, 2), [3.0, 6.0])
  """
  num_members = _num_members(stacked_params)
  if per_member_inputs and any(leaf.shape[0] != num_members for leaf in jax.tree.leaves(x)):
    raise ValueError(f"per_member_inputs needs x with a leading axis of {num_members} members")
  mesh = members_mesh(num_members) if mesh is None else mesh
  fn = concurrent_apply_fn(apply_fn, mesh, per_member_inputs=per_member_inputs, method=method,
                           member_loop=member_loop)
  return fn(stacked_params, x)


def unstack_members(stacked: Any, device: jax.Device | None = None) -> list[Any]:
  """Splits a stacked pytree [S, ...] into S member pytrees (on `device` if given).

  >>> import numpy as np
  >>> [m["w"].tolist() for m in unstack_members({"w": np.arange(6).reshape(3, 2)})]
  [[0, 1], [2, 3], [4, 5]]
  """
  members = [jax.tree.map(lambda leaf, i=i: leaf[i], stacked)
             for i in range(_num_members(stacked))]
  if device is not None:
    members = jax.device_put(members, device)
  return members


def sequential_apply_fn(apply_fn: Callable[[Any, Any], jax.Array], *,
                        per_member_inputs: bool = False) -> Callable[[Sequence[Any], Any], jax.Array]:
  """The baseline fn(member_params_list, x) -> [S, B, ...]: one member after another.

  Each member is a separate call of one compiled single-member program, the way a
  Python loop over models runs; pass members from `unstack_members` so slicing is not
  timed.

  >>> import jax
  >>> import numpy as np
  >>> stacked = np.stack([np.ones((3, 2)), 2 * np.ones((3, 2))]).astype(np.float32)  # S=2, [3, 2]
  >>> x = np.ones((5, 3), np.float32)                                              # B=5
  >>> run = sequential_apply_fn(lambda w, x: x @ w)
  >>> out = run(unstack_members(stacked), x)
  >>> out.shape, np.asarray(out[:, 0, 0]).tolist()
  ((2, 5, 2), [3.0, 6.0])
  """
  single = jax.jit(apply_fn)

  def run(members: Sequence[Any], x: Any) -> jax.Array:
    outputs = []
    for i, params in enumerate(members):
      xi = jax.tree.map(lambda leaf: leaf[i], x) if per_member_inputs else x
      outputs.append(single(params, xi))
    return jnp.stack(outputs)

  return run
