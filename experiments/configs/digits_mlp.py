r"""MLP 64-256-256-10 on the embedded digits set: a population of 4, Adam 1e-3, batch 128.

    python -m experiments.train --config=experiments/configs/digits_mlp.py \
        --workdir=workdirs/digits_mlp

1,100 steps (~98 epochs) per member; about 15 s on 2 CPU cores (including compilation).
Expected: test accuracy ~0.97-0.98 per member. `:smoke` runs 20 steps in a few seconds.
Variant args: `:members=8`, `:smoke,members=2`.
"""

from experiments.configs import common


def get_config(arg=None):
  args = common.parse_arg(arg, variants=("smoke",), members=4)
  c = common.base_config()
  c.dataset.name = "digits"
  c.model.name = "mlp"
  c.model.kwargs.hidden = (256, 256)
  c.model.kwargs.width_multiplier = 1.0  # e.g. --grid "model.kwargs.width_multiplier=0.25,1"
  c.population.members = args.members
  if args.variant == "smoke":
    common.smoke(c)
  return c
