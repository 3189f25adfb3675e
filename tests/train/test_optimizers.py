import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tradeoffs import train


def test_cosine_and_warmup_schedules_closed_form():
  cos = train.make_schedule({"schedule": "cosine", "learning_rate": 0.1}, 100)
  np.testing.assert_allclose(cos(0), 0.1)
  np.testing.assert_allclose(cos(50), 0.05, rtol=1e-6)
  np.testing.assert_allclose(cos(100), 0.0, atol=1e-9)
  warm = train.make_schedule({"schedule": "warmup_cosine", "learning_rate": 0.2,
                              "warmup_steps": 10}, 110)
  np.testing.assert_allclose(warm(5), 0.1, rtol=1e-6)
  np.testing.assert_allclose(warm(60), 0.1, rtol=1e-6)  # halfway through the cosine part


def test_piecewise_fractions():
  sched = train.make_schedule({"schedule": "piecewise", "learning_rate": 1.0,
                               "boundaries": (0.5, 0.75), "decay_factor": 0.1}, 100)
  np.testing.assert_allclose([sched(49), sched(51), sched(80)], [1.0, 0.1, 0.01], rtol=1e-6)


def test_weight_decay_skips_biases_by_default():
  params = {"kernel": jnp.ones((2, 2)), "bias": jnp.ones((2,))}
  zero_grads = {"kernel": jnp.zeros((2, 2)), "bias": jnp.zeros((2,))}
  tx = train.make_optimizer({"name": "sgd", "learning_rate": 1.0, "momentum": 0.0,
                             "weight_decay": 0.5}, 10)
  updates, _ = tx.update(zero_grads, tx.init(params), params)
  np.testing.assert_allclose(updates["kernel"], -0.5 * np.ones((2, 2)))
  np.testing.assert_allclose(updates["bias"], np.zeros(2))
  tx_all = train.make_optimizer({"name": "sgd", "learning_rate": 1.0, "momentum": 0.0,
                                 "weight_decay": 0.5, "decay_norms_and_biases": True}, 10)
  updates, _ = tx_all.update(zero_grads, tx_all.init(params), params)
  np.testing.assert_allclose(updates["bias"], -0.5 * np.ones(2))


def test_nesterov_matches_optax():
  params = {"w": jnp.array([1.0, -2.0])}
  grads = {"w": jnp.array([0.5, 0.25])}
  ours = train.make_optimizer({"name": "sgd", "learning_rate": 0.1, "momentum": 0.9,
                               "nesterov": True}, 10)
  ref = optax.sgd(0.1, momentum=0.9, nesterov=True)
  a, _ = ours.update(grads, ours.init(params), params)
  b, _ = ref.update(grads, ref.init(params), params)
  np.testing.assert_allclose(a["w"], b["w"])


@pytest.mark.parametrize("config,match", [
    ({"name": "lion"}, "optimizer.name='lion' is unknown"),
    ({"name": "adam", "schedule": "triangle"}, "optimizer.schedule='triangle'"),
    ({"name": "adam", "learning_rate": -1.0}, "learning_rate"),
])
def test_bad_optimizer_configs(config, match):
  with pytest.raises(ValueError, match=match):
    train.make_optimizer(config, 10)
