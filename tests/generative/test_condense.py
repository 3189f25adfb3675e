"""Dataset condensation: the starting draw, the unrolled fitter against a numpy reference
on a linear classifier, and the condenser's λ·bits pressure and [0, 1] projection."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoffs import generative
from tradeoffs.generative import condense


def test_initial_indices_draw_distinct_examples_of_every_class():
  labels = np.array([0, 1, 2, 0, 1, 2, 0, 1, 2, 0])
  index = condense.initial_indices(labels, 3, seed=0)
  np.testing.assert_array_equal(labels[index], [0, 0, 0, 1, 1, 1, 2, 2, 2])
  assert len(set(index.tolist())) == 9
  np.testing.assert_array_equal(index, condense.initial_indices(labels, 3, seed=0))
  with pytest.raises(ValueError, match="class 1 has only 3"):
    condense.initial_indices(labels, 4, seed=0)
  with pytest.raises(ValueError, match="per_class=0"):
    condense.initial_indices(labels, 0, seed=0)


def _linear():
  init = lambda key: {"w": jnp.zeros((2, 2))}  # noqa: E731
  classify = lambda p, x: x.reshape(x.shape[0], -1) @ p["w"]  # noqa: E731
  return init, classify


def test_fitter_is_full_batch_gradient_descent():
  init, classify = _linear()
  x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
  y = np.array([0, 1, 1])
  fit = condense.make_fitter(init, classify, steps=3, learning_rate=0.5)
  w = np.zeros((2, 2))
  for _ in range(3):  # d mean CE / dW = X^T (softmax(XW) - onehot(y)) / n
    z = x @ w
    p = np.exp(z - z.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    w -= 0.5 * x.T @ (p - np.eye(2)[y]) / len(y)
  got = fit(jnp.asarray(x, jnp.float32), jnp.asarray(y), jax.random.key(0))["w"]
  np.testing.assert_allclose(got, w, rtol=1e-5, atol=1e-6)


def test_a_larger_lambda_condenses_to_fewer_bits_inside_the_unit_cube():
  rng = np.random.default_rng(0)
  images = rng.random((64, 2, 1, 1)).astype(np.float32)
  labels = (images[:, 0, 0, 0] > images[:, 1, 0, 0]).astype(np.int32)
  flow = generative.RealNVP(dim=2, layers=2, hidden=4)  # the identity: simplest at 0.5
  prior = flow.init(jax.random.key(0), jnp.zeros((1, 2)))["params"]
  bits = lambda x, key: generative.bits_per_dim(flow, prior, x, levels=17, key=key)  # noqa: E731
  init, classify = _linear()
  fit = condense.make_fitter(init, classify, steps=5, learning_rate=1.0)
  run = condense.make_condenser(classify, bits, fit, steps=40, learning_rate=0.05,
                                batch_size=32)
  index = condense.initial_indices(labels, 2, seed=0)
  start = np.stack([images[index]] * 2)  # 2 members
  keys = jax.random.split(jax.random.key(1), 2)
  out = {}
  for lam in (0.0, 5.0):
    sets = np.asarray(run(lam, start, labels[index], images, labels, keys))
    assert sets.shape == start.shape and sets.min() >= 0 and sets.max() <= 1
    out[lam] = float(jax.vmap(lambda s: bits(s, None).mean())(sets).mean())
  assert out[5.0] < out[0.0] - 0.05
  with pytest.raises(ValueError, match="λ must be"):
    run(-1.0, start, labels[index], images, labels, keys)
