"""Modal labels, modal and taxicab CIE/PIE, accuracy splits and group breakdowns."""

from __future__ import annotations

import hypothesis
import hypothesis.extra.numpy as hnp
import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from tradeoffs import exemplars

# 4 dense members, 3 compressed members, 5 examples, 3 classes. Hand-made; ties go to the
# largest label (Hooker et al.'s pandas `mode().max()`), so both CIEs hinge on the tie rule:
#   example 0: dense all 0            -> 0;  compressed 0 0 1    -> 0   (not CIE)
#   example 1: dense 1 1 2 2 (tie)    -> 2;  compressed 1 1 2    -> 1   (CIE)
#   example 2: dense 0 0 0 2          -> 0;  compressed 0 1 2 (tie) -> 2 (CIE)
#   example 3: dense 1 1 1 1          -> 1;  compressed 1 1 1    -> 1   (not CIE)
#   example 4: dense 0 2 2 2          -> 2;  compressed 2 0 2    -> 2   (not CIE)
# With ties to the smallest label instead, examples 1 and 2 are not CIEs.
DENSE = jnp.array([[0, 1, 0, 1, 0],
                   [0, 1, 0, 1, 2],
                   [0, 2, 0, 1, 2],
                   [0, 2, 2, 1, 2]])
COMPRESSED = jnp.array([[0, 1, 0, 1, 2],
                        [0, 1, 1, 1, 0],
                        [1, 2, 2, 1, 2]])
LABELS = jnp.array([0, 1, 2, 1, 2])


def test_modal_labels_hand_made_largest_tied_label_by_default():
  np.testing.assert_array_equal(exemplars.modal_labels(DENSE), [0, 2, 0, 1, 2])
  np.testing.assert_array_equal(exemplars.modal_labels(COMPRESSED), [0, 1, 2, 1, 2])
  np.testing.assert_array_equal(exemplars.modal_labels(DENSE, 3), [0, 2, 0, 1, 2])
  np.testing.assert_array_equal(exemplars.modal_labels(COMPRESSED, 3), [0, 1, 2, 1, 2])
  for num_classes in (None, 3):
    np.testing.assert_array_equal(
        exemplars.modal_labels(DENSE, num_classes, tie="smallest"), [0, 1, 0, 1, 2])
    np.testing.assert_array_equal(
        exemplars.modal_labels(COMPRESSED, num_classes, tie="smallest"), [0, 1, 0, 1, 2])


def test_modal_labels_tie_rules_on_a_population_with_ties():
  # 6 members, 5 examples (columns), 5 classes:
  #   4 1 3 4 1 3 -> three-way tie of 1, 3, 4: largest 4, smallest 1
  #   0 4 0 4 1 0 -> 0 outright (3 votes to 2)
  #   2 2 2 1 0 2 -> 2 outright
  #   0 1 2 3 4 4 -> 4 outright (the only label with 2 votes)
  #   3 1 3 1 2 0 -> tie of the non-adjacent 1 and 3: largest 3, smallest 1
  preds = jnp.array([[4, 0, 2, 0, 3],
                     [1, 4, 2, 1, 1],
                     [3, 0, 2, 2, 3],
                     [4, 4, 1, 3, 1],
                     [1, 1, 0, 4, 2],
                     [3, 0, 2, 4, 0]])
  largest, smallest = [4, 0, 2, 4, 3], [1, 0, 2, 4, 1]
  counts = np.stack([np.bincount(np.asarray(preds[:, i]), minlength=5) for i in range(5)])
  reference_largest = [int(np.flatnonzero(c == c.max()).max()) for c in counts]
  reference_smallest = [int(c.argmax()) for c in counts]
  assert (reference_largest, reference_smallest) == (largest, smallest)
  logits = jax.nn.one_hot(preds, 5) * 3.0 - 1.0
  for args in ((preds,), (preds, 5), (logits,)):
    np.testing.assert_array_equal(exemplars.modal_labels(*args), largest)
    np.testing.assert_array_equal(exemplars.modal_labels(*args, tie="largest"), largest)
    np.testing.assert_array_equal(exemplars.modal_labels(*args, tie="smallest"), smallest)
  np.testing.assert_array_equal(jax.jit(exemplars.modal_labels)(preds), largest)
  with pytest.raises(ValueError, match=r"tie='first' is unknown; allowed: 'largest', "
                                       r"'smallest'"):
    exemplars.modal_labels(preds, tie="first")


