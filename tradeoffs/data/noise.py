"""Seeded noise injection: label noise, input corruption and an "atypical" subset.

    noisy, changed = noise.label_noise(labels, num_classes=10, rate=0.2, seed=0)
    images, changed = noise.corrupt_inputs(images, rate=0.1, seed=0, kind="gaussian")
    split, atypical = noise.atypical_set(ds.train, fraction=0.03, seed=0)

Every function is a pure function of its arrays, `rate` (or `fraction`) and `seed`
(numpy `default_rng`, no global state), and returns which examples it changed, so a study can
write them into its workdir (`write_changed_ids`) and score retrieval against them later.

Exact rates: the changed examples are exactly `round(rate · N)` positions drawn without
replacement (Python's round, half to even), and every one of them really changes — a noisy
label differs from the original, a corrupted image differs from the original (up to the
documented exception for `kind="shuffle"` on a constant image).

Formulations chosen:
- `kind="uniform"` label noise draws the new label uniformly from the C − 1 OTHER classes
  (so "rate" is the fraction of wrong labels, not the fraction resampled from all C classes,
  as in the symmetric-noise setting of the long-tail papers; PAPERS.md section 13).
- `kind="class_conditional"` picks the changed positions the same way, then draws the new
  label of an example of class y from row y of `transition` with the diagonal removed and the
  row renormalised (the row gives the relative odds of the wrong classes). The default
  transition is the pair flip y → (y + 1) mod C (Han et al. 2018), the usual asymmetric case.
- `corrupt_inputs(kind="gaussian")` adds N(0, std²) pixel noise (std 0.5 of the [0, 1] range
  by default) and clips to [0, 1]; `kind="shuffle"` permutes the pixels (all of H·W, the
  channels of a pixel kept together) of each chosen image independently, which keeps the
  intensity histogram and destroys the shape.
- `atypical_set` keeps every example of the typical group and thins the atypical group
  (`digits_groups`' rotated subgroup by default) to a share `fraction` of the result:
  k = round(fraction · n_typical / (1 − fraction)) atypical examples drawn without replacement.
"""

from __future__ import annotations

import json
import os
from typing import Mapping

import numpy as np

from tradeoffs import workdir
from tradeoffs.data import sources

LABEL_NOISE_KINDS = ("uniform", "class_conditional")
CORRUPTION_KINDS = ("gaussian", "shuffle")
CHANGED_IDS_FILE = "changed_ids.json"


def check_rate(rate: float, name: str = "rate") -> float:
  """Returns `rate` as a float in [0, 1); a ValueError that says so otherwise."""
  try:
    value = float(rate)
  except (TypeError, ValueError):
    raise ValueError(f"{name}={rate!r}: must be a number in [0, 1)") from None
  if not (np.isfinite(value) and 0.0 <= value < 1.0):
    raise ValueError(f"{name}={rate!r}: must be in [0, 1) (a fraction of the examples; "
                     "1 would leave no clean example)")
  return value


def exact_count(rate: float, n: int) -> int:
  """The number of examples a rate changes: round(rate · n) (half to even)."""
  return int(round(check_rate(rate) * int(n)))


def choose_positions(n: int, rate: float, rng: np.random.Generator) -> np.ndarray:
  """Exactly round(rate · n) distinct positions in [0, n), sorted."""
  count = exact_count(rate, n)
  return np.sort(rng.choice(int(n), size=count, replace=False)).astype(np.int64)


def pair_flip(num_classes: int) -> np.ndarray:
  """The pair-flip transition: class y goes to (y + 1) mod C with probability 1."""
  return np.roll(np.eye(int(num_classes)), 1, axis=1)


def _check_transition(transition, num_classes: int) -> np.ndarray:
  matrix = np.asarray(transition, np.float64)
  if matrix.shape != (num_classes, num_classes):
    raise ValueError(f"transition has shape {matrix.shape}; expected ({num_classes}, "
                     f"{num_classes}) for num_classes={num_classes}")
  if not np.all(np.isfinite(matrix)) or matrix.min() < 0:
    raise ValueError("transition must hold finite non-negative probabilities")
  if not np.allclose(matrix.sum(axis=1), 1.0, atol=1e-6):
    raise ValueError(f"transition rows must sum to 1 (row-stochastic); row sums "
                     f"{np.round(matrix.sum(axis=1), 6).tolist()}")
  off = matrix * (1.0 - np.eye(num_classes))
  if np.any(off.sum(axis=1) <= 0):
    rows = np.flatnonzero(off.sum(axis=1) <= 0).tolist()
    raise ValueError(f"transition rows {rows} put no mass on another class, so an example of "
                     "those classes cannot be given a wrong label")
  return off / off.sum(axis=1, keepdims=True)


