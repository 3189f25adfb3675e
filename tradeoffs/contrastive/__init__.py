"""Supervised contrastive learning (Khosla et al. 2020): the SupCon loss over a multi-view
batch, as the trainer's per-example loss, and per-parameter learning rates held in the
optimizer state, so end-to-end training and linear evaluation on a frozen encoder are one
compiled step.

    step = StepConfig(batch_size=64, views=2, loss_fn=contrastive.SupConLoss(0.5))
    tx = contrastive.leaf_rates(optax.adam(1.0), learning_rate=1e-3)
    probe = contrastive.with_rates(opt_state, lambda name: 1e-2 if "head" in name else 0.0)
"""

from tradeoffs.contrastive.rates import LeafRatesState
from tradeoffs.contrastive.rates import leaf_rates
from tradeoffs.contrastive.rates import with_rates
from tradeoffs.contrastive.supcon import SupConLoss
from tradeoffs.contrastive.supcon import check_temperature
from tradeoffs.contrastive.supcon import supcon_loss

__all__ = ["LeafRatesState", "SupConLoss", "check_temperature", "leaf_rates", "supcon_loss",
           "with_rates"]
