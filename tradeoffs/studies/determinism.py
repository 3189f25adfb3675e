"""Determinism: how much does each source of noise change a trained model?

One training config runs under a list of noise settings (`--config.study.settings`, the
grammar of `tradeoffs.determinism.settings.parse_setting`) × repeats. Each setting is one
variant; its runs are scored on the sheet as a population (top-1 spread, per class,
churn) and measured run to run (L2 between final weights, bitwise identity of logits,
weights and initial weights, per-example flips, per-class std beside its shuffled-class
null). Implementation settings are compared with their reference run r against run r
(same seeds). With groups: hardware sensitivity Δ per group over the implementation
settings, the fairness violation ξ with and without the boundary-alignment penalty, and
per-group gradient norms (also at equal group size) and top Hessian eigenvalues of the
control run. `config.study.compare` (the binary's `--compare`) analyses training workdirs
written anywhere instead of running the matrix.

Formulations chosen:
  * running a setting: settings that change nothing fixed at JAX start-up run in-process
    as one vmapped population of `config.population.members` (member i = repeat i);
    `control_process`, settings that change the backend, device count or XLA flags, and
    every setting with `study.isolate` run `study.impl_repeats` processes
    (`python -m experiments.determinism --train_one`), through `determinism.matrix`.
    Every run trains with `train.experiment.run` (initial weights saved by `on_init`;
    the penalty as a `train.extensions.group_loss` term).
  * seeds of implementation settings: `study.impl_seeds='fixed'` gives every run of a
    setting the same seeds (spread within a setting is implementation noise only; on a
    deterministic backend the runs are bitwise copies); 'per_run' gives run r base seeds
    + r for every source, the same in every setting, so run r against run r still
    isolates the implementation while the runs are independent samples over seeds.
  * references: in-process implementation settings against `control`, process ones
    against `control_process` when it is planned; mitigated ones against their
    mitigated reference.
  * Δ(a) = `study.sensitivity.reduce` over settings of group a's test loss (or error) in
    run r, averaged over runs; ξ = max_a Δ − min_a Δ. The mitigation claim compares ξ of
    each run (Δ over the settings' run r) with and without the penalty: Welch t over runs,
    Holm-corrected with the claim on mean Δ; no claim when a sample's runs are copies.
  * per-class std (ddof 0, as NeuralNetworkRandomness) over top-1 std against the same
    ratio with the test examples' class labels permuted (`metrics.per_class_std_null`).
  * execution plan (`plan_<name>`, e.g. `plan_step_loop`): the same population trained
    under another `tradeoffs.train.plan` (members looped instead of vmapped, steps one per
    dispatch instead of scanned) — an implementation setting like the others.
  * cost of determinism: step time of `gpu_deterministic` over `gpu_default`.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import re
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
from absl import logging

from tradeoffs import errors
from tradeoffs import models as models_lib
from tradeoffs import stats
from tradeoffs import workdir as workdir_lib
from tradeoffs.determinism import analysis
from tradeoffs.determinism import hardware
from tradeoffs.determinism import matrix
from tradeoffs.determinism import settings as settings_lib
from tradeoffs.report import figures
from tradeoffs.report import format as fmt
from tradeoffs.report import verdict as verdict_lib
from tradeoffs.studies import base
from tradeoffs.train import distributed
from tradeoffs.train import experiment
from tradeoffs.train import extensions
from tradeoffs.train import plan as plan_lib
from tradeoffs.train import predictions as predictions_lib

NAME = "determinism"
TITLE = "Determinism: run-to-run variation"
MITIGATED = settings_lib.MITIGATED_SUFFIX
IMPL_SEEDS = ("fixed", "per_run")
MECHANISM_SPLITS = ("train", "test")


training_config = base.training_config


def setting_config(train: Any, setting: settings_lib.Setting, members: int,
                   mitigation: Mapping[str, Any] | None = None) -> ml_collections.ConfigDict:
  """The training config of `setting` as one population (member i = repeat i)."""
  c = copy.deepcopy(train)
  with c.unlocked():
    for source, seed in settings_lib.seeds_for_repeat(setting, 0).items():
      c.seeds[source] = seed
    c.seeds.vary = ",".join(setting.vary)
    c.population.members = members
    if setting.plan:
      c.train.plan = setting.plan
    if mitigation is not None:
      c.mitigation = ml_collections.ConfigDict(dict(mitigation))
  return c


def _int(value: Any, key: str, low: int = 1) -> int:
  if isinstance(value, bool) or not isinstance(value, int) or value < low:
    raise ValueError(f"--config.study.{key}={value!r}; need an int >= {low}")
  return value


def _choice(value: Any, key: str, allowed: Sequence[str]) -> str:
  if value not in allowed:
    raise ValueError(f"--config.study.{key}={value!r}; valid: {list(allowed)}")
  return value


def _label(workdir: str, taken: Sequence[str]) -> str:
  """'<dir>.<backend>.x<device count>' from a run's environment.json, file-safe, unique."""
  path = os.path.join(workdir, "environment.json")
  env = workdir_lib.read_json(path) if os.path.exists(path) else {}
  label = re.sub(r"[^A-Za-z0-9_.,=+-]+", "-", f"{os.path.basename(os.path.normpath(workdir))}."
                 f"{env.get('backend', 'unknown')}.x{env.get('device_count', 'unknown')}")
  label = label.lstrip("_.,=+-") or "workdir"
  return f"{label}.{len(taken)}" if label in taken else label


