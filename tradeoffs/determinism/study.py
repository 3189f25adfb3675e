"""The determinism study: a run matrix of noise settings, its metrics, records and report.

Behind `experiments/determinism.py`, importable from Colab. One training config runs under
a list of settings (see `parse_setting`) x repeats:

* settings where only algorithmic seeds vary (and matmul precision / PRNG switches) run
  in-process as one population (one vmapped program, `train_run`);
* settings fixed at JAX start-up (device count, XLA flags, backend) run one process per
  repeat: `python -m experiments.train` under the setting's environment, or, for runs
  trained with the mitigation penalty, `python -m experiments.determinism --train_one`.

Everything after training is a function of the saved files (`predictions/test.npz`,
`final_params.npz`, `config.json`, `metrics.jsonl`), so `compare_workdirs` analyses
workdirs written on other machines (a CPU run here, a GPU run elsewhere) the same way.

Metrics per setting (over its runs): top-1 mean/std, per-class accuracy std, per-group
FPR/FNR std, churn, L2 between final weights, bitwise identity, per-example flips.
Between settings (run r of each implementation setting against run r of `control`, same
seeds): churn, L2, bitwise. Hardware and subgroups (PAPERS.md section 8): per-group
sensitivity Delta over the implementation settings (group test loss, 'range' by default),
xi = max Delta - min Delta, with and without the boundary-alignment penalty, and per-group
gradient norm and top Hessian eigenvalue of the control run as the mechanism.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import re
import shlex
import time
from typing import Any, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from tradeoffs import environment as environment_lib
from tradeoffs import workdir as workdir_lib
from tradeoffs.determinism import hardware
from tradeoffs.determinism import matrix
from tradeoffs.determinism import metrics as metrics_lib
from tradeoffs.determinism import settings as settings_lib
from tradeoffs.report import records as records_lib

STUDY = "determinism"
MITIGATED_SUFFIX = "+mitigated"
TRAIN_CONFIG_FILE = "train_config.json"
MITIGATED_CONFIG_FILE = "train_config_mitigated.json"
INITIAL_PARAMS_FILE = "initial_params.npz"
ANALYSIS_FILE = "analysis.json"
CPU_COST_NOTE = "not applicable: CPU kernels are deterministic"
NULL_DRAWS = 200  # Shuffled-class draws for the per-class std null.
EQUAL_SIZE_DRAWS = 8  # Subsamples per group for the equal-size gradient norms.

# Algorithmic settings: seeds that vary, on this process's implementation.
ALGORITHMIC = {
    "control": (),
    "algo": settings_lib.ALGORITHMIC_SOURCES,
    "init_only": ("init",),
    "data_order_only": ("data",),
    "augment_only": ("augment",),
    "dropout_only": ("dropout",),
}
# Control, but one member per process: the reference for settings that run in processes,
# so that they are not confounded with population (vmapped) vs single-member programs.
PROCESS_SETTINGS = {"control_process": "control"}
# Backend settings from the library presets: (preset, backend).
BACKEND_SETTINGS = {
    "gpu_default": ("impl", "gpu"),
    "gpu_deterministic": ("control", "gpu"),
    "tpu": ("control", "tpu"),
}
SETTING_FORMS = (sorted(ALGORITHMIC) + sorted(PROCESS_SETTINGS) + sorted(BACKEND_SETTINGS) + [
    "devices_<N>", "fast_math", "opt_level_<N>", "precision_<P>", "prng_<impl>",
    "<name>=--xla_<flag>=<value>[ --xla_<flag>=<value> ...]"])
SENSITIVITY_METRICS = ("loss", "error")


# ---------------------------------------------------------------------------------------
# Settings.


def parse_setting(spec: str, current: settings_lib.Setting, seeds: dict[str, int]
                  ) -> settings_lib.Setting:
  """A Setting from its name in the config.

  Algorithmic names and the implementation names start from `current` (this process's
  backend, device count, flags, precision), with `seeds` as base seeds; implementation
  names vary no seed, so run r of each is comparable with run r of `control`.
  """
  if not isinstance(spec, str) or not spec:
    raise ValueError(f"settings entry {spec!r}; need a non-empty string, one of {SETTING_FORMS}")
  base = dataclasses.replace(
      current, name=spec, vary=(), init_seed=seeds["init"], data_seed=seeds["data"],
      augment_seed=seeds["augment"], dropout_seed=seeds["dropout"])
  if spec in ALGORITHMIC:
    return dataclasses.replace(base, vary=ALGORITHMIC[spec])
  if spec in PROCESS_SETTINGS:
    return dataclasses.replace(base, vary=ALGORITHMIC[PROCESS_SETTINGS[spec]])
  if spec in BACKEND_SETTINGS:
    preset_name, backend = BACKEND_SETTINGS[spec]
    return dataclasses.replace(
        settings_lib.preset(preset_name, backend=backend), name=spec,
        init_seed=seeds["init"], data_seed=seeds["data"], augment_seed=seeds["augment"],
        dropout_seed=seeds["dropout"])
  if "=" in spec and "--xla_" in spec:
    name, flags = spec.split("=", 1)
    if not name or "--" in name:
      raise ValueError(f"settings entry {spec!r}; custom flags need '<name>=--xla_...'")
    return dataclasses.replace(base, name=name,
                               xla_flags=base.xla_flags + tuple(shlex.split(flags)))
  if m := re.fullmatch(r"devices_(\d+)", spec):
    return dataclasses.replace(base, device_count=int(m.group(1)))
  if spec == "fast_math":
    return dataclasses.replace(
        base, xla_flags=base.xla_flags + ("--xla_cpu_enable_fast_math=true",))
  if m := re.fullmatch(r"opt_level_(\d+)", spec):
    return dataclasses.replace(base, xla_flags=base.xla_flags + (
        f"--xla_backend_optimization_level={m.group(1)}",))
  if m := re.fullmatch(r"precision_(\w+)", spec):
    return dataclasses.replace(base, matmul_precision=m.group(1))
  if m := re.fullmatch(r"prng_(\w+)", spec):
    return dataclasses.replace(base, prng_impl=m.group(1))
  raise ValueError(f"settings entry {spec!r} is unknown; valid forms: {SETTING_FORMS}")


def base_seeds(train_config: Any) -> dict[str, int]:
  return {s: int(train_config.seeds[s]) for s in settings_lib.ALGORITHMIC_SOURCES}


def study_settings(config: Any, current: settings_lib.Setting | None = None
                   ) -> list[settings_lib.Setting]:
  """The config's settings, parsed and checked (names unique, augment on if asked for)."""
  current = current or settings_lib.current_setting()
  seeds = base_seeds(config.training)
  settings = [parse_setting(s, current, seeds) for s in config.settings]
  names = [s.name for s in settings]
  if len(set(names)) != len(names):
    raise ValueError(f"--config.settings={tuple(config.settings)} has duplicate names")
  if any(s.name.endswith(MITIGATED_SUFFIX) for s in settings):
    raise ValueError(f"--config.settings={tuple(config.settings)}: names ending in "
                     f"{MITIGATED_SUFFIX!r} are reserved for the mitigation runs")
  augment_names = tuple(config.training.augment.get("names", ()) or ())
  if "augment_only" in names and not augment_names:
    raise ValueError("--config.settings has 'augment_only' but --config.training.augment."
                     "names=() turns augmentation off, so it would equal 'control'; add "
                     "augmentations or drop the setting")
  return settings


