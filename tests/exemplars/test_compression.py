"""exemplars.compression_costs and the audit list on hand-computed populations."""

from __future__ import annotations

import json

import numpy as np
import pytest
import scipy.stats

from tradeoffs import exemplars
from tradeoffs import sheet


def _population():
  labels = np.array([0, 1, 2, 0, 1, 2])
  dense = np.array([[0, 1, 2, 0, 1, 2],
                    [0, 1, 2, 0, 1, 0],
                    [0, 1, 1, 0, 1, 2]])
  comp = np.array([[0, 1, 2, 0, 0, 0],
                   [0, 1, 2, 1, 0, 1],
                   [0, 1, 2, 0, 1, 0]])
  groups = np.array([0, 0, 0, 0, 1, 1])[:, None]
  return labels, dense, comp, groups


def test_costs_hand_computed():
  labels, dense, comp, groups = _population()
  costs = exemplars.compression_costs(dense, comp, labels, groups, ("subgroup",),
                                      paired=True, taxicab_fraction=2 / 6)
  # Taxicab: example 5 moves (1/3, 0, 2/3) -> (2/3, 1/3, 0): L1 = 4/3, the largest.
  assert costs["taxicab"]["k"] == 2 and costs["taxicab"]["max"] == pytest.approx(4 / 3)
  assert costs["taxicab"]["topk_modal_overlap"] == 1.0  # Both top-2 are modal CIEs (4, 5).
  under = costs["underrepresented"]
  assert under["group"] == "subgroup=1" and under["share_of_cie"] == 1.0
  assert under["share_of_examples"] == pytest.approx(2 / 6)
  drops = costs["group_drops"]
  assert drops["subgroup=1"]["drop"] == pytest.approx(4 / 6)
  assert drops["subgroup=1"]["cie_count"] == 2 and drops["subgroup=0"]["cie_count"] == 0
  assert costs["disparity"]["excess_drop"] == pytest.approx(4 / 6)
  # Dense off the CIEs (examples 0-3): 1, 1, 3/4 -> 11/12.
  assert costs["source_non_cie_accuracy"] == pytest.approx(11 / 12)


def test_per_class_tests_against_scipy():
  labels, dense, comp, groups = _population()

  def normalised(pred):  # Independent loop: recall per class minus own accuracy.
    out = np.zeros((3, 3))
    for m in range(3):
      acc = np.mean(pred[m] == labels)
      for c in range(3):
        out[m, c] = np.mean(pred[m][labels == c] == c) - acc
    return out

  for paired, test in ((True, scipy.stats.ttest_rel),
                       (False, lambda a, b: scipy.stats.ttest_ind(a, b, equal_var=False))):
    costs = exemplars.compression_costs(dense, comp, labels, groups, ("subgroup",),
                                        paired=paired, claim_prefix="v: ")
    tests = costs["per_class_tests"]
    assert [t["claim"] for t in tests] == ["v: class 0", "v: class 1", "v: class 2"]
    new, ref = normalised(comp), normalised(dense)
    for c, t in enumerate(tests):
      assert t["estimate"] == pytest.approx((new[:, c] - ref[:, c]).mean())
      if np.ptp(new[:, c] - ref[:, c]) > 0 if paired else True:
        expected = test(new[:, c], ref[:, c]).pvalue
        assert t["p"] == pytest.approx(expected, nan_ok=True), (paired, c)


def test_costs_of_a_population_against_itself():
  labels, dense, _, groups = _population()
  costs = exemplars.compression_costs(dense, dense, labels, groups, ("subgroup",),
                                      paired=True)
  assert costs["taxicab"]["max"] == 0.0
  assert all(t["verdict"] == "no detectable difference" for t in costs["per_class_tests"])
  assert costs["disparity"]["excess_drop"] == 0.0
  assert costs["disparity"]["comparison"]["verdict"] == "no detectable difference"


def test_registered_on_the_sheet():
  labels, dense, comp, groups = _population()
  eye = np.eye(3)
  _, hidden = sheet.score(eye[comp], labels, groups=groups, group_names=("subgroup",),
                          source_logits=eye[dense], derived=True,
                          costs=("cie", "compression"))
  assert hidden["cie_count"] == 2
  assert hidden["group_drops"]["subgroup=1"]["comparison"]["test"] == "paired"
  _, source = sheet.score(eye[dense], labels, source_logits=eye[dense], is_source=True,
                          costs=("compression",))
  assert "taxicab" not in source


def test_write_audit_lists_every_cie_highest_score_first(tmp_path):
  labels, dense, comp, groups = _population()
  out = exemplars.write_audit(str(tmp_path / "cie.json"), "pruned", "dense", dense, comp,
                              labels, np.arange(100, 106), group_ids=groups[:, 0],
                              group_names=("g0", "g1"), num_classes=3, top=1)
  saved = json.load(open(tmp_path / "cie.json"))
  assert saved["count"] == out["count"] == 2 and saved["reference"] == "dense"
  assert [e["id"] for e in saved["examples"]] == [105, 104]  # Scores 4/3, then 2/3.
  assert saved["cie_per_group"] == {"g0": 0, "g1": 2}
  assert out["top"] == [{"index": 5, **saved["examples"][0]}]
  figure, drawn = exemplars.audit_figure(np.zeros((6, 4, 4, 1)), np.arange(100, 106),
                                         np.zeros(6, int), np.array([0, 0, 0, 0, 1, 1]),
                                         labels, reference="dense", variant="pruned")
  assert drawn == 2 and "pruned 1" in figure.axes[0].get_title()
