"""The divide-and-co-train study: a wide model against S members at equal total parameters.

    records = divide_cotrain.run(config, workdir)   # importable from Colab

Variants (PAPERS.md section 1): `wide` (the original model) and, for every S in
`config.study.members` and every flag in `config.study.cotrain`, `divided_s<S>` (S
members of width w/sqrt(S), divided weight decay and dropout, each trained alone on its
own augmented view) and `divided_s<S>_cotrain` (the same plus lambda_t * JS over the
members' predictions). Every variant is one population trained in one compiled program:
R = `config.study.repeats` independent ensembles of S members each (R*S members; the
co-training term acts within each group of S), and R independent wide models. Member i
belongs to ensemble i // S; the members of an ensemble share their data order and see
different views (augmentation, init and dropout seeds vary per member); ensemble r uses
data seed `seeds.data + r`, like wide model r.

Each variant gets a trade-off record: params (ensemble total and per member), FLOPs,
latency (members concurrently over a `members` mesh, one after another, and the wide
model; measured on whatever backend runs it, CPU included, and the record says which),
top-1 of the combined ensemble and of its members, worst-class accuracy, churn between the
members of an ensemble and between independent runs. The report plots accuracy against
parameters and latency and says whether the divided ensemble beat the wide model.

Formulations chosen (PAPERS.md section 1 where it is explicit):
- loss per ensemble: sum_i CE(f_i(x_i), y) + lambda_t * JS, JS = H(mean p) - mean H(p);
  lambda_t = max(weight * epoch / E_w, floor) during the warm-up, held per epoch like the
  reference code (`config.cotraining.per_epoch`); the population's coupling term is the
  sum over its R ensembles, so each ensemble's gradient is its own.
- views: one stochastic transform per member of the same batch (`multi_view` semantics,
  here through the population's per-member augmentation keys).
- widths and regularization: `ensembles.divide` (paper width rules, weight decay
  wd * exp(1/S - 1), dropout p/S, no decay on norms and biases).
- ensemble prediction: `config.ensemble.combine` (default the mean of logits).
- record `members` is S (the deployed model); `population` is R*S.
- "beat": a higher mean top-1 over the R runs and a higher top-1 in most paired runs.
"""

from __future__ import annotations

import copy
import dataclasses
import os
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np
from absl import logging

from tradeoffs import data as data_lib
from tradeoffs import determinism
from tradeoffs import efficiency
from tradeoffs import ensembles
from tradeoffs import environment as environment_lib
from tradeoffs import report as report_lib
from tradeoffs import workdir as workdir_lib
from tradeoffs.studies import common
from tradeoffs.train import checkpoint as checkpoint_lib
from tradeoffs.train import distributed
from tradeoffs.train import experiment
from tradeoffs.train import mesh as mesh_lib
from tradeoffs.train import population as pop_lib
from tradeoffs.train import seeds as seeds_lib

STUDY = "divide_cotrain"
WIDE = "wide"
FIGURES = ("accuracy_vs_params.png", "accuracy_vs_latency.png")


@dataclasses.dataclass(frozen=True)
class Variant:
  """One trained configuration: S members (1 = the wide model), co-trained or not."""
  name: str
  num_members: int
  cotrain: bool
  division: ensembles.Division


def variant_name(num_members: int, cotrain: bool) -> str:
  if num_members == 1:
    return WIDE
  return f"divided_s{num_members}" + ("_cotrain" if cotrain else "")


def _as_tuple(value: Any) -> tuple:
  return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def wide_spec(config: Any) -> ensembles.ModelSpec:
  return ensembles.ModelSpec(config.model.name, experiment.model_kwargs(config))