def _plan_compare(config: Any, workdirs: Sequence[str]) -> list[base.Variant]:
  if len(workdirs) < 2:
    raise ValueError(f"--compare={','.join(workdirs)}: need at least 2 workdirs")
  out: list[base.Variant] = []
  for wd in workdirs:
    for needed in (matrix.PREDICTIONS_DIR, "config.json"):
      if not os.path.exists(os.path.join(wd, needed)):
        raise ValueError(f"--compare entry {wd!r} has no {needed}; compare workdirs written "
                         "by experiments.train or this study")
    name = _label(wd, [v.name for v in out])
    out.append(base.Variant(name, "workdir", {"workdir": os.path.abspath(wd), "mode": "workdir",
                                              "implementation": True},
                            out[0].name if out else None))
  return out


def plan(config: Any) -> list[base.Variant]:
  """One variant per setting (references first), then the mitigated twins."""
  if "study" not in config:
    raise ValueError("config has no 'study' section; use experiments/configs/determinism.py")
  s = config.study
  if not isinstance(s.group_attribute, str):
    raise ValueError(f"--config.study.group_attribute={s.group_attribute!r}; need a group "
                     "attribute name ('' for none)")
  _choice(s.sensitivity.reduce, "sensitivity.reduce", sorted(hardware.SENSITIVITIES))
  _choice(s.sensitivity.metric, "sensitivity.metric", analysis.SENSITIVITY_METRICS)
  _choice(s.mechanism.split, "mechanism.split", MECHANISM_SPLITS)
  _int(s.mechanism.num_iters, "mechanism.num_iters")
  _int(s.mechanism.max_examples, "mechanism.max_examples", 0)
  _int(s.max_images, "max_images", 0)
  compare = tuple(s.get("compare", ()) or ())
  if compare:
    return _plan_compare(config, compare)
  impl_repeats = _int(s.impl_repeats, "impl_repeats")
  members = int(config.population.members)
  impl_seeds = _choice(s.impl_seeds, "impl_seeds", IMPL_SEEDS)
  m = s.mitigation
  if isinstance(m.weight, bool) or not isinstance(m.weight, (int, float)) or m.weight < 0:
    raise ValueError(f"--config.study.mitigation.weight={m.weight!r}; need a number >= 0 "
                     "(0: off)")
  _choice(m.proximity, "mitigation.proximity", sorted(hardware.BOUNDARY_PROXIMITY))
  mitigation_repeats = _int(m.repeats, "mitigation.repeats")
  if not (isinstance(s.timeout_s, (int, float)) and s.timeout_s > 0):
    raise ValueError(f"--config.study.timeout_s={s.timeout_s!r}; need seconds > 0")
  train = training_config(config)
  current = settings_lib.current_setting()
  parsed = settings_lib.study_settings(s.settings, settings_lib.base_seeds(train.seeds),
                                       current, tuple(train.augment.get("names", ()) or ()))
  for setting in parsed:  # Each setting's device count must divide the batch.
    if setting.plan and setting.plan not in plan_lib.PLANS:
      raise ValueError(f"--config.study.settings entry 'plan_{setting.plan}': unknown "
                       f"execution plan; valid: {['plan_' + p for p in plan_lib.PLANS]}")
    if setting.backend == "cpu":
      experiment.validate(setting_config(train, setting, 1), device_count=setting.device_count)
    if setting.xla_flags and settings_lib.needs_subprocess(setting, current):
      settings_lib.validate_xla_flags(setting.xla_flags, setting.backend)
  names = [p.name for p in parsed]
  references = ("control", "control_process")
  order = sorted(parsed, key=lambda p: references.index(p.name) if p.name in references
                 else len(references))
  mitigation = ({"weight": float(m.weight), "proximity": str(m.proximity),
                 "group_attribute": str(s.group_attribute)} if float(m.weight) > 0 else None)
  twins = [dataclasses.replace(p, name=p.name + MITIGATED) for p in order
           if settings_lib.is_implementation(p)] if mitigation else []
  planned = [p.name for p in order + twins]
  out = []
  for setting in order + twins:
    mitigated = setting.name.endswith(MITIGATED)
    implementation = settings_lib.is_implementation(setting)
    if implementation and impl_seeds == "per_run":
      setting = dataclasses.replace(setting, vary=settings_lib.ALGORITHMIC_SOURCES)
    own = (bool(s.isolate) or settings_lib.in_own_processes(setting)
           or settings_lib.needs_subprocess(setting, current))
    runs = (mitigation_repeats if mitigated else impl_repeats if own else members)
    mode = "subprocess" if own else "in_process"
    reference = ("control_process" if own and "control_process" in names
                 and not settings_lib.in_own_processes(setting) else "control")
    reference += MITIGATED if mitigated else ""  # control_process: against control.
    source = (reference if implementation and reference in planned
              and reference != setting.name else None)
    if source is not None and planned.index(source) > planned.index(setting.name):
      source = None
    knobs = {"setting": setting.to_dict(), "mode": mode, "runs": runs,
             "implementation": implementation, "impl_seeds": impl_seeds}
    if mitigated:
      knobs["mitigation"] = mitigation
    out.append(base.Variant(setting.name, mode, knobs, source,
                            setting_config(train, setting, runs,
                                           mitigation if mitigated else None)))
  return out


