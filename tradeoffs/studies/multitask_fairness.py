"""Multi-task fairness: what fairness costs in accuracy when tasks share a trunk, and
whether routing the fairness gradients (MTA-F) buys a better trade-off (Wang et al., KDD
2021; PAPERS.md section 4).

Variants: the vanilla multi-task model (no fairness loss: the reference every relative
metric divides by), then every fairness loss (MMD, FPR-gap surrogate, correlation) ×
routing (baseline: the same loss backpropagated everywhere; MTA-F: head-exclusive part to
the heads, the rest to the trunk) × λ. Each variant is a population of seeds (member i:
init and data-order seed base + i, the same seeds in every variant, so comparisons are
paired), trained by `tradeoffs.fairness.multitask.train_population` (a jitted scan,
vmapped over seeds; see its module docstring for why not `Context.train`: the routed step
needs two gradients per step, which a `StepExtension` cannot express, and a run takes
seconds, so the runner's variant-level skip/resume suffices).

Scored on the test split, per task: error and FPR gap (group 1 − group 0) at the threshold
that predicts the training positive rate (the reference's rule), and the fairness losses'
values on the test negatives; ARFG = (1/T) Σ_t |FPR gap_t| / |FPR gap_t^vanilla| and
ARE = (1/T) Σ_t error_t / error_t^vanilla (the vanilla population's mean in the
denominator, floored at the test split's resolution: one false positive in the group with
fewer negatives, one example), per member, so each has an interval over seeds. Verdicts: every variant
against vanilla on ARFG and ARE, and MTA-F against baseline routing at the same loss and
λ, paired t over seeds, Holm within each family.
"""

from __future__ import annotations

import math
import time
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from tradeoffs import models
from tradeoffs import stats
from tradeoffs import train as train_lib
from tradeoffs.data import multitask as data_lib
from tradeoffs.fairness import multitask as mtaf
from tradeoffs.report import figures
from tradeoffs.report import format as fmt
from tradeoffs.report import verdict as verdict_lib
from tradeoffs.studies import base

NAME = "multitask_fairness"
TITLE = "Multi-task fairness: what a fair trunk costs, and whether MTA-F routing helps"
REFERENCE = "vanilla"
LOSS_LABELS = {"mmd": "MMD", "fpr_gap": "FPR-gap surrogate", "corr": "correlation"}


# ---------------------------------------------------------------------------------------
# Plan.


def _fail(key: str, value: Any, allowed: str) -> None:
  raise ValueError(f"--config.study.{key}={value!r}: expected {allowed}")


