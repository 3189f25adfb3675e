r"""Compression bias (Hooker et al. 2019/2020): who pays when a population is compressed.

    python -m experiments.compression_bias --workdir=workdirs/compression_bias

Default (offline, digits_groups: the under-represented subgroup, ~12% of every class, is
rotated 90°): an MLP 64-128-128-10, 30 members per population (Adam 1e-3, batch 128, 600
steps ≈ 53 epochs; small so the whole study fits a laptop). Variants:
  * dense;
  * gmp_<s>: gradual magnitude pruning from scratch (Zhu & Gupta, steps 100→400 every 25),
    LAYER-WISE (`study.gradual.distribution='uniform'`: every prunable layer pruned to s by
    its own threshold, as TF model-pruning; 'global' ranks all weights together);
  * oneshot_<s>: one-shot GLOBAL magnitude pruning of the trained dense members
    (`study.one_shot.distribution='global'`) + 100 fine-tune steps with the masks fixed;
    each at sparsity s = 0.3/0.5/0.7/0.9;
  * int8, int4: per-channel post-training fake quantization of the dense members.
11 variants × 30 members. Every figure says which distribution each method used.
Runtime (measured after the port, fresh process, compilation included): 4 min 32 s wall,
1 min 56 s of CPU, on 2 shared cores (load average ~7).
Measured (seeds 0..29; intervals are 95% t intervals over members, p-values Holm-corrected
within each report section): dense top-1 97.2% [97.0, 97.4]; pruning to 0.3–0.7 and int8/
int4 within 0.4 pt of dense with 0–4 CIEs (noise floor p95 ~2); gmp_0.9 92.7% [92.3, 93.1]
(13 CIEs), oneshot_0.9 89.4% [88.5, 90.2] (11 CIEs). At 0.9 the rotated subgroup lost 16.6
pt [14.3, 18.8] (gmp) / 24.7 [21.6, 27.8] (oneshot) vs 2.9 [2.4, 3.4] / 5.5 [4.7, 6.3] for
the rest: excess drop 13.7 pt [11.3, 16.2] (Welch) / 19.2 [16.2, 22.2] (paired), Holm p
8e-13 each; below 0.9 and for int8/int4 no detectable difference. Before the port (global
gradual pruning, modal ties to the smallest label) gmp_0.9 was 94.5% with a 10.4 pt drop.
Weight bytes (the recipes' one definition): int8 27,984 B = 25,856 codes + 1,064 float32
scales + 1,064 biases (before the port the study counted no scales: 26,920 B).
The report states whichever answer a run gives.

`:smoke` — 4 members, 60 steps, MLP 64-64-10, sparsity 0.9 per method, int8/int4 (5
variants; used by tests; 57 s wall / 30 s CPU on 2 shared cores at load ~7, mostly compilation).
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
  c.study = ml_collections.ConfigDict(dict(
      methods=("gradual", "one_shot"),
      sparsities=(0.3, 0.5, 0.7, 0.9),
      # Gradual pruning from scratch; distribution 'uniform' = layer-wise (TF
      # model-pruning), 'global', 'erk', or {layer substring: sparsity}.
      gradual=ml_collections.ConfigDict(dict(begin_step=100, end_step=400, frequency=25,
                                             initial_sparsity=0.0, distribution="uniform")),
      # One-shot pruning of the trained dense members, then a fine-tune with masks fixed;
      # learning_rate 0 = the optimizer's.
      one_shot=ml_collections.ConfigDict(dict(finetune_steps=100, learning_rate=0.0,
                                              distribution="global")),
      bits=(8, 4),
      granularity="per_channel",
      taxicab_fraction=0.05,  # taxicab top-k = this fraction of the test set
      ttest_normalize="model",  # 'model' | 'population' (gen_tstatistic.py) | 'none'
      underrepresented_group="",  # '' = smallest group in the test set, or 'subgroup=1'
      floor_margin=0.05,  # a group within this of chance under dense is not tested
      audit_variant="",  # '' = the most compressed variant
      audit_max_images=64,
  ))
  c.efficiency = ml_collections.ConfigDict(dict(latency_repeats=20, time_latency=True,
                                                measure_batch=64))
  c.report = ml_collections.ConfigDict(dict(
      title="", axes=("efficiency.nonzero_params", "efficiency.weight_bytes"), metrics=(),
      reference="dense"))

  if args.variant == "smoke":
    common.smoke(c, steps=60)
    c.population.members = 4
    c.model.kwargs.hidden = (64,)
    c.train.eval_every = 60
    c.train.checkpoint_every = 30
    c.study.sparsities = (0.9,)
    c.study.gradual.update(dict(begin_step=10, end_step=40, frequency=10))
    c.study.one_shot.finetune_steps = 20
    c.study.audit_max_images = 16
    c.efficiency.update(dict(latency_repeats=3, measure_batch=8))
  elif args.variant == "cifar10":
    recipe = cifar10_resnet20.get_config()  # The standard ResNet-20 CIFAR-10 training.
    for section in ("dataset", "model", "optimizer", "augment", "train"):
      c[section] = recipe[section]
    c.study.gradual.update(dict(begin_step=4000, end_step=40000, frequency=1000))
    c.study.one_shot.update(dict(finetune_steps=6000, learning_rate=0.01))
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
    c.study.sparsities = (0.9, 0.95)
    c.study.gradual.update(dict(begin_step=2000, end_step=14000, frequency=500))
    c.study.one_shot.update(dict(finetune_steps=3000, learning_rate=0.01))
    c.study.bits = (8,)
  if args.members:
    c.population.members = args.members
  return c
