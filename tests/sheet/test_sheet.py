"""The one scoring sheet against plain numpy, on hand-made populations."""

import numpy as np
import pytest

from tradeoffs import sheet


def _population():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 4, 50)
  groups = rng.integers(0, 2, (50, 1))
  logits = rng.normal(size=(3, 50, 4))
  logits[0, np.arange(50), labels] += 3.0  # member 0 is good
  return logits, labels, groups


def _modal(preds, classes):
  """Most frequent label per example, ties to the largest (Hooker et al.)."""
  counts = np.stack([np.bincount(col, minlength=classes) for col in preds.T])
  return classes - 1 - counts[:, ::-1].argmax(-1)


def test_quality_matches_numpy():
  logits, labels, groups = _population()
  a, h = sheet.score(logits, labels, groups=groups, group_names=("g",), costs=())
  preds = logits.argmax(-1)
  top1 = (preds == labels).mean(-1)
  np.testing.assert_allclose(a["top1"], top1.mean())
  np.testing.assert_allclose(a["top1_std"], top1.std(ddof=1))
  np.testing.assert_allclose(a["per_member_top1"], top1)
  per_class = np.array([[(preds[m][labels == c] == c).mean() for c in range(4)]
                        for m in range(3)])
  np.testing.assert_allclose(a["per_class"], per_class.mean(0), rtol=1e-6)
  # Worst class: the mean of each member's lowest class (not the lowest mean class).
  np.testing.assert_allclose(a["worst_class"], per_class.min(1).mean(), rtol=1e-6)
  np.testing.assert_allclose(a["worst_class_of_mean"], per_class.mean(0).min(), rtol=1e-6)
  assert a["worst_class"] <= a["worst_class_of_mean"]
  np.testing.assert_allclose(a["balanced"], per_class.mean(1).mean(), rtol=1e-6)
  per_group = np.array([[(preds[m][groups[:, 0] == g] == labels[groups[:, 0] == g]).mean()
                         for g in range(2)] for m in range(3)])
  np.testing.assert_allclose(a["per_group"]["g=0"], per_group[:, 0].mean(), rtol=1e-6)
  np.testing.assert_allclose(a["per_member_per_group"]["g=1"], per_group[:, 1], rtol=1e-6)
  np.testing.assert_allclose(a["worst_group"], per_group.min(1).mean(), rtol=1e-6)
  np.testing.assert_allclose(a["modal_top1"], (_modal(preds, 4) == labels).mean())
  assert h["group_gap"] == pytest.approx((per_group.max(1) - per_group.min(1)).mean())


def test_cie_against_source_matches_numpy_and_labels_its_kind():
  logits, labels, groups = _population()
  compressed = logits.copy()
  compressed[:, :7] = -compressed[:, :7]  # Perturb the first 7 examples for every member.
  a, h = sheet.score(compressed, labels, groups=groups, group_names=("g",),
                     source_logits=logits, derived=True)
  is_cie = _modal(logits.argmax(-1), 4) != _modal(compressed.argmax(-1), 4)
  assert h["cie_count"] == int(is_cie.sum()) and 0 < h["cie_count"] <= 7
  assert h["cie_kind"] == "derived"
  member_acc = (compressed.argmax(-1) == labels)[:, is_cie].mean()
  assert h["cie_accuracy"] == pytest.approx(member_acc)
  for g in (0, 1):
    in_group = groups[:, 0] == g
    assert h["cie_rate"][f"g={g}"] == pytest.approx(is_cie[in_group].mean())
  _, retrained = sheet.score(compressed, labels, source_logits=logits, derived=False)
  assert retrained["cie_kind"] == "retrained"
  _, source = sheet.score(logits, labels, source_logits=logits, is_source=True)
  assert source["cie_count"] == 0 and source["cie_kind"] == "source"


def test_cie_null_is_the_count_between_random_halves():
  rng = np.random.default_rng(1)
  logits = rng.normal(size=(6, 40, 3))
  counts = sheet.cie_null_counts(logits, draws=20, seed=3)
  assert counts.shape == (20,) and counts.dtype == np.int64
  # Recompute draw 0 by hand with the same generator.
  order = np.random.default_rng(3).permutation(6)
  a, b = logits[order[:3]].argmax(-1), logits[order[3:]].argmax(-1)
  assert counts[0] == int((_modal(a, 3) != _modal(b, 3)).sum())
  # Identical members: no CIE between any halves.
  same = np.repeat(logits[:1], 4, axis=0)
  assert sheet.cie_null_counts(same, draws=5).max() == 0
  _, h = sheet.score(logits, np.zeros(40, int), source_logits=logits, is_source=True)
  assert h["cie_null"]["members_per_half"] == 3 and h["cie_null"]["draws"] == 50


def test_churn_and_cost_registry():
  preds = np.array([[0, 1, 2, 0], [0, 1, 1, 0], [1, 1, 2, 0]])
  logits = np.eye(3)[preds]
  _, h = sheet.score(logits, np.zeros(4, int), costs=("churn",))
  # Pairwise disagreement: (1 + 1 + 2) / (3 pairs * 4 examples).
  assert h["churn"] == pytest.approx(4 / 12)
  with pytest.raises(ValueError, match="unknown"):
    sheet.score(logits, np.zeros(4, int), costs=("no_such_cost",))
  with pytest.raises(ValueError, match="already registered"):
    sheet.register_cost("churn", lambda inputs: {})


def test_no_groups_means_no_group_fields():
  logits = np.zeros((2, 5, 3))
  a, h = sheet.score(logits, np.zeros(5, int), groups=np.zeros((5, 0), int))
  assert "per_group" not in a and a["top1"] == 1.0 and "group_gap" not in h
