"""Compression bias (Hooker et al. 2019/2020; PAPERS.md sections 17 and 9): who pays when a
population is compressed?

A dense population (`config.population.members` models) and compressed populations of it —
gradual magnitude pruning from scratch (Zhu & Gupta), one-shot magnitude pruning of the
trained dense members followed by a fine-tune with the masks fixed, and post-training
int`b` fake quantization of the dense members — each scored on the one sheet (top-1, per
class, per group, modal CIEs against dense beside their noise floor, churn) plus the
compression costs of `exemplars.compression_costs`: taxicab CIEs, per-class tests, per-group
drops with intervals and the under-represented group's excess drop. The producers are the
shared recipes (`studies.recipes`: dense, pruned_gradual, pruned_one_shot, quantized).

Formulations chosen where PAPERS.md is [mem] or silent:
  * CIE: the modal CIE against the dense population (the sheet's `cie`; modal ties as the
    sheet defines them); taxicab CIE: the top k = round(taxicab_fraction · N) examples by
    the L1 distance of the label distributions.
  * Pruning distribution: gradual pruning is layer-wise by default (`distribution=
    'uniform'`: every prunable layer is pruned to the target sparsity by its own
    threshold, as TF model-pruning, which Hooker et al. used, does); 'global' ranks all
    weights together. One-shot pruning ranks globally by default. Both are recorded knobs.
  * Per-class impact: per class, recall minus each member's own accuracy ('model'; or
    'population', gen_tstatistic.py's constant; or 'none'), compressed vs dense: paired t
    for derived populations (one-shot, quantized: member i is dense member i compressed),
    Welch t for gradual pruning (retrained, as in Hooker et al.). "lower" = the class lost
    more than the top line.
  * Who paid: the under-represented group is the smallest group (or the named one); the
    claim is the change of the per-member gap accuracy(rest) − accuracy(group), i.e. the
    excess drop drop(group) − drop(rest); every group's drop carries a 95% t interval over
    members. A group within `floor_margin` of chance (its majority-label rate) under dense
    is reported as not interpretable and not tested (floor effect).
  * Families: every claim comes from `tradeoffs.stats`; the claims of one report section
    (top-1/worst-class/worst-group verdicts; the excess drops; the group drops; the per-class
    tests) are Holm-corrected together.
  * Weight bytes: the recipes' one definition (quantized: packed codes + float32 scales +
    other leaves; pruned: stored dense). Compression ratio: float32 bits / bits of the
    non-zero weights as stored (pruned zeros free, codes at their width, scales not
    counted; `efficiency.compression_ratio`).
"""

from __future__ import annotations

import math
import os
from typing import Any, Mapping, Sequence

import ml_collections
import numpy as np

from tradeoffs import efficiency
from tradeoffs import exemplars
from tradeoffs import fairness
from tradeoffs import quantization
from tradeoffs import stats
from tradeoffs.report import figures
from tradeoffs.report import format as fmt
from tradeoffs.report import verdict as verdict_lib
from tradeoffs.sparsity import distributions as distributions_lib
from tradeoffs.studies import base
from tradeoffs.studies import recipes
from tradeoffs.train import experiment

NAME = "compression_bias"
TITLE = "Compression bias: who pays when a population is compressed"
DENSE = "dense"
# config key -> (variant prefix, recipe)
PRUNING = {"gradual": ("gmp", "pruned_gradual"), "one_shot": ("oneshot", "pruned_one_shot")}
NORMALIZATIONS = ("model", "population", "none")
DISTRIBUTION_WORDS = {"uniform": "layer-wise (each layer at the target sparsity)",
                      "global": "global (all layers ranked together)",
                      "erk": "ERK (layer densities by Erdős–Rényi-Kernel)"}


# ---------------------------------------------------------------------------------------
# Plan.


def _fail(key: str, value: Any, allowed: str) -> None:
  raise ValueError(f"--config.study.{key}={value!r}: {allowed}")


def _number(s: Any, key: str, low: float, high: float, *, integer: bool = False,
            high_open: bool = False, low_open: bool = False) -> float:
  node = s
  for part in key.split("."):
    node = node[part]
  ok = isinstance(node, (int, float, np.number)) and not isinstance(node, bool) and (
      not integer or float(node) == int(node))
  if ok:
    v = float(node)
    ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
  if not ok:
    bounds = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    _fail(key, node, f"expected {'an integer' if integer else 'a number'} in {bounds}")
  return float(node)


