"""The objectives that encoded optimization solves, and their exact optima.

f(w) = (1/n) sum_j loss(x_j, y_j; w) + (l2/2) ||w||^2 + l1 ||w||_1, with
  least_squares  loss = (x.w - y)^2 / 2   (ridge when l2 > 0, LASSO when l1 > 0)
  logistic       loss = log(1 + exp(x.w)) - y x.w, labels y in {0, 1}.
`optimum` is the closed form for least squares / ridge, FISTA for LASSO and Newton's
method for logistic regression (ridge-regularised), all on the full, unencoded data.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

Array = jax.Array
LOSSES = ("least_squares", "logistic")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Problem:
  features: Array  # [n, d]
  targets: Array  # [n]
  loss: str = dataclasses.field(default="least_squares", metadata=dict(static=True))
  l2: float = dataclasses.field(default=0.0, metadata=dict(static=True))
  l1: float = dataclasses.field(default=0.0, metadata=dict(static=True))

  @property
  def num_examples(self) -> int:
    return self.features.shape[0]


def make_problem(features, targets, loss: str = "least_squares", l2: float = 0.0,
                 l1: float = 0.0) -> Problem:
  """Validates and builds a Problem (ValueError names the bad argument).

  >>> problem = make_problem([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]], [1.0, 2.0, 3.0], l2=0.1)
  >>> problem.features.shape, problem.num_examples, problem.loss, problem.l2
  ((3, 2), 3, 'least_squares', 0.1)
  >>> make_problem([[1.0]], [1.0], loss="hinge")
  Traceback (most recent call last):
  ...
  ValueError: problem.loss='hinge' is not known; valid: ['least_squares', 'logistic']
  """
  if loss not in LOSSES:
    raise ValueError(f"problem.loss={loss!r} is not known; valid: {list(LOSSES)}")
  if l2 < 0 or l1 < 0:
    raise ValueError(f"problem.l2={l2}, problem.l1={l1}: regularisation must be >= 0")
  features = jnp.asarray(features, jnp.float32)
  targets = jnp.asarray(targets, jnp.float32)
  if features.ndim != 2 or targets.shape != features.shape[:1]:
    raise ValueError(f"features {features.shape} and targets {targets.shape}: need [n, d] and [n]")
  return Problem(features, targets, loss, float(l2), float(l1))


def residual_gradient(loss: str, features: Array, targets: Array, w: Array) -> Array:
  """sum_j grad loss(x_j, y_j; w) over the rows given (no 1/n, no regulariser).

  Zero rows (padding) contribute zero for both losses.
  """
  margins = features @ w
  if loss == "least_squares":
    residual = margins - targets
  else:
    residual = jax.nn.sigmoid(margins) - targets
  return features.T @ residual


def smooth_objective(problem: Problem, w: Array) -> Array:
  margins = problem.features @ w
  if problem.loss == "least_squares":
    data = 0.5 * jnp.mean((margins - problem.targets) ** 2)
  else:
    data = jnp.mean(jax.nn.softplus(margins) - problem.targets * margins)
  return data + 0.5 * problem.l2 * jnp.sum(w * w)


def objective(problem: Problem, w: Array) -> Array:
  """f(w), including the l1 term.

  >>> import jax.numpy as jnp
  >>> problem = make_problem([[1.0], [2.0]], [1.0, 0.0], l1=0.5)
  >>> float(objective(problem, jnp.array([1.0])))   # ((0)^2 + 2^2) / (2 * 2) + 0.5 * |1|
  1.5
  """
  return smooth_objective(problem, w) + problem.l1 * jnp.sum(jnp.abs(w))


def full_gradient(problem: Problem, w: Array) -> Array:
  """Gradient of the smooth part on the full data."""
  return (residual_gradient(problem.loss, problem.features, problem.targets, w)
          / problem.num_examples + problem.l2 * w)


def smoothness(problem: Problem) -> Array:
  """Lipschitz constant L of the smooth part's gradient."""
  top = jnp.linalg.eigvalsh(problem.features.T @ problem.features)[-1] / problem.num_examples
  if problem.loss == "logistic":
    top = top / 4.0
  return top + problem.l2


