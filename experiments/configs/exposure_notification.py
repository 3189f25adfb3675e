r"""Noisy exposure notification on a synthetic contact process (numpy; no training).

    python -m experiments.exposure_notification          # workdir workdirs/exposure_notification

MEASURED: (filled in below once run)
"""

from __future__ import annotations

import ml_collections

from experiments.configs import common


def get_config(arg=None):
  args = common.parse_arg(arg, variants=("smoke",), seeds=0)
  c = ml_collections.ConfigDict()
  c.study = ml_collections.ConfigDict(dict(
      mechanisms=("randomized_response", "laplace", "gaussian"),
      epsilons=(0.5, 1.0, 2.0, 4.0, 8.0),  # per person, over the whole window
      delta=1e-5,                          # the Gaussian mechanism's δ (< 1 / people)
      threshold=0.5,                       # notify when the released count >= this
      seeds=tuple(range(args.seeds or 20)),  # one contact process (and noise) per seed
      process=ml_collections.ConfigDict(dict(
          people=2000, days=14, contacts_per_day=1.0,  # new meetings / person / day
          max_contacts=16,                              # degree cap Δ (public)
          initial_infected=0.02, transmission=0.08, diagnosis_prob=0.6,
          diagnosis_delay=2))))
  c.efficiency = ml_collections.ConfigDict(dict(latency_repeats=1, time_latency=False,
                                                measure_batch=1))
  c.report = ml_collections.ConfigDict(dict(
      title="Noisy exposure notification: what privacy costs in notification accuracy",
      axes=("efficiency.epsilon",), metrics=("accuracy.precision", "accuracy.recall"),
      reference="exact"))
  if args.variant == "smoke":
    c.study.epsilons = (1.0, 4.0)
    c.study.seeds = tuple(range(args.seeds or 3))
    c.study.process.people = 300
  return c
