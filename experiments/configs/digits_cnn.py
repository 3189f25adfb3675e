r"""Small CNN (3x3 convs 32, 64 with max-pooling, dense 128) on the embedded digits set.

    python -m experiments.train --config=experiments/configs/digits_cnn.py \
        --workdir=workdirs/digits_cnn

4 members, Adam 1e-3, batch 128, 1,100 steps, pad-and-crop by 1 pixel; about 50 s wall on
2 CPU cores (measured 49 s at load average ~3.6: ~31 population steps/s under the CPU
execution plan step_loop, tradeoffs.train.plan). Expected: test accuracy ~0.98 (0.988
measured). `:smoke` runs 20 steps.
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
