"""The hardware lottery: which savings a backend realises and which exist only on paper.

Per variant, the theoretical saving against its backend's dense source — parameters,
non-zero parameters, FLOPs, sparse FLOPs (zeros skipped), weight bytes: ratios
source / variant, the same on every backend — beside the measured one on each backend the
variant ran: latency at batch 1 and at the larger measured batch (source median / variant
median, with the variant's p10–p90) and peak memory of the compiled forward pass. Where
a study counts training cost (`efficiency.train_flops`, `efficiency.train_seconds`: e.g.
loss-prioritized training against dense training), counted training FLOPs sit beside the
measured training wall-clock, one run each (no spread, so no verdict).

Where a study times each variant in alternation with its source (`paired_timing`), the
measured ratio is that paired one: both medians saw the same moments of machine load.
Records merged from several runs are grouped by backend (`efficiency.backend`, else
`environment.backend`): a variant is one row, each backend its own columns (never one row
per run), each measured against the dense source recorded on the same backend.

A measured saving counts as realised only when the spreads do not overlap: the variant's
p90 below the source's p10 (and slower only when its p10 is above the source's p90);
anything else is "no measurable change" at this number of repeats. Variants that run the
source's own inference program (same counted params, FLOPs and weight bytes: masked
zeros, N:M zeros, a training-only change) are controls: the band of latency ratios they
read is timing noise, and a saving inside it is no measurable change either. A latency without
spread (a cascade's, computed from its two models' measured latencies) is "expected".
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from tradeoffs.report import format as fmt
from tradeoffs.report.pareto import as_number
from tradeoffs.report.pareto import get_path

THEORETICAL = (("params", "efficiency.params"),
               ("non-zero params", "efficiency.nonzero_params"),
               ("FLOPs", "efficiency.flops"),
               ("sparse FLOPs", "efficiency.sparse_flops"),
               ("weight bytes", "efficiency.weight_bytes"),
               ("training FLOPs", "efficiency.train_flops"))
REALISED, SLOWER, UNCHANGED = "realised", "slower", "no measurable change"
EXPECTED = "expected"  # Computed from measured latencies (a cascade), not timed.


def backend_of(record: Mapping[str, Any]) -> str:
  """The backend a record was measured on ('cpu', 'gpu', 'tpu'; '?' when unrecorded)."""
  return str(get_path(record, "efficiency.backend")
             or get_path(record, "environment.backend") or "?")


def _is_source(record: Mapping[str, Any]) -> bool:
  return record.get("technique") == "dense" and record.get("source") is None


def backends(records: Sequence[Mapping[str, Any]]) -> list[str]:
  """Backends in order of first appearance."""
  out: list[str] = []
  for record in records:
    if backend_of(record) not in out:
      out.append(backend_of(record))
  return out


def _largest_batch(record: Mapping[str, Any]) -> str | None:
  sizes = sorted(int(b) for b in (get_path(record, "efficiency.per_batch") or {}))
  return str(sizes[-1]) if sizes and sizes[-1] > 1 else None


def _latency(record: Mapping[str, Any], batch: str | None) -> tuple[Any, Any, Any]:
  """(median, p10, p90) in ms at batch 1 (batch None) or at `batch`."""
  if batch is None:
    e = record.get("efficiency") or {}
    return (as_number(e.get("latency_ms")), as_number(e.get("latency_p10_ms")),
            as_number(e.get("latency_p90_ms")))
  at = get_path(record, f"efficiency.per_batch.{batch}") or {}  # Ensembles: concurrent_*.
  return tuple(as_number(at.get(f"latency{q}_ms", at.get(f"concurrent{q}_ms")))
               for q in ("", "_p10", "_p90"))


def _paired_source_latency(record: Mapping[str, Any], batch: str | None
                           ) -> tuple[Any, Any, Any]:
  """(median, p10, p90) of the source timed in alternation with this variant
  (`efficiency.measure(reference=...)`), or Nones when it was not."""
  at = (record.get("efficiency") or {}) if batch is None else (
      get_path(record, f"efficiency.per_batch.{batch}") or {})
  return tuple(as_number(at.get(f"reference_latency{q}_ms")) for q in ("", "_p10", "_p90"))


def measured_saving(record: Mapping[str, Any], source: Mapping[str, Any],
                    batch: str | None) -> dict[str, Any] | None:
  """Latency saving source/variant at one batch, with both spreads and the verdict: against
  the source timed in alternation with the variant where the record has it (`paired`),
  else against the source record's own timing."""
  v, s = _latency(record, batch), _paired_source_latency(record, batch)
  paired = s[0] is not None
  if not paired:
    s = _latency(source, batch)
  if v[0] is None or s[0] is None or v[0] <= 0:
    return None
  verdict = UNCHANGED
  if v[1] is None or v[2] is None:  # No spread: computed, not timed (a cascade).
    verdict = EXPECTED
  elif None not in (v[2], s[1]) and v[2] < s[1]:
    verdict = REALISED
  elif None not in (v[1], s[2]) and v[1] > s[2]:
    verdict = SLOWER
  return {"ratio": s[0] / v[0], "median_ms": v[0], "p10_ms": v[1], "p90_ms": v[2],
          "source_median_ms": s[0], "source_p10_ms": s[1], "source_p90_ms": s[2],
          "verdict": verdict, "batch": 1 if batch is None else int(batch), "paired": paired}


