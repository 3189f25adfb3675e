r"""ResNet-20 (He et al. 2016) on CIFAR-10: SGD+Nesterov 0.1, cosine, wd 1e-4, crop+flip.

    python -m experiments.train --config=experiments/configs/cifar10_resnet20.py \
        --workdir=workdirs/cifar10_resnet20

Prepare the data once: python -m tradeoffs.data.prepare --datasets=cifar10.
4 members x 64k steps at batch 128 (~164 epochs); roughly 1 h on one modern GPU/TPU core.
Expected: ~91.5-92% test accuracy per member (the paper reports 91.25% for ResNet-20).
`:smoke` runs 20 steps on 512 examples.
"""

from experiments.configs import common


def get_config(arg=None):
  args = common.parse_arg(arg, variants=("smoke",), members=4)
  c = common.base_config()
  c.dataset.name = "cifar10"
  c.model.name = "resnet20"
  c.model.kwargs.base_width = 16  # sweepable: --config.model.kwargs.base_width=8
  c.population.members = args.members
  c.optimizer.update(dict(name="sgd", learning_rate=0.1, momentum=0.9, nesterov=True,
                          weight_decay=1e-4, schedule="warmup_cosine", warmup_steps=1000))
  c.augment.names = ("pad_crop", "flip")
  c.augment.pad = 4
  c.train.update(dict(steps=64000, batch_size=128, steps_per_dispatch=100, log_every=500,
                      checkpoint_every=5000, eval_every=5000))
  if args.variant == "smoke":
    common.smoke(c)
    c.optimizer.warmup_steps = 5
    c.train.batch_size = 32
    c.dataset.max_train_examples = 512
    c.dataset.max_test_examples = 128
  return c
