"""The accuracy summary shared by studies, against a plain numpy computation."""

import numpy as np

from tradeoffs.studies import common


def test_accuracy_summary_matches_numpy():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 4, 50)
  groups = rng.integers(0, 2, (50, 1))
  logits = rng.normal(size=(3, 50, 4))
  logits[0, np.arange(50), labels] += 3.0  # member 0 is good
  s = common.accuracy_summary(logits, labels, groups, ("g",))
  preds = logits.argmax(-1)
  top1 = (preds == labels).mean(-1)
  np.testing.assert_allclose(s["top1"], top1.mean())
  np.testing.assert_allclose(s["top1_std"], top1.std())
  per_class = np.array([[(preds[m][labels == c] == c).mean() for c in range(4)]
                        for m in range(3)])
  np.testing.assert_allclose(s["per_class"], per_class.mean(0), rtol=1e-6)
  np.testing.assert_allclose(s["worst_class"], per_class.min(1).mean(), rtol=1e-6)
  np.testing.assert_allclose(s["balanced"], per_class.mean(1).mean(), rtol=1e-6)
  per_group = np.array([[(preds[m][groups[:, 0] == g] == labels[groups[:, 0] == g]).mean()
                         for g in range(2)] for m in range(3)])
  np.testing.assert_allclose(s["per_group"]["g=0"], per_group[:, 0].mean(), rtol=1e-6)
  np.testing.assert_allclose(s["worst_group"], per_group.min(1).mean(), rtol=1e-6)
  # Modal label: the most frequent prediction, ties to the largest label (Hooker et al.).
  modal = np.array([3 - np.bincount(preds[:, i], minlength=4)[::-1].argmax()
                    for i in range(50)])
  np.testing.assert_allclose(s["modal_top1"], (modal == labels).mean())


def test_no_groups_means_no_group_fields():
  logits = np.zeros((2, 5, 3))
  s = common.accuracy_summary(logits, np.zeros(5, int), np.zeros((5, 0), int))
  assert "per_group" not in s and s["top1"] == 1.0
