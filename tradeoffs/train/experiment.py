"""The training experiment behind `experiments/train.py`, importable from Colab.

    config → data → model → population training → per-example predictions in a workdir

`validate(config)` checks names and divisibility before anything is compiled; `run`
resumes automatically from the workdir's last checkpoint, saves on SIGTERM and exits
cleanly, and writes config.json, environment.json, metrics.jsonl (+ TensorBoard events),
checkpoints/, predictions/ and final_params.npz.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import jax
import numpy as np
from absl import logging

from tradeoffs import data as data_lib
from tradeoffs import environment
from tradeoffs import models as models_lib
from tradeoffs import workdir as workdir_lib
from tradeoffs.data import pipeline as pipeline_lib
from tradeoffs.train import checkpoint as checkpoint_lib
from tradeoffs.train import distributed
from tradeoffs.train import mesh as mesh_lib
from tradeoffs.train import optimizers
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
  optimizers.make_schedule(config.optimizer, int(config.train.steps))
  data_lib.make_augment(tuple(_opt(config.augment, "names", ())))
  seeds_lib.Seeds.from_config(config.seeds)
  members = int(config.population.members)
  _, data_shards = mesh_lib.mesh_shape(
      members, int(_opt(config.mesh, "member_shards", 0)) or None, device_count)
  mesh_lib.check_batch(int(config.train.batch_size), data_shards)
  train = config.train
  if int(train.steps) < 0:
    raise ValueError(f"--config.train.steps={train.steps} must be >= 0")
  pipeline = _opt(config.dataset, "pipeline", "memory")
  if pipeline not in ("memory", "grain"):
    raise ValueError(f"--config.dataset.pipeline={pipeline!r}; choose 'memory' (on-device "
                     "batching of an in-memory set) or 'grain' (streamed from ArrayRecord)")
  if pipeline == "grain" and "data" in seeds_lib.Seeds.from_config(config.seeds).vary:
    raise ValueError("--config.dataset.pipeline='grain' feeds one batch order to all members; "
                     "remove 'data' from --config.seeds.vary (or use pipeline='memory')")
  for key in ("steps_per_dispatch", "log_every", "checkpoint_every", "eval_every"):
    if int(train[key]) < 1:
      raise ValueError(f"--config.train.{key}={train[key]} must be >= 1")


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


def prepare_workdir(config: Any, workdir: str) -> tuple[Any, dict[str, Any]]:
  """The run's mesh and recorded environment (with each member's seeds); refuses a workdir
  that holds a different config. Returns (mesh, environment)."""
  mesh = make_mesh(config)
  env = environment.capture(mesh)
  env["seeds"] = seeds_lib.describe(seeds_lib.Seeds.from_config(config.seeds),
                                    int(config.population.members))
  workdir_lib.prepare(workdir, config, env)
  return mesh, env


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
  step_config = pop_lib.StepConfig(
      batch_size=int(config.train.batch_size),
      augment_fn=data_lib.make_augment(tuple(_opt(augment, "names", ())),
                                       **{k: v for k, v in augment.items() if k != "names"}),
      **(step_overrides or {}))
  return mesh, dataset, model, state, step_config


def load_dataset(config: Any) -> data_lib.Dataset:
  d = config.dataset
  return data_lib.load(d.name, data_dir=_opt(d, "data_dir"),
                       max_train_examples=_opt(d, "max_train_examples") or None,
                       max_test_examples=_opt(d, "max_test_examples") or None,
                       label_attribute=_opt(d, "label_attribute"),
                       group_attributes=_opt(d, "group_attributes") or None)


def evaluate(state, split, mesh, batch_size) -> tuple[np.ndarray, dict[str, float]]:
  logits = pop_lib.predict(state, split.images, batch_size=batch_size, mesh=mesh)
  accuracy = np.mean(np.argmax(logits, -1) == split.labels[None], axis=-1)
  return logits, {"test_accuracy": float(accuracy.mean()),
                  "test_accuracy_min": float(accuracy.min()),
                  "test_accuracy_max": float(accuracy.max())}


def train_population(config: Any, workdir: str, *, state, mesh, dataset, step_config,
                     writer: workdir_lib.MetricWriter | None = None,
                     checkpoint_dir: str | None = None, name: str = "train",
                     ) -> tuple[pop_lib.TrainState, dict[str, Any], bool]:
  """Trains `state` to config.train.steps with resume, logging, eval and preemption saves.

  Returns (state, last metrics, preempted). Library code for every study binary.
  """
  train = config.train
  total = int(train.steps)
  checkpointer = checkpoint_lib.Checkpointer(checkpoint_dir or os.path.join(workdir,
                                                                            "checkpoints"))
  if checkpointer.latest_step() is not None:
    state = checkpointer.restore(state)
  step = int(distributed.to_host(state.step)[0])
  if step:
    logging.info("[%s] resumed from checkpoint at step %d", name, step)
  use_grain = _opt(config.dataset, "pipeline", "memory") == "grain"
  if use_grain:
    source = data_lib.data_source(config.dataset.name, "train", _opt(config.dataset, "data_dir"))
    batches = pipeline_lib.iterate(pipeline_lib.step_batches(
        source, seed=int(config.seeds.data), batch_size=int(train.batch_size),
        num_steps=total), start_step=step,
        workers=int(_opt(config.dataset, "grain_workers", 0)))
    batch_sharding = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(mesh_lib.DATA))
    grain_runner = pop_lib.make_batch_runner(step_config, mesh)
  else:
    device_data = pop_lib.to_device(dataset.train, mesh)
  guard = checkpoint_lib.PreemptionGuard()
  progress = Progress(total, step)
  last: dict[str, Any] = {}
  preempted = False
  last_log = (step, time.time())
  eval_batch = int(_opt(config.eval, "batch_size", 512))
  try:
    while step < total:
      end = next_boundary(step, total, train)
      if use_grain:
        for _ in range(end - step):
          batch = next(batches)
          state, metrics = grain_runner(
              state, pipeline_lib.to_global(batch["image"], batch_sharding),
              pipeline_lib.to_global(batch["label"], batch_sharding))
        metrics = jax.tree.map(lambda x: x[None], metrics)
      else:
        # make_runner caches one compiled program per chunk length.
        state, metrics = pop_lib.make_runner(step_config, mesh, end - step)(state, device_data)
      step = end
      if step % int(train.log_every) == 0 or step == total:
        host = jax.device_get(metrics)
        last = {k: float(np.mean(v[-1])) for k, v in host.items()}
        now = time.time()
        last["steps_per_second"] = (step - progress.start) / max(now - progress.t0, 1e-9)
        # Time per step since the previous log line (excludes evaluation below).
        last["seconds_per_step"] = (now - last_log[1]) / max(step - last_log[0], 1)
        if step % int(train.eval_every) == 0 or step == total:
          _, test_metrics = evaluate(state, dataset.test, mesh, eval_batch)
          last.update(test_metrics)
        last_log = (step, time.time())
        if writer is not None:
          writer.write(step, {f"{name}/{k}" if name != "train" else k: v
                              for k, v in last.items()})
        logging.info("[%s] %s  loss %.4f  acc %.3f%s", name, progress.line(step), last["loss"],
                     last["accuracy"], (f"  test_acc {last['test_accuracy']:.3f}"
                                        if "test_accuracy" in last else ""))
      if step % int(train.checkpoint_every) == 0 and step < total:
        checkpointer.save(step, state)
      if guard.should_stop():
        checkpointer.save(step, state, wait=True)
        logging.warning("[%s] preempted (SIGTERM): saved step %d; rerun the same command to "
                        "resume", name, step)
        preempted = True
        break
    if not preempted and checkpointer.latest_step() != step:
      checkpointer.save(step, state, wait=True)
  finally:
    guard.restore_handlers()
    checkpointer.close()
  return state, last, preempted


def run(config: Any, workdir: str) -> RunResult | None:
  """Runs the training experiment; returns None when preempted (state is checkpointed)."""
  started = time.time()
  distributed.maybe_initialize()
  checkpoint_lib.quiet_orbax()
  validate(config)
  members = int(config.population.members)
  mesh, env = prepare_workdir(config, workdir)
  logging.info("process %d/%d, %d devices (%s), mesh %s", jax.process_index(),
               jax.process_count(), jax.device_count(), env["device_kind"], dict(mesh.shape))
  mesh, dataset, model, state, step_config = build(config, mesh=mesh)
  per_member = sum(int(np.prod(x.shape[1:])) for x in jax.tree.leaves(state.params))
  logging.info("model %s: %s parameters per member, %d members", config.model.name,
               f"{per_member:,}", members)
  writer = workdir_lib.MetricWriter(workdir)
  state, last, preempted = train_population(config, workdir, state=state, mesh=mesh,
                                            dataset=dataset, step_config=step_config,
                                            writer=writer)
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
  summary = {**last, **test_metrics, "members": members, "seconds": time.time() - started,
             "per_member_test_accuracy": preds.accuracy.tolist()}
  if workdir_lib.is_writer():
    workdir_lib.write_json(os.path.join(workdir, "summary.json"), summary)
  logging.info("done: test accuracy %.4f (members %s)", test_metrics["test_accuracy"],
               np.round(preds.accuracy, 4).tolist())
  return RunResult(state=state, predictions=preds, metrics=summary, mesh=mesh, dataset=dataset)