def training_saving(record: Mapping[str, Any], source: Mapping[str, Any]
                    ) -> dict[str, Any] | None:
  """Training wall-clock saving source/variant, where both record it: one run each,
  compilation included and no spread, so it gets no realised/unchanged verdict."""
  v, s = (as_number(get_path(r, "efficiency.train_seconds")) for r in (record, source))
  if v is None or s is None or v <= 0:
    return None
  return {"ratio": s / v, "seconds": v, "source_seconds": s}


def theoretical_savings(record: Mapping[str, Any], source: Mapping[str, Any]
                        ) -> dict[str, float]:
  """{name: source / variant} for the counted (backend-independent) quantities."""
  out = {}
  for name, path in THEORETICAL:
    a, b = as_number(get_path(source, path)), as_number(get_path(record, path))
    if a is not None and b is not None and b > 0:
      out[name] = a / b
  return out


def lottery(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
  """{"backends": [...], "rows": [{"variant", "technique", "theoretical": {...},
  "measured": {backend: {"b1": ..., "bN": ..., "peak_bytes": ratio}}}]} — one row per
  variant name, each backend against its own dense source."""
  names = backends(records)
  sources = {b: next((r for r in records if backend_of(r) == b and _is_source(r)), None)
             for b in names}
  rows: dict[str, dict[str, Any]] = {}
  for record in records:
    backend = backend_of(record)
    source = sources[backend]
    if source is None or record is source:
      continue
    row = rows.setdefault(str(record["variant"]), {
        "variant": str(record["variant"]), "technique": record.get("technique"),
        "theoretical": theoretical_savings(record, source), "measured": {}})
    peak_s = as_number(get_path(source, "efficiency.peak_bytes"))
    peak_v = as_number(get_path(record, "efficiency.peak_bytes"))
    batch = _largest_batch(record)
    row["measured"][backend] = {
        "b1": measured_saving(record, source, None),
        "bN": measured_saving(record, source, batch) if batch else None,
        "peak_bytes": peak_s / peak_v if peak_s and peak_v else None,
        "train": training_saving(record, source),
        "device_kind": get_path(record, "efficiency.device_kind")
        or get_path(record, "environment.device_kind")}
  controls = apply_controls(list(rows.values()), names)
  return {"backends": names, "rows": list(rows.values()), "controls": controls}


# Counted quantities that fix the inference program: a variant equal to the source in all
# of them (masked zeros, N:M zeros, a training-only change) runs the source's own program.
_PROGRAM = ("params", "FLOPs", "weight bytes")


def is_control(row: Mapping[str, Any]) -> bool:
  """Whether a variant runs the dense source's own inference program (its measured latency
  ratio is then timing noise, whatever it reads)."""
  theory = row["theoretical"]
  return all(name in theory and abs(theory[name] - 1) <= 0.01 for name in _PROGRAM)


def apply_controls(rows: list[dict[str, Any]], names: Sequence[str]) -> dict[str, Any]:
  """Per backend and batch, the band of latency ratios the controls (`is_control`) read,
  with 1 included; a timed saving inside that band is no measurable change, whatever the
  spreads say (a source measured at a bad moment would otherwise make every variant look
  faster). Updates the rows' verdicts in place; returns {backend: {"b1"|"bN": band}}.

  >>> same = {"params": 1.0, "FLOPs": 1.0, "weight bytes": 1.0}
  >>> timed = lambda r, v: {"cpu": {"b1": {"ratio": r, "verdict": v, "batch": 1}}}
  >>> rows = [{"variant": "masked", "theoretical": same, "measured": timed(2.0, REALISED)},
  ...         {"variant": "narrow", "theoretical": {"FLOPs": 4.0},
  ...          "measured": timed(1.5, REALISED)}]
  >>> apply_controls(rows, ["cpu"])["cpu"]["b1"]["high"]
  2.0
  >>> rows[1]["measured"]["cpu"]["b1"]["verdict"]
  'no measurable change'
  """
  bands: dict[str, Any] = {}
  for backend in names:
    bands[backend] = {}
    for key in ("b1", "bN"):
      ratios = [m["ratio"] for r in rows if is_control(r)
                for m in [(r["measured"].get(backend) or {}).get(key)]
                if m and m["verdict"] != EXPECTED]
      if not ratios:
        continue
      low, high = min(ratios + [1.0]), max(ratios + [1.0])
      bands[backend][key] = {"low": low, "high": high,
                             "variants": [r["variant"] for r in rows if is_control(r)]}
      for r in rows:
        m = (r["measured"].get(backend) or {}).get(key)
        if m and m["verdict"] in (REALISED, SLOWER) and low <= m["ratio"] <= high:
          m["verdict"], m["within_controls"] = UNCHANGED, True
  return bands


def _ratio(value: Any) -> str:
  return "–" if value is None else f"{value:.2f}×"


def _measured_cell(m: Mapping[str, Any] | None) -> str:
  if not m:
    return "–"
  mark = {REALISED: "", SLOWER: " (slower)", UNCHANGED: " (≈)",
          EXPECTED: " (expected)"}[m["verdict"]]
  return f"{m['ratio']:.2f}×{mark}; {fmt.latency(m['median_ms'], m['p10_ms'], m['p90_ms'])}"


def sentence(row: Mapping[str, Any], backend: str) -> str:
  """Which of a variant's savings `backend` realises and which exist only on paper."""
  theory = {k: v for k, v in row["theoretical"].items() if v > 1.05}
  m = row["measured"].get(backend) or {}
  timed = [x for x in (m.get("b1"), m.get("bN")) if x]
  realised = [f"latency at batch {x['batch']} {x['ratio']:.2f}× faster" for x in timed
              if x["verdict"] == REALISED]
  slower = [f"latency at batch {x['batch']} {1 / x['ratio']:.2f}× slower" for x in timed
            if x["verdict"] == SLOWER]
  for x in timed:
    if x["verdict"] == EXPECTED and abs(x["ratio"] - 1) > 0.05:
      (realised if x["ratio"] > 1 else slower).append(
          f"expected latency at batch {x['batch']} "
          f"{max(x['ratio'], 1 / x['ratio']):.2f}× {'lower' if x['ratio'] > 1 else 'higher'}"
          " (computed from its models' measured latencies)")
  if m.get("peak_bytes") and m["peak_bytes"] > 1.05:
    realised.append(f"peak memory {m['peak_bytes']:.2f}× smaller")
  train = m.get("train")
  note = "" if not (train and "training FLOPs" in row["theoretical"]) else (
      f" Training took {train['seconds']:.1f} s of wall-clock against the source's "
      f"{train['source_seconds']:.1f} s (one run each, compilation included: no verdict).")
  paper = ", ".join(f"{v:.2f}× fewer {k}" for k, v in theory.items())
  if not theory and not realised:
    head = f"{row['variant']} saves nothing counted against the dense source"
    return head + (f"; on {backend}: {'; '.join(slower)}." if slower else ".") + note
  if realised:
    text = f"On {backend}, {row['variant']} realises {'; '.join(realised)}"
    return text + (f" (counted: {paper})." if paper else ".") + (
        f" But {'; '.join(slower)}." if slower else "") + note
  text = f"On {backend}, {row['variant']}'s savings exist only on paper ({paper}): "
  # "No difference beyond the spread" only when no measured latency came out slower.
  return text + (f"{'; '.join(slower)}." if slower else "no latency difference beyond the spread.") + note


def _pairing_note(rows: Sequence[Mapping[str, Any]]) -> str:
  timed = [m for r in rows for by_backend in r["measured"].values()
           for m in (by_backend.get("b1"), by_backend.get("bN"))
           if m and m["verdict"] != EXPECTED]
  paired = sum(bool(m.get("paired")) for m in timed)
  if timed and paired == len(timed):
    return ("each variant was timed in alternation with the source (paired: both medians "
            "saw the same machine load)")
  if paired:
    return (f"{paired} of {len(timed)} timings were paired with the source (timed in "
            "alternation); the others divide by the source's own timing")
  return "each ratio divides by the source's own timing, taken at another moment"


def blocks(records: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
  """The report section: a table (theoretical columns, then per backend the measured
  ones) and one sentence per variant and backend."""
  result = lottery(records)
  rows = result["rows"]
  if not rows:
    return []
  theory_names = [n for n, _ in THEORETICAL if any(n in r["theoretical"] for r in rows)]
  headers = ["Variant"] + [f"{n} (counted)" for n in theory_names]
  trains = any(m.get("train") for r in rows for m in r["measured"].values())
  for backend in result["backends"]:
    headers += [f"{backend}: latency b=1", f"{backend}: latency b=N",
                f"{backend}: peak memory"] + ([f"{backend}: training wall"] if trains else [])
  table = []
  for row in rows:
    cells = [row["variant"]] + [_ratio(row["theoretical"].get(n)) for n in theory_names]
    for backend in result["backends"]:
      m = row["measured"].get(backend) or {}
      cells += [_measured_cell(m.get("b1")), _measured_cell(m.get("bN")),
                _ratio(m.get("peak_bytes"))]
      if trains:
        t = m.get("train")
        cells.append("–" if not t else f"{t['ratio']:.2f}×; {t['seconds']:.1f} s")
    table.append(cells)
  kinds = sorted({f"{b}: {m['device_kind']}" for r in rows for b, m in r["measured"].items()
                  if m.get("device_kind")})
  out: list[tuple[Any, ...]] = [
      ("h2", "The hardware lottery"),
      ("p", "Savings against the dense source of the same backend, source / variant (>1 "
            "saves). Counted columns (params, non-zero params, FLOPs, sparse FLOPs with "
            "zeros skipped, weight bytes) hold on any hardware; the measured columns are "
            "what each backend delivered: latency ratio of medians, then the variant's "
            "median (p10–p90); '(≈)' marks spreads that overlap the source's (no measurable "
            "change), b=N the larger measured batch; "
            + _pairing_note(rows) + "; peak memory is XLA's buffer peak of "
            "the compiled forward pass. Cascades' latency is expected, computed from the "
            "measured latencies of their two models, not timed. Training FLOPs (counted "
            "where a variant was trained from scratch: rows forward-passed plus 3 × rows "
            "backpropagated, × forward FLOPs per example) sit beside the training "
            "wall-clock (one run each, compilation included, no spread). Backends: "
            + (", ".join(kinds) or ", ".join(result["backends"])) + "."),
      ("table", headers, table)]
  for backend, band in (result.get("controls") or {}).items():
    if band:
      spans = "; ".join(f"{b['low']:.2f}×–{b['high']:.2f}× at {'batch 1' if k == 'b1' else 'b=N'}"
                        for k, b in band.items())
      out.append(("p", f"Timing noise on {backend}: {', '.join(next(iter(band.values()))['variants'])} "
                       "run the source's own inference program (same counted params, FLOPs and "
                       f"weight bytes), yet their latency ratios read {spans}; a measured "
                       "saving inside that band is counted as no measurable change."))
  out += [("p", sentence(row, backend)) for row in rows for backend in result["backends"]
          if backend in row["measured"] and row["theoretical"]]
  return out
