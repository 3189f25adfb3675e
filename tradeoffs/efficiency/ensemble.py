"""Efficiency of an ensemble of S members, one definition for every study.

`latency_concurrent_ms`: the members in one program (sharded over a `members` mesh of up
to S devices; on one device the vmapped ensemble). `latency_sequential_ms`: one compiled
member call after another, then combine. `latency_ms` is the concurrent one (how an
ensemble is deployed on an accelerator); both are always recorded, side by side.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tradeoffs import ensembles
from tradeoffs.efficiency.latency import measure_latency
from tradeoffs.efficiency.measure import REFERENCE_KEYS, batch_of, measure


def _timed(fn: Callable[..., Any], *args: Any, repeats: int, warmup: int,
           reference: Any = None) -> dict[str, float]:
  """Latency of fn(*args) (median and spread, ms); fn is not re-jitted, so a Python loop
  over members stays a loop."""
  return measure_latency(fn, *args, repeats=repeats, warmup=max(warmup, 1), jit=False,
                         reference=reference)


def measure_ensemble(member_apply: Callable[[Any, Any], Any], variables: Any,
                     example_images: np.ndarray, *, combine: str = "mean_logits",
                     batch_sizes: Sequence[int] = (1,), repeats: int = 20, warmup: int = 3,
                     member_loop: str = "vmap",
                     reference: tuple[Callable[[Any, Any], Any], Any] | None = None
                     ) -> dict[str, Any]:
  """Efficiency of one ensemble of S members (S = 1: the wide model).

  `member_apply(variables, x)` is one member's forward pass; `variables` are the S
  members' variables stacked on a leading axis.

  Theoretical cost (params, FLOPs, bytes, peak bytes) is XLA's cost analysis of the whole
  ensemble forward pass (members vmapped, then combined) at the first batch size. Latency
  at every batch size: `concurrent` (members sharded over a `members` mesh of up to S
  devices; on one device it is the vmapped ensemble), `sequential` (one compiled member
  call after another, then combine), and for S = 1 the model itself. `latency_ms` is the
  concurrent one at the first batch size. `reference` = (jitted apply, params) of a model
  timed in alternation with the concurrent ensemble (`efficiency.measure`'s `reference`).

  >>> import jax.numpy as jnp
  >>> stacked = {"w": jnp.ones((3, 2, 4))}  # S = 3 members of a 2 -> 4 linear layer
  >>> out = measure_ensemble(lambda v, x: x @ v["w"], stacked, jnp.ones((5, 2)),
  ...                        repeats=2, warmup=1)
  >>> out["params"], out["params_per_member"], out["latency_batch_size"]
  (24, 8, 1)
  >>> out["latency_concurrent_ms"] > 0 and out["latency_sequential_ms"] > 0
  True
  """
  variables = jax.tree.map(jnp.asarray, variables)
  num_members = int(jax.tree.leaves(variables)[0].shape[0])
  combiner = jax.jit(ensembles.get_combiner(combine))
  one = lambda v: jax.tree.map(lambda leaf: leaf[0], v)

  if num_members == 1:
    ensemble_apply = lambda v, x: member_apply(one(v), x)
  else:
    ensemble_apply = lambda v, x: ensembles.combine(
        jax.vmap(member_apply, in_axes=(0, None))(v, x), combine)
  theory = measure(ensemble_apply, variables, example_images,
                              batch_sizes=(batch_sizes[0],), time_it=False)
  mesh = ensembles.members_mesh(num_members)
  method = "shard_map" if member_loop == "map" else "sharded_jit"
  concurrent = ensembles.concurrent_apply_fn(member_apply, mesh, method=method,
                                             member_loop=member_loop)
  sharded = ensembles.shard_members(variables, mesh)
  sequential = ensembles.sequential_apply_fn(member_apply)
  member_list = ensembles.unstack_members(variables, jax.devices()[0])
  single = jax.jit(member_apply)
  timing = dict(repeats=repeats, warmup=warmup)
  per_batch = {}
  for b in dict.fromkeys(int(b) for b in batch_sizes):
    x = batch_of(example_images, b)
    row = {}
    paired = None if reference is None else (reference[0], (reference[1], x))
    if num_members == 1:
      spread = _timed(single, member_list[0], x, reference=paired, **timing)
      row["wide_ms"] = spread["latency_ms"]
      row["concurrent_ms"] = row["sequential_ms"] = row["wide_ms"]
    else:
      spread = _timed(lambda p, x: combiner(concurrent(p, x)), sharded, x, reference=paired,
                      **timing)
      row["concurrent_ms"] = spread["latency_ms"]
      row["sequential_ms"] = _timed(lambda p, x: combiner(sequential(p, x)), member_list, x,
                                    **timing)["latency_ms"]
    row["concurrent_p10_ms"] = spread["latency_p10_ms"]
    row["concurrent_p90_ms"] = spread["latency_p90_ms"]
    row.update({k: spread[k] for k in REFERENCE_KEYS if k in spread})
    row["throughput_per_s"] = b / (row["concurrent_ms"] / 1e3)
    per_batch[str(b)] = row
  first, largest = per_batch[str(batch_sizes[0])], str(max(batch_sizes))
  backend = jax.default_backend()
  device = jax.devices()[0]
  how = "the vmapped ensemble on one device" if mesh.size == 1 else "one program"
  return {
      "params": theory["params"],
      "params_per_member": theory["params"] // num_members,  # Members share one shape.
      "nonzero_params": theory["nonzero_params"],
      "weight_bytes": theory["weight_bytes"],
      "flops": theory["flops"],
      "bytes": theory["bytes"],
      "peak_bytes": theory["peak_bytes"],
      "latency_ms": first["concurrent_ms"],
      "latency_p10_ms": first["concurrent_p10_ms"],
      "latency_p90_ms": first["concurrent_p90_ms"],
      **{k: first[k] for k in REFERENCE_KEYS if k in first},
      "latency_concurrent_ms": first["concurrent_ms"],
      "latency_sequential_ms": first["sequential_ms"],
      "latency_batch_size": int(batch_sizes[0]),
      "batch_size": int(largest),
      "throughput_per_s": per_batch[largest]["throughput_per_s"],
      "per_batch": per_batch,
      "concurrent_devices": int(mesh.size),
      "backend": backend,
      "device_kind": getattr(device, "device_kind", str(device)),
      "notes": {
          "flops": "XLA cost analysis of the whole ensemble forward pass (members + "
                   "combine) at batch " + str(batch_sizes[0]) + "; multiply-add = 2 FLOPs",
          "latency_ms": f"concurrent: members sharded over {mesh.size} {backend} device(s) "
                        f"({how}), "
                        f"median of {repeats} calls after warm-up, batch {batch_sizes[0]}; "
                        + ("measured on CPU: simulated host devices share the host's cores, "
                           "so this is not GPU-per-member concurrency"
                           if backend == "cpu" else f"measured on {backend}"),
          "latency_sequential_ms": "members one after another (a Python loop of one "
                                   "compiled member), then combine",
      },
  }