def _distribution(value: Any, key: str) -> Any:
  value = value.to_dict() if hasattr(value, "to_dict") else value
  try:
    distributions_lib.check_distribution(value)
  except (ValueError, TypeError) as e:
    _fail(key, value, f"{e}; choose from {distributions_lib.names()} or a mapping of layer "
                      "name to sparsity")
  return dict(value) if isinstance(value, Mapping) else str(value)


def _validate(config: Any) -> None:
  if "study" not in config:
    raise ValueError("config has no 'study' section; use experiments/configs/"
                     "compression_bias.py")
  s = config.study
  methods = tuple(s.methods)
  if any(m not in PRUNING for m in methods) or len(set(methods)) != len(methods):
    _fail("methods", methods, f"each must appear once and be one of {sorted(PRUNING)}")
  levels = tuple(s.sparsities)
  for level in levels:
    if isinstance(level, bool) or not isinstance(level, (int, float)) or \
        not 0.0 < float(level) < 1.0:
      _fail("sparsities", levels, "every sparsity must be a number in (0, 1)")
  if methods and not levels:
    _fail("sparsities", levels, f"methods={methods!r} need at least one sparsity in (0, 1)")
  if len({f"{float(v):g}" for v in levels}) != len(levels):
    _fail("sparsities", levels, "has duplicates")
  steps = int(config.train.steps)
  if "gradual" in methods:
    begin = _number(s, "gradual.begin_step", 0, math.inf, integer=True, high_open=True)
    end = _number(s, "gradual.end_step", 0, math.inf, integer=True, high_open=True)
    if end < begin:
      _fail("gradual.end_step", int(end), f"is before begin_step={int(begin)}")
    if end >= steps:
      _fail("gradual.end_step", int(end), f"must be < --config.train.steps={steps} (the last "
                                          "update is step steps-1) or the target is never "
                                          "reached")
    _number(s, "gradual.frequency", 1, math.inf, integer=True, high_open=True)
    _number(s, "gradual.initial_sparsity", 0, min(float(v) for v in levels))
    _distribution(s.gradual.distribution, "gradual.distribution")
  if "one_shot" in methods:
    _number(s, "one_shot.finetune_steps", 1, math.inf, integer=True, high_open=True)
    _number(s, "one_shot.learning_rate", 0, math.inf, high_open=True)
    _distribution(s.one_shot.distribution, "one_shot.distribution")
  bits = tuple(s.bits)
  for b in bits:
    if isinstance(b, bool) or not isinstance(b, (int, np.integer)) or not 2 <= b <= 8:
      _fail("bits", bits, "every bit width must be an integer in [2, 8] (8 = int8)")
  if len(set(bits)) != len(bits):
    _fail("bits", bits, "has duplicates")
  if s.granularity not in quantization.GRANULARITIES:
    _fail("granularity", s.granularity, f"choose from {list(quantization.GRANULARITIES)}")
  _number(s, "taxicab_fraction", 0, 1)
  _number(s, "floor_margin", 0, 1)
  if s.ttest_normalize not in NORMALIZATIONS:
    _fail("ttest_normalize", s.ttest_normalize, f"choose from {list(NORMALIZATIONS)}")
  _number(s, "audit_max_images", 0, math.inf, integer=True, high_open=True)
  if int(config.population.members) < 2:
    raise ValueError(f"--config.population.members={config.population.members}: modal "
                     "labels and per-class tests need populations; use at least 2")


training_config = base.training_config


def finetune_config(config: Any) -> ml_collections.ConfigDict:
  """The one-shot fine-tune: the dense config for `finetune_steps` (learning rate
  `one_shot.learning_rate`, 0 = the optimizer's), warm-up capped at the fine-tune."""
  c = training_config(config)
  o = config.study.one_shot
  c.train.steps = int(o.finetune_steps)
  if float(o.learning_rate) > 0:
    c.optimizer.learning_rate = float(o.learning_rate)
  c.optimizer.warmup_steps = min(int(c.optimizer.get("warmup_steps", 0) or 0), c.train.steps)
  return c


