"""Fast/slow model selection: invoke the slow model only where it is expected to pay.

    config → fast model, slow model (the dense recipe, two populations with the same seeds)
    → their logits on a held-out calibration split → per member, an estimate of the loss
    reduction ĝ of invoking the slow model given the fast output → one cascade per gain
    threshold τ (and estimator), combined from the saved test predictions (no retraining)
    → random and confidence-threshold cascades at the same invocation rate → verdicts

Formulations chosen (Ghosh, Chinchali, Duggirala, IROS 2021; the rule is the PAPERS.md
reconstruction, see `tradeoffs.cascades.policy`):
  * data: `digits_heldout` — the digits train split with 30 images per class held out as
    the calibration split (300 images; the models train on the other 1,137); the 360 test
    images are the scored examples, and nothing is fitted or tuned on them.
  * fast = the configured model (an MLP), slow = `study.slow_model` (the digits CNN), both
    trained by the shared `dense` recipe; member i of a cascade pairs fast member i with
    slow member i (same seeds), so cascades and baselines are paired over members.
  * gain ĝ ≈ E[ℓ_fast − ℓ_slow | fast output], ℓ the 0-1 loss (`study.loss`), fitted per
    member on the calibration split: `binned` (quantile bins of `study.feature`, default
    confidence) and `regression` (least squares on confidence, margin, entropy).
  * rule: invoke iff α·ĝ > β·Δcost with Δcost = c_slow − c_fast from the two records
    (`study.cost`: measured median latency at batch 1, or FLOPs). The sweep is over gain
    thresholds τ = (β/α)·Δcost (`study.gain_thresholds`, in loss units, portable across
    machines); each record carries β/α = τ / Δcost for the measured Δcost.
  * cost of a cascade: expected, computed — c_fast + r·c_slow for the realised invocation
    rate r on the test split (the fast model always runs); not timed.
  * baselines: always-fast and always-slow (the fast and slow variants), random at the
    cascade's per-member rate (`random_*`), and the confidence threshold at that rate
    (`confidence_*`: the least confident fast outputs), both by the shared `cascade`
    recipe.
  * verdicts: each cascade's top-1 against random at the matched rate, paired over
    members, one Holm family; the same against the confidence threshold, a second family.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import ml_collections
import numpy as np

from tradeoffs import cascades
from tradeoffs import data as data_lib
from tradeoffs import errors
from tradeoffs import stats
from tradeoffs.report import figures
from tradeoffs.report import format as fmt
from tradeoffs.report import verdict as verdict_lib
from tradeoffs.studies import base
from tradeoffs.studies import recipes
from tradeoffs.train import predictions as predictions_lib

NAME = "cascade"
TITLE = "Fast/slow model selection: who pays for the skipped slow model"
COSTS = ("latency_ms", "flops")
BASELINES = ("random", "confidence")
CALIBRATION_DATASETS = ("digits_heldout", "digits_long_tail")
# τ values of the dense cost–loss curve each cascade record carries.
CURVE = tuple(np.round(np.linspace(-0.05, 0.6, 27), 3).tolist())


_tuple = base.as_tuple


training_config = base.training_config


def slow_config(config: Any) -> ml_collections.ConfigDict:
  c = training_config(config)
  s = config.study
  c.model.name = str(s.slow_model)
  c.model.kwargs = ml_collections.ConfigDict(
      s.slow_kwargs.to_dict() if hasattr(s.slow_kwargs, "to_dict") else dict(s.slow_kwargs))
  return c


_number = base.check_number


def validate(config: Any) -> None:
  if "study" not in config:
    raise ValueError("config has no 'study' section; use experiments/configs/cascade.py")
  s = config.study
  thresholds = _tuple(s.gain_thresholds)
  if not thresholds:
    raise ValueError("--config.study.gain_thresholds=() is empty: give at least one gain "
                     "threshold τ = (β/α)·Δcost")
  for t in thresholds:
    _number(t, "study.gain_thresholds", 0.0)
  if len(set(float(t) for t in thresholds)) != len(thresholds):
    raise ValueError(f"--config.study.gain_thresholds={thresholds!r} has duplicates")
  estimators = _tuple(s.estimators)
  if not estimators:
    raise ValueError("--config.study.estimators=() is empty; choose from "
                     f"{list(cascades.ESTIMATORS)}")
  for e in estimators:
    if e not in cascades.ESTIMATORS:
      raise ValueError(f"--config.study.estimators has {e!r}; choose from "
                       f"{list(cascades.ESTIMATORS)}")
  if s.feature not in cascades.FEATURES:
    raise ValueError(f"--config.study.feature={s.feature!r}; choose from "
                     f"{list(cascades.FEATURES)}")
  if s.loss not in cascades.LOSSES:
    raise ValueError(f"--config.study.loss={s.loss!r}; choose from {list(cascades.LOSSES)}")
  _number(s.bins, "study.bins", 1, integer=True)
  _number(s.ridge, "study.ridge", 0.0)
  if s.cost not in COSTS:
    raise ValueError(f"--config.study.cost={s.cost!r}; choose from {list(COSTS)}")
  for b in _tuple(s.baselines):
    if b not in BASELINES:
      raise ValueError(f"--config.study.baselines has {b!r}; choose from {list(BASELINES)}")
  _number(s.seed, "study.seed", 0, integer=True)
  if config.dataset.name not in CALIBRATION_DATASETS:
    raise ValueError(f"--config.dataset.name={config.dataset.name!r}: the calibration split "
                     f"is a dataset's held-out validation split; use one of "
                     f"{list(CALIBRATION_DATASETS)}")
  if s.cost == "latency_ms" and not bool(config.efficiency.time_latency):
    raise ValueError("--config.study.cost='latency_ms' needs --config.efficiency."
                     "time_latency=True (or use cost='flops')")
  if int(config.population.members) < 2:
    raise ValueError(f"--config.population.members={config.population.members}: verdicts are "
                     "paired over members; use at least 2")


def cascade_name(estimator: str, tau: float, kind: str = "cascade") -> str:
  return f"{kind}_{estimator}_t{float(tau):g}"


def plan(config: Any) -> list[base.Variant]:
  validate(config)
  s = config.study
  out = [base.Variant("fast", "dense", {"model": str(config.model.name), "role": "fast"},
                      None, training_config(config)),
         base.Variant("slow", "dense", {"model": str(s.slow_model), "role": "slow"},
                      None, slow_config(config))]
  for estimator in _tuple(s.estimators):
    for tau in _tuple(s.gain_thresholds):
      name = cascade_name(estimator, tau)
      out.append(base.Variant(name, "cascade_policy", {
          "estimator": str(estimator), "gain_threshold": float(tau),
          "feature": str(s.feature) if estimator == "binned" else "confidence,margin,entropy",
          "bins": int(s.bins), "ridge": float(s.ridge), "loss": str(s.loss),
          "cost": str(s.cost)}, "slow"))
      for baseline in _tuple(s.baselines):
        out.append(base.Variant(cascade_name(estimator, tau, baseline), "cascade", {
            "fast": "fast", "slow": "slow", "match": name, "policy": baseline,
            "seed": int(s.seed), "cost": str(s.cost)}, "slow"))
  return out


def calibration(ctx: Any, train_config: Any) -> Any:
  split = recipes.validation_split(ctx, train_config)
  try:
    cascades.check_calibration(split.labels, ctx.dataset(train_config).num_classes)
  except ValueError as e:
    raise errors.ConfigError(f"--config.dataset.name={train_config.dataset.name!r}: {e}"
                             ) from None
  return split


def _produce_model(ctx: Any, variant: base.Variant) -> base.Outcome:
  split = calibration(ctx, variant.train_config)  # Checked before anything trains.
  outcome = recipes.dense(ctx, variant)
  trained = ctx.cache[f"trained:{variant.name}"]
  logits = recipes._population_logits(trained.state, trained.mesh, split,  # noqa: SLF001
                                      variant.train_config)
  predictions_lib.save(ctx.workdir, f"{variant.name}_calibration", predictions_lib.Predictions(
      logits=logits, labels=split.labels, ids=split.ids, groups=split.groups,
      group_names=split.group_names))
  outcome.study_fields = {**outcome.study_fields, "calibration_examples": int(len(split)),
                          "calibration_top1": float(
                              (logits.argmax(-1) == split.labels[None]).mean())}
  return outcome


def _costs(ctx: Any, cost: str) -> tuple[float, float]:
  values = []
  for name in ("fast", "slow"):
    value = ctx.records[name]["efficiency"].get(cost)
    if value is None:
      raise errors.RunFailed(f"the {name} model's record has no {cost}; measure it "
                             "(--config.efficiency.time_latency=True) or use cost='flops'")
    values.append(value)
  try:
    c_fast, c_slow = cascades.check_costs(*values)
  except ValueError as e:
    raise errors.RunFailed(f"{cost}: {e}") from None
  if c_slow <= c_fast:
    raise errors.RunFailed(f"the slow model's {cost} ({c_slow:g}) is not above the fast "
                           f"model's ({c_fast:g}): nothing to trade")
  return c_fast, c_slow


def _produce_cascade(ctx: Any, variant: base.Variant) -> base.Outcome:
  k = variant.knobs
  c_fast, c_slow = _costs(ctx, str(k["cost"]))
  delta = c_slow - c_fast
  tau = float(k["gain_threshold"])
  fast, slow = ctx.predictions("fast"), ctx.predictions("slow")
  fast_cal, slow_cal = ctx.predictions("fast_calibration"), ctx.predictions("slow_calibration")
  members = fast.logits.shape[0]
  invoke, fitted, curves = [], [], []
  lf = cascades.loss(fast.logits, fast.labels, str(k["loss"]))
  ls = cascades.loss(slow.logits, slow.labels, str(k["loss"]))
  for m in range(members):
    g_hat, params = cascades.estimate_gain(
        fast_cal.logits[m], slow_cal.logits[m], fast_cal.labels, fast.logits[m],
        estimator=str(k["estimator"]), feature=str(k["feature"]).split(",")[0],
        bins=int(k["bins"]), ridge=float(k["ridge"]), loss_kind=str(k["loss"]))
    invoke.append(cascades.policy(g_hat, delta, alpha=1.0, beta=tau / delta))
    fitted.append(params)
    curve = cascades.cost_loss_curve(g_hat, lf[m], ls[m], c_fast, c_slow,
                                     [max(t, 0.0) / delta for t in CURVE])
    curves.append(curve)
  invoke = np.stack(invoke)
  logits = cascades.combine(fast.logits, slow.logits, invoke)
  summary = cascades.summary(invoke)
  eff = recipes.cascade_efficiency(ctx, "fast", "slow", summary["rate"], str(k["cost"]))
  curve = {"gain_threshold": [max(t, 0.0) for t in CURVE],
           "rate": np.mean([c["rate"] for c in curves], 0).tolist(),
           "loss": np.mean([c["loss"] for c in curves], 0).tolist(),
           "cost": np.mean([c["cost"] for c in curves], 0).tolist()}
  realised_gain = (lf - ls)[invoke].mean() if invoke.any() else None
  return base.Outcome(
      members=members, efficiency=eff, logits=logits, derived=True,
      config=ctx.variants["slow"].train_config,
      study_fields={**summary, "gain_threshold": tau, "beta_over_alpha": tau / delta,
                    "delta_cost": delta, "cost": str(k["cost"]), "c_fast": c_fast,
                    "c_slow": c_slow, "fitted_member0": fitted[0], "curve": curve,
                    "realised_gain_where_invoked": realised_gain})


def produce(ctx: Any, variant: base.Variant) -> base.Outcome:
  if variant.name in ("fast", "slow"):
    return _produce_model(ctx, variant)
  if variant.technique == "cascade_policy":
    return _produce_cascade(ctx, variant)
  return recipes.produce(ctx, variant)


# ---------------------------------------------------------------------------------------
# The report.


def _per_member(record: Mapping[str, Any]) -> list[float]:
  return list((record.get("accuracy") or {}).get("per_member_top1") or [])


def _ci(values: Sequence[float], scale: float = 100.0, digits: int = 1) -> str:
  if len(values) < 2:
    return fmt.number(values[0] * scale) if values else fmt.DASH
  mean, low, high = stats.t_interval(values)
  return f"{scale * mean:.{digits}f} [{scale * low:.{digits}f}, {scale * high:.{digits}f}]"


def comparisons(records: Sequence[Mapping[str, Any]], baseline: str) -> list[stats.Comparison]:
  """Each cascade's top-1 against the `baseline` cascade at its matched rate (paired over
  members), one Holm family."""
  by = {r["variant"]: r for r in records}
  claims = []
  for r in records:
    if r.get("technique") != "cascade_policy":
      continue
    other = by.get(r["variant"].replace("cascade_", f"{baseline}_", 1))
    a, b = _per_member(r), _per_member(other or {})
    if other is None or not a or len(a) != len(b):
      continue
    claims.append(stats.compare(a, b, paired=True,
                                claim=f"{r['variant']}: top-1 vs {baseline} at matched rate"))
  return stats.family(claims)


def table(records: Sequence[Mapping[str, Any]]) -> tuple[list[str], list[list[str]]]:
  headers = ["Variant", "Policy", "Invocation rate % [95% CI]", "Expected latency",
             "Expected FLOPs", "Top-1 % [95% CI]", "Worst class", "β/α (1/cost)"]
  rows = []
  for r in records:
    f, e, a = r.get("study_fields") or {}, r["efficiency"], r["accuracy"]
    if r["variant"] == "fast":
      policy, rate = "always fast", [0.0] * r["members"]
    elif r["variant"] == "slow":
      policy, rate = "always slow", [1.0] * r["members"]
    else:
      policy = (f"ĝ>{f.get('gain_threshold'):g} ({r['knobs'].get('estimator')})"
                if r["technique"] == "cascade_policy" else f"{f.get('policy')} (matched)")
      rate = f.get("per_member_rate") or []
    latency = e.get("latency_ms")
    rows.append([r["variant"], policy, _ci(rate), fmt.latency(latency) if latency is not None
                 else fmt.DASH, fmt.count(e.get("flops")), _ci(_per_member(r)),
                 fmt.accuracy(a.get("worst_class")), fmt.number(f.get("beta_over_alpha"))])
  return headers, rows


def plot_cost_loss(records: Sequence[Mapping[str, Any]]):
  """Top-1 error against expected cost: the rule's curve per estimator, its planned
  thresholds, the matched baselines, and the fast and slow models."""
  cost = next((r["study_fields"].get("cost") for r in records
               if r.get("technique") == "cascade_policy"), None)
  if cost is None:
    return None
  x_of = lambda r: r["efficiency"].get(cost)  # noqa: E731
  fig, axs = figures.new(1)
  ax = axs[0]
  styles = {"cascade_policy": "o", "random": "x", "confidence": "s"}
  estimators = sorted({r["knobs"].get("estimator") for r in records
                       if r.get("technique") == "cascade_policy"})
  for i, estimator in enumerate(estimators):
    color = figures.color(i + 2)
    mine = [r for r in records if r.get("technique") == "cascade_policy"
            and r["knobs"].get("estimator") == estimator]
    curve = mine[0]["study_fields"].get("curve") or {}
    if curve:
      ax.plot(curve["cost"], 1 - np.asarray(curve["loss"]) if
              mine[0]["knobs"].get("loss") == "zero_one" else curve["loss"], "-", color=color,
              lw=1, alpha=0.7, label=f"rule ({estimator}), τ sweep")
    for r in mine:
      ax.scatter(x_of(r), 1 - r["accuracy"]["top1"], marker="o", color=color, zorder=3)
      for kind in ("random", "confidence"):
        for b in records:
          if b["variant"] == r["variant"].replace("cascade_", f"{kind}_", 1):
            ax.scatter(x_of(b), 1 - b["accuracy"]["top1"], marker=styles[kind], color=color,
                       zorder=3)
  for j, name in enumerate(("fast", "slow")):
    for r in records:
      if r["variant"] == name and x_of(r) is not None:
        ax.scatter(x_of(r), 1 - r["accuracy"]["top1"], marker="D", color=figures.color(j),
                   s=50, zorder=4, label=f"always {name}")
  from matplotlib.lines import Line2D
  handles, labels = ax.get_legend_handles_labels()
  handles += [Line2D([], [], marker=m, ls="", color="0.3") for m in ("o", "x", "s")]
  labels += ["rule at planned τ", "random, matched rate", "confidence, matched rate"]
  ax.legend(handles, labels, fontsize=8)
  ax.set_xlabel({"latency_ms": "expected latency, ms (computed)",
                 "flops": "expected FLOPs"}[cost])
  ax.set_ylabel("top-1 error (↓ better)" if cost else "loss")
  return fig


def sections(records: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[Any, ...]]:
  records = list(records)
  by = {r["variant"]: r for r in records}
  members = by["fast"]["members"] if "fast" in by else "?"
  first = next((r for r in records if r.get("technique") == "cascade_policy"), None)
  blocks: list[tuple[Any, ...]] = [("h2", "Setting"), ("p", (
      f"Fast = {by['fast']['knobs'].get('model') if 'fast' in by else '?'}, slow = "
      f"{by['slow']['knobs'].get('model') if 'slow' in by else '?'}, each a population of "
      f"{members} members with the same seeds; cascade member i pairs fast member i with "
      "slow member i. The gain estimators are fitted per member on the calibration split "
      "(held out of the training split, disjoint from the scored test examples); the rule "
      "invokes the slow model where α·ĝ > β·Δcost. Latency and FLOPs of cascades are "
      "expected values computed as c_fast + r·c_slow from the measured medians, not timed."
      + (f" Measured Δcost = {first['study_fields']['delta_cost']:.3g} "
         f"({first['study_fields']['cost']}); c_fast = {first['study_fields']['c_fast']:.3g}, "
         f"c_slow = {first['study_fields']['c_slow']:.3g}." if first else "")))]
  figure = plot_cost_loss(records)
  if figure is not None:
    blocks.append(("figure", "cascade_cost_loss.png", figure,
                   "Top-1 error against expected cost. Lines: the rule over a sweep of τ = "
                   "(β/α)·Δcost (mean over members); circles: the planned thresholds; "
                   "crosses/squares: random and confidence-threshold cascades at the same "
                   "per-member invocation rate; diamonds: the fast and slow models."))
  headers, rows = table(records)
  blocks += [("h2", "Cascades"), ("table", headers, rows)]
  for baseline, title in (("random", "Verdicts: the rule against random at matched rate"),
                          ("confidence",
                           "Verdicts: the rule against the confidence threshold")):
    claims = comparisons(records, baseline)
    if claims:
      blocks += [("h2", title),
                 ("p", f"{len(claims)} claims, one Holm family; paired t over members "
                       "(the same fast and slow members, the same invocation count per "
                       "member); differences in percentage points of top-1."),
                 verdict_lib.table(claims)]
      blocks += [("p", verdict_lib.sentence(c)) for c in claims
                 if c.verdict != stats.NO_DIFFERENCE]
  blocks += [("h2", "What the paper reports"), ("p", (
      "Ghosh, Chinchali and Duggirala (IROS 2021) report that their expected-benefit "
      "selector traces a cost–loss curve below the Fast, Slow and Random selectors on "
      "linear regression, DNN perception and a simulated Mars rover; headline numbers were "
      "not found (PAPERS.md §3). Here the comparison that matters is against random at the "
      "same rate: a rule that cannot beat it has learnt nothing from the fast output. "
      "Against the confidence threshold the rule with a confidence-binned estimator is "
      "nearly the same policy (both rank by the fast model's confidence), so no difference "
      "there is the expected outcome, not a failure."))]
  return blocks
