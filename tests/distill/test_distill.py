"""KD loss against numpy; class weights and EG updates by hand."""

from __future__ import annotations

import numpy as np
import pytest

from tradeoffs import distill


def _np_softmax(z):
  z = z - z.max(-1, keepdims=True)
  return np.exp(z) / np.exp(z).sum(-1, keepdims=True)


@pytest.mark.parametrize("temperature", [0.5, 1.0, 4.0])
def test_kd_loss_matches_numpy(temperature):
  rng = np.random.default_rng(0)
  s, t = rng.normal(size=(5, 7)) * 3, rng.normal(size=(5, 7)) * 3
  y = rng.integers(0, 7, 5)
  pt, ps = _np_softmax(t / temperature), _np_softmax(s / temperature)
  kl = np.sum(pt * (np.log(pt) - np.log(ps)), -1)
  ce = -np.log(_np_softmax(s)[np.arange(5), y])
  for w in (1.0, 0.3):
    expected = ce + w * temperature ** 2 * kl
    np.testing.assert_allclose(np.asarray(distill.kd_loss(s, t, y, temperature, w)),
                               expected, rtol=1e-5, atol=1e-5)
  np.testing.assert_allclose(np.asarray(distill.distillation_kl(t, s, temperature)),
                             temperature ** 2 * kl, rtol=1e-5, atol=1e-5)
  assert np.allclose(np.asarray(distill.distillation_kl(t, t, temperature)), 0, atol=1e-6)


def test_kd_gradient_does_not_reach_the_teacher():
  import jax
  g = jax.grad(lambda t: distill.distillation_kl(t, np.zeros(3), 2.0).sum())(np.ones(3) * 1.)
  np.testing.assert_array_equal(np.asarray(g), 0.0)


def test_objectives_and_example_weights_by_hand():
  priors = distill.class_priors([0, 0, 0, 1], 2)
  np.testing.assert_allclose(priors, [0.75, 0.25])
  np.testing.assert_allclose(distill.target_weights("standard", priors), priors)
  np.testing.assert_allclose(distill.target_weights("balanced", priors), [0.5, 0.5])
  robust = distill.target_weights("robust", priors, [0.0, 1.0], alpha=0.5)
  np.testing.assert_allclose(robust, [0.375, 0.625])
  np.testing.assert_allclose(distill.example_weights(robust, priors), [0.5, 2.5])
  # Weighted mean over the training set = the target mixture of per-class risks.
  risk = np.array([0.2, 0.8])
  w = distill.example_weights(robust, priors)[[0, 0, 0, 1]]
  per_example = risk[[0, 0, 0, 1]]
  np.testing.assert_allclose((w * per_example).sum() / w.sum(), robust @ risk)


def test_eg_stays_on_the_simplex_and_moves_toward_the_worst_class():
  lam = distill.uniform(4)
  risks = np.array([0.1, 0.6, 0.2, 0.0])
  history = [lam]
  for _ in range(20):
    lam = distill.eg_update(lam, risks, step=1.0)
    history.append(lam)
    assert np.all(lam >= 0) and np.isclose(lam.sum(), 1.0)
  weights_on_worst = [h[1] for h in history]
  assert all(b > a for a, b in zip(weights_on_worst, weights_on_worst[1:]))
  assert lam.argmax() == 1 and lam[1] > 0.99
  # One step by hand: λ ∝ λ·exp(η r).
  one = distill.eg_update([0.5, 0.5], [1.0, 0.0], 2.0)
  np.testing.assert_allclose(one, [np.e ** 2 / (np.e ** 2 + 1), 1 / (np.e ** 2 + 1)])
  # A huge step does not overflow.
  assert np.isclose(distill.eg_update([0.5, 0.5], [1000.0, 0.0], 10.0).sum(), 1.0)


def test_per_class_error_by_hand():
  logits = np.eye(3)[[0, 1, 1, 2]]
  np.testing.assert_allclose(distill.per_class_error(logits, [0, 1, 2, 2], 3),
                             [0.0, 0.0, 0.5])


@pytest.mark.parametrize("bad", [-0.1, 1.5, float("nan")])
def test_alpha_outside_unit_interval_is_refused(bad):
  with pytest.raises(ValueError, match="alpha"):
    distill.check_alpha(bad)


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf")])
def test_non_positive_temperature_is_refused(bad):
  with pytest.raises(ValueError, match="temperature"):
    distill.check_temperature(bad)


def test_missing_class_and_unknown_objective_are_refused():
  with pytest.raises(ValueError, match="at least one training example"):
    distill.class_priors([0, 0, 2], 3)
  with pytest.raises(ValueError, match="objective"):
    distill.target_weights("worst", [0.5, 0.5])