def test_modal_labels_from_logits_equal_from_labels():
  logits = jax.nn.one_hot(COMPRESSED, 3) * 2.0 - 1.0
  np.testing.assert_array_equal(exemplars.modal_labels(logits), [0, 1, 2, 1, 2])


def test_label_distribution_hand_made():
  dist = exemplars.label_distribution(COMPRESSED, 3)
  np.testing.assert_allclose(dist[2], [1 / 3, 1 / 3, 1 / 3], rtol=1e-6)
  np.testing.assert_allclose(dist[0], [2 / 3, 1 / 3, 0], rtol=1e-6)
  np.testing.assert_allclose(dist.sum(-1), np.ones(5), rtol=1e-6)


def test_cie_and_pie_hand_made():
  expected = [False, True, True, False, False]
  np.testing.assert_array_equal(exemplars.cie(DENSE, COMPRESSED), expected)
  np.testing.assert_array_equal(exemplars.pie(DENSE, COMPRESSED), expected)
  logits = jax.nn.one_hot(DENSE, 3), jax.nn.one_hot(COMPRESSED, 3)
  np.testing.assert_array_equal(jax.jit(exemplars.cie)(*logits), expected)


def test_taxicab_hand_computed():
  # Distributions (dense | compressed) and L1 distances:
  #   0: (1, 0, 0)       | (2/3, 1/3, 0)     -> 2/3
  #   1: (0, 1/2, 1/2)   | (0, 2/3, 1/3)     -> 1/3
  #   2: (3/4, 0, 1/4)   | (1/3, 1/3, 1/3)   -> 5/12 + 1/3 + 1/12 = 5/6
  #   3: (0, 1, 0)       | (0, 1, 0)         -> 0
  #   4: (1/4, 0, 3/4)   | (1/3, 0, 2/3)     -> 1/6
  result = exemplars.taxicab_cie(DENSE, COMPRESSED, k=2, num_classes=3)
  np.testing.assert_allclose(result.scores, [2 / 3, 1 / 3, 5 / 6, 0, 1 / 6], rtol=1e-6)
  np.testing.assert_array_equal(result.is_cie, [True, False, True, False, False])
  np.testing.assert_array_equal(result.ranking, [2, 0, 1, 4, 3])


def test_taxicab_under_jit_from_logits():
  fn = jax.jit(exemplars.taxicab_cie, static_argnums=(2,))
  result = fn(jax.nn.one_hot(DENSE, 3), jax.nn.one_hot(COMPRESSED, 3), 2)
  np.testing.assert_array_equal(result.is_cie, [True, False, True, False, False])


def test_taxicab_ties_go_to_lower_index():
  dense = jnp.array([[0, 0, 0, 0]] * 2)
  compressed = jnp.array([[0, 1, 1, 1]] * 2)  # Examples 1-3 all score 2.
  result = exemplars.taxicab_cie(dense, compressed, k=2, num_classes=2)
  np.testing.assert_array_equal(result.is_cie, [False, True, True, False])


def test_accuracy_split_hand_made():
  is_cie = exemplars.cie(DENSE, COMPRESSED)
  split = exemplars.accuracy_split(COMPRESSED, LABELS, is_cie)
  # CIE examples 1, 2 (labels 1, 2): members right on (1+0), (1+0), (0+1) of 2 -> mean 1/2;
  # the compressed modal labels 1, 2 are both right.
  np.testing.assert_allclose(split["cie_accuracy"], 1 / 2, rtol=1e-6)
  np.testing.assert_allclose(split["cie_modal_accuracy"], 1.0)
  # Non-CIE 0, 3, 4: member 0 3/3, member 1 2/3, member 2 2/3 -> 7/9; modal 3/3.
  np.testing.assert_allclose(split["non_cie_accuracy"], 7 / 9, rtol=1e-6)
  np.testing.assert_allclose(split["non_cie_modal_accuracy"], 1.0)
  assert int(split["cie_count"]) == 2 and int(split["non_cie_count"]) == 3
  empty = exemplars.accuracy_split(DENSE, LABELS, jnp.zeros(5, bool))
  assert np.isnan(empty["cie_accuracy"]) and np.isnan(empty["cie_modal_accuracy"])


