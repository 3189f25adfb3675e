"""The report: frontier plots, a table of every variant, and what was traded for what.

`write_report` writes `report.md` with PNG figures next to it, and a self-contained
`report.html` (the same content, figures embedded as base64 PNG). Both are functions of
the trade-off records only (DESIGN.md).
"""

from __future__ import annotations

import base64
import html
import os
import re
from typing import Any, Mapping, Sequence

from tradeoffs import workdir as workdir_lib
from tradeoffs.report import pareto as frontier_lib
from tradeoffs.report import figures
from tradeoffs.report import ledger
from tradeoffs.report.pareto import as_number
from tradeoffs.report.pareto import get_path

DEFAULT_X_AXES = ("efficiency.params", "efficiency.nonzero_params", "efficiency.flops",
                  "efficiency.latency_ms")
DEFAULT_METRICS = ("accuracy.top1", "accuracy.worst_class", "accuracy.worst_group",
                   "hidden_costs.cie_count", "hidden_costs.churn")
# Table columns: (header, dotted path, formatter).
TABLE_COLUMNS = (
    ("Study", "study", str),
    ("Members", "members", ledger.fmt_count),
    ("Params", "efficiency.params", ledger.fmt_count),
    ("Non-zero", "efficiency.nonzero_params", ledger.fmt_count),
    ("FLOPs", "efficiency.flops", ledger.fmt_count),
    ("Sparse FLOPs*", "efficiency.sparse_flops", ledger.fmt_count),
    ("Weight bytes", "efficiency.weight_bytes", ledger.fmt_count),
    ("Latency ms", "efficiency.latency_ms", lambda v: f"{v:.3g}"),
    ("Peak bytes", "efficiency.peak_bytes", ledger.fmt_count),
    ("Top-1", "accuracy.top1", ledger.fmt_accuracy),
    ("±", "accuracy.top1_std", ledger.fmt_accuracy),
    ("Worst class", "accuracy.worst_class", ledger.fmt_accuracy),
    ("Worst group", "accuracy.worst_group", ledger.fmt_accuracy),
    ("CIE", "hidden_costs.cie_count", ledger.fmt_count),
    ("Churn", "hidden_costs.churn", lambda v: f"{v:.3g}"),
    ("Seconds", "seconds", lambda v: f"{v:.1f}"),
)


def axis_label(axis: str) -> str:
  return axis.split(".")[-1].replace("_", " ")


def variant_labels(records: Sequence[Mapping[str, Any]]) -> list[str]:
  """Variant names, made unique with the run (workdir) name and then a counter."""
  names = [str(r.get("variant")) for r in records]
  if len(set(names)) < len(names):
    names = [f"{n} [{os.path.basename(os.path.normpath(str(r['workdir'])))}]"
             if r.get("workdir") and names.count(n) > 1 else n for n, r in zip(names, records)]
  seen: dict[str, int] = {}
  out = []
  for name in names:
    seen[name] = seen.get(name, 0) + 1
    out.append(name if names.count(name) == 1 else f"{name} #{seen[name]}")
  return out


def _present(records: Sequence[Mapping[str, Any]], axes: Sequence[str] | None,
             defaults: Sequence[str], name: str) -> list[str]:
  """Axes that records have; explicitly requested axes must exist (ValueError otherwise)."""
  if axes is None:
    return [a for a in defaults
            if any(as_number(get_path(r, a)) is not None for r in records)]
  if isinstance(axes, str):
    axes = (axes,)
  for axis in axes:
    frontier_lib.check_axis(records, axis, name)
  return list(axes)


def _slug(axis: str) -> str:
  return re.sub(r"[^A-Za-z0-9]+", "_", axis.split(".", 1)[-1]).strip("_")


