r"""Robust distillation (Wang et al., 2022) on a long-tailed digits set, offline.

    python -m experiments.robust_distillation       # workdir workdirs/robust_distillation

Data: `digits_long_tail` (training counts 100, 77, 60, 46, 36, 28, 22, 17, 13, 10 for
classes 0-9: an exponential 10:1 profile; a balanced validation split of 20 per class for
the class weights; the balanced digits test split is scored). Teacher: MLP 64-128-128-10;
student: MLP 64-16-10. Objectives standard, balanced and robust (α = 1: the worst class;
4 rounds with an exponentiated-gradient step η = 2 on per-class validation error between
rounds) for teachers and students; every teacher × student pair distilled at T = 3 with
CE + T²·KL; students from labels alone beside them. 400 steps of Adam 1e-3 at batch 64,
4 members sharing seeds by index.
Measured: the default run was not timed yet (15 trainings, 7 of them in 4 rounds; expect
several minutes on 2 shared cores). `:smoke` (2 members, 20 steps, a standard teacher and
standard / robust students, 2 rounds; used by the tests) took about 45 s wall on 2 CPU
cores shared with other jobs (load average ~6.5), mostly compilation.
Expected (not tuned): balanced and robust objectives raise worst-class accuracy over
standard at a small cost in top-1; distillation from a strong teacher helps the small
student overall; whether a robust teacher alone gives a robust student is the open
question the grid answers.
"""

from __future__ import annotations

import ml_collections

from experiments.configs import common


def get_config(arg=None):
  args = common.parse_arg(arg, variants=("smoke",), members=0)
  c = common.base_config()
  c.dataset.name = "digits_long_tail"
  c.model.name = "mlp"
  c.model.kwargs.hidden = (16,)
  c.population.members = args.members or 4
  c.train.update(dict(steps=400, batch_size=64, steps_per_dispatch=100, log_every=100,
                      checkpoint_every=200, eval_every=400))
  c.study = ml_collections.ConfigDict(dict(
      teacher_model="mlp", teacher_kwargs=ml_collections.ConfigDict(dict(hidden=(128, 128))),
      student_model="mlp", student_kwargs=ml_collections.ConfigDict(dict(hidden=(16,))),
      teacher_objectives=("standard", "balanced", "robust"),
      student_objectives=("standard", "balanced", "robust"),
      undistilled_students=True,
      # Robust objective: weights (1-alpha)*prior + alpha*lambda; lambda by EG between rounds.
      alpha=1.0, eg_step=2.0, eg_rounds=4,
      # Distillation: CE + distill_weight * T^2 * KL(teacher_T || student_T).
      temperature=3.0, distill_weight=1.0, teacher_member=0))
  c.efficiency = ml_collections.ConfigDict(dict(latency_repeats=10, time_latency=True,
                                                measure_batch=32))
  c.report = ml_collections.ConfigDict(dict(
      title="Robust distillation: who pays when the tail is small",
      axes=("efficiency.params",), metrics=(), reference="student_standard_from_standard"))
  if args.variant == "smoke":
    c.population.members = args.members or 2
    c.train.update(dict(steps=20, steps_per_dispatch=20, log_every=20, checkpoint_every=20,
                        eval_every=20))
    c.study.update(dict(teacher_objectives=("standard",),
                        student_objectives=("standard", "robust"),
                        undistilled_students=False, eg_rounds=2))
    c.efficiency.update(dict(latency_repeats=2, measure_batch=1))
  return c