def test_group_breakdown_hand_made():
  groups = jnp.array([0, 1, 1, 0, 0])
  out = exemplars.group_breakdown(DENSE, COMPRESSED, LABELS, groups)
  np.testing.assert_allclose(out["count"], [3, 2])
  np.testing.assert_allclose(out["cie_rate"], [0, 1])
  # Dense member accuracies per group: group 0 (examples 0,3,4): 2/3, 1, 1, 1 -> 11/12.
  np.testing.assert_allclose(out["dense_accuracy"][0], 11 / 12, rtol=1e-6)
  np.testing.assert_allclose(out["compressed_accuracy"][1], 1 / 2, rtol=1e-6)
  # Group 1: dense modal labels 2, 0 are wrong, compressed 1, 2 right: the drop is -1.
  np.testing.assert_allclose(out["modal_accuracy_drop"], [0, -1])
  # Intersections of two attributes: combination (1, 1) has no examples -> NaN.
  attrs = jnp.stack([groups, jnp.zeros(5, jnp.int32)], axis=1)
  two = exemplars.group_breakdown(DENSE, COMPRESSED, LABELS, attrs, num_groups=(2, 2))
  np.testing.assert_allclose(two["count"], [3, 0, 2, 0])
  assert np.isnan(two["cie_rate"][1])


def test_bad_input_raises_value_error():
  with pytest.raises(ValueError, match="num_classes="):
    exemplars.label_distribution(DENSE)
  with pytest.raises(ValueError, match="outside"):
    exemplars.label_distribution(DENSE, 2)
  with pytest.raises(ValueError, match="k=9"):
    exemplars.taxicab_cie(DENSE, COMPRESSED, k=9, num_classes=3)
  with pytest.raises(ValueError, match="examples"):
    exemplars.cie(DENSE, COMPRESSED[:, :4])
  with pytest.raises(ValueError, match="num_classes=4 but"):
    exemplars.modal_labels(jax.nn.one_hot(DENSE, 3), 4)


# Few distinct shapes keep recompilation (and the test) short.
_populations = hnp.arrays(np.int32, st.tuples(st.sampled_from([1, 4]), st.just(7)),
                          elements=st.integers(0, 3))


@hypothesis.settings(max_examples=20, deadline=None)
@hypothesis.given(_populations, _populations)
def test_invariants(dense, compressed):
  # Modal labels: tie="smallest" agrees with scipy.stats.mode, the default with pandas'
  # mode().max() (the largest label among the most frequent), both code paths.
  smallest = scipy.stats.mode(dense, axis=0, keepdims=False).mode
  np.testing.assert_array_equal(exemplars.modal_labels(dense, tie="smallest"), smallest)
  np.testing.assert_array_equal(exemplars.modal_labels(dense, 4, tie="smallest"), smallest)
  counts = [np.bincount(dense[:, i], minlength=4) for i in range(dense.shape[1])]
  largest = [np.flatnonzero(c == c.max()).max() for c in counts]
  np.testing.assert_array_equal(exemplars.modal_labels(dense), largest)
  np.testing.assert_array_equal(exemplars.modal_labels(dense, 4), largest)
  # CIE and taxicab scores are symmetric; scores lie in [0, 2]; identical -> no CIE.
  np.testing.assert_array_equal(exemplars.cie(dense, compressed),
                                exemplars.cie(compressed, dense))
  scores = exemplars.taxicab_scores(dense, compressed, 4)
  np.testing.assert_allclose(scores, exemplars.taxicab_scores(compressed, dense, 4), atol=1e-6)
  assert np.all((scores >= 0) & (scores <= 2 + 1e-6))
  assert not np.any(exemplars.cie(dense, dense))
  # A modal CIE moves the distribution: its taxicab score is positive.
  assert np.all(scores[np.asarray(exemplars.cie(dense, compressed))] > 0)
