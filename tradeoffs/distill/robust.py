"""Worst-class objectives for teacher and student (the PAPERS.md [mem] formulation of
Wang, Narasimhan, Zhou, Hooker, Lukasik, Menon; check it against the paper).

Per-class risk R_y(h) = E[ℓ(y, h(x)) | y], class priors π (training frequencies). Each
objective is a mixture of the per-class risks with weights on the simplex ("target"):

  standard   Σ_y π_y R_y                          (ERM / plain KD)
  balanced   (1/m) Σ_y R_y                        (balanced risk, by importance weighting)
  robust     max_λ∈Δ Σ_y [(1−α)·π_y + α·λ_y] R_y  (α = 0: standard, α = 1: worst class)

Training minimises Σ_y target_y R_y by weighting each training example of class y by
target_y / π_y (`example_weights`); the trainer normalises a batch's weights, Σ w ℓ / Σ w.
For `robust`, λ is updated by exponentiated-gradient ascent on per-class risks R̂ measured
on a held-out validation split, λ_y ← λ_y·exp(η·R̂_y) / Z (`eg_update`), so λ stays on the
simplex and moves toward the worst class. R̂ is the per-class 0-1 error (`per_class_error`:
bounded in [0, 1], so η has a fixed scale). Balanced is importance weighting, not logit
adjustment (Menon et al., 2021), which the paper's balanced teacher may use.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

OBJECTIVES = ("standard", "balanced", "robust")


def check_alpha(alpha: Any) -> float:
  a = float(alpha)
  if not (math.isfinite(a) and 0.0 <= a <= 1.0):
    raise ValueError(f"alpha={alpha!r} must lie in [0, 1] (0: standard, 1: worst class)")
  return a


def check_objective(objective: str) -> str:
  if objective not in OBJECTIVES:
    raise ValueError(f"objective {objective!r} is unknown; choose from {list(OBJECTIVES)}")
  return objective


def class_priors(labels: Any, num_classes: int) -> np.ndarray:
  """Class frequencies π [C]; every class must appear (a weight 1/π needs π > 0)."""
  counts = np.bincount(np.asarray(labels, np.int64), minlength=int(num_classes))
  if counts.size != int(num_classes) or np.any(counts == 0):
    raise ValueError(f"class counts {counts.tolist()}: every one of {num_classes} classes "
                     "needs at least one training example")
  return counts / counts.sum()


def uniform(num_classes: int) -> np.ndarray:
  return np.full(int(num_classes), 1.0 / int(num_classes))


def _simplex(x: Any, name: str) -> np.ndarray:
  x = np.asarray(x, np.float64)
  if x.ndim != 1 or np.any(~np.isfinite(x)) or np.any(x < 0) or not np.isclose(x.sum(), 1.0):
    raise ValueError(f"{name} must be a probability vector; got {x.tolist()}")
  return x


def target_weights(objective: str, priors: Any, lam: Any = None, alpha: float = 1.0
                   ) -> np.ndarray:
  """The objective's class mixture on the simplex [C] (see the module docstring)."""
  priors = _simplex(priors, "priors")
  check_objective(objective)
  if objective == "standard":
    return priors
  if objective == "balanced":
    return uniform(priors.size)
  lam = uniform(priors.size) if lam is None else _simplex(lam, "lambda")
  a = check_alpha(alpha)
  return (1.0 - a) * priors + a * lam


def example_weights(target: Any, priors: Any) -> np.ndarray:
  """Per-class example weights target_y / π_y [C] (index with the training labels)."""
  target, priors = _simplex(target, "target"), _simplex(priors, "priors")
  if np.any(priors == 0):
    raise ValueError("a class with prior 0 cannot be reweighted")
  return target / priors


def eg_update(lam: Any, risks: Any, step: float) -> np.ndarray:
  """One exponentiated-gradient ascent step: λ ← λ·exp(η·R̂) / Σ (computed in log space)."""
  lam = _simplex(lam, "lambda")
  risks = np.asarray(risks, np.float64)
  if risks.shape != lam.shape or np.any(~np.isfinite(risks)):
    raise ValueError(f"risks {risks.tolist()} must be finite, one per class")
  eta = float(step)
  if not (math.isfinite(eta) and eta >= 0):
    raise ValueError(f"EG step={step!r} must be a finite number >= 0")
  with np.errstate(divide="ignore"):
    logits = np.log(lam) + eta * risks
  logits -= logits.max()
  out = np.exp(logits)
  return out / out.sum()


def per_class_error(logits: Any, labels: Any, num_classes: int) -> np.ndarray:
  """1 − per-class accuracy [..., C] of logits [..., N, C] (NaN for an absent class)."""
  predicted = np.asarray(logits).argmax(-1)
  labels = np.asarray(labels, np.int64)
  out = []
  for c in range(int(num_classes)):
    mask = labels == c
    out.append(np.mean(predicted[..., mask] != c, -1) if mask.any()
               else np.full(predicted.shape[:-1], np.nan))
  return np.stack(out, -1)