def validate(config: Any) -> tuple[tuple[str, ...], str]:
  if "study" not in config:
    raise ValueError("config has no 'study' section; use "
                     "experiments/configs/multitask_fairness.py")
  s = config.study
  if s.dataset not in data_lib.TASK_DATASETS:
    _fail("dataset", s.dataset, f"one of {sorted(data_lib.TASK_DATASETS)}")
  spec = data_lib.TASK_DATASETS[s.dataset]
  tasks = base.as_tuple(s.tasks) or spec.tasks[:2]
  if len(tasks) < 2 or len(set(tasks)) != len(tasks) or any(t not in spec.tasks
                                                            for t in tasks):
    _fail("tasks", tasks, f"at least 2 distinct tasks of {s.dataset!r}: {list(spec.tasks)}")
  sensitive = s.sensitive or spec.sensitive[0]
  if sensitive not in spec.sensitive:
    _fail("sensitive", s.sensitive, f"a sensitive attribute of {s.dataset!r}: "
                                    f"{list(spec.sensitive)}")
  losses = base.as_tuple(s.losses)
  if not losses or len(set(losses)) != len(losses) or any(
      l not in mtaf.FAIRNESS_LOSSES for l in losses):
    _fail("losses", losses, f"distinct names from {list(mtaf.FAIRNESS_LOSSES)}")
  routings = base.as_tuple(s.routings)
  if not routings or len(set(routings)) != len(routings) or any(
      r not in mtaf.ROUTINGS for r in routings):
    _fail("routings", routings, f"distinct names from {list(mtaf.ROUTINGS)}")
  lambdas = base.as_tuple(s.lambdas)
  if not lambdas:
    _fail("lambdas", lambdas, "a non-empty tuple of numbers > 0 (the λ sweep)")
  for lam in lambdas:
    base.check_number(lam, "study.lambdas", 0.0, low_open=True)
  if len({float(v) for v in lambdas}) != len(lambdas):
    _fail("lambdas", lambdas, "distinct values")
  base.check_number(s.head_lambda, "study.head_lambda", 0.0)
  base.check_number(s.bandwidth, "study.bandwidth", 0.0, low_open=True)
  weights = base.as_tuple(s.task_weights)
  if weights:
    if len(weights) != len(tasks):
      _fail("task_weights", weights, f"{len(tasks)} weights, one per task (or () = uniform)")
    for w in weights:
      base.check_number(w, "study.task_weights", 0.0, 1.0)
    if abs(sum(float(w) for w in weights) - 1.0) > 1e-6:
      _fail("task_weights", weights, "weights summing to 1")
  base.check_number(s.members, "study.members", 2, integer=True)
  base.check_number(s.steps, "study.steps", 1, integer=True)
  base.check_number(s.batch_size, "study.batch_size", 2, integer=True)
  models.get("multitask_mlp", num_classes=2, num_tasks=len(tasks), trunk=tuple(s.trunk),
             towers=tuple(s.towers))
  train_lib.make_optimizer(config.optimizer, int(s.steps))
  return tuple(tasks), sensitive


def variant_name(loss: str, routing: str, lam: float) -> str:
  return f"{loss}_{routing}_lam{float(lam):g}"


def plan(config: Any) -> list[base.Variant]:
  """Vanilla first (the reference), then loss × routing × λ."""
  tasks, sensitive = validate(config)
  s = config.study
  common = {"dataset": s.dataset, "tasks": list(tasks), "sensitive": sensitive,
            "members": int(s.members), "steps": int(s.steps)}
  out = [base.Variant(REFERENCE, "vanilla_multitask", {"loss": "none", **common})]
  for loss in base.as_tuple(s.losses):
    for routing in base.as_tuple(s.routings):
      for lam in sorted(float(v) for v in base.as_tuple(s.lambdas)):
        out.append(base.Variant(
            variant_name(loss, routing, lam), "mtaf" if routing == "mtaf" else "fair_multitask",
            {"loss": loss, "routing": routing, "lam": lam,
             "head_lambda": float(s.head_lambda), **common}, REFERENCE))
  return out


# ---------------------------------------------------------------------------------------
# Produce.


def _dataset(ctx: Any, knobs: Mapping[str, Any]) -> data_lib.TaskDataset:
  key = f"tasks:{knobs['dataset']}:{','.join(knobs['tasks'])}:{knobs['sensitive']}"
  if key not in ctx.cache:
    data_dir = ctx.config.study.get("data_dir") or None
    ctx.cache[key] = data_lib.load(knobs["dataset"], knobs["tasks"], knobs["sensitive"],
                                   data_dir=data_dir)
  return ctx.cache[key]


def objective_of(knobs: Mapping[str, Any], study: Any) -> mtaf.Objective:
  weights = base.as_tuple(study.task_weights)
  return mtaf.Objective(loss=knobs["loss"], lam=float(knobs.get("lam", 0.0)),
                        head_lambda=float(knobs.get("head_lambda", 1.0)),
                        task_weights=tuple(float(w) for w in weights) or None,
                        routing=knobs.get("routing", "baseline"),
                        bandwidth=float(study.bandwidth))


MAX_FAIRNESS_EXAMPLES = 2048


