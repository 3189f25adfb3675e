"""When does loss-based prioritization fail? Selective Backprop and loss-proportional
sampling against uniform selection under label noise.

Hu, Hu, Liu, Hooker & Yosinski (ICML 2021 SubSetML workshop, arXiv 2107.07741): methods
that up-weight high-loss examples degrade on noisy data, because mislabelled examples keep
a high loss and are over-sampled. Every variant here (the shared `loss_prioritized`
recipe) trains a population on `digits` with `label_noise` of the training labels changed
(uniformly to another class, `tradeoffs.data.noise`; the changed ids go to the workdir)
and is scored on the clean test set. Per noise rate:

  * `full`: plain training, every example of each batch backpropagated (context only);
  * `uniform`: each batch forward-passed, k = backward_fraction · batch of it chosen
    uniformly and backpropagated — the reference the verdicts compare against;
  * `sb_beta<β>`: Selective Backprop (Jiang et al. 2019): keep example i with probability
    max(floor, (percentile of ℓ_i among the last history_size losses / 100)^β), the first
    k kept examples of the (shuffled) batch backpropagated, weight-0 rows padding a short
    selection;
  * `lossprop`: k draws with replacement with P(i) ∝ ℓ_i.

Formulations chosen:
  * backpropagated examples are counted two ways: rows through the backward pass (k per
    step, padding included; the wall-clock reflects these: forward on the batch, then
    forward + backward on k) and rows with nonzero weight.
  * accuracy verdicts: each variant's per-member clean top-1 against `uniform` at the same
    noise rate (Welch t over members; member i of each shares init and data-order seeds),
    one Holm family over all of them.
  * the failure mode: per member, the share of selected examples whose label was changed
    against the share among forward-passed examples (its null, ≈ the noise rate), paired
    over members, one Holm family over the noisy rates.
  * wall-clock: the variant's training seconds (build, compilation and training); variants
    of the first noise rate compile their step, later rates reuse it, so compare
    wall-clock within a noise rate other than the first.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import numpy as np

from tradeoffs import selection
from tradeoffs import stats
from tradeoffs.data import noise as data_noise
from tradeoffs.report import figures
from tradeoffs.report import format as fmt
from tradeoffs.report import verdict as verdict_lib
from tradeoffs.report.pareto import get_path
from tradeoffs.studies import base
from tradeoffs.studies import recipes

NAME = "loss_prioritization"
TITLE = "When does loss-based prioritization fail? Selective Backprop under label noise"
METHODS = ("full",) + selection.METHODS
TAGS = {"full": "full", "uniform": "uniform", "loss_proportional": "lossprop"}


def _fail(key: str, value: Any, allowed: str) -> None:
  raise ValueError(f"--config.{key}={value!r}: expected {allowed}")


def validate(config: Any) -> None:
  if "study" not in config:
    raise ValueError("config has no 'study' section; use "
                     "experiments/configs/loss_prioritization.py")
  s = config.study
  rates = base.as_tuple(s.noise_rates)
  if not rates:
    _fail("study.noise_rates", s.noise_rates, "a non-empty tuple of rates in [0, 1)")
  for rate in rates:
    base.check_number(rate, "study.noise_rates", 0.0, 1.0, high_open=True)
    data_noise.check_rate(rate, "--config.study.noise_rates")
  if len({float(r) for r in rates}) != len(rates):
    _fail("study.noise_rates", s.noise_rates, "distinct rates")
  methods = base.as_tuple(s.methods)
  if "uniform" not in methods or any(m not in METHODS for m in methods):
    _fail("study.methods", s.methods, f"a tuple from {list(METHODS)} including 'uniform' "
          "(the reference)")
  betas = base.as_tuple(s.betas)
  if "selective_backprop" in methods and not betas:
    _fail("study.betas", s.betas, "at least one β > 0 for 'selective_backprop'")
  for beta in betas:
    base.check_number(beta, "study.betas", 0.0, low_open=True)
  if len({float(b) for b in betas}) != len(betas):
    _fail("study.betas", s.betas, "distinct values")
  base.check_number(s.backward_fraction, "study.backward_fraction", 0.0, 1.0, low_open=True)
  base.check_number(s.floor, "study.floor", 0.0, 1.0)
  base.check_number(s.history_size, "study.history_size", 1, integer=True)
  base.check_number(s.noise_seed, "study.noise_seed", 0, integer=True)
  if s.noise_kind not in data_noise.LABEL_NOISE_KINDS:
    _fail("study.noise_kind", s.noise_kind, f"one of {list(data_noise.LABEL_NOISE_KINDS)}")
  base.check_number(config.population.members, "population.members", 2, integer=True)


def _rate_tag(rate: float) -> str:
  return f"n{100 * float(rate):g}"


def variant_name(method: str, rate: float, beta: float | None = None) -> str:
  tag = f"sb_beta{float(beta):g}" if method == "selective_backprop" else TAGS[method]
  return f"{tag}_{_rate_tag(rate)}"


def plan(config: Any) -> list[base.Variant]:
  """Per noise rate: uniform (the reference) first, then the others."""
  validate(config)
  s = config.study
  train_config = base.training_config(config)
  common = {"backward_fraction": float(s.backward_fraction), "floor": float(s.floor),
            "history_size": int(s.history_size), "noise_seed": int(s.noise_seed),
            "noise_kind": str(s.noise_kind)}
  methods = base.as_tuple(s.methods)
  out = []
  for rate in sorted(float(r) for r in base.as_tuple(s.noise_rates)):
    reference = variant_name("uniform", rate)
    points = [("uniform", None)] + [(m, None) for m in methods
                                    if m not in ("uniform", "selective_backprop")]
    if "selective_backprop" in methods:
      points += [("selective_backprop", float(b)) for b in sorted(
          float(v) for v in base.as_tuple(s.betas))]
    for method, beta in points:
      knobs = {"method": method, "label_noise": rate, **common,
               **({"beta": beta} if beta is not None else {})}
      name = variant_name(method, rate, beta)
      out.append(base.Variant(name, "loss_prioritized", knobs,
                              None if name == reference else reference, train_config))
  return out


def produce(ctx: Any, variant: base.Variant) -> base.Outcome:
  return recipes.produce(ctx, variant)


# ---------------------------------------------------------------------------------------
# The report.


def _ours(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
  order = {m: i for i, m in enumerate(("full", "uniform", "selective_backprop",
                                       "loss_proportional"))}
  return sorted((r for r in records if r.get("technique") == "loss_prioritized"),
                key=lambda r: (float(r["knobs"]["label_noise"]),
                               order.get(r["knobs"]["method"], 9),
                               float(r["knobs"].get("beta") or 0)))


def _fields(record: Mapping[str, Any]) -> Mapping[str, Any]:
  return record.get("study_fields") or {}


def _top1(record: Mapping[str, Any]) -> list[float] | None:
  values = get_path(record, "accuracy.per_member_top1")
  if not isinstance(values, list) or not values or any(v is None for v in values):
    return None
  return [float(v) for v in values]


def _shares(record: Mapping[str, Any]) -> tuple[list[float], list[float]] | None:
  f = _fields(record)
  a, b = f.get("selected_noisy_share"), f.get("forward_noisy_share")
  if not isinstance(a, list) or not isinstance(b, list) or len(a) != len(b) or not a:
    return None
  return [float(v) for v in a], [float(v) for v in b]


def _label(record: Mapping[str, Any]) -> str:
  k = record["knobs"]
  if k["method"] == "selective_backprop":
    return f"Selective Backprop β={float(k['beta']):g}"
  return {"full": "full batch", "uniform": "uniform",
          "loss_proportional": "loss-proportional"}[k["method"]]


def _cell(values: Sequence[float] | None, scale: float = 100.0) -> str:
  if not values:
    return fmt.DASH
  mean, low, high = stats.t_interval(values)
  if not math.isfinite(low):
    return f"{scale * mean:.1f}"
  return f"{scale * mean:.1f} [{scale * low:.1f}, {scale * high:.1f}]"


def _mean(values: Any) -> float | None:
  return float(np.mean(values)) if isinstance(values, list) and values else None


def accuracy_table(records: Sequence[Mapping[str, Any]]) -> tuple[Any, ...]:
  headers = ["Variant", "Noise", "Selection", "Backward rows", "Nonzero-weight rows",
             "Clean top-1 % [95% CI]", "Noisy % of selected [95% CI]",
             "Noisy % of forwarded", "Train s"]
  rows = []
  for r in _ours(records):
    f = _fields(r)
    shares = _shares(r)
    rows.append([r["variant"], f"{100 * float(r['knobs']['label_noise']):g}%", _label(r),
                 fmt.count(_mean(f.get("backward_examples"))),
                 fmt.count(_mean(f.get("selected_examples"))), _cell(_top1(r)),
                 _cell(shares[0]) if shares else fmt.DASH,
                 _cell(shares[1]) if shares else fmt.DASH,
                 fmt.number(f.get("train_seconds", r.get("seconds")))])
  return ("table", headers, rows)


def accuracy_claims(records: Sequence[Mapping[str, Any]]) -> list[stats.Comparison]:
  """Each variant's clean top-1 against uniform selection at its noise rate (Welch over
  members), one Holm family."""
  by_name = {r["variant"]: r for r in records}
  claims = []
  for r in _ours(records):
    ref = by_name.get(r.get("source") or "")
    if ref is None:
      continue
    a, b = _top1(r), _top1(ref)
    if a and b:
      claims.append(stats.compare(a, b, paired=False,
                                  claim=f"{r['variant']}: clean top-1 vs {ref['variant']}"))
  return stats.family(claims)


def noise_claims(records: Sequence[Mapping[str, Any]]) -> list[stats.Comparison]:
  """At each noise rate > 0: the share of noisy-labelled examples among the selected
  against that among the forward-passed (the null), paired over members; one family."""
  claims = []
  for r in _ours(records):
    shares = _shares(r)
    if shares is None or float(r["knobs"]["label_noise"]) <= 0:
      continue
    claims.append(stats.compare(shares[0], shares[1], paired=True,
                                claim=f"{r['variant']}: noisy share of selected − null"))
  return stats.family(claims)


def plot(records: Sequence[Mapping[str, Any]]):
  """(a) clean top-1 against the noise rate, (b) the noisy share of the selected against
  the noise rate; each selection a series (its backpropagated rows per member in the
  legend), 95% t intervals over members."""
  ours = _ours(records)
  if not ours:
    return None
  fig, (left, right) = figures.new(2, width=11, height=4.3)
  labels = list(dict.fromkeys(_label(r) for r in ours))
  rates = sorted({float(r["knobs"]["label_noise"]) for r in ours})

  def series(ax, values_of, label, color, legend):
    xs, ys, lo, hi = [], [], [], []
    for r in (r for r in ours if _label(r) == label):
      values = values_of(r)
      if not values:
        continue
      mean, low, high = stats.t_interval(values)
      xs.append(float(r["knobs"]["label_noise"]))
      ys.append(mean)
      lo.append(mean - low if math.isfinite(low) else 0.0)
      hi.append(high - mean if math.isfinite(high) else 0.0)
    if xs:
      ax.errorbar(xs, ys, yerr=[lo, hi], color=color, marker="o", capsize=3, label=legend)

  for j, label in enumerate(labels):
    first = next(r for r in ours if _label(r) == label)
    rows = fmt.count(_mean(_fields(first).get("backward_examples")))
    series(left, _top1, label, figures.color(j), f"{label} ({rows} backward rows)")
    series(right, lambda r: (_shares(r) or (None,))[0], label, figures.color(j), label)
  right.plot([0, max(rates)], [0, max(rates)], ls="--", color="gray",
             label="null: the noise rate")
  left.set_xlabel("label-noise rate")
  left.set_ylabel("clean test top-1 (↑ better)")
  left.legend(fontsize=7)
  right.set_xlabel("label-noise rate")
  right.set_ylabel("share of selected examples that are mislabelled")
  right.legend(fontsize=7)
  return fig


def _finding(acc: Sequence[stats.Comparison], noisy: Sequence[stats.Comparison]) -> str:
  def names(claims, verdict):
    return [c.claim.partition(":")[0] for c in claims if c.verdict == verdict]
  parts = []
  over = names(noisy, stats.HIGHER)
  if noisy:
    parts.append(f"{len(over)} of {len(noisy)} noisy-rate selections over-sample "
                 "mislabelled examples beyond the null (Holm)"
                 + (f": {', '.join(over)}" if over else "") + ".")
  worse, better = names(acc, stats.LOWER), names(acc, stats.HIGHER)
  if acc:
    parts.append(f"Against uniform selection at the same noise rate, {len(worse)} of "
                 f"{len(acc)} variants are detectably less accurate on the clean test set"
                 + (f" ({', '.join(worse)})" if worse else "")
                 + f" and {len(better)} detectably more accurate"
                 + (f" ({', '.join(better)})" if better else "") + " (Holm).")
  return " ".join(parts) or "No claims could be drawn from these records."


def wall_clock_sentence(records: Sequence[Mapping[str, Any]]) -> str | None:
  """Mean training seconds per selection over the noise rates after the first (those
  reuse the compiled steps), one run each: a side note, not a speed claim."""
  ours = _ours(records)
  rates = sorted({float(r["knobs"]["label_noise"]) for r in ours})[1:]
  by_label: dict[str, list[float]] = {}
  for r in ours:
    seconds = _fields(r).get("train_seconds")
    if float(r["knobs"]["label_noise"]) in rates and isinstance(seconds, (int, float)):
      by_label.setdefault(_label(r), []).append(float(seconds))
  if not by_label:
    return None
  parts = ", ".join(f"{label} {np.mean(v):.1f} s" for label, v in by_label.items())
  return (f"Wall-clock (training seconds, mean over the noise rates "
          f"{', '.join(f'{100 * x:g}%' for x in rates)}; one run each, on whatever load "
          f"the machine had; not a speed claim): {parts}.")


def sections(records: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[Any, ...]]:
  records = list(records)
  ours = _ours(records)
  members = ours[0]["members"] if ours else "?"
  sample = next((r for r in ours if r["knobs"]["method"] != "full"), None)
  k = _fields(sample).get("backward_size", "?") if sample else "?"
  batch = get_path(sample, "config.train.batch_size") if sample else "?"
  steps = get_path(sample, "config.train.steps") if sample else "?"
  history = sample["knobs"].get("history_size", "?") if sample else "?"
  blocks: list[tuple[Any, ...]] = [
      ("h2", "Accuracy against backpropagated examples"),
      ("p", f"Every variant is a population of {members} models trained for {steps} steps "
            f"at batch {batch}, with the stated share of training labels changed uniformly "
            "to another class; accuracy is on the clean test set (mean over members, 95% t "
            f"interval). Selection forward-passes each batch and backpropagates k = {k} "
            "of it ('backward rows': k per step including weight-0 padding, what the "
            "wall-clock pays for; 'nonzero-weight rows': the examples actually learned "
            f"from). Selective Backprop's percentile is over the last {history} "
            "forward-passed losses, the current batch included, as in the reference code. "
            "'full' backpropagates the whole batch. Train seconds include building and "
            "compiling (only the first noise rate compiles each step).")]
  figure = plot(records)
  if figure is not None:
    blocks.append(("figure", "loss_prioritization.png", figure,
                   "Left: clean top-1 against the label-noise rate (legend: rows through "
                   "the backward pass per member). Right: the share of selected examples that are "
                   "mislabelled against the noise rate; dashed: the null (the noise "
                   "rate). 95% t intervals over members."))
  blocks.append(accuracy_table(records))
  acc = accuracy_claims(records)
  if acc:
    blocks += [("h2", "Against uniform selection at the same noise rate"),
               ("p", f"{len(acc)} claims in one family, Holm-corrected; Welch t over "
                     "members; differences in percentage points of clean top-1."),
               verdict_lib.table(acc)]
  noisy = noise_claims(records)
  if noisy:
    blocks += [("h2", "Does prioritization up-weight mislabelled examples?"),
               ("p", "Per member, the share of the selected examples whose label was "
                     "changed minus the share among all forward-passed examples (the "
                     f"null, the noise rate); paired t over members, {len(noisy)} claims "
                     "Holm-corrected together; in percentage points."),
               verdict_lib.table(noisy)]
    blocks += [("p", verdict_lib.sentence(c)) for c in noisy]
  blocks += [
      ("h2", "Findings and the literature"),
      ("p", _finding(acc, noisy)),
      *([("p", wall_clock_sentence(records))] if wall_clock_sentence(records) else []),
      ("p", "Hu et al. (2021) report that loss-based prioritization such as Selective "
            "Backprop degrades under label noise and input corruption because noisy "
            "examples keep a high loss and are over-sampled; their numbers were not "
            "retrieved (PAPERS.md section 14), so only the direction is compared. Jiang et "
            "al. (2019) report Selective Backprop reaching a target error with fewer "
            "backpropagated examples on clean CIFAR/SVHN [from memory]. The reference "
            "code also primes training with a full-selection warm-up "
            "(`PrimedSelector`), which is not reproduced here; selection starts at step 0.")]
  return blocks
