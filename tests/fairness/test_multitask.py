"""MTA-F: fairness losses on negatives against numpy, the head/trunk gradient routing on a
tiny model against hand-computed gradients, ARFG/ARE by hand, and the vmapped population."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tradeoffs import models
from tradeoffs.fairness import multitask as mt

SCORES = np.array([0.9, 0.2, 0.4, 0.7, 0.1, 0.6, 0.3, 0.8], np.float32)
GROUPS = np.array([1, 1, 0, 0, 1, 0, 1, 0])
WEIGHTS = np.array([1, 1, 1, 0, 1, 1, 0, 1], np.float32)  # e.g. the negatives


def np_mmd(a, b, l=0.1):
  k = lambda x, y: np.exp(-(x[:, None] - y[None, :]) ** 2 / l**2)  # noqa: E731
  return k(a, a).mean() - 2 * k(a, b).mean() + k(b, b).mean()


def test_losses_on_weighted_negatives_against_numpy():
  sel = WEIGHTS > 0
  a, b = SCORES[sel & (GROUPS == 1)], SCORES[sel & (GROUPS == 0)]
  np.testing.assert_allclose(mt.mmd_loss(SCORES, GROUPS, WEIGHTS), np_mmd(a, b), rtol=1e-5)
  np.testing.assert_allclose(mt.mmd_loss(SCORES, GROUPS, WEIGHTS, bandwidth=0.5),
                             np_mmd(a, b, 0.5), rtol=1e-5)
  np.testing.assert_allclose(mt.fpr_gap_loss(SCORES, GROUPS, WEIGHTS),
                             abs(a.mean() - b.mean()), rtol=1e-5)
  corr = np.corrcoef(SCORES[sel], GROUPS[sel])[0, 1]
  np.testing.assert_allclose(mt.correlation_loss(SCORES, GROUPS, WEIGHTS), abs(corr),
                             rtol=1e-4)
  # A group with no selected example: every loss is 0 (not NaN, not a one-sided pull).
  only_one = WEIGHTS * (GROUPS == 1)
  for name, fn in mt.FAIRNESS_LOSSES.items():
    assert float(fn(SCORES, GROUPS, only_one)) == 0.0, name
    assert np.isfinite(jax.grad(lambda s: fn(s, GROUPS, only_one))(SCORES)).all(), name  # noqa: B023


def test_negative_and_exclusive_masks():
  labels = np.array([[0, 1], [0, 0], [1, 0], [1, 1]])
  np.testing.assert_array_equal(mt.negatives(labels), [[1, 0], [1, 1], [0, 1], [0, 0]])
  # Exclusive t-negatives: negative for t, positive for the other task.
  np.testing.assert_array_equal(mt.exclusive_negatives(labels), [[1, 0], [0, 0], [0, 1],
                                                                 [0, 0]])
  three = np.array([[0, 1, 1], [0, 1, 0], [1, 1, 0]])
  np.testing.assert_array_equal(mt.exclusive_negatives(three), [[1, 0, 0], [0, 0, 0],
                                                                [0, 0, 1]])


# A tiny two-task model: z_t = b_t · a · x (one logit per task), params by top-level name.
X = np.array([0.5, -1.0, 1.5, 2.0, -0.5, 1.0, 0.3, -2.0], np.float32)
LABELS = np.array([[0, 1], [0, 0], [1, 0], [0, 1], [0, 1], [1, 0], [1, 0], [1, 1]])
PARAMS = {"trunk_0": jnp.float32(0.7), "task0_head": jnp.float32(1.3),
          "task1_head": jnp.float32(-0.8)}


def tiny_apply(params, x):
  h = params["trunk_0"] * x
  return jnp.stack([params["task0_head"] * h, params["task1_head"] * h], axis=1)[..., None]


def fpr_gap_ds(s, g, mask):
  """d |mean_{g1} s − mean_{g0} s| / d s over the masked examples."""
  n1, n0 = (mask * (g == 1)).sum(), (mask * (g == 0)).sum()
  gap = (s * mask * (g == 1)).sum() / n1 - (s * mask * (g == 0)).sum() / n0
  return np.sign(gap) * mask * ((g == 1) / n1 - (g == 0) / n0)


def hand_grads(params, lam, head_lambda, w, routing):
  a = float(params["trunk_0"])
  b = [float(params["task0_head"]), float(params["task1_head"])]
  grads = {"trunk_0": 0.0}
  for t in range(2):
    y = LABELS[:, t]
    other = LABELS[:, 1 - t]
    s = 1 / (1 + np.exp(-b[t] * a * X))
    dce = (s - y) / len(X)                     # d mean BCE / d z
    full = fpr_gap_ds(s, GROUPS, (y == 0).astype(float)) * s * (1 - s)
    excl = head_lambda * fpr_gap_ds(s, GROUPS, ((y == 0) & (other == 1)).astype(float)) \
        * s * (1 - s)
    if routing == "mtaf":
      dz_head = w[t] * (dce + lam[t] * excl)
      dz_trunk = w[t] * (dce + lam[t] * (full - excl))
    else:
      dz_head = dz_trunk = w[t] * (dce + lam[t] * full)
    grads[f"task{t}_head"] = float(np.sum(dz_head * a * X))
    grads["trunk_0"] += float(np.sum(dz_trunk * b[t] * X))
  return grads


@pytest.mark.parametrize("routing", ["mtaf", "baseline"])
def test_routing_matches_hand_computed_gradients(routing):
  objective = mt.Objective(loss="fpr_gap", lam=(2.0, 0.5), head_lambda=0.7,
                           task_weights=(0.6, 0.4), routing=routing)
  grads, terms = mt.routed_grads(tiny_apply, PARAMS, X, LABELS, GROUPS, objective)
  expected = hand_grads(PARAMS, (2.0, 0.5), 0.7, (0.6, 0.4), routing)
  for name in PARAMS:
    np.testing.assert_allclose(grads[name], expected[name], rtol=1e-4, atol=1e-7,
                               err_msg=name)
  assert terms["full"].shape == terms["exclusive"].shape == (2,)


def test_mtaf_trunk_gradient_excludes_the_exclusive_terms():
  """With λ_head = 1 the trunk under MTA-F sees F(all negatives) − F(exclusive ones); with
  λ_head = 0 it sees everything, like the baseline, while the heads see no fairness term."""
  base = mt.Objective(loss="mmd", lam=1.5, routing="baseline")
  zero_head = mt.Objective(loss="mmd", lam=1.5, head_lambda=0.0, routing="mtaf")
  g_base, _ = mt.routed_grads(tiny_apply, PARAMS, X, LABELS, GROUPS, base)
  g_zero, _ = mt.routed_grads(tiny_apply, PARAMS, X, LABELS, GROUPS, zero_head)
  np.testing.assert_allclose(g_zero["trunk_0"], g_base["trunk_0"], rtol=1e-5)
  plain, _ = mt.routed_grads(tiny_apply, PARAMS, X, LABELS, GROUPS, mt.Objective())
  for head in ("task0_head", "task1_head"):
    np.testing.assert_allclose(g_zero[head], plain[head], rtol=1e-5)
    assert abs(float(g_base[head] - plain[head])) > 1e-6  # the fairness term does move them


def test_objective_validation():
  with pytest.raises(ValueError, match="lam"):
    mt.Objective(loss="mmd", lam=-1.0)
  with pytest.raises(ValueError, match="loss"):
    mt.Objective(loss="kl")
  with pytest.raises(ValueError, match="task_weights"):
    mt.Objective(task_weights=(0.7, 0.7))


def test_arfg_are_and_pareto_by_hand():
  np.testing.assert_allclose(mt.arfg([[0.1, 0.2], [0.2, 0.4]], [0.2, 0.4]), [0.5, 1.0])
  np.testing.assert_allclose(mt.are([[0.3, 0.1]], [0.2, 0.2]), [1.0])
  with pytest.raises(ValueError, match="> 0"):
    mt.arfg([[0.1, 0.1]], [0.0, 0.1])
  # A baseline gap of 0 is floored at the resolution: (0.1/0.05 + 0.1/0.1) / 2.
  np.testing.assert_allclose(mt.arfg([[0.1, 0.1]], [0.0, 0.1], [0.05, 0.05]), [1.5])
  labels = np.array([[0, 1], [0, 0], [0, 0], [1, 0], [0, 1]])
  groups = np.array([1, 0, 0, 1, 0])
  # Task 0 negatives: group 1 has 1, group 0 has 3 -> 1/1; task 1: group 1 has 1 -> 1.
  np.testing.assert_allclose(mt.gap_resolution(labels, groups), [1.0, 1.0])
  np.testing.assert_allclose(mt.gap_resolution(labels, 1 - groups), [1 / 1, 1 / 1])
  np.testing.assert_allclose(mt.gap_resolution(np.zeros((4, 1)), np.array([0, 0, 1, 1])),
                             [0.5])
  assert mt.pareto_front([(1.0, 1.0), (0.9, 1.2), (1.1, 0.5), (1.2, 0.6), (1.0, 1.1)]) == [
      1, 0, 2]


def test_task_metrics_threshold_at_positive_rate():
  scores = np.array([[[0.9], [0.8], [0.3], [0.6], [0.1], [0.2]]])  # [1, 6, 1]
  labels = np.array([[1], [0], [0], [1], [0], [0]])
  groups = np.array([1, 1, 1, 0, 0, 0])
  # Positive rate 0.3: threshold sorted[int(0.7·6)] = sorted[4] = 0.8 -> predict 0.9, 0.8.
  m = mt.task_metrics(scores, labels, groups, [0.3])
  np.testing.assert_allclose(m["error"], [[2 / 6]])   # 0.8 is a false positive, 0.6 missed
  np.testing.assert_allclose(m["fpr_gap"], [[0.5 - 0.0]])  # group 1: 1 FP of 2 negatives


def test_population_is_the_members_run_alone_and_learns():
  rng = np.random.default_rng(0)
  inputs = rng.normal(size=(64, 5)).astype(np.float32)
  labels = np.stack([(inputs[:, 0] > 0), (inputs[:, 1] + inputs[:, 0] > 0)], 1).astype(
      np.int32)
  data = mt.TaskData(inputs, labels, (inputs[:, 2] > 0).astype(np.int32))
  net = models.get("multitask_mlp", num_classes=2, trunk=(8,), towers=(4,))
  init_fn = lambda k, x: net.init(k, x)["params"]  # noqa: E731
  apply_fn = lambda p, x: net.apply({"params": p}, x)  # noqa: E731
  keys = jnp.stack([jax.random.key_data(jax.random.key(s)) for s in (3, 4)])
  objective = mt.Objective(loss="mmd", lam=0.5, routing="mtaf")
  kwargs = dict(steps=60, batch_size=16)
  pop = mt.train_population(init_fn, apply_fn, optax.adam(0.05), objective, data,
                            init_keys=keys, data_keys=keys, **kwargs)
  alone = mt.train_population(init_fn, apply_fn, optax.adam(0.05), objective, data,
                              init_keys=keys[1:], data_keys=keys[1:], **kwargs)
  for a, b in zip(jax.tree.leaves(pop.params), jax.tree.leaves(alone.params)):
    np.testing.assert_allclose(a[1], b[0], rtol=1e-3, atol=1e-3)  # float drift over 60 steps
  ce = np.asarray(pop.metrics["cross_entropy"])  # [members, steps, T]
  assert ce.shape == (2, 60, 2) and (ce[:, -10:].mean() < 0.5 * ce[:, :5].mean())
  scores = mt.predict_scores(apply_fn, pop.params, inputs)
  assert scores.shape == (2, 64, 2)
  errors = mt.task_metrics(scores, labels, data.groups, labels.mean(0))["error"]
  assert errors.max() < 0.2


def test_trunk_prefix_agrees_with_the_model():
  from tradeoffs.models import multitask as model_lib
  assert mt.TRUNK_PREFIX == model_lib.TRUNK_PREFIX
