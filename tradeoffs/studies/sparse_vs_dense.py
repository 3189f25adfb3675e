"""Same-capacity sparse vs dense, and effective gradient flow (PAPERS.md §16).

Tessera, Hooker & Rosman (2021), "Keep the gradients flowing": does a wide-sparse MLP beat a
narrow-dense MLP with the same number of active weights in every layer
(`sparsity.same_capacity_pair`), trained identically, across optimizer x activation x batch
norm settings? And does effective gradient flow (EGF) track final accuracy better than the
plain gradient norm?

Formulations chosen:
  * Variants: per setting a dense population `dense-<opt>-<act>-<bn|nobn>` and a sparse one
    `sparse-...` whose source is that dense one (the sheet's CIE is then sparse vs dense,
    retrained). Member i of both has the same init and data seeds, so accuracies pair by seed.
  * Masks: uniformly random per layer with exactly the dense layer's weight count, drawn once
    per member from its init key and fixed through training (`sparsity.members`; the paper's
    main study prunes randomly from scratch). Biases are dense in both and not capacity.
  * Initialisation (`study.init_scaling`, `sparsity.capacity.INIT_SCALINGS`): 'dense'
    (default) gives every active weight the narrow layer's LeCun-normal distribution, the
    paper's "same per-layer initial distribution"; 'none'; 'effective'.
  * EGF_p = (1/L) sum_l ||g_l ⊙ m_l||_p over the L kernels (`sparsity.gradient_flow`, slide 22;
    no division by active weights unless `study.egf_normalize`); g is a member's minibatch
    gradient. The plain gradient norm is the trainer's `grad_norm` (global L2 over all
    parameters, pruned positions included); `grad_norm_masked` is logged beside it. Both are
    logged (population mean) every `train.steps // study.egf_evaluations` steps; a variant's
    value is the mean over those evaluations (11 by default, as in the paper).
  * Sparse vs dense (H0 of the paper: sparse <= dense) through the verdict layer, two-sided:
    per setting a paired t-test over seeds on top-1, Holm across the settings; over the grid a
    paired t-test over seeds of each seed's top-1 averaged over the settings. Batch norm: per
    seed the BN gain (mean over BN settings minus mean over the matching no-BN ones) of sparse
    and of dense and their difference, one Holm family.
  * EGF vs gradient norm: over variants (population means; all variants, and the sparse
    ones), |Spearman ρ(EGF_p, top-1)| − |Spearman ρ(grad_norm, top-1)| with a paired BCa
    bootstrap over variants (`stats.compare_correlations`), for p = 1 and 2, one Holm family.
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

import ml_collections
import numpy as np

from tradeoffs import models as models_lib
from tradeoffs import sparsity
from tradeoffs import stats
from tradeoffs import workdir as workdir_lib
from tradeoffs.report import figures
from tradeoffs.report import format as fmt
from tradeoffs.sparsity import capacity
from tradeoffs.sparsity import gradient_flow
from tradeoffs.sparsity import members as members_lib
from tradeoffs.studies import base
from tradeoffs.studies import recipes
from tradeoffs.train import optimizers
from tradeoffs.train import seeds as seeds_lib

NAME = "sparse_vs_dense"
TITLE = "Sparse vs dense at equal capacity, and effective gradient flow"
KINDS = ("dense", "sparse")
FLOW_METRICS = gradient_flow.FLOW_METRICS
# Fewest variants a correlation gets an interval and a claim over: with fewer, most bootstrap
# resamples repeat a point or two and the BCa interval is undefined.
MIN_CORRELATION_VARIANTS = 6
BOOTSTRAP_RESAMPLES = 2000  # Per correlation interval and per correlation comparison.


def setting_name(optimizer: str, activation: str, batch_norm: bool) -> str:
  return f"{optimizer}-{activation}-{'bn' if batch_norm else 'nobn'}"


# --- plan ------------------------------------------------------------------------------------

def _fail(key: str, value: Any, allowed: str) -> None:
  raise ValueError(f"--config.{key}={value!r} is invalid; allowed: {allowed}")


def _validate(config: Any) -> None:
  s = config.study
  if config.model.name != "mlp":
    _fail("model.name", config.model.name, "'mlp' (same-capacity pairs are MLPs)")
  hidden = s.dense_hidden
  if (isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) or not hidden
      or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden)):
    _fail("study.dense_hidden", hidden, "a non-empty tuple of positive ints")
  value = s.sparsity
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
    _fail("study.sparsity", value, "a number in [0, 1)")
  for key, allowed in (("optimizers", optimizers.OPTIMIZERS),
                       ("activations", tuple(models_lib.activation_names()))):
    values = s[key]
    if isinstance(values, str) or not values:
      _fail(f"study.{key}", values, f"a non-empty tuple of {list(allowed)}")
    for v in values:
      if v not in allowed:
        raise ValueError(f"--config.study.{key} contains {v!r}; valid: {list(allowed)}")
  if isinstance(s.batch_norm, (str, bool)) or not s.batch_norm or any(
      not isinstance(b, bool) for b in s.batch_norm):
    _fail("study.batch_norm", s.batch_norm, "a non-empty tuple of bools, e.g. (False, True)")
  for name in s.optimizers:
    if name not in s.learning_rates:
      raise ValueError(f"--config.study.learning_rates has no entry for optimizer {name!r}; "
                       f"it has {sorted(s.learning_rates.keys())}")
    if not float(s.learning_rates[name]) > 0:
      _fail(f"study.learning_rates.{name}", s.learning_rates[name], "a number > 0")
  if s.init_scaling not in capacity.INIT_SCALINGS:
    _fail("study.init_scaling", s.init_scaling, str(sorted(capacity.INIT_SCALINGS)))
  if not isinstance(s.egf_normalize, bool):
    _fail("study.egf_normalize", s.egf_normalize, "True or False")
  evaluations = s.egf_evaluations
  if isinstance(evaluations, bool) or not isinstance(evaluations, int) or evaluations < 1:
    _fail("study.egf_evaluations", evaluations, "an int >= 1")
  if int(config.train.steps) < evaluations:
    raise ValueError(f"--config.train.steps={config.train.steps} must be >= "
                     f"--config.study.egf_evaluations={evaluations}")


def training_config(config: Any, optimizer: str, activation: str, batch_norm: bool,
                    hidden: Sequence[int]) -> ml_collections.ConfigDict:
  """One variant's training config: the study config without its study, efficiency and
  report sections, with the model and optimizer of the setting."""
  c = ml_collections.ConfigDict(config.to_dict())
  for section in ("study", "efficiency", "report"):
    if section in c:
      del c[section]
  c.model.kwargs = ml_collections.ConfigDict(dict(
      hidden=tuple(int(h) for h in hidden), activation=activation, batch_norm=batch_norm))
  c.optimizer.name = optimizer
  c.optimizer.learning_rate = float(config.study.learning_rates[optimizer])
  steps = int(c.train.steps)
  # The logged metrics are the EGF evaluations; test accuracy only at the end.
  c.train.log_every = max(1, steps // int(config.study.egf_evaluations))
  c.train.eval_every = max(steps, 1)
  return c


def plan(config: Any) -> list[base.Variant]:
  """Per setting (optimizer x activation x batch norm, config order): dense, then sparse."""
  _validate(config)
  s = config.study
  dense_hidden = [int(h) for h in s.dense_hidden]
  # The widths do not depend on the input and output sizes (only the layer sparsities do).
  sparse_hidden = sparsity.same_capacity_pair(dense_hidden, float(s.sparsity), 1,
                                              1)["sparse_hidden"]
  variants = []
  for optimizer in s.optimizers:
    for activation in s.activations:
      for batch_norm in s.batch_norm:
        setting = setting_name(optimizer, activation, batch_norm)
        for kind in KINDS:
          hidden = sparse_hidden if kind == "sparse" else dense_hidden
          knobs = {"kind": kind, "setting": setting, "optimizer": str(optimizer),
                   "activation": str(activation), "batch_norm": bool(batch_norm),
                   "hidden": list(hidden), "dense_hidden": dense_hidden,
                   "sparsity": float(s.sparsity) if kind == "sparse" else 0.0,
                   "init_scaling": str(s.init_scaling) if kind == "sparse" else None,
                   "learning_rate": float(s.learning_rates[optimizer])}
          variants.append(base.Variant(
              name=f"{kind}-{setting}", technique=f"{kind}_same_capacity", knobs=knobs,
              source=None if kind == "dense" else f"dense-{setting}",
              train_config=training_config(config, optimizer, activation, batch_norm,
                                           hidden)))
  return variants


# --- produce ---------------------------------------------------------------------------------

def produce(ctx: Any, variant: base.Variant) -> base.Outcome:
  """Trains one population (fixed random masks for a sparse one) with EGF logged."""
  k, tc = variant.knobs, variant.train_config
  s = ctx.config.study
  data = ctx.dataset(tc)
  input_dim = int(np.prod(data.input_shape))
  pair = sparsity.same_capacity_pair(k["dense_hidden"], float(s.sparsity), input_dim,
                                     data.num_classes)
  sparse = k["kind"] == "sparse"
  tx = init_fn = state_fn = None
  if sparse:
    members = int(tc.population.members)
    tx = sparsity.masked(optimizers.make_optimizer(tc.optimizer, int(tc.train.steps)))
    init_fn = capacity.scaled_init_fn(capacity.init_factors(pair, input_dim,
                                                            k["init_scaling"]))
    init_keys = seeds_lib.Seeds.from_config(tc.seeds).member_keys(members)["init"]
    state_fn = members_lib.mask_state_fn(init_keys, pair["layer_sparsity"], k["sparsity"])
  trained = ctx.train(
      variant, tx=tx, init_fn=init_fn, state_fn=state_fn,
      step_overrides={"grad_metrics_fn": gradient_flow.flow_metrics_fn(
          sparse, bool(s.egf_normalize))})
  logits = ctx.evaluate(trained, tc)
  flow = gradient_flow.flow_summary(
      workdir_lib.read_jsonl(os.path.join(ctx.workdir, "metrics.jsonl")), variant.name)
  active = gradient_flow.active_per_layer(recipes.host_copy(trained.state.params),
                                          pair["layer_names"])
  fields = {**flow["means"], "flow_trace": flow["trace"],
            "egf_evaluations": flow["evaluations"], "egf_normalize": bool(s.egf_normalize),
            "active_per_layer": active, "expected_active_per_layer": pair["dense_active"],
            "layer_sparsity": pair["layer_sparsity"] if sparse else {},
            "sparse_hidden": pair["sparse_hidden"], "steps": int(tc.train.steps)}
  return base.Outcome(members=trained.state.members,
                      efficiency=recipes.measure_member(ctx, trained.state, tc),
                      logits=logits, study_fields=fields, derived=False)


# --- the verdicts' inputs --------------------------------------------------------------------

def _ours(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
  return [r for r in records if r.get("study") == NAME
          and (r.get("knobs") or {}).get("kind") in KINDS]


def pairs(records: Sequence[Mapping[str, Any]]) -> list[tuple[Mapping, Mapping]]:
  """(sparse, dense) records per setting, in record order, for settings with both, trained
  on the same seeds (member i of both shares its seeds: the comparison is paired)."""
  by = {(r["knobs"]["setting"], r["knobs"]["kind"]): r for r in _ours(records)}
  out = []
  for r in _ours(records):
    setting = r["knobs"]["setting"]
    if r["knobs"]["kind"] != "dense" or (setting, "sparse") not in by:
      continue
    sparse = by[(setting, "sparse")]
    a, b = sparse["accuracy"]["per_member_top1"], r["accuracy"]["per_member_top1"]
    if len(a) == len(b) and sparse.get("seeds") == r.get("seeds"):
      out.append((sparse, r))
  return out


def _top1(record: Mapping[str, Any]) -> np.ndarray:
  return np.asarray(record["accuracy"]["per_member_top1"], np.float64)


def setting_comparisons(records: Sequence[Mapping[str, Any]]) -> list[stats.Comparison]:
  """Sparse vs dense top-1 per setting: paired over seeds, Holm across the settings."""
  return stats.family([
      stats.compare(_top1(s), _top1(d), paired=True,
                    claim=f"{s['knobs']['setting']}: top-1, sparse vs dense")
      for s, d in pairs(records)])


def grid_comparison(records: Sequence[Mapping[str, Any]]) -> stats.Comparison | None:
  """Sparse vs dense top-1 averaged over the settings, paired over seeds (a family of one)."""
  ps = pairs(records)
  sizes = {len(_top1(s)) for s, _ in ps}
  if not ps or len(sizes) != 1:
    return None
  sparse = np.mean([_top1(s) for s, _ in ps], 0)
  dense = np.mean([_top1(d) for _, d in ps], 0)
  return stats.compare(sparse, dense, paired=True,
                       claim=f"all {len(ps)} settings: top-1, sparse vs dense")


def batch_norm_comparisons(records: Sequence[Mapping[str, Any]]) -> list[stats.Comparison]:
  """Does batch norm help, and does it help sparse more than dense? Per seed, the BN gain
  is the top-1 averaged over the BN settings minus over the matching no-BN settings
  (same optimizer and activation); paired over seeds, one Holm family of three."""
  by = {(s["knobs"]["optimizer"], s["knobs"]["activation"], s["knobs"]["batch_norm"]): (s, d)
        for s, d in pairs(records)}
  matched = [(by[(o, a, True)], by[(o, a, False)]) for (o, a, bn) in by
             if bn and (o, a, False) in by]
  sizes = {len(_top1(x)) for bn, nobn in matched for x in (*bn, *nobn)}
  if not matched or len(sizes) != 1:
    return []
  gain = {}
  for index, kind in enumerate(("sparse", "dense")):
    with_bn = np.mean([_top1(bn[index]) for bn, _ in matched], 0)
    without = np.mean([_top1(nobn[index]) for _, nobn in matched], 0)
    gain[kind] = (with_bn, without)
  n = len(matched)
  return stats.family([
      stats.compare(*gain["sparse"], paired=True,
                    claim=f"sparse ({n} setting pairs): top-1, batch norm vs none"),
      stats.compare(*gain["dense"], paired=True,
                    claim=f"dense ({n} setting pairs): top-1, batch norm vs none"),
      stats.compare(gain["sparse"][0] - gain["sparse"][1], gain["dense"][0] - gain["dense"][1],
                    paired=True, claim=f"batch norm gain ({n} setting pairs): sparse vs dense"),
  ])


def _subsets(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
  rs = [r for r in _ours(records)
        if all(isinstance(r["study_fields"].get(m), (int, float)) for m in FLOW_METRICS)]
  return {"all": rs, "sparse": [r for r in rs if r["knobs"]["kind"] == "sparse"]}


def correlation_comparisons(records: Sequence[Mapping[str, Any]]) -> list[stats.Comparison]:
  """|ρ(EGF_p, top-1)| − |ρ(grad_norm, top-1)| over variants (p = 1, 2; all and sparse
  variants; subsets of at least `MIN_CORRELATION_VARIANTS`), one Holm family."""
  claims = []
  for subset, rs in _subsets(records).items():
    if len(rs) < MIN_CORRELATION_VARIANTS:
      continue
    top1 = [r["accuracy"]["top1"] for r in rs]
    norm = [r["study_fields"]["grad_norm"] for r in rs]
    for metric in ("egf_1", "egf_2"):
      claims.append(stats.compare_correlations(
          top1, [r["study_fields"][metric] for r in rs], norm,
          n_resamples=BOOTSTRAP_RESAMPLES, claim=f"{subset} {len(rs)} variants: |ρ| with top-1, {metric} vs grad_norm"))
  return stats.family(claims)


def correlations(records: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
  """Spearman ρ of each flow metric with final top-1 over variants (subsets of at least 3),
  with a BCa interval from `MIN_CORRELATION_VARIANTS` variants on."""
  out = []
  for subset, rs in _subsets(records).items():
    if len(rs) < 3:
      continue
    top1 = [r["accuracy"]["top1"] for r in rs]
    for metric in FLOW_METRICS:
      xs = [r["study_fields"][metric] for r in rs]
      rho, low, high = (stats.bootstrap_interval(stats.spearman, xs, top1,
                                                 n_resamples=BOOTSTRAP_RESAMPLES)
                        if len(rs) >= MIN_CORRELATION_VARIANTS
                        else (stats.spearman(xs, top1), math.nan, math.nan))
      out.append({"subset": subset, "metric": metric, "n": len(rs), "rho": rho, "low": low,
                  "high": high})
  return out


# --- sections --------------------------------------------------------------------------------

def _pp_sentence(c: stats.Comparison, subject: str) -> str:
  return (f"{subject}: {c.verdict} (Δ {fmt.signed(100 * c.estimate, 2)} pp, 95% CI "
          f"{fmt.interval(100 * c.low, 100 * c.high, 2)}, paired t over {c.n_a} seeds, "
          f"p = {fmt.p(c.p)}, Holm p = {fmt.p(c.p_holm)}).")


def _pct_ci(x: np.ndarray) -> str:
  mean, low, high = stats.t_interval(x)
  return f"{100 * mean:.2f} {fmt.interval(100 * low, 100 * high, 2)}"


def _flow(record: Mapping[str, Any], metric: str) -> str:
  return fmt.number(record["study_fields"].get(metric))


def sections(records: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[Any, ...]]:
  del config  # Everything the report says comes from the records.
  rs = _ours(records)
  if not rs:
    return [("h2", TITLE), ("p", "No sparse_vs_dense records.")]
  ps = pairs(rs)
  first = rs[0]
  knobs = first["knobs"]
  sparse_knobs = next((r["knobs"] for r in rs if r["knobs"]["kind"] == "sparse"), {})
  fields = first["study_fields"]
  seeds = first.get("seeds") or {}
  tc = first.get("config") or {}
  blocks: list[tuple[Any, ...]] = [("h2", TITLE)]
  layers = fields.get("expected_active_per_layer", {})
  blocks.append(("p", (
      f"Wide-sparse MLP (hidden {fields.get('sparse_hidden')}, random masks fixed from init, "
      f"nominal sparsity {sparse_knobs.get('sparsity')}, init scaling "
      f"'{sparse_knobs.get('init_scaling')}') vs narrow-dense MLP (hidden "
      f"{knobs.get('dense_hidden')}), with equal active weights in every layer ("
      + ", ".join(f"{n} {v}" for n, v in layers.items()) + "). Dataset "
      f"{(tc.get('dataset') or {}).get('name')}, {fields.get('steps')} steps, batch "
      f"{(tc.get('train') or {}).get('batch_size')}, populations of {first['members']} "
      f"members (init seeds {seeds.get('init')}, data seeds {seeds.get('data')}); member i of "
      "the sparse and the dense population share seeds, so top-1 is compared paired over "
      "seeds (two-sided tests; 'higher' means sparse beat dense).")))

  blocks.append(("h3", "Did sparse beat dense over the grid?"))
  grid = grid_comparison(rs)
  if grid is None:
    blocks.append(("p", "No complete sparse/dense pair on the same seeds was recorded."))
  else:
    blocks.append(("p", _pp_sentence(grid, f"Sparse vs dense top-1, averaged over the "
                                           f"{len(ps)} settings")))

  per_setting = setting_comparisons(rs)
  blocks.append(("h3", "Sparse vs dense per setting"))
  if per_setting:
    counts = {v: sum(c.verdict == v for c in per_setting) for v in stats.VERDICTS}
    blocks.append(("p", (
        f"Per setting, paired over seeds and Holm-corrected across the {len(per_setting)} "
        f"settings: sparse top-1 {stats.HIGHER} in {counts[stats.HIGHER]}, {stats.LOWER} in "
        f"{counts[stats.LOWER]}, {stats.NO_DIFFERENCE} in {counts[stats.NO_DIFFERENCE]}. "
        "Top-1 in % with 95% t intervals over seeds; EGF and gradient norms are means over "
        "the logged evaluations.")))
    rows = []
    for (s, d), c in zip(ps, per_setting):
      rows.append([s["knobs"]["setting"], _pct_ci(_top1(s)), _pct_ci(_top1(d)),
                   fmt.signed(100 * c.estimate, 2),
                   fmt.interval(100 * c.low, 100 * c.high, 2), fmt.p(c.p), fmt.p(c.p_holm),
                   c.verdict, f"{_flow(s, 'egf_2')} / {_flow(d, 'egf_2')}",
                   f"{_flow(s, 'grad_norm')} / {_flow(d, 'grad_norm')}"])
    blocks.append(("table", ["Setting", "Sparse top-1 % [CI]", "Dense top-1 % [CI]",
                             "Sparse − dense (pp)", "95% CI", "p", "Holm p", "Verdict",
                             "EGF_2 sparse / dense", "Grad norm sparse / dense"], rows))
    blocks.append(_accuracy_figure(ps))

  bn = batch_norm_comparisons(rs)
  if bn:
    blocks.append(("h3", "Does batch norm help sparse more than dense?"))
    blocks.append(("p", "Per seed, the batch-norm gain is top-1 averaged over the BN settings "
                        "minus the matching no-BN settings; paired over seeds, Holm across "
                        "these three claims. " + " ".join(
                            _pp_sentence(c, c.claim) for c in bn)))

  blocks += _correlation_blocks(rs)
  blocks.append(("p", "Masks do not make dense hardware faster: the wide-sparse network "
                      "executes its full dense FLOPs (see the variant table: FLOPs and latency "
                      "against non-zero params)."))
  return blocks


def _correlation_blocks(rs: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
  normalize = bool(rs[0]["study_fields"].get("egf_normalize"))
  evaluations = sorted({r["study_fields"].get("egf_evaluations") for r in rs})
  blocks: list[tuple[Any, ...]] = [
      ("h3", "Does EGF track accuracy better than the gradient norm?"),
      ("p", "EGF_p = (1/L) Σ_l ||g_l ⊙ m_l||_p over the L kernels (g: a member's minibatch "
            "gradient, m: its masks; "
            + ("each layer divided by its active weights" if normalize
               else "no division by the number of active weights")
            + f"), averaged over {', '.join(map(str, evaluations))} evaluations spread "
            "through training and over members. grad_norm: the global L2 norm of the whole "
            "gradient (all parameters); grad_norm_masked: the same with pruned positions "
            "zeroed. Spearman ρ with final top-1 across variants, 95% BCa bootstrap intervals "
            f"over variants (from {MIN_CORRELATION_VARIANTS} variants on); a negative ρ means "
            "variants with more gradient flow ended less accurate.")]
  rows = [[c["subset"], c["metric"], str(c["n"]), fmt.signed(c["rho"], 2),
           fmt.interval(c["low"], c["high"], 2)] for c in correlations(rs)]
  blocks.append(("table", ["Variants", "Metric", "n", "Spearman ρ", "95% CI"], rows))
  claims = correlation_comparisons(rs)
  if not claims:
    blocks.append(("p", f"Too few variants (fewer than {MIN_CORRELATION_VARIANTS}) to "
                        "compare the correlations; no claim is made."))
  else:
    words = {stats.HIGHER: f"{stats.HIGHER}: EGF tracks top-1 better than the gradient norm",
             stats.LOWER: f"{stats.LOWER}: the gradient norm tracks top-1 better than EGF",
             stats.NO_DIFFERENCE: stats.NO_DIFFERENCE}
    text = []
    for c in claims:
      subset, _, what = c.claim.partition(": ")
      metric = what.split(", ")[1].split(" vs ")[0]
      text.append(f"{metric}, {subset}: {words[c.verdict]} (|ρ| "
                  f"{fmt.number(c.mean_a, 2)} vs {fmt.number(c.mean_b, 2)}, difference "
                  f"{fmt.signed(c.estimate, 2)}, 95% CI {fmt.interval(c.low, c.high, 2)}, "
                  f"bootstrap p = {fmt.p(c.p)}, Holm p = {fmt.p(c.p_holm)}).")
    blocks.append(("p", "|ρ(EGF_p, top-1)| − |ρ(grad_norm, top-1)|, paired bootstrap over "
                        f"variants, Holm across the {len(claims)} claims: " + " ".join(text)))
  blocks.append(_flow_figure(rs))
  blocks.append(_trace_figure(rs))
  return blocks


# --- figures ---------------------------------------------------------------------------------

def _accuracy_figure(ps: Sequence[tuple[Mapping, Mapping]]) -> tuple[Any, ...]:
  fig, (ax,) = figures.new(1, 1, width=max(6.0, 1.1 * len(ps) + 2), height=4.2)
  x = np.arange(len(ps))
  lows = []
  for offset, index, kind in ((-0.2, 0, "sparse"), (0.2, 1, "dense")):
    for i, pair in enumerate(ps):
      top1 = _top1(pair[index])
      mean, low, high = stats.t_interval(top1)
      ax.bar(i + offset, mean, 0.38, color=figures.color(index), alpha=0.7,
             label=kind if i == 0 else None)
      if math.isfinite(low):
        ax.errorbar(i + offset, mean, yerr=[[mean - low], [high - mean]], color="k",
                    capsize=3, lw=1)
      ax.scatter(np.full(len(top1), i + offset), top1, s=10, color="k", zorder=3)
      lows.append(float(top1.min()))
  ax.set_ylim(max(0.0, min(lows) - 0.05), 1.0)
  ax.set_xticks(x, [s["knobs"]["setting"] for s, _ in ps], rotation=30, ha="right")
  ax.set_ylabel("test top-1")
  ax.legend()
  return ("figure", "accuracy_sparse_vs_dense.png", fig,
          "Test top-1 of the wide-sparse and the narrow-dense population per setting: bars "
          "are population means with 95% t intervals, dots are members.")


def _flow_figure(rs: Sequence[Mapping[str, Any]]) -> tuple[Any, ...]:
  metrics = ("egf_1", "egf_2", "grad_norm")
  fig, axs = figures.new(len(metrics), 1, panel=(4.4, 3.8))
  for ax, metric in zip(axs, metrics):
    for index, kind, marker in ((0, "sparse", "o"), (1, "dense", "s")):
      sub = [r for r in rs if r["knobs"]["kind"] == kind
             and isinstance(r["study_fields"].get(metric), (int, float))]
      ax.scatter([r["study_fields"][metric] for r in sub], [r["accuracy"]["top1"] for r in sub],
                 marker=marker, color=figures.color(index), label=kind)
    ax.set_xlabel(f"{metric} (mean over training)")
    ax.set_ylabel("test top-1")
    ax.legend()
  return ("figure", "egf_vs_accuracy.png", fig,
          "Final test top-1 against EGF_1, EGF_2 and the plain gradient norm (means over the "
          "logged evaluations), one point per variant.")


def _trace_figure(rs: Sequence[Mapping[str, Any]]) -> tuple[Any, ...]:
  fig, (ax,) = figures.new(1, 1, width=7.0, height=4.2)
  settings = list(dict.fromkeys(r["knobs"]["setting"] for r in rs))
  for r in rs:
    trace = r["study_fields"].get("flow_trace") or {}
    ax.plot(trace.get("steps", []), trace.get("egf_2", []),
            linestyle="-" if r["knobs"]["kind"] == "sparse" else "--", marker=".",
            color=figures.color(settings.index(r["knobs"]["setting"])), label=r["variant"])
  ax.set_yscale("log")
  ax.set_xlabel("step")
  ax.set_ylabel("EGF_2 (population mean)")
  ax.legend(fontsize=6, ncol=2)
  return ("figure", "egf_traces.png", fig,
          "EGF_2 at each logged evaluation through training, per variant (one colour per "
          "setting; solid: sparse, dashed: dense).")
