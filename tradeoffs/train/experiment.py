"""The training experiment behind `experiments/train.py`, importable from Colab.

    config → data → model → population training → per-example predictions in a workdir

`validate(config)` checks names and divisibility before anything is compiled; `run`
holds the workdir's lock, resumes automatically from the last intact checkpoint, saves on
SIGTERM and exits cleanly, does nothing for a finished workdir, stops with
`TrainingDiverged` on a non-finite loss or parameter, and writes config.json (once the
data has loaded), environment.json/.jsonl, metrics.jsonl (+ TensorBoard events),
checkpoints/, predictions/, final_params.npz and, last, summary.json (the "finished" mark).
"""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from tradeoffs import data as data_lib
from tradeoffs import environment
from tradeoffs import models as models_lib
from tradeoffs import workdir as workdir_lib
from tradeoffs.data import pipeline as pipeline_lib
from tradeoffs.train import checkpoint as checkpoint_lib
from tradeoffs.train import distributed
from tradeoffs.train import extensions as extensions_lib
from tradeoffs.train import losses as losses_lib
from tradeoffs.train import mesh as mesh_lib
from tradeoffs.train import optimizers
from tradeoffs.train import plan as plan_lib
from tradeoffs.train import population as pop_lib
from tradeoffs.train import predictions as predictions_lib
from tradeoffs.train import seeds as seeds_lib


def _opt(config: Any, key: str, default: Any = None) -> Any:
  value = config.get(key, default) if hasattr(config, "get") else getattr(config, key, default)
  return default if value in (None, "") else value


def model_kwargs(config: Any) -> dict[str, Any]:
  kwargs = _opt(config.model, "kwargs", {})
  kwargs = kwargs.to_dict() if hasattr(kwargs, "to_dict") else dict(kwargs)
  return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}


def validate(config: Any, device_count: int | None = None) -> None:
  """Fails fast, before data loading or compilation, on names and shapes that cannot work."""
  device_count = device_count or jax.device_count()
  train = config.train
  # Counts first: the schedule and mesh checks below would blame the wrong flag.
  for key in ("steps", "batch_size", "steps_per_dispatch", "log_every", "checkpoint_every",
              "eval_every"):
    if int(train[key]) < 1:
      raise ValueError(f"--config.train.{key}={train[key]} must be >= 1")
  if config.dataset.name not in data_lib.DATASETS:
    raise ValueError(f"--config.dataset.name={config.dataset.name!r} is unknown; choose from "
                     f"{data_lib.names()}")
  if config.model.name not in models_lib.names():
    raise ValueError(f"--config.model.name={config.model.name!r} is unknown; choose from "
                     f"{models_lib.names()}")
  accepted = models_lib.accepted_kwargs(config.model.name)
  unknown = sorted(set(model_kwargs(config)) - set(accepted))
  if unknown:
    raise ValueError(f"--config.model.kwargs has {unknown}, which model "
                     f"{config.model.name!r} does not accept; it accepts {sorted(accepted)}")
  if config.optimizer.name not in optimizers.OPTIMIZERS:
    raise ValueError(f"--config.optimizer.name={config.optimizer.name!r} is unknown; choose "
                     f"from {optimizers.OPTIMIZERS}")
  if _opt(train, "loss") is not None and train.loss not in losses_lib.LOSSES:
    raise ValueError(f"--config.train.loss={train.loss!r} is unknown; choose from "
                     f"{sorted(losses_lib.LOSSES)}")
  optimizers.make_schedule(config.optimizer, int(config.train.steps))
  data_lib.make_augment(tuple(_opt(config.augment, "names", ())))
  seeds_lib.Seeds.from_config(config.seeds)
  members = int(config.population.members)
  _, data_shards = mesh_lib.mesh_shape(
      members, int(_opt(config.mesh, "member_shards", 0)) or None, device_count)
  mesh_lib.check_batch(int(config.train.batch_size), data_shards)
  if _opt(train, "plan", "auto") not in plan_lib.CHOICES:
    raise ValueError(f"--config.train.plan={train.plan!r} is unknown; choose from "
                     f"{plan_lib.CHOICES}")
  if _opt(train, "pool", "auto") not in plan_lib.POOL_CHOICES:
    raise ValueError(f"--config.train.pool={train.pool!r} is unknown; choose from "
                     f"{plan_lib.POOL_CHOICES}")
  if _opt(train, "conv", "auto") not in plan_lib.CONV_CHOICES:
    raise ValueError(f"--config.train.conv={train.conv!r} is unknown; choose from "
                     f"{plan_lib.CONV_CHOICES}")
  pipeline = _opt(config.dataset, "pipeline", "memory")
  if pipeline not in ("memory", "grain"):
    raise ValueError(f"--config.dataset.pipeline={pipeline!r}; choose 'memory' (on-device "
                     "batching of an in-memory set) or 'grain' (streamed from ArrayRecord)")
  if pipeline == "grain" and "data" in seeds_lib.Seeds.from_config(config.seeds).vary:
    raise ValueError("--config.dataset.pipeline='grain' feeds one batch order to all members; "
                     "remove 'data' from --config.seeds.vary (or use pipeline='memory')")


