"""The one runner every study runs on (see `tradeoffs.studies.base` for the protocol).

    records = runner.run(study_module, config, workdir)       # train, score, record, report
    runner.report_only(study_module, config, workdir, merge=(...))

`run` validates (`study.plan`; any ValueError there is a `ConfigError`: one line, exit 2),
takes the workdir's lock, guards it against another config, appends this attempt's
environment, skips variants already recorded, produces the rest one by one with progress
and ETA, scores each on the one sheet (`tradeoffs.sheet`), appends its record (schema in
`tradeoffs.report.records`), and writes report.md + report.html + figures. Preemption has
one mechanism: `produce` raises `base.Preempted`; the runner keeps every finished record and
returns with `finished=False`; the same command resumes. Rerunning a finished workdir
changes nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import time
from typing import Any, Mapping, Sequence

import jax
import numpy as np
from absl import logging

from tradeoffs import efficiency
from tradeoffs import environment as environment_lib
from tradeoffs import errors
from tradeoffs import sheet
from tradeoffs import workdir as workdir_lib
from tradeoffs.report import ledger as ledger_lib
from tradeoffs.report import records as records_lib
from tradeoffs.report import write as write_lib
from tradeoffs.studies import base
from tradeoffs.train import checkpoint as checkpoint_lib
from tradeoffs.train import distributed
from tradeoffs.train import experiment
from tradeoffs.train import predictions as predictions_lib
from tradeoffs.train import seeds as seeds_lib


@dataclasses.dataclass
class Trained:
  state: Any
  mesh: Any
  seconds: float


@dataclasses.dataclass
class RunResult:
  records: list[dict[str, Any]]
  finished: bool


def _get(section: Any, key: str, default: Any) -> Any:
  if section is None:
    return default
  value = section.get(key, default) if hasattr(section, "get") else getattr(section, key,
                                                                             default)
  return default if value in (None, "") else value


def efficiency_options(config: Any) -> dict[str, Any]:
  """The one spelling of the measurement knobs: `config.efficiency.{latency_repeats,
  measure_batch, time_latency, paired_timing}` (paired_timing: time every variant in
  alternation with the study's dense source, `recipes.timing_reference`)."""
  e = config.get("efficiency") if hasattr(config, "get") else None
  return {"repeats": int(_get(e, "latency_repeats", 20)),
          "measure_batch": int(_get(e, "measure_batch", 64)),
          "time_it": bool(_get(e, "time_latency", True)),
          "paired_timing": bool(_get(e, "paired_timing", False))}


class Context:
  """The runner's services for `produce` (one per run)."""

  def __init__(self, study: Any, config: Any, workdir: str, env: Mapping[str, Any],
               variants: Sequence[base.Variant]):
    self.study, self.config, self.workdir = study, config, workdir
    self.environment = dict(env)
    self.variants = {v.name: v for v in variants}
    self.cache: dict[str, Any] = {}
    self.records: dict[str, dict[str, Any]] = {}  # variant -> its record, once recorded
    self.meshes: dict[str, dict[str, int]] = {}
    self._datasets: dict[str, Any] = {}
    self._writer = None
    self.efficiency = efficiency_options(config)

  @property
  def writer(self) -> workdir_lib.MetricWriter:
    if self._writer is None:
      self._writer = workdir_lib.MetricWriter(self.workdir)
    return self._writer

  def close(self) -> None:
    if self._writer is not None:
      self._writer.close()

  # Data ------------------------------------------------------------------------------
  def dataset(self, train_config: Any = None) -> Any:
    """The dataset a training config names (loaded once per distinct dataset section)."""
    train_config = train_config if train_config is not None else self.config
    key = json.dumps(workdir_lib.to_jsonable(train_config.dataset), sort_keys=True)
    if key not in self._datasets:
      try:
        self._datasets[key] = experiment.load_dataset(train_config)
      except FileNotFoundError as e:  # Not prepared: the message names the command.
        raise errors.ConfigError(str(e)) from None
    return self._datasets[key]

  # Training --------------------------------------------------------------------------
  def train(self, variant: base.Variant, *, train_config: Any = None, name: str | None = None,
            tx: Any = None, step_overrides: Mapping[str, Any] | None = None,
            extensions: Sequence[Any] = (), extras: Mapping[str, Any] | None = None,
            init_fn: Any = None, state_fn: Any = None, dataset: Any = None) -> Trained:
    """Trains (or resumes, or restores when finished) one population under
    workdir/checkpoints/<name>; raises `base.Preempted` when preempted.

    `extensions` (`tradeoffs.train.extensions.StepExtension`) add loss terms or example
    weights to the step; `extras` are the per-example training inputs they read.
    `dataset` trains on other data than the config's (e.g. with noisy labels); evaluation
    stays on the config's.
    """
    step_overrides = {**dict(step_overrides or {}),
                      "extensions": tuple(extensions)} if extensions else step_overrides
    name = name or variant.name
    train_config = train_config if train_config is not None else variant.train_config
    if train_config is None:
      raise ValueError(f"variant {variant.name!r} has no training config to train")
    start = time.time()
    mesh, dataset, _, state, step_config = experiment.build(
        train_config, dataset=dataset if dataset is not None else self.dataset(train_config),
        step_overrides=dict(step_overrides or {}), tx=tx, init_fn=init_fn)
    if state_fn is not None:
      state = state_fn(state)
    state, _, preempted = experiment.train_population(
        train_config, self.workdir, state=state, mesh=mesh, dataset=dataset,
        step_config=step_config, writer=self.writer,
        checkpoint_dir=os.path.join(self.workdir, "checkpoints", name), name=name,
        extras=dict(extras) if extras else None)
    if preempted:
      raise base.Preempted(name, int(distributed.to_host(state.step)[0]))
    self.meshes[name] = {k: int(v) for k, v in mesh.shape.items()}
    return Trained(state=state, mesh=mesh, seconds=time.time() - start)

  def evaluate(self, trained: Trained, train_config: Any, split: str = "test") -> np.ndarray:
    """Population logits [members, examples, classes] on a split of the config's dataset."""
    data = getattr(self.dataset(train_config), split)
    batch = int(_get(train_config.get("eval"), "batch_size", 512))
    logits, _ = experiment.evaluate(trained.state, data, trained.mesh, batch)
    return np.asarray(logits)

  def predictions(self, name: str) -> predictions_lib.Predictions:
    """Saved test predictions of a variant recorded earlier (in this run or before)."""
    path = predictions_lib.path(self.workdir, name)
    if not os.path.exists(path):
      raise ValueError(f"no predictions for variant {name!r} in {self.workdir}; a variant's "
                       "source must be planned before it")
    return predictions_lib.load(self.workdir, name)

  def save_predictions(self, name: str, logits: np.ndarray, train_config: Any = None,
                       split: str = "test") -> str:
    data = getattr(self.dataset(train_config), split)
    preds = predictions_lib.Predictions(logits=logits, labels=data.labels, ids=data.ids,
                                        groups=data.groups, group_names=data.group_names)
    return predictions_lib.save(self.workdir, name, preds)

  def example_images(self, train_config: Any = None) -> np.ndarray:
    test = self.dataset(train_config).test
    n = max(1, min(self.efficiency["measure_batch"], len(test.labels)))
    return np.asarray(test.images[:n])


def plan(study: Any, config: Any) -> list[base.Variant]:
  """`study.plan(config)` with every ValueError turned into a one-line ConfigError, plus the
  checks every study shares: unique file-safe names, valid training configs."""
  try:
    variants = list(study.plan(config))
    names = [v.name for v in variants]
    if len(set(names)) != len(names):
      raise ValueError(f"variant names collide: {names}; use distinct sweep values")
    for variant in variants:
      if not records_lib._SAFE_NAME.match(variant.name):
        raise ValueError(f"variant name {variant.name!r} is not file-safe")
      if variant.source is not None and variant.source not in names:
        raise ValueError(f"variant {variant.name!r} names source {variant.source!r}, which "
                         "is not planned")
      if variant.train_config is not None:
        experiment.validate(variant.train_config)
  except errors.ConfigError:
    raise
  except ValueError as e:
    raise errors.ConfigError(str(e)) from None
  if not variants:
    raise errors.ConfigError(f"{study.NAME}: the config plans no variants")
  return variants


def _lock(workdir: str):
  lock = getattr(workdir_lib, "lock", None)  # The workdir lock (one holder per job).
  return lock(workdir) if lock is not None else contextlib.nullcontext()


def _seeds(variant: base.Variant, members: int) -> Any:
  tc = variant.train_config
  if tc is None or "seeds" not in tc:
    return None
  return seeds_lib.describe(seeds_lib.Seeds.from_config(tc.seeds),
                            int(tc.population.members))


def make_record(ctx: Context, variant: base.Variant, outcome: base.Outcome,
                seconds: float) -> dict[str, Any]:
  """Scores an outcome on the sheet and builds its record (not yet appended)."""
  accuracy: dict[str, Any] = {}
  hidden: dict[str, Any] = {}
  predictions = None
  if outcome.logits is not None:
    train_config = outcome.config or variant.train_config or ctx.config
    test = ctx.dataset(train_config).test
    is_source = variant.source is None or variant.source == variant.name
    source_logits = (outcome.logits if is_source
                     else ctx.predictions(variant.source).logits)
    accuracy, hidden = sheet.score(
        outcome.logits, test.labels, groups=test.groups, group_names=test.group_names,
        source_logits=source_logits, is_source=is_source,
        derived=bool(outcome.derived))
    ctx.save_predictions(variant.name, np.asarray(outcome.logits), train_config)
    if workdir_lib.is_writer():
      predictions = records_lib.predictions_entry(
          ctx.workdir, os.path.relpath(predictions_lib.path(ctx.workdir, variant.name),
                                       ctx.workdir))
  accuracy.update(outcome.accuracy)
  hidden.update(outcome.hidden_costs)
  env = dict(ctx.environment)
  if variant.name in ctx.meshes:  # The mesh this variant actually trained on.
    env["mesh"] = ctx.meshes[variant.name]
  record = records_lib.make_record(
      study=ctx.study.NAME, variant=variant.name, technique=variant.technique,
      knobs=variant.knobs, source=variant.source, members=int(outcome.members),
      efficiency=outcome.efficiency, accuracy=accuracy, hidden_costs=hidden,
      comparisons=outcome.comparisons, study_fields=outcome.study_fields,
      config=outcome.config or variant.train_config, environment=env,
      seeds=_seeds(variant, outcome.members), seconds=seconds, predictions=predictions)
  # The accountability ledger, machine-readable, against the variant's recorded source.
  entry = ledger_lib.accountability(record, ctx.records.get(variant.source or "") or record)
  return records_lib.make_record(**{k: v for k, v in record.items()
                                    if k not in ("schema_version",)}, ledger=entry)


def run(study: Any, config: Any, workdir: str, *, write: bool = True) -> RunResult:
  """Runs (or resumes) `study` into `workdir`; see the module docstring."""
  distributed.maybe_initialize()
  checkpoint_lib.quiet_orbax()
  variants = plan(study, config)
  name = study.NAME
  with _lock(workdir):
    resuming = workdir_lib.check(workdir, config)  # Refuses another config's workdir.
    records = records_lib.read_records(workdir, repair=True) if resuming else []
    done = {r["variant"] for r in records}
    stale = sorted(done - {v.name for v in variants})
    if stale:
      raise errors.ConfigError(f"--workdir={workdir} holds records of variants {stale} that "
                               "this config does not plan; use a new --workdir")
    todo = [v for v in variants if v.name not in done]
    if not todo:  # A finished run: nothing is rewritten, not even the environment.
      logging.info("%s: finished — all %d variants are recorded in %s; nothing to do "
                   "(--report_only rebuilds the report)", name, len(variants), workdir)
      if write and not os.path.exists(os.path.join(workdir, "report.md")):
        write_report(study, config, workdir, records)
      return RunResult(records=records, finished=True)
    env = environment_lib.capture()
    ctx = Context(study, config, workdir, env, variants)
    for variant in todo:  # Data first: a run that cannot load its data claims nothing.
      if variant.train_config is not None:
        ctx.dataset(variant.train_config)
    workdir_lib.prepare(workdir, config, env)
    logging.info("%s: %d variants (%s); %d already recorded, %d to run", name, len(variants),
                 ", ".join(v.name for v in variants), len(done), len(todo))
    ctx.records.update({r["variant"]: r for r in records})
    start = time.time()
    try:
      for index, variant in enumerate(todo):
        elapsed = time.time() - start
        eta = (f", ETA ~{elapsed / index * (len(todo) - index):.0f}s" if index else "")
        logging.info("%s: variant %d/%d %s (%s), elapsed %.0fs%s", name, index + 1,
                     len(todo), variant.name, variant.technique, elapsed, eta)
        t0 = time.time()
        outcome = study.produce(ctx, variant)
        record = make_record(ctx, variant, outcome, time.time() - t0)
        records_lib.append_records(workdir, record)
        records.append(record)
        ctx.records[variant.name] = record
        top1 = record["accuracy"].get("top1")
        logging.info("%s: %s done in %.1fs%s", name, variant.name, time.time() - t0,
                     f" (top-1 {top1:.4f})" if isinstance(top1, float) else "")
    except base.Preempted as e:
      at = f" at step {e.step}" if e.step is not None else ""
      logging.warning("%s: preempted%s while producing %s; rerun the same command to "
                      "resume (the %d finished variants are kept)", name, at, e.variant,
                      len(records))
      return RunResult(records=records, finished=False)
    finally:
      ctx.close()
    logging.info("%s: all %d variants recorded in %.0fs", name, len(records),
                 time.time() - start)
    if write:
      write_report(study, config, workdir, records)
  return RunResult(records=records, finished=True)


def _report_config(config: Any) -> Any:
  return config.get("report") if hasattr(config, "get") else None


def write_report(study: Any, config: Any, workdir: str,
                 records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
  """report.md, report.html and figures: the shared report around the study's sections."""
  r = _report_config(config)
  axes = tuple(_get(r, "axes", ())) or None
  metrics = tuple(_get(r, "metrics", ())) or None
  blocks = list(study.sections(list(records), config))
  return write_lib.write_report(workdir, records, title=_get(r, "title", study.TITLE),
                                axes=axes, metrics=metrics,
                                reference=_get(r, "reference", None), lead_blocks=blocks,
                                with_ledger=bool(getattr(study, "LEDGER", True)))


def report_only(study: Any, config: Any, workdir: str, merge: Sequence[str] = ()
                ) -> dict[str, Any]:
  """Rebuilds the report in `workdir` from its records, or from the `merge` workdirs'
  (and `workdir`'s own when it has records); prediction files are checked against the
  digests in their records."""
  sources = list(merge)
  if not sources or os.path.exists(records_lib.records_path(workdir)):
    sources = [workdir] + [m for m in sources
                           if os.path.normpath(m) != os.path.normpath(workdir)]
  try:
    records = records_lib.load_records(*sources)
    records_lib.check_predictions(records)
  except (FileNotFoundError, records_lib.RecordError, ValueError) as e:
    raise errors.ConfigError(str(e)) from None
  os.makedirs(workdir, exist_ok=True)
  return write_report(study, config, workdir, records)


def record_training_run(config: Any, workdir: str, result: Any,
                        environment: Mapping[str, Any] | None = None) -> dict[str, Any]:
  """The trade-off record of a plain training run (`experiments.train`), so sweeps of
  training runs merge into one frontier: variant = model and its kwargs, scored on the
  sheet, efficiency measured on member 0. Appended once (a finished workdir keeps it)."""
  kwargs = experiment.model_kwargs(config)
  variant = config.model.name + "".join(f",{k}={v}" for k, v in sorted(kwargs.items()))
  variant = "".join(c if c.isalnum() or c in "_.,=+-" else "_" for c in variant)
  existing = [r for r in records_lib.read_records(workdir) if r["variant"] == variant]
  if existing:
    return existing[0]
  split = result.dataset.test
  accuracy, hidden = sheet.score(result.predictions.logits, split.labels, groups=split.groups,
                                 group_names=split.group_names, costs=("churn",))
  state = result.state
  variables = {"params": jax.tree.map(lambda x: np.asarray(x)[0],
                                      distributed.to_host(state.params))}
  if jax.tree.leaves(state.batch_stats):
    variables["batch_stats"] = jax.tree.map(lambda x: np.asarray(x)[0],
                                            distributed.to_host(state.batch_stats))
  eff = efficiency.measure(lambda v, x: state.apply_fn(v, x, train=False), variables,
                           np.asarray(split.images[:64]))
  record = records_lib.make_record(
      study="train", variant=variant, technique="dense", knobs=kwargs, config=config,
      environment=environment or {}, efficiency=eff, accuracy=accuracy, hidden_costs=hidden,
      members=int(result.predictions.logits.shape[0]),
      seeds=seeds_lib.describe(seeds_lib.Seeds.from_config(config.seeds),
                               int(config.population.members)),
      seconds=result.metrics.get("seconds"))
  records_lib.append_records(workdir, record)
  return record