def label_noise(labels, *, num_classes: int, rate: float, seed: int,
                kind: str = "uniform", transition=None) -> tuple[np.ndarray, np.ndarray]:
  """(noisy labels, sorted positions of the changed labels); exactly round(rate · N) change.

  `kind="uniform"`: a changed label is uniform over the other C − 1 classes.
  `kind="class_conditional"`: drawn from `transition[y]` without its diagonal, renormalised
  (default `pair_flip(C)`: y → y + 1 mod C). The changed labels always differ.
  """
  labels = np.asarray(labels)
  rate = check_rate(rate)
  num_classes = int(num_classes)
  if num_classes < 2:
    raise ValueError(f"num_classes={num_classes}: label noise needs at least 2 classes")
  if labels.ndim != 1:
    raise ValueError(f"labels must be 1-D; got shape {labels.shape}")
  if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
    raise ValueError(f"labels must lie in [0, {num_classes}); got [{labels.min()}, "
                     f"{labels.max()}]")
  if kind not in LABEL_NOISE_KINDS:
    raise ValueError(f"kind={kind!r}: choose from {list(LABEL_NOISE_KINDS)}")
  if kind == "uniform" and transition is not None:
    raise ValueError("transition is only used with kind='class_conditional'")
  rng = np.random.default_rng([int(seed), 0])
  changed = choose_positions(labels.size, rate, rng)
  noisy = labels.copy()
  old = labels[changed].astype(np.int64)
  if kind == "uniform":
    # old + U{1..C-1} mod C is uniform over the classes other than old.
    noisy[changed] = (old + rng.integers(1, num_classes, size=changed.size)) % num_classes
  else:
    wrong = _check_transition(pair_flip(num_classes) if transition is None else transition,
                              num_classes)
    cumulative = np.cumsum(wrong[old], axis=1)
    draws = rng.random(changed.size)[:, None] * cumulative[:, -1:]
    new = np.minimum((draws >= cumulative).sum(axis=1), num_classes - 1)
    noisy[changed] = new
  return noisy.astype(labels.dtype), changed


def corrupt_inputs(images, *, rate: float, seed: int, kind: str = "gaussian",
                   std: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
  """(images with exactly round(rate · N) of them corrupted, their sorted positions).

  Images are [N, H, W, C] in [0, 1]. `kind="gaussian"`: + N(0, std²) per pixel, clipped to
  [0, 1]. `kind="shuffle"`: an independent random permutation of each image's H·W pixels.
  """
  images = np.asarray(images)
  rate = check_rate(rate)
  if images.ndim != 4:
    raise ValueError(f"images must be [N, H, W, C]; got shape {images.shape}")
  if kind not in CORRUPTION_KINDS:
    raise ValueError(f"kind={kind!r}: choose from {list(CORRUPTION_KINDS)}")
  if kind == "gaussian" and not (np.isfinite(std) and std > 0):
    raise ValueError(f"std={std!r}: the Gaussian corruption needs std > 0")
  rng = np.random.default_rng([int(seed), 1])
  changed = choose_positions(images.shape[0], rate, rng)
  out = images.copy()
  chosen = images[changed]
  if kind == "gaussian":
    noise = rng.normal(0.0, float(std), size=chosen.shape)
    out[changed] = np.clip(chosen + noise, 0.0, 1.0).astype(images.dtype)
  else:
    n, height, width, channels = chosen.shape
    flat = chosen.reshape(n, height * width, channels)
    order = np.argsort(rng.random((n, height * width)), axis=1)
    out[changed] = np.take_along_axis(flat, order[..., None], axis=1).reshape(chosen.shape)
  return out, changed


def atypical_set(split: sources.ArraySplit, *, fraction: float, seed: int,
                 group: str = "subgroup", atypical_value: int = 1
                 ) -> tuple[sources.ArraySplit, np.ndarray]:
  """(the split thinned so atypical examples are `fraction` of it, their example ids).

  Keeps every example whose `group` column is not `atypical_value` and
  k = round(fraction · n_typical / (1 − fraction)) of the others, drawn without replacement;
  the returned split keeps the original order. Ids are `split.ids` of the kept atypical ones.
  """
  fraction = check_rate(fraction, "fraction")
  if group not in split.group_names:
    raise ValueError(f"group={group!r} is not a group column of this split; it has "
                     f"{list(split.group_names)} (use digits_groups)")
  column = split.groups[:, split.group_names.index(group)]
  atypical = np.flatnonzero(column == atypical_value)
  typical = np.flatnonzero(column != atypical_value)
  count = int(round(fraction * typical.size / (1.0 - fraction)))
  if count > atypical.size:
    raise ValueError(f"fraction={fraction} needs {count} atypical examples; the split has "
                     f"only {atypical.size}")
  rng = np.random.default_rng([int(seed), 2])
  kept = rng.choice(atypical, size=count, replace=False)
  index = np.sort(np.concatenate([typical, kept]))
  thinned = split.take(index)
  return thinned, np.sort(split.ids[kept]).astype(np.int64)


def write_changed_ids(folder: str, changed: Mapping[str, np.ndarray], *,
                      filename: str = CHANGED_IDS_FILE, **facts) -> str:
  """Writes {name: sorted ids} (plus plain `facts`, e.g. rate and seed) as JSON in `folder`.

  Returns the path. Written atomically, so a rerun that writes the same ids changes nothing.
  """
  os.makedirs(folder, exist_ok=True)
  path = os.path.join(folder, filename)
  payload = {**facts, **{k: np.asarray(v, np.int64).tolist() for k, v in changed.items()}}
  workdir.atomic_write_text(path, json.dumps(workdir.to_jsonable(payload), sort_keys=True))
  return path


def read_changed_ids(folder: str, filename: str = CHANGED_IDS_FILE) -> dict:
  with open(os.path.join(folder, filename)) as f:
    return json.load(f)
