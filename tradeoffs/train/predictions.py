"""Per-member, per-example predictions: the hand-off between training and every analysis.

Stored as `.npz` (no pickle) under `workdir/predictions/<name>.npz` with arrays
`logits` [members, examples, classes], `labels` [examples], `ids` [examples],
`groups` [examples, G], `group_names` [G] (unicode), and optional extra arrays.
"""

from __future__ import annotations

import dataclasses
import io
import os
from typing import Any

import jax
import numpy as np

from tradeoffs import workdir as workdir_lib


@dataclasses.dataclass(frozen=True)
class Predictions:
  logits: np.ndarray
  labels: np.ndarray
  ids: np.ndarray
  groups: np.ndarray
  group_names: tuple[str, ...] = ()

  @property
  def predicted(self) -> np.ndarray:
    """Predicted labels [members, examples]."""
    return np.argmax(self.logits, axis=-1)

  @property
  def accuracy(self) -> np.ndarray:
    """Top-1 accuracy per member [members]."""
    return np.mean(self.predicted == self.labels[None], axis=-1)


def path(workdir: str, name: str) -> str:
  return os.path.join(workdir, "predictions", f"{name}.npz")


def save(workdir: str, name: str, predictions: Predictions, **extra: np.ndarray) -> str:
  """Writes atomically (process 0 only); returns the path."""
  target = path(workdir, name)
  if not workdir_lib.is_writer():
    return target
  _write_npz(target, logits=np.asarray(predictions.logits, np.float32),
             labels=np.asarray(predictions.labels), ids=np.asarray(predictions.ids),
             groups=np.asarray(predictions.groups),
             group_names=np.asarray(predictions.group_names, dtype=np.str_), **extra)
  return target


def _write_npz(target: str, **arrays: np.ndarray) -> None:
  """An .npz written via a temporary file and rename, so readers never see half a file."""
  os.makedirs(os.path.dirname(os.path.abspath(target)), exist_ok=True)
  buf = io.BytesIO()
  np.savez(buf, **arrays)
  with open(target + ".tmp", "wb") as f:
    f.write(buf.getvalue())
  os.replace(target + ".tmp", target)


def load(file_or_workdir: str, name: str | None = None) -> Predictions:
  target = path(file_or_workdir, name) if name is not None else file_or_workdir
  with np.load(target, allow_pickle=False) as z:
    return Predictions(logits=z["logits"], labels=z["labels"], ids=z["ids"],
                       groups=z["groups"], group_names=tuple(str(g) for g in z["group_names"]))


def save_params(workdir: str, params: Any, name: str = "final_params.npz") -> str:
  """Flattened parameters ('/'-joined paths -> arrays, leading member axis kept)."""
  target = os.path.join(workdir, name)
  if not workdir_lib.is_writer():
    return target
  flat = {"/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in key_path):
          np.asarray(leaf) for key_path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]}
  _write_npz(target, **flat)
  return target
