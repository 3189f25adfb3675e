"""Real executors return the simulator's iterates when delays are fixed and well separated."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoffs import coded
from tradeoffs.coded import executors

# Workers 1 and 3 are fast, 0 and 2 straggle by 0.5 s; k = 2 takes exactly {1, 3}, and
# worker 2 is fast in the last iteration instead of 3.
DELAYS = np.array([[0.5, 0.0, 0.5, 0.0], [0.5, 0.0, 0.5, 0.0], [0.5, 0.0, 0.0, 0.5]])


def _setup():
  x = jax.random.normal(jax.random.key(0), (32, 3))
  y = x @ jnp.asarray([1.0, -1.0, 0.5]) + 0.1 * jax.random.normal(jax.random.key(1), (32,))
  problem = coded.make_problem(x, y, l2=1e-2)
  return problem, coded.encode_problem(problem, "gaussian", 2, 4, jax.random.key(2))


@pytest.fixture(scope="module")
def ray_instance():
  ray = pytest.importorskip("ray")
  ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
  yield ray
  ray.shutdown()


@pytest.mark.parametrize("optimizer", ["gd", "lbfgs"])
def test_ray_executor_matches_simulator(ray_instance, optimizer):
  del ray_instance
  problem, data = _setup()
  step = 0.5 if optimizer == "lbfgs" else None
  sim = coded.run(problem, data, jnp.asarray(DELAYS), 2, optimizer=optimizer, step_size=step)
  out = executors.run_ray(problem, data, DELAYS, 2, optimizer=optimizer, step_size=step)
  np.testing.assert_array_equal(out["received"], np.asarray(coded.fastest_k_mask(DELAYS, 2)))
  np.testing.assert_allclose(out["weights"], sim.weights, rtol=1e-4, atol=1e-5)
  # Real wall-clock: the master never waited for the 0.5 s stragglers.
  assert out["wall_time"][-1] < 0.5 * len(DELAYS)


def test_process_pool_executor_matches_simulator():
  problem, data = _setup()
  sim = coded.run(problem, data, jnp.asarray(DELAYS), 2)
  out = executors.run_process_pool(problem, data, DELAYS, 2)
  np.testing.assert_array_equal(out["received"], np.asarray(coded.fastest_k_mask(DELAYS, 2)))
  np.testing.assert_allclose(out["weights"], sim.weights, rtol=1e-4, atol=1e-5)
  assert out["wall_time"][-1] < 0.5 * len(DELAYS)


def test_executor_registry_and_bad_k():
  with pytest.raises(ValueError, match="valid: "):
    executors.get_executor("mpi")
  problem, data = _setup()
  with pytest.raises(ValueError, match="k=5"):
    executors.run_process_pool(problem, data, DELAYS, 5)
