"""Differential privacy and its accuracy cost: DP-SGD, privacy accounting, output
perturbation mechanisms and noisy exposure notification.

    from tradeoffs import privacy
    tx = privacy.dp_sgd(clip_norm=1.0, noise_multiplier=1.1, seed=0, inner=optax.sgd(0.1))
    eps = privacy.dp_sgd_epsilon(1.1, sample_rate=256 / 60000, steps=14063, delta=1e-5)
    release = privacy.exposure.notify(privacy.exposure.simulate(0), "laplace", epsilon=2.0)

Pure functions of arrays and pytrees (JAX for DP-SGD, numpy for the mechanisms and the
contact process); no Flax, no trainer: the trainer hands DP-SGD per-example gradients
through a step extension (`tradeoffs.train.extensions.StepExtension(per_example_grads=True)`).
"""

from tradeoffs.privacy import accounting
from tradeoffs.privacy import exposure
from tradeoffs.privacy import mechanisms
from tradeoffs.privacy.accounting import dp_sgd_epsilon
from tradeoffs.privacy.dp_sgd import DpSgdState
from tradeoffs.privacy.dp_sgd import check_clip_norm
from tradeoffs.privacy.dp_sgd import clip_per_example
from tradeoffs.privacy.dp_sgd import dp_aggregate
from tradeoffs.privacy.dp_sgd import dp_sgd
from tradeoffs.privacy.dp_sgd import noise_key
from tradeoffs.privacy.dp_sgd import noise_seeds
from tradeoffs.privacy.dp_sgd import per_example_norms
from tradeoffs.privacy.dp_sgd import with_noise_seeds
