"""Supervised contrastive learning (Khosla et al. 2020): the SupCon loss over a multi-view
batch, as the trainer's per-example loss, and the frozen-encoder optimizer of linear
evaluation.

    step = StepConfig(batch_size=64, views=2, loss_fn=contrastive.SupConLoss(views=2))
    tx = contrastive.linear_probe(optax.adam(1e-2), trainable=("head",))
"""

from tradeoffs.contrastive.supcon import SupConLoss
from tradeoffs.contrastive.supcon import check_temperature
from tradeoffs.contrastive.supcon import linear_probe
from tradeoffs.contrastive.supcon import supcon_loss

__all__ = ["SupConLoss", "check_temperature", "linear_probe", "supcon_loss"]
