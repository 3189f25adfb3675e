"""Co-training losses against numpy, their schedule, and multi-view keys."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

from tradeoffs import ensembles


def np_softmax(z):
  z = z - z.max(-1, keepdims=True)
  e = np.exp(z)
  return e / e.sum(-1, keepdims=True)


def np_entropy(p):
  return -(p * np.log(p)).sum(-1)


def np_js(logits):
  p = np_softmax(np.asarray(logits, np.float64))
  return float(np.mean(np_entropy(p.mean(0)) - np_entropy(p).mean(0)))


def np_pairwise_kl(logits):
  p = np_softmax(np.asarray(logits, np.float64))
  s = p.shape[0]
  total = 0.0
  for i in range(s):
    for j in range(s):
      if i != j:
        total += np.mean((p[j] * (np.log(p[j]) - np.log(p[i]))).sum(-1))
  return total / (s - 1)


def random_logits(seed, shape=(3, 5, 4), scale=2.0):
  return scale * np.random.default_rng(seed).normal(size=shape).astype(np.float32)


@pytest.mark.parametrize("seed", [0, 1])
def test_js_divergence_matches_numpy(seed):
  logits = random_logits(seed)
  np.testing.assert_allclose(ensembles.js_divergence(jnp.asarray(logits)), np_js(logits),
                             rtol=1e-5, atol=1e-6)


def test_js_two_point_masses_is_log2():
  # Two confident members disagreeing: mixture entropy log 2, member entropies ~0.
  logits = jnp.array([[[30.0, 0.0]], [[0.0, 30.0]]])
  np.testing.assert_allclose(ensembles.js_divergence(logits), np.log(2), rtol=1e-5)


def test_js_zero_for_identical_members_and_single_member():
  member = random_logits(3, (1, 6, 5))
  same = jnp.asarray(np.repeat(member, 4, axis=0))
  assert abs(float(ensembles.js_divergence(same))) < 1e-6
  assert abs(float(ensembles.js_divergence(jnp.asarray(member)))) < 1e-6


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.float32, st.tuples(st.integers(1, 4), st.integers(1, 3), st.integers(2, 5)),
                  elements=st.floats(-50, 50, width=32)))
def test_js_non_negative_and_bounded(logits):
  value = float(ensembles.js_divergence(jnp.asarray(logits)))
  # 0 <= JS <= log S (the mixture's entropy exceeds the mean entropy by at most log S).
  assert -1e-5 <= value <= np.log(logits.shape[0]) + 1e-5


@pytest.mark.parametrize("seed,s", [(0, 2), (1, 3), (2, 4)])
def test_pairwise_kl_matches_numpy(seed, s):
  logits = random_logits(seed, (s, 5, 4))
  np.testing.assert_allclose(ensembles.pairwise_kl(jnp.asarray(logits)), np_pairwise_kl(logits),
                             rtol=1e-5, atol=1e-6)
  assert float(ensembles.pairwise_kl(jnp.asarray(logits[:1]))) == 0.0


def test_pairwise_kl_gradient_stops_through_targets():
  # With the targets fixed, d/dz_i = sum_{j != i} (p_i - p_j) / (B (S - 1)): a softmax
  # cross-entropy gradient towards each other member, no term through p_j.
  logits = jnp.asarray(random_logits(4, (3, 2, 5)))
  grad = jax.grad(ensembles.pairwise_kl)(logits)
  p = np_softmax(np.asarray(logits, np.float64))
  s, b = p.shape[:2]
  expected = np.stack([sum(p[i] - p[j] for j in range(s) if j != i) for i in range(s)])
  np.testing.assert_allclose(grad, expected / (b * (s - 1)), rtol=1e-4, atol=1e-6)


def test_js_gradient_is_finite_for_confident_members():
  logits = jnp.array([[[80.0, -80.0, 0.0]], [[-80.0, 80.0, 0.0]]])
  grad = jax.jit(jax.grad(ensembles.js_divergence))(logits)
  assert np.all(np.isfinite(grad))


def test_registry_and_objective():
  assert set(ensembles.COTRAINING_LOSSES) >= {"js_divergence", "pairwise_kl"}
  with pytest.raises(ValueError, match="'mse'.*valid: \\['js_divergence', 'pairwise_kl'"):
    ensembles.get_cotraining_loss("mse")
  logits = jnp.asarray(random_logits(5, (2, 3, 4)))
  labels = jnp.array([0, 3, 1])
  total, parts = ensembles.cotraining_objective(logits, labels, 0.5)
  p = np_softmax(np.asarray(logits, np.float64))
  ce = -np.log(p[:, np.arange(3), np.asarray(labels)]).mean(-1)
  np.testing.assert_allclose(parts["cross_entropy"], ce, rtol=1e-5)
  np.testing.assert_allclose(total, ce.sum() + 0.5 * np_js(logits), rtol=1e-5)
  with pytest.raises(ValueError, match="shape \\[members, batch, classes\\]"):
    ensembles.js_divergence(jnp.zeros((3, 4)))


def test_cotraining_weight_warmup():
  w = lambda e: float(ensembles.cotraining_weight(e, weight=0.5, warmup_epochs=40))
  assert w(0) == pytest.approx(0.005)   # the floor
  assert w(0.2) == pytest.approx(0.005)
  assert w(1) == pytest.approx(0.0125)
  assert w(20) == pytest.approx(0.25)
  assert w(39) == pytest.approx(0.5 * 39 / 40)
  assert w(40) == 0.5 and w(300) == 0.5
  assert float(ensembles.cotraining_weight(0, warmup_epochs=0)) == 0.5
  # Traced inside jit.
  np.testing.assert_allclose(jax.jit(ensembles.cotraining_weight)(jnp.arange(3.0) * 20),
                             [0.005, 0.25, 0.5])


def test_cotraining_schedule_per_epoch_and_per_step():
  per_epoch = ensembles.cotraining_schedule(10, warmup_epochs=4)
  smooth = ensembles.cotraining_schedule(10, warmup_epochs=4, per_epoch=False)
  assert float(per_epoch(25)) == pytest.approx(0.5 * 2 / 4)
  assert float(smooth(25)) == pytest.approx(0.5 * 2.5 / 4)
  assert float(per_epoch(40)) == 0.5
  with pytest.raises(ValueError, match="steps_per_epoch"):
    ensembles.cotraining_schedule(0)


def test_member_keys_independent_or_shared():
  key = jax.random.key(0)
  keys = ensembles.member_keys(key, 4)
  draws = jax.vmap(lambda k: jax.random.normal(k, (8,)))(keys)
  assert len({tuple(np.asarray(d).round(6)) for d in draws}) == 4
  shared = ensembles.member_keys(key, 4, shared_view=True)
  shared_draws = jax.vmap(lambda k: jax.random.normal(k, (8,)))(shared)
  np.testing.assert_array_equal(shared_draws, np.broadcast_to(jax.random.normal(key, (8,)),
                                                              (4, 8)))
  # Raw uint32 keys work too.
  assert ensembles.member_keys(jax.random.PRNGKey(0), 3).shape == (3, 2)
  with pytest.raises(ValueError, match="num_members must be >= 1"):
    ensembles.member_keys(key, 0)


def test_multi_view_stacks_member_views():
  images = jnp.zeros((5, 8, 8, 1))
  flip_noise = lambda k, x: x + jax.random.uniform(k, x.shape)
  views = ensembles.multi_view(flip_noise, jax.random.key(1), images, 3)
  assert views.shape == (3, 5, 8, 8, 1)
  assert not np.allclose(views[0], views[1])
  same = ensembles.multi_view(flip_noise, jax.random.key(1), images, 3, shared_view=True)
  np.testing.assert_array_equal(same[0], same[2])