def plot_frontiers(directory: str, records: Sequence[Mapping[str, Any]], x_axes: Sequence[str],
                   metrics: Sequence[str]) -> list[tuple[str, str]]:
  """One PNG per x axis, two panels a row, every variant a labelled point, the Pareto
  frontier a line. Returns [(path, caption)]."""
  labels = variant_labels(records)
  studies = sorted({str(r.get("study")) for r in records})
  colors = {s: figures.color(i) for i, s in enumerate(studies)}
  out = []
  for x in x_axes:
    panels = [m for m in metrics
              if any(as_number(get_path(r, x)) is not None and
                     as_number(get_path(r, m)) is not None for r in records)]
    if not panels:
      continue
    columns = min(2, len(panels))
    rows = -(-len(panels) // columns)
    fig, axs = figures.new(columns, rows)
    for ax in axs[len(panels):]:
      ax.set_visible(False)
    for ax, metric in zip(axs, panels):
      xs = []
      for record, label in zip(records, labels):
        vx, vy = as_number(get_path(record, x)), as_number(get_path(record, metric))
        if vx is None or vy is None:
          continue
        xs.append(vx)
        ax.scatter(vx, vy, color=colors[str(record.get("study"))], s=36, zorder=3)
        ax.annotate(label, (vx, vy), fontsize=8, xytext=(4, 3), textcoords="offset points")
      front = frontier_lib.pareto_front(records, x, metric,
                                        x_lower_is_better=not frontier_lib.higher_is_better(x),
                                        y_higher_is_better=frontier_lib.higher_is_better(metric))
      line = sorted((as_number(get_path(r, x)), as_number(get_path(r, metric))) for r in front)
      ax.plot([p[0] for p in line], [p[1] for p in line], "-", color="0.3", lw=1.2,
              drawstyle="steps-post", zorder=2, label="Pareto frontier")
      if min(xs) > 0 and max(xs) / min(xs) > 20:
        ax.set_xscale("log")
      ax.xaxis.set_major_formatter(_compact_formatter())
      better = "↑ better" if frontier_lib.higher_is_better(metric) else "↓ better"
      ax.set_xlabel(axis_label(x))
      ax.set_ylabel(f"{axis_label(metric)} ({better})")
    if len(studies) > 1:
      from matplotlib.lines import Line2D
      handles = [Line2D([], [], marker="o", ls="", color=colors[s]) for s in studies]
      fig.legend(handles, studies, loc="upper right")
    path = figures.save(fig, os.path.join(directory, f"frontier_{_slug(x)}.png"))
    out.append((path, f"{', '.join(axis_label(m) for m in panels).capitalize()} against "
                      f"{axis_label(x)}: every variant a point, the grey line its Pareto "
                      "frontier."))
  return out


def _compact_formatter():
  """Tick labels like 12k, 3.4M instead of 12000 or 3.4e6 (readable at report size)."""
  from matplotlib.ticker import FuncFormatter

  def fmt(value, _):
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
      if abs(value) >= scale:
        return f"{value / scale:g}{suffix}"
    return f"{value:g}"

  return FuncFormatter(fmt)


def variant_table(records: Sequence[Mapping[str, Any]], labels: Sequence[str] | None = None,
                  starred: Sequence[bool] | None = None,
                  columns: Sequence[tuple[str, str, Any]] = TABLE_COLUMNS,
                  ) -> tuple[list[str], list[list[str]]]:
  """(headers, rows) of a variant table; columns no record has are dropped."""
  labels = variant_labels(records) if labels is None else labels
  starred = [False] * len(records) if starred is None else starred
  columns = [c for c in columns if any(get_path(r, c[1]) is not None for r in records)]
  headers = ["Variant"] + [c[0] for c in columns]
  rows = []
  for record, label, star in zip(records, labels, starred):
    row = [label + (" ★" if star else "")]
    for _, path, formatter in columns:
      value = get_path(record, path)
      if path in ("study",):
        row.append("–" if value is None else str(value))
      else:
        number = as_number(value)
        row.append("–" if number is None else formatter(number))
    rows.append(row)
  return headers, rows


def _blocks(records: Sequence[Mapping[str, Any]], title: str,
            figure_paths: Sequence[tuple[str, str]],
            x_axes: Sequence[str], metrics: Sequence[str], reference: str | None,
            with_ledger: bool = True) -> list[tuple[Any, ...]]:
  """The report as neutral blocks, rendered to Markdown and to HTML."""
  labels = variant_labels(records)
  blocks: list[tuple[Any, ...]] = [("h1", title)]
  studies = sorted({str(r.get("study")) for r in records})
  runs = sorted({str(r["workdir"]) for r in records if r.get("workdir")})
  blocks.append(("p", f"{len(records)} variants from {len(studies)} "
                      f"stud{'y' if len(studies) == 1 else 'ies'} ({', '.join(studies)})"
                      + (f" and {len(runs)} runs" if len(runs) > 1 else "") + "."))
  main_y = metrics[0] if metrics else None
  starred = [False] * len(records)
  star_note = None
  if x_axes and main_y:
    front = frontier_lib.frontier(records, x_axes[0], main_y)
    starred = frontier_lib.on_front(records, front)
    star_note = (f"★ marks the Pareto frontier of {axis_label(main_y)} against "
                 f"{axis_label(x_axes[0])}: no other variant is at least as good on both and "
                 "better on one.")
  else:
    star_note = None
  blocks.append(("h2", "Frontiers"))
  if figure_paths:
    for path, caption in figure_paths:
      blocks.append(("img", os.path.basename(path), caption))
  else:
    blocks.append(("p", "No variant has both an efficiency axis and a metric to plot."))
  blocks.append(("p", "Theoretical cost (params, non-zero params, FLOPs, sparse FLOPs) and "
                      "measured cost (latency, peak memory) are shown side by side. "
                      "*Sparse FLOPs assume zero weights are skipped; dense hardware "
                      "executes the full FLOPs."))
  blocks.append(("h2", "Every variant"))
  if star_note:
    blocks.append(("p", star_note))
  headers, rows = variant_table(records, labels, starred)
  blocks.append(("table", headers, rows))
  if not with_ledger:
    return blocks
  blocks.append(("h2", "What was traded for what"))
  for record, label in zip(records, labels):
    ref = ledger.choose_reference(record, records, reference)
    entry = ledger.trade_entry(record, ref)
    blocks.append(("h3", label))
    items = []
    ref_label = "–" if ref is None else labels[[id(r) for r in records].index(id(ref))]
    items.append(("Choice", "; ".join(entry["choice"]) or f"variant {entry['variant']}"))
    items.append(("Compared with", "itself (reference)" if ref is record else ref_label))
    items.append(("Saved", "; ".join(entry["saved"]) or "no efficiency numbers recorded"))
    items.append(("Cost", "; ".join(entry["cost"]) or "no accuracy numbers recorded"))
    if entry["whom"]:
      items.append(("For whom", "; ".join(entry["whom"])))
    if entry["seconds"] is not None:
      items.append(("Took", f"{entry['seconds']:.1f} s"))
    for note in entry["notes"]:
      items.append(("Note", note))
    blocks.append(("dl", items))
  return blocks


def save_figures(directory: str, blocks: Sequence[tuple[Any, ...]]
                 ) -> tuple[list[tuple[Any, ...]], list[str]]:
  """Saves ("figure", file name, Figure, caption) blocks as PNGs in `directory` and turns
  them into ("img", file name, caption) blocks; returns (blocks, saved paths)."""
  out, paths = [], []
  for block in blocks:
    if block[0] == "figure":
      _, name, figure, caption = block
      paths.append(figures.save(figure, os.path.join(directory, name)))
      out.append(("img", name, caption))
    else:
      out.append(tuple(block))
  return out, paths


def _md_cell(text: str) -> str:
  return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: Sequence[tuple[Any, ...]]) -> str:
  lines = []
  for block in blocks:
    kind = block[0]
    if kind in ("h1", "h2", "h3"):
      lines += ["#" * int(kind[1]) + " " + block[1], ""]
    elif kind == "p":
      lines += [block[1], ""]
    elif kind == "img":
      lines += [f"![{block[2]}]({block[1]})", "", f"*{block[2]}*", ""]
    elif kind == "table":
      headers, rows = block[1], block[2]
      lines.append("| " + " | ".join(_md_cell(h) for h in headers) + " |")
      lines.append("|" + "|".join("---" for _ in headers) + "|")
      lines += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in rows]
      lines.append("")
    elif kind == "dl":
      lines += [f"- **{name}:** {text}" for name, text in block[1]] + [""]
  return "\n".join(lines)


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:13px}td,th{border:1px solid #ccc;"
        "padding:3px 7px;text-align:right}td:first-child,th:first-child{text-align:left}"
        "img{max-width:100%}dt{font-weight:600;float:left;clear:left;width:8em}"
        "dd{margin-left:8.5em}")


