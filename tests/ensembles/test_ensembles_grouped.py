"""R ensembles of S members as one population (`tradeoffs.ensembles.grouped`): the
co-training coupling acts within each ensemble only, the step schedule, combined logits and
member diversity — hand-computed on tiny arrays."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoffs import ensembles


def _softmax(x):
  e = np.exp(x - x.max(-1, keepdims=True))
  return e / e.sum(-1, keepdims=True)


def _js(logits):
  """H(mean p) - mean H(p), averaged over the batch; logits [S, B, C]."""
  p = _softmax(np.asarray(logits, np.float64))
  entropy = lambda q: -(q * np.log(q)).sum(-1)  # noqa: E731
  return float(np.mean(entropy(p.mean(0)) - entropy(p).mean(0)))


def test_js_of_two_members_by_hand():
  # Two members, one example, two classes: [0, 0] -> p = (1/2, 1/2) and [log 3, 0] ->
  # p = (3/4, 1/4); their mean is (5/8, 3/8).
  logits = np.array([[[0.0, 0.0]], [[np.log(3.0), 0.0]]], np.float32)
  h = lambda *q: -sum(v * np.log(v) for v in q)  # noqa: E731
  expected = h(5 / 8, 3 / 8) - (h(1 / 2, 1 / 2) + h(3 / 4, 1 / 4)) / 2
  coupling = ensembles.make_coupling_fn(2)
  np.testing.assert_allclose(coupling(jnp.asarray(logits), None, 0), expected, rtol=1e-5)
  np.testing.assert_allclose(expected, _js(logits), rtol=1e-6)


def test_coupling_sums_per_ensemble_and_stays_within_each():
  rng = np.random.default_rng(0)
  r, s, b, c = 3, 2, 5, 4
  logits = rng.normal(size=(r * s, b, c)).astype(np.float32)
  logits[2:4] = logits[2]  # Ensemble 1's members agree: it contributes nothing.
  coupling = ensembles.make_coupling_fn(s, weight_schedule=lambda step: 0.5)
  expected = sum(_js(logits[i * s:(i + 1) * s]) for i in range(r))
  np.testing.assert_allclose(coupling(jnp.asarray(logits), None, 0), 0.5 * expected,
                             rtol=1e-5)
  grad = jax.grad(lambda x: coupling(x, None, 0))(jnp.asarray(logits))
  np.testing.assert_allclose(grad[2:4], 0.0, atol=1e-7)
  moved = logits.copy()
  moved[4:] += rng.normal(size=moved[4:].shape).astype(np.float32)
  grad_moved = jax.grad(lambda x: coupling(x, None, 0))(jnp.asarray(moved))
  np.testing.assert_allclose(grad_moved[:2], grad[:2], rtol=1e-6)  # Ensemble 0 unmoved.
  assert not np.allclose(grad_moved[4:], grad[4:])


def test_coupling_rejects_a_population_that_is_not_r_times_s():
  coupling = ensembles.make_coupling_fn(4)
  with pytest.raises(ValueError, match="6 members are not a multiple of S=4"):
    coupling(jnp.zeros((6, 2, 3)), None, 0)
  with pytest.raises(ValueError, match="num_members must be >= 1"):
    ensembles.make_coupling_fn(0)


def test_cotraining_coupling_ramps_per_step_with_a_floor():
  logits = np.array([[[0.0, 0.0]], [[np.log(3.0), 0.0]]], np.float32)
  js = _js(logits)
  coupling = ensembles.cotraining_coupling(2, weight=0.5, warmup_steps=10, floor=0.005)
  x = jnp.asarray(logits)
  # lambda_t = max(0.5 * t / 10, 0.005) for t < 10, then 0.5.
  for step, weight in ((0, 0.005), (4, 0.2), (9, 0.45), (10, 0.5), (1000, 0.5)):
    np.testing.assert_allclose(coupling(x, None, step), weight * js, rtol=1e-5,
                               err_msg=str(step))
  no_warmup = ensembles.cotraining_coupling(2, weight=0.5, warmup_steps=0)
  np.testing.assert_allclose(no_warmup(x, None, 0), 0.5 * js, rtol=1e-5)
  with pytest.raises(ValueError, match="ensemble_size"):
    ensembles.cotraining_coupling(1.5)


def test_ensemble_logits_by_hand():
  # Two ensembles of two members, 3 examples, 2 classes.
  logits = np.array([
      [[2, 0], [0, 1], [1, 0]],
      [[0, 1], [0, 3], [3, 0]],
      [[1, 0], [1, 0], [0, 1]],
      [[3, 0], [1, 2], [0, 1]],
  ], np.float32)
  combined = ensembles.ensemble_logits(logits, 2, "mean_logits")
  assert combined.shape == (2, 3, 2)
  np.testing.assert_allclose(combined, [[[1, 0.5], [0, 2], [2, 0]],
                                        [[2, 0], [1, 1], [0, 1]]])
  np.testing.assert_allclose(ensembles.ensemble_logits(logits, 2, "max_logits")[0],
                             [[2, 1], [0, 3], [3, 0]])
  # S = 1: every member is its own ensemble.
  np.testing.assert_allclose(ensembles.ensemble_logits(logits, 1), logits)
  with pytest.raises(ValueError, match="not a multiple of S=3"):
    ensembles.ensemble_logits(logits, 3)


def test_member_diversity_is_the_mean_js_over_ensembles():
  a = np.array([[[0.0, 0.0]], [[np.log(3.0), 0.0]]], np.float32)  # JS > 0
  b = np.array([[[1.0, 2.0]], [[1.0, 2.0]]], np.float32)  # identical members: JS = 0
  logits = np.concatenate([a, b])
  np.testing.assert_allclose(ensembles.member_diversity(logits, 2, "js_divergence"),
                             _js(a) / 2, rtol=1e-5)
  assert ensembles.member_diversity(logits, 1, "js_divergence") is None
