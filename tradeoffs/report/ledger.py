"""What was traded for what: one accountability entry per variant.

In the spirit of Cooper, Levy and De Sa (EAAMO 2021; PAPERS.md section 18): every knob
that trades accuracy for efficiency is stated as an explicit choice, with what it saved
and what it cost measured against a reference variant, and who paid (the class or group
hit hardest), so the decision stays auditable later.

Formulation chosen (the paper's exact list was not retrieved): the reference is, per
study, the variant named by the caller, else one named dense/baseline/reference, else
the record with the most parameters; savings are ratios reference/variant ("x fewer");
accuracy costs are differences in percentage points; "for whom" is the class or group
whose accuracy dropped most against the reference (or, without reference per-class
numbers, the lowest one).
"""

from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

from tradeoffs import stats
from tradeoffs import workdir as workdir_lib
from tradeoffs.report import format as fmt
from tradeoffs.report import verdict
from tradeoffs.report.pareto import as_number
from tradeoffs.report.pareto import get_path

REFERENCE_NAMES = ("dense", "baseline", "reference", "full")
STANDARD_FIELDS = frozenset({"study", "variant", "config", "environment", "efficiency",
                             "accuracy", "hidden_costs", "members", "workdir", "seconds"})


def _is_reference_name(variant: Any) -> bool:
  name = str(variant).lower()
  return name in REFERENCE_NAMES or name.startswith(
      tuple(f"{n}{sep}" for n in REFERENCE_NAMES for sep in "_-"))


def choose_reference(record: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                     reference: str | None = None) -> Mapping[str, Any] | None:
  """The record `record` is compared against (see module docstring for the rule).

  >>> from tradeoffs.report.records import make_record
  >>> def rec(variant, params, top1, **kw):
  ...   return make_record(study="prune", variant=variant, efficiency={"params": params},
  ...                      accuracy={"top1": top1}, **kw)
  >>> records = [rec("big", 100, 0.90), rec("p50", 50, 0.89, source=None),
  ...            rec("p90", 10, 0.70, source=None), rec("bad", 60, 0.80, source=None)]
  >>> choose_reference(records[1], records)["variant"]        # no source, no dense: most params
  'big'
  >>> choose_reference(records[1], records, reference="p90")["variant"]
  'p90'
  """
  same_study = [r for r in records if r.get("study") == record.get("study")]
  # Prefer a reference from the same run (workdir), then from the same study.
  pools = [[r for r in same_study if r.get("workdir") == record.get("workdir")], same_study]
  if reference is None:  # The record's own source (schema field) when it names one.
    source = record.get("source")
    if source is None and record.get("technique") is not None and any(
        r.get("source") == record.get("variant") for r in same_study):
      return record  # A source is its own reference.
    for pool in pools:
      named = [r for r in pool if source is not None and r.get("variant") == source]
      if named:
        return named[0]
  for pool in pools:
    if reference is not None:
      named = [r for r in pool if r.get("variant") == reference]
    else:
      named = [r for r in pool if _is_reference_name(r.get("variant"))]
    if named:
      return named[0]
  # Without a named reference, the largest model of the study (across its runs).
  sized = [r for r in same_study if as_number(get_path(r, "efficiency.params")) is not None]
  if sized:
    return max(sized, key=lambda r: as_number(get_path(r, "efficiency.params")))
  return None


def flatten_scores(value: Any, prefix: str = "") -> dict[str, float]:
  """Per-class or per-group accuracies as {name: value}: lists index by class, nested
  dicts join as 'attribute=value'."""
  out = {}
  if isinstance(value, Mapping):
    for key, sub in value.items():
      name = f"{prefix}={key}" if prefix and not isinstance(sub, Mapping) else (
          f"{prefix}.{key}" if prefix else str(key))
      out.update(flatten_scores(sub, name))
  elif isinstance(value, (list, tuple)):
    for index, sub in enumerate(value):
      out.update(flatten_scores(sub, f"{prefix}={index}" if prefix else str(index)))
  else:
    number = as_number(value)
    if number is not None:
      out[prefix] = number
  return out


fmt_count = fmt.count
fmt_accuracy = fmt.accuracy


def fmt_points(delta: float, scale: float) -> str:
  return f"{delta * scale:+.1f} pp"


def _accuracy_scale(*values: float | None) -> float:
  # Fractions in [0, 1] become percentage points; anything larger is already in percent.
  present = [abs(v) for v in values if v is not None]
  return 100.0 if present and max(present) <= 1.0 else 1.0


