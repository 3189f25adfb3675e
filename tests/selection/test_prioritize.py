"""Selective Backprop's selection probability against a numpy transcription of the
reference code (angelajiang/SelectiveBackprop: `lib/hist.py` UnboundedHistogram and
`lib/calculators.py` BatchedRelativeProbabilityCalculator), loss-proportional and uniform
sampling."""

import collections

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoffs import selection


def _reference_probabilities(batches, history_size, beta, floor=0.0):
  """The reference's rule, transcribed: every loss of the batch joins a deque of maxlen
  `history_size` first; then P = max(floor, (100·#{h < ℓ}/len(history) / 100) ** β)."""
  history = collections.deque(maxlen=history_size)
  out = []
  for losses in batches:
    for loss in losses:
      history.append(float(loss))
    probs = []
    for loss in losses:
      percentile = sum(1 for h in history if h < float(loss)) * 100.0 / len(history)
      probs.append(max(floor, (percentile / 100.0) ** beta))
    out.append(np.array(probs))
  return out


def _ours(batches, history_size, beta, floor=0.0):
  history = selection.empty_history(history_size)
  out = []
  for losses in batches:
    history = selection.push(history, jnp.asarray(losses, jnp.float32))
    pct = selection.percentile_of_score(history, jnp.asarray(losses, jnp.float32))
    out.append(np.asarray(selection.selective_backprop_probability(pct, beta, floor)))
  return out


@pytest.mark.parametrize("history_size,batch,beta,floor", [
    (1024, 64, 1.0, 0.0),   # the history stays shorter than 1,024 for the first batches
    (8, 5, 2.0, 0.0),       # wraps around the ring several times
    (4, 10, 0.5, 0.1),      # a batch longer than the history: only its last 4 are held
    (16, 16, 3.0, 0.05)])
def test_selection_probability_matches_the_reference_transcription(history_size, batch,
                                                                   beta, floor):
  rng = np.random.default_rng(0)
  # Integer-valued losses: many ties, which the reference does not count as lower.
  batches = [rng.integers(0, 6, batch).astype(np.float32) for _ in range(25)]
  batches += [rng.exponential(size=batch).astype(np.float32) for _ in range(5)]
  for ref, ours in zip(_reference_probabilities(batches, history_size, beta, floor),
                       _ours(batches, history_size, beta, floor), strict=True):
    np.testing.assert_allclose(ours, ref, rtol=1e-6, atol=1e-7)


def test_hand_computed_percentiles_and_ties():
  history = selection.push(selection.empty_history(4), jnp.array([1., 2., 2., 3.]))
  pct = selection.percentile_of_score(history, jnp.array([2., 3., 1., 9.]))
  np.testing.assert_allclose(pct, [25., 75., 0., 100.])  # ties are not below
  history = selection.push(history, jnp.array([5.]))       # 1 falls out: [2, 2, 3, 5]
  np.testing.assert_allclose(selection.percentile_of_score(history, jnp.array([3.])), [50.])
  np.testing.assert_allclose(selection.selective_backprop_probability(
      jnp.array([50., 0.]), 2.0, floor=0.1), [0.25, 0.1])


def test_selective_backprop_keeps_draws_below_probability_first_k_in_batch_order():
  key = jax.random.key(3)
  losses = jnp.arange(12, dtype=jnp.float32)
  history, idx, weights, selected = selection.selective_backprop(
      key, selection.empty_history(1024), losses, 1.0, k=8)
  probability = np.arange(12) / 12.0  # loss i has i of the 12 held losses below it
  expected = np.asarray(jax.random.uniform(key, (12,))) < probability
  np.testing.assert_array_equal(selected, expected)
  chosen = np.flatnonzero(expected)
  n = min(len(chosen), 8)
  np.testing.assert_array_equal(np.asarray(idx)[:n], chosen[:n])
  np.testing.assert_array_equal(weights, [1.0] * n + [0.0] * (8 - n))
  assert not expected[np.asarray(idx)[n:]].any()  # padding rows are unselected ones
  assert int(history.count) == 12


def test_loss_proportional_frequencies_follow_the_losses():
  losses = jnp.array([0.0, 1.0, 2.0, 5.0])
  draws = np.concatenate([np.asarray(selection.loss_proportional(jax.random.key(s), losses,
                                                                 64)[0])
                          for s in range(200)])
  freq = np.bincount(draws, minlength=4) / draws.size
  np.testing.assert_allclose(freq, [0.0, 0.125, 0.25, 0.625], atol=0.01)
  idx, w = selection.loss_proportional(jax.random.key(0), jnp.zeros(5), 3)
  assert np.asarray(idx).max() < 5 and np.all(np.asarray(w) == 1)


def test_uniform_takes_k_distinct_examples():
  idx, w = selection.uniform(jax.random.key(1), 10, 6)
  assert len(set(np.asarray(idx).tolist())) == 6 and np.all(np.asarray(w) == 1)


@pytest.mark.parametrize("beta", [0, -1.0, float("nan"), float("inf"), True, "1"])
def test_beta_must_be_positive(beta):
  with pytest.raises(ValueError, match="β must be a finite number > 0"):
    selection.check_beta(beta)
