"""Real master/worker executors: the same k-of-m schemes with real wall-clock.

Each of m workers holds its blocks (`WorkerData`); every iteration the master sends w_t
(and w_{t-1} for L-BFGS) to all workers, each worker sleeps its injected delay and then
computes its message, and the master takes the first k results (for a gradient code,
more until they decode, as `optimize.responder_masks` does), cancels the rest and
updates w exactly as `optimize.simulate` does. Two back ends share one interface:
  run_ray           Ray actors (`pip install ray`), first k by `ray.wait`, late calls
                    cancelled with `ray.cancel`; uses a running Ray instance or starts one.
  run_process_pool  a spawn-context process pool, first k by `concurrent.futures.wait`;
                    late workers see the iteration counter move on and abandon their sleep.
Workers compute in float64 numpy, so iterates match the float32 simulator to ~1e-5.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import time
from typing import Any, Callable

import jax.numpy as jnp
import numpy as np

from tradeoffs.coded import gradient_coding as gc_lib
from tradeoffs.coded import optimize as optimize_lib
from tradeoffs.coded import problems as problems_lib
from tradeoffs.coded import stragglers as stragglers_lib


def worker_message(loss: str, features: np.ndarray, targets: np.ndarray,
                   coefficients: np.ndarray, w: np.ndarray) -> np.ndarray:
  """sum_p c_p X_p^T residual_p(w), the numpy twin of `optimize.worker_messages`."""
  margins = features @ w  # [P, r]
  if loss == "least_squares":
    residual = margins - targets
  else:
    residual = 1.0 / (1.0 + np.exp(-margins)) - targets
  return np.einsum("p,prd,pr->d", coefficients, features, residual)


def _worker_arrays(data: optimize_lib.WorkerData, i: int):
  return (np.asarray(data.features[i], np.float64), np.asarray(data.targets[i], np.float64),
          np.asarray(data.coefficients[i], np.float64))


def _master(problem: problems_lib.Problem, data: optimize_lib.WorkerData, delays: np.ndarray,
            k: int, dispatch: Callable[..., dict[int, Any]], *,
            optimizer: str, step_size: float | None, memory: int) -> dict[str, np.ndarray]:
  """The master loop; `dispatch(t, ws, delays_t, enough)` returns {worker: messages} for
  the first workers to answer, as soon as `enough(list of their indices)` holds."""
  optimize_lib.check_optimizer(optimizer, problem)
  stragglers_lib.check_k(k, data.num_workers)
  delays = np.asarray(delays, np.float64)
  if delays.ndim != 2 or delays.shape[1] != data.num_workers:
    raise ValueError(f"delays has shape {delays.shape}; allowed: [steps, "
                     f"num_workers={data.num_workers}]")
  if step_size is None:
    step_size = optimize_lib.default_step_size(problem, optimizer)
  m, d = data.num_workers, problem.features.shape[1]
  w = np.zeros(d)
  w_prev = w.copy()
  s_mem, y_mem, count = np.zeros((memory, d)), np.zeros((memory, d)), 0
  weights, walls, received_all = [w.copy()], [0.0], []

  def enough(indices: list[int]) -> bool:
    if len(indices) < k:
      return False
    if data.family != "gradient_code" or len(indices) == m:
      return True  # With all m, decode_weights raises if even they do not decode.
    mask = np.zeros(m, bool)
    mask[indices] = True
    return gc_lib.solve_weights(data.code, mask)[1] <= gc_lib.DECODE_TOLERANCE

  start = time.perf_counter()
  for t in range(delays.shape[0]):
    lbfgs = optimizer == "lbfgs" and t > 0
    results = dispatch(t, [w, w_prev] if lbfgs else [w], delays[t], enough)
    received = np.zeros(m, bool)
    received[list(results)] = True
    a = optimize_lib.decode_weights(data, received)
    g = sum(a[i] * msgs[0] for i, msgs in results.items()) + problem.l2 * w
    if optimizer == "gd":
      w_next = w - step_size * g
    elif optimizer == "prox":
      z = w - step_size * g
      w_next = np.sign(z) * np.maximum(np.abs(z) - step_size * problem.l1, 0.0)
    else:
      if lbfgs:
        s = w - w_prev
        y = sum(a[i] * (msgs[0] - msgs[1]) for i, msgs in results.items()) + problem.l2 * s
        if s @ y > 1e-12 * max(y @ y, 1e-30):
          s_mem[count % memory], y_mem[count % memory] = s, y
          count += 1
      direction = optimize_lib._two_loop(jnp.asarray(g), jnp.asarray(s_mem), jnp.asarray(y_mem),
                                         jnp.asarray(count), memory)
      w_next = w - step_size * np.asarray(direction, np.float64)
    w_prev, w = w, w_next
    weights.append(w.copy())
    walls.append(time.perf_counter() - start)
    received_all.append(received)
  return dict(weights=np.stack(weights), wall_time=np.asarray(walls),
              received=np.stack(received_all))


class _RayWorker:
  """One worker: holds its blocks, sleeps the injected delay, returns its messages."""

  def __init__(self, loss, features, targets, coefficients):
    self._loss, self._arrays = loss, (features, targets, coefficients)

  async def compute(self, ws, delay):
    await asyncio.sleep(delay)  # Cancellable, so a late call is dropped by ray.cancel.
    return [worker_message(self._loss, *self._arrays, w) for w in ws]


def run_ray(problem: problems_lib.Problem, data: optimize_lib.WorkerData, delays, k: int, *,
            optimizer: str = "gd", step_size: float | None = None, memory: int = 5,
            time_scale: float = 1.0) -> dict[str, np.ndarray]:
  """Runs the scheme on Ray actors; delays [T, m] (seconds, times time_scale) are injected."""
  stragglers_lib.check_k(k, data.num_workers)
  try:
    import ray  # pylint: disable=g-import-not-at-top
  except ImportError as e:
    raise ImportError("run_ray needs Ray: pip install 'tradeoffs[ray]' (or use "
                      "run_process_pool)") from e
  if not ray.is_initialized():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
  actor_cls = ray.remote(num_cpus=0, max_concurrency=16)(_RayWorker)
  actors = [actor_cls.remote(data.loss, *_worker_arrays(data, i)) for i in range(data.num_workers)]
  ray.get([a.__ray_ready__.remote() for a in actors])  # Start-up is not part of the timing.

  def dispatch(t, ws, delays_t, enough):
    del t
    refs = [a.compute.remote(ws, float(dl) * time_scale) for a, dl in zip(actors, delays_t)]
    index = {ref: i for i, ref in enumerate(refs)}
    ready, pending = ray.wait(refs, num_returns=k, fetch_local=True)
    while not enough([index[ref] for ref in ready]):
      more, pending = ray.wait(pending, num_returns=1, fetch_local=True)
      ready = ready + more
    for ref in pending:
      ray.cancel(ref)
    return {index[ref]: value for ref, value in zip(ready, ray.get(ready))}

  try:
    return _master(problem, data, delays, k, dispatch, optimizer=optimizer,
                   step_size=step_size, memory=memory)
  finally:
    for a in actors:
      ray.kill(a)


_POOL_STATE: dict[str, Any] = {}


def _pool_init(loss, arrays, iteration):
  _POOL_STATE.update(loss=loss, arrays=arrays, iteration=iteration)


def _pool_compute(i, ws, delay, t):
  deadline = time.perf_counter() + delay
  while time.perf_counter() < deadline:
    if _POOL_STATE["iteration"].value != t:  # The master has moved on: abandon.
      return None
    time.sleep(min(0.005, max(0.0, deadline - time.perf_counter())))
  return i, [worker_message(_POOL_STATE["loss"], *_POOL_STATE["arrays"][i], w) for w in ws]


def run_process_pool(problem: problems_lib.Problem, data: optimize_lib.WorkerData, delays,
                     k: int, *, optimizer: str = "gd", step_size: float | None = None,
                     memory: int = 5, time_scale: float = 1.0) -> dict[str, np.ndarray]:
  """Runs the scheme on a pool of m processes; same interface as `run_ray`."""
  stragglers_lib.check_k(k, data.num_workers)  # Before spawning m processes.
  context = multiprocessing.get_context("spawn")
  iteration = context.Value("i", 0)
  arrays = [_worker_arrays(data, i) for i in range(data.num_workers)]
  with concurrent.futures.ProcessPoolExecutor(
      max_workers=data.num_workers, mp_context=context, initializer=_pool_init,
      initargs=(data.loss, arrays, iteration)) as pool:
    # Warm the processes so start-up is not part of the timing.
    list(pool.map(_pool_compute, range(data.num_workers), [[]] * data.num_workers,
                  [0.0] * data.num_workers, [0] * data.num_workers))

    def dispatch(t, ws, delays_t, enough):
      iteration.value = t
      futures = [pool.submit(_pool_compute, i, ws, float(dl) * time_scale, t)
                 for i, dl in enumerate(delays_t)]
      done: dict[int, Any] = {}
      pending = set(futures)
      while not enough(list(done)):
        finished, pending = concurrent.futures.wait(
            pending, return_when=concurrent.futures.FIRST_COMPLETED)
        # Same-batch finishers in delay order, so ties resolve like the simulator.
        for result in sorted((f.result() for f in finished if f.result() is not None),
                             key=lambda r: (delays_t[r[0]], r[0])):
          if not enough(list(done)):
            done[result[0]] = result[1]
      iteration.value = t + 1  # Late workers abandon their sleep.
      return done

    return _master(problem, data, delays, k, dispatch, optimizer=optimizer,
                   step_size=step_size, memory=memory)


EXECUTORS = {"ray": run_ray, "process_pool": run_process_pool}


def get_executor(name: str):
  if name not in EXECUTORS:
    raise ValueError(f"executor={name!r} is not known; valid: {sorted(EXECUTORS)}")
  return EXECUTORS[name]