def _ratio_phrase(name: str, ref: float | None, value: float | None,
                  formatter=fmt_count) -> str | None:
  if ref is None or value is None:
    return None
  if value == ref:
    return f"{name} unchanged ({formatter(value)})"
  if value <= 0 or ref <= 0:
    return f"{name} {formatter(ref)} → {formatter(value)}"
  if value < ref:
    return f"{ref / value:.2f}× fewer {name} ({formatter(ref)} → {formatter(value)})"
  return f"{value / ref:.2f}× more {name} ({formatter(ref)} → {formatter(value)})"


def _knobs(record: Mapping[str, Any]) -> list[str]:
  knobs = record.get("knobs") or {}
  out = [f"technique={record['technique']}"] if record.get("technique") else []
  return out + [f"{k}={knobs[k]}" for k in sorted(knobs)
                if not isinstance(knobs[k], (Mapping, list))]


def trade_entry(record: Mapping[str, Any], reference: Mapping[str, Any] | None
                ) -> dict[str, Any]:
  """The accountability entry of one variant: choice, saved, cost, for whom, time, notes.

  >>> from tradeoffs.report.records import make_record
  >>> def rec(variant, params, top1, **kw):
  ...   return make_record(study="prune", variant=variant, efficiency={"params": params},
  ...                      accuracy={"top1": top1}, **kw)
  >>> records = [rec("dense", 100, 0.90), rec("p50", 50, 0.89, source="dense"),
  ...            rec("p90", 10, 0.70, source="dense"), rec("bad", 60, 0.80, source="dense")]
  >>> entry = trade_entry(records[1], records[0])
  >>> entry["reference"], entry["saved"], entry["cost"]
  ('dense', ['2.00× fewer params (100 → 50)'], ['top-1 -1.0 pp (90.0% → 89.0%)'])
  """
  def num(r, path):
    return None if r is None else as_number(get_path(r, path))

  entry: dict[str, Any] = {"variant": record.get("variant"), "study": record.get("study"),
                           "reference": None if reference is None else reference.get("variant")}
  choice = _knobs(record)
  if reference is not None and reference is not record:
    diff = [f"{path}={new!r} (reference {old!r})" for path, old, new in
            workdir_lib.config_diff(reference.get("config"), record.get("config"))]
    if diff:
      choice.append("config: " + "; ".join(diff[:6]) + (" …" if len(diff) > 6 else ""))
  if record.get("members", 1) not in (None, 1):
    choice.append(f"members={record.get('members')}")
  entry["choice"] = choice

  is_reference = reference is None or reference is record
  saved, cost, whom, notes = [], [], [], []
  if is_reference:
    saved.append("reference variant: the others are measured against it")
  else:
    for name, path in (("params", "efficiency.params"),
                       ("non-zero params", "efficiency.nonzero_params"),
                       ("FLOPs", "efficiency.flops"),
                       ("sparse FLOPs (theoretical)", "efficiency.sparse_flops"),
                       ("weight bytes", "efficiency.weight_bytes"),
                       ("peak bytes", "efficiency.peak_bytes")):
      ref_value, value = num(reference, path), num(record, path)
      phrase = _ratio_phrase(name, ref_value, value)
      if phrase:  # A larger number is a cost, not a saving.
        (cost if (ref_value is not None and value is not None and value > ref_value)
         else saved).append(phrase)
    ref_ms, ms = num(reference, "efficiency.latency_ms"), num(record, "efficiency.latency_ms")
    if ref_ms is not None and ms is not None and ref_ms > 0:
      spread = fmt.latency(ms, num(record, "efficiency.latency_p10_ms"),
                           num(record, "efficiency.latency_p90_ms"))
      phrase = (f"latency {fmt.latency(ref_ms)} → {spread} median (p10–p90) "
                f"({100 * (ms / ref_ms - 1):+.0f}%)")
      (cost if ms > ref_ms * 1.05 else saved).append(phrase)
    nonzero, params = num(record, "efficiency.nonzero_params"), num(record, "efficiency.params")
    pruned = "sparsity" in (record.get("knobs") or {})
    if (pruned and nonzero is not None and params and nonzero < 0.95 * params and ref_ms
        and ms and ms > 0.9 * ref_ms):
      notes.append(f"sparsity ({100 * (1 - nonzero / params):.0f}% zeros) saves on paper "
                   f"but not on this dense hardware: latency {100 * (ms / ref_ms - 1):+.0f}%")

  for name, path in (("top-1", "accuracy.top1"), ("worst class", "accuracy.worst_class"),
                     ("worst group", "accuracy.worst_group"), ("balanced", "accuracy.balanced")):
    value, ref = num(record, path), num(reference, path)
    if value is None:
      continue
    std = num(record, path + "_std")
    spread = f" ± {fmt_accuracy(std)}" if std is not None else ""
    if ref is None or is_reference:
      cost.append(f"{name} {fmt_accuracy(value)}{spread}")
    else:
      scale = _accuracy_scale(value, ref)
      cost.append(f"{name} {fmt_points(value - ref, scale)} "
                  f"({fmt_accuracy(ref)} → {fmt_accuracy(value)}{spread})")
  for key, value in sorted((record.get("hidden_costs") or {}).items()):
    number = as_number(value)
    if number is not None:
      cost.append(f"{key} {fmt_count(number) if abs(number) >= 1 else f'{number:.3g}'}")

  for kind, path in (("class", "accuracy.per_class"), ("group", "accuracy.per_group")):
    scores = flatten_scores(get_path(record, path))
    if not scores:
      continue
    ref_scores = flatten_scores(get_path(reference, path)) if not is_reference else {}
    shared = [k for k in scores if k in ref_scores]
    if shared:
      name = min(shared, key=lambda k: (scores[k] - ref_scores[k], k))
      scale = _accuracy_scale(scores[name], ref_scores[name])
      whom.append(f"{kind} {name} hit hardest: {fmt_points(scores[name] - ref_scores[name], scale)}"
                  f" ({fmt_accuracy(ref_scores[name])} → {fmt_accuracy(scores[name])})")
    else:
      name = min(scores, key=lambda k: (scores[k], k))
      whom.append(f"{kind} with the lowest mean accuracy: {name} at "
                  f"{fmt_accuracy(scores[name])} ('worst {kind}' is the mean of each "
                  f"member's lowest {kind}, so it can be lower)")

  seconds = as_number(record.get("seconds"))
  if (seconds is not None and not is_reference and record.get("source")
      and (record.get("hidden_costs") or {}).get("cie_kind") == "derived"):
    notes.append(f"time excludes training the source {record['source']!r} it was derived "
                 "from")
  entry.update(saved=saved, cost=cost, whom=whom, notes=notes, seconds=seconds)
  if record.get("workdir"):
    entry["run"] = os.path.basename(os.path.normpath(str(record["workdir"])))
  return entry


