r"""Compression bias (Hooker et al. 2019/2020): who pays when a population is compressed.

    python -m experiments.compression_bias --workdir=workdirs/compression_bias

Default (offline, digits_groups, the under-represented subgroup is rotated 90°, ~12%): an
MLP 64-128-128-10, 30 members per population (Adam 1e-3, batch 128, 600 steps ≈ 53
epochs; a small MLP and few steps so the whole study fits a laptop), variants:
dense; gradual magnitude pruning (Zhu & Gupta, steps 100→400 every 25) and one-shot
global magnitude pruning of the dense population + 100 fine-tune steps with masks fixed,
each at sparsity 0.3/0.5/0.7/0.9; int8 and int4 per-channel post-training quantization
of the dense population. 11 variants × 30 members.
Runtime: 2 min of CPU time; 8 min wall measured on a shared 2-core machine (load ~12).
Measured (seeds 0..29): dense top-1 0.972; gmp/oneshot 0.3-0.7 within 0.3 pp with 0-4
CIEs; gmp_0.9 0.945 (11 CIEs), oneshot_0.9 0.894 (13 CIEs); int8 0.972, int4 0.969 (0
CIEs). At 0.9 sparsity the rotated subgroup lost 10.4 (gmp) / 24.7 (oneshot) points vs
1.6 / 5.5 for the rest (Welch p < 1e-10); below 0.9 and for PTQ no significant
difference. The report states whichever answer a run gives.

`:smoke` — 4 members, 60 steps, sparsities 0.5/0.9, int8/int4: ~35 s of CPU time (mostly
compilation; 7 variants).
`:cifar10` — ResNet-20, CIFAR-10 (prepare: python -m tradeoffs.data.prepare
--datasets=cifar10), 30 members × 64k steps at batch 128, GMP 4k→40k every 1k, one-shot
+ 6k fine-tune steps; an accelerator job (hours). No group attributes: per-class costs.
`:celeb_a` — ResNet-18 on CelebA, label Blond_Hair, groups Male × Young (prepare:
--datasets=celeb_a), sparsities 0.9/0.95 and int8 as in Hooker et al. 2020; accelerator.
Args: `:members=8`, `:smoke,members=2`.
"""

from __future__ import annotations

import ml_collections

from experiments.configs import cifar10_resnet20
from experiments.configs import common


def get_config(arg=None):
  args = common.parse_arg(arg, variants=("smoke", "cifar10", "celeb_a"), members=0)
  c = common.base_config()
  c.dataset.name = "digits_groups"
  c.model.name = "mlp"
  c.model.kwargs.hidden = (128, 128)
  c.population.members = 30
  c.train.update(dict(steps=600, batch_size=128, steps_per_dispatch=100, log_every=100,
                      checkpoint_every=300, eval_every=300))
  c.compression = ml_collections.ConfigDict(dict(
      methods=("gradual", "one_shot"),
      sparsities=(0.3, 0.5, 0.7, 0.9),
      distribution="global",  # or 'uniform', 'erk', or {layer substring: sparsity}
      gradual=ml_collections.ConfigDict(dict(begin_step=100, end_step=400, frequency=25,
                                             initial_sparsity=0.0)),
      one_shot=ml_collections.ConfigDict(dict(finetune_steps=100,
                                              learning_rate=0.0)),  # 0: optimizer's
      quantization_bits=(8, 4),
      granularity="per_channel",
  ))
  c.analysis = ml_collections.ConfigDict(dict(
      taxicab_fraction=0.05,  # taxicab top-k = this fraction of the test set
      alpha=0.05,  # per-class and group-disparity t-tests
      ttest_normalize="model",  # 'model' | 'population' (gen_tstatistic.py) | 'none'
      underrepresented_group="",  # '' = smallest group in the test set, or e.g. 'subgroup=1'
      audit_variant="",  # '' = most compressed variant
      audit_max_images=64,
  ))
  c.efficiency = ml_collections.ConfigDict(dict(repeats=20, time_it=True))
  c.eval.save_params = True  # final_params/<variant>.npz for trained variants

  if args.variant == "smoke":
    common.smoke(c, steps=60)
    c.population.members = 4
    c.model.kwargs.hidden = (64,)
    c.train.eval_every = 60
    c.train.checkpoint_every = 30
    c.compression.sparsities = (0.5, 0.9)
    c.compression.gradual.update(dict(begin_step=10, end_step=40, frequency=10))
    c.compression.one_shot.finetune_steps = 20
    c.efficiency.repeats = 3
    c.analysis.audit_max_images = 16
  elif args.variant == "cifar10":
    recipe = cifar10_resnet20.get_config()  # The standard ResNet-20 CIFAR-10 training.
    for section in ("dataset", "model", "optimizer", "augment", "train"):
      c[section] = recipe[section]
    c.compression.gradual.update(dict(begin_step=4000, end_step=40000, frequency=1000))
    c.compression.one_shot.update(dict(finetune_steps=6000, learning_rate=0.01))
  elif args.variant == "celeb_a":
    c.dataset.name = "celeb_a"
    c.dataset.label_attribute = "Blond_Hair"
    c.dataset.group_attributes = ("Male", "Young")
    c.model.name = "resnet18"
    c.model.kwargs = ml_collections.ConfigDict()
    c.optimizer.update(dict(name="sgd", learning_rate=0.1, momentum=0.9, nesterov=True,
                            weight_decay=1e-4, schedule="warmup_cosine", warmup_steps=500))
    c.augment.names = ("flip",)
    c.train.update(dict(steps=20000, batch_size=128, steps_per_dispatch=100, log_every=500,
                        checkpoint_every=2000, eval_every=5000))
    c.compression.sparsities = (0.9, 0.95)
    c.compression.gradual.update(dict(begin_step=2000, end_step=14000, frequency=500))
    c.compression.one_shot.update(dict(finetune_steps=3000, learning_rate=0.01))
    c.compression.quantization_bits = (8,)
  if args.members:
    c.population.members = args.members
  return c