def soft_threshold(x: Array, threshold: Array | float) -> Array:
  return jnp.sign(x) * jnp.maximum(jnp.abs(x) - threshold, 0.0)


@jax.jit
def optimum(problem: Problem) -> Array:
  """w* on the full data: closed form, FISTA (l1 > 0) or Newton (logistic)."""
  x, y, n = problem.features, problem.targets, problem.num_examples
  d = x.shape[1]
  eye = jnp.eye(d, dtype=x.dtype)
  if problem.loss == "least_squares" and problem.l1 == 0.0:
    return jnp.linalg.solve(x.T @ x / n + problem.l2 * eye, x.T @ y / n)
  if problem.loss == "least_squares":
    step = 1.0 / smoothness(problem)

    def fista(_, carry):
      w, v, t = carry
      w_next = soft_threshold(v - step * full_gradient(problem, v), step * problem.l1)
      t_next = (1 + jnp.sqrt(1 + 4 * t * t)) / 2
      return w_next, w_next + (t - 1) / t_next * (w_next - w), t_next

    w0 = jnp.zeros((d,), x.dtype)
    return jax.lax.fori_loop(0, 20000, fista, (w0, w0, jnp.ones((), x.dtype)))[0]
  if problem.l1 != 0.0:
    raise ValueError("problem.l1 > 0 with problem.loss='logistic' is not supported")

  def newton(_, w):
    p = jax.nn.sigmoid(x @ w)
    hessian = (x.T * (p * (1 - p))) @ x / n + problem.l2 * eye + 1e-8 * eye
    return w - jnp.linalg.solve(hessian, full_gradient(problem, w))

  return jax.lax.fori_loop(0, 50, newton, jnp.zeros((d,), x.dtype))


def synthetic_problem(key: Array, *, num_examples: int, dim: int, loss: str = "least_squares",
                      noise: float = 1.0, l2: float = 0.0, l1: float = 0.0,
                      condition_number: float = 1.0) -> Problem:
  """Gaussian features, a random w_true, and Gaussian noise (Bernoulli labels for logistic).

  Feature column j is scaled by condition_number^(-j / (2 (dim - 1))), so the population
  Gram E[x x^T] has eigenvalues spread geometrically from 1 down to 1/condition_number
  (condition_number=1: i.i.d. N(0, 1) features, the well-conditioned case in which
  gradient descent at step 1/L converges in a few iterations). w_true ~ N(0, I).

  >>> import jax
  >>> problem = synthetic_problem(jax.random.key(0), num_examples=8, dim=3, condition_number=4.0)
  >>> problem.features.shape, problem.targets.shape
  ((8, 3), (8,))
  >>> logistic = synthetic_problem(jax.random.key(0), num_examples=8, dim=3, loss="logistic")
  >>> sorted(set(logistic.targets.tolist())) <= [0.0, 1.0]
  True
  """
  if not condition_number >= 1:
    raise ValueError(f"problem.condition_number={condition_number} is not allowed: need >= 1")
  if num_examples < 1 or dim < 1:
    raise ValueError(f"problem.num_examples={num_examples}, problem.dim={dim}: both >= 1")
  kx, kw, ke = jax.random.split(key, 3)
  x = jax.random.normal(kx, (num_examples, dim))
  if condition_number > 1 and dim > 1:
    x = x * condition_number ** (-jnp.arange(dim) / (2.0 * (dim - 1)))
  w_true = jax.random.normal(kw, (dim,))
  if loss == "least_squares":
    y = x @ w_true + noise * jax.random.normal(ke, (num_examples,))
  else:
    y = (jax.random.uniform(ke, (num_examples,)) < jax.nn.sigmoid(x @ w_true)).astype(jnp.float32)
  return make_problem(x, y, loss=loss, l2=l2, l1=l1)