def make_variants(config: Any) -> list[Variant]:
  """The study's variants, wide first; raises ValueError on S, widths or rules that fail."""
  spec = wide_spec(config)
  study = config.study
  members = _as_tuple(study.members)
  for s in members:
    ensembles.check_num_members(s, name=f"--config.study.members entry {s!r}")
    if s == 1:
      raise ValueError("--config.study.members contains 1: S=1 is the wide model, which the "
                       "study always trains; allowed: integers >= 2")
  if len(set(members)) != len(members):
    raise ValueError(f"--config.study.members={members} repeats a value")
  flags = _as_tuple(study.cotrain)
  if not flags or any(not isinstance(f, (bool, np.bool_)) for f in flags) or (
      len(set(flags)) != len(flags)):
    raise ValueError(f"--config.study.cotrain={flags!r}: expected distinct booleans, e.g. "
                     "(False, True)")
  wd = float(config.optimizer.weight_decay or 0.0)
  variants = [Variant(WIDE, 1, False, ensembles.divide(spec, 1, weight_decay=wd))]
  for s in members:
    try:
      division = ensembles.divide(spec, s, weight_decay=wd, width_rule=study.width_rule,
                                  weight_decay_rule=study.weight_decay_rule)
    except ValueError as e:
      raise ValueError(f"--config.model ({spec.name} {dict(spec.kwargs)}) cannot be divided "
                       f"with --config.study.members S={s} (width_rule="
                       f"{study.width_rule!r}, weight_decay_rule="
                       f"{study.weight_decay_rule!r}): {e}") from e
    for cotrain in sorted(flags):
      variants.append(Variant(variant_name(s, cotrain), s, bool(cotrain), division))
  return variants


def train_config(config: Any, variant: Variant) -> Any:
  """The training config of one variant: member model, R*S members, divided weight decay."""
  c = copy.deepcopy(config)
  c.model.name = variant.division.member.name
  c.model.kwargs = type(config.model.kwargs)(dict(variant.division.member.kwargs))
  c.population.members = int(config.study.repeats) * variant.num_members
  if variant.division.weight_decay is not None:
    c.optimizer.weight_decay = variant.division.weight_decay
  # Data order comes from `group_data_keys`, per ensemble; the rest may vary per member.
  c.seeds.vary = ",".join(s for s in seeds_lib.Seeds.from_config(config.seeds).vary
                          if s != "data")
  return c


def validate_config(config: Any, device_count: int | None = None) -> list[Variant]:
  """Checks everything that can fail before data loading or compilation; returns variants."""
  repeats = config.study.repeats
  if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
    raise ValueError(f"--config.study.repeats={repeats!r}: expected an integer >= 1")
  try:
    ensembles.get_combiner(config.ensemble.combine)
  except ValueError as e:
    raise ValueError(f"--config.ensemble.combine={config.ensemble.combine!r}: {e}") from e
  try:
    ensembles.get_cotraining_loss(config.cotraining.loss)
  except ValueError as e:
    raise ValueError(f"--config.cotraining.loss={config.cotraining.loss!r}: {e}") from e
  for key in ("weight", "warmup_epochs", "floor"):
    if not float(config.cotraining[key]) >= 0:
      raise ValueError(f"--config.cotraining.{key}={config.cotraining[key]!r}: must be >= 0")
  if config.latency.member_loop not in ensembles.MEMBER_LOOPS:
    raise ValueError(f"--config.latency.member_loop={config.latency.member_loop!r} is "
                     f"unknown; valid: {list(ensembles.MEMBER_LOOPS)}")
  sizes = _as_tuple(config.latency.batch_sizes)
  if not sizes or any(isinstance(b, bool) or not isinstance(b, int) or b < 1 for b in sizes):
    raise ValueError(f"--config.latency.batch_sizes={sizes!r}: expected integers >= 1")
  if int(config.latency.repeats) < 1:
    raise ValueError(f"--config.latency.repeats={config.latency.repeats}: must be >= 1")
  variants = make_variants(config)
  for variant in variants:
    experiment.validate(train_config(config, variant), device_count)
  return variants


# ---------------------------------------------------------------------------------------
# Population pieces: ensembles as groups of S consecutive members.


def group_data_keys(state: pop_lib.TrainState, group_size: int,
                    base_seed: int) -> pop_lib.TrainState:
  """Member i draws batches with data seed base_seed + i // group_size: the S members of
  an ensemble see the same images in the same order, ensembles differ."""
  members = state.members
  if members % group_size:
    raise ValueError(f"population of {members} members is not a multiple of S={group_size}")
  seeds = base_seed + np.arange(members) // group_size
  keys = jnp.stack([jax.random.key_data(jax.random.key(int(s))) for s in seeds])
  keys = jax.device_put(keys, state.rngs["data"].sharding)
  return state.replace(rngs={**state.rngs, "data": keys})