def plan(config: Any) -> list[base.Variant]:
  """dense, then pruned (per method, per sparsity), then quantized; names as before the
  port (gmp_0.9, oneshot_0.9, int8)."""
  _validate(config)
  s = config.study
  dense = training_config(config)
  out = [base.Variant(DENSE, "dense", {}, None, dense)]
  for method in s.methods:
    prefix, technique = PRUNING[method]
    for level in s.sparsities:
      name = f"{prefix}_{float(level):g}"
      if method == "gradual":
        g = s.gradual
        knobs = {"sparsity": float(level), "begin_step": int(g.begin_step),
                 "end_step": int(g.end_step), "frequency": int(g.frequency),
                 "initial_sparsity": float(g.initial_sparsity),
                 "distribution": _distribution(g.distribution, "gradual.distribution")}
        out.append(base.Variant(name, technique, knobs, DENSE, dense))
      else:
        o = s.one_shot
        knobs = {"sparsity": float(level),
                 "distribution": _distribution(o.distribution, "one_shot.distribution"),
                 "finetune_steps": int(o.finetune_steps),
                 "learning_rate": float(o.learning_rate)}
        out.append(base.Variant(name, technique, knobs, DENSE, finetune_config(config)))
  for b in s.bits:
    out.append(base.Variant(f"int{int(b)}", "quantized",
                            {"bits": int(b), "granularity": str(s.granularity)}, DENSE))
  if len(out) < 2:
    raise ValueError("--config.study.methods/sparsities/bits plan no compressed variant: "
                     "set methods and sparsities, or bits")
  names = [v.name for v in out[1:]]
  if s.audit_variant and s.audit_variant not in names:
    _fail("audit_variant", s.audit_variant, f"choose a compressed variant of this study "
                                            f"({names}) or '' (the most compressed)")
  return out


# ---------------------------------------------------------------------------------------
# Produce.


def _compression_ratio(ctx: Any, variant: base.Variant, outcome: base.Outcome) -> float:
  if variant.technique == "quantized":
    params = recipes.member_variables(recipes.source(ctx, DENSE).state)["params"]
    bits = quantization.quantized_bits_per_leaf(params, int(variant.knobs["bits"]))
    return efficiency.compression_ratio(params, bits)
  e = outcome.efficiency  # Float32 weights with exact zeros: the same ratio, by counts.
  return float(e["params"]) / max(float(e["nonzero_params"]), 1.0) if e.get("params") else 1.0


def produce(ctx: Any, variant: base.Variant) -> base.Outcome:
  outcome = recipes.produce(ctx, variant)
  fields = dict(outcome.study_fields)
  fields["compression_ratio"] = (1.0 if variant.source is None
                                 else _compression_ratio(ctx, variant, outcome))
  if variant.source is not None:
    s = ctx.config.study
    config = outcome.config or variant.train_config
    test = ctx.dataset(config).test
    ref = np.asarray(ctx.predictions(variant.source).logits)
    logits = np.asarray(outcome.logits)
    groups = test.groups if np.size(test.groups) and np.shape(test.groups)[-1] else None
    costs = exemplars.compression_costs(
        ref, logits, test.labels, groups, test.group_names,
        paired=bool(outcome.derived) and ref.shape[0] == logits.shape[0],
        taxicab_fraction=float(s.taxicab_fraction), normalize=str(s.ttest_normalize),
        underrepresented=s.underrepresented_group or None,
        floor_margin=float(s.floor_margin), claim_prefix=f"{variant.name}: ")
    outcome.hidden_costs = {**outcome.hidden_costs, **costs}
    ids, names = fairness.disparity.group_ids(groups, test.group_names, len(test.labels))
    relative = os.path.join("cie", f"{variant.name}.json")
    audit = exemplars.write_audit(os.path.join(ctx.workdir, relative), variant.name,
                                  variant.source, ref, logits, test.labels, test.ids,
                                  group_ids=ids, group_names=names,
                                  num_classes=logits.shape[-1],
                                  top=int(s.audit_max_images))
    fields["audit"] = {"json": relative, "count": audit["count"], "top": audit["top"]}
  outcome.study_fields = fields
  return outcome


# ---------------------------------------------------------------------------------------
# The report.


