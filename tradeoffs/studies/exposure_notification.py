"""Noisy digital exposure notification: what privacy costs in notification accuracy
(Hammoud & Yu, arXiv 2011.03995; PAPERS.md section 7). No training.

A seeded synthetic contact process (`tradeoffs.privacy.exposure`: people, distinct
contacts over days under a public degree cap Δ, infections along the day's meetings,
diagnoses) per seed; every user's count of diagnosed contacts is released exactly (the
reference) or through randomized response (local), Laplace or Gaussian noise (central),
each at ε per person; a user is notified when the released count is ≥ the threshold.
Scored against the truth (at least one diagnosed contact), over the non-diagnosed:
precision, recall and false alarms per true exposure, each a mean over seeds with its
95% t interval, beside the closed form the mechanism implies on the realised graphs.

Formulations chosen (the paper gives bounds, not a protocol; its theorems were not
retrieved):
  * ε is per person over the whole window for every mechanism: randomized response
    releases each bit once (its counts are post-processing); the central mechanisms
    answer all users' counts at once, where one person's bit enters at most Δ counts (L1
    sensitivity Δ for Laplace, L2 √Δ for the analytic Gaussian at `delta`).
  * Notification rule: released (debiased, for randomized response) count ≥ `threshold`.
  * Verdicts: the mechanisms at equal ε, paired over seeds (every mechanism sees the same
    contact process for a seed); Holm across the section.
  * Bounds stated beside the measurements: randomized response keeps a bit with
    probability e^ε/(1+e^ε); Dinur & Nissim (PODS 2003): count answers with error o(√n)
    let an attacker with enough queries reconstruct all but o(n) of n private bits, so
    privacy needs per-query noise Ω(√n) — for a count over a neighbourhood of d ≤ Δ
    contacts, noise ≳ √Δ, which is shown against each mechanism's noise std.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Mapping, Sequence

import numpy as np

from tradeoffs import stats
from tradeoffs.privacy import exposure
from tradeoffs.privacy import mechanisms
from tradeoffs.report import figures
from tradeoffs.report import format as fmt
from tradeoffs.report import verdict as verdict_lib
from tradeoffs.studies import base

NAME = "exposure_notification"
TITLE = "Noisy exposure notification: what privacy costs in notification accuracy"
REFERENCE = "exact"
METRICS = ("precision", "recall", "false_alarms_per_exposure")
LABELS = {"precision": "precision", "recall": "recall",
          "false_alarms_per_exposure": "false alarms per true exposure"}
PROCESS_KEYS = tuple(f.name for f in exposure.ProcessConfig.__dataclass_fields__.values())


# ---------------------------------------------------------------------------------------
# Plan.


def _fail(key: str, value: Any, allowed: str) -> None:
  raise ValueError(f"--config.study.{key}={value!r} must be {allowed}")


_tuple = base.as_tuple


def _is_number(value: Any) -> bool:
  return (not isinstance(value, bool) and isinstance(value, (int, float, np.number))
          and math.isfinite(float(value)))


def process_config(study: Any) -> exposure.ProcessConfig:
  p = study.process
  unknown = sorted(set(p.keys()) - set(PROCESS_KEYS))
  if unknown:
    raise ValueError(f"--config.study.process has unknown keys {unknown}; known: "
                     f"{list(PROCESS_KEYS)}")
  return exposure.ProcessConfig(**{k: p[k] for k in PROCESS_KEYS if k in p}).check(
      prefix="--config.study.process.")


def validate(config: Any) -> None:
  if "study" not in config:
    raise ValueError("config has no 'study' section; use "
                     "experiments/configs/exposure_notification.py")
  s = config.study
  names = _tuple(s.mechanisms)
  if not names or len(set(names)) != len(names) or \
      any(m not in mechanisms.MECHANISMS for m in names):
    _fail("mechanisms", names, f"distinct names from {list(mechanisms.MECHANISMS)}")
  epsilons = _tuple(s.epsilons)
  if not epsilons:
    _fail("epsilons", epsilons, "a non-empty tuple of numbers > 0")
  for eps in epsilons:
    if not _is_number(eps) or float(eps) <= 0:
      _fail("epsilons", eps, "a finite number > 0")
  if len({float(e) for e in epsilons}) != len(epsilons):
    _fail("epsilons", epsilons, "distinct values")
  if not _is_number(s.delta) or not 0 < float(s.delta) < 1:
    _fail("delta", s.delta, "a number in (0, 1) (exclusive)")
  if not _is_number(s.threshold) or float(s.threshold) <= 0:
    _fail("threshold", s.threshold, "a finite number > 0")
  seeds = _tuple(s.seeds)
  if len(seeds) < 2 or len(set(seeds)) != len(seeds) or any(
      isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in seeds):
    _fail("seeds", seeds, "at least 2 distinct integers >= 0 (intervals over seeds)")
  process_config(s)


def eps_name(mechanism: str, epsilon: float) -> str:
  short = {"randomized_response": "rr", "laplace": "laplace", "gaussian": "gaussian"}
  return f"{short[mechanism]}_eps{float(epsilon):g}"


def plan(config: Any) -> list[base.Variant]:
  """The exact release first, then one variant per (mechanism, ε)."""
  validate(config)
  s = config.study
  common = {"threshold": float(s.threshold), "seeds": [int(v) for v in s.seeds]}
  out = [base.Variant(REFERENCE, "exact", {"mechanism": "exact", **common})]
  for mechanism in _tuple(s.mechanisms):
    for eps in sorted(float(e) for e in _tuple(s.epsilons)):
      knobs = {"mechanism": mechanism, "epsilon": eps, **common}
      if mechanism == "gaussian":
        knobs["delta"] = float(s.delta)
      out.append(base.Variant(eps_name(mechanism, eps), mechanism, knobs, REFERENCE))
  return out


# ---------------------------------------------------------------------------------------
# Produce.


def _process(ctx: Any, seed: int) -> exposure.Process:
  key = f"process:{seed}"
  if key not in ctx.cache:
    ctx.cache[key] = exposure.simulate(seed, process_config(ctx.config.study))
  return ctx.cache[key]


def _mean(values: Sequence[float]) -> float | None:
  finite = [v for v in values if v is not None and math.isfinite(v)]
  return float(np.mean(finite)) if finite else None


def produce(ctx: Any, variant: base.Variant) -> base.Outcome:
  k = variant.knobs
  mechanism = str(k["mechanism"])
  eps = float(k.get("epsilon", math.inf))
  delta = float(k.get("delta", 1e-5))
  seeds = [int(v) for v in k["seeds"]]
  per_seed: dict[str, list[float]] = {m: [] for m in METRICS + ("notified_fraction",
                                                                 "exposed_fraction")}
  expected: dict[str, list[float]] = {m: [] for m in METRICS}
  summaries = []
  release = None
  for seed in seeds:
    process = _process(ctx, seed)
    release = exposure.notify(process, mechanism, eps, seed=seed, delta=delta,
                              threshold=float(k["threshold"]))
    for m in per_seed:
      per_seed[m].append(release.metrics[m])
    for m in METRICS:
      expected[m].append(release.expected[m])
    summaries.append(exposure.describe(process))
  cap = process_config(ctx.config.study).max_contacts
  accuracy: dict[str, Any] = {m: _mean(v) for m, v in per_seed.items()}
  accuracy.update({f"per_seed_{m}": v for m, v in per_seed.items()})
  accuracy.update({f"expected_{m}": _mean(v) for m, v in expected.items()})
  params = exposure.noise_parameters(mechanism, eps, delta, cap) if mechanism != "exact" \
      else {}
  noise_std = release.noise_std if release is not None else None
  efficiency = {"epsilon": eps if mechanism != "exact" else None,
                "delta": delta if mechanism == "gaussian" else None,
                "noise_std": noise_std,
                "dinur_nissim_scale": exposure.dinur_nissim_scale(cap),
                "notes": {"epsilon": "per person over the window (the diagnosis bit)",
                          "noise_std": "std of the released count's noise (randomized "
                                       "response: of the debiased count at the mean degree)",
                          "dinur_nissim_scale": "sqrt(max_contacts): the per-query noise "
                                                "Dinur–Nissim says a neighbourhood count "
                                                "needs"}}
  fields = {"mechanism": mechanism, "noise": params, "seeds": seeds,
            "processes": summaries,
            "mean_degree": float(np.mean([p["mean_degree"] for p in summaries])),
            "diagnosed": float(np.mean([p["diagnosed"] for p in summaries]))}
  if mechanism == "randomized_response":
    fields["keep_probability"] = mechanisms.keep_probability(eps)
  return base.Outcome(members=len(seeds), efficiency=efficiency, logits=None,
                      accuracy=accuracy, study_fields=fields)


# ---------------------------------------------------------------------------------------
# The report.


def _noisy(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
  return [r for r in records if r.get("technique") in mechanisms.MECHANISMS]


def _values(record: Mapping[str, Any], metric: str) -> list[float] | None:
  values = (record.get("accuracy") or {}).get(f"per_seed_{metric}")
  if not isinstance(values, list) or not values or any(
      v is None or not math.isfinite(v) for v in values):
    return None
  return [float(v) for v in values]


def _cell(values: list[float] | None, scale: float = 1.0) -> str:
  if values is None:
    return fmt.DASH
  mean, low, high = stats.t_interval(values)
  if not math.isfinite(low):
    return f"{scale * mean:.3f}"
  return f"{scale * mean:.3f} [{scale * low:.3f}, {scale * high:.3f}]"


def _eps(record: Mapping[str, Any]) -> float:
  eps = (record.get("knobs") or {}).get("epsilon")
  return math.inf if eps is None else float(eps)


def results_table(records: Sequence[Mapping[str, Any]]) -> tuple[Any, ...]:
  headers = ["Variant", "ε", "Precision [95% CI]", "Recall [95% CI]",
             "False alarms / exposure [95% CI]", "Closed form (P, R, FA)",
             "Noise std", "√Δ"]
  rows = []
  for r in records:
    a, e = r.get("accuracy") or {}, r.get("efficiency") or {}
    closed = ", ".join(fmt.number(a.get(f"expected_{m}")) for m in METRICS)
    rows.append([r["variant"], "∞" if math.isinf(_eps(r)) else f"{_eps(r):g}"]
                + [_cell(_values(r, m)) for m in METRICS]
                + [closed, fmt.number(e.get("noise_std")),
                   fmt.number(e.get("dinur_nissim_scale"))])
  return ("table", headers, rows)


def bounds_table(records: Sequence[Mapping[str, Any]], cap: int) -> tuple[Any, ...]:
  epsilons = sorted({_eps(r) for r in _noisy(records)})
  headers = ["ε", "RR keeps a bit w.p. e^ε/(1+e^ε)", "Laplace count std √2·Δ/ε",
             "Gaussian σ (analytic, δ)", "√Δ (Dinur–Nissim scale)"]
  delta = next((float(r["knobs"]["delta"]) for r in records if "delta" in (r.get("knobs")
                                                                          or {})), 1e-5)
  rows = []
  for eps in epsilons:
    rows.append([f"{eps:g}", f"{mechanisms.keep_probability(eps):.4f}",
                 fmt.number(math.sqrt(2) * cap / eps),
                 fmt.number(mechanisms.analytic_gaussian_sigma(eps, delta, math.sqrt(cap))),
                 fmt.number(math.sqrt(cap))])
  return ("table", headers, rows)


def mechanism_claims(records: Sequence[Mapping[str, Any]]) -> list[stats.Comparison]:
  """Every pair of mechanisms at each ε, on each metric, paired over seeds; one family."""
  by_eps: dict[float, list[Mapping[str, Any]]] = {}
  for r in _noisy(records):
    by_eps.setdefault(_eps(r), []).append(r)
  claims = []
  for eps in sorted(by_eps):
    for a, b in itertools.combinations(by_eps[eps], 2):
      if a["knobs"].get("seeds") != b["knobs"].get("seeds"):
        continue
      for metric in METRICS:
        x, y = _values(a, metric), _values(b, metric)
        if x is None or y is None:
          continue
        claims.append(stats.compare(
            x, y, paired=True,
            claim=f"{a['variant']} vs {b['variant']}: {LABELS[metric]}"))
  return stats.family(claims)


def plot_metrics(records: Sequence[Mapping[str, Any]]):
  """Precision, recall and false alarms per exposure against ε per mechanism (means and
  95% t intervals over seeds; the closed form as a thin line)."""
  noisy = _noisy(records)
  if not noisy:
    return None
  fig, axs = figures.new(3, width=15, height=4.2)
  names = sorted({r["technique"] for r in noisy})
  for ax, metric in zip(axs, METRICS):
    for j, name in enumerate(names):
      rs = sorted((r for r in noisy if r["technique"] == name), key=_eps)
      xs, ys, err, closed = [], [], [[], []], []
      for r in rs:
        values = _values(r, metric)
        if values is None:
          continue
        mean, low, high = stats.t_interval(values)
        xs.append(_eps(r))
        ys.append(mean)
        err[0].append(mean - low if math.isfinite(low) else 0.0)
        err[1].append(high - mean if math.isfinite(high) else 0.0)
        closed.append((r.get("accuracy") or {}).get(f"expected_{metric}"))
      color = figures.color(j)
      ax.errorbar(xs, ys, yerr=err, marker="o", capsize=3, color=color,
                  label=name.replace("_", " "))
      if all(c is not None for c in closed):
        ax.plot(xs, closed, "-", lw=0.8, color=color, alpha=0.6)
    ax.set_xscale("log")
    ax.set_xlabel("ε per person (log) — more private ←")
    better = "↓ better" if metric == "false_alarms_per_exposure" else "↑ better"
    ax.set_title(f"{LABELS[metric]} ({better})")
  axs[0].legend(fontsize=8)
  return fig


def sections(records: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[Any, ...]]:
  records = list(records)
  ref = next((r for r in records if r.get("variant") == REFERENCE), None)
  study = config.study if config is not None and "study" in config else None
  cap = int(study.process.max_contacts) if study is not None else 16
  fields = (ref or (records[0] if records else {})).get("study_fields") or {}
  seeds = len(fields.get("seeds", []))
  blocks: list[tuple[Any, ...]] = [
      ("h2", "Notification accuracy against ε"),
      ("p", f"{seeds} seeds, each a synthetic contact process (mean "
            f"{fmt.number(fields.get('mean_degree'))} distinct contacts per person, degree "
            f"cap Δ = {cap}, {fmt.number(fields.get('diagnosed'))} diagnosed on average). "
            "Every user's count of diagnosed contacts is released exactly or through a "
            "mechanism at ε per person; a user is notified when the released count is "
            "≥ the threshold; scored over the non-diagnosed against the truth (≥ 1 "
            "diagnosed contact). Means over seeds with 95% t intervals; 'closed form' is "
            "the expectation the mechanism implies on the realised graphs (precision as a "
            "ratio of expected counts).")]
  figure = plot_metrics(records)
  if figure is not None:
    blocks.append(("figure", "exposure_vs_epsilon.png", figure,
                   "Precision, recall and false alarms per true exposure against ε (95% t "
                   "intervals over seeds); thin lines: the closed form."))
  blocks.append(results_table(records))
  claims = mechanism_claims(records)
  if claims:
    blocks += [("h2", "Mechanisms at equal ε"),
               ("p", f"{len(claims)} claims in one family, Holm-corrected; paired t over "
                     "seeds (the same contact processes); differences in the metric's own "
                     "units ×100 (positive: the first mechanism is higher)."),
               verdict_lib.table(claims, unit="×100")]
    blocks += [("p", verdict_lib.sentence(c, unit=" pt")) for c in claims
               if c.verdict != stats.NO_DIFFERENCE and "precision" in c.claim]
  blocks += [
      ("h2", "Bounds beside the measurements"),
      ("p", "Randomized response reports a bit truthfully with probability "
            "e^ε/(1+e^ε) (its ε-local-DP likelihood ratio is exactly e^ε); the central "
            "mechanisms' noise grows with the degree cap Δ because one person's bit enters "
            "up to Δ users' counts (per-count noise, as released here; a server that noised each "
            "person's bit once with Lap(1/ε) and summed would have count noise √(2d)/ε "
            "instead of √2·Δ/ε — not run here). Dinur & Nissim (PODS 2003): if every answer to a count "
            "query over n private bits is perturbed by o(√n), an attacker who asks enough "
            "queries reconstructs all but o(n) bits, so privacy needs noise of order √n per "
            "query; for a count over one neighbourhood of at most Δ contacts that is noise "
            "≳ √Δ, at which a count of 0 and one of 1 are hard to tell apart. Hammoud & "
            "Yu (arXiv 2011.03995) translate this result and Machanavajjhala, Korolova & "
            "Das Sarma's (VLDB 2011) bound on private social recommendations into bounds on "
            "noisy exposure notification; their exact theorem statements and constants were "
            "not retrieved here, so the table states only the order √Δ, not their bound."),
      bounds_table(records, cap)]
  return blocks
