"""Welch t-tests against scipy, Q-score, prediction depth, k-NN, audit outputs."""

from __future__ import annotations

import json
import os

import hypothesis
import hypothesis.strategies as st
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats
from sklearn.neighbors import KNeighborsClassifier

from tradeoffs import exemplars


@hypothesis.settings(max_examples=15, deadline=None)
@hypothesis.given(st.integers(0, 10_000), st.sampled_from([(2, 3), (5, 5), (30, 12)]))
def test_welch_ttest_matches_scipy(seed, sizes):
  rng = np.random.default_rng(seed)
  a = rng.normal(0.0, 1.0, (sizes[0], 3))
  b = rng.normal(0.5, 2.0, (sizes[1], 3))
  ours = exemplars.welch_ttest(a, b)
  ref = scipy.stats.ttest_ind(a, b, equal_var=False)
  np.testing.assert_allclose(ours.statistic, ref.statistic, rtol=1e-4)
  np.testing.assert_allclose(ours.pvalue, ref.pvalue, rtol=2e-3, atol=1e-6)
  np.testing.assert_allclose(ours.dof, ref.df, rtol=1e-4)


def test_student_t_pvalue_matches_scipy_cdf():
  t = np.array([0.0, 0.5, 2.0, -3.0, 6.0])
  dof = np.array([1.0, 3.5, 10.0, 29.0, 100.0])
  np.testing.assert_allclose(exemplars.student_t_two_sided_pvalue(t, dof),
                             2 * scipy.stats.t.sf(np.abs(t), dof), rtol=1e-4, atol=1e-7)


def _population(rng, labels, accuracy_per_class, members):
  """Members predict the true label with a per-class probability, else a random wrong one."""
  num_classes = len(accuracy_per_class)
  correct = rng.random((members, labels.size)) < np.asarray(accuracy_per_class)[labels]
  wrong = (labels + rng.integers(1, num_classes, (members, labels.size))) % num_classes
  return np.where(correct, labels, wrong).astype(np.int32)


def test_per_class_ttest_matches_scipy_and_flags_hurt_class():
  rng = np.random.default_rng(0)
  labels = np.repeat(np.arange(4), 50)
  dense = _population(rng, labels, [0.9, 0.9, 0.9, 0.9], members=8)
  compressed = _population(rng, labels, [0.9, 0.9, 0.9, 0.3], members=10)  # Class 3 hurt.
  for normalize in ("model", "population", "none"):
    result = exemplars.per_class_ttest(dense, compressed, labels, 4, normalize=normalize)
    recall = lambda p: np.stack([[np.mean(m[labels == c] == c) for c in range(4)]  # noqa: E731
                                 for m in p])
    acc = lambda p: np.mean(p == labels, axis=1)  # noqa: E731
    shift = {"model": lambda p: acc(p)[:, None], "population": lambda p: acc(p).mean(),
             "none": lambda p: 0.0}[normalize]
    ref = scipy.stats.ttest_ind(recall(dense) - shift(dense),
                                recall(compressed) - shift(compressed), equal_var=False)
    np.testing.assert_allclose(result.statistic, ref.statistic, rtol=1e-3)
    np.testing.assert_allclose(result.pvalue, ref.pvalue, rtol=1e-2, atol=1e-6)
    assert result.statistic[3] > 0 and result.pvalue[3] < 1e-3
  np.testing.assert_allclose(result.compressed_mean_recall[3], recall(compressed)[:, 3].mean(),
                             rtol=1e-5)
  with pytest.raises(ValueError, match="normalize='mean'"):
    exemplars.per_class_ttest(dense, compressed, labels, 4, normalize="mean")
  with pytest.raises(ValueError, match=">= 2 samples"):
    exemplars.per_class_ttest(dense[:1], compressed, labels, 4)


def test_q_score_hand_computed():
  z = jnp.array([[1.0, 2.0, 3.0, 6.0], [1.0, 1.0, 1.0, 1.0]])
  # Row 0: mean 3, population std sqrt(3.5), max 6, L1 12 -> (3 / sqrt(3.5)) / 12.
  expected = 3.0 / np.sqrt(3.5) / 12.0
  np.testing.assert_allclose(exemplars.q_score(z)[0], expected, rtol=1e-6)
  np.testing.assert_allclose(exemplars.q_score(z, ddof=1)[0],
                             3.0 / np.std([1, 2, 3, 6], ddof=1) / 12.0, rtol=1e-6)
  assert exemplars.q_score(z)[1] == 0.0  # A flat representation has no peak.