def render_html(blocks: Sequence[tuple[Any, ...]], directory: str) -> str:
  """Self-contained HTML: figures read from `directory` and embedded as base64."""
  esc = html.escape
  parts = ["<!DOCTYPE html><html><head><meta charset='utf-8'>",
           f"<title>{esc(blocks[0][1])}</title><style>{_CSS}</style></head><body>"]
  for block in blocks:
    kind = block[0]
    if kind in ("h1", "h2", "h3", "p"):
      parts.append(f"<{kind}>{esc(block[1])}</{kind}>")
    elif kind == "img":
      with open(os.path.join(directory, block[1]), "rb") as f:
        data = base64.b64encode(f.read()).decode("ascii")
      parts.append(f"<figure><img alt='{esc(block[2])}' src='data:image/png;base64,{data}'>"
                   f"<figcaption>{esc(block[2])}</figcaption></figure>")
    elif kind == "table":
      parts.append("<table><tr>" + "".join(f"<th>{esc(h)}</th>" for h in block[1]) + "</tr>")
      parts += ["<tr>" + "".join(f"<td>{esc(c)}</td>" for c in row) + "</tr>"
                for row in block[2]]
      parts.append("</table>")
    elif kind == "dl":
      parts.append("<dl>" + "".join(f"<dt>{esc(n)}</dt><dd>{esc(t)}</dd>"
                                    for n, t in block[1]) + "</dl>")
  parts.append("</body></html>")
  return "\n".join(parts)


