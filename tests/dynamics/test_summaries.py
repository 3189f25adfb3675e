"""Learning-speed summaries on hand-computed cases; average precision against sklearn."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from tradeoffs import dynamics

# Four examples over five epochs (rows: epochs).
CORRECT = np.array([[1, 0, 1, 0],
                    [0, 0, 1, 1],
                    [1, 0, 1, 0],
                    [1, 0, 0, 1],
                    [1, 0, 1, 0]], bool)


def test_forgetting_events_by_hand():
  # Example 0: 1→0 once; 1: never correct; 2: 1→0 at epoch 3 once; 3: 1→0 twice.
  np.testing.assert_array_equal(dynamics.forgetting_events(CORRECT), [1, 0, 1, 2])
  np.testing.assert_array_equal(dynamics.never_learned(CORRECT), [False, True, False, False])
  # Never learned -> E = 5, more than anyone can be forgotten in 5 epochs (at most 2).
  np.testing.assert_array_equal(dynamics.forgetting_score(CORRECT), [1, 5, 1, 2])


def test_first_learned_by_hand():
  # Example 0 is correct from epoch 2 on; 1 never; 2 from epoch 4 (wrong at 3); 3 ends wrong.
  np.testing.assert_array_equal(dynamics.first_learned(CORRECT), [2, 5, 4, 5])
  np.testing.assert_array_equal(dynamics.first_learned(np.ones((3, 2), bool)), [0, 0])


def test_area_under_margin_by_hand():
  margin = np.array([[2.0, -1.0], [0.0, -3.0], [1.0, 1.0]])
  np.testing.assert_allclose(dynamics.area_under_margin(margin), [1.0, -1.0])
  np.testing.assert_allclose(dynamics.area_under_margin(margin, start=1), [0.5, -1.0])
  with pytest.raises(ValueError, match="start=3"):
    dynamics.area_under_margin(margin, start=3)


def test_example_measures_against_numpy():
  logits = np.array([[2.0, 0.0, -1.0], [0.5, 0.5, 3.0], [1.0, 4.0, 2.0]], np.float32)
  labels = np.array([0, 1, 1])
  m = {k: np.asarray(v) for k, v in dynamics.example_measures(jnp.asarray(logits),
                                                               jnp.asarray(labels)).items()}
  p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
  np.testing.assert_allclose(m["p_true"], p[np.arange(3), labels], rtol=1e-6)
  np.testing.assert_allclose(m["loss"], -np.log(p[np.arange(3), labels]), rtol=1e-5)
  np.testing.assert_allclose(m["margin"], [2.0, -2.5, 2.0])
  np.testing.assert_array_equal(m["correct"], [True, False, True])


def test_average_precision_by_hand_and_against_sklearn():
  # Ranked: T F T F -> precision at the hits 1 and 2/3 -> AP = (1 + 2/3) / 2.
  assert dynamics.average_precision([4, 3, 2, 1], [1, 0, 1, 0]) == pytest.approx(5 / 6)
  rng = np.random.default_rng(0)
  for trial in range(20):
    n = int(rng.integers(5, 300))
    targets = rng.random(n) < rng.uniform(0.05, 0.5)
    targets[0] = True
    # Rounded scores make ties, which sklearn counts as one threshold.
    scores = np.round(rng.normal(size=n) + targets * rng.uniform(0, 2), trial % 3)
    assert dynamics.average_precision(scores, targets) == pytest.approx(
        average_precision_score(targets, scores), abs=1e-12)
  assert np.isnan(dynamics.average_precision([1, 2], [0, 0]))
