r"""Loss-based prioritization under label noise on digits: uniform selection, Selective
Backprop and loss-proportional sampling.

    python -m experiments.loss_prioritization             # workdir workdirs/loss_prioritization
    python -m experiments.loss_prioritization \
        --config=experiments/configs/loss_prioritization.py:smoke --workdir=/tmp/lp_smoke

Variants, per label-noise rate 0 / 20 / 40% (uniform to another class, seed 0), each a
population of 4 MLPs 64-128-128-10, Adam 1e-3, 600 steps at batch 128 (~53 epochs of the
1,437 training digits): `full` (every example backpropagated), `uniform` (k = 32 of each
forward-passed batch of 128, the reference), Selective Backprop at β = 1 and 2 (history
1,024) and loss-proportional sampling, each backpropagating k = 32 per step.

Measured runtime: see the study's closing note (the default was not timed on idle cores).
`:smoke` (2 members, one hidden layer of 32, 20 steps, noise 0 and 40%, uniform and
Selective Backprop β = 1): a few seconds per variant once compiled.
"""
from __future__ import annotations

import ml_collections

from experiments.configs import common


def get_config(arg=None):
  args = common.parse_arg(arg, variants=("smoke",), members=0)
  c = common.base_config()
  c.dataset.name = "digits"
  c.model.name = "mlp"
  c.model.kwargs.hidden = (128, 128)
  c.population.members = args.members or 4
  c.optimizer.update(dict(name="adam", learning_rate=1e-3))
  c.train.update(dict(steps=600, batch_size=128, steps_per_dispatch=100, log_every=100,
                      checkpoint_every=300, eval_every=600))
  c.study = ml_collections.ConfigDict(dict(
      noise_rates=(0.0, 0.2, 0.4),  # share of training labels changed, each in [0, 1)
      methods=("full", "uniform", "selective_backprop", "loss_proportional"),
      betas=(1.0, 2.0),             # Selective Backprop's selectivity β > 0
      backward_fraction=0.25,       # k = round(fraction · batch) rows backpropagated
      floor=0.0,                    # P_i = max(floor, percentile^β)
      history_size=1024,            # recent losses the percentile is taken over
      noise_seed=0,
      noise_kind="uniform"))        # or 'class_conditional' (pair flip)
  c.efficiency = ml_collections.ConfigDict(dict(latency_repeats=10, time_latency=True,
                                                measure_batch=32))
  c.report = ml_collections.ConfigDict(dict(
      title="When does loss-based prioritization fail? Selective Backprop under label noise",
      metrics=("accuracy.top1",), reference="uniform_n0"))
  if args.variant == "smoke":
    c.population.members = args.members or 2
    c.model.kwargs.hidden = (32,)
    c.train.update(dict(steps=20, batch_size=64, steps_per_dispatch=20, log_every=20,
                        checkpoint_every=20, eval_every=20))
    c.study.update(dict(noise_rates=(0.0, 0.4), methods=("uniform", "selective_backprop"),
                        betas=(1.0,), history_size=256))
    c.efficiency.update(dict(latency_repeats=2, measure_batch=1, time_latency=False))
  return c