# ---------------------------------------------------------------------------------------
# Training one population or process run (`experiments.determinism --train_one`).


def save_initial_params(workdir: str):
  """`experiment.run(on_init=...)`: the fresh population's weights, for 'init equal'."""
  return lambda state: predictions_lib.save_params(
      workdir, distributed.to_host(state.params), name=analysis.INITIAL_PARAMS_FILE)


def penalty_overrides(train_config: Any, dataset: Any = None) -> dict[str, Any]:
  """Step overrides adding the config's `mitigation` penalty (none when weight is 0)."""
  m = train_config.get("mitigation")
  if m is None or float(m.weight) <= 0:
    return {}
  dataset = dataset or experiment.load_dataset(train_config)
  try:
    column = hardware.group_column(dataset.train.group_names, m.group_attribute)
  except ValueError as e:
    raise errors.ConfigError(f"--config.study.{e}") from None
  num_groups = int(max(dataset.train.groups[:, column].max(),
                       dataset.test.groups[:, column].max())) + 1
  penalty = hardware.penalty_fn(float(m.weight), column, num_groups, str(m.proximity))
  return {"extensions": (extensions.group_loss(penalty, name="boundary_alignment"),)}


def train_one(train_config: Any, workdir: str, dataset: Any = None) -> bool:
  """Trains `train_config` (with its `mitigation` section, if any) into `workdir` by
  `experiment.run`; False when preempted (rerun to resume)."""
  result = experiment.run(train_config, workdir, on_init=save_initial_params(workdir),
                          step_overrides=penalty_overrides(train_config, dataset))
  return result is not None or experiment.finished_step(workdir) is not None


# ---------------------------------------------------------------------------------------
# Producing one variant.


def _run_setting(ctx: Any, variant: base.Variant) -> list[matrix.RunResult]:
  k, s = variant.knobs, ctx.config.study
  setting = settings_lib.Setting(**k["setting"])
  root = os.path.join(ctx.workdir, "runs")
  common = dict(current=settings_lib.current_setting(), timeout_s=float(s.timeout_s),
                base_env=matrix.checkout_env(), on_error="record")
  if k["mode"] == "in_process":
    def population(setting, members, workdir):
      del setting, members
      config = variant.train_config
      if not train_one(config, workdir, ctx.dataset(config)):
        raise base.Preempted(variant.name)
    return matrix.run_matrix([setting], int(k["runs"]), root, population_fn=population,
                             **common)
  train = training_config(ctx.config)
  if k.get("mitigation"):
    with train.unlocked():
      train.mitigation = ml_collections.ConfigDict(dict(k["mitigation"]))
  train_json = os.path.join(ctx.workdir, "train_config" + ("_mitigated" if k.get("mitigation")
                                                           else "") + ".json")
  if workdir_lib.is_writer():
    workdir_lib.write_json(train_json, train)
  return matrix.run_matrix([setting], int(k["runs"]), root, isolate=True, check_flags=False,
                           command=matrix.train_command(train_json, train_one=True), **common)


def _in_dataset_order(logits: np.ndarray, ids: np.ndarray, test: Any) -> np.ndarray:
  position = {int(i): n for n, i in enumerate(ids)}
  try:
    return logits[:, [position[int(i)] for i in test.ids]]
  except KeyError:
    raise errors.ConfigError("the runs' predictions do not cover the dataset's test split "
                             "(different example ids)") from None


def _attribute(config: Any, runs: matrix.Runs) -> tuple[str | None, str | None]:
  """The group attribute to measure with, and a note when the runs lack it."""
  attribute = str(config.study.group_attribute or "")
  if attribute and runs.groups is not None and attribute in runs.group_names:
    return attribute, None
  return None, (f"no group attribute {attribute!r} in these runs' test predictions (group "
                f"attributes: {list(runs.group_names)}): per-group rates, hardware "
                "sensitivity Δ / ξ and the per-group mechanism are omitted")


