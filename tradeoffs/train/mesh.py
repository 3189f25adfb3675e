"""The ('members', 'data') device mesh and the checks that run before compilation."""

from __future__ import annotations

import math

import jax
import numpy as np
from jax.sharding import AxisType
from jax.sharding import Mesh
from jax.sharding import NamedSharding
from jax.sharding import PartitionSpec as P

MEMBERS = "members"
DATA = "data"


def make_mesh(members: int, member_shards: int | None = None,
              devices: list[jax.Device] | None = None) -> Mesh:
  """A mesh over all devices with axes ('members', 'data').

  Args:
    members: population size.
    member_shards: size of the `members` axis; by default gcd(members, device count), so
      members spread over devices first and the remaining devices split the batch.
    devices: the devices (default: all of them, across processes).
  """
  devices = list(devices if devices is not None else jax.devices())
  member_shards, data_shards = mesh_shape(members, member_shards, len(devices))
  grid = np.asarray(devices).reshape(member_shards, data_shards)
  return Mesh(grid, (MEMBERS, DATA), axis_types=(AxisType.Auto, AxisType.Auto))


def mesh_shape(members: int, member_shards: int | None, count: int) -> tuple[int, int]:
  """(members degree, data degree) for `count` devices, with the checks of `make_mesh`."""
  if members < 1:
    raise ValueError(f"population.members={members}: a population needs at least 1 member")
  if member_shards is None or member_shards <= 0:
    member_shards = math.gcd(members, count)
  if count % member_shards:
    raise ValueError(f"mesh.member_shards={member_shards} must divide the device count "
                     f"{count}; allowed: {[d for d in range(1, count + 1) if count % d == 0]}")
  if members % member_shards:
    raise ValueError(f"population.members={members} is not divisible by the 'members' mesh "
                     f"degree {member_shards}; use a multiple of {member_shards} members or "
                     f"set mesh.member_shards to a divisor of {members}")
  return member_shards, count // member_shards


def data_degree(mesh: Mesh) -> int:
  return int(mesh.shape[DATA])


def check_batch(batch_size: int, mesh: Mesh | int, flag: str = "train.batch_size") -> None:
  degree = data_degree(mesh) if isinstance(mesh, Mesh) else int(mesh)
  if batch_size < 1 or batch_size % degree:
    raise ValueError(f"--config.{flag}={batch_size} is not divisible by the data-parallel "
                     f"degree {degree} (devices split as members x data); use a multiple of "
                     f"{degree}")


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, P())


def member_sharded(mesh: Mesh) -> NamedSharding:
  """Leading axis over members, the rest replicated."""
  return NamedSharding(mesh, P(MEMBERS))


def batch_sharded(mesh: Mesh) -> NamedSharding:
  """[members, batch, ...] arrays: members over 'members', examples over 'data'."""
  return NamedSharding(mesh, P(MEMBERS, DATA))


def put_replicated(array: np.ndarray, mesh: Mesh) -> jax.Array:
  """A global replicated array; works across processes (each supplies its own copy)."""
  array = np.asarray(array)
  return jax.make_array_from_callback(array.shape, replicated(mesh), lambda idx: array[idx])