# ---------------------------------------------------------------------------------------
# The machine-readable ledger (a record's `ledger` field) and its report table.

# Who pays, from per-member values: label -> (dotted path, record key).
PAYER_PATHS = (("top1", "accuracy.per_member_top1"),
               ("worst_class", "accuracy.per_member_worst_class"),
               ("worst_group", "accuracy.per_member_worst_group"))
SAVING_PATHS = (("params", "efficiency.params"), ("nonzero_params", "efficiency.nonzero_params"),
                ("flops", "efficiency.flops"), ("weight_bytes", "efficiency.weight_bytes"),
                ("latency_ms", "efficiency.latency_ms"),
                # Training cost, where a study counts it (frontier: from-scratch variants).
                ("train_backward_examples", "efficiency.train_backward_examples"),
                ("train_flops", "efficiency.train_flops"))


def accountability(record: Mapping[str, Any], reference: Mapping[str, Any] | None
                   ) -> dict[str, Any]:
  """A record's ledger entry (PAPERS.md section 18), plain JSON values:

  knobs: every knob that defines the variant ([{"knob", "value"}], technique first);
  saved: {quantity: reference / variant} (>1 saves); payers: per accuracy metric the
  difference against the reference in points of accuracy with its 95% t interval over
  members and uncorrected p (paired t for a variant derived from the reference's own
  members, else Welch: `tradeoffs.stats.compare`; the report's family Holm-corrects),
  the CIE count with its null (95th percentile between random halves of the reference),
  churn beside the reference's, and ε where the variant is differentially private.
  """
  knobs = record.get("knobs") or {}
  entry: dict[str, Any] = {
      "reference": (None if reference is None or reference is record
                    else reference.get("variant")),
      "knobs": [{"knob": "technique", "value": record.get("technique")}] + [
          {"knob": k, "value": knobs[k]} for k in sorted(knobs)
          if not isinstance(knobs[k], (Mapping, list))],
      "saved": {}, "payers": {}}
  if reference is None or reference is record:
    return entry
  for name, path in SAVING_PATHS:
    ref, value = as_number(get_path(reference, path)), as_number(get_path(record, path))
    if ref is not None and value:
      entry["saved"][name] = ref / value
  paired = verdict.is_paired(record, reference)
  for name, path in PAYER_PATHS:
    a, b = get_path(record, path), get_path(reference, path)
    if not (isinstance(a, list) and isinstance(b, list) and a and b
            and None not in a + b and (not paired or len(a) == len(b))):
      continue
    c = stats.compare(a, b, paired=paired)
    entry["payers"][name] = {
        "value": c.mean_a, "reference": c.mean_b, "delta": c.estimate, "low": c.low,
        "high": c.high, "p": c.p, "test": c.test, "n": c.n_a,
        "verdict_uncorrected": c.verdict}
  hidden = record.get("hidden_costs") or {}
  if hidden.get("cie_count") is not None:
    null = hidden.get("cie_null") or {}
    entry["payers"]["cie"] = {"count": hidden["cie_count"], "kind": hidden.get("cie_kind"),
                              "null_p95": null.get("p95"),
                              "above_null": (None if null.get("p95") is None
                                             else hidden["cie_count"] > null["p95"])}
  churn, ref_churn = (as_number(get_path(r, "hidden_costs.churn")) for r in (record, reference))
  if churn is not None:
    entry["payers"]["churn"] = {"value": churn, "reference": ref_churn}
  fields = record.get("study_fields") or {}
  if "epsilon" in hidden or "epsilon" in fields:
    entry["payers"]["epsilon"] = {"value": as_number(hidden.get("epsilon", fields.get("epsilon"))),
                                  "delta": as_number(fields.get("delta"))}
  return entry