def in_own_processes(setting: settings_lib.Setting) -> bool:
  """Settings that run one process per repeat even when this process could run them."""
  return setting.name.removesuffix(MITIGATED_SUFFIX) in PROCESS_SETTINGS


def is_implementation(setting: settings_lib.Setting) -> bool:
  """True for settings that vary no seed: they differ from `control` only in how they run."""
  return not setting.vary


def validate_config(config: Any, current: settings_lib.Setting | None = None,
                    probe_flags: bool = True) -> list[settings_lib.Setting]:
  """Fail-fast checks of the study config, before anything is compiled.

  Parses the settings, checks the training config, and probes every XLA flag in a
  throw-away process (a flag the installed jaxlib does not know raises ValueError naming
  it; flags of a backend that is not present are left to be reported as skipped).
  """
  from tradeoffs.train import experiment  # pylint: disable=g-import-not-at-top
  for key in ("repeats", "impl_repeats"):
    value = config[key]
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
      raise ValueError(f"--config.{key}={value!r}; need an int >= 1")
  m = config.mitigation
  if not isinstance(m.weight, (int, float)) or m.weight < 0:
    raise ValueError(f"--config.mitigation.weight={m.weight!r}; need a number >= 0 (0: off)")
  if m.proximity not in hardware.BOUNDARY_PROXIMITY:
    raise ValueError(f"--config.mitigation.proximity={m.proximity!r}; valid: "
                     f"{sorted(hardware.BOUNDARY_PROXIMITY)}")
  if int(m.repeats) < 1:
    raise ValueError(f"--config.mitigation.repeats={m.repeats!r}; need an int >= 1")
  if config.sensitivity.reduce not in hardware.SENSITIVITIES:
    raise ValueError(f"--config.sensitivity.reduce={config.sensitivity.reduce!r}; valid: "
                     f"{sorted(hardware.SENSITIVITIES)}")
  if config.sensitivity.metric not in SENSITIVITY_METRICS:
    raise ValueError(f"--config.sensitivity.metric={config.sensitivity.metric!r}; valid: "
                     f"{list(SENSITIVITY_METRICS)}")
  settings = study_settings(config, current)
  # Each setting's device count must divide the batch (the trainer shards it on 'data').
  for s in settings:
    if s.backend == "cpu":
      experiment.validate(_with_members(config.training, 1), device_count=s.device_count)
  experiment.validate(_with_members(config.training, int(config.repeats)))
  if probe_flags:
    for s in settings:
      if s.xla_flags and settings_lib.needs_subprocess(s, current):
        settings_lib.validate_xla_flags(s.xla_flags, s.backend)
  return settings


def _with_members(train_config: Any, members: int) -> Any:
  c = copy.deepcopy(train_config)
  c.population.members = members
  return c


def setting_config(train_config: Any, setting: settings_lib.Setting, members: int,
                   mitigation: Any | None = None) -> Any:
  """The training config of an in-process population of `setting` (as config_overrides)."""
  c = copy.deepcopy(train_config)
  with c.unlocked():  # `mitigation` is a new section.
    for source, seed in settings_lib.seeds_for_repeat(setting, 0).items():
      c.seeds[source] = seed
    c.seeds.vary = ",".join(setting.vary)
    c.population.members = members
    if mitigation is not None:
      c.mitigation = copy.deepcopy(mitigation)
  return c


# ---------------------------------------------------------------------------------------
# Training one run or population (in-process, or `--train_one` in a subprocess).


def group_column(group_names: Sequence[str], attribute: str) -> int:
  names = [str(n) for n in group_names]
  if attribute not in names:
    raise ValueError(f"group_attribute={attribute!r} is not in the dataset's group "
                     f"attributes {names}")
  return names.index(attribute)


def penalty_fn(weight: float, column: int, num_groups: int, proximity: str):
  """StepConfig.group_loss_fn: weight * boundary_alignment_penalty on one group column."""

  def group_loss(logits, labels, groups):
    del labels
    return weight * hardware.boundary_alignment_penalty(logits, groups[:, column], num_groups,
                                                        proximity)

  return group_loss


def train_run(train_config: Any, workdir: str) -> dict[str, Any] | None:
  """Trains the population of `train_config` into `workdir`, like `experiment.run`.

  Also saves the initial params (`initial_params.npz`) and, when the config has a
  `mitigation` section with weight > 0, adds the boundary-alignment penalty to each
  member's loss through `StepConfig.group_loss_fn`. Returns the summary, or None when
  preempted (the state is checkpointed; rerun to resume).
  """
  from tradeoffs.train import experiment  # pylint: disable=g-import-not-at-top
  from tradeoffs.train import predictions as predictions_lib  # pylint: disable=g-import-not-at-top
  from tradeoffs.train import distributed  # pylint: disable=g-import-not-at-top

  experiment.validate(train_config)
  members = int(train_config.population.members)
  mesh, env = experiment.prepare_workdir(train_config, workdir)
  dataset = experiment.load_dataset(train_config)
  overrides = {}
  mitigation = train_config.get("mitigation")
  if mitigation is not None and float(mitigation.weight) > 0:
    column = group_column(dataset.train.group_names, mitigation.group_attribute)
    num_groups = int(max(dataset.train.groups[:, column].max(),
                         dataset.test.groups[:, column].max())) + 1
    overrides["group_loss_fn"] = penalty_fn(float(mitigation.weight), column, num_groups,
                                            str(mitigation.proximity))
  mesh, dataset, _, state, step_config = experiment.build(train_config, dataset=dataset,
                                                          step_overrides=overrides)
  predictions_lib.save_params(workdir, distributed.to_host(state.params),
                              name=INITIAL_PARAMS_FILE)
  writer = workdir_lib.MetricWriter(workdir)
  state, last, preempted = experiment.train_population(
      train_config, workdir, state=state, mesh=mesh, dataset=dataset,
      step_config=step_config, writer=writer, name=os.path.basename(
          os.path.dirname(os.path.normpath(workdir))) or "train")
  writer.close()
  if preempted:
    return None
  eval_batch = int(train_config.eval.get("batch_size", 512))
  logits, test_metrics = experiment.evaluate(state, dataset.test, mesh, eval_batch)
  test = dataset.test
  preds = predictions_lib.Predictions(logits=logits, labels=test.labels, ids=test.ids,
                                      groups=test.groups, group_names=test.group_names)
  predictions_lib.save(workdir, "test", preds)
  predictions_lib.save_params(workdir, distributed.to_host(state.params))
  summary = {**last, **test_metrics, "members": members,
             "per_member_test_accuracy": preds.accuracy.tolist()}
  if workdir_lib.is_writer():
    workdir_lib.write_json(os.path.join(workdir, "summary.json"), summary)
  return summary