def make_coupling_fn(num_members: int, *, loss: str = "js_divergence",
                     weight_schedule: Callable[[Any], jax.Array] | None = None,
                     ) -> Callable[[jax.Array, jax.Array, jax.Array], jax.Array]:
  """coupling_fn(logits [R*S, B, C], labels, step) = lambda_step * sum_r cot(logits_r).

  The population [R*S] is viewed as R ensembles [R, S, B, C]; the co-training loss of
  each is computed on its own members only, so independent ensembles stay independent.
  The total over ensembles is what enters the population loss (and what is logged as
  `coupling_loss`); with `weight_schedule` None the weight is 1.
  """
  num_members = ensembles.check_num_members(num_members, "num_members")
  cot_fn = ensembles.get_cotraining_loss(loss)

  def coupling_fn(logits, labels, step):
    del labels
    if logits.shape[0] % num_members:
      raise ValueError(f"coupling_fn got {logits.shape[0]} members, not a multiple of "
                       f"S={num_members}")
    grouped = logits.reshape(logits.shape[0] // num_members, num_members, *logits.shape[1:])
    per_ensemble = jax.vmap(cot_fn)(grouped)
    weight = 1.0 if weight_schedule is None else weight_schedule(step)
    return weight * jnp.sum(per_ensemble)

  return coupling_fn


def ensemble_logits(member_logits: np.ndarray | jax.Array, num_members: int,
                    mode: str = "mean_logits") -> np.ndarray:
  """Combined scores [R, N, C] of R ensembles from member logits [R*S, N, C]."""
  combiner = ensembles.get_combiner(mode)
  logits = jnp.asarray(member_logits)
  grouped = logits.reshape(logits.shape[0] // num_members, num_members, *logits.shape[1:])
  return np.asarray(jax.vmap(combiner)(grouped))


def member_churn(member_logits: np.ndarray, num_members: int) -> float | None:
  """Mean over ensembles of the pairwise disagreement between its members (None for S=1)."""
  if num_members < 2:
    return None
  preds = np.asarray(member_logits).argmax(-1)
  grouped = preds.reshape(-1, num_members, preds.shape[-1])
  return float(np.mean([float(determinism.churn(g)) for g in grouped]))


def run_churn(predictor_logits: np.ndarray) -> float | None:
  """Churn between R independent predictors [R, N, C] (None for R=1)."""
  if predictor_logits.shape[0] < 2:
    return None
  return float(determinism.churn(np.asarray(predictor_logits).argmax(-1)))


def member_diversity(member_logits: np.ndarray, num_members: int, loss: str) -> float | None:
  """The co-training loss of the trained members on the test set, mean over ensembles."""
  if num_members < 2:
    return None
  cot_fn = ensembles.get_cotraining_loss(loss)
  logits = jnp.asarray(member_logits)
  grouped = logits.reshape(-1, num_members, *logits.shape[1:])
  return float(jnp.mean(jax.vmap(cot_fn)(grouped)))


# ---------------------------------------------------------------------------------------
# Efficiency of one deployed ensemble (the members of ensemble 0).


def median_ms(fn: Callable[..., Any], *args: Any, repeats: int, warmup: int) -> float:
  """Median wall-clock of fn(*args) in ms; fn is not re-jitted, so a Python loop over
  members stays a loop."""
  return efficiency.measure_latency(fn, *args, repeats=repeats, warmup=max(warmup, 1),
                                    jit=False)["latency_ms"]


def ensemble_variables(state: pop_lib.TrainState, num_members: int, group: int = 0) -> Any:
  """Stacked variables [S, ...] of ensemble `group` (params and batch stats), on host."""
  take = lambda x: np.asarray(distributed.to_host(x))[group * num_members:
                                                      (group + 1) * num_members]
  variables = {"params": jax.tree.map(take, state.params)}
  if jax.tree.leaves(state.batch_stats):
    variables["batch_stats"] = jax.tree.map(take, state.batch_stats)
  return variables


def measure_ensemble(state: pop_lib.TrainState, num_members: int, example_images: np.ndarray,
                     *, combine: str = "mean_logits", batch_sizes: Sequence[int] = (1,),
                     repeats: int = 20, warmup: int = 3,
                     member_loop: str = "vmap") -> dict[str, Any]:
  """Efficiency of one ensemble of S members (S = 1: the wide model).

  Theoretical cost (params, FLOPs, bytes, peak bytes) is XLA's cost analysis of the whole
  ensemble forward pass (members vmapped, then combined) at the first batch size. Latency
  at every batch size: `concurrent` (members sharded over a `members` mesh of up to S
  devices; on one device it is the vmapped ensemble), `sequential` (one compiled member
  call after another, then combine), and for S = 1 the model itself. `latency_ms` is the
  concurrent one at the first batch size.
  """
  variables = jax.tree.map(jnp.asarray, ensemble_variables(state, num_members))
  member_apply = lambda v, x: state.apply_fn(v, x, train=False)
  combiner = jax.jit(ensembles.get_combiner(combine))
  one = lambda v: jax.tree.map(lambda leaf: leaf[0], v)

  if num_members == 1:
    ensemble_apply = lambda v, x: member_apply(one(v), x)
  else:
    ensemble_apply = lambda v, x: ensembles.combine(
        jax.vmap(member_apply, in_axes=(0, None))(v, x), combine)
  theory = efficiency.measure(ensemble_apply, variables, example_images,
                              batch_sizes=(batch_sizes[0],), time_it=False)
  mesh = ensembles.members_mesh(num_members)
  method = "shard_map" if member_loop == "map" else "sharded_jit"
  concurrent = ensembles.concurrent_apply_fn(member_apply, mesh, method=method,
                                             member_loop=member_loop)
  sharded = ensembles.shard_members(variables, mesh)
  sequential = ensembles.sequential_apply_fn(member_apply)
  member_list = ensembles.unstack_members(variables, jax.devices()[0])
  single = jax.jit(member_apply)
  timing = dict(repeats=repeats, warmup=warmup)
  per_batch = {}
  for b in dict.fromkeys(int(b) for b in batch_sizes):
    x = efficiency.batch_of(example_images, b)
    row = {}
    if num_members == 1:
      row["wide_ms"] = median_ms(single, member_list[0], x, **timing)
      row["concurrent_ms"] = row["sequential_ms"] = row["wide_ms"]
    else:
      row["concurrent_ms"] = median_ms(lambda p, x: combiner(concurrent(p, x)), sharded, x,
                                       **timing)
      row["sequential_ms"] = median_ms(lambda p, x: combiner(sequential(p, x)), member_list,
                                       x, **timing)
    row["throughput_per_s"] = b / (row["concurrent_ms"] / 1e3)
    per_batch[str(b)] = row
  first, largest = per_batch[str(batch_sizes[0])], str(max(batch_sizes))
  backend = jax.default_backend()
  device = jax.devices()[0]
  how = "the vmapped ensemble on one device" if mesh.size == 1 else "one program"
  return {
      "params": theory["params"],
      "params_per_member": theory["params"] // num_members,  # Members share one shape.
      "nonzero_params": theory["nonzero_params"],
      "weight_bytes": theory["weight_bytes"],
      "flops": theory["flops"],
      "bytes": theory["bytes"],
      "peak_bytes": theory["peak_bytes"],
      "latency_ms": first["concurrent_ms"],
      "latency_concurrent_ms": first["concurrent_ms"],
      "latency_sequential_ms": first["sequential_ms"],
      "latency_batch_size": int(batch_sizes[0]),
      "batch_size": int(largest),
      "throughput_per_s": per_batch[largest]["throughput_per_s"],
      "per_batch": per_batch,
      "concurrent_devices": int(mesh.size),
      "backend": backend,
      "device_kind": getattr(device, "device_kind", str(device)),
      "notes": {
          "flops": "XLA cost analysis of the whole ensemble forward pass (members + "
                   "combine) at batch " + str(batch_sizes[0]) + "; multiply-add = 2 FLOPs",
          "latency_ms": f"concurrent: members sharded over {mesh.size} {backend} device(s) "
                        f"({how}), "
                        f"median of {repeats} calls after warm-up, batch {batch_sizes[0]}; "
                        + ("measured on CPU: simulated host devices share the host's cores, "
                           "so this is not GPU-per-member concurrency"
                           if backend == "cpu" else f"measured on {backend}"),
          "latency_sequential_ms": "members one after another (a Python loop of one "
                                   "compiled member), then combine",
      },
  }


# ---------------------------------------------------------------------------------------
# The study.


def _cot_schedule(config: Any, num_train: int) -> Callable[[Any], jax.Array]:
  per_epoch = data_lib.steps_per_epoch(num_train, int(config.train.batch_size))
  cot = config.cotraining
  return ensembles.cotraining_schedule(per_epoch, weight=float(cot.weight),
                                       warmup_epochs=float(cot.warmup_epochs),
                                       floor=float(cot.floor), per_epoch=bool(cot.per_epoch))


def evaluate_variant(config: Any, variant: Variant, member_logits: np.ndarray, split: Any,
                     eff: dict[str, Any], *, seconds: float, train_metrics: dict[str, Any],
                     environment: dict[str, Any]) -> dict[str, Any]:
  """The trade-off record of a variant from its member logits [R*S, N, C]."""
  s = variant.num_members
  combined = ensemble_logits(member_logits, s, config.ensemble.combine)
  acc = common.accuracy_summary(combined, split.labels, split.groups, split.group_names)
  members_acc = common.accuracy_summary(member_logits, split.labels, split.groups,
                                        split.group_names)
  acc["per_ensemble_top1"] = acc.pop("per_member_top1")
  acc["member_top1"] = members_acc["top1"]
  acc["member_top1_std"] = members_acc["top1_std"]
  acc["per_member_top1"] = members_acc["per_member_top1"]
  acc["member_worst_class"] = members_acc["worst_class"]
  hidden = {
      "churn": run_churn(combined),
      "member_churn": member_churn(member_logits, s),
      "member_disagreement_js": member_diversity(member_logits, s, "js_divergence"),
      "per_class_std": acc["per_class_std"],
  }
  if "group_gap" in acc:
    hidden["group_gap"] = acc["group_gap"]
  division = variant.division
  seeds = seeds_lib.Seeds.from_config(train_config(config, variant).seeds)
  return report_lib.make_record(
      study=STUDY, variant=variant.name, efficiency=eff, accuracy=acc, hidden_costs=hidden,
      members=s, config=config, environment=environment,
      num_members=s, cotrain=variant.cotrain, repeats=int(config.study.repeats),
      population=int(config.study.repeats) * s, combine=config.ensemble.combine,
      model={"name": division.member.name, "kwargs": dict(division.member.kwargs)},
      wide_model={"name": division.wide.name, "kwargs": dict(division.wide.kwargs)},
      weight_decay=division.weight_decay,
      seeds={**seeds_lib.describe(seeds, int(config.study.repeats) * s),
             "data": [int(config.seeds.data) + r for r in range(int(config.study.repeats))
                      for _ in range(s)]},
      train_metrics=train_metrics, seconds=seconds)


def train_and_record(config: Any, workdir: str, variant: Variant, *, dataset: Any,
                     writer: Any, environment: dict[str, Any]) -> dict[str, Any] | None:
  """Trains one variant (resumable), saves its predictions, returns its record (None when
  preempted)."""
  s = variant.num_members
  tconfig = train_config(config, variant)
  overrides = {}
  if variant.cotrain:
    overrides["coupling_fn"] = make_coupling_fn(
        s, loss=config.cotraining.loss,
        weight_schedule=_cot_schedule(config, dataset.train.labels.shape[0]))
  logging.info("[%s] training %d x %d members of %s %s", variant.name,
               int(config.study.repeats), s, variant.division.member.name,
               dict(variant.division.member.kwargs))
  state, mesh, seconds, preempted = common.train_variant(
      tconfig, workdir, variant.name, dataset=dataset, writer=writer,
      step_overrides=overrides,
      state_fn=lambda st: group_data_keys(st, s, int(config.seeds.data)))
  if preempted:
    return None
  eval_batch = int(config.eval.batch_size)
  member_logits, _ = experiment.evaluate(state, dataset.test, mesh, eval_batch)
  common.save_variant_predictions(workdir, variant.name, member_logits, dataset.test)
  common.save_variant_predictions(workdir, f"{variant.name}_ensemble",
                                  ensemble_logits(member_logits, s, config.ensemble.combine),
                                  dataset.test)
  lat = config.latency
  eff = measure_ensemble(state, s, dataset.test.images[:max(lat.batch_sizes)],
                         combine=config.ensemble.combine,
                         batch_sizes=_as_tuple(lat.batch_sizes), repeats=int(lat.repeats),
                         warmup=int(lat.warmup), member_loop=lat.member_loop)
  train_metrics = _last_train_metrics(workdir, variant.name)
  return evaluate_variant(config, variant, member_logits, dataset.test, eff, seconds=seconds,
                          train_metrics=train_metrics, environment=environment)


def _last_train_metrics(workdir: str, name: str) -> dict[str, Any]:
  rows = workdir_lib.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  prefix = f"{name}/"
  out: dict[str, Any] = {}
  for row in rows:
    values = {k[len(prefix):]: v for k, v in row.items() if k.startswith(prefix)}
    if values:
      out = {"step": row["step"], **values}
  return out


def run(config: Any, workdir: str, environment: dict[str, Any] | None = None
        ) -> list[dict[str, Any]] | None:
  """Runs (or resumes) the study into `workdir`; returns all records (None if preempted)."""
  distributed.maybe_initialize()
  checkpoint_lib.quiet_orbax()
  variants = validate_config(config)  # Bad input fails here, before anything compiles.
  if environment is None:
    environment = environment_lib.capture(mesh_lib.make_mesh(1))
    environment["seeds"] = {"base": config.seeds.to_dict() if hasattr(config.seeds, "to_dict")
                            else dict(config.seeds)}
  workdir_lib.prepare(workdir, config, environment)
  done = common.recorded_variants(workdir)
  dataset = experiment.load_dataset(config)
  writer = workdir_lib.MetricWriter(workdir)
  try:
    for variant in variants:
      if variant.name in done:
        logging.info("[%s] already recorded; skipping", variant.name)
        continue
      record = train_and_record(config, workdir, variant, dataset=dataset, writer=writer,
                                environment=environment)
      if record is None:
        logging.warning("preempted during %s; rerun the same command to resume", variant.name)
        return None
      report_lib.append_records(workdir, [record])
      logging.info("[%s] ensemble top-1 %.4f (members %.4f), %s params, latency %.3f ms "
                   "concurrent / %.3f ms sequential", variant.name,
                   record["accuracy"]["top1"], record["accuracy"]["member_top1"],
                   f"{record['efficiency']['params']:,}", record["efficiency"]["latency_ms"],
                   record["efficiency"]["latency_sequential_ms"])
  finally:
    writer.close()
  records = [r for r in workdir_lib.read_jsonl(os.path.join(workdir, "records.jsonl"))
             if r.get("study") == STUDY]
  write_study_report(workdir, records)
  return records


# ---------------------------------------------------------------------------------------
# Report.


def comparison(records: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
  """Each divided variant against the wide model over the R paired runs.

  Run r of a variant and of the wide model share the data order (seed data + r), so they
  are compared pairwise. `outcome` is "beat" when the mean top-1 is higher and the
  ensemble is higher in more than half of the paired runs, "lost" in the mirror case,
  and "no clear difference" otherwise (including R = 1 ties).
  """
  by_name = {r["variant"]: r for r in records}
  wide = by_name.get(WIDE)
  if wide is None:
    return []
  wide_runs = np.asarray(wide["accuracy"]["per_ensemble_top1"])
  out = []
  for r in records:
    if r["variant"] == WIDE:
      continue
    runs = np.asarray(r["accuracy"]["per_ensemble_top1"])
    n = min(len(runs), len(wide_runs))
    diff = float(runs.mean() - wide_runs.mean())
    wins = int(np.sum(runs[:n] > wide_runs[:n]))
    losses = int(np.sum(runs[:n] < wide_runs[:n]))
    if diff > 0 and wins > n / 2:
      outcome = "beat"
    elif diff < 0 and losses > n / 2:
      outcome = "lost"
    else:
      outcome = "no clear difference"
    out.append({
        "variant": r["variant"], "top1": float(runs.mean()), "top1_std": float(runs.std()),
        "wide_top1": float(wide_runs.mean()), "wide_top1_std": float(wide_runs.std()),
        "difference": diff, "wins": wins, "losses": losses, "paired": n,
        "worst_class": r["accuracy"]["worst_class"],
        "wide_worst_class": wide["accuracy"]["worst_class"],
        "param_ratio": r["efficiency"]["params"] / wide["efficiency"]["params"],
        "outcome": outcome,
    })
  return out


def _verdict_lines(records: Sequence[dict[str, Any]]) -> list[str]:
  rows = comparison(records)
  if not rows:
    return ["No wide-model record: nothing to compare against."]
  wide = next(r for r in records if r["variant"] == WIDE)
  seeds = wide.get("seeds", {})
  lines: list[str] = []
  winners = [row for row in rows if row["outcome"] == "beat"]
  best = max(rows, key=lambda row: row["difference"])
  if winners:
    names = ", ".join(row["variant"] for row in winners)
    lines.append(f"Verdict: here, the divided ensemble beat the wide model ({names}); best is "
                 f"{best['variant']} with top-1 {best['top1']:.4f} ± {best['top1_std']:.4f} "
                 f"against {best['wide_top1']:.4f} ± {best['wide_top1_std']:.4f} "
                 f"({100 * best['difference']:+.2f} points; higher in {best['wins']} of "
                 f"{best['paired']} paired runs).")
  else:
    lines.append(f"Verdict: here, no divided ensemble clearly beat the wide model (wide top-1 "
                 f"{best['wide_top1']:.4f} ± {best['wide_top1_std']:.4f}); the best divided "
                 f"variant is {best['variant']} at {best['top1']:.4f} ± "
                 f"{best['top1_std']:.4f} ({100 * best['difference']:+.2f} points, higher in "
                 f"{best['wins']} of {best['paired']} paired runs).")
  for row in rows:
    lines.append(f"{row['variant']}: {row['outcome']} — top-1 {row['top1']:.4f} ± "
                 f"{row['top1_std']:.4f} vs wide {row['wide_top1']:.4f} ± "
                 f"{row['wide_top1_std']:.4f} ({100 * row['difference']:+.2f} points; higher "
                 f"in {row['wins']}, lower in {row['losses']} of {row['paired']} paired "
                 f"runs); worst class {row['worst_class']:.4f} vs {row['wide_worst_class']:.4f}; "
                 f"{row['param_ratio']:.2f}x the wide model's parameters.")
  lines.append(f"± is the standard deviation over R={wide.get('repeats')} independent runs "
               f"(run r: data seed {seeds.get('data', ['?'])[0]}+r; init seeds "
               f"{seeds.get('init')} for the wide models, per-member init/augment/dropout "
               "seeds in each record). \"beat\" needs a higher mean and a win in most paired "
               "runs; with few runs and a small test set, differences of a few tenths of a "
               "point are within run-to-run noise.")
  eff = wide["efficiency"]
  lines.append(f"Latency is measured on {eff.get('backend')} ({eff.get('device_kind')}), "
               f"batch {eff.get('latency_batch_size')}; concurrent members ran on up to "
               f"{max(r['efficiency'].get('concurrent_devices', 1) for r in records)} "
               "device(s)." + (" On CPU, simulated devices share the same cores, so "
                               "concurrency cannot show the paper's one-GPU-per-member "
                               "speed-up." if eff.get("backend") == "cpu" else ""))
  return lines


def _summary_table(records: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
  headers = ["Variant", "S", "Co-train", "Params (total)", "Params/member", "FLOPs",
             "Latency ms concurrent", "Latency ms sequential", "Ensemble top-1",
             "Member top-1", "Worst class", "Member churn", "Run churn"]
  fmt = lambda v, f: "–" if v is None else format(v, f)
  rows = []
  for r in records:
    e, a, h = r["efficiency"], r["accuracy"], r["hidden_costs"]
    rows.append([
        r["variant"], str(r["num_members"]), "yes" if r["cotrain"] else "no",
        f"{e['params']:,}", f"{e['params_per_member']:,}", fmt(e.get("flops"), ",.0f"),
        fmt(e["latency_concurrent_ms"], ".3f"), fmt(e["latency_sequential_ms"], ".3f"),
        f"{a['top1']:.4f} ± {a['top1_std']:.4f}",
        f"{a['member_top1']:.4f} ± {a['member_top1_std']:.4f}", f"{a['worst_class']:.4f}",
        fmt(h.get("member_churn"), ".4f"), fmt(h.get("churn"), ".4f")])
  return headers, rows


def plot_study(workdir: str, records: Sequence[dict[str, Any]]) -> list[str]:
  """accuracy_vs_params.png and accuracy_vs_latency.png: ensemble top-1 (± std over runs),
  member top-1 (hollow), and for latency both concurrent (filled) and sequential (x)."""
  import matplotlib
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt

  paths = []
  colors = {r["variant"]: plt.get_cmap("tab10")(i % 10) for i, r in enumerate(records)}
  for name, x_key, xlabel in zip(FIGURES, ("params", "latency_ms"),
                                 ("parameters (total)", "latency ms")):
    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    for r in records:
      e, a, c = r["efficiency"], r["accuracy"], colors[r["variant"]]
      x = e[x_key]
      ax.errorbar([x], [a["top1"]], yerr=[a["top1_std"]], fmt="o", color=c, capsize=3,
                  label=f"{r['variant']} (ensemble)")
      ax.scatter([x], [a["member_top1"]], facecolors="none", edgecolors=[c], s=40)
      if x_key == "latency_ms" and r["num_members"] > 1:
        ax.scatter([e["latency_sequential_ms"]], [a["top1"]], marker="x", color=c, s=40)
        ax.plot([x, e["latency_sequential_ms"]], [a["top1"]] * 2, ":", color=c, lw=1)
    ax.set_xlabel(xlabel + (f" ({records[0]['efficiency'].get('backend')}, batch "
                            f"{records[0]['efficiency'].get('latency_batch_size')}; "
                            "filled: concurrent, x: sequential)" if x_key == "latency_ms"
                            else ""), fontsize=8)
    ax.set_ylabel("test top-1 (↑ better); hollow: mean member")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower right")
    ax.set_title(f"Divided ensembles vs the wide model (R={records[0].get('repeats')} runs)",
                 fontsize=10)
    fig.tight_layout()
    path = os.path.join(workdir, name)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    paths.append(path)
  return paths


def write_study_report(workdir: str, records: Sequence[dict[str, Any]]) -> dict[str, Any]:
  """report.md/html with the shared frontier plots, led by the study's section: whether
  dividing beat the wide model, the table, accuracy against parameters and latency."""
  records = sorted(records, key=lambda r: (r["num_members"], r["cotrain"]))
  figures = plot_study(workdir, records) if workdir_lib.is_writer() else []
  blocks = [("h2", "Divided vs wide (this run)"),
            *[("p", line) for line in _verdict_lines(records)],
            ("table", *_summary_table(records)),
            ("p", "Params and FLOPs are the whole ensemble's; top-1 is the combined prediction "
                  f"({records[0].get('combine')}); member top-1 is the mean single member. "
                  "Member churn: disagreement between the members of one ensemble; run churn: "
                  "between independent runs of the same variant."),
            *[("img", os.path.basename(path), os.path.basename(path)[:-4].replace("_", " "))
              for path in figures]]
  out = report_lib.write_report(
      workdir, records, title="Divide and co-train: S small members vs one wide model",
      axes=("efficiency.params", "efficiency.latency_ms", "efficiency.flops"),
      metrics=("accuracy.top1", "accuracy.worst_class", "hidden_costs.churn",
               "hidden_costs.member_churn"),
      reference=WIDE, lead_blocks=blocks)
  out["figures"] = list(out["figures"]) + figures
  return out
