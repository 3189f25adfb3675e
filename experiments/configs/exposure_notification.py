r"""Noisy exposure notification on a synthetic contact process (numpy; no training).

    python -m experiments.exposure_notification          # workdir workdirs/exposure_notification
    python -m experiments.exposure_notification \
        --config=experiments/configs/exposure_notification.py:smoke --workdir=/tmp/en_smoke

20 seeds, each a contact process of 2,000 people over 14 days (one new meeting per person
per day, degree cap Δ = 16: ~12.8 distinct contacts each; 2% infected on day 0,
transmission 0.08 per meeting, 60% of the infected diagnosed): the exact release (the
reference) and randomized response, Laplace and Gaussian (δ = 1e-5) at ε = 0.5, 1, 2, 4, 8
per person; notify when the released count ≥ 0.5.

Measured runtime (fresh process): default 8.1 s wall (5.9 s CPU; 16 variants) on 2 cores
at load ~4; `:smoke` (3 seeds, 300 people, ε = 1 and 4) 5.7 s.

Result of the default (mean [95% t interval] over 20 seeds; ~28% of the non-diagnosed are
exposed): precision / recall / false alarms per true exposure
  randomized response  ε = 1: 0.341 / 0.570 / 1.11;  ε = 4: 0.671 / 0.984 / 0.487;
                       ε = 8: 0.993 [0.988, 0.998] / 0.999 / 0.007
  Laplace              ε = 1: 0.302 / 0.524 / 1.22;  ε = 8: 0.395 [0.378, 0.412] / 0.637 / 0.988
  Gaussian             ε = 1: 0.299 / 0.522 / 1.24;  ε = 8: 0.366 / 0.610 / 1.07
Randomized response has higher precision than either central mechanism at every ε (paired
t, Holm p <= 0.03; by 33-63 pt at ε >= 4): the per-count central mechanisms pay the
degree cap Δ in their noise (Laplace std √2·Δ/ε falls below the Dinur–Nissim scale
√Δ = 4 only above ε ≈ 5.7; 2.8 at ε = 8), while a bit released once is charged ε once. Every
measurement agrees with the closed form the mechanism implies (the report's column).
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
