"""A shared-trunk multi-head MLP for multi-task learning (`multitask_mlp`).

    net = models.get("multitask_mlp", num_classes=2, num_tasks=2, trunk=(64,), towers=(32,))
    logits = net.apply(variables, x)          # [B, num_tasks, num_classes]

The input (images [B, H, W, C] or tabular features [B, D]) is flattened; a trunk of
[Dense -> activation] layers is shared by every task; each task t has its own tower of
[Dense -> activation] layers and a Dense head of `num_classes` outputs. Every task has the
same number of classes (the MTA-F tasks are all binary), so the logits are one array
[B, T, C] rather than a list; task t's logits are `logits[:, t]`.

Parameter names make the split between shared and task-exclusive parameters a matter of
the top-level key (what MTA-F routes gradients by, `tradeoffs.fairness.multitask`):
`trunk_{i}` are shared, `task{t}_tower_{j}` and `task{t}_head` belong to task t.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from tradeoffs.models import layers
from tradeoffs.models.registry import register

TRUNK_PREFIX = "trunk_"


def task_prefix(task: int) -> str:
  """The top-level parameter-name prefix of task `task`'s tower and head."""
  return f"task{int(task)}_"


@register("multitask_mlp")
class MultiTaskMLP(nn.Module):
  """Flatten -> shared trunk -> per-task tower -> per-task head; logits [B, T, C]."""
  num_classes: int
  num_tasks: int = 2
  trunk: Sequence[int] = (64,)
  towers: Sequence[int] = (32,)
  activation: str = "relu"
  width_multiplier: float = 1.0
  dtype: Any = jnp.float32

  def __post_init__(self):
    layers.check_common(self)
    layers.check_positive_int("num_tasks", self.num_tasks)
    layers.check_widths("trunk", self.trunk)
    layers.check_widths("towers", self.towers)
    object.__setattr__(self, "trunk", tuple(self.trunk))
    object.__setattr__(self, "towers", tuple(self.towers))
    super().__post_init__()

  @nn.compact
  def __call__(self, inputs: jax.Array, train: bool = False) -> jax.Array:
    del train  # No batch norm or dropout: the step is the same in training and evaluation.
    act = layers.make_activation(self.activation)
    x = inputs.reshape((inputs.shape[0], -1)).astype(self.dtype)
    for i, width in enumerate(self.trunk):
      x = act(nn.Dense(layers.scale_width(width, self.width_multiplier), dtype=self.dtype,
                       name=f"{TRUNK_PREFIX}{i}")(x))
    outputs = []
    for t in range(self.num_tasks):
      h = x
      for j, width in enumerate(self.towers):
        h = act(nn.Dense(layers.scale_width(width, self.width_multiplier), dtype=self.dtype,
                         name=f"{task_prefix(t)}tower_{j}")(h))
      outputs.append(nn.Dense(self.num_classes, dtype=self.dtype,
                              name=f"{task_prefix(t)}head")(h))
    return layers.to_logits(jnp.stack(outputs, axis=1))
