"""Divided ensembles (Divide and Co-training): dividing a wide network into S members,
co-training losses and multi-view batches, combining members, concurrent inference.

No Flax and no models here: members are a stacked pytree [S, ...] and apply functions are
plain callables, so any JAX framework's models fit; dividing works on width numbers and the
model facts the caller passes (`models.division_info`).
"""

from __future__ import annotations

from tradeoffs.ensembles.combine import (COMBINERS, combine, geometric_mean_probs, get_combiner,
                                         max_logits, max_probs, mean_logits, mean_probs)
from tradeoffs.ensembles.concurrent import (CONCURRENCY_METHODS, MEMBER_LOOPS, MEMBERS_AXIS,
                                            concurrent_apply,
                                            concurrent_apply_fn, members_mesh,
                                            sequential_apply_fn, shard_members, unstack_members)
from tradeoffs.ensembles.divide import (CIFAR_RESNET_WIDTHS, FAMILIES, IMAGENET_RESNET_WIDTHS,
                                        WEIGHT_DECAY_RULES, WIDE_IMAGENET_WIDTHS,
                                        WIDTH_RULE_NAMES, WIDTH_RULES, Division, ModelSpec,
                                        check_num_members, count_init_params,
                                        count_params, divide,
                                        divide_dropout, divide_spec, divide_weight_decay,
                                        divide_widths, sqrt_width,
                                        table_width, weight_decay_mask, wrn_widen_factor)
from tradeoffs.ensembles.losses import (COTRAINING_LOSSES, cotraining_objective,
                                        cotraining_schedule, cotraining_weight, cross_entropy,
                                        get_cotraining_loss, js_divergence, member_keys,
                                        multi_view, pairwise_kl, register_cotraining_loss)
from tradeoffs.ensembles.grouped import (cotraining_coupling, ensemble_logits, make_coupling_fn,
                                         member_diversity)
