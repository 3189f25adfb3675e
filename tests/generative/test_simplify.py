"""The simplification objective: hand-computed value, gradients through the prior, and
λ < 0 refused."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoffs import generative


def test_objective_is_cross_entropy_plus_lambda_bits():
  logits = jnp.array([[2.0, 0.0], [0.0, 1.0]])
  labels = jnp.array([0, 0])
  bits = jnp.array([1.5, 2.5])
  ce = np.mean([-math.log(math.exp(2) / (math.exp(2) + 1)), -math.log(1 / (1 + math.e))])
  total, terms = generative.simplify.objective(logits, labels, bits, 0.3)
  np.testing.assert_allclose(total, ce + 0.3 * 2.0, rtol=1e-6)
  np.testing.assert_allclose(terms["cross_entropy"], ce, rtol=1e-6)
  np.testing.assert_allclose(terms["bits_per_dim"], 2.0)
  np.testing.assert_allclose(generative.simplify.objective(logits, labels, bits, 0)[0], ce,
                             rtol=1e-6)


@pytest.mark.parametrize("bad", [-0.1, float("nan"), float("inf"), True, "1"])
def test_negative_or_non_finite_lambda_is_refused(bad):
  with pytest.raises(ValueError, match="λ must be a finite number >= 0"):
    generative.simplify.check_lambda(bad)


def test_bits_pull_inputs_towards_what_the_prior_finds_simple():
  # Under the identity flow, bin-centre bits/dim is smallest at grey 0.5 (logit 0):
  # its gradient points each pixel towards 0.5.
  flow = generative.RealNVP(dim=4, layers=2, hidden=4)
  params = flow.init(jax.random.key(0), jnp.zeros((1, 4)))["params"]
  x = jnp.array([[0.1, 0.3, 0.7, 0.9]])
  grad = jax.grad(lambda v: generative.bits_per_dim(flow, params, v, levels=17).sum())(x)
  np.testing.assert_array_equal(np.sign(grad[0]), [-1, -1, 1, 1])
