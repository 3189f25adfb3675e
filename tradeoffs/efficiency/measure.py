"""One call that fills a trade-off record's `efficiency` fields (DESIGN.md, honest efficiency).

Theoretical cost (params, non-zero params, weight bytes, FLOPs, sparse FLOPs, bytes
accessed) and measured cost (latency, peak memory) side by side, at batch 1 and at the
stated batch size.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tradeoffs.efficiency import cost as cost_lib
from tradeoffs.efficiency import counting
from tradeoffs.efficiency import latency as latency_lib
from tradeoffs.efficiency.latency import REFERENCE_KEYS


def batch_of(example_input: Any, batch_size: int) -> Any:
  """A batch of `batch_size` built by cycling the examples of `example_input` (axis 0).

  >>> import numpy as np
  >>> batch_of(np.array([[1], [2]]), 5)[:, 0].tolist()
  [1, 2, 1, 2, 1]
  """
  def take(x):
    x = jnp.asarray(x)
    return jnp.take(x, np.arange(batch_size) % x.shape[0], axis=0)
  return jax.tree.map(take, example_input)


def _leading_size(example_input: Any, name: str = "example_input") -> int:
  leaves = jax.tree.leaves(example_input)
  if not leaves:
    raise ValueError(f"{name} holds no arrays; expected an array (or pytree of arrays) "
                     "with a leading batch axis")
  sizes = {int(np.shape(x)[0]) if np.ndim(x) else -1 for x in leaves}
  if len(sizes) != 1 or -1 in sizes or 0 in sizes:
    raise ValueError(f"{name} leaves have leading sizes {sorted(sizes)}; expected one "
                     "common batch axis of size >= 1")
  return sizes.pop()


def measure(apply_fn: Callable[[Any, Any], Any], params: Any, example_input: Any, *,
            batch_sizes: Sequence[int] | None = None, repeats: int = 20, warmup: int = 3,
            nonzero_params: int | None = None, weight_bytes: int | None = None,
            bits_per_leaf: counting.BitsPerLeaf | None = None,
            time_it: bool = True,
            reference: tuple[Callable[[Any, Any], Any], Any] | None = None
            ) -> dict[str, Any]:
  """Measures `apply_fn(params, x)` for a trade-off record's `efficiency` field.

  Args:
    apply_fn: the forward pass, `apply_fn(params, x) -> outputs` (e.g.
      `lambda p, x: model.apply(p, x, train=False)`).
    params: its parameter pytree (already masked, for pruned models).
    example_input: an array or pytree with a leading batch axis; batches of other sizes
      cycle its examples.
    batch_sizes: sizes to measure; default (1, leading size of `example_input`). The first
      size gives the top-level numbers, the largest gives `batch_size` and throughput.
    repeats: timed calls per batch size (median and spread are reported).
    warmup: untimed calls before timing (compilation happens in the first).
    nonzero_params: overrides the counted non-zeros (e.g. when masks live elsewhere).
    weight_bytes: overrides the weight bytes (e.g. an exact packed size).
    bits_per_leaf: bit widths for `counting.weight_bytes` (quantized weights).
    time_it: False skips latency (theoretical numbers and memory only).
    reference: (jitted apply, params) of a model to time in alternation with this one at
      every batch size (e.g. the dense source a compression is compared with): adds
      reference_latency_ms (+ p10/p90), so a latency ratio is one paired measurement.

  Returns:
    params, nonzero_params, density, weight_bytes, flops, sparse_flops, bytes,
    latency_ms (+ p10/p90), peak_bytes at the first batch size; batch_size and
    throughput_per_s at the largest; per_batch details keyed by batch size; notes.

  >>> import jax.numpy as jnp
  >>> params = {"w": jnp.array([[1.0, 0.0], [0.0, 0.0], [2.0, 3.0]])}
  >>> out = measure(lambda p, x: x @ p["w"], params, jnp.ones((4, 3)), repeats=2)
  >>> out["params"], out["nonzero_params"], out["density"], out["weight_bytes"]
  (6, 3, 0.5, 24)
  >>> out["flops"], out["sparse_flops"]  # at batch 1: 2 * 3 * 2
  (12.0, 6.0)
  >>> out["batch_size"], sorted(out["per_batch"]), out["latency_ms"] > 0
  (4, ['1', '4'], True)
  """
  if not callable(apply_fn):
    raise ValueError(f"apply_fn={apply_fn!r} is not callable; expected "
                     "apply_fn(params, x)")
  available = _leading_size(example_input)
  if batch_sizes is None:
    batch_sizes = (1, available) if available > 1 else (1,)
  batch_sizes = tuple(batch_sizes)
  if not batch_sizes or any(not isinstance(b, (int, np.integer)) or b < 1
                            for b in batch_sizes):
    raise ValueError(f"batch_sizes={batch_sizes!r}: expected a non-empty sequence of "
                     "ints >= 1")
  if not isinstance(repeats, int) or repeats < 1:
    raise ValueError(f"repeats={repeats!r}: expected an int >= 1")
  if not isinstance(warmup, int) or warmup < 0:
    raise ValueError(f"warmup={warmup!r}: expected an int >= 0")
  batch_sizes = tuple(dict.fromkeys(int(b) for b in batch_sizes))

  total = counting.param_count(params)
  nonzero = counting.nonzero_count(params) if nonzero_params is None else int(nonzero_params)
  stored = (counting.weight_bytes(params, bits_per_leaf) if weight_bytes is None
            else int(weight_bytes))

  per_batch = {}
  for b in batch_sizes:
    x = batch_of(example_input, b)
    row = cost_lib.compiled_cost(apply_fn, params, x)
    row["sparse_flops"] = cost_lib.sparse_flops(apply_fn, params, x,
                                                dense_flops=row["flops"])["sparse_flops"]
    row["flops_per_example"] = row["flops"] / b
    if time_it:
      paired = None if reference is None else (reference[0], (reference[1], x))
      row.update(latency_lib.measure_latency(apply_fn, params, x, repeats=repeats,
                                             warmup=warmup, reference=paired))
      row["throughput_per_s"] = b / (row["latency_ms"] / 1e3) if row["latency_ms"] else None
    per_batch[str(b)] = row

  first = per_batch[str(batch_sizes[0])]
  largest = max(batch_sizes)
  device = jax.devices()[0]
  out = {
      "params": total,
      "nonzero_params": nonzero,
      "density": nonzero / total if total else 1.0,
      "weight_bytes": stored,
      "flops": first["flops"],
      "sparse_flops": first["sparse_flops"],
      "bytes": first["bytes"],
      "peak_bytes": first.get("peak_bytes"),
      "latency_ms": first.get("latency_ms"),
      "latency_p10_ms": first.get("latency_p10_ms"),
      "latency_p90_ms": first.get("latency_p90_ms"),
      **{k: first[k] for k in REFERENCE_KEYS if k in first},
      "latency_batch_size": batch_sizes[0],
      "batch_size": largest,
      "throughput_per_s": per_batch[str(largest)].get("throughput_per_s"),
      "per_batch": per_batch,
      "backend": jax.default_backend(),
      "device_kind": getattr(device, "device_kind", str(device)),
      "notes": {
          "flops": "XLA cost analysis of the compiled forward pass; multiply-add = 2 FLOPs",
          "sparse_flops": "theoretical: zero weights skipped; dense hardware does `flops`",
          "latency_ms": f"median of {repeats} calls after {max(warmup, 1)} warm-up, "
                        f"batch {batch_sizes[0]}",
          "peak_bytes": "XLA buffer-assignment peak of the compiled forward pass",
      },
  }
  return out
