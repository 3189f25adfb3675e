"""Optimizers whose every iteration uses only the k fastest of m workers.

One data layout serves both families. Worker i holds P blocks (features [r, d], targets
[r]) with coefficients c_ip and answers the message sum_p c_ip * sum_rows grad loss(w):
  encoded data (Karakus et al.)  P = 1, the block is (S_i X, S_i y), c = 1;
  gradient coding (Tandon et al.) P = s+1 data partitions, c = row i of B.
The master turns the set of responders into weights a_t [m] that do not depend on w
(`decode_weights`, on the host): encoded data rescales by m / (k beta n) (the block-RIP
normalisation (1/(eta beta)) S_A^T S_A ~ I); gradient coding solves B_F^T a = 1 in float64
and divides by n, waiting for more than k workers when the k fastest do not decode.
The master's gradient is g_t = sum_i a_ti msg_i(w_t) + l2 w_t, and the update is
  gd     w - alpha g
  prox   soft_threshold(w - alpha g, alpha l1)          (LASSO)
  lbfgs  w - alpha H_t g, two-loop recursion over the last `memory` pairs; the
         curvature pair uses the same responders for both gradients,
         y_t = sum_i a_ti (msg_i(w_t) - msg_i(w_{t-1})) + l2 s_t (a [mem] choice, so that
         stragglers do not corrupt y), and pairs with s.y <= 0 are skipped.
`simulate` runs the whole loop in one `lax.scan` under `jit`; with a mesh, workers are
laid out over the mesh axis by `jax.shard_map`, each device keeping its blocks and
summing its workers' weighted messages before a `psum`.
"""

from __future__ import annotations

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import PartitionSpec as P

from tradeoffs.coded import encoding as encoding_lib
from tradeoffs.coded import gradient_coding as gc_lib
from tradeoffs.coded import problems as problems_lib
from tradeoffs.coded import stragglers as stragglers_lib

Array = jax.Array
OPTIMIZERS = ("gd", "prox", "lbfgs")
# Encodings that only select/copy rows, so any loss (not just least squares) stays exact.
ROW_SELECTING = ("uncoded", "replication")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class WorkerData:
  """What each of the m workers stores, with the master's decoding rule."""
  features: Array  # [m, P, r, d]
  targets: Array  # [m, P, r]
  coefficients: Array  # [m, P]
  code: Array  # [m, m] gradient-code B (identity for encoded data)
  family: str = dataclasses.field(metadata=dict(static=True))  # 'encoded' | 'gradient_code'
  beta: float = dataclasses.field(metadata=dict(static=True))  # effective redundancy
  num_examples: int = dataclasses.field(metadata=dict(static=True))  # n of the original data
  loss: str = dataclasses.field(metadata=dict(static=True))

  @property
  def num_workers(self) -> int:
    return self.features.shape[0]

  @property
  def rows_per_worker(self) -> int:
    return self.features.shape[1] * self.features.shape[2]


def _pad_rows(x: Array, rows: int) -> Array:
  return jnp.concatenate([x, jnp.zeros((rows - x.shape[0],) + x.shape[1:], x.dtype)], axis=0)