def produce(ctx: Any, variant: base.Variant) -> base.Outcome:
  k = variant.knobs
  status, message = "ok", ""
  if k["mode"] == "workdir":
    workdirs = [k["workdir"]]
    train = ml_collections.ConfigDict(workdir_lib.read_json(os.path.join(k["workdir"],
                                                                         "config.json")))
  else:
    results = _run_setting(ctx, variant)
    workdirs = matrix.result_workdirs(results, variant.name)
    bad = [r for r in results if r.status in ("failed", "skipped")]
    if any(r.status == "failed" for r in bad):
      first = next(r for r in bad if r.status == "failed")
      raise errors.RunFailed(first.message.splitlines()[0] + "; its stderr is in "
                             + os.path.join(first.workdir, "stderr.log"))
    if bad:
      status, message = "skipped", bad[0].message
    train = variant.train_config
  if not workdirs:  # A backend that is not here: recorded as skipped, nothing measured.
    return base.Outcome(members=1, efficiency={}, config=train, study_fields={
        "status": f"{status}: {message}", "mode": k["mode"], "runs": 0})
  runs = matrix.load_runs(workdirs)
  attribute, note = _attribute(ctx.config, runs)
  measured = analysis.measure_runs(workdirs, attribute)
  fields = {key: v for key, v in measured.items() if not key.startswith("_")}
  fields.update(status=status, mode=k["mode"], groups_note=note,
                workdirs=[os.path.relpath(w, ctx.workdir) for w in workdirs])
  if k["mode"] == "workdir":
    fields["run_info"] = matrix.run_info(k["workdir"])
  hidden: dict[str, Any] = {key: measured.get(key) for key in (
      "per_class_std_max", "weight_l2", "unstable_fraction", "predictions_identical",
      "logits_identical", "weights_identical", "init_identical", "fpr_std_by_group",
      "fnr_std_by_group")}
  hidden.update(flips=measured["flipped_examples"], max_flips=measured["max_flips"])
  if variant.source is not None:
    source = ctx.records[variant.source]["study_fields"]
    if source.get("workdirs"):
      ref = {"_runs": matrix.load_runs([os.path.join(ctx.workdir, w)
                                        for w in source["workdirs"]])}
      versus = analysis.compare_to_reference(measured, ref)
      fields["versus"] = dict(versus, reference=variant.source)
      hidden.update(churn_vs_source=versus["churn"],
                    weight_l2_vs_source=versus.get("weight_l2"),
                    identical_to_source=versus["logits_identical"])
  first = variant.source is None and (k["mode"] == "workdir" or variant.name in (
      "control", "control" + MITIGATED))
  if ctx.config.study.mechanism.enabled and attribute is not None and first:
    try:
      fields["mechanism"] = mechanism(workdirs[0], attribute, ctx.config.study.mechanism)
    except (FileNotFoundError, ValueError, KeyError) as e:
      fields["mechanism"] = {"skipped": str(e)}
  step = measured["seconds_per_step"]
  per_step = measured["runs"] if k["mode"] == "in_process" else 1
  efficiency = {"seconds_per_step": step,
                "seconds_per_member_step": None if step is None else step / per_step}
  test = ctx.dataset(train).test
  return base.Outcome(members=measured["runs"], efficiency=efficiency, config=train,
                      logits=_in_dataset_order(runs.logits, runs.ids, test),
                      hidden_costs=hidden, study_fields=fields, derived=False)


def mechanism(workdir: str, attribute: str, options: Any, member: int = 0) -> dict[str, Any]:
  """Per-group gradient norm (raw and at equal group size) and top Hessian eigenvalue of
  one run's final params, rebuilt from its config.json (models with batch statistics are
  skipped: final_params.npz holds params only)."""
  config = ml_collections.ConfigDict(workdir_lib.read_json(os.path.join(workdir,
                                                                        "config.json")))
  dataset = experiment.load_dataset(config)
  data = getattr(dataset, str(options.split))
  column = hardware.group_column(data.group_names, attribute)
  images, labels, groups = data.images, data.labels, data.groups[:, column]
  if int(options.max_examples):
    n = int(options.max_examples)
    images, labels, groups = images[:n], labels[:n], groups[:n]
  num_groups, num_iters = int(groups.max()) + 1, int(options.num_iters)
  model = models_lib.get(config.model.name, num_classes=dataset.num_classes,
                         **experiment.model_kwargs(config))
  params: dict[str, Any] = {}
  for key, value in matrix.load_final_params(workdir).items():
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

  batch, group_ids = (jnp.asarray(images), jnp.asarray(labels)), jnp.asarray(groups)
  norms = jax.jit(lambda p: hardware.per_group_grad_norms(loss_fn, p, batch, group_ids,
                                                          num_groups))(params)
  eigen = jax.jit(lambda p: hardware.per_group_top_hessian_eigenvalue(
      loss_fn, p, batch, group_ids, num_groups, jax.random.key(0), num_iters))(params)
  equal = hardware.per_group_grad_norms_equal_size(
      loss_fn, params, batch, np.asarray(groups), num_groups, jax.random.key(1),
      draws=analysis.EQUAL_SIZE_DRAWS)
  return {"split": str(options.split), "member": member, "examples": int(len(labels)),
          "group_names": [f"{attribute}={g}" for g in range(num_groups)],
          "group_counts": np.bincount(np.asarray(groups), minlength=num_groups).tolist(),
          "grad_norm": analysis.nan_to_none(norms),
          "grad_norm_equal_size": {"size": equal.size, "draws": analysis.EQUAL_SIZE_DRAWS,
                                   "mean": analysis.nan_to_none(equal.mean),
                                   "std": analysis.nan_to_none(equal.std)},
          "top_hessian_eigenvalue": analysis.nan_to_none(eigen), "lanczos_iters": num_iters}


