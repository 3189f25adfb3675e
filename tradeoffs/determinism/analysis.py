"""Analyses of a determinism run matrix: functions of the runs' saved files and of numbers.

    measured = analysis.measure_runs(workdirs, group_attribute="subgroup")
    versus = analysis.compare_to_reference(measured, measured_control)
    hw = analysis.sensitivity({name: measured["group_loss"], ...}, "range")
    runs = analysis.per_run_sensitivity({name: measured["group_loss"], ...}, "range")

Inputs are training workdirs in the trainer's file format (`predictions/test.npz`,
`final_params.npz`, optionally `initial_params.npz` and `metrics.jsonl`; see
`tradeoffs.determinism.matrix`), or the JSON-able values these functions return; nothing
here trains, builds a model or writes a report.
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tradeoffs import files as files_lib
from tradeoffs.determinism import hardware
from tradeoffs.determinism import matrix
from tradeoffs.determinism import metrics as metrics_lib

INITIAL_PARAMS_FILE = "initial_params.npz"
CPU_COST_NOTE = "not applicable: CPU kernels are deterministic"
NULL_DRAWS = 200  # Shuffled-class draws for the per-class std null.
EQUAL_SIZE_DRAWS = 8  # Subsamples per group for the equal-size gradient norms.
SENSITIVITY_METRICS = ("loss", "error")


def seconds_per_step(workdir: str) -> float | None:
  """Median logged seconds per (population) step, the first (compiling) interval dropped."""
  values = []
  for row in files_lib.read_jsonl(os.path.join(workdir, "metrics.jsonl")):
    # Keys are prefixed with the run's name ('control/seconds_per_step') unless 'train'.
    found = [v for k, v in row.items() if k.split("/")[-1] == "seconds_per_step"
             and isinstance(v, (int, float))]
    values += found[:1]
  if len(values) > 1:
    values = values[1:]
  return float(np.median(values)) if values else None


def _flat_params(workdir: str, name: str) -> dict[str, np.ndarray] | None:
  path = os.path.join(workdir, name)
  if not os.path.exists(path):
    return None
  with np.load(path, allow_pickle=False) as f:
    return {k: f[k] for k in f.files}


def group_stats(logits: np.ndarray, labels: np.ndarray, groups: np.ndarray,
                num_groups: int) -> dict[str, np.ndarray]:
  """Per-run, per-group test loss and error [runs, groups]."""
  losses = np.asarray(hardware.per_example_cross_entropy(jnp.asarray(logits),
                                                         jnp.asarray(labels)[None]))
  errors = (np.argmax(logits, -1) != labels[None]).astype(np.float32)
  return {"loss": np.asarray(hardware.per_group_mean(losses, jnp.asarray(groups), num_groups)),
          "error": np.asarray(hardware.per_group_mean(errors, jnp.asarray(groups),
                                                      num_groups))}


def nan_to_none(values: Any) -> list[float | None]:
  return [None if not np.isfinite(v) else float(v) for v in np.ravel(values)]


def measure_runs(workdirs: Sequence[str], group_attribute: str | None) -> dict[str, Any]:
  """Run-to-run metrics of the runs in `workdirs` (all members of each, aligned by id).

  `group_attribute=None` measures no per-group quantity (a dataset without groups). The
  key `_runs` holds the loaded `matrix.Runs` (for `compare_to_reference`; not JSON).
  """
  runs = matrix.load_runs(list(workdirs))
  num_classes = int(runs.logits.shape[-1])
  column = (hardware.group_column(runs.group_names, group_attribute)
            if runs.groups is not None and group_attribute is not None else None)
  groups = None if column is None else runs.groups[:, column]
  num_groups = None if groups is None else int(groups.max()) + 1
  count = int(runs.logits.shape[0])
  out = metrics_lib.summary(runs.logits, runs.labels, num_classes,
                            params=runs.params if count > 1 else None, groups=groups,
                            num_groups=num_groups)
  predictions = np.asarray(metrics_lib.predicted_labels(runs.logits))
  flips = np.asarray(metrics_lib.flip_counts(predictions, num_classes))
  per_class = np.asarray(metrics_lib.per_class_accuracy(predictions, runs.labels, num_classes))
  out.update(
      runs=count, num_classes=num_classes, num_groups=num_groups,
      group_names=list(runs.group_names), group_attribute=group_attribute,
      per_class_accuracy=nan_to_none(np.nanmean(per_class, axis=0)),
      worst_class=float(np.nanmin(np.nanmean(per_class, axis=0))),
      per_class_std_mean=float(np.nanmean(out["per_class_std"])),
      flips=flips.tolist(), flipped_examples=int(np.sum(flips > 0)),
      max_flips=int(flips.max()), ids=runs.ids.tolist(),
      modal=np.asarray(metrics_lib.modal_predictions(predictions, num_classes)).tolist(),
      labels=runs.labels.tolist(),
      logits_identical=None if count < 2 else metrics_lib.bitwise_identical(
          list(runs.logits)))
  if count >= 2:
    out["per_class_null"] = per_class_null(predictions, runs.labels, num_classes)
  if count < 2:
    # One run has no spread: say so instead of reporting zeros.
    for key in ("top1_std", "churn", "per_class_std_max", "per_class_std_mean",
                "predictions_identical", "logits_identical", "init_identical"):
      out[key] = None
  if groups is not None:
    stats = group_stats(runs.logits, runs.labels, groups, num_groups)
    out["group_loss"] = stats["loss"].tolist()
    out["group_error"] = stats["error"].tolist()
    out["group_accuracy"] = (1.0 - np.nanmean(stats["error"], axis=0)).tolist()
    out["worst_group"] = float(np.nanmin(out["group_accuracy"]))
    for key in ("fpr_std", "fnr_std"):
      if key in out:  # [groups, classes] one-vs-rest -> mean over classes per group.
        out[f"{key}_by_group"] = nan_to_none(np.nanmean(np.asarray(out[key], float), axis=-1))
  initial = [_flat_params(wd, INITIAL_PARAMS_FILE) for wd in workdirs]
  if all(p is not None for p in initial):
    stacked = {k: np.concatenate([p[k] for p in initial]) for k in sorted(initial[0])}
    out["init_identical"] = None if count < 2 else metrics_lib.bitwise_identical(
        list(np.asarray(metrics_lib.flatten_runs(stacked))))
  times = [seconds_per_step(wd) for wd in workdirs]
  times = [t for t in times if t is not None]
  out["seconds_per_step"] = float(np.median(times)) if times else None
  out["_runs"] = runs
  return out


def per_class_null(predictions: np.ndarray, labels: np.ndarray, num_classes: int,
                   draws: int = NULL_DRAWS) -> dict[str, Any]:
  """Observed per-class / top-1 std ratios (mean and max over classes) and their null band."""
  null = metrics_lib.per_class_std_null(predictions, labels, num_classes,
                                        jax.random.key(0), num_draws=draws)
  out: dict[str, Any] = {"draws": draws}
  for stat in ("mean", "max"):
    ratio = null.ratio(stat)
    if not np.isfinite(ratio):  # Top-1 std is 0: nothing varies, no ratio.
      return {"draws": draws, "skipped": "top-1 std is 0"}
    out[stat] = {"ratio": ratio, "null_median": float(np.median(null.null_ratio(stat))),
                 "band": list(null.band(stat)), "p_value": null.p_value(stat)}
  return out


def compare_to_reference(measured: Mapping[str, Any], reference: Mapping[str, Any]
                         ) -> dict[str, Any]:
  """Run r against run r of the reference (same seeds, different implementation)."""
  a, b = reference["_runs"], measured["_runs"]
  if not np.array_equal(a.ids, b.ids):
    raise ValueError("runs predict different examples; cannot compare settings")
  pairs = min(a.logits.shape[0], b.logits.shape[0])
  preds_a = np.argmax(a.logits[:pairs], -1)
  preds_b = np.argmax(b.logits[:pairs], -1)
  out = {"pairs": pairs,
         "churn": float(np.mean(preds_a != preds_b)),
         "logits_identical": bool(a.logits[:pairs].tobytes() == b.logits[:pairs].tobytes()),
         "predictions_identical": bool(np.array_equal(preds_a, preds_b))}
  if a.params is not None and b.params is not None and sorted(a.params) == sorted(b.params):
    fa = np.asarray(metrics_lib.flatten_runs({k: v[:pairs] for k, v in a.params.items()}))
    fb = np.asarray(metrics_lib.flatten_runs({k: v[:pairs] for k, v in b.params.items()}))
    out["weight_l2"] = float(np.mean(np.linalg.norm(fa - fb, axis=1)))
    out["weights_identical"] = bool(fa.tobytes() == fb.tobytes())
  return out


def _stack(group_metric: Mapping[str, Any]) -> tuple[list[str], np.ndarray] | None:
  """[runs, settings, groups] of the settings' per-run group metrics (runs cut to the
  fewest any setting has); None for fewer than 2 settings."""
  names = [n for n, v in group_metric.items() if v is not None and len(v)]
  if len(names) < 2:
    return None
  runs = min(len(group_metric[n]) for n in names)
  stack = np.stack([np.asarray(group_metric[n], np.float32)[:runs] for n in names], axis=1)
  return names, stack


def sensitivity(group_metric: Mapping[str, Any], reduce: str, metric: str = "loss",
                attribute: str = "group") -> dict[str, Any] | None:
  """Delta per group over the settings (run r with run r, averaged over runs) and xi.

  `group_metric` maps each setting to its per-run group metric [runs][groups] (the
  `group_loss` / `group_error` of `measure_runs`); None for fewer than 2 settings.
  """
  found = _stack(group_metric)
  if found is None:
    return None
  names, stack = found
  delta = np.asarray(hardware.group_sensitivity(stack, reduce))
  return {"settings": list(names), "runs": int(stack.shape[0]), "metric": metric,
          "reduce": reduce, "delta": nan_to_none(delta),
          "xi": float(hardware.fairness_violation(jnp.asarray(delta))),
          "mean_delta": float(np.nanmean(delta)),
          "group_names": [f"{attribute}={g}" for g in range(stack.shape[-1])]}


def per_run_sensitivity(group_metric: Mapping[str, Any], reduce: str) -> dict[str, list]:
  """xi and mean Delta of each run r alone (Delta over the settings' run r).

  The samples a comparison of xi (with against without mitigation) is drawn from; empty
  lists for fewer than 2 settings. Each value needs the same seeds in run r of every
  setting.
  """
  found = _stack(group_metric)
  if found is None:
    return {"xi": [], "mean_delta": []}
  _, stack = found
  deltas = [np.asarray(hardware.group_sensitivity(stack[r:r + 1], reduce))
            for r in range(stack.shape[0])]
  return {"xi": [float(hardware.fairness_violation(jnp.asarray(d))) for d in deltas],
          "mean_delta": [float(np.nanmean(d)) for d in deltas]}


def determinism_cost(seconds_per_step: Mapping[str, float | None],
                     backends: Mapping[str, str]) -> dict[str, Any]:
  """Step time of 'gpu_deterministic' over 'gpu_default' (`metrics.determinism_cost`)
  when both ran; else a note saying why there is no number (on CPU: none to pay)."""
  det, default = seconds_per_step.get("gpu_deterministic"), seconds_per_step.get("gpu_default")
  if det and default:
    ratio = metrics_lib.determinism_cost([det], [default])
    return {"value": ratio, "note": f"gpu: deterministic / default step time = {ratio:.3f}"}
  if set(backends.values()) <= {"cpu"}:
    return {"value": None, "note": CPU_COST_NOTE}
  return {"value": None, "note": "not measured: run both 'gpu_default' and "
                                 "'gpu_deterministic' on a GPU machine"}