# ---------------------------------------------------------------------------------------
# Reading runs back and measuring them.


def seconds_per_step(workdir: str) -> float | None:
  """Median logged seconds per (population) step, the first (compiling) interval dropped."""
  values = []
  for row in workdir_lib.read_jsonl(os.path.join(workdir, "metrics.jsonl")):
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


def _group_stats(logits: np.ndarray, labels: np.ndarray, groups: np.ndarray,
                 num_groups: int) -> dict[str, np.ndarray]:
  """Per-run, per-group test loss and error [runs, groups]."""
  losses = np.asarray(hardware.per_example_cross_entropy(jnp.asarray(logits),
                                                         jnp.asarray(labels)[None]))
  errors = (np.argmax(logits, -1) != labels[None]).astype(np.float32)
  return {"loss": np.asarray(hardware.per_group_mean(losses, jnp.asarray(groups), num_groups)),
          "error": np.asarray(hardware.per_group_mean(errors, jnp.asarray(groups),
                                                      num_groups))}


def _nan_to_none(values: Any) -> Any:
  return [None if not np.isfinite(v) else float(v) for v in np.ravel(values)]


def measure_runs(workdirs: Sequence[str], group_attribute: str | None) -> dict[str, Any]:
  """Run-to-run metrics of the runs in `workdirs` (all members of each, aligned by id).

  `group_attribute=None` measures no per-group quantity (a dataset without groups).
  """
  runs = matrix.load_runs(list(workdirs))
  num_classes = int(runs.logits.shape[-1])
  column = (group_column(runs.group_names, group_attribute)
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
      per_class_accuracy=_nan_to_none(np.nanmean(per_class, axis=0)),
      worst_class=float(np.nanmin(np.nanmean(per_class, axis=0))),
      per_class_std_mean=float(np.nanmean(out["per_class_std"])),
      flips=flips.tolist(), flipped_examples=int(np.sum(flips > 0)),
      max_flips=int(flips.max()), ids=runs.ids.tolist(),
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
    stats = _group_stats(runs.logits, runs.labels, groups, num_groups)
    out["group_loss"] = stats["loss"].tolist()
    out["group_error"] = stats["error"].tolist()
    out["group_accuracy"] = (1.0 - np.nanmean(stats["error"], axis=0)).tolist()
    out["worst_group"] = float(np.nanmin(out["group_accuracy"]))
    for key in ("fpr_std", "fnr_std"):
      if key in out:  # [groups, classes] one-vs-rest -> mean over classes per group.
        out[f"{key}_by_group"] = _nan_to_none(np.nanmean(np.asarray(out[key], float), axis=-1))
  initial = [_flat_params(wd, INITIAL_PARAMS_FILE) for wd in workdirs]
  if all(p is not None for p in initial):
    stacked = {k: np.concatenate([p[k] for p in initial]) for k in sorted(initial[0])}
    out["init_identical"] = None if count < 2 else metrics_lib.bitwise_identical(
        list(np.asarray(metrics_lib.flatten_runs(stacked))))
  times = [seconds_per_step(wd) for wd in workdirs]
  times = [t for t in times if t is not None]
  out["seconds_per_step"] = float(np.median(times)) if times else None
  out["_runs"] = runs  # For the between-setting comparison; dropped before writing.
  return out


def per_class_null(predictions: np.ndarray, labels: np.ndarray, num_classes: int,
                   draws: int = NULL_DRAWS) -> dict[str, Any]:
  """Observed per-class / top-1 std ratios (mean and max over classes) and their null band."""
  null = metrics_lib.per_class_std_null(predictions, labels, num_classes,
                                        jax.random.key(0), num_draws=draws)
  out = {"draws": draws}
  for stat in ("mean", "max"):
    ratio = null.ratio(stat)
    if not np.isfinite(ratio):  # Top-1 std is 0: nothing varies, no ratio.
      return {"draws": draws, "skipped": "top-1 std is 0"}
    out[stat] = {"ratio": ratio, "null_median": float(np.median(null.null_ratio(stat))),
                 "band": list(null.band(stat)), "p_value": null.p_value(stat)}
  return out


def compare_to_reference(measured: dict[str, Any], reference: dict[str, Any]
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


def sensitivity(measured: dict[str, dict[str, Any]], names: Sequence[str], metric: str,
                reduce: str) -> dict[str, Any] | None:
  """Delta per group over the settings `names` (run r with run r) and xi; None if < 2."""
  names = [n for n in names if n in measured and "group_" + metric in measured[n]]
  if len(names) < 2:
    return None
  runs = min(len(measured[n]["group_" + metric]) for n in names)
  stack = np.stack([np.asarray(measured[n]["group_" + metric], np.float32)[:runs]
                    for n in names], axis=1)                     # [runs, settings, groups]
  delta = np.asarray(hardware.group_sensitivity(stack, reduce))
  return {"settings": list(names), "runs": runs, "metric": metric, "reduce": reduce,
          "delta": _nan_to_none(delta),
          "xi": float(hardware.fairness_violation(jnp.asarray(delta))),
          "mean_delta": float(np.nanmean(delta)),
          "group_names": [f"{measured[names[0]]['group_attribute']}={g}"
                          for g in range(stack.shape[-1])]}


def mechanism(workdir: str, group_attribute: str, split: str = "train",
              max_examples: int = 0, num_iters: int = 20, member: int = 0
              ) -> dict[str, Any]:
  """Per-group gradient norm and top Hessian eigenvalue of one run's final params.

  Rebuilds the model from the run's `config.json` and its `final_params.npz`. Models with
  batch statistics are reported as skipped (final_params.npz holds params only).
  """
  import ml_collections  # pylint: disable=g-import-not-at-top
  from tradeoffs import models as models_lib  # pylint: disable=g-import-not-at-top
  from tradeoffs.train import experiment  # pylint: disable=g-import-not-at-top

  config = ml_collections.ConfigDict(workdir_lib.read_json(os.path.join(workdir,
                                                                        "config.json")))
  dataset = experiment.load_dataset(config)
  data = getattr(dataset, split)
  column = group_column(data.group_names, group_attribute)
  images, labels, groups = data.images, data.labels, data.groups[:, column]
  if max_examples:
    images, labels, groups = images[:max_examples], labels[:max_examples], groups[:max_examples]
  num_groups = int(groups.max()) + 1
  model = models_lib.get(config.model.name, num_classes=dataset.num_classes,
                         **experiment.model_kwargs(config))
  flat = matrix.load_final_params(workdir)
  params: dict[str, Any] = {}
  for key, value in flat.items():
    node = params
    parts = key.split("/")
    for part in parts[:-1]:
      node = node.setdefault(part, {})
    node[parts[-1]] = jnp.asarray(value[member])
  variables = model.init(jax.random.key(0), jnp.zeros((1, *images.shape[1:])), train=False)
  if "batch_stats" in variables:
    return {"skipped": "model has batch statistics, which final_params.npz does not hold"}

  def loss_fn(p, batch):
    x, y = batch
    return hardware.per_example_cross_entropy(model.apply({"params": p}, x, train=False), y)

  batch = (jnp.asarray(images), jnp.asarray(labels))
  groups = jnp.asarray(groups)
  norms = jax.jit(lambda p: hardware.per_group_grad_norms(loss_fn, p, batch, groups,
                                                          num_groups))(params)
  eigen = jax.jit(lambda p: hardware.per_group_top_hessian_eigenvalue(
      loss_fn, p, batch, groups, num_groups, jax.random.key(0), num_iters))(params)
  # Raw norms shrink like 1/sqrt(n_a): compare groups at one size as well.
  equal = hardware.per_group_grad_norms_equal_size(
      loss_fn, params, batch, np.asarray(groups), num_groups, jax.random.key(1),
      draws=EQUAL_SIZE_DRAWS)
  counts = np.bincount(np.asarray(groups), minlength=num_groups)
  return {"split": split, "member": member, "examples": int(len(labels)),
          "group_names": [f"{group_attribute}={g}" for g in range(num_groups)],
          "group_counts": counts.tolist(), "grad_norm": _nan_to_none(norms),
          "grad_norm_equal_size": {"size": equal.size, "draws": EQUAL_SIZE_DRAWS,
                                   "mean": _nan_to_none(equal.mean),
                                   "std": _nan_to_none(equal.std)},
          "top_hessian_eigenvalue": _nan_to_none(eigen), "lanczos_iters": num_iters}


def determinism_cost(measured: dict[str, dict[str, Any]],
                     settings: Sequence[settings_lib.Setting]) -> dict[str, Any]:
  """Step time of the deterministic GPU setting over the default one, when both ran.

  Only a backend with non-deterministic kernels has a cost; on CPU it says so.
  """
  by_name = {s.name: s for s in settings}
  det, default = measured.get("gpu_deterministic"), measured.get("gpu_default")
  if det and default and det.get("seconds_per_step") and default.get("seconds_per_step"):
    ratio = det["seconds_per_step"] / default["seconds_per_step"]
    return {"value": ratio, "note": f"gpu: deterministic / default step time = {ratio:.3f}"}
  backends = {by_name[n].backend for n in measured if n in by_name}
  if backends <= {"cpu"}:
    return {"value": None, "note": CPU_COST_NOTE}
  return {"value": None, "note": "not measured: run both 'gpu_default' and "
                                 "'gpu_deterministic' on a GPU machine"}


# ---------------------------------------------------------------------------------------
# The study.


def population_fn(train_config: Any, mitigation: Any | None = None):
  """`run_matrix(population_fn=...)`: trains `setting`'s in-process population of
  `train_config` (with the `mitigation` section, if given) by `train_run`."""
  def run(setting, members, workdir):
    logging.info("setting %r: training a population of %d in-process", setting.name, members)
    return train_run(setting_config(train_config, setting, members, mitigation), workdir)
  return run


def run_study(config: Any, workdir: str, environment: dict[str, Any] | None = None
              ) -> dict[str, Any]:
  """Runs the matrix into `workdir/runs`, then analyses it into records and the report."""
  current = settings_lib.current_setting()
  settings = validate_config(config, current)
  environment = environment or environment_lib.capture()
  root = os.path.join(workdir, "runs")
  train_json = os.path.join(workdir, TRAIN_CONFIG_FILE)
  workdir_lib.write_json(train_json, config.training)
  in_process = [s for s in settings
                if not config.isolate and not in_own_processes(s)
                and not settings_lib.needs_subprocess(s, current)]
  subprocess_settings = [s for s in settings if s not in in_process]
  common = dict(current=current, timeout_s=float(config.timeout_s),
                base_env=matrix.checkout_env(), on_error="record")
  results = []
  started = time.time()
  if in_process:
    logging.info("in-process populations (%d members): %s", config.repeats,
                 [s.name for s in in_process])
    results += matrix.run_matrix(in_process, int(config.repeats), root,
                                 population_fn=population_fn(config.training),
                                 command=matrix.train_command(train_json), isolate=False,
                                 **common)
  for s in subprocess_settings:
    logging.info("setting %r: %d runs, one process each (%s); %.0fs elapsed", s.name,
                 config.impl_repeats, s.implementation(), time.time() - started)
    results += matrix.run_matrix([s], int(config.impl_repeats), root,
                                 command=matrix.train_command(train_json), isolate=True,
                                 **common)
  mitigated = []
  if float(config.mitigation.weight) > 0:
    mitigation = copy.deepcopy(config.mitigation)
    with mitigation.unlocked():
      mitigation.group_attribute = config.group_attribute
    mitigated_json = os.path.join(workdir, MITIGATED_CONFIG_FILE)
    mitigated_config = copy.deepcopy(config.training)
    with mitigated_config.unlocked():
      mitigated_config.mitigation = mitigation
    workdir_lib.write_json(mitigated_json, mitigated_config)
    mitigated = [dataclasses.replace(s, name=s.name + MITIGATED_SUFFIX)
                 for s in settings if is_implementation(s)]
    logging.info("mitigation (weight %g): %s; %.0fs elapsed", config.mitigation.weight,
                 [s.name for s in mitigated], time.time() - started)
    for s in mitigated:
      results += matrix.run_matrix(
          [s], int(config.mitigation.repeats), root,
          population_fn=population_fn(config.training, mitigation),
          command=matrix.train_command(mitigated_json, train_one=True), check_flags=False,
          isolate=bool(config.isolate) or in_own_processes(s), **common)
  logging.info("matrix done in %.0fs; analysing", time.time() - started)
  entries = {}
  for s in settings + mitigated:
    rows = [r for r in results if r.setting == s.name]
    entries[s.name] = dict(setting=s, results=rows,
                           workdirs=matrix.result_workdirs(results, s.name))
  analysis = analyse(entries, config, reference="control")
  write_outputs(workdir, analysis, config, environment)
  return analysis


def analyse(entries: dict[str, dict[str, Any]], config: Any, reference: str | None,
            group_attribute: str | None = "") -> dict[str, Any]:
  """Metrics per entry, against the reference entry, sensitivity, mechanism, cost.

  `group_attribute` defaults to the config's; None skips every per-group quantity.
  """
  if group_attribute == "":
    group_attribute = config.group_attribute
  measured, status = {}, {}
  for name, entry in entries.items():
    rows = entry.get("results") or []
    failed = [r for r in rows if r.status in ("failed", "skipped")]
    if failed and not entry["workdirs"]:
      status[name] = f"{failed[0].status}: {failed[0].message.splitlines()[0]}"
      continue
    if not entry["workdirs"]:
      status[name] = "no runs"
      continue
    measured[name] = measure_runs(entry["workdirs"], group_attribute)
    measured[name]["mode"] = rows[0].mode if rows else "workdir"
    status[name] = "ok" if not failed else f"partial: {len(failed)} runs {failed[0].status}"
  setting_objs = {n: e["setting"] for n, e in entries.items() if e.get("setting") is not None}
  versus = {}
  if reference is not None and reference in measured:
    for name in measured:
      if name == reference:
        continue
      same_seeds = name not in setting_objs or is_implementation(setting_objs[name])
      ref = reference
      # Settings run in processes compare with control run in processes, when there is one.
      process_ref = next(iter(PROCESS_SETTINGS))
      if (measured[name].get("mode") == "subprocess" and process_ref in measured
          and name.removesuffix(MITIGATED_SUFFIX) != process_ref):
        ref = process_ref
      if name.endswith(MITIGATED_SUFFIX):
        ref += MITIGATED_SUFFIX
      if same_seeds and ref in measured and ref != name:
        versus[name] = dict(compare_to_reference(measured[name], measured[ref]), reference=ref)
  plain = [n for n in measured if not n.endswith(MITIGATED_SUFFIX)
           and (n not in setting_objs or is_implementation(setting_objs[n]))]
  mitigated = [n for n in measured if n.endswith(MITIGATED_SUFFIX)]
  metric, reduce = config.sensitivity.metric, config.sensitivity.reduce
  hw = {"without_mitigation": sensitivity(measured, plain, metric, reduce),
        "with_mitigation": sensitivity(measured, mitigated, metric, reduce),
        "mitigation_weight": float(config.mitigation.weight)}
  mech = {}
  if config.mechanism.enabled and group_attribute is not None:
    for name in ([reference, reference + MITIGATED_SUFFIX] if reference else plain[:1]):
      if name in measured:
        try:
          mech[name] = mechanism(entries[name]["workdirs"][0], group_attribute,
                                 config.mechanism.split, int(config.mechanism.max_examples),
                                 int(config.mechanism.num_iters))
        except (FileNotFoundError, ValueError, KeyError) as e:
          mech[name] = {"skipped": str(e)}
  cost = determinism_cost(measured, list(setting_objs.values()))
  return {"measured": measured, "status": status, "versus": versus, "hardware": hw,
          "mechanism": mech, "determinism_cost": cost, "group_attribute": group_attribute,
          "settings": {n: s.to_dict() for n, s in setting_objs.items()},
          "order": list(entries)}


# ---------------------------------------------------------------------------------------
# Records and report.


def _record(name: str, m: dict[str, Any], analysis: dict[str, Any], config: Any,
            environment: dict[str, Any]) -> dict[str, Any]:
  versus = analysis["versus"].get(name, {})
  hidden = {
      "top1_std": m["top1_std"], "per_class_std": m["per_class_std"],
      "per_class_std_max": m["per_class_std_max"], "per_class_std_mean": m["per_class_std_mean"],
      "churn": m["churn"], "weight_l2": m.get("weight_l2"),
      "flips": m["flipped_examples"], "max_flips": m["max_flips"],
      "unstable_fraction": m["unstable_fraction"],
      "predictions_identical": m["predictions_identical"],
      "logits_identical": m["logits_identical"],
      "weights_identical": m.get("weights_identical"),
      "fpr_std_by_group": m.get("fpr_std_by_group"),
      "fnr_std_by_group": m.get("fnr_std_by_group"),
      "churn_vs_control": versus.get("churn"), "weight_l2_vs_control": versus.get("weight_l2"),
      "identical_to_control": versus.get("logits_identical"),
      "determinism_cost": analysis["determinism_cost"]["value"],
      "determinism_cost_note": analysis["determinism_cost"]["note"],
  }
  hw = analysis["hardware"]["with_mitigation" if name.endswith(MITIGATED_SUFFIX)
                            else "without_mitigation"]
  if hw is not None and name in hw["settings"]:
    hidden["fairness_violation_xi"] = hw["xi"]
  mode = m.get("mode")
  step = m["seconds_per_step"]
  members_per_step = m["runs"] if mode == "in_process" else 1
  efficiency = {"seconds_per_step": step,
                "step_unit": "population step" if mode == "in_process" else "step",
                "seconds_per_member_step": None if step is None else step / members_per_step}
  return records_lib.make_record(
      study=STUDY, variant=name, efficiency=efficiency,
      accuracy={"top1": m["top1_mean"], "per_class": m["per_class_accuracy"],
                "worst_class": m["worst_class"], "worst_group": m.get("worst_group"),
                "per_group": m.get("group_accuracy")},
      hidden_costs=hidden, members=m["runs"], config=config, environment=environment,
      setting=analysis["settings"].get(name), mode=mode, runs=m["runs"])


def _run_config(name: str, analysis: dict[str, Any], config: Any,
                environment: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
  """(config, environment) for a record: a compared workdir's own, else the study's."""
  info = analysis.get("workdirs", {}).get(name)
  if info is None:
    return config, environment
  path = os.path.join(info["workdir"], "config.json")
  own = workdir_lib.read_json(path) if os.path.exists(path) else None
  return own, analysis["environments"].get(name) or environment


def write_outputs(workdir: str, analysis: dict[str, Any], config: Any,
                  environment: dict[str, Any]) -> list[dict[str, Any]]:
  """records.jsonl (variants not yet recorded), analysis.json, report.md and figures."""
  from tradeoffs.report import write as report_lib  # pylint: disable=g-import-not-at-top
  records = [_record(n, m, analysis, *_run_config(n, analysis, config, environment))
             for n, m in analysis["measured"].items()]
  done = {r.get("variant") for r in workdir_lib.read_jsonl(
      os.path.join(workdir, records_lib.RECORDS_FILE))}
  records_lib.append_records(workdir, [r for r in records if r["variant"] not in done])
  if not workdir_lib.is_writer():
    return records
  workdir_lib.write_json(os.path.join(workdir, ANALYSIS_FILE), {
      **{k: v for k, v in analysis.items() if k != "measured"},
      "measured": {n: {k: v for k, v in m.items() if not k.startswith("_")}
                   for n, m in analysis["measured"].items()}})
  figures = {"per_class_vs_top1": plot_std(workdir, analysis),
             "unstable": plot_unstable(workdir, analysis, int(config.report.max_images))}
  blocks = report_blocks(analysis, config, figures)
  if records:
    timed = any(r["efficiency"]["seconds_per_step"] is not None for r in records)
    report_lib.write_report(workdir, records, title="Determinism: run-to-run variation",
                            axes=["efficiency.seconds_per_step"] if timed else [],
                            metrics=["accuracy.top1", "hidden_costs.churn",
                                     "hidden_costs.per_class_std_max"], lead_blocks=blocks)
  else:  # Nothing measured: the study's sections alone say why.
    text = report_lib.render_markdown([("h1", "Determinism: run-to-run variation"), *blocks])
    workdir_lib.atomic_write_text(os.path.join(workdir, "report.md"), text)
  return records


def _fmt(value: Any, digits: int = 3) -> str:
  if value is None:
    return "–"
  if isinstance(value, bool):
    return "yes" if value else "no"
  if isinstance(value, (int, np.integer)):
    return str(int(value))
  if isinstance(value, float) and not np.isfinite(value):
    return "–"
  return f"{value:.{digits}g}"


def _fmt_list(values: Any) -> str:
  if values is None:
    return "–"
  return " / ".join(_fmt(v) for v in values)


def report_blocks(analysis: dict[str, Any], config: Any, figures: dict[str, str | None]
                  ) -> list[tuple[Any, ...]]:
  """The study's own report sections, as `report.write_report` blocks."""
  measured, status = analysis["measured"], analysis["status"]
  groups_note = analysis.get("groups_note")
  with_groups = analysis.get("group_attribute", config.group_attribute) is not None
  if analysis.get("workdirs"):  # --compare: each workdir says what it ran.
    blocks = [("p", "Workdirs compared (from each one's config.json, environment.json and "
                    "metrics.jsonl; seeds per member):"),
              ("table", ["Workdir", "Model", "Dataset", "Steps trained", "Batch", "Members",
                         "Seeds", "Backend", "Devices", "XLA flags"],
               [[name, str(i["model"]), str(i["dataset"]), _steps_cell(i),
                 _fmt(i["batch_size"]), _fmt(i["members"]), _seeds_cell(i["seeds"]),
                 str(i["backend"]), f"{i['device_kind']} x{i['device_count']}",
                 f"`{i['xla_flags']}`" if i["xla_flags"] else "–"]
                for name, i in analysis["workdirs"].items()])]
  else:
    training = config.training
    blocks = [("p", f"Training config: model `{training.model.name}` on "
                    f"`{training.dataset.name}`, {training.train.steps} steps, batch "
                    f"{training.train.batch_size}, base seeds {base_seeds(training)}. "
                    f"In-process settings are one population of {config.repeats} members "
                    f"(one vmapped program); implementation settings run "
                    f"{config.impl_repeats} separate processes each. Group attribute: "
                    f"`{config.group_attribute}`.")]
  if groups_note:
    blocks.append(("p", f"Groups: {groups_note}."))
  blocks.append(("h2", "Noise source → variation across runs"))
  headers = ["Setting", "Mode", "Runs", "Top-1 mean", "Top-1 std", "Per-class std max",
             "Per-class std mean", "Churn", "L2", "Bitwise preds", "Bitwise weights",
             "Init equal", "Flipped examples", "FNR std by group", "s/step", "Status"]
  rows = []
  for name in analysis["order"]:
    m = measured.get(name)
    if m is None:
      rows.append([name] + ["–"] * 14 + [status.get(name, "")])
      continue
    rows.append([
        name, str(m.get("mode")), str(m["runs"]), _fmt(m["top1_mean"], 4), _fmt(m["top1_std"]),
        _fmt(m["per_class_std_max"]), _fmt(m["per_class_std_mean"]), _fmt(m["churn"]),
        _fmt(m.get("weight_l2")), _fmt(m["logits_identical"]),
        _fmt(m.get("weights_identical")), _fmt(m.get("init_identical")),
        str(m["flipped_examples"]), _fmt_list(m.get("fnr_std_by_group")),
        _fmt(m["seconds_per_step"]), status[name]])
  note = ("Bitwise: logits (and final weights) of every run equal bit for bit. s/step is per "
          "population step for in-process settings.")
  if with_groups:
    note += (" FNR std by group: std across runs of one-vs-rest false-negative rates, mean "
             "over classes.")
  else:  # No groups: drop the column rather than print a column of dashes.
    column = headers.index("FNR std by group")
    headers = headers[:column] + headers[column + 1:]
    rows = [row[:column] + row[column + 1:] for row in rows]
  blocks += [("table", headers, rows), ("p", note)]
  if analysis["versus"] and analysis.get("workdirs"):
    infos = analysis["workdirs"]
    first = next(iter(infos.values()))["seeds"]
    differ = [n for n in analysis["versus"] if infos[n]["seeds"] != first]
    blocks += [("h2", "Against the first workdir (run r vs run r)")]
    if differ:
      blocks.append(("p", f"{', '.join(differ)}: seeds differ from the reference's, so "
                          "this mixes seed and implementation differences."))
  elif analysis["versus"]:
    blocks += [("h2", "Against control (run r vs run r, same seeds)")]
  if analysis["versus"]:
    blocks += [("table", ["Setting", "Reference", "Pairs", "Churn", "L2", "Identical logits",
                          "Identical weights"],
                [[name, v["reference"], str(v["pairs"]), _fmt(v["churn"]), _fmt(v.get("weight_l2")),
                  _fmt(v["logits_identical"]), _fmt(v.get("weights_identical"))]
                 for name, v in analysis["versus"].items()])]
  blocks.append(("h2", "Hardware and subgroups"))
  hw = analysis["hardware"]
  if not with_groups:
    blocks.append(("p", f"Not computed: {groups_note or 'no group attribute'}."))
  cases = [("without_mitigation", "without mitigation"),
           ("with_mitigation", f"with the boundary-alignment penalty "
                               f"(weight {hw['mitigation_weight']:g})")]
  for key, label in cases if with_groups else []:
    h = hw[key]
    if h is None:
      if key == "without_mitigation" or hw["mitigation_weight"] > 0:
        blocks.append(("p", f"{label}: not computed (needs at least 2 implementation "
                            "settings that finished)."))
      continue
    deltas = ", ".join(f"{g}: {_fmt(d)}" for g, d in zip(h["group_names"], h["delta"]))
    blocks.append(("p", f"{label}: Δ (group test {h['metric']}, {h['reduce']} over "
                        f"{', '.join(h['settings'])}; {h['runs']} run(s)) = {deltas}; "
                        f"ξ = {_fmt(h['xi'])} (mean Δ {_fmt(h['mean_delta'])}: read ξ with "
                        "it, a smaller ξ from uniformly larger Δ is not a fairer model)"))
  if analysis["mechanism"]:
    rows = []
    for name, mech in analysis["mechanism"].items():
      if "skipped" in mech:
        rows.append([name, f"skipped: {mech['skipped']}", "", "", "", "", ""])
        continue
      equal = mech["grad_norm_equal_size"]
      rows += [[name, mech["split"], g, str(n), _fmt(gn),
                f"{_fmt(em)} ± {_fmt(es)} (n = {equal['size']})", _fmt(ev)]
               for g, n, gn, em, es, ev in zip(
                   mech["group_names"], mech["group_counts"], mech["grad_norm"],
                   equal["mean"], equal["std"], mech["top_hessian_eigenvalue"])]
    draws = next((m["grad_norm_equal_size"]["draws"] for m in analysis["mechanism"].values()
                  if "grad_norm_equal_size" in m), EQUAL_SIZE_DRAWS)
    blocks += [("p", "Mechanism (section 8 bound: excess loss ≤ ‖∇ℓ_a‖·d + "
                     "½·λ_max(H_a)·d²). The norm of a group's mean gradient has a noise part "
                     "that shrinks like 1/√n_a, so raw norms of groups of different size are "
                     "confounded by size; the equal-n column subsamples every group to the "
                     f"smallest group's size (mean ± sd over {draws} draws):"),
               ("table", ["Run", "Split", "Group", "Examples", "‖∇ℓ_a‖",
                          "‖∇ℓ_a‖, equal n", "λ_max(H_a)"], rows)]
  blocks += [("h2", "Cost of determinism"), ("p", analysis["determinism_cost"]["note"])]
  blocks += _null_blocks(analysis, figures.get("per_class_vs_top1"))
  if figures.get("unstable"):
    blocks += [("h2", "Most unstable test examples"),
               ("p", "Examples whose prediction is not the same in every run, most flips "
                     "first (over the runs of all settings together)."),
               ("img", figures["unstable"], "unstable examples")]
  return blocks


def _null_blocks(analysis: dict[str, Any], figure: str | None) -> list[tuple[Any, ...]]:
  """Per-class std / top-1 std beside its shuffled-class null band, and the figure."""
  rows = []
  for name, m in analysis["measured"].items():
    null = m.get("per_class_null")
    if not null or "skipped" in null:
      continue
    row = [name, _fmt(m["top1_std"])]
    for stat in ("mean", "max"):
      n = null[stat]
      inside = n["band"][0] <= n["ratio"] <= n["band"][1]
      row += [_fmt(n["ratio"]), f"{_fmt(n['null_median'])} [{_fmt(n['band'][0])}–"
              f"{_fmt(n['band'][1])}]", _fmt(n["p_value"]),
              "inside" if inside else ("above" if n["ratio"] > n["band"][1] else "below")]
    rows.append(row)
  if not rows and not figure:
    return []
  blocks = [("h2", "Per-class std against top-1 std")]
  if rows:
    draws = next(m["per_class_null"]["draws"] for m in analysis["measured"].values()
                 if m.get("per_class_null") and "skipped" not in m["per_class_null"])
    blocks += [
        ("p", "A class's accuracy averages fewer test examples than top-1, so its std across "
              "runs is larger even when no class is more fragile. Null: the same runs with "
              f"the class labels of the test examples permuted ({draws} draws, class sizes "
              "and each example's correctness kept). Ratio = per-class std (mean or max "
              "over classes) / top-1 std; band = 2.5–97.5% of the null; p = share of null "
              "draws at least as large. Inside the band: test-set sample size, not fragile "
              "classes."),
        ("table", ["Setting", "Top-1 std", "Mean ratio", "Null [band]", "p", "vs null",
                   "Max ratio", "Null [band]", "p", "vs null"], rows)]
  if figure:
    blocks.append(("img", figure, "per-class std against top-1 std"))
  return blocks


def _steps_cell(info: dict[str, Any]) -> str:
  trained, planned = info["steps_trained"], info["steps"]
  if trained is None or planned is None or trained == planned:
    return _fmt(trained if trained is not None else planned)
  return f"{trained} of {planned}"  # Preempted (or resumed with a new plan): say so.


def _seeds_cell(seeds: dict[str, Any] | None) -> str:
  if not seeds:
    return "–"
  return "; ".join(f"{k} {','.join(map(str, np.ravel(v).tolist()))}"
                   for k, v in sorted(seeds.items()))


def plot_std(workdir: str, analysis: dict[str, Any]) -> str | None:
  """Per-class accuracy std (max and mean over classes) against top-1 std, per setting."""
  points = [(n, m["top1_std"], m["per_class_std_max"], m["per_class_std_mean"])
            for n, m in analysis["measured"].items() if m["top1_std"] is not None]
  if not points:
    return None
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  fig, ax = plt.subplots(figsize=(5.5, 4.2))
  xs = [p[1] for p in points]
  ax.scatter(xs, [p[2] for p in points], label="max over classes", zorder=3)
  ax.scatter(xs, [p[3] for p in points], marker="x", label="mean over classes", zorder=3)
  still = [name for name, x, y, _ in points if x == 0 and y == 0]
  for name, x, y, _ in points:
    if name not in still:
      ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
  if still:  # Reproducible settings sit at the origin: one label instead of a pile.
    ax.annotate("no variation: " + ", ".join(still), (0, 0), fontsize=6, xytext=(4, 8),
                textcoords="offset points", wrap=True)
  bands = False
  for name, m in analysis["measured"].items():
    null = m.get("per_class_null")
    if null and "skipped" not in null and m["top1_std"]:
      bands = True
      for stat, color in (("max", "C0"), ("mean", "C1")):
        lo, hi = null[stat]["band"]
        ax.vlines(m["top1_std"], lo * m["top1_std"], hi * m["top1_std"], color=color,
                  alpha=0.35, lw=5, zorder=2)
  if bands:
    ax.set_title("bars: shuffled-class null, 2.5–97.5%", fontsize=8)
  top = max(xs + [1e-3]) * 1.1
  ax.plot([0, top], [0, top], color="0.6", lw=0.8, label="y = x")
  ax.set_xlabel("top-1 accuracy std across runs")
  ax.set_ylabel("per-class accuracy std across runs")
  ax.legend(fontsize=7)
  ax.grid(alpha=0.3)
  fig.tight_layout()
  name = "per_class_std_vs_top1_std.png"
  fig.savefig(os.path.join(workdir, name), dpi=100)
  plt.close(fig)
  return name


def plot_unstable(workdir: str, analysis: dict[str, Any], max_images: int) -> str | None:
  """An image grid of the test examples with most flips over all runs of all settings."""
  measured = [m for m in analysis["measured"].values()]
  if not measured or max_images <= 0:
    return None
  runs = [m["_runs"] for m in measured if "_runs" in m]
  if not runs:
    return None
  logits = np.concatenate([r.logits for r in runs])
  ids, labels = runs[0].ids, runs[0].labels
  num_classes = logits.shape[-1]
  predictions = np.argmax(logits, -1)
  flips = np.asarray(metrics_lib.flip_counts(predictions, num_classes))
  modal = np.asarray(metrics_lib.modal_predictions(predictions, num_classes))
  order = np.argsort(-flips, kind="stable")
  order = order[flips[order] > 0][:max_images]
  images = _test_images(analysis, ids)
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  columns = max(1, min(8, len(order)))
  rows = max(1, -(-len(order) // columns))
  fig = plt.figure(figsize=(1.5 * columns, 1.8 * rows + 0.4))
  fig.suptitle(f"{len(order)} most unstable of {int(np.sum(flips > 0))} unstable examples "
               f"({logits.shape[0]} runs)", fontsize=9)
  if not len(order):
    fig.text(0.5, 0.5, "every run predicts every example the same", ha="center")
  for slot, i in enumerate(order):
    ax = fig.add_subplot(rows, columns, slot + 1)
    if images is not None:
      image = np.clip(images[i], 0, 1)
      ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0, vmax=1,
                interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title(f"id {int(ids[i])}, {int(flips[i])} flips\nmodal {int(modal[i])} "
                 f"true {int(labels[i])}", fontsize=6)
  fig.tight_layout()
  name = "unstable_examples.png"
  fig.savefig(os.path.join(workdir, name), dpi=100)
  plt.close(fig)
  return name


def _test_images(analysis: dict[str, Any], ids: np.ndarray) -> np.ndarray | None:
  """Test images ordered like `ids`, from the dataset in the first run's config.json."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  from tradeoffs.train import experiment  # pylint: disable=g-import-not-at-top
  for m in analysis["measured"].values():
    workdir = m["_runs"].sources[0][0]
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
      continue
    try:
      test = experiment.load_dataset(ml_collections.ConfigDict(
          workdir_lib.read_json(path))).test
    except (ValueError, FileNotFoundError) as e:
      logging.warning("no images for the unstable-example grid: %s", e)
      return None
    position = {int(i): k for k, i in enumerate(test.ids)}
    return test.images[[position[int(i)] for i in ids]]
  return None


# ---------------------------------------------------------------------------------------
# Comparing workdirs written elsewhere.


def compare_workdirs(workdirs: Sequence[str], config: Any, output: str,
                     environment: dict[str, Any] | None = None) -> dict[str, Any]:
  """Analyses training workdirs from any machines as settings of one matrix.

  Each workdir (e.g. `experiments.train` on CPU here and on a GPU elsewhere) is one entry,
  labelled by its environment.json ('<dir>.<backend>.x<device count>'); the first is the
  reference for the between-workdir comparison. All must predict the same test examples.
  """
  if isinstance(workdirs, str) or len(workdirs) < 2:
    raise ValueError(f"--compare={workdirs!r}; need at least 2 workdirs")
  for wd in workdirs:
    if not os.path.isdir(os.path.join(wd, matrix.PREDICTIONS_DIR)):
      raise ValueError(f"--compare entry {wd!r} has no {matrix.PREDICTIONS_DIR}/ directory")
  entries, labels, infos, group_names = {}, [], {}, []
  for wd in workdirs:
    env_path = os.path.join(wd, "environment.json")
    env = workdir_lib.read_json(env_path) if os.path.exists(env_path) else {}
    # A file-safe record variant: '<dir>.<backend>.x<devices>' (device kind in the table).
    label = re.sub(r"[^A-Za-z0-9_.,=+-]+", "-", f"{os.path.basename(os.path.normpath(wd))}."
                   f"{env.get('backend', 'unknown')}.x{env.get('device_count', 'unknown')}")
    label = label.lstrip("_.,=+-") or "workdir"
    if label in labels:
      label = f"{label}.{len(labels)}"
    labels.append(label)
    entries[label] = dict(setting=None, results=[], workdirs=[wd], environment=env)
    infos[label] = matrix.run_info(wd)
    arrays = matrix.load_predictions(wd)
    group_names.append([str(n) for n in arrays.get("group_names", ())]
                       if np.size(arrays.get("groups", ())) else [])
  # Runs of a dataset without the config's group attribute are compared without groups.
  attribute = config.group_attribute
  groups_note = None
  if any(attribute not in names for names in group_names):
    groups_note = (f"no group attribute {attribute!r} in these runs' test predictions "
                   f"(group attributes: {group_names[0]}): per-group rates, hardware "
                   "sensitivity Δ / ξ and the per-group mechanism are omitted")
    attribute = None
  analysis = analyse(entries, config, reference=labels[0], group_attribute=attribute)
  analysis["workdirs"] = infos
  analysis["groups_note"] = groups_note
  # A backend's cost of determinism needs its own matrix: here we only know the backends.
  backends = {e["environment"].get("backend") for e in entries.values()}
  if backends <= {"cpu"}:
    analysis["determinism_cost"] = {"value": None, "note": CPU_COST_NOTE}
  else:
    analysis["determinism_cost"] = {"value": None, "note": (
        f"not measured by --compare (backends {sorted(map(str, backends))}); run the matrix "
        "with 'gpu_default' and 'gpu_deterministic' on the GPU machine")}
  analysis["environments"] = {n: e["environment"] for n, e in entries.items()}
  os.makedirs(output, exist_ok=True)
  write_outputs(output, analysis, config, environment or {})
  return analysis


def load_json_config(path: str) -> Any:
  """A training config saved as JSON (`train_config.json`), as a ConfigDict."""
  import ml_collections  # pylint: disable=g-import-not-at-top
  with open(path) as f:
    return ml_collections.ConfigDict(json.load(f))
