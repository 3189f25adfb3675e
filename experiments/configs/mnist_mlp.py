r"""MLP 784-512-512-10 on MNIST (prepare it once: python -m tradeoffs.data.prepare --datasets=mnist).

    python -m experiments.train --config=experiments/configs/mnist_mlp.py \
        --workdir=workdirs/mnist_mlp

4 members, Adam 1e-3, batch 128, 9,380 steps (20 epochs); a few minutes on one GPU, about
20 min on 2 CPU cores. Expected: test accuracy ~0.98. `:smoke` runs 20 steps on the first
1,024 training examples (works with `tfds.testing.mock_data`).
"""

from experiments.configs import common


def get_config(arg=None):
  args = common.parse_arg(arg, variants=("smoke",), members=4)
  c = common.base_config()
  c.dataset.name = "mnist"
  c.model.name = "mlp"
  c.model.kwargs.hidden = (512, 512)
  c.population.members = args.members
  c.train.steps = 9380
  c.train.log_every = 500
  c.train.checkpoint_every = 2000
  c.train.eval_every = 2000
  if args.variant == "smoke":
    common.smoke(c)
    c.dataset.max_train_examples = 1024
    c.dataset.max_test_examples = 256
  return c