def _ours(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
  return [r for r in records if r.get("study") == NAME]


def _axis(record: Mapping[str, Any]) -> tuple[str, float]:
  """(panel, x): pruning panels by sparsity, quantization by bits (dense: 0 / 32)."""
  k = record.get("knobs") or {}
  if record.get("technique") == "quantized":
    return "quantized", float(k["bits"])
  return str(record.get("technique")), float(k.get("sparsity", 0.0))


def _t(values: Any) -> tuple[float, float, float]:
  values = [v for v in (values or []) if v is not None]
  return stats.t_interval(values) if len(values) > 1 else (
      (float(np.mean(values)) if values else float("nan")), float("nan"), float("nan"))


def _pp_interval(estimate: Any, low: Any, high: Any) -> str:
  if estimate is None or not math.isfinite(float(estimate)):
    return fmt.DASH
  return f"{fmt.signed(100 * estimate)} {fmt.interval(100 * (low or math.nan), 100 * (high or math.nan))}"


def _comparisons(records, getter) -> list[stats.Comparison]:
  out = []
  for r in records:
    for d in getter(r):
      if d:
        out.append(stats.Comparison.from_dict(d))
  return stats.family(out)


def _group_claims(r):
  drops = (r.get("hidden_costs") or {}).get("group_drops") or {}
  return [g.get("comparison") for g in drops.values()]


def _class_claims(r):
  return list((r.get("hidden_costs") or {}).get("per_class_tests") or [])


def _disparity_claims(r):
  return [((r.get("hidden_costs") or {}).get("disparity") or {}).get("comparison")]


def _distribution_sentence(records: Sequence[Mapping[str, Any]]) -> str:
  parts = []
  for technique, label in (("pruned_gradual", "gradual pruning (gmp_*)"),
                           ("pruned_one_shot", "one-shot pruning (oneshot_*)")):
    found = {str((r.get("knobs") or {}).get("distribution")) for r in records
             if r.get("technique") == technique}
    if found:
      parts.append(f"{label} ranks weights " + " / ".join(
          DISTRIBUTION_WORDS.get(d, d) for d in sorted(found)))
  return ("; ".join(parts) + ".") if parts else ""


def headline_table(records, dense) -> tuple[str, list[str], list[list[str]]]:
  headers = ["Variant", "Weight bytes", "Ratio", "Top-1 % [95% CI]", "CIE (kind)",
             "CIE null median / p95", "Taxicab k (∩ modal)", "Under-rep. drop pt [95% CI]"]
  rows = []
  for r in records:
    a, h, f = r["accuracy"], r["hidden_costs"], r.get("study_fields") or {}
    mean, low, high = _t(a.get("per_member_top1"))
    null = h.get("cie_null") or {}
    tax = h.get("taxicab") or {}
    under = (h.get("underrepresented") or {}).get("group")
    drop = ((h.get("group_drops") or {}).get(under) or {}) if under else {}
    drop_cell = (_pp_interval(drop.get("drop"), drop.get("drop_low"), drop.get("drop_high"))
                 if drop else fmt.DASH)
    if drop and not drop.get("interpretable"):
      drop_cell += " (near chance)"
    rows.append([
        r["variant"], fmt.count(r["efficiency"].get("weight_bytes")),
        fmt.number(f.get("compression_ratio")),
        f"{100 * mean:.1f} [{100 * low:.1f}, {100 * high:.1f}]" if math.isfinite(low)
        else fmt.accuracy(mean),
        f"{h.get('cie_count', '–')} ({h.get('cie_kind', '–')})",
        f"{null['median']:.0f} / {null['p95']:.0f}" if null else fmt.DASH,
        (f"{tax['k']} ({fmt.fraction(tax.get('topk_modal_overlap'), 2)})" if tax else fmt.DASH),
        drop_cell])
  return ("table", headers, rows)


def _panels(records):
  out: dict[str, list] = {}
  for r in records:
    panel, x = _axis(r)
    out.setdefault(panel, []).append((x, r))
  return out


def _panel_title(panel: str, records) -> str:
  title = {"pruned_gradual": "gradual pruning from scratch",
           "pruned_one_shot": "one-shot pruning + fine-tune",
           "quantized": "post-training quantization"}.get(panel, panel)
  found = sorted({str((r.get("knobs") or {}).get("distribution")) for r in records
                  if (r.get("knobs") or {}).get("distribution") is not None})
  words = {"uniform": "layer-wise", "global": "global"}
  return title + (f" ({', '.join(words.get(d, d) for d in found)})" if found else "")


def _plot(records, dense, value, error=None, ylabel="", band=None):
  """One panel per technique: value(record) against sparsity (or bits), dense at x=0 (32)."""
  panels = {p: v for p, v in _panels(records).items() if p != "dense"}
  if not panels:
    return None
  fig, axes = figures.new(len(panels))
  for ax, (panel, points) in zip(axes, panels.items()):
    chain = [(32.0 if panel == "quantized" else 0.0, dense)] + sorted(points, key=lambda p: p[0])
    xs = [x for x, _ in chain]
    ys = [value(r) for _, r in chain]
    errs = None
    if error is not None:
      lows_highs = [error(r) for _, r in chain]
      errs = np.array([[y - lo for y, (lo, _) in zip(ys, lows_highs)],
                       [hi - y for y, (_, hi) in zip(ys, lows_highs)]])
      errs = np.nan_to_num(errs)
    ax.errorbar(xs, ys, yerr=errs, marker="o", capsize=3, color=figures.color(0))
    if band is not None:
      bx = [x for x, r in chain if band(r) is not None]
      ax.plot(bx, [band(r) for x, r in chain if band(r) is not None], "--", color="0.5",
              label="null p95")
      ax.legend()
    if panel == "quantized":
      ax.set_xscale("log", base=2)
      ax.set_xticks(xs)
      ax.set_xticklabels([f"{x:g}" for x in xs])
      ax.invert_xaxis()
      ax.set_xlabel("weight bits (32 = dense)")
    else:
      ax.set_xlabel("sparsity (fraction of prunable weights removed)")
    ax.set_title(_panel_title(panel, [r for _, r in points]))
    ax.set_ylabel(ylabel)
  return fig


def _plot_group_drops(records, dense):
  groups = sorted({g for r in records for g in ((r["hidden_costs"].get("group_drops")) or {})})
  panels = {p: v for p, v in _panels(records).items() if p != "dense"}
  if not groups or not panels:
    return None
  fig, axes = figures.new(len(panels))
  for ax, (panel, points) in zip(axes, panels.items()):
    points = sorted(points, key=lambda p: p[0])
    for j, g in enumerate(groups):
      xs, ys, lo, hi = [], [], [], []
      for x, r in points:
        d = (r["hidden_costs"].get("group_drops") or {}).get(g) or {}
        if d.get("drop") is None:
          continue
        xs.append(x + (j - (len(groups) - 1) / 2) * (0.01 if panel != "quantized" else 0.2))
        ys.append(100 * d["drop"])
        lo.append(100 * (d["drop"] - (d.get("drop_low") if d.get("drop_low") is not None
                                      else d["drop"])))
        hi.append(100 * ((d.get("drop_high") if d.get("drop_high") is not None
                          else d["drop"]) - d["drop"]))
      ax.errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, color=figures.color(j),
                  label=g, ls="-")
    ax.axhline(0, color="0.5", lw=0.8)
    if panel == "quantized":
      ax.invert_xaxis()
      ax.set_xlabel("weight bits")
    else:
      ax.set_xlabel("sparsity")
    ax.set_ylabel("accuracy drop vs dense (pt)")
    ax.set_title(_panel_title(panel, [r for _, r in points]))
    ax.legend()
  return fig


