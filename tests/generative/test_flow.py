"""The flow's log-determinant against jnp.linalg.slogdet of its Jacobian, invertibility
of the couplings' triangular structure, and bits/dim of known distributions."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy import stats as scipy_stats

from tradeoffs import generative


def _random_params(flow, dim, seed=0):
  """Initialised params with every leaf perturbed (the zero-initialised scale/shift
  outputs would make the flow the identity, and the test trivial)."""
  params = flow.init(jax.random.key(seed), jnp.zeros((1, dim)))["params"]
  leaves, tree = jax.tree.flatten(params)
  keys = jax.random.split(jax.random.key(seed + 1), len(leaves))
  return jax.tree.unflatten(tree, [l + 0.5 * jax.random.normal(k, l.shape)
                                   for l, k in zip(leaves, keys)])


def test_log_determinant_matches_slogdet_of_the_jacobian():
  dim = 6
  flow = generative.RealNVP(dim=dim, layers=3, hidden=8)
  params = _random_params(flow, dim)
  w = jax.random.normal(jax.random.key(3), (4, dim))
  _, logdet = flow.apply({"params": params}, w)
  jac = jax.vmap(jax.jacfwd(lambda v: flow.apply({"params": params}, v[None])[0][0]))(w)
  sign, ref = jnp.linalg.slogdet(jac)
  assert np.all(sign > 0)
  np.testing.assert_allclose(logdet, ref, rtol=1e-4, atol=1e-5)
  assert float(jnp.abs(logdet).max()) > 0.1  # the perturbed flow is not volume-preserving


def test_logit_transform_log_determinant_and_identity_flow_closed_form():
  y = jnp.array([[0.1, 0.5, 0.93]])
  w, logdet = generative.logit_transform(y)
  jac = jax.jacfwd(lambda v: generative.logit_transform(v[None])[0][0])(y[0])
  np.testing.assert_allclose(logdet[0], jnp.linalg.slogdet(jac)[1], rtol=1e-5)
  # A freshly initialised flow is the identity: log p is the standard normal's.
  flow = generative.RealNVP(dim=3, layers=2, hidden=4)
  params = flow.init(jax.random.key(0), w)["params"]
  np.testing.assert_allclose(flow.apply({"params": params}, w, method=flow.log_prob),
                             scipy_stats.norm.logpdf(np.asarray(w)).sum(-1), rtol=1e-5)


def test_bits_per_dim_of_known_distributions():
  # A uniform density on [0, 1]^D (log p = 0) costs exactly log2(levels) bits per dim.
  np.testing.assert_allclose(generative.dequantized_bits_per_dim(jnp.zeros(3), 64, 17),
                             math.log2(17), rtol=1e-6)
  # Through the identity flow, bin centres: bits/dim from the closed-form normal density
  # of the logit-transformed dequantized value.
  flow = generative.RealNVP(dim=4, layers=2, hidden=4)
  params = flow.init(jax.random.key(0), jnp.zeros((1, 4)))["params"]
  x = np.array([[0.0, 0.25, 0.5, 1.0]])
  levels = 5
  y = (x * (levels - 1) + 0.5) / levels
  s = 1e-3 + (1 - 2e-3) * y
  w = np.log(s / (1 - s))
  log_py = (scipy_stats.norm.logpdf(w) + np.log((1 - 2e-3) / (s * (1 - s)))).sum(-1)
  expected = (-log_py + 4 * math.log(levels)) / (4 * math.log(2))
  ours = generative.bits_per_dim(flow, params, x.reshape(1, 2, 2, 1), levels=levels)
  np.testing.assert_allclose(ours, expected, rtol=1e-5)
  # Noise from a key: still finite, and a sample average near the centre's value.
  noisy = generative.bits_per_dim(flow, params, np.repeat(x, 256, 0), levels=levels,
                                  key=jax.random.key(1))
  assert np.all(np.isfinite(noisy)) and abs(float(noisy.mean()) - float(ours[0])) < 1.0
  with pytest.raises(ValueError, match="levels=1"):
    generative.bits_per_dim(flow, params, x, levels=1)


def test_training_the_flow_lowers_bits_per_dim():
  import optax
  rng = np.random.default_rng(0)
  data = (rng.random((64, 4)) < np.array([0.9, 0.1, 0.9, 0.1])).astype(np.float32)
  flow = generative.RealNVP(dim=4, layers=2, hidden=16)
  params = flow.init(jax.random.key(0), jnp.zeros((1, 4)))["params"]
  tx = optax.adam(1e-2)
  opt = tx.init(params)
  loss = lambda p, k: generative.bits_per_dim(flow, p, data, levels=2, key=k).mean()  # noqa: E731
  before = float(loss(params, jax.random.key(9)))

  @jax.jit
  def step(p, o, k):
    g = jax.grad(loss)(p, k)
    u, o = tx.update(g, o, p)
    return optax.apply_updates(p, u), o

  for i in range(150):
    params, opt = step(params, opt, jax.random.key(i))
  assert float(loss(params, jax.random.key(9))) < before - 0.2