def padded_size(kind: str, n: int, num_workers: int, beta: float = 1.0) -> int:
  """Rows the data is zero-padded to so that `kind` applies and blocks align with workers."""
  if kind == "paley":
    return encoding_lib.paley_size_at_least(n)
  multiple = num_workers
  if kind == "replication" and float(beta) == int(beta) and num_workers % int(beta) == 0:
    multiple = num_workers // int(beta)  # Partitions of n / (m/beta) rows each.
  return -(-n // multiple) * multiple


def encode_problem(problem: problems_lib.Problem, kind: str, beta: float, num_workers: int,
                   key: Array) -> WorkerData:
  """Encodes (X, y) with S (`encoding.kind`, redundancy beta) into m worker blocks.

  >>> import jax
  >>> import numpy as np
  >>> from tradeoffs.coded import problems
  >>> problem = problems.make_problem(np.eye(4), np.arange(4.0))   # n = 4, d = 4
  >>> data = encode_problem(problem, "replication", 2, 4, jax.random.key(0))
  >>> data.features.shape, data.targets.shape, data.beta   # [m, P=1, r, d]: 2n rows / 4
  ((4, 1, 2, 4), (4, 1, 2), 2.0)
  >>> np.asarray(data.targets[:, 0]).tolist()              # copy 1 on workers 0-1, copy 2 on 2-3
  [[0.0, 1.0], [2.0, 3.0], [0.0, 1.0], [2.0, 3.0]]
  """
  if num_workers < 1:
    raise ValueError(f"num_workers={num_workers} is not allowed: need >= 1")
  encoding_lib._check_kind(kind, "encoding.kind")
  if not beta >= 1:
    raise ValueError(f"encoding.beta={beta} is not allowed: the redundancy must be >= 1")
  if problem.loss != "least_squares" and kind not in ROW_SELECTING:
    raise ValueError(f"encoding.kind={kind!r} with problem.loss={problem.loss!r}: a linear "
                     f"mixing encoding preserves only least squares; allowed kinds for this loss: "
                     f"{list(ROW_SELECTING)} (or use gradient coding)")
  if kind == "replication" and (float(beta) != int(beta) or num_workers % int(beta)):
    raise ValueError(f"encoding.beta={beta} with kind='replication' and num_workers="
                     f"{num_workers}: beta must be an integer dividing num_workers")
  n = problem.num_examples
  n_pad = padded_size(kind, n, num_workers, beta)
  joint = jnp.concatenate([problem.features, problem.targets[:, None]], axis=1)
  joint = _pad_rows(joint, n_pad)
  rows = encoding_lib.encoded_rows(kind, n_pad, beta, arg_prefix="encoding.")
  encoded = encoding_lib.encode(kind, joint, beta, key)
  blocks = encoding_lib.split_blocks(encoded, num_workers)  # [m, r, d+1]
  return WorkerData(
      features=blocks[:, None, :, :-1], targets=blocks[:, None, :, -1],
      coefficients=jnp.ones((num_workers, 1), jnp.float32),
      code=jnp.eye(num_workers, dtype=jnp.float32), family="encoded",
      beta=rows / n_pad, num_examples=n, loss=problem.loss)


def gradient_code_problem(problem: problems_lib.Problem, code: str, num_workers: int,
                          num_stragglers: int, key: Array | None = None) -> WorkerData:
  """Splits the data into m partitions and gives worker i the support of row i of B.

  >>> import numpy as np
  >>> from tradeoffs.coded import problems
  >>> problem = problems.make_problem(np.eye(4), np.arange(4.0))
  >>> data = gradient_code_problem(problem, "cyclic", 4, 1)   # 4 partitions of one row each
  >>> data.features.shape, data.beta                          # [m, P = s+1, r, d]
  ((4, 2, 1, 4), 2.0)
  >>> np.asarray(data.targets[:, :, 0]).tolist()              # worker i holds i and i+1
  [[0.0, 1.0], [1.0, 2.0], [2.0, 3.0], [3.0, 0.0]]
  """
  b = gc_lib.gradient_code(code, num_workers, num_stragglers, key)
  n = problem.num_examples
  n_pad = -(-n // num_workers) * num_workers
  feats = _pad_rows(problem.features, n_pad).reshape(num_workers, n_pad // num_workers, -1)
  targs = _pad_rows(problem.targets, n_pad).reshape(num_workers, n_pad // num_workers)
  b_np = np.asarray(b)
  support = np.stack([(i + np.arange(num_stragglers + 1)) % num_workers
                      if code == "cyclic" else np.flatnonzero(b_np[i])
                      for i in range(num_workers)])
  return WorkerData(
      features=feats[support], targets=targs[support],
      coefficients=jnp.asarray(np.take_along_axis(b_np, support, axis=1)),
      code=b, family="gradient_code", beta=float(num_stragglers + 1), num_examples=n,
      loss=problem.loss)


def check_gradient_code_k(k: int, num_workers: int, num_stragglers: int,
                          arg: str = "gradient_coding.k") -> None:
  """A gradient code built for s stragglers decodes from any m - s workers, no fewer."""
  stragglers_lib.check_k(k, num_workers)
  if num_workers - k > num_stragglers:
    raise ValueError(
        f"{arg}={k} with num_workers={num_workers} asks the gradient code to tolerate "
        f"{num_workers - k} stragglers, but its redundancy (beta = s+1 = {num_stragglers + 1} "
        f"partitions per worker) tolerates at most s={num_stragglers}; allowed: "
        f"k >= {num_workers - num_stragglers}")


def decode_weights(data: WorkerData, received) -> np.ndarray:
  """The master's weights a [m] (float64, host) for one concrete responder mask.

  Zero for stragglers. Gradient codes raise `gradient_coding.NotDecodableError` for a
  responder set they cannot decode accurately (see `responder_masks` for the fallback).

  >>> import jax
  >>> import numpy as np
  >>> from tradeoffs.coded import problems
  >>> problem = problems.make_problem(np.eye(4), np.arange(4.0))
  >>> data = encode_problem(problem, "uncoded", 1, 4, jax.random.key(0))
  >>> decode_weights(data, [True, True, False, True]).tolist()   # m / (k beta n) = 4 / 12
  [0.333..., 0.333..., 0.0, 0.333...]
  >>> data = gradient_code_problem(problem, "fractional_repetition", 4, 1)
  >>> decode_weights(data, [True, False, False, True]).round(6).tolist()   # one per group, / n
  [0.25, 0.0, 0.0, 0.25]
  """
  try:
    mask = np.asarray(received, bool)
  except jax.errors.TracerArrayConversionError as e:
    raise ValueError("decode_weights needs a concrete responder mask (the weights are "
                     "computed on the host); call it outside jit") from e
  if data.family == "encoded":
    k = max(int(mask.sum()), 1)
    return mask * data.num_workers / (k * data.beta * data.num_examples)
  return gc_lib.decode_weights(data.code, mask) / data.num_examples


def decode_all(data: WorkerData, received) -> np.ndarray:
  """decode_weights for every row of masks [T, m], solving once per distinct mask."""
  masks = np.asarray(received, bool)
  unique, inverse = np.unique(masks, axis=0, return_inverse=True)
  return np.stack([decode_weights(data, r) for r in unique])[inverse.reshape(-1)]


def responder_masks(data: WorkerData, delays, k: int) -> tuple[np.ndarray, np.ndarray]:
  """(masks [T, m], workers waited for [T]): the k fastest, and for a gradient code the
  next-fastest too until the responders decode (`gradient_coding.wait_until_decodable`)."""
  received = np.array(stragglers_lib.fastest_k_mask(delays, k))  # Writable copy.
  if data.family == "gradient_code":
    order = np.argsort(np.asarray(delays), axis=-1, kind="stable")
    cache: dict[bytes, np.ndarray] = {}
    for t, row in enumerate(received):
      if row.tobytes() not in cache:
        cache[row.tobytes()] = gc_lib.wait_until_decodable(data.code, order[t], k)
      received[t] = cache[row.tobytes()]
  return received, received.sum(axis=1)


def worker_messages(data: WorkerData, w: Array) -> Array:
  """msg_i(w) for the workers in `data` (any leading worker count): [m_local, d]."""
  def one(feats, targs, coefs):
    grads = jax.vmap(lambda x, y: problems_lib.residual_gradient(data.loss, x, y, w))(feats, targs)
    return coefs @ grads
  return jax.vmap(one)(data.features, data.targets, data.coefficients)


def default_step_size(problem: problems_lib.Problem, optimizer: str,
                      step_scale: float = 1.0) -> float:
  """step_scale / L for gd and prox; step_scale for lbfgs (its direction is curvature-scaled)."""
  check_optimizer(optimizer)
  if optimizer == "lbfgs":
    return float(step_scale)
  return float(step_scale / problems_lib.smoothness(problem))


def check_optimizer(optimizer: str, problem: problems_lib.Problem | None = None) -> None:
  if optimizer not in OPTIMIZERS:
    raise ValueError(f"optimizer={optimizer!r} is not known; valid: {list(OPTIMIZERS)}")
  if problem is not None and problem.l1 > 0 and optimizer != "prox":
    raise ValueError(f"optimizer={optimizer!r} with problem.l1={problem.l1}: an l1 term needs "
                     "optimizer='prox'")


def _two_loop(grad, s_mem, y_mem, count, memory):
  """H_t grad by the L-BFGS two-loop recursion over a circular buffer of pairs."""
  q = grad
  alphas = []
  for j in range(memory):  # Newest to oldest.
    idx = (count - 1 - j) % memory
    valid = j < jnp.minimum(count, memory)
    s, y = s_mem[idx], y_mem[idx]
    rho = 1.0 / jnp.where(valid, jnp.dot(y, s), 1.0)
    alpha = jnp.where(valid, rho * jnp.dot(s, q), 0.0)
    q = q - alpha * y
    alphas.append((alpha, rho, valid, idx))
  newest = (count - 1) % memory
  s_new, y_new = s_mem[newest], y_mem[newest]
  gamma = jnp.where(count > 0, jnp.dot(s_new, y_new) / jnp.maximum(jnp.dot(y_new, y_new), 1e-30),
                    1.0)
  r = gamma * q
  for alpha, rho, valid, idx in reversed(alphas):
    beta = rho * jnp.dot(y_mem[idx], r)
    r = r + jnp.where(valid, alpha - beta, 0.0) * s_mem[idx]
  return r


def _loop(data: WorkerData, weights: Array, w0: Array, *, optimizer: str, step_size: float,
          l2: float, l1: float, memory: int, reduce):
  """The iteration loop over local workers; `reduce` sums across devices (or not)."""
  d = w0.shape[0]
  m_local = data.features.shape[0]

  def gradient(msgs, a, w):
    return reduce(a @ msgs) + l2 * w

  def step(carry, a):
    w, w_prev, msgs_prev, s_mem, y_mem, count, t = carry
    msgs = worker_messages(data, w)
    g = gradient(msgs, a, w)
    if optimizer == "gd":
      w_next = w - step_size * g
    elif optimizer == "prox":
      w_next = problems_lib.soft_threshold(w - step_size * g, step_size * l1)
    else:
      s = w - w_prev
      y = reduce(a @ (msgs - msgs_prev)) + l2 * s
      accept = (t > 0) & (jnp.dot(s, y) > 1e-12 * jnp.maximum(jnp.dot(y, y), 1e-30))
      slot = count % memory
      s_mem = jnp.where(accept, s_mem.at[slot].set(s), s_mem)
      y_mem = jnp.where(accept, y_mem.at[slot].set(y), y_mem)
      count = count + accept.astype(count.dtype)
      w_next = w - step_size * _two_loop(g, s_mem, y_mem, count, memory)
    return (w_next, w, msgs, s_mem, y_mem, count, t + 1), w_next

  carry = (w0, w0, jnp.zeros((m_local, d), w0.dtype), jnp.zeros((memory, d), w0.dtype),
           jnp.zeros((memory, d), w0.dtype), jnp.zeros((), jnp.int32), jnp.zeros((), jnp.int32))
  _, ws = jax.lax.scan(step, carry, weights)
  return jnp.concatenate([w0[None], ws], axis=0)


def simulate(problem: problems_lib.Problem, data: WorkerData, received: Array, *,
             optimizer: str = "gd", step_size: float | None = None, memory: int = 5,
             mesh: jax.sharding.Mesh | None = None, axis: str = "workers",
             w0: Array | None = None) -> Array:
  """Iterates w_0..w_T [T+1, d] given responder masks `received` [T, m].

  >>> import jax
  >>> import numpy as np
  >>> from tradeoffs.coded import problems
  >>> problem = problems.make_problem(np.eye(2), np.array([1.0, -1.0]))   # w* = y
  >>> data = encode_problem(problem, "uncoded", 1, 2, jax.random.key(0))
  >>> received = np.ones((3, 2), bool)                                     # T = 3, everyone
  >>> ws = simulate(problem, data, received, step_size=1.0)                # [T+1, d]
  >>> np.asarray(ws).round(4).tolist()    # gradient (w - y)/2: halves the error each step
  [[0.0, 0.0], [0.5, -0.5], [0.75, -0.75], [0.875, -0.875]]
  """
  check_optimizer(optimizer, problem)
  if received.ndim != 2 or received.shape[1] != data.num_workers:
    raise ValueError(f"received has shape {received.shape}; allowed: [steps, "
                     f"num_workers={data.num_workers}]")
  if step_size is None:
    step_size = default_step_size(problem, optimizer)
  d = problem.features.shape[1]
  w0 = jnp.zeros((d,), jnp.float32) if w0 is None else jnp.asarray(w0, jnp.float32)
  if mesh is not None and data.num_workers % mesh.shape[axis]:
    raise ValueError(f"num_workers={data.num_workers} must be a multiple of the mesh axis "
                     f"{axis!r} size {mesh.shape[axis]}")
  weights = jnp.asarray(decode_all(data, received), jnp.float32)  # [T, m], w-independent.
  return _simulate_jit(data, weights, w0, mesh=mesh, axis=axis, optimizer=optimizer,
                       step_size=float(step_size), l2=problem.l2, l1=problem.l1,
                       memory=int(memory))


@functools.partial(jax.jit, static_argnames=("mesh", "axis", "optimizer", "step_size", "l2",
                                             "l1", "memory"))
def _simulate_jit(data: WorkerData, weights: Array, w0: Array, *, mesh, axis, optimizer,
                  step_size, l2, l1, memory):
  """One compiled loop per (shapes, mesh, settings), reused across calls (e.g. delays)."""
  kwargs = dict(optimizer=optimizer, step_size=step_size, l2=l2, l1=l1, memory=memory)
  if mesh is None:
    return _loop(data, weights, w0, reduce=lambda x: x, **kwargs)

  def body(dd, a, w):
    return _loop(dd, a, w, reduce=lambda x: jax.lax.psum(x, axis), **kwargs)

  data_spec = jax.tree.map(lambda _: P(axis), data)
  return jax.shard_map(body, mesh=mesh, in_specs=(data_spec, P(None, axis), P()),
                       out_specs=P(), check_vma=False)(data, weights, w0)


@dataclasses.dataclass(frozen=True)
class Trace:
  """One run: iterates, objective, suboptimality and simulated time per iteration."""
  weights: np.ndarray  # [T+1, d]
  objective: np.ndarray  # [T+1]
  suboptimality: np.ndarray  # [T+1], f(w_t) - f(w*)
  time: np.ndarray  # [T+1], simulated seconds since start
  optimum_value: float


def iteration_times(delays: Array, k, compute_seconds: float = 0.0) -> np.ndarray:
  """Simulated elapsed time [T+1]: cumulative k-th order statistic of delays plus compute.

  k is one count or one per iteration [T] (a gradient code that waited for more workers).
  Accumulated in float64 on the host so long runs keep their clock exact.

  >>> import numpy as np
  >>> delays = np.array([[3.0, 1.0, 2.0], [1.0, 5.0, 4.0]])   # [T=2, m=3]
  >>> iteration_times(delays, 2).tolist()                      # 2nd fastest: 2, then 4
  [0.0, 2.0, 6.0]
  >>> iteration_times(delays, [1, 3], compute_seconds=0.5).tolist()
  [0.0, 1.5, 7.0]
  """
  ordered = np.sort(np.asarray(delays, np.float64), axis=-1)
  k = np.broadcast_to(np.asarray(k), ordered.shape[:1])
  per_iteration = ordered[np.arange(len(ordered)), k - 1] + compute_seconds
  return np.concatenate([[0.0], np.cumsum(per_iteration)])


def run(problem: problems_lib.Problem, data: WorkerData, delays: Array, k: int, *,
        optimizer: str = "gd", step_size: float | None = None, memory: int = 5,
        compute_seconds_per_row: float = 0.0, mesh: jax.sharding.Mesh | None = None,
        w_star: Array | None = None) -> Trace:
  """Simulates the k-of-m scheme over the delays [T, m] and scores every iterate.

  >>> import jax
  >>> import numpy as np
  >>> from tradeoffs.coded import problems
  >>> problem = problems.make_problem(np.eye(2), np.array([1.0, -1.0]))
  >>> data = encode_problem(problem, "uncoded", 1, 2, jax.random.key(0))
  >>> delays = np.array([[1.0, 2.0], [3.0, 1.0]])
  >>> trace = run(problem, data, delays, 2, step_size=1.0)    # wait for both workers
  >>> trace.time.tolist(), [round(float(v), 4) for v in trace.suboptimality]   # |w - w*|^2 / 4
  ([0.0, 2.0, 5.0], [0.5, 0.125, 0.0312])
  """
  stragglers_lib.check_k(k, data.num_workers)
  if delays.ndim != 2 or delays.shape[1] != data.num_workers:
    raise ValueError(f"delays has shape {delays.shape}; allowed: [steps, "
                     f"num_workers={data.num_workers}]")
  received, waited = responder_masks(data, delays, k)
  ws = simulate(problem, data, received, optimizer=optimizer, step_size=step_size,
                memory=memory, mesh=mesh)
  if w_star is None:
    w_star = problems_lib.optimum(problem)
  f_star = problems_lib.objective(problem, w_star)
  values = jax.vmap(lambda w: problems_lib.objective(problem, w))(ws)
  times = iteration_times(delays, waited, compute_seconds_per_row * data.rows_per_worker)
  return Trace(np.asarray(ws), np.asarray(values), np.asarray(values - f_star), np.asarray(times),
               float(f_star))


def make_mesh(num_devices: int | None = None, axis: str = "workers") -> jax.sharding.Mesh:
  """A 1-D mesh over the first num_devices devices for the workers axis.

  >>> mesh = make_mesh(1)
  >>> mesh.axis_names, mesh.size
  (('workers',), 1)
  """
  num_devices = num_devices or jax.device_count()
  return jax.make_mesh((num_devices,), (axis,), axis_types=(jax.sharding.AxisType.Auto,),
                       devices=jax.devices()[:num_devices])