def _audit_variant(records, config) -> Mapping[str, Any] | None:
  compressed = [r for r in records if (r.get("study_fields") or {}).get("audit")]
  wanted = str(config.study.get("audit_variant", "") or "") if "study" in config else ""
  if wanted:
    return next((r for r in compressed if r["variant"] == wanted), None)
  if not compressed:
    return None
  best = max(r["study_fields"].get("compression_ratio") or 0.0 for r in compressed)
  return next(r for r in compressed if (r["study_fields"].get("compression_ratio") or 0.0)
              == best)


def _audit_blocks(records, config) -> list[tuple[Any, ...]]:
  record = _audit_variant(records, config)
  if record is None:
    return []
  audit = record["study_fields"]["audit"]
  blocks: list[tuple[Any, ...]] = [
      ("h2", "Audit of the compression-identified exemplars"),
      ("p", f"{record['variant']} (the most compressed variant unless "
            f"--config.study.audit_variant names one) has {audit['count']} modal CIEs "
            f"against {record.get('source')}; all of them are listed by id in "
            f"{audit['json']} (every compressed variant has its own list in cie/), with both "
            "modal labels, the true label and the taxicab score, highest score first.")]
  top = audit.get("top") or []
  if not top:
    return blocks
  try:
    test = experiment.load_dataset(training_config(config)).test
  except (FileNotFoundError, OSError, ValueError) as e:
    return blocks + [("p", f"The audit images are not drawn: the dataset did not load ({e}).")]
  index = np.asarray([t["index"] for t in top])
  if index.max() >= len(test.labels) or np.any(test.ids[index] != [t["id"] for t in top]):
    return blocks + [("p", "The audit images are not drawn: the dataset's test split no "
                           "longer matches the recorded example ids.")]
  fig, drawn = exemplars.audit_figure(
      test.images[index], test.ids[index], [t["dense_modal"] for t in top],
      [t["compressed_modal"] for t in top], test.labels[index],
      is_cie=np.ones(len(top), bool), scores=[t["score"] for t in top],
      reference=str(record.get("source")), variant=record["variant"])
  blocks.append(("figure", "cie_audit.png", fig,
                 f"The {drawn} CIEs of {record['variant']} with the highest taxicab scores, "
                 f"each captioned with its id, the modal label of {record.get('source')} and "
                 f"of {record['variant']}, and the true label."))
  return blocks