def write_report(workdir: str, records: Sequence[Mapping[str, Any]], *, title: str,
                 axes: Sequence[str] | None = None, metrics: Sequence[str] | None = None,
                 reference: str | None = None, lead_blocks: Sequence[tuple[Any, ...]] = (),
                 tail_blocks: Sequence[tuple[Any, ...]] = (), with_ledger: bool = True
                 ) -> dict[str, Any]:
  """Writes report.md, report.html and frontier_*.png into `workdir`.

  Args:
    workdir: directory to write into (a study's workdir or a sweep directory).
    records: trade-off records, e.g. `load_records(*workdirs)`.
    title: the report's title.
    axes: efficiency axes for the x of the plots (dotted paths); default params,
      non-zero params, FLOPs and latency, those present. Requested axes that no record has raise ValueError.
    metrics: accuracy and hidden-cost axes plotted against each x; default top-1,
      worst class, worst group, CIE count and churn, those present. The first is the
      one the frontier (★) in the table uses.
    reference: variant name to measure savings and costs against; default per study a
      variant named dense/baseline/reference, else the one with most parameters.
    lead_blocks / tail_blocks: a study's own sections, as blocks (("h2", text), ("p", text),
      ("img", file name in workdir, caption), ("figure", file name, Figure, caption),
      ("table", headers, rows)), placed after the summary paragraph / at the end of both
      report.md and report.html.
    with_ledger: include "What was traded for what" (False for studies whose variants trade
      nothing a model does, e.g. simulated coding schemes).

  Returns:
    {"markdown": path, "html": path, "figures": [paths]}.

  >>> from tradeoffs.report.records import make_record
  >>> def rec(variant, params, top1, **kw):
  ...   return make_record(study="prune", variant=variant, efficiency={"params": params},
  ...                      accuracy={"top1": top1}, **kw)
  >>> records = [rec("dense", 100, 0.90), rec("p50", 50, 0.89, source="dense"),
  ...            rec("p90", 10, 0.70, source="dense"), rec("bad", 60, 0.80, source="dense")]
  >>> import os, tempfile
  >>> workdir = tempfile.mkdtemp()
  >>> out = write_report(workdir, records, title="Pruning", axes=["efficiency.params"],
  ...                    metrics=["accuracy.top1"])
  >>> [os.path.basename(p) for p in (out["markdown"], out["html"], *out["figures"])]
  ['report.md', 'report.html', 'frontier_params.png']
  >>> "# Pruning" in open(out["markdown"]).read()
  True
  """
  if isinstance(records, Mapping):
    raise ValueError("records must be a list of trade-off records, got a single record")
  records = list(records)
  if not records:
    raise ValueError("records is empty: nothing to report. Load them with "
                     "report.load_records(workdir, ...) after a study has run")
  if not isinstance(title, str) or not title:
    raise ValueError(f"title={title!r}: expected a non-empty string")
  x_axes = _present(records, axes, DEFAULT_X_AXES, "axes")
  y_axes = _present(records, metrics, DEFAULT_METRICS, "metrics")
  out = {"markdown": os.path.join(workdir, "report.md"),
         "html": os.path.join(workdir, "report.html"), "figures": []}
  if not workdir_lib.is_writer():
    return out
  os.makedirs(workdir, exist_ok=True)
  frontier_figures = plot_frontiers(workdir, records, x_axes, y_axes)
  lead, lead_figures = save_figures(workdir, lead_blocks)
  tail, tail_figures = save_figures(workdir, tail_blocks)
  out["figures"] = lead_figures + [p for p, _ in frontier_figures] + tail_figures
  blocks = _blocks(records, title, frontier_figures, x_axes, y_axes, reference, with_ledger)
  blocks = blocks[:2] + lead + blocks[2:] + tail
  workdir_lib.atomic_write_text(out["markdown"], render_markdown(blocks))
  workdir_lib.atomic_write_text(out["html"], render_html(blocks, workdir))
  return out