@dataclasses.dataclass
class RunResult:
  state: pop_lib.TrainState
  predictions: predictions_lib.Predictions
  metrics: dict[str, Any]
  mesh: Any
  dataset: Any


def next_boundary(step: int, total: int, train: Any) -> int:
  """End of the chunk starting at `step`: a function of the step only, so a resumed run
  executes exactly the compiled chunks the uninterrupted run executed."""
  candidates = [total, step + int(train.steps_per_dispatch)]
  for key in ("log_every", "checkpoint_every", "eval_every"):
    every = int(train[key])
    candidates.append((step // every + 1) * every)
  return min(candidates)


class Progress:
  """Step, rate and ETA for logs."""

  def __init__(self, total: int, start: int):
    self.total, self.start, self.t0 = total, start, time.time()

  def line(self, step: int) -> str:
    elapsed = max(time.time() - self.t0, 1e-9)
    rate = (step - self.start) / elapsed
    eta = (self.total - step) / rate if rate > 0 else float("nan")
    return f"step {step}/{self.total}  {rate:.1f} steps/s  ETA {eta:.0f}s"


def make_mesh(config: Any) -> Any:
  """The ('members', 'data') mesh a config asks for, with the batch checked against it."""
  mesh = mesh_lib.make_mesh(int(config.population.members),
                            int(_opt(config.mesh, "member_shards", 0)) or None)
  mesh_lib.check_batch(int(config.train.batch_size), mesh)
  return mesh


def prepare_workdir(config: Any, workdir: str, *, mesh: Any = None,
                    plan: dict[str, Any] | None = None) -> tuple[Any, dict[str, Any]]:
  """The run's mesh and recorded environment (with each member's seeds and, when given, the
  execution plan record of `plan_for`); refuses a workdir that holds a different config.
  Returns (mesh, environment)."""
  mesh = mesh if mesh is not None else make_mesh(config)
  env = environment.capture(mesh)
  if plan is not None:
    env["plan"] = dict(plan)
  env["seeds"] = seeds_lib.describe(seeds_lib.Seeds.from_config(config.seeds),
                                    int(config.population.members))
  workdir_lib.prepare(workdir, config, env)
  return mesh, env


def plan_for(config: Any, state: Any, step_config: Any, input_shape: tuple[int, ...],
             checkpoint_dir: str, name: str = "train") -> tuple[plan_lib.Plan, dict[str, Any]]:
  """The execution plan of the population checkpointed in `checkpoint_dir`: the one it
  recorded when it started (resume), else `config.train.plan`, `.pool` and `.conv`
  ('auto': the rules of `tradeoffs.train.plan`), recorded now. Returns (plan, record)."""
  return plan_lib.for_training(
      _opt(config.train, "plan", "auto"), checkpoint_dir, state=state, input_shape=input_shape,
      coupled=any(e.population_loss is not None for e in step_config.extensions),
      streamed=_opt(config.dataset, "pipeline", "memory") == "grain", name=name,
      pool=_opt(config.train, "pool", "auto"), conv=_opt(config.train, "conv", "auto"))


def build(config: Any, dataset: data_lib.Dataset | None = None,
          step_overrides: dict[str, Any] | None = None, tx=None, init_fn=None, mesh=None):
  """Mesh, data on device, model, optimizer, fresh population and step config."""
  members = int(config.population.members)
  mesh = mesh or make_mesh(config)
  if dataset is None:
    dataset = load_dataset(config)
  model = models_lib.get(config.model.name, num_classes=dataset.num_classes,
                         **model_kwargs(config))
  tx = tx or optimizers.make_optimizer(config.optimizer, int(config.train.steps))
  state = pop_lib.create_population(model, tx, dataset.input_shape, members,
                                    seeds_lib.Seeds.from_config(config.seeds), mesh,
                                    init_fn=init_fn)
  augment = config.augment
  overrides = dict(step_overrides or {})
  for key, field in (("loss", "loss_fn"), ("model_inputs", "model_inputs")):  # by config
    if _opt(config.train, key) is not None:
      overrides.setdefault(field, tuple(config.train[key]) if key == "model_inputs"
                           else config.train[key])
  extensions = list(overrides.pop("extensions", ()))
  for key, make in extensions_lib.LEGACY.items():  # coupling_fn=..., grad_metrics_fn=...
    if overrides.get(key) is not None:
      extensions.append(make(overrides.pop(key)))
    overrides.pop(key, None)
  step_config = pop_lib.StepConfig(
      batch_size=int(config.train.batch_size),
      augment_fn=data_lib.make_augment(tuple(_opt(augment, "names", ())),
                                       **{k: v for k, v in augment.items() if k != "names"}),
      extensions=tuple(extensions), **overrides)
  state = pop_lib.init_extension_state(state, step_config.extensions)
  return mesh, dataset, model, state, step_config


def load_dataset(config: Any) -> data_lib.Dataset:
  d = config.dataset
  return data_lib.load(d.name, data_dir=_opt(d, "data_dir"),
                       max_train_examples=_opt(d, "max_train_examples") or None,
                       max_test_examples=_opt(d, "max_test_examples") or None,
                       label_attribute=_opt(d, "label_attribute"),
                       group_attributes=_opt(d, "group_attributes") or None)


def evaluate(state, split, mesh, batch_size, accuracy_fn=None
             ) -> tuple[np.ndarray, dict[str, float]]:
  """Population logits on a split and the test accuracy of each member: classification
  accuracy, or `accuracy_fn(logits, labels)` of the training loss (`losses.accuracy_for`)
  on sequence logits [N, T, K] (predict returns them flattened to [N, T·K])."""
  logits = pop_lib.predict(state, split.images, batch_size=batch_size, mesh=mesh)
  if accuracy_fn is None or accuracy_fn is losses_lib.classification_accuracy:
    accuracy = np.mean(np.argmax(logits, -1) == split.labels[None], axis=-1)
  else:
    frames = logits.reshape(*logits.shape[:2], -1, split.num_classes)
    accuracy = np.array([float(accuracy_fn(jnp.asarray(m), jnp.asarray(split.labels)))
                         for m in frames])
  return logits, {"test_accuracy": float(accuracy.mean()),
                  "test_accuracy_min": float(accuracy.min()),
                  "test_accuracy_max": float(accuracy.max())}


class TrainingDiverged(ValueError):
  """A loss or parameter became non-finite; the last good checkpoint is kept."""


# Test-only: "N" or "N:SIGNAL" (TERM, KILL, ...) sends that signal (default SIGTERM) to this
# process after step N's metrics are logged, before its checkpoint save, so tests can
# preempt or kill deterministically (e.g. exactly at a checkpoint boundary). Unset: off.
SIGNAL_AT_STEP_ENV = "TRADEOFFS_TEST_SIGNAL_AT_STEP"


def _test_signal() -> tuple[int, int]:
  value = os.environ.get(SIGNAL_AT_STEP_ENV, "")
  if not value:
    return 0, 0
  step, _, name = value.partition(":")
  return int(step), int(getattr(signal, f"SIG{name or 'TERM'}"))
# A later logged loss this many times the first one is reported as a likely divergence.
LOSS_GROWTH_WARNING = 10.0


@jax.jit
def _finite(params: Any, losses: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(every parameter of member m finite [M], loss finite [steps, M]): a cheap reduction."""
  leaves = [jnp.all(jnp.isfinite(x).reshape(x.shape[0], -1), axis=1)
            for x in jax.tree.leaves(params) if jnp.issubdtype(x.dtype, jnp.inexact)]
  params_ok = jnp.all(jnp.stack(leaves), axis=0) if leaves else jnp.ones(losses.shape[1:], bool)
  return params_ok, jnp.isfinite(losses)


def _check_finite(name: str, state: Any, losses: Any, step: int,
                  checkpointer: checkpoint_lib.Checkpointer) -> None:
  """Raises TrainingDiverged (one line) when the chunk (start, step] went non-finite."""
  # to_host: in a multi-process job the member-sharded result spans other processes.
  params_ok, loss_ok = distributed.to_host(_finite(state.params, jnp.asarray(losses)))
  params_ok, loss_ok = np.asarray(params_ok), np.asarray(loss_ok)
  if params_ok.all() and loss_ok.all():
    return
  if not loss_ok.all():
    row, member = np.argwhere(~loss_ok)[0]
    # The chunk's metrics are the last len(losses) steps ending at `step`.
    bad_step = step - loss_ok.shape[0] + int(row) + 1
    value = float(np.asarray(jax.device_get(losses))[row, member])
    what = f"loss is {value} for member {int(member)} at step {bad_step}"
  else:
    member = int(np.argwhere(~params_ok)[0][0])
    what = f"parameters of member {member} are non-finite at step {step}"
  checkpointer.wait()
  kept = checkpointer.latest_step()
  kept = (f"the last good checkpoint, step {kept} in {checkpointer.directory}, is kept"
          if kept is not None else "no checkpoint was saved")
  raise TrainingDiverged(
      f"[{name}] training diverged: {what} (checked at step {step}); {kept}. Lower "
      "--config.optimizer.learning_rate or set --config.optimizer.grad_clip_norm")


def _belongs(name: str):
  """Whether a metrics.jsonl row was written by train_population(name=name)."""
  if name == "train":
    return lambda row: "loss" in row
  return lambda row: any(k.startswith(f"{name}/") for k in row)


def train_population(config: Any, workdir: str, *, state, mesh, dataset, step_config,
                     writer: workdir_lib.MetricWriter | None = None,
                     checkpoint_dir: str | None = None, name: str = "train",
                     extras: dict[str, Any] | None = None,
                     ) -> tuple[pop_lib.TrainState, dict[str, Any], bool]:
  """Trains `state` to config.train.steps with resume, logging, eval and preemption saves.

  `extras` are per-example arrays [N_train, ...] that travel with the training set for the
  step's extensions (e.g. teacher logits for distillation).

  Resumes from the newest intact checkpoint; metrics rows the interrupted attempt logged
  after it are dropped, so each step appears once. A preemption (SIGTERM) saves the
  current step, or finds it already saved, and returns preempted=True. A non-finite loss
  or parameter at a log or checkpoint boundary raises TrainingDiverged before anything
  diverged is saved.

  Returns (state, last metrics, preempted). Library code for every study binary.
  """
  train = config.train
  total = int(train.steps)
  checkpointer = checkpoint_lib.Checkpointer(checkpoint_dir or os.path.join(workdir,
                                                                            "checkpoints"))
  guard = None
  try:
    if checkpointer.latest_step() is not None:
      state = checkpointer.restore(state)
    step = int(distributed.to_host(state.step)[0])
    if step:
      logging.info("[%s] resumed from checkpoint at step %d", name, step)
    if writer is not None:
      dropped = writer.drop_after(step, _belongs(name))
      if dropped:
        logging.info("[%s] dropped %d metrics rows logged after step %d by the interrupted "
                     "attempt", name, dropped, step)
    plan, _ = plan_for(config, state, step_config, tuple(dataset.input_shape),
                       checkpointer.directory, name)
    use_grain = _opt(config.dataset, "pipeline", "memory") == "grain"
    if use_grain:
      source = data_lib.data_source(config.dataset.name, "train",
                                    _opt(config.dataset, "data_dir"))
      batches = pipeline_lib.iterate(pipeline_lib.step_batches(
          source, seed=int(config.seeds.data), batch_size=int(train.batch_size),
          num_steps=total), start_step=step,
          workers=int(_opt(config.dataset, "grain_workers", 0)))
      batch_sharding = jax.sharding.NamedSharding(mesh,
                                                  jax.sharding.PartitionSpec(mesh_lib.DATA))
      grain_runner = pop_lib.make_batch_runner(step_config, mesh)
    else:
      device_data = pop_lib.to_device(dataset.train, mesh, extras)
    signal_at, signal_number = _test_signal()
    guard = checkpoint_lib.PreemptionGuard()
    progress = Progress(total, step)
    last: dict[str, Any] = {}
    first_loss = None
    preempted = False
    last_log = (step, time.time())
    eval_batch = int(_opt(config.eval, "batch_size", 512))
    while step < total:
      start, end = step, next_boundary(step, total, train)
      if use_grain:
        for _ in range(end - step):
          batch = next(batches)
          state, metrics = grain_runner(
              state, pipeline_lib.to_global(batch["image"], batch_sharding),
              pipeline_lib.to_global(batch["label"], batch_sharding))
        metrics = jax.tree.map(lambda x: x[None], metrics)
      else:
        # make_runner caches one runner (compiled programs) per chunk length and plan.
        state, metrics = pop_lib.make_runner(step_config, mesh, end - step, plan)(
            state, device_data)
      step = end
      log_now = step % int(train.log_every) == 0 or step == total
      save_now = step % int(train.checkpoint_every) == 0 and step < total
      checked = log_now or save_now or step == total
      if checked:  # Before anything is logged or saved.
        _check_finite(name, state, metrics["loss"], step, checkpointer)
      if first_loss is None:  # This attempt's first step: the reference for growth.
        first_loss = (start + 1, float(np.mean(jax.device_get(metrics["loss"])[0])))
      if log_now:
        host = jax.device_get(metrics)
        last = {k: float(np.mean(v[-1])) for k, v in host.items()}
        now = time.time()
        last["steps_per_second"] = (step - progress.start) / max(now - progress.t0, 1e-9)
        # Time per step since the previous log line (excludes evaluation below).
        last["seconds_per_step"] = (now - last_log[1]) / max(step - last_log[0], 1)
        if step % int(train.eval_every) == 0 or step == total:
          _, test_metrics = evaluate(state, dataset.test, mesh, eval_batch,
                                     losses_lib.accuracy_for(step_config.loss_fn))
          last.update(test_metrics)
        last_log = (step, time.time())
        if writer is not None:
          writer.write(step, {f"{name}/{k}" if name != "train" else k: v
                              for k, v in last.items()})
        logging.info("[%s] %s  loss %.4f  acc %.3f%s", name, progress.line(step), last["loss"],
                     last["accuracy"], (f"  test_acc {last['test_accuracy']:.3f}"
                                        if "test_accuracy" in last else ""))
        if last["loss"] > LOSS_GROWTH_WARNING * max(first_loss[1], 1e-12):
          logging.warning("[%s] LOSS IS GROWING: %.4g at step %d is more than %gx the loss "
                          "%.4g at step %d; training is probably diverging (lower "
                          "--config.optimizer.learning_rate)", name, last["loss"], step,
                          LOSS_GROWTH_WARNING, first_loss[1], first_loss[0])
      if signal_at and step == signal_at:
        os.kill(os.getpid(), signal_number)
      stop = guard.should_stop()
      if stop and not checked:
        _check_finite(name, state, metrics["loss"], step, checkpointer)
      if save_now:
        checkpointer.save(step, state)
      if stop:
        checkpointer.save(step, state, wait=True)  # A no-op when save_now just wrote it.
        logging.warning("[%s] preempted at step %d; rerun the same command to resume",
                        name, step)
        preempted = True
        break
    if not preempted and checkpointer.latest_step() != step:
      checkpointer.save(step, state, wait=True)
  finally:
    if guard is not None:
      guard.restore_handlers()
    checkpointer.close()
  return state, last, preempted


def finished_step(workdir: str) -> int | None:
  """The step a finished run in `workdir` ended at (summary.json is written last), else
  None."""
  path = os.path.join(workdir, "summary.json")
  if not os.path.exists(path):
    return None
  try:
    summary = workdir_lib.read_json(path)
  except ValueError:
    return None  # Half-written summary: not finished.
  return int(summary.get("step", -1))


def run(config: Any, workdir: str, *,
        on_result: Callable[[RunResult], Any] | None = None,
        on_init: Callable[[pop_lib.TrainState], Any] | None = None,
        step_overrides: dict[str, Any] | None = None) -> RunResult | None:
  """Runs the training experiment under the workdir's lock.

  Returns None when preempted (state is checkpointed; rerun to resume) or when the
  workdir already holds this finished run (nothing is written). `on_result(result)` runs
  before summary.json marks the run finished, so what it writes (e.g. a trade-off record)
  is never skipped by a rerun after a crash. `on_init(state)` sees the freshly initialised
  population (before any checkpoint is restored), e.g. to save the initial weights;
  `step_overrides` are `StepConfig` fields (e.g. `group_loss_fn`), as for `build`.
  """
  started = time.time()
  distributed.maybe_initialize()
  checkpoint_lib.quiet_orbax()
  validate(config)
  members = int(config.population.members)
  total = int(config.train.steps)
  with workdir_lib.lock(workdir):
    if workdir_lib.check(workdir, config):
      done = finished_step(workdir)
      if done is not None:
        logging.warning("%s: already finished at step %d; nothing to do", workdir,
                        total if done < 0 else done)
        return None
    # Data first: a run that fails to load its data must not claim the workdir.
    dataset = load_dataset(config)
    mesh, dataset, model, state, step_config = build(config, dataset=dataset,
                                                     step_overrides=step_overrides)
    _, plan = plan_for(config, state, step_config, tuple(dataset.input_shape),
                       os.path.join(workdir, "checkpoints"))
    mesh, env = prepare_workdir(config, workdir, mesh=mesh, plan=plan)
    logging.info("process %d/%d, %d devices (%s), mesh %s, execution plan %s",
                 jax.process_index(), jax.process_count(), jax.device_count(),
                 env["device_kind"], dict(mesh.shape), plan["plan"])
    if on_init is not None:
      on_init(state)
    per_member = sum(int(np.prod(x.shape[1:])) for x in jax.tree.leaves(state.params))
    logging.info("model %s: %s parameters per member, %d members", config.model.name,
                 f"{per_member:,}", members)
    writer = workdir_lib.MetricWriter(workdir)
    try:
      state, last, preempted = train_population(config, workdir, state=state, mesh=mesh,
                                                dataset=dataset, step_config=step_config,
                                                writer=writer)
    finally:
      writer.close()
    if preempted:
      return None
    eval_batch = int(_opt(config.eval, "batch_size", 512))
    logits, test_metrics = evaluate(state, dataset.test, mesh, eval_batch)
    test = dataset.test
    preds = predictions_lib.Predictions(logits=logits, labels=test.labels, ids=test.ids,
                                        groups=test.groups, group_names=test.group_names)
    predictions_lib.save(workdir, "test", preds)
    if _opt(config.eval, "save_train_predictions", False):
      train_logits, _ = evaluate(state, dataset.train, mesh, eval_batch)
      tr = dataset.train
      predictions_lib.save(workdir, "train", predictions_lib.Predictions(
          logits=train_logits, labels=tr.labels, ids=tr.ids, groups=tr.groups,
          group_names=tr.group_names))
    predictions_lib.save_params(workdir, distributed.to_host(state.params))
    summary = {**last, **test_metrics, "members": members, "step": total,
               "seconds": time.time() - started,
               "per_member_test_accuracy": preds.accuracy.tolist()}
    result = RunResult(state=state, predictions=preds, metrics=summary, mesh=mesh,
                       dataset=dataset)
    if on_result is not None:
      on_result(result)
    if workdir_lib.is_writer():
      workdir_lib.write_json(os.path.join(workdir, "summary.json"), summary)
    logging.info("done: test accuracy %.4f (members %s)", test_metrics["test_accuracy"],
                 np.round(preds.accuracy, 4).tolist())
    return result