def accountability_table(records: Sequence[Mapping[str, Any]],
                         holm: Mapping[str, Any] | None = None) -> tuple[Any, ...]:
  """A ("table", headers, rows) block of the records' `ledger` fields: knobs, what was
  saved, who pays with the interval, and the Holm-corrected p of the report's family
  (`holm`: claim 'variant: metric' -> p_holm) where given."""
  labels = {"top1": "top-1", "worst_class": "worst class", "worst_group": "worst group"}
  headers = ["Variant", "Knobs traded", "Saved (ref/variant)", "Top-1 Δ pt [95% CI]",
             "Worst class Δ", "Worst group Δ", "CIE (null p95)", "Churn (ref)", "ε"]
  rows = []
  for record in records:
    entry = record.get("ledger") or {}
    if not entry.get("payers"):
      continue
    knobs = ", ".join(f"{k['knob']}={k['value']}" for k in entry["knobs"][1:]) or "–"
    saved = ", ".join(f"{k} {v:.2f}×" for k, v in entry["saved"].items()
                      if k in ("nonzero_params", "flops", "weight_bytes", "latency_ms",
                               "train_backward_examples", "train_flops")) or "–"
    cells = [str(record.get("variant")), knobs, saved]
    for key in ("top1", "worst_class", "worst_group"):
      payer = entry["payers"].get(key)
      if payer is None:
        cells.append("–")
        continue
      q = (holm or {}).get(f"{record.get('variant')}: {labels[key]}")
      evidence = f", Holm p={fmt.p(q)}" if q is not None else f", p={fmt.p(payer['p'])}"
      cells.append(f"{fmt.signed(100 * payer['delta'])} "
                   f"{fmt.interval(*(None if v is None else 100 * v for v in (payer['low'], payer['high'])))}"
                   f"{evidence}")
    cie = entry["payers"].get("cie") or {}
    cells.append("–" if not cie else f"{cie['count']} ({fmt.number(cie.get('null_p95'))})")
    churn = entry["payers"].get("churn") or {}
    cells.append("–" if not churn else f"{fmt.number(churn['value'])} "
                                       f"({fmt.number(churn.get('reference'))})")
    eps = entry["payers"].get("epsilon")
    cells.append("–" if eps is None else ("∞" if eps["value"] is None
                                          else f"{eps['value']:.3g} (δ={eps['delta']:g})"))
    rows.append(cells)
  return ("table", headers, rows)
