"""Building blocks shared by the study pipelines (compression, ensembles, the frontier).

A study trains several variants, each as a population, and scores each one on the same
sheet. These helpers keep that uniform: one resumable training call per variant (its own
checkpoint directory), one accuracy summary (top-1, per class, worst class, balanced, per
group, worst group, modal-label accuracy), one efficiency measurement, and resumption by
skipping variants already in `records.jsonl`.
"""

from __future__ import annotations

import os
import time
import warnings
from typing import Any, Callable, Mapping, Sequence

import jax
import numpy as np

from tradeoffs import determinism
from tradeoffs import efficiency
from tradeoffs import exemplars
from tradeoffs import fairness
from tradeoffs import workdir as workdir_lib
from tradeoffs.report import records as records_lib
from tradeoffs.train import experiment
from tradeoffs.train import population as pop_lib
from tradeoffs.train import predictions as predictions_lib


def recorded_variants(workdir: str) -> set[str]:
  """Variants that already have a record (a resumed study skips them)."""
  path = os.path.join(workdir, records_lib.RECORDS_FILE)
  return {r["variant"] for r in workdir_lib.read_jsonl(path)}


def accuracy_summary(logits: np.ndarray, labels: np.ndarray, groups: np.ndarray | None = None,
                     group_names: Sequence[str] = ()) -> dict[str, Any]:
  """Top-1 and the costs top-1 hides, from population logits [M, N, C].

  Per-member metrics are averaged over members (`*_std` is their spread); `modal_top1` is
  the accuracy of the population's modal label (ties to the smallest label).
  """
  with warnings.catch_warnings():  # absent classes/groups are NaN by design
    warnings.simplefilter("ignore", RuntimeWarning)
    return _accuracy_summary(np.asarray(logits), np.asarray(labels), groups, group_names)


def _accuracy_summary(logits, labels, groups, group_names) -> dict[str, Any]:
  num_classes = logits.shape[-1]
  preds = logits.argmax(-1)
  top1 = (preds == labels[None]).mean(-1)
  per_class = np.asarray(jax.vmap(
      lambda p: fairness.per_class_accuracy(labels, p, num_classes=num_classes))(preds))
  out: dict[str, Any] = {
      "top1": float(top1.mean()),
      "top1_std": float(top1.std()),
      "per_member_top1": top1.tolist(),
      "per_class": np.nanmean(per_class, 0).tolist(),
      "per_class_std": float(np.nanmean(np.nanstd(per_class, 0))),
      "worst_class": float(np.nanmean(np.nanmin(per_class, -1))),
      "balanced": float(np.nanmean(np.nanmean(per_class, -1))),
      "modal_top1": float((np.asarray(exemplars.modal_labels(preds, num_classes)) ==
                           labels).mean()),
  }
  if groups is not None and groups.size and groups.shape[-1] > 0:
    inter = fairness.intersect(groups, None, tuple(group_names) or None)
    per_group = np.asarray(jax.vmap(lambda p: fairness.by_group(
        "accuracy", labels, p, inter.ids, num_groups=inter.num_groups))(preds))
    mean_group = np.nanmean(per_group, 0)
    out["per_group"] = {name: float(mean_group[i]) for i, name in enumerate(inter.names)}
    out["worst_group"] = float(np.nanmean(np.nanmin(per_group, -1)))
    out["group_gap"] = float(np.nanmean(np.nanmax(per_group, -1) - np.nanmin(per_group, -1)))
  return out


def member_params(state: pop_lib.TrainState, index: int = 0) -> Any:
  """One member's variables (params and batch stats) for measuring a single model."""
  params = jax.tree.map(lambda x: x[index], state.params)
  stats = jax.tree.map(lambda x: x[index], state.batch_stats)
  return {"params": params, **({"batch_stats": stats} if jax.tree.leaves(stats) else {})}


def measure_member(state: pop_lib.TrainState, example_images: np.ndarray, *,
                   params_override: Any = None, bits_per_leaf: Any = None,
                   repeats: int = 20, time_it: bool = True) -> dict[str, Any]:
  """Efficiency of one member (theoretical and measured side by side)."""
  variables = member_params(state)
  if params_override is not None:
    variables = {**variables, "params": params_override}
  apply = lambda v, x: state.apply_fn(v, x, train=False)
  bits = None
  if bits_per_leaf is not None:  # Bits given for params only; stats stay at 32 bits.
    bits = {"params": bits_per_leaf, **({"batch_stats": None} if "batch_stats" in variables
                                        else {})}
  return efficiency.measure(apply, variables, np.asarray(example_images), repeats=repeats,
                            time_it=time_it, bits_per_leaf=bits)


def train_variant(config: Any, workdir: str, variant: str, *, dataset: Any,
                  writer: workdir_lib.MetricWriter | None = None,
                  tx: Any = None, step_overrides: Mapping[str, Any] | None = None,
                  init_fn: Callable[[Any, jax.Array], Any] | None = None,
                  state_fn: Callable[[pop_lib.TrainState], pop_lib.TrainState] | None = None,
                  ) -> tuple[pop_lib.TrainState, Any, float, bool]:
  """Trains one variant's population; resumes from workdir/checkpoints/<variant>.

  `config` is a training config (model, population, seeds, optimizer, train, ...);
  `state_fn` may transform the fresh state before training (e.g. load dense weights to
  fine-tune). Returns (state, mesh, seconds, preempted).
  """
  start = time.time()
  mesh, dataset, _, state, step_config = experiment.build(
      config, dataset=dataset, step_overrides=dict(step_overrides or {}), tx=tx,
      init_fn=init_fn)
  if state_fn is not None:
    state = state_fn(state)
  state, _, preempted = experiment.train_population(
      config, workdir, state=state, mesh=mesh, dataset=dataset, step_config=step_config,
      writer=writer, checkpoint_dir=os.path.join(workdir, "checkpoints", variant),
      name=variant)
  return state, mesh, time.time() - start, preempted


def save_variant_predictions(workdir: str, variant: str, logits: np.ndarray,
                             split: Any) -> predictions_lib.Predictions:
  preds = predictions_lib.Predictions(logits=logits, labels=split.labels, ids=split.ids,
                                      groups=split.groups, group_names=split.group_names)
  predictions_lib.save(workdir, variant, preds)
  return preds


def record_training_run(config: Any, workdir: str, result: Any,
                        environment: Mapping[str, Any] | None = None) -> dict[str, Any]:
  """Appends the trade-off record of a plain training run (so sweeps merge into a frontier).

  The variant name is the model and its kwargs; efficiency is measured on member 0.
  """
  kwargs = experiment.model_kwargs(config)
  variant = config.model.name + "".join(f",{k}={v}" for k, v in sorted(kwargs.items()))
  split = result.dataset.test
  accuracy = accuracy_summary(result.predictions.logits, split.labels, split.groups,
                              split.group_names)
  preds = result.predictions.predicted
  members = preds.shape[0]
  churn = float(determinism.churn(preds)) if members > 1 else 0.0
  record = records_lib.make_record(
      study="train", variant=variant, config=config, environment=environment,
      efficiency=measure_member(result.state, split.images[:64]),
      accuracy=accuracy, hidden_costs={"churn": churn, "top1_std": accuracy["top1_std"]},
      members=members, seconds=result.metrics.get("seconds"))
  records_lib.append_records(workdir, record)
  return record
