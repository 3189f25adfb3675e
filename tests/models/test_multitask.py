"""multitask_mlp: closed-form parameter count, logits [B, T, C], shared vs task parameters."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoffs import models


def dense(fan_in, fan_out):
  return fan_in * fan_out + fan_out


def closed_form(inputs, trunk, towers, tasks, classes):
  count, width = 0, inputs
  for w in trunk:
    count, width = count + dense(width, w), w
  tower, t_width = 0, width
  for w in towers:
    tower, t_width = tower + dense(t_width, w), w
  return count + tasks * (tower + dense(t_width, classes))


@pytest.mark.parametrize("trunk,towers,tasks,classes", [
    ((64,), (32,), 2, 2), ((8, 5), (), 3, 1), ((), (4,), 2, 3)])
def test_param_count_closed_form(trunk, towers, tasks, classes):
  net = models.get("multitask_mlp", num_classes=classes, num_tasks=tasks, trunk=trunk,
                   towers=towers)
  params = models.abstract_init(net, (2, 8, 8, 1))["params"]
  assert models.param_count(params) == closed_form(64, trunk, towers, tasks, classes)
  # Shared and task-exclusive parameters by name.
  assert {k for k in params if k.startswith("trunk_")} == {f"trunk_{i}"
                                                           for i in range(len(trunk))}
  for t in range(tasks):
    assert f"task{t}_head" in params


def test_logits_shape_and_tasks_are_independent_heads():
  net = models.get("multitask_mlp", num_classes=2, num_tasks=3, trunk=(5,), towers=(4,))
  x = jax.random.normal(jax.random.key(0), (6, 11))  # Tabular input [B, D].
  variables = net.init(jax.random.key(1), x)
  logits = net.apply(variables, x)
  assert logits.shape == (6, 3, 2) and logits.dtype == jnp.float32
  # Task 1's logits equal its own tower and head on the trunk's features, by hand.
  p = variables["params"]
  relu = lambda z: np.maximum(z, 0)  # noqa: E731
  h = relu(np.asarray(x) @ p["trunk_0"]["kernel"] + p["trunk_0"]["bias"])
  h1 = relu(h @ p["task1_tower_0"]["kernel"] + p["task1_tower_0"]["bias"])
  expected = h1 @ p["task1_head"]["kernel"] + p["task1_head"]["bias"]
  np.testing.assert_allclose(logits[:, 1], expected, rtol=1e-5, atol=1e-6)


def test_bad_hyperparameters_raise():
  with pytest.raises(ValueError, match="num_tasks"):
    models.get("multitask_mlp", num_classes=2, num_tasks=0)
  with pytest.raises(ValueError, match="towers"):
    models.get("multitask_mlp", num_classes=2, towers=(0,))
