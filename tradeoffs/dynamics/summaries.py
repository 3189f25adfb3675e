"""Learning-speed summaries of per-example dynamics, and retrieval scores (pure numpy).

Every summary takes arrays with the epoch axis FIRST, [E, ...] (one member: [E, N]; a
population's [M, E, N] arrays are passed as `x[m]` or moved with `np.moveaxis`):

- `area_under_margin(margin)`: the mean over epochs of the margin logit[assigned label] −
  max other logit (Pleiss et al., NeurIPS 2020, "Identifying mislabeled data using the
  area under the margin ranking"; they average over training epochs). Negative for an
  example the model keeps assigning to another class (a mislabelled one).
- `first_learned(correct)`: the first epoch from which the example is classified correctly
  at every later recorded epoch ("learned and stays learned"); E when it is wrong at the
  last epoch (never learned for good).
- `forgetting_events(correct)`: the number of transitions correct at epoch e → wrong at
  epoch e + 1 (Toneva et al., ICLR 2019, "An empirical study of example forgetting", with
  accuracy sampled once per epoch rather than at every mini-batch presentation).
- `forgetting_score(correct)`: forgetting events, with never-learned examples (never
  correct at any epoch) set to E — more than any example can be forgotten (at most
  ceil((E − 1) / 2) times) — as Toneva et al. rank unlearned examples as most forgotten.
- `average_precision(scores, targets)`: the area under the precision-recall curve as
  sklearn's `average_precision_score` defines it, Σ_k (R_k − R_{k−1}) P_k over the
  distinct score thresholds, ties counted together; its expectation for a random score is
  the prevalence of the targets.
"""

from __future__ import annotations

import numpy as np


def _epochs_first(x, name: str) -> np.ndarray:
  x = np.asarray(x)
  if x.ndim < 1 or x.shape[0] < 1:
    raise ValueError(f"{name} needs a leading epoch axis with at least one epoch; got shape "
                     f"{x.shape}")
  return x


def area_under_margin(margin, start: int = 0) -> np.ndarray:
  """Mean margin over epochs start, start + 1, ..., E − 1 (float64)."""
  margin = _epochs_first(margin, "margin").astype(np.float64)
  if not 0 <= int(start) < margin.shape[0]:
    raise ValueError(f"start={start} must be in [0, {margin.shape[0]})")
  return margin[int(start):].mean(axis=0)


def first_learned(correct) -> np.ndarray:
  """First epoch after which the example stays correct; E if it ends wrong (int64)."""
  correct = _epochs_first(correct, "correct").astype(bool)
  epochs = correct.shape[0]
  # stays[e] = correct at every epoch >= e: a cumulative AND from the last epoch backwards.
  stays = np.flip(np.logical_and.accumulate(np.flip(correct, 0), axis=0), 0)
  return np.where(stays[-1], np.argmax(stays, axis=0), epochs).astype(np.int64)


def forgetting_events(correct) -> np.ndarray:
  """Count of correct → wrong transitions between consecutive epochs (int64)."""
  correct = _epochs_first(correct, "correct").astype(bool)
  return np.sum(correct[:-1] & ~correct[1:], axis=0).astype(np.int64)


def never_learned(correct) -> np.ndarray:
  return ~np.any(_epochs_first(correct, "correct").astype(bool), axis=0)


def forgetting_score(correct) -> np.ndarray:
  """Forgetting events; never-learned examples get E (ranked as the most forgotten)."""
  correct = _epochs_first(correct, "correct")
  return np.where(never_learned(correct), correct.shape[0], forgetting_events(correct))


def average_precision(scores, targets) -> float:
  """sklearn's average precision of retrieving `targets` (bool) by descending `scores`."""
  scores = np.asarray(scores, np.float64).reshape(-1)
  targets = np.asarray(targets).astype(bool).reshape(-1)
  if scores.shape != targets.shape:
    raise ValueError(f"scores and targets differ in length: {scores.size} vs {targets.size}")
  if not np.all(np.isfinite(scores)):
    raise ValueError("scores must be finite")
  positives = int(targets.sum())
  if positives == 0:
    return float("nan")  # Recall is undefined without a target.
  order = np.argsort(-scores, kind="stable")
  scores, targets = scores[order], targets[order]
  true_pos = np.cumsum(targets)
  # The last position of each run of equal scores: one threshold per distinct score.
  ends = np.flatnonzero(np.r_[np.diff(scores) != 0, True])
  tp = true_pos[ends].astype(np.float64)
  precision = tp / (ends + 1)
  recall = tp / positives
  return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))
