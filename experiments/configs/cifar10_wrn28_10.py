r"""Wide-ResNet-28-10 on CIFAR-10 with the Divide-and-Co-training baseline recipe.

    python -m experiments.train --config=experiments/configs/cifar10_wrn28_10.py \
        --workdir=workdirs/cifar10_wrn28_10

Recipe (Zhao et al., PAPERS.md §1): SGD Nesterov 0.9, lr 0.1, cosine with 20 warm-up epochs,
batch 128, 300 epochs, weight decay 5e-4 (not on norms/biases), crop + flip (the paper adds
AutoAugment and random erasing; erasing is available as augment name `erase`).
One member by default: 117k steps, about a day on one A100. Expected ~96.5-97% without
AutoAugment (the paper's 97.59% uses AutoAugment). `:smoke` runs a WRN-10-1 for 20 steps.
"""

from experiments.configs import common


def get_config(arg=None):
  args = common.parse_arg(arg, variants=("smoke",), members=1)
  c = common.base_config()
  c.dataset.name = "cifar10"
  c.model.name = "wrn"
  c.model.kwargs.depth = 28
  c.model.kwargs.widen_factor = 10
  c.model.kwargs.dropout = 0.0
  c.population.members = args.members
  c.optimizer.update(dict(name="sgd", learning_rate=0.1, momentum=0.9, nesterov=True,
                          weight_decay=5e-4, schedule="warmup_cosine", warmup_steps=7800))
  c.augment.names = ("pad_crop", "flip")
  c.augment.pad = 4
  c.train.update(dict(steps=117000, batch_size=128, steps_per_dispatch=100, log_every=500,
                      checkpoint_every=5000, eval_every=5000))
  if args.variant == "smoke":
    common.smoke(c)
    c.model.kwargs.depth = 10
    c.model.kwargs.widen_factor = 1
    c.optimizer.warmup_steps = 5
    c.train.batch_size = 32
    c.dataset.max_train_examples = 256
    c.dataset.max_test_examples = 64
  return c