def test_prediction_depth_both_definitions():
  labels = jnp.array([0, 1, 1, 2])
  # layers x examples: ex 0 always right, ex 1 wrong at layer 2 (last), ex 2 wrong at
  # layer 1 only, ex 3 wrong at layers 0 and 1.
  knn = jnp.array([[0, 1, 1, 0],
                   [0, 1, 0, 0],
                   [0, 0, 1, 2]])
  np.testing.assert_array_equal(exemplars.prediction_depth(knn, labels), [1, 3, 2, 2])
  np.testing.assert_array_equal(exemplars.prediction_depth(knn, labels, definition="paper"),
                                [0, 3, 2, 2])
  with pytest.raises(ValueError, match="definition='first'"):
    exemplars.prediction_depth(knn, labels, definition="first")


def test_knn_predict_matches_sklearn():
  rng = np.random.default_rng(1)
  train = rng.normal(size=(60, 5)).astype(np.float32)
  train_labels = rng.integers(0, 3, 60)
  query = rng.normal(size=(25, 5)).astype(np.float32)
  reference = KNeighborsClassifier(n_neighbors=7).fit(train, train_labels).predict(query)
  ours = exemplars.knn_predict(train, train_labels, query, k=7, num_classes=3)
  np.testing.assert_array_equal(ours, reference)


def test_audit_sheet_and_cie_list(tmp_path):
  rng = np.random.default_rng(0)
  images = rng.random((6, 8, 8, 1)).astype(np.float32)
  ids = np.arange(100, 106)
  dense_modal = np.array([0, 1, 2, 3, 4, 5])
  comp_modal = np.array([0, 2, 2, 0, 4, 1])  # CIEs at positions 1, 3, 5.
  labels = np.array([0, 1, 2, 3, 4, 6])
  path = os.path.join(tmp_path, "audit", "cie.png")
  drawn = exemplars.audit_sheet(path, images, ids, dense_modal, comp_modal, labels)
  assert drawn == 3
  with open(path, "rb") as f:
    assert f.read(8) == b"\x89PNG\r\n\x1a\n"
  assert os.path.getsize(path) > 1000
  assert exemplars.audit_sheet(path, images, ids, dense_modal, comp_modal, labels,
                               max_images=2) == 2
  none = os.path.join(tmp_path, "none.png")
  assert exemplars.audit_sheet(none, images, ids, dense_modal, dense_modal, labels) == 0
  assert os.path.getsize(none) > 0

  scores = np.array([0.0, 0.5, 0.0, 1.5, 0.0, 1.0])
  listing = os.path.join(tmp_path, "cie.json")
  exemplars.write_cie_list(listing, ids, scores=scores, dense_modal=dense_modal,
                           comp_modal=comp_modal, labels=labels, variant="prune90")
  with open(listing) as f:
    written = json.load(f)
  assert written["count"] == 3 and written["variant"] == "prune90"
  assert [e["id"] for e in written["examples"]] == [103, 105, 101]  # By score.
  assert written["examples"][1] == {"id": 105, "score": 1.0, "dense_modal": 5,
                                    "compressed_modal": 1, "label": 6}
  with pytest.raises(ValueError, match="is_cie="):
    exemplars.write_cie_list(listing, ids)


def test_prediction_depth_from_layer_probes_on_a_constructed_case():
  # Two classes; every training example sits on its class centre (±1 on axis 0) at
  # every layer, so each layer's 30-NN probe predicts the centre a query is nearest to.
  train_labels = np.repeat([0, 1], 40)
  centre = np.where(train_labels[:, None] == 0, -1.0, 1.0) * np.array([[1.0, 0.0]])
  layers = 4
  train_layers = [centre] * layers
  labels = np.array([0, 1, 0, 1])
  # Query 0 right everywhere; 1 wrong at layers 0-1; 2 wrong at layer 2 only; 3 wrong at
  # the last layer.
  wrong_at = [set(), {0, 1}, {2}, {3}]
  query_layers = [np.array([[(-1.0 if (y == 0) != (l in w) else 1.0), 0.0]
                            for y, w in zip(labels, wrong_at)]) for l in range(layers)]
  knn = exemplars.layer_knn_predictions(train_layers, train_labels, query_layers, k=30,
                                        num_classes=2)
  assert knn.shape == (layers, 4)
  np.testing.assert_array_equal(exemplars.prediction_depth(knn, labels, definition="paper"),
                                [0, 2, 3, 4])
  np.testing.assert_array_equal(exemplars.prediction_depth(knn, labels), [1, 2, 3, 4])
  with pytest.raises(ValueError, match="same number"):
    exemplars.layer_knn_predictions(train_layers, train_labels, query_layers[:2], k=3,
                                    num_classes=2)
