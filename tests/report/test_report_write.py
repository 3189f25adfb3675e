"""The written report: files, figures, the table and the what-was-traded ledger."""

from __future__ import annotations

import os

import pytest

from tradeoffs import report

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def hand_made_records():
  def rec(variant, params, nonzero, flops, ms, top1, worst, per_class, per_group,
          hidden=None, **extra):
    return report.make_record(
        study="pruning", variant=variant, members=4, seconds=12.5,
        efficiency={"params": params, "nonzero_params": nonzero, "flops": flops,
                    "sparse_flops": flops * nonzero / params, "latency_ms": ms},
        accuracy={"top1": top1, "worst_class": worst, "per_class": per_class,
                  "per_group": {"subgroup": per_group}},
        hidden_costs=hidden or {}, config={"sparsity": extra.get("sparsity", 0.0)},
        knobs=extra)
  return [
      rec("dense", 1000, 1000, 2000, 1.00, 0.95, 0.90, [0.95, 0.90, 0.99], [0.96, 0.90]),
      rec("prune_90", 1000, 100, 2000, 0.99, 0.90, 0.70, [0.93, 0.70, 0.97], [0.93, 0.60],
          hidden={"cie_count": 40, "churn": 0.08}, sparsity=0.9),
      rec("narrow", 250, 250, 500, 0.40, 0.91, 0.80, [0.92, 0.80, 0.98], [0.92, 0.85],
          hidden={"cie_count": 12, "churn": 0.05}),
  ]


def test_report_files_and_content(tmp_path):
  directory = str(tmp_path / "wd")
  out = report.write_report(directory, hand_made_records(), title="Pruning vs width")
  assert out["markdown"] == os.path.join(directory, "report.md")
  assert {os.path.basename(p) for p in out["figures"]} == {
      "frontier_params.png", "frontier_nonzero_params.png", "frontier_flops.png",
      "frontier_latency_ms.png"}
  for path in out["figures"]:
    with open(path, "rb") as f:
      data = f.read()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000
  markdown = open(out["markdown"]).read()
  assert markdown.startswith("# Pruning vs width")
  for figure in out["figures"]:
    assert f"({os.path.basename(figure)})" in markdown
  # The table lists every variant; narrow and dense are on the params/top-1 frontier.
  assert "| dense ★ |" in markdown and "| narrow ★ |" in markdown
  assert "| prune_90 |" in markdown
  # What was traded for what, against the dense reference.
  assert "10.00× fewer non-zero params" in markdown
  assert "4.00× fewer FLOPs" in markdown
  assert "top-1 -5.0 pp (95.0% → 90.0%)" in markdown
  assert "class 1 hit hardest: -20.0 pp" in markdown
  assert "group subgroup=1 hit hardest: -30.0 pp" in markdown
  assert "saves on paper but not on this dense hardware" in markdown
  assert "sparsity=0.9 (reference 0.0)" in markdown
  assert "12.5 s" in markdown

  html = open(out["html"]).read()
  assert html.count("data:image/png;base64,") == len(out["figures"])
  assert "src='frontier" not in html  # self-contained: no file references
  assert "Pruning vs width" in html and "hit hardest" in html


def test_report_with_explicit_axes_and_reference(tmp_path):
  records = hand_made_records()
  out = report.write_report(str(tmp_path), records, title="t", axes=["efficiency.flops"],
                            metrics=["hidden_costs.churn"], reference="narrow")
  assert [os.path.basename(p) for p in out["figures"]] == ["frontier_flops.png"]
  markdown = open(out["markdown"]).read()
  assert "4.00× more FLOPs" in markdown  # dense measured against narrow


def test_report_rejects_bad_input(tmp_path):
  with pytest.raises(ValueError, match="empty"):
    report.write_report(str(tmp_path), [], title="t")
  with pytest.raises(ValueError, match="available axes:.*accuracy.top1"):
    report.write_report(str(tmp_path), hand_made_records(), title="t",
                        axes=["efficiency.energy"])


def test_duplicate_variant_names_are_labelled_by_run():
  records = hand_made_records()[:1] * 2
  records = [dict(r, workdir=f"/sweep/run_{i}") for i, r in enumerate(records)]
  from tradeoffs.report import write
  assert write.variant_labels(records) == ["dense [run_0]", "dense [run_1]"]
