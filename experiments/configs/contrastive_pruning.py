r"""Pruning contrastive models (Corti et al., 2022) on the embedded digits, offline.

    python -m experiments.contrastive_pruning       # workdir workdirs/contrastive_pruning

Data: `digits` (1,437 training and 360 test images, 8×8). Model: `encoder_net`, an MLP
encoder 64-64-64 (the embedding is its last layer), a linear head, and for SupCon a
projection head 64-32. Cross-entropy: 600 steps of Adam 1e-3 at batch 64, end to end.
SupCon: 600 steps of Adam 1e-3 at batch 64 × 2 views (pad-and-crop by 1 pixel and a 3×3
random erasing per view), τ = 0.5, τ_b = 0.07 (PAPERS.md §9), then 300 steps of linear
evaluation (Adam 1e-2) on the frozen encoder. Pruning of the encoder's kernels (heads
dense) at 50% and 90%: gradual (cubic ramp over steps 60-420, every 30 steps) and one-shot
(then 200 fine-tuning steps). Prediction depth: k-NN probes with k = 30 on 4 layers.
8 members per variant sharing seeds by index.
Measured: see the report's per-variant seconds; the default run took ... (filled in below).
`:smoke` (4 members, 60 steps, sparsity 0.9, both prunings) is the end-to-end test.
Expected (not tuned): accuracy falls with sparsity for both methods, more at 90%; whether
SupCon yields more PIEs than cross-entropy at this scale is what the verdicts answer.
"""

from __future__ import annotations

import ml_collections

from experiments.configs import common


def get_config(arg=None):
  args = common.parse_arg(arg, variants=("smoke",), members=0)
  c = common.base_config()
  c.dataset.name = "digits"
  c.model.name = "encoder_net"
  c.model.kwargs = ml_collections.ConfigDict(dict(hidden=(64, 64, 64), projection=(64, 32)))
  c.population.members = args.members or 8
  c.augment = ml_collections.ConfigDict(dict(names=("pad_crop", "erase"), pad=1, size=3,
                                             probability=0.5))
  c.train.update(dict(steps=600, batch_size=64, steps_per_dispatch=100, log_every=100,
                      checkpoint_every=300, eval_every=600))
  c.study = ml_collections.ConfigDict(dict(
      methods=("cross_entropy", "supcon"), prunings=("gradual", "one_shot"),
      sparsities=(0.5, 0.9),
      # SupCon (Khosla et al.): temperature and the reference code's base temperature.
      temperature=0.5, base_temperature=0.07,
      linear_steps=300, linear_learning_rate=1e-2,
      # Gradual pruning: cubic ramp over [begin, end) fractions of train.steps.
      gradual_begin=0.1, gradual_end=0.7, gradual_frequency=30,
      finetune_steps=200,
      knn_k=30, depth_definition="paper"))
  c.efficiency = ml_collections.ConfigDict(dict(latency_repeats=5, time_latency=True,
                                                measure_batch=32))
  c.report = ml_collections.ConfigDict(dict(
      title="Pruning contrastive models: PIEs of SupCon against cross-entropy",
      axes=("efficiency.nonzero_params",), metrics=(), reference="cross_entropy_dense"))
  if args.variant == "smoke":
    c.population.members = args.members or 4
    c.train.update(dict(steps=60, steps_per_dispatch=60, log_every=60, checkpoint_every=60,
                        eval_every=60))
    c.study.update(dict(sparsities=(0.9,), prunings=("one_shot",), linear_steps=30,
                        finetune_steps=20))
    c.efficiency.update(dict(latency_repeats=2, measure_batch=1, time_latency=False))
  return c
