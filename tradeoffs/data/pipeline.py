"""A grain pipeline for sets that do not fit in memory, with the same (seed, step) contract.

Item `step` of `step_batches(...)` is this process's slice of the global batch at `step`:
the global batch is positions [(t mod E)·B, (t mod E + 1)·B) of a keyed permutation of epoch
t // E (the host version of the in-jit Feistel permutation, keyed by (seed, epoch)), and
process p of P reads rows [p·B/P, (p+1)·B/P) of it. Each process therefore decodes only its
own examples, a resumed run starts again at its step, and `to_global` assembles the
process-local slices into one array sharded over the `data` mesh axis.

grain's multiprocess workers need absl flags parsed: iterate under `absl.app.run`.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import grain
import jax
import numpy as np

from tradeoffs.data import batching


def global_batch_indices(seed: int, step: int, num_examples: int, batch_size: int) -> np.ndarray:
  per_epoch = batching.steps_per_epoch(num_examples, batch_size)
  epoch, position = divmod(int(step), per_epoch)
  slots = position * batch_size + np.arange(batch_size)
  return batching.feistel_permute_np(seed, epoch, slots, num_examples)


def process_slice(indices: np.ndarray, process_index: int, process_count: int) -> np.ndarray:
  if len(indices) % process_count:
    raise ValueError(f"global batch {len(indices)} is not divisible by the process count "
                     f"{process_count}")
  local = len(indices) // process_count
  return indices[process_index * local:(process_index + 1) * local]


def default_decode(example: Mapping[str, Any]) -> dict[str, np.ndarray]:
  image = np.asarray(example["image"], np.float32) / 255.0
  return {"image": image if image.ndim == 3 else image[..., None],
          "label": np.int32(example["label"])}


def step_batches(source: Sequence[Mapping[str, Any]], *, seed: int, batch_size: int,
                 num_steps: int, process_index: int | None = None,
                 process_count: int | None = None,
                 decode: Callable[[Mapping[str, Any]], Mapping[str, np.ndarray]] = default_decode,
                 ) -> grain.MapDataset:
  """A random-access dataset: item t is this process's part of the global batch at step t."""
  process_index = jax.process_index() if process_index is None else process_index
  process_count = jax.process_count() if process_count is None else process_count
  num_examples = len(source)
  batching.steps_per_epoch(num_examples, batch_size)  # validates batch_size

  def load(step: int) -> dict[str, np.ndarray]:
    rows = process_slice(global_batch_indices(seed, step, num_examples, batch_size),
                         process_index, process_count)
    examples = [decode(source[int(i)]) for i in rows]
    batch = {k: np.stack([e[k] for e in examples]) for k in examples[0]}
    batch["index"] = rows.astype(np.int64)
    return batch

  return grain.MapDataset.range(num_steps).map(load)


def iterate(dataset: grain.MapDataset, start_step: int = 0, num_threads: int = 4,
            prefetch: int = 8, workers: int = 0):
  """Iterates from `start_step` with threaded reads (and `workers` processes if > 0)."""
  ds = dataset.slice(slice(start_step, None)).to_iter_dataset(
      grain.ReadOptions(num_threads=num_threads, prefetch_buffer_size=prefetch))
  if workers > 0:
    ds = ds.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers))
  return iter(ds)


def to_global(local: np.ndarray, sharding: jax.sharding.Sharding) -> jax.Array:
  """Assembles process-local batch slices into a global array (batch on axis 0)."""
  return jax.make_array_from_process_local_data(sharding, local)
