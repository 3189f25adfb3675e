"""Knowledge distillation and worst-class robust objectives (Wang et al., 2022/UAI 2023).

    from tradeoffs import distill
    per_example = distill.kd_loss(student_logits, teacher_logits, labels, temperature=4.0)
    priors = distill.class_priors(train_labels, 10)
    lam = distill.eg_update(lam, per_class_validation_error, step=1.0)
    target = distill.target_weights("robust", priors, lam, alpha=0.5)
    w = distill.example_weights(target, priors)[train_labels]

Pure functions (jax.numpy for the losses inside a training step, numpy for the class
weights); see `tradeoffs.distill.kd` and `tradeoffs.distill.robust` for the formulation.
"""

from tradeoffs.distill.kd import check_temperature
from tradeoffs.distill.kd import distillation_kl
from tradeoffs.distill.kd import kd_loss
from tradeoffs.distill.robust import OBJECTIVES
from tradeoffs.distill.robust import check_alpha
from tradeoffs.distill.robust import check_objective
from tradeoffs.distill.robust import class_priors
from tradeoffs.distill.robust import eg_update
from tradeoffs.distill.robust import example_weights
from tradeoffs.distill.robust import per_class_error
from tradeoffs.distill.robust import target_weights
from tradeoffs.distill.robust import uniform
