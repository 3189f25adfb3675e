"""Real executors: which workers they use, and the iterates those workers imply.

Robust to a loaded machine: stragglers are injected with a delay (30 s) far beyond any
scheduling noise, and the master never waits for them, so the responder sets are fixed
and the test stays fast. Iterates are checked against the deterministic simulator fed
the responders the executor actually used, and against the simulator's own choice.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoffs import coded
from tradeoffs.coded import executors
from tradeoffs.coded import optimize

STRAGGLE = 30.0
# Workers 1 and 3 are fast, 0 and 2 straggle; k = 2 takes exactly {1, 3}, and worker 2
# is fast in the last iteration instead of 3.
DELAYS = np.array([[STRAGGLE, 0.0, STRAGGLE, 0.0], [STRAGGLE, 0.0, STRAGGLE, 0.0],
                   [STRAGGLE, 0.0, 0.0, STRAGGLE]])
EXPECTED = np.array([[0, 1, 0, 1], [0, 1, 0, 1], [0, 1, 1, 0]], bool)


def _setup():
  x = jax.random.normal(jax.random.key(0), (32, 3))
  y = x @ jnp.asarray([1.0, -1.0, 0.5]) + 0.1 * jax.random.normal(jax.random.key(1), (32,))
  problem = coded.make_problem(x, y, l2=1e-2)
  return problem, coded.encode_problem(problem, "gaussian", 2, 4, jax.random.key(2))


def _check(out, problem, data, optimizer, step, expected=EXPECTED):
  np.testing.assert_array_equal(out["received"], expected)
  # Replaying the executor's own responders through the simulator gives its iterates.
  replay = coded.simulate(problem, data, jnp.asarray(out["received"]), optimizer=optimizer,
                          step_size=step)
  np.testing.assert_allclose(out["weights"], replay, rtol=1e-4, atol=1e-5)
  # The master never waited for a straggler (each would cost STRAGGLE seconds).
  assert out["wall_time"][-1] < STRAGGLE


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
  out = executors.run_ray(problem, data, DELAYS, 2, optimizer=optimizer, step_size=step)
  _check(out, problem, data, optimizer, step)
  sim = coded.run(problem, data, jnp.asarray(DELAYS), 2, optimizer=optimizer, step_size=step)
  np.testing.assert_allclose(out["weights"], sim.weights, rtol=1e-4, atol=1e-5)


def test_process_pool_executor_matches_simulator():
  problem, data = _setup()
  out = executors.run_process_pool(problem, data, DELAYS, 2)
  _check(out, problem, data, "gd", None)
  sim = coded.run(problem, data, jnp.asarray(DELAYS), 2)
  np.testing.assert_allclose(out["weights"], sim.weights, rtol=1e-4, atol=1e-5)


def test_master_waits_until_the_gradient_code_decodes():
  # m = 10, s = 2, cyclic (key 1): the 8 fastest (all but 1 and 9) do not decode, so the
  # master must also take worker 1 but never worker 9, as the simulator does. A
  # deterministic dispatch (arrivals in delay order) keeps the test free of timing.
  x = jax.random.normal(jax.random.key(0), (40, 3))
  problem = coded.make_problem(x, x @ jnp.asarray([1.0, -1.0, 0.5]), l2=1e-2)
  data = coded.gradient_code_problem(problem, "cyclic", 10, 2, jax.random.key(1))
  delays = np.tile(np.r_[0.0, 2.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 3.0], (3, 1))
  arrays = [executors._worker_arrays(data, i) for i in range(10)]

  def dispatch(t, ws, delays_t, enough):
    del t
    done = {}
    for i in np.argsort(delays_t, kind="stable"):
      if enough(list(done)):
        break
      done[int(i)] = [executors.worker_message(data.loss, *arrays[i], w) for w in ws]
    return done

  out = executors._master(problem, data, delays, 8, dispatch, optimizer="gd", step_size=0.1,
                          memory=5)
  expected, waited = optimize.responder_masks(data, jnp.asarray(delays), 8)
  np.testing.assert_array_equal(waited, 9)
  np.testing.assert_array_equal(out["received"], expected)
  np.testing.assert_array_equal(out["received"], np.tile(np.arange(10) != 9, (3, 1)))
  sim = coded.run(problem, data, jnp.asarray(delays), 8, step_size=0.1)
  np.testing.assert_allclose(out["weights"], sim.weights, rtol=1e-4, atol=1e-5)


def test_executor_registry_and_bad_k():
  with pytest.raises(ValueError, match="valid: "):
    executors.get_executor("mpi")
  problem, data = _setup()
  with pytest.raises(ValueError, match="k=5"):
    executors.run_process_pool(problem, data, DELAYS, 5)
