"""Combining members on hand-made logits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoffs import ensembles

# Member 0: p = [1/4, 3/4]; member 1: p = [1/2, 1/2]. One example, two classes.
LOGITS = jnp.log(jnp.array([[[1.0, 3.0]], [[1.0, 1.0]]]))


def test_mean_logits():
  np.testing.assert_allclose(ensembles.combine(LOGITS), [[0.0, np.log(3) / 2]], atol=1e-6)


def test_mean_probs():
  np.testing.assert_allclose(jnp.exp(ensembles.combine(LOGITS, "mean_probs")),
                             [[0.375, 0.625]], rtol=1e-6)


def test_geometric_mean_probs():
  g = np.sqrt([0.25 * 0.5, 0.75 * 0.5])
  np.testing.assert_allclose(jnp.exp(ensembles.combine(LOGITS, "geometric_mean_probs")),
                             [g / g.sum()], rtol=1e-6)


def test_max_logits_and_max_probs():
  np.testing.assert_allclose(ensembles.combine(LOGITS, "max_logits"), [[0.0, np.log(3)]],
                             atol=1e-6)
  np.testing.assert_allclose(jnp.exp(ensembles.combine(LOGITS, "max_probs")), [[0.5, 0.75]],
                             rtol=1e-6)


def test_modes_can_disagree_on_the_prediction():
  # Member 0 is confidently class 0; members 1 and 2 mildly prefer class 1.
  logits = jnp.array([[[4.0, -4.0]], [[0.0, 1.0]], [[0.0, 1.0]]])
  pred = {m: int(jnp.argmax(ensembles.combine(logits, m), -1)[0]) for m in ensembles.COMBINERS}
  assert pred == {"mean_logits": 0, "mean_probs": 0, "geometric_mean_probs": 0,
                  "max_logits": 0, "max_probs": 0}
  logits = jnp.array([[[2.0, 0.0]], [[0.0, 1.5]], [[0.0, 1.5]]])
  pred = {m: int(jnp.argmax(ensembles.combine(logits, m), -1)[0]) for m in ensembles.COMBINERS}
  # Mean of logits: [2/3, 1] -> 1; max of logits: [2, 1.5] -> 0.
  assert pred["mean_logits"] == 1 and pred["max_logits"] == 0


@pytest.mark.parametrize("mode", sorted(ensembles.COMBINERS))
def test_every_mode_shape_jit_and_single_member(mode):
  logits = jax.random.normal(jax.random.key(0), (3, 4, 5))
  out = jax.jit(ensembles.combine, static_argnames="mode")(logits, mode=mode)
  assert out.shape == (4, 5)
  # One member: every mode ranks classes like that member.
  single = ensembles.combine(logits[:1], mode)
  np.testing.assert_array_equal(jnp.argmax(single, -1), jnp.argmax(logits[0], -1))


def test_bad_mode_and_shape():
  with pytest.raises(ValueError, match="'median'.*valid: \\['geometric_mean_probs'"):
    ensembles.combine(LOGITS, "median")
  with pytest.raises(ValueError, match="\\[members, batch, classes\\]"):
    ensembles.combine(LOGITS[0])