# ---------------------------------------------------------------------------------------
# The report.


def _f(record: Mapping[str, Any]) -> Mapping[str, Any]:
  return record.get("study_fields") or {}


def _measured(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
  return [r for r in records if _f(r).get("workdirs")]


def _fmt(value: Any) -> str:
  if isinstance(value, bool):
    return "yes" if value else "no"
  if isinstance(value, (int, np.integer)):
    return str(int(value))
  return fmt.number(value)


def _steps_cell(info: Mapping[str, Any]) -> str:
  trained, planned = info.get("steps_trained"), info.get("steps")
  if trained is None or planned is None or trained == planned:
    return _fmt(trained if trained is not None else planned)
  return f"{trained} of {planned}"  # Preempted (or resumed with a new plan): say so.


def _seeds_cell(seeds: Mapping[str, Any] | None) -> str:
  if not seeds:
    return "–"
  return "; ".join(f"{k} {','.join(map(str, np.ravel(v).tolist()))}"
                   for k, v in sorted(seeds.items()))


def _intro(records: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[Any, ...]]:
  compared = [r for r in records if r.get("technique") == "workdir"]
  if compared:  # Each workdir says what it ran, from its own files.
    rows = []
    for r in compared:
      i = _f(r).get("run_info") or {}
      rows.append([r["variant"], str(i.get("model")), str(i.get("dataset")), _steps_cell(i),
                   _fmt(i.get("batch_size")), _fmt(i.get("members")), _seeds_cell(i.get("seeds")),
                   str(i.get("backend")), f"{i.get('device_kind')} x{i.get('device_count')}",
                   f"`{i['xla_flags']}`" if i.get("xla_flags") else "–"])
    return [("p", "Workdirs compared (from each one's config.json, environment.json and "
                  "metrics.jsonl; seeds per member); the first is the reference of the "
                  "run r against run r comparison:"),
            ("table", ["Workdir", "Model", "Dataset", "Steps trained", "Batch", "Members",
                       "Seeds", "Backend", "Devices", "XLA flags"], rows)]
  s, train = config.study, training_config(config)
  return [("p", f"Training config: model `{train.model.name}` on `{train.dataset.name}`, "
                f"{train.train.steps} steps, batch {train.train.batch_size}, base seeds "
                f"{settings_lib.base_seeds(train.seeds)}. In-process settings are one "
                f"population of {train.population.members} members (one vmapped program); "
                f"process settings run {s.impl_repeats} separate processes each. "
                f"Implementation settings' seeds: {s.impl_seeds} (fixed: every run the same "
                "seeds; per_run: run r has base seeds + r in every setting). Group "
                f"attribute: `{s.group_attribute or '–'}`.")]


def _variation(records: Sequence[Mapping[str, Any]], with_groups: bool
               ) -> list[tuple[Any, ...]]:
  headers = ["Setting", "Mode", "Runs", "Top-1 mean", "Top-1 std", "Per-class std max",
             "Per-class std mean", "Churn", "L2", "Bitwise logits", "Bitwise weights",
             "Init equal", "Flipped examples", "FNR std by group", "s/step", "Status"]
  rows = []
  for r in records:
    f = _f(r)
    if not f.get("workdirs"):
      rows.append([r["variant"], str(f.get("mode")), "0"] + ["–"] * 12
                  + [str(f.get("status", ""))])
      continue
    fnr = f.get("fnr_std_by_group")
    rows.append([r["variant"], str(f["mode"]), str(f["runs"]), fmt.number(f["top1_mean"], 4),
                 _fmt(f["top1_std"]), _fmt(f["per_class_std_max"]),
                 _fmt(f["per_class_std_mean"]), _fmt(f["churn"]), _fmt(f.get("weight_l2")),
                 _fmt(f["logits_identical"]), _fmt(f.get("weights_identical")),
                 _fmt(f.get("init_identical")), str(f["flipped_examples"]),
                 " / ".join(_fmt(v) for v in fnr) if fnr else "–",
                 _fmt(f["seconds_per_step"]), str(f["status"])])
  note = ("Top-1 std and per-class std across runs use ddof 0 (NeuralNetworkRandomness); "
          "the sheet's top1_std in the records uses ddof 1. Bitwise: logits (weights, "
          "initial weights) of every run equal bit for bit. s/step is per population step "
          "for in-process settings.")
  if with_groups:
    note += (" FNR std by group: std across runs of one-vs-rest false-negative rates, mean "
             "over classes.")
  else:  # No groups: drop the column rather than print a column of dashes.
    column = headers.index("FNR std by group")
    headers = headers[:column] + headers[column + 1:]
    rows = [row[:column] + row[column + 1:] for row in rows]
  return [("h2", "Noise source → variation across runs"), ("table", headers, rows),
          ("p", note)]


def _versus(records: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
  rows = [[r["variant"], v["reference"], str(v["pairs"]), _fmt(v["churn"]),
           _fmt(v.get("weight_l2")), _fmt(v["logits_identical"]),
           _fmt(v.get("weights_identical"))]
          for r in records if (v := _f(r).get("versus"))]
  if not rows:
    return []
  compared = any(r.get("technique") == "workdir" for r in records)
  blocks = [("h2", "Against the first workdir (run r vs run r)" if compared
             else "Against the reference (run r vs run r, same seeds)")]
  if compared:
    seeds = [(_f(r).get("run_info") or {}).get("seeds") for r in records]
    differ = [r["variant"] for r, s in zip(records, seeds) if s != seeds[0]]
    if differ:
      blocks.append(("p", f"{', '.join(differ)}: seeds differ from the reference's, so "
                          "this mixes seed and implementation differences."))
  return blocks + [("table", ["Setting", "Reference", "Pairs", "Churn", "L2",
                              "Identical logits", "Identical weights"], rows)]


def _group_metric(records: Sequence[Mapping[str, Any]], metric: str, mitigated: bool
                  ) -> tuple[dict[str, Any], bool]:
  """{setting: per-run group metric} of the implementation settings, and whether every
  one of them has bitwise-identical runs (then its runs are copies, not samples)."""
  chosen = [r for r in _measured(records)
            if (r.get("knobs") or {}).get("implementation")
            and r["variant"].endswith(MITIGATED) == mitigated
            and _f(r).get(f"group_{metric}") is not None]
  return ({r["variant"]: _f(r)[f"group_{metric}"] for r in chosen},
          bool(chosen) and all(_f(r).get("logits_identical") is True for r in chosen))


def hardware_claims(records: Sequence[Mapping[str, Any]], metric: str, reduce: str
                    ) -> tuple[list[stats.Comparison], str | None]:
  """ξ and mean Δ with the penalty against without: Welch t over runs, one Holm family;
  or no claims and the reason."""
  samples = {}
  for mitigated in (False, True):
    metrics, copies = _group_metric(records, metric, mitigated)
    runs = analysis.per_run_sensitivity(metrics, reduce)
    if len(runs["xi"]) < 3:
      return [], (f"the ξ comparison needs at least 3 runs of ≥ 2 settings "
                  f"{'with' if mitigated else 'without'} mitigation (has "
                  f"{len(runs['xi'])})")
    if copies:
      return [], (f"the runs {'with' if mitigated else 'without'} mitigation are bitwise "
                  "copies (fixed seeds on a deterministic backend), so ξ is one measurement, "
                  "not a sample; --config.study.impl_seeds=per_run makes the runs "
                  "independent samples over seeds")
    samples[mitigated] = runs
  return stats.family([
      stats.compare(samples[True]["xi"], samples[False]["xi"], paired=False,
                    claim="ξ: with mitigation vs without"),
      stats.compare(samples[True]["mean_delta"], samples[False]["mean_delta"], paired=False,
                    claim="mean Δ: with mitigation vs without")]), None


def _hardware(records: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[Any, ...]]:
  s = config.study
  metric, reduce = str(s.sensitivity.metric), str(s.sensitivity.reduce)
  blocks: list[tuple[Any, ...]] = [("h2", "Hardware and subgroups")]
  attribute = next((_f(r).get("group_attribute") for r in _measured(records)
                    if _f(r).get("group_attribute")), None)
  if attribute is None:
    note = next((_f(r)["groups_note"] for r in records if _f(r).get("groups_note")),
                "no group attribute")
    return blocks + [("p", f"Not computed: {note}.")]
  compared = any(r.get("technique") == "workdir" for r in records)
  weight = 0.0 if compared else float(s.mitigation.weight)  # --compare runs no mitigation.
  for mitigated, label in ((False, "without mitigation"),
                           (True, f"with the boundary-alignment penalty (weight {weight:g})")):
    metrics, _ = _group_metric(records, metric, mitigated)
    h = analysis.sensitivity(metrics, reduce, metric, attribute)
    if h is None:
      if not mitigated or weight > 0:
        blocks.append(("p", f"{label}: not computed (needs at least 2 implementation "
                            "settings that finished)."))
      continue
    runs = analysis.per_run_sensitivity(metrics, reduce)["xi"]
    mean, low, high = stats.t_interval(runs)
    spread = (f"; ξ per run {fmt.number(mean)} [95% t interval {fmt.number(low)}, "
              f"{fmt.number(high)}] over {len(runs)} runs" if len(runs) > 1 else "")
    deltas = ", ".join(f"{g}: {_fmt(d)}" for g, d in zip(h["group_names"], h["delta"]))
    blocks.append(("p", f"{label}: Δ (group test {metric}, {reduce} over "
                        f"{', '.join(h['settings'])}; {h['runs']} run(s)) = {deltas}; "
                        f"ξ = {_fmt(h['xi'])} (mean Δ {_fmt(h['mean_delta'])}: read ξ with "
                        f"it, a smaller ξ from uniformly larger Δ is not a fairer "
                        f"model){spread}."))
  if weight > 0:
    claims, reason = hardware_claims(records, metric, reduce)
    if claims:
      scale, unit = (1000.0, "×10⁻³ nats") if metric == "loss" else (100.0, "pt")
      blocks += [("p", "Mitigation: ξ and mean Δ of each run (Δ over the settings' run r) "
                       "with the penalty against without; Welch t over runs, 2 claims "
                       "Holm-corrected together."),
                 verdict_lib.table(claims, scale=scale, unit=unit)]
      blocks += [("p", verdict_lib.sentence(c, scale=scale, unit=" " + unit)) for c in claims]
    else:
      blocks.append(("p", f"Mitigation: no claim — {reason}."))
  rows = []
  for r in records:
    mech = _f(r).get("mechanism")
    if not mech:
      continue
    if "skipped" in mech:
      rows.append([r["variant"], f"skipped: {mech['skipped']}", "", "", "", "", ""])
      continue
    equal = mech["grad_norm_equal_size"]
    rows += [[r["variant"], mech["split"], g, str(n), _fmt(gn),
              f"{_fmt(em)} ± {_fmt(es)} (n = {equal['size']})", _fmt(ev)]
             for g, n, gn, em, es, ev in zip(
                 mech["group_names"], mech["group_counts"], mech["grad_norm"],
                 equal["mean"], equal["std"], mech["top_hessian_eigenvalue"])]
  if rows:
    blocks += [("p", "Mechanism (section 8 bound: excess loss ≤ ‖∇ℓ_a‖·d + "
                     "½·λ_max(H_a)·d²). The norm of a group's mean gradient has a noise part "
                     "that shrinks like 1/√n_a, so raw norms of groups of different size are "
                     "confounded by size; the equal-n column subsamples every group to the "
                     f"smallest group's size (mean ± sd over {analysis.EQUAL_SIZE_DRAWS} "
                     "draws):"),
               ("table", ["Run", "Split", "Group", "Examples", "‖∇ℓ_a‖", "‖∇ℓ_a‖, equal n",
                          "λ_max(H_a)"], rows)]
  return blocks


def _cost(records: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
  measured = _measured(records)
  backends = {}
  for r in measured:
    setting = (r.get("knobs") or {}).get("setting")
    info = _f(r).get("run_info") or {}
    backends[r["variant"]] = str(setting["backend"] if setting else info.get("backend"))
  cost = analysis.determinism_cost({r["variant"]: _f(r).get("seconds_per_step")
                                    for r in measured}, backends)
  return [("h2", "Cost of determinism"), ("p", cost["note"] + ".")]


def plot_std(records: Sequence[Mapping[str, Any]]):
  """Per-class accuracy std (max and mean over classes) against top-1 std, per setting,
  with each setting's shuffled-class null band."""
  points = [(r["variant"], _f(r)["top1_std"], _f(r)["per_class_std_max"],
             _f(r)["per_class_std_mean"], _f(r).get("per_class_null"))
            for r in _measured(records) if _f(r).get("top1_std") is not None]
  if not points:
    return None
  fig, (ax,) = figures.new(1)
  xs = [p[1] for p in points]
  ax.scatter(xs, [p[2] for p in points], color=figures.color(0), label="max over classes",
             zorder=3)
  ax.scatter(xs, [p[3] for p in points], color=figures.color(1), marker="x",
             label="mean over classes", zorder=3)
  still = [p[0] for p in points if p[1] == 0 and p[2] == 0]
  for name, x, y, _, _ in points:
    if name not in still:
      ax.annotate(name, (x, y), fontsize=8, xytext=(3, 3), textcoords="offset points")
  if still:  # Reproducible settings sit at the origin: one label instead of a pile.
    ax.annotate("no variation: " + ", ".join(still), (0, 0), fontsize=7, xytext=(4, 8),
                textcoords="offset points", wrap=True)
  for _, x, _, _, null in points:
    if null and "skipped" not in null and x:
      for i, stat in enumerate(("max", "mean")):
        lo, hi = null[stat]["band"]
        ax.vlines(x, lo * x, hi * x, color=figures.color(i), alpha=0.35, lw=5, zorder=2)
  top = max(xs + [1e-3]) * 1.1
  ax.plot([0, top], [0, top], color="0.6", lw=0.8, label="y = x")
  ax.set_xlabel("top-1 accuracy std across runs")
  ax.set_ylabel("per-class accuracy std across runs")
  ax.legend()
  return fig


def _null(records: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
  """Per-class std / top-1 std beside its shuffled-class null band, and the figure."""
  rows, draws = [], analysis.NULL_DRAWS
  for r in _measured(records):
    null = _f(r).get("per_class_null")
    if not null or "skipped" in null:
      continue
    draws = null["draws"]
    row = [r["variant"], _fmt(_f(r)["top1_std"])]
    for stat in ("mean", "max"):
      n = null[stat]
      inside = n["band"][0] <= n["ratio"] <= n["band"][1]
      row += [_fmt(n["ratio"]), f"{_fmt(n['null_median'])} [{_fmt(n['band'][0])}–"
              f"{_fmt(n['band'][1])}]", fmt.p(n["p_value"]),
              "inside" if inside else ("above" if n["ratio"] > n["band"][1] else "below")]
    rows.append(row)
  figure = plot_std(records)
  if not rows and figure is None:
    return []
  blocks: list[tuple[Any, ...]] = [("h2", "Per-class std against top-1 std")]
  if rows:
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
  if figure is not None:
    blocks.append(("figure", "per_class_std_vs_top1_std.png", figure,
                   "Per-class accuracy std against top-1 std across runs, per setting; "
                   "bars are the shuffled-class null (2.5–97.5%) of each setting."))
  return blocks


def _test_images(record: Mapping[str, Any], ids: np.ndarray) -> np.ndarray | None:
  """Test images ordered like `ids`, from the dataset in the record's training config."""
  try:
    test = experiment.load_dataset(ml_collections.ConfigDict(record["config"])).test
  except (ValueError, FileNotFoundError, KeyError, TypeError) as e:
    logging.warning("no images for the unstable-example grid: %s", e)
    return None
  position = {int(i): k for k, i in enumerate(test.ids)}
  if any(int(i) not in position for i in ids):
    return None
  return np.asarray(test.images[[position[int(i)] for i in ids]])


def plot_unstable(records: Sequence[Mapping[str, Any]], max_images: int):
  """An image grid of the test examples with most flips summed over the settings."""
  measured = [r for r in _measured(records) if _f(r).get("flips") is not None]
  if not measured or max_images <= 0:
    return None
  ids = np.asarray(_f(measured[0])["ids"])
  same = [r for r in measured if np.array_equal(np.asarray(_f(r)["ids"]), ids)]
  flips = np.sum([np.asarray(_f(r)["flips"]) for r in same], axis=0)
  order = np.argsort(-flips, kind="stable")
  order = order[flips[order] > 0][:max_images]
  if not len(order):
    return None
  images = _test_images(measured[0], ids[order])
  modal, labels = np.asarray(_f(measured[0])["modal"]), np.asarray(_f(measured[0])["labels"])
  columns = max(1, min(8, len(order)))
  rows = -(-len(order) // columns)
  fig, axes = figures.new(columns, rows, panel=(1.5, 1.8))
  for ax in axes:
    ax.set_axis_off()
  for ax, n, i in zip(axes, range(len(order)), order):
    if images is not None:
      image = np.clip(images[n], 0, 1)
      ax.imshow(image[..., 0] if image.shape[-1] == 1 else image, cmap="gray", vmin=0,
                vmax=1, interpolation="nearest")
    ax.set_title(f"id {int(ids[i])}, {int(flips[i])} flips\nmodal {int(modal[i])} "
                 f"true {int(labels[i])}", fontsize=7)
  return fig


def sections(records: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[Any, ...]]:
  records = list(records)
  with_groups = any(_f(r).get("group_attribute") for r in _measured(records))
  blocks = _intro(records, config)
  notes = sorted({_f(r)["groups_note"] for r in records if _f(r).get("groups_note")})
  if notes:
    blocks.append(("p", f"Groups: {notes[0]}."))
  blocks += _variation(records, with_groups) + _versus(records)
  blocks += _hardware(records, config) + _cost(records) + _null(records)
  grid = plot_unstable(records, int(config.study.max_images))
  if grid is not None:
    blocks += [("h2", "Most unstable test examples"),
               ("figure", "unstable_examples.png", grid,
                "The test examples whose prediction differs most often from their modal "
                "prediction (flips summed over the settings), with the modal prediction of "
                "the first setting and the true label.")]
  return blocks
