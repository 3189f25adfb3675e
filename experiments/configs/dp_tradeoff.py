r"""DP-SGD on digits_groups: accuracy and per-group accuracy against ε.

    python -m experiments.dp_tradeoff                     # workdir workdirs/dp_tradeoff

MEASURED: (filled in below once run)
"""

from __future__ import annotations

import ml_collections

from experiments.configs import common


def get_config(arg=None):
  args = common.parse_arg(arg, variants=("smoke",), members=0)
  c = common.base_config()
  c.dataset.name = "digits_groups"
  c.model.name = "mlp"
  c.model.kwargs.hidden = (128, 128)  # No batch norm: DP-SGD needs per-example gradients.
  c.population.members = args.members or 8
  c.optimizer.update(dict(name="adam", learning_rate=1e-3))
  c.train.update(dict(steps=500, batch_size=64, steps_per_dispatch=100, log_every=100,
                      checkpoint_every=250, eval_every=500))
  c.study = ml_collections.ConfigDict(dict(
      # One DP-SGD population per noise multiplier (0: clipping only, ε = inf).
      noise_multipliers=(0.0, 0.7, 1.0, 2.0, 4.0),
      clip_norm=1.0,          # per-example L2 clip C
      delta=1e-5,             # ε is reported at this δ (< 1 / 1,437 training examples)
      conversion="improved",  # RDP → (ε, δ): 'improved' (dp-accounting) or 'classic'
      noise_seed=0))          # member m draws its noise from seed noise_seed + m
  c.efficiency = ml_collections.ConfigDict(dict(latency_repeats=10, time_latency=True,
                                                measure_batch=32))
  c.report = ml_collections.ConfigDict(dict(
      title="The price of privacy: DP-SGD accuracy and who pays for it",
      axes=("hidden_costs.epsilon",),
      metrics=("accuracy.top1", "accuracy.worst_group"), reference="nonprivate"))
  if args.variant == "smoke":
    c.population.members = args.members or 2
    c.model.kwargs.hidden = (32,)
    c.train.update(dict(steps=20, steps_per_dispatch=20, log_every=20, checkpoint_every=20,
                        eval_every=20))
    c.study.noise_multipliers = (0.0, 1.0)
    c.efficiency.update(dict(latency_repeats=2, measure_batch=1))
  return c
