"""Section-8 quantities against full Hessians (jax.hessian + numpy.linalg.eigh) and by hand."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.flatten_util import ravel_pytree

from tradeoffs.determinism import hardware


def _tiny_problem():
  """A 2-layer tanh net with 20 parameters (3 -> 3 -> 2) and 8 examples in 2 groups."""
  k1, k2, k3, k4 = jax.random.split(jax.random.key(0), 4)
  params = {"w1": jax.random.normal(k1, (3, 3)), "b1": 0.1 * jax.random.normal(k2, (3,)),
            "w2": jax.random.normal(k3, (3, 2)), "b2": jnp.zeros(2)}
  x = jax.random.normal(k4, (8, 3))
  batch = {"x": x, "y": jnp.array([0, 1, 1, 0, 1, 0, 0, 1])}
  groups = jnp.array([0, 0, 0, 0, 0, 0, 1, 1])
  return params, batch, groups


def loss_fn(params, batch):
  hidden = jnp.tanh(batch["x"] @ params["w1"] + params["b1"])
  return hardware.per_example_cross_entropy(hidden @ params["w2"] + params["b2"], batch["y"])


@jax.jit
def _masked_hessian(params, batch, mask):
  flat, unravel = ravel_pytree(params)
  f = lambda v: jnp.sum(loss_fn(unravel(v), batch) * mask) / jnp.sum(mask)
  return jax.hessian(f)(flat)


def _hessian_eigenvalues(params, batch, mask):
  hessian = np.asarray(_masked_hessian(params, batch, mask), np.float64)
  assert hessian.shape == (20, 20)
  return np.linalg.eigh(hessian)[0]


def test_top_eigenvalue_matches_eigh():
  params, batch, _ = _tiny_problem()
  eigenvalues = _hessian_eigenvalues(params, batch, jnp.ones(8))
  f = lambda p: jnp.mean(loss_fn(p, batch))
  key = jax.random.key(1)
  lanczos, power = jax.jit(lambda p: (
      hardware.top_hessian_eigenvalue(f, p, key, num_iters=20),
      hardware.top_hessian_eigenvalue(f, p, key, 100, "power")))(params)
  np.testing.assert_allclose(lanczos, eigenvalues[-1], rtol=1e-3)
  largest_magnitude = eigenvalues[np.argmax(np.abs(eigenvalues))]
  np.testing.assert_allclose(power, largest_magnitude, rtol=1e-2)


_mean_loss_grad = jax.jit(jax.grad(lambda p, b: jnp.mean(loss_fn(p, b))))


def test_per_group_eigenvalues_and_grad_norms_match_direct_computation():
  params, batch, groups = _tiny_problem()
  eig, norms = jax.jit(lambda p: (
      hardware.per_group_top_hessian_eigenvalue(loss_fn, p, batch, groups, 3,
                                                jax.random.key(2), num_iters=20),
      hardware.per_group_grad_norms(loss_fn, p, batch, groups, 3)))(params)
  for g in range(2):
    mask = (groups == g).astype(jnp.float32)
    np.testing.assert_allclose(eig[g], _hessian_eigenvalues(params, batch, mask)[-1],
                               rtol=1e-3)
    # Independent path: slice the group's examples out and take the plain mean loss.
    sub = jax.tree.map(lambda a: a[np.asarray(groups) == g], batch)
    grads = ravel_pytree(_mean_loss_grad(params, sub))[0]
    np.testing.assert_allclose(norms[g], np.linalg.norm(grads), rtol=1e-5)
  assert np.isnan(eig[2]) and np.isnan(norms[2])  # group 2 has no examples


def test_loss_fn_must_return_per_example_losses():
  params, batch, groups = _tiny_problem()
  with pytest.raises(ValueError, match="per-example losses"):
    hardware.per_group_grad_norms(lambda p, b: jnp.mean(loss_fn(p, b)), params, batch,
                                  groups, 2)


def test_sensitivity_and_fairness_violation_by_hand():
  # Two backends x two groups: group 0 moves 0.1 -> 0.3, group 1 moves 0.5 -> 0.2.
  losses = jnp.array([[0.1, 0.5], [0.3, 0.2]])
  delta = hardware.group_sensitivity(losses)
  np.testing.assert_allclose(delta, [0.2, 0.3], rtol=1e-6)
  np.testing.assert_allclose(hardware.fairness_violation(delta), 0.1, rtol=1e-5)
  np.testing.assert_allclose(hardware.group_sensitivity(losses, "mean_abs_deviation"),
                             [0.1, 0.15], rtol=1e-6)
  # A leading seed axis is averaged after Delta: seeds give Deltas [0.2, 0.3] and [0, 0.1].
  seeds = jnp.stack([losses, jnp.array([[0.1, 0.5], [0.1, 0.4]])])
  np.testing.assert_allclose(hardware.group_sensitivity(seeds), [0.1, 0.2], rtol=1e-6)
  with pytest.raises(ValueError, match="reduce='max'.*valid"):
    hardware.group_sensitivity(losses, "max")
  with pytest.raises(ValueError, match="settings >= 2"):
    hardware.group_sensitivity(losses[:1])


def test_per_group_mean():
  values = jnp.array([1.0, 2.0, 3.0, 6.0])
  np.testing.assert_allclose(hardware.per_group_mean(values, jnp.array([0, 0, 1, 1]), 3),
                             [1.5, 4.5, np.nan])


def test_excess_loss_bound_holds_for_a_quadratic():
  # For a quadratic the second-order expansion is exact, so the bound is tight along the
  # top eigenvector with the gradient aligned, and holds for any other step.
  rng = np.random.default_rng(0)
  a = rng.normal(size=(4, 4))
  h = a @ a.T
  g = rng.normal(size=4)
  f = lambda t: g @ t + 0.5 * t @ h @ t
  lam, vecs = np.linalg.eigh(h)
  for step in [rng.normal(size=4) * 0.3 for _ in range(5)]:
    bound = hardware.excess_loss_bound(np.linalg.norm(g), lam[-1], np.linalg.norm(step))
    assert f(step) <= bound + 1e-9
  g = vecs[:, -1] * 2.0
  f = lambda t: g @ t + 0.5 * t @ h @ t
  step = vecs[:, -1] * 0.5
  np.testing.assert_allclose(f(step), hardware.excess_loss_bound(2.0, lam[-1], 0.5))


def test_boundary_alignment_penalty_by_hand():
  # Group 0 predicts confidently (gini 0), group 1 is uniform over 2 classes (gini 0.5).
  logits = jnp.array([[100.0, 0.0], [100.0, 0.0], [0.0, 0.0]])
  groups = jnp.array([0, 0, 1])
  # Mean gini 1/6; |0 - 1/6| + |0.5 - 1/6| = 0.5.
  np.testing.assert_allclose(hardware.boundary_alignment_penalty(logits, groups, 3), 0.5,
                             rtol=1e-5)
  np.testing.assert_allclose(
      hardware.boundary_alignment_penalty(logits, jnp.zeros(3, int), 1), 0.0, atol=1e-7)
  grads = jax.jit(jax.grad(hardware.boundary_alignment_penalty), static_argnums=2)(
      logits + 0.3, groups, 3)
  assert np.all(np.isfinite(grads))
  with pytest.raises(ValueError, match="proximity='margin'.*valid"):
    hardware.boundary_alignment_penalty(logits, groups, 2, proximity="margin")


def test_gradient_norm_variance_penalty():
  params, batch, groups = _tiny_problem()
  penalty_fn = lambda p: hardware.gradient_norm_variance_penalty(loss_fn, p, batch, groups, 3)
  norms, (penalty, grads) = jax.jit(lambda p: (
      hardware.per_group_grad_norms(loss_fn, p, batch, groups, 2),
      jax.value_and_grad(penalty_fn)(p)))(params)
  np.testing.assert_allclose(penalty, np.var(np.asarray(norms)), rtol=1e-4)
  assert all(np.all(np.isfinite(g)) for g in jax.tree.leaves(grads))


def _iid_regression(sizes, dim=100, shift=None):
  """Linear regression at the population minimiser w = 0: y is pure noise, so each group's
  mean gradient -mean(x * y) is noise of norm about sqrt(dim / n_a). `shift` adds a true
  gradient to one group (y += x . shift there)."""
  rng = np.random.default_rng(0)
  groups = np.repeat(np.arange(len(sizes)), sizes)
  x = rng.standard_normal((groups.size, dim)).astype(np.float32)
  y = rng.standard_normal(groups.size).astype(np.float32)
  if shift is not None:
    group, amount = shift
    y[groups == group] += x[groups == group] @ np.full(dim, amount, np.float32)
  return {"x": jnp.asarray(x), "y": jnp.asarray(y)}, groups


def _squared_error(params, batch):
  return 0.5 * (batch["x"] @ params["w"] - batch["y"]) ** 2


def test_equal_size_indices_draw_within_groups_without_replacement():
  groups = np.array([2, 0, 0, 2, 2, 0, 0, 2, 2])  # Sizes 4, 0 (empty), 5.
  idx = hardware.equal_size_indices(groups, 3, jax.random.key(0), draws=5)
  assert idx.shape == (5, 2, 4)
  for draw in idx:
    assert np.all(groups[draw[0]] == 0) and np.all(groups[draw[1]] == 2)
    assert all(len(set(row.tolist())) == 4 for row in draw)
  # Group 2 has 5 examples, so the draws are not all the same subset.
  assert len({tuple(sorted(d[1].tolist())) for d in idx}) > 1
  with pytest.raises(ValueError, match=r"size=5; need an int in 1..4"):
    hardware.equal_size_indices(groups, 3, jax.random.key(0), size=5)


def test_equal_size_grad_norms_remove_the_group_size_gap_of_iid_data():
  sizes = (50, 200, 800)
  batch, groups = _iid_regression(sizes)
  params = {"w": jnp.zeros(100)}
  raw = np.asarray(hardware.per_group_grad_norms(_squared_error, params, batch,
                                                 jnp.asarray(groups), 3))
  # Raw: norms fall like 1/sqrt(n) (sqrt(800/50) = 4 between the extremes).
  assert raw[0] > raw[1] > raw[2] and raw[0] / raw[2] > 3
  equal = hardware.per_group_grad_norms_equal_size(_squared_error, params, batch, groups,
                                                   3, jax.random.key(0), draws=16)
  assert equal.size == 50 and equal.values.shape == (16, 3)
  assert equal.mean.max() / equal.mean.min() < 1.15
  # Draw 0 against numpy: ||X_a^T (X_a w - y_a)|| / n on the drawn indices.
  idx = hardware.equal_size_indices(groups, 3, jax.random.key(0), draws=16)[0]
  x, y = np.asarray(batch["x"], np.float64), np.asarray(batch["y"], np.float64)
  expected = [np.linalg.norm(x[i].T @ (-y[i])) / len(i) for i in idx]
  np.testing.assert_allclose(equal.values[0], expected, rtol=1e-4)
  # The smallest group is used whole in every draw (only the summation order changes);
  # larger ones vary between draws.
  assert equal.std[0] < 1e-5 * equal.mean[0] and equal.std[2] > 0.01 * equal.mean[2]


def test_equal_size_grad_norms_keep_a_real_gap():
  # The largest group has a true gradient: at equal size it stands out, which the raw
  # norms (its noise part shrunk by its size) understate.
  batch, groups = _iid_regression((50, 200, 800), shift=(2, 0.15))
  params = {"w": jnp.zeros(100)}
  raw = np.asarray(hardware.per_group_grad_norms(_squared_error, params, batch,
                                                 jnp.asarray(groups), 3))
  equal = hardware.per_group_grad_norms_equal_size(_squared_error, params, batch, groups,
                                                   3, jax.random.key(0), draws=16)
  assert int(np.argmax(equal.mean)) == 2
  assert equal.mean[2] / equal.mean[:2].max() > 1.5
  assert raw[2] / raw[:2].max() < equal.mean[2] / equal.mean[:2].max()


def test_group_column_and_penalty_fn():
  assert hardware.group_column(["age", "subgroup"], "subgroup") == 1
  with pytest.raises(ValueError, match=r"group_attribute='sex' is not in .*\['age'\]"):
    hardware.group_column(["age"], "sex")
  logits = jnp.array([[2.0, 0.0], [0.0, 0.0], [1.0, 1.0], [3.0, -1.0]])
  groups = jnp.array([[9, 0], [9, 0], [9, 1], [9, 1]])  # Column 1 is the group.
  loss = hardware.penalty_fn(2.5, 1, 2, "gini")
  expected = 2.5 * hardware.boundary_alignment_penalty(logits, groups[:, 1], 2, "gini")
  assert float(loss(logits, None, groups)) == pytest.approx(float(expected))
  # By hand: gini = 1 - sum p^2 per example; group means vs the overall mean.
  p = np.asarray(jax.nn.softmax(logits))
  d = 1 - (p ** 2).sum(-1)
  by_hand = abs(d[:2].mean() - d.mean()) + abs(d[2:].mean() - d.mean())
  assert float(expected) == pytest.approx(2.5 * by_hand, rel=1e-5)
  with pytest.raises(ValueError, match="proximity='far'"):
    hardware.penalty_fn(1.0, 0, 2, "far")
