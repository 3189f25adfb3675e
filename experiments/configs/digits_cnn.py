r"""Small CNN (3x3 convs 32, 64 with max-pooling, dense 128) on the embedded digits set.

    python -m experiments.train --config=experiments/configs/digits_cnn.py \
        --workdir=workdirs/digits_cnn

4 members, Adam 1e-3, batch 128, 1,100 steps, pad-and-crop by 1 pixel; about 40 s wall on
2 idle CPU cores. Measured 2026-12-02 with `/usr/bin/time python -m experiments.train
--config=experiments/configs/digits_cnn.py` (compilation and evaluation included): 36.7 CPU s
(35.2 user + 1.5 sys), 65.5 s wall at load average ~12, under the CPU execution plan
step_loop with max-pooling reshaped (tradeoffs.train.plan); with `--config.train.pool=window`
(the pooling before plans had a pool) 54.2 CPU s, and bitwise the same parameters and test
logits. Expected: test accuracy ~0.98 (0.988 measured). `:smoke` runs 20 steps.
"""

from experiments.configs import common


def get_config(arg=None):
  args = common.parse_arg(arg, variants=("smoke",), members=4)
  c = common.base_config()
  c.dataset.name = "digits"
  c.model.name = "cnn"
  c.model.kwargs.channels = (32, 64)
  c.model.kwargs.dense = 128
  c.population.members = args.members
  c.augment.names = ("pad_crop",)
  c.augment.pad = 1
  if args.variant == "smoke":
    common.smoke(c)
  return c