def fairness_values(scores: np.ndarray, labels: np.ndarray, groups: np.ndarray,
                    bandwidth: float, max_examples: int = MAX_FAIRNESS_EXAMPLES
                    ) -> dict[str, list[list[float]]]:
  """Each fairness loss on the test negatives, [members][T]. MMD is quadratic in the
  examples, so a split larger than `max_examples` (Adult's 16,281) is evaluated on a fixed
  subsample (`default_rng(0)`, the same examples for every variant)."""
  if len(labels) > max_examples:
    keep = np.sort(np.random.default_rng(0).choice(len(labels), max_examples,
                                                   replace=False))
    scores, labels, groups = scores[:, keep], labels[keep], groups[keep]
  out = {}
  for name, fn in mtaf.FAIRNESS_LOSSES.items():
    values = [[float(fn(scores[m, :, t], groups, (labels[:, t] == 0).astype(np.float32),
                        bandwidth))
               for t in range(labels.shape[1])] for m in range(scores.shape[0])]
    out[name] = values
  return out


def produce(ctx: Any, variant: base.Variant) -> base.Outcome:
  k = variant.knobs
  s = ctx.config.study
  data = _dataset(ctx, k)
  num_tasks = data.num_tasks
  net = models.get("multitask_mlp", num_classes=2, num_tasks=num_tasks,
                   trunk=tuple(s.trunk), towers=tuple(s.towers))
  seeds = train_lib.Seeds.from_config(ctx.config.seeds)
  keys = seeds.member_keys(int(k["members"]))
  tx = train_lib.make_optimizer(ctx.config.optimizer, int(k["steps"]))
  train = mtaf.TaskData(data.train.inputs, data.train.labels, data.train.groups)
  apply_fn = lambda p, x: net.apply({"params": p}, x)  # noqa: E731
  start = time.time()
  population = mtaf.train_population(
      lambda key, x: net.init(key, x)["params"], apply_fn, tx, objective_of(k, s), train,
      init_keys=keys["init"], data_keys=keys["data"], steps=int(k["steps"]),
      batch_size=min(int(s.batch_size), len(data.train)))
  scores = mtaf.predict_scores(apply_fn, population.params, data.test.inputs)
  seconds = time.time() - start
  metrics = mtaf.task_metrics(scores, data.test.labels, data.test.groups,
                              data.positive_rates())
  accuracy: dict[str, Any] = {
      "per_member_error": metrics["error"].tolist(),
      "per_member_fpr_gap": metrics["fpr_gap"].tolist(),
      "mean_accuracy": float(1.0 - metrics["error"].mean()),
      "fairness_losses": fairness_values(scores, data.test.labels, data.test.groups,
                                         float(s.bandwidth))}
  for t, task in enumerate(data.task_names):
    accuracy[f"{task}_accuracy"] = float(1.0 - metrics["error"][:, t].mean())
    accuracy[f"{task}_abs_fpr_gap"] = float(metrics["abs_fpr_gap"][:, t].mean())
  if variant.name == REFERENCE:
    ref_error, ref_gap = metrics["error"].mean(0), metrics["abs_fpr_gap"].mean(0)
  else:
    ref = ctx.records[REFERENCE]["accuracy"]
    ref_error = np.mean(ref["per_member_error"], axis=0)
    ref_gap = np.abs(np.asarray(ref["per_member_fpr_gap"])).mean(0)
  # Denominators floored at the measurement resolution: a vanilla gap (or error) of
  # exactly 0 on this test split means "below one example", not "infinitely fair".
  gap_floor = mtaf.gap_resolution(data.test.labels, data.test.groups)
  error_floor = 1.0 / len(data.test)
  accuracy["per_member_arfg"] = mtaf.arfg(metrics["abs_fpr_gap"], ref_gap,
                                          gap_floor).tolist()
  accuracy["per_member_are"] = mtaf.are(metrics["error"], ref_error, error_floor).tolist()
  accuracy["arfg"] = float(np.mean(accuracy["per_member_arfg"]))
  accuracy["are"] = float(np.mean(accuracy["per_member_are"]))
  params = jax.tree.map(lambda x: x[0], population.params)
  ce = np.asarray(population.metrics["cross_entropy"])
  tail = max(1, ce.shape[1] // 10)  # The last 10% of steps, averaged over members.
  final = {key: np.asarray(population.metrics[key])[:, -tail:].mean(axis=(0, 1)).tolist()
           for key in ("full", "exclusive")}
  fields = {"dataset": data.name, "tasks": list(data.task_names),
            "sensitive": data.group_name, "num_features": int(data.train.inputs.shape[1]),
            "train_examples": len(data.train), "test_examples": len(data.test),
            "test_group_counts": np.bincount(data.test.groups, minlength=2).tolist(),
            "positive_rates": data.positive_rates().tolist(),
            "vanilla_abs_fpr_gap": np.asarray(ref_gap).tolist(),
            "vanilla_error": np.asarray(ref_error).tolist(),
            "gap_floor": gap_floor.tolist(), "error_floor": error_floor,
            "final_train_cross_entropy": ce[:, -tail:].mean(axis=(0, 1)).tolist(),
            # Training batches' Full_t and Excl_t (= λ_head · F on exclusive negatives):
            # under MTA-F the trunk minimises Full_t − Excl_t, which rewards a larger Excl_t.
            "final_train_full": final["full"], "final_train_exclusive": final["exclusive"],
            "train_seconds": seconds,
            "seeds": {src: v.tolist() for src, v in
                      seeds.member_seeds(int(k["members"])).items()}}
  efficiency = {"params": models.param_count(params)}
  return base.Outcome(members=int(k["members"]), efficiency=efficiency, logits=None,
                      accuracy=accuracy, study_fields=fields)


# ---------------------------------------------------------------------------------------
# The report.


def _values(record: Mapping[str, Any], key: str) -> np.ndarray | None:
  v = (record.get("accuracy") or {}).get(key)
  return None if v is None else np.asarray(v, np.float64)


def _cell(values: Any, scale: float = 1.0, digits: int = 3) -> str:
  values = np.asarray(values, np.float64).reshape(-1)
  if values.size == 0 or not np.isfinite(values).all():
    return fmt.DASH
  mean, low, high = stats.t_interval(values)
  if not math.isfinite(low):
    return f"{scale * mean:.{digits}f}"
  return f"{scale * mean:.{digits}f} [{scale * low:.{digits}f}, {scale * high:.{digits}f}]"


def _label(record: Mapping[str, Any]) -> str:
  k = record.get("knobs") or {}
  if k.get("loss", "none") == "none":
    return "vanilla"
  return f"{LOSS_LABELS.get(k['loss'], k['loss'])}, {k.get('routing')}"


def results_table(records: Sequence[Mapping[str, Any]], tasks: Sequence[str]):
  headers = (["Variant", "λ"]
             + [f"{t}: error ×100" for t in tasks] + [f"{t}: |FPR gap| ×100" for t in tasks]
             + ["ARE", "ARFG"])
  rows = []
  for r in records:
    error, gap = _values(r, "per_member_error"), _values(r, "per_member_fpr_gap")
    lam = (r.get("knobs") or {}).get("lam")
    rows.append([r["variant"], fmt.DASH if lam is None else f"{lam:g}"]
                + [_cell(error[:, t], 100, 1) for t in range(len(tasks))]
                + [_cell(np.abs(gap[:, t]), 100, 1) for t in range(len(tasks))]
                + [_cell(_values(r, "per_member_are")), _cell(_values(r, "per_member_arfg"))])
  return ("table", headers, rows)


def fairness_loss_table(records: Sequence[Mapping[str, Any]], tasks: Sequence[str]):
  headers = ["Variant"] + [f"{t}: {LOSS_LABELS[n]}" for n in mtaf.FAIRNESS_LOSSES
                           for t in tasks]
  rows = []
  for r in records:
    values = (r.get("accuracy") or {}).get("fairness_losses") or {}
    row = [r["variant"]]
    for n in mtaf.FAIRNESS_LOSSES:
      v = np.asarray(values.get(n, []), np.float64)
      row += [_cell(v[:, t]) if v.ndim == 2 else fmt.DASH for t in range(len(tasks))]
    rows.append(row)
  return ("table", headers, rows)


def training_terms_table(records: Sequence[Mapping[str, Any]], tasks: Sequence[str]):
  headers = (["Variant"] + [f"{t}: Full" for t in tasks] + [f"{t}: Excl" for t in tasks])
  rows = []
  for r in records:
    f = r.get("study_fields") or {}
    full, excl = f.get("final_train_full"), f.get("final_train_exclusive")
    if (r.get("knobs") or {}).get("loss", "none") == "none":
      full = excl = None  # Vanilla trains without a fairness loss: nothing was computed.
    rows.append([r["variant"]]
                + [fmt.number(v) for v in (full or [None] * len(tasks))]
                + [fmt.number(v) for v in (excl or [None] * len(tasks))])
  return ("table", headers, rows)


def vs_vanilla_claims(records: Sequence[Mapping[str, Any]]) -> list[stats.Comparison]:
  """Every fairness variant against vanilla on ARFG and ARE (paired over seeds)."""
  ref = next((r for r in records if r["variant"] == REFERENCE), None)
  if ref is None:
    return []
  claims = []
  for r in records:
    if r["variant"] == REFERENCE:
      continue
    for key, label in (("per_member_arfg", "ARFG"), ("per_member_are", "ARE")):
      a, b = _values(r, key), _values(ref, key)
      if a is not None and b is not None and len(a) == len(b) >= 2:
        claims.append(stats.compare(a, b, paired=True, claim=f"{r['variant']}: {label}"))
  return stats.family(claims)


def routing_claims(records: Sequence[Mapping[str, Any]]) -> list[stats.Comparison]:
  """MTA-F against baseline routing at the same loss and λ, on ARFG and ARE."""
  by_key = {}
  for r in records:
    k = r.get("knobs") or {}
    if k.get("loss", "none") != "none":
      by_key[(k["loss"], float(k["lam"]), k["routing"])] = r
  claims = []
  for (loss, lam, routing), r in sorted(by_key.items()):
    other = by_key.get((loss, lam, "baseline"))
    if routing != "mtaf" or other is None:
      continue
    for key, label in (("per_member_arfg", "ARFG"), ("per_member_are", "ARE")):
      a, b = _values(r, key), _values(other, key)
      if a is not None and b is not None and len(a) == len(b) >= 2:
        claims.append(stats.compare(
            a, b, paired=True, claim=f"{LOSS_LABELS[loss]} λ={lam:g}: MTA-F − baseline {label}"))
  return stats.family(claims)


def points(records: Sequence[Mapping[str, Any]]) -> list[tuple[str, float, float]]:
  out = []
  for r in records:
    are, arfg = _values(r, "per_member_are"), _values(r, "per_member_arfg")
    if are is not None and arfg is not None:
      out.append((r["variant"], float(are.mean()), float(arfg.mean())))
  return out


def plot_pareto(records: Sequence[Mapping[str, Any]]):
  """ARFG against ARE per variant (means, 95% t intervals over seeds), one colour per loss
  and routing, λ labelled; the Pareto front as a dashed line; vanilla at (1, 1)."""
  pts = points(records)
  if len(pts) < 2:
    return None
  fig, (ax,) = figures.new(1, width=7.5, height=5.5)
  labels = sorted({_label(r) for r in records})
  for j, label in enumerate(labels):
    rs = [r for r in records if _label(r) == label]
    rs.sort(key=lambda r: (r.get("knobs") or {}).get("lam", 0.0))
    xs, ys, ex, ey = [], [], [[], []], [[], []]
    for r in rs:
      for values, lst, err in ((_values(r, "per_member_are"), xs, ex),
                               (_values(r, "per_member_arfg"), ys, ey)):
        mean, low, high = stats.t_interval(values)
        lst.append(mean)
        err[0].append(mean - low if math.isfinite(low) else 0.0)
        err[1].append(high - mean if math.isfinite(high) else 0.0)
    marker = "*" if label == "vanilla" else ("o" if "mtaf" in label else "s")
    ax.errorbar(xs, ys, xerr=ex, yerr=ey, marker=marker, ms=9 if marker == "*" else 6,
                capsize=2, color=figures.color(j), label=label,
                ls="-" if label != "vanilla" else "none", lw=0.8)
    for r, x, y in zip(rs, xs, ys):
      lam = (r.get("knobs") or {}).get("lam")
      if lam is not None:
        ax.annotate(f"λ={lam:g}", (x, y), fontsize=7, xytext=(3, 3),
                    textcoords="offset points")
  front = mtaf.pareto_front([(p[1], p[2]) for p in pts])
  ax.plot([pts[i][1] for i in front], [pts[i][2] for i in front], "k--", lw=1,
          label="Pareto front")
  ax.set_xlabel("ARE: average relative error vs vanilla (← better)")
  ax.set_ylabel("ARFG: average relative |FPR gap| vs vanilla (↓ better)")
  ax.legend(fontsize=7)
  return fig


def sections(records: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[Any, ...]]:
  records = list(records)
  ref = next((r for r in records if r.get("variant") == REFERENCE), None)
  fields = (ref or (records[0] if records else {})).get("study_fields") or {}
  tasks = fields.get("tasks", [])
  members = (ref or {}).get("members")
  seeds = (fields.get("seeds") or {}).get("init", [])
  blocks: list[tuple[Any, ...]] = [
      ("h2", "Per-task error and FPR gap"),
      ("p", f"Dataset {fields.get('dataset')} ({fields.get('train_examples')} train / "
            f"{fields.get('test_examples')} test examples, {fields.get('num_features')} "
            f"inputs); tasks {', '.join(tasks)}; sensitive attribute "
            f"{fields.get('sensitive')} (test counts group 0 / group 1: "
            f"{fields.get('test_group_counts')}). Every variant is a population of "
            f"{members} seeds (init seeds {seeds}; the same in every variant, so comparisons "
            "are paired). Test error and FPR gap (group 1 − group 0) per task at the "
            "threshold that predicts the task's training positive rate "
            f"({', '.join(f'{p:.3f}' for p in fields.get('positive_rates', []))}); means "
            "with 95% t intervals over seeds. ARE and ARFG divide by the vanilla "
            "population's mean per task, so vanilla sits near 1 (its interval is its seed "
            "noise); each denominator is floored at the test split's resolution (|FPR gap|: "
            "one false positive in the group with fewer negatives, "
            f"{', '.join(f'{v:.3f}' for v in fields.get('gap_floor', []))}; error: one "
            f"example, {fmt.number(fields.get('error_floor'))}). Vanilla's |FPR gap| per "
            f"task: {', '.join(f'{v:.3f}' for v in fields.get('vanilla_abs_fpr_gap', []))}; "
            f"its error: {', '.join(f'{v:.3f}' for v in fields.get('vanilla_error', []))}.")]
  if tasks:
    blocks.append(results_table(records, tasks))
  figure = plot_pareto(records)
  if figure is not None:
    blocks.append(("figure", "pareto_arfg_are.png", figure,
                   "ARFG against ARE (95% t intervals over seeds); circles MTA-F, squares "
                   "baseline routing, the star vanilla; dashed: the Pareto front of the "
                   "variant means."))
  pts = points(records)
  front = [pts[i][0] for i in mtaf.pareto_front([(p[1], p[2]) for p in pts])]
  blocks.append(("p", f"Pareto front (variant means, lower ARE and ARFG better): "
                      f"{', '.join(front) or fmt.DASH}."))
  claims = vs_vanilla_claims(records)
  if claims:
    blocks += [("h2", "Fairness losses against vanilla"),
               ("p", f"{len(claims)} claims in one family, Holm-corrected; paired t over "
                     "seeds; Δ is the variant's ARFG or ARE minus vanilla's, ×100 (points "
                     "of a relative metric whose vanilla value is 1)."),
               verdict_lib.table(claims, unit="×100")]
  rclaims = routing_claims(records)
  if rclaims:
    blocks += [("h2", "MTA-F routing against baseline routing"),
                ("p", f"{len(rclaims)} claims in one family, Holm-corrected; paired t over "
                      "seeds at the same loss and λ; Δ = MTA-F minus baseline, ×100 "
                      "(negative: MTA-F lower, i.e. better)."),
                verdict_lib.table(rclaims, unit="×100")]
    blocks += [("p", verdict_lib.sentence(c, unit="")) for c in rclaims
               if c.verdict != stats.NO_DIFFERENCE]
  if tasks:
    blocks += [("h2", "Training fairness terms: all negatives vs head-exclusive ones"),
               ("p", "Full_t (the loss on all t-negatives of a batch) and Excl_t (λ_head × "
                     "the loss on the t-negatives that are positive for the other task), "
                     "over the last 10% of training steps, mean over seeds. Under MTA-F the "
                     "trunk minimises Σ_t λ_t w_t (Full_t − Excl_t) (the reference's "
                     "formula), a difference of two fairness losses, which a trunk can also "
                     "lower by making the head-exclusive negatives less fair."),
               training_terms_table(records, tasks)]
    blocks += [("h2", "Fairness losses on the test negatives"),
               ("p", "Each fairness loss evaluated on each task's test negatives (label 0) "
                     "between the two groups (on a fixed subsample of "
                     f"{MAX_FAIRNESS_EXAMPLES} test examples when the split is larger), mean "
                     "over seeds with 95% t intervals: what the "
                     "training objectives pulled on, measured out of sample."),
               fairness_loss_table(records, tasks)]
  blocks += [("h2", "Against the paper"),
             ("p", summary(records, claims, rclaims))]
  return blocks


def summary(records, claims, rclaims) -> str:
  """What the paper reports and what was found here, with the numbers."""
  paper = ("Wang et al. (KDD 2021; their code covers UCI Adult, German Credit and LSAC) "
           "report that fairness losses trade accuracy for fairness per task in multi-task models, "
           "that the trade-off of one task depends on the others through the shared trunk, "
           "and that MTA-F (head-exclusive fairness to the heads, the rest to the trunk) "
           "gives a better ARFG–ARE Pareto front than the baseline losses; no numeric "
           "results of the paper were retrieved here (PAPERS.md section 4), so the "
           "comparison is qualitative. ")
  better = [c for c in claims if c.claim.endswith("ARFG") and c.verdict == stats.LOWER]
  costly = [c for c in claims if c.claim.endswith("ARE") and c.verdict == stats.HIGHER]
  mtaf_fairer = [c for c in rclaims if c.claim.endswith("ARFG") and c.verdict == stats.LOWER]
  mtaf_worse_fair = [c for c in rclaims if c.claim.endswith("ARFG")
                     and c.verdict == stats.HIGHER]
  mtaf_acc = [c for c in rclaims if c.claim.endswith("ARE") and c.verdict == stats.LOWER]
  mtaf_acc_worse = [c for c in rclaims if c.claim.endswith("ARE") and c.verdict == stats.HIGHER]
  pts = points(records)
  front = [pts[i][0] for i in mtaf.pareto_front([(p[1], p[2]) for p in pts])]
  n_mtaf = sum("_mtaf_" in f for f in front)
  n_base = sum("_baseline_" in f for f in front)
  best = min(pts, key=lambda p: p[2]) if pts else None
  here = (f"Here: {len(better)} of {len(claims) // 2} fairness variants have a lower ARFG "
          f"than vanilla and {len(costly)} a higher ARE (Holm, α = 0.05); the lowest ARFG "
          + (f"is {best[0]} at {best[2]:.2f} (ARE {best[1]:.2f}). " if best else ". ")
          + f"MTA-F against baseline routing at equal loss and λ ({len(rclaims) // 2} "
          f"pairs): ARFG lower in {len(mtaf_fairer)}, higher in {len(mtaf_worse_fair)}; ARE "
          f"lower in {len(mtaf_acc)}, higher in {len(mtaf_acc_worse)}; the rest show no "
          f"detectable difference. The Pareto front holds {n_mtaf} MTA-F and {n_base} "
          "baseline-routing variants. Where these counts are zero, the paper's finding does "
          "not show at this scale (seeds, data size and λ as stated above); the config was "
          "not tuned toward it.")
  return paper + here
