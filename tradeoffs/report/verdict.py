"""The report side of the verdict layer: claims between records, as tables and sentences.

Every sentence in a report that claims a difference comes from `tradeoffs.stats` through
this module: `against_reference` builds one `Comparison` per (variant, metric) from the
records' per-member values — paired when the variant was derived from the reference's own
members (pruned, quantized: `hidden_costs.cie_kind == "derived"`), Welch otherwise — and
Holm-corrects them as one family (the report section); `table` and `sentence` render them
with one set of formatters.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

from tradeoffs import stats
from tradeoffs.report import format as fmt
from tradeoffs.report.pareto import get_path

# metric label -> path of the per-member values in a record.
PER_MEMBER = {
    "top-1": "accuracy.per_member_top1",
    "worst class": "accuracy.per_member_worst_class",
    "worst group": "accuracy.per_member_worst_group",
}


def is_paired(record: Mapping[str, Any], reference: Mapping[str, Any]) -> bool:
  """Same members measured twice: derived from the reference with as many members."""
  derived = (record.get("hidden_costs") or {}).get("cie_kind") == "derived"
  return bool(derived and record.get("source") == reference.get("variant")
              and record.get("members") == reference.get("members"))


def against_reference(records: Sequence[Mapping[str, Any]], reference: Mapping[str, Any],
                      metrics: Mapping[str, str] = PER_MEMBER) -> list[stats.Comparison]:
  """One Holm-corrected family: every other record's metrics against `reference`.

  Records are trade-off records (dicts; `metrics` maps a label to the dotted path of a
  per-member list). Returns one `stats.Comparison` per (record, metric), Holm-corrected.

  >>> dense = {"variant": "dense", "members": 3,
  ...          "accuracy": {"per_member_top1": [0.97, 0.98, 0.96]}}
  >>> pruned = {"variant": "pruned", "source": "dense", "members": 3,
  ...           "hidden_costs": {"cie_kind": "derived"},
  ...           "accuracy": {"per_member_top1": [0.90, 0.92, 0.89]}}
  >>> (c,) = against_reference([dense, pruned], dense, {"top-1": "accuracy.per_member_top1"})
  >>> c.test, c.verdict, round(c.estimate, 4)                    # paired: its own members
  ('paired', 'lower', -0.0667)
  """
  claims = []
  for record in records:
    if record is reference or record.get("variant") == reference.get("variant"):
      continue
    for label, path in metrics.items():
      a, b = get_path(record, path), get_path(reference, path)
      if not isinstance(a, list) or not isinstance(b, list) or not a or not b:
        continue
      if any(v is None for v in a + b):
        continue
      paired = is_paired(record, reference) and len(a) == len(b)
      claims.append(stats.compare(a, b, paired=paired,
                                  claim=f"{record['variant']}: {label}"))
  return stats.family(claims)


def sentence(c: stats.Comparison, scale: float = 100.0, unit: str = " pt") -> str:
  """'pruned_s90: top-1 lower by 8.1 pt [7.2, 9.0] (paired t, n=8, Holm p=3e-05)'."""
  name, _, metric = c.claim.partition(": ")
  what = metric or name
  test = {"paired": "paired t", "welch": "Welch t"}.get(c.test, c.test)
  evidence = f"({test}, n={c.n_a}{'' if c.test == 'paired' else f'/{c.n_b}'}, Holm p={fmt.p(c.p_holm)})"
  if c.verdict == stats.NO_DIFFERENCE:
    return (f"{name}: no detectable difference in {what} "
            f"({fmt.signed(c.estimate * scale)}{unit} {fmt.interval(c.low * scale, c.high * scale)}) "
            f"{evidence}")
  return (f"{name}: {what} {c.verdict} by {fmt.number(abs(c.estimate) * scale)}{unit} "
          f"{fmt.interval(c.low * scale, c.high * scale)} {evidence}")


def table(comparisons: Sequence[stats.Comparison], scale: float = 100.0,
          unit: str = "pt") -> tuple[str, list[str], list[list[str]]]:
  """A ("table", headers, rows) block: claim, estimate with 95% CI, test, p, Holm p, verdict."""
  headers = ["Claim", f"Δ ({unit})", "95% CI", "Test", "n", "p", "Holm p", "Verdict"]
  rows = []
  for c in comparisons:
    rows.append([c.claim, fmt.signed(c.estimate * scale),
                 fmt.interval(c.low * scale, c.high * scale),
                 {"paired": "paired t", "welch": "Welch t"}.get(c.test, c.test),
                 str(c.n_a) if c.test == "paired" else f"{c.n_a}/{c.n_b}",
                 fmt.p(c.p), fmt.p(c.p_holm), c.verdict])
  return ("table", headers, rows)


def comparisons_of(record: Mapping[str, Any]) -> dict[str, stats.Comparison]:
  """The comparisons a record carries (its `comparisons` field), as objects."""
  return {k: stats.Comparison.from_dict(v) for k, v in (record.get("comparisons") or {}).items()}


def section(records: Sequence[Mapping[str, Any]], reference: Mapping[str, Any], title: str,
            tests: str) -> list[tuple[Any, ...]]:
  """A report section: every record against `reference` as one Holm family, the table and
  one sentence per significant top-1 claim; [] when there is nothing to compare.

  `tests` says in words which test applies to which variants (it is printed).
  """
  claims = against_reference(records, reference)
  if not claims:
    return []
  blocks: list[tuple[Any, ...]] = [
      ("h2", title),
      ("p", f"{len(claims)} claims in one family, Holm-corrected; {tests}; differences in "
            "percentage points."),
      table(claims)]
  blocks += [("p", sentence(c)) for c in claims
             if c.verdict != stats.NO_DIFFERENCE and "top-1" in c.claim]
  return blocks