def sections(records: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[Any, ...]]:
  records = _ours(records)
  dense = next((r for r in records if r["variant"] == DENSE), None)
  compressed = [r for r in records if r is not dense]
  blocks: list[tuple[Any, ...]] = [("h2", "Who paid for compression")]
  if dense is None or not compressed:
    return blocks + [("p", "No dense/compressed pair is recorded yet.")]
  tc = dense.get("config") or {}
  seeds = dense.get("seeds") or {}
  blocks.append(("p", f"Dataset {(tc.get('dataset') or {}).get('name', '?')}, model "
                      f"{(tc.get('model') or {}).get('name', '?')}, {dense['members']} members "
                      f"per population (seeds {', '.join(f'{k} {v[0]}..{v[-1]}' for k, v in seeds.items() if isinstance(v, list) and v) or 'as recorded'}). "
                      "Every compressed population is compared with the dense one. "
                      + _distribution_sentence(records) + " Top-1 intervals are 95% t "
                      "intervals over members; CIE counts test examples whose modal label "
                      "changed, labelled 'derived' (the dense members compressed) or "
                      "'retrained' (gradual pruning from scratch), beside the noise floor: "
                      "CIE counts between random halves of the dense population (half as "
                      "many members per side, so a generous floor). Weight bytes: quantized = "
                      "packed codes + float32 scales + other leaves; pruned weights are "
                      "stored dense."))
  blocks.append(headline_table(records, dense))
  fig = _plot(records, dense, lambda r: 100 * r["accuracy"]["top1"],
              error=lambda r: tuple(100 * v for v in _t(r["accuracy"].get("per_member_top1"))[1:]),
              ylabel="top-1 (%)")
  if fig is not None:
    blocks.append(("figure", "top1_vs_compression.png", fig,
                   "Top-1 (mean over members, 95% t interval) against sparsity and bit width. "
                   + _distribution_sentence(records)))
  fig = _plot(records, dense, lambda r: r["hidden_costs"].get("cie_count", 0), ylabel="modal CIEs",
              band=lambda r: (r["hidden_costs"].get("cie_null") or {}).get("p95"))
  if fig is not None:
    blocks.append(("figure", "cie_vs_compression.png", fig,
                   "Modal CIE count against compression; the dashed line is the 95th "
                   "percentile of CIE counts between random halves of the dense population."))

  blocks += verdict_lib.section(
      records, dense, "Verdicts against dense",
      "paired t for the dense members compressed (one-shot, quantized), Welch t for "
      "gradual pruning (retrained)")

  under = next(((r["hidden_costs"].get("underrepresented") or {}).get("group")
                for r in compressed if r["hidden_costs"].get("underrepresented")), None)
  if under is None:
    blocks.append(("p", "The dataset has no group attributes: who paid is answered per "
                        "class only (below)."))
  else:
    disparity = _comparisons(compressed, _disparity_claims)
    floor = [r["variant"] for r in compressed
             if not (r["hidden_costs"].get("disparity") or {}).get("interpretable", True)]
    share = next(r["hidden_costs"]["underrepresented"]["share_of_examples"] for r in compressed
                 if r["hidden_costs"].get("underrepresented"))
    blocks += [("h2", "Who paid: the under-represented group"),
               ("p", f"The under-represented group is {under} ({fmt.accuracy(share)} of the "
                     "test examples). Each claim compares the per-member gap accuracy(rest) − "
                     f"accuracy({under}) of the compressed population with dense's: 'higher' "
                     f"means {under} lost more than the rest (the estimate is the excess "
                     f"drop). {len(disparity)} claims, Holm-corrected together.")]
    if disparity:
      blocks.append(verdict_lib.table(disparity))
      harder = [c for c in disparity if c.verdict == stats.HIGHER]
      blocks.append(("p", (f"Yes: compression hit {under} harder in {len(harder)} of "
                           f"{len(disparity)} tested variants: "
                           + "; ".join(verdict_lib.sentence(c) for c in harder) + ".")
                     if harder else
                     (f"No: in none of the {len(disparity)} tested variants did {under} lose "
                      "detectably more than the rest (Holm-corrected).")))
      softer = [c for c in disparity if c.verdict == stats.LOWER]
      if softer:
        blocks.append(("p", "It lost detectably less than the rest in: "
                            + "; ".join(verdict_lib.sentence(c) for c in softer) + "."))
    if floor:
      blocks.append(("p", "Not tested (a side is within the floor margin of chance under "
                          f"dense, so its drop is not interpretable): {', '.join(floor)}."))
    drops = _comparisons(compressed, _group_claims)
    rows = []
    by_claim = {c.claim: c for c in drops}
    for r in compressed:
      for g, d in (r["hidden_costs"].get("group_drops") or {}).items():
        c = by_claim.get(f"{r['variant']}: {g}")
        rows.append([r["variant"], g, fmt.accuracy(d.get("reference_accuracy")),
                     _pp_interval(d.get("drop"), d.get("drop_low"), d.get("drop_high")),
                     str(d.get("cie_count", "–")),
                     fmt.p(c.p_holm) if c else "–",
                     c.verdict if c else NOT_TESTED])
    blocks += [("h2", "Per-group drops"),
               ("p", f"Drop = dense minus compressed accuracy (percentage points, 95% t "
                     f"interval over members); {len(drops)} tested drops, Holm-corrected "
                     "together; 'lower' = the group's accuracy fell detectably. A group "
                     "within the floor margin of chance under dense is not tested."),
               ("table", ["Variant", "Group", "Dense accuracy", "Drop pt [95% CI]", "CIEs",
                          "Holm p", "Verdict"], rows)]
    fig = _plot_group_drops(records, dense)
    if fig is not None:
      blocks.append(("figure", "group_drop_vs_compression.png", fig,
                     "Accuracy drop of each group against compression, with 95% t intervals "
                     "over members. " + _distribution_sentence(records)))

  classes = _comparisons(compressed, _class_claims)
  if classes:
    rows = []
    for r in compressed:
      mine = [c for c in classes if c.claim.startswith(f"{r['variant']}: ")]
      lower = [c.claim.split("class ")[-1] for c in mine if c.verdict == stats.LOWER]
      higher = [c.claim.split("class ")[-1] for c in mine if c.verdict == stats.HIGHER]
      raw = sum(1 for c in mine if c.p < stats.ALPHA and c.estimate < 0)
      rows.append([r["variant"], str(len(mine)), ", ".join(lower) or "none",
                   ", ".join(higher) or "none", str(raw),
                   fmt.p(min((c.p_holm for c in mine), default=float("nan")))])
    normalize = next((r["hidden_costs"].get("per_class_normalize") for r in compressed), "")
    blocks += [("h2", "Per-class impact"),
               ("p", f"Per class: recall minus accuracy ({normalize} normalisation), "
                     "compressed vs dense; paired t for derived populations, Welch t for "
                     f"retrained ones. {len(classes)} tests in one Holm family; 'lower' = the "
                     "class lost more than the top line. The uncorrected count (p < 0.05) is "
                     "shown for comparison with reports before the correction."),
               ("table", ["Variant", "Classes tested", "Lower (Holm)", "Higher (Holm)",
                          "Lower, uncorrected", "Smallest Holm p"], rows)]
  return blocks + _audit_blocks(records, config)


NOT_TESTED = "not tested (near chance)"
