r"""Pruning contrastive models (Corti et al., 2022) on the embedded digits, offline.

    python -m experiments.contrastive_pruning       # workdir workdirs/contrastive_pruning

Data: `digits` (1,437 training and 360 test images, 8×8). Model: `encoder_net`, an MLP
encoder 64-64-64 (the embedding is its last layer), a linear head, and for SupCon a
projection head 64-32. Cross-entropy: 600 steps of Adam 1e-3 at batch 64, end to end.
SupCon: 600 steps of Adam 1e-3 at batch 64 × 2 views (pad-and-crop by 1 pixel and a 3×3
random erasing per view), τ = 0.5, τ_b = 0.07 (PAPERS.md §9), then 300 steps of linear
evaluation (Adam 1e-2) on the frozen encoder. Pruning of the encoder's kernels (heads
dense) at 50% and 90%: gradual (cubic ramp over steps 60-419, every 30 steps) and one-shot
(then 200 fine-tuning steps). Prediction depth: k-NN probes with k = 30 on 4 layers.
8 members per variant sharing seeds by index.
Every training shares its optimizer object (per-leaf rates and masks in its state, see
`tradeoffs.studies.contrastive_pruning`), so trainings of one model and loss run one
compiled program; the stage lengths (600 / 200 / 300) are multiples of steps_per_dispatch.
Measured (`/usr/bin/time`, cold XLA cache): the default run, 89 CPU s (86.0 user + 3.0
sys; 629 s wall at 1-minute load average 15-18 from other jobs, one device; 10 variants,
16 trainings; before the shared programs it took 569 s wall at load 9-12, CPU not
recorded). `:smoke` (4 members, 60 / 20 / 20 steps in 20-step programs, sparsity 0.9,
one-shot only: 4 variants, 6 trainings, 2 training programs; used by the tests), with the
tests' 8 simulated devices: 34 CPU s (31.8 user + 2.4 sys; 73 s wall at load ~8), down
from 55 CPU s (52 + 3.1, load ~14) with 6 training programs. Of those 34 s: imports ~4,
the 2 training programs ~8, the 6 population inits ~4 (one per training; shared if
`create_population` reused its compiled init for an equal model and optimizer),
checkpoint fingerprints and slices ~1.7, the rest small programs, tracing and checkpoint
writes. Not measured on idle cores (none were).
Result of the default run (not tuned; 360 test images), re-run after the change to shared
programs — cross-entropy's numbers are unchanged, SupCon's moved by float-level
differences in its compiled steps (e.g. dense 89.3% -> 89.1%): top-1 dense 91.0% [89.9,
92.1] cross-entropy, 89.1% [87.6, 90.5] SupCon; at 90% sparsity cross-entropy 78.9%
(gradual) / 69.9% (one-shot), SupCon 69.1% / 63.4%. PIEs at 90%: cross-entropy 53 / 69,
SupCon 68 / 90 (noise floors, p95 of random halves: 22 and 34); at 50% every count (5-16)
is below its floor. Accuracy on the PIEs at 90%: 14-22% pruned, 65-74% dense. The
per-member rate of predictions leaving the dense modal label is higher for SupCon at 3 of
4 (pruning, sparsity) points (+3.5 to +7.7 pt, Holm p <= 0.02; one-shot 90%: +4.0 pt
[-0.4, 8.5], not detectable). PIEs have higher prediction depth than the rest in 6 of 8
pruned variants (+1.4 to +1.9 layers, Holm p < 0.001; cross-entropy at 50%, 5 and 14
PIEs, not detectable); lower Q-scores on PIEs (the paper's finding) do not show: no
detectable difference in 8 of 8 (SupCon one-shot 90%: +0.072 [0.017, 0.127], Holm p =
0.10). Here one-shot with a short fine-tune costs more than gradual pruning, unlike the
paper's "GMP does the most damage".

`:mnist_5k` (28×28 MNIST, the vendored 5,000-image subset: 4,000 train / 1,000 test,
`tradeoffs.data.mnist_5k`): the same study with a wider MLP encoder 256-128-64 for the
784 inputs (the same 64-dim embedding and projection 64-32) and the augmentation scaled
to the image side (pad-and-crop by 3 pixels, a 10×10 erasing); everything else as for
digits (8 members, 600 / 200 / 300 steps). `:dataset=mnist_5k` keeps the digits encoder.

    python -m experiments.contrastive_pruning \
        --config=experiments/configs/contrastive_pruning.py:mnist_5k

Measured: 219 CPU s (201.6 user + 17.3 sys; 1,279 s wall on 2 cores at 1-minute load
average 10-23 from other jobs; one device), i.e. about 2-4 minutes on 2 idle cores — below the
~10-minute budget; the sizes were kept as for digits rather than raised to fill it.
Result (not tuned; 1,000 test images, 8 members per variant; Holm within each table):
top-1 dense 91.9% [91.1, 92.6] cross-entropy, 91.6% [90.4, 92.9] SupCon; at 50% sparsity
cross-entropy 92.1 [91.7, 92.5] (gradual) / 93.2 [92.6, 93.7] (one-shot), SupCon 91.0
[89.7, 92.3] / 93.1 [92.3, 93.9]; at 90% cross-entropy 91.3 [90.8, 91.8] / 91.8 [91.2,
92.5], SupCon 86.5 [85.1, 87.9] / 88.8 [87.3, 90.3]. Against its dense population only
SupCon loses at 90% (gradual -5.1 pt [-6.8, -3.4], one-shot -2.8 [-3.7, -2.0], Holm p <
0.001); cross-entropy at 90% shows no detectable loss, and one-shot at 50% (with its
fine-tune) gains 1.3-1.4 pt (Holm p = 0.05). PIEs (noise floors, p95 of random halves:
cross-entropy 53, SupCon 67): cross-entropy 25 / 33 at 50% and 48 / 50 at 90% (gradual /
one-shot), all below the floor; SupCon 38 / 29 and 71 / 45 — only gradual 90% above its
floor. Accuracy on the PIEs 29-55% pruned, 33-59% dense. The per-member rate of leaving
the dense modal label is higher for SupCon at 3 of 4 points (gradual 50% +1.8 pt [0.7,
2.9], gradual 90% +5.1 [3.6, 6.6], one-shot 90% +2.6 [1.2, 4.1], Holm p <= 0.01; one-shot
50% -0.2 [-0.9, 0.5], not detectable). PIEs have higher prediction depth than the rest in
all 8 pruned variants (+1.9 to +2.35 of 4 layers, Holm p < 1e-5). Q-scores: no detectable
difference on cross-entropy (4 of 4); on SupCon PIEs score higher in 3 of 4 (+0.13 to
+0.36, Holm p <= 0.005; gradual 90% +0.14 [0.02, 0.26], Holm p = 0.10). PIE sets overlap
little across (method, pruning) pairs (Jaccard 0.11-0.34, except cross-entropy gradual vs
one-shot at 90%: 0.56). So on 28×28 data: SupCon pays more under pruning (flip rates,
top-1 at 90%), PIEs are largely unique per combination, and PIEs are deeper — as the
paper finds; GMP does more damage than one-shot for SupCon at 90% but not for
cross-entropy; and PIEs do not have lower Q-scores (higher on SupCon: the paper's finding
does not show). PIE counts mostly stay within the noise floor of 8-member populations.
"""

from __future__ import annotations

import ml_collections

from experiments.configs import common


# Per dataset: pad-and-crop pixels and erasing side, about 1/8 and 3/8 of the image side.
AUGMENT_SIZES = {"digits": dict(pad=1, size=3), "mnist_5k": dict(pad=3, size=10)}


def get_config(arg=None):
  args = common.parse_arg(arg, variants=("smoke", "mnist_5k"), dataset="", members=0)
  if args.variant == "mnist_5k" and args.dataset not in ("", "mnist_5k"):
    raise ValueError(f"config arg dataset={args.dataset!r} for contrastive_pruning.py: the "
                     "mnist_5k variant trains on mnist_5k (use dataset= without it)")
  args.dataset = args.dataset or ("mnist_5k" if args.variant == "mnist_5k" else "digits")
  if args.dataset not in AUGMENT_SIZES:
    raise ValueError(f"config arg dataset={args.dataset!r} for contrastive_pruning.py: "
                     f"choose from {sorted(AUGMENT_SIZES)}")
  c = common.base_config()
  c.dataset.name = args.dataset
  c.model.name = "encoder_net"
  c.model.kwargs = ml_collections.ConfigDict(dict(hidden=(64, 64, 64), projection=(64, 32)))
  c.population.members = args.members or 8
  c.augment = ml_collections.ConfigDict(dict(names=("pad_crop", "erase"),
                                             **AUGMENT_SIZES[args.dataset], probability=0.5))
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
  if args.variant == "mnist_5k":
    # 784 inputs: a wider encoder, narrowing to the same 64-dim embedding.
    c.model.kwargs.hidden = (256, 128, 64)
  if args.variant == "smoke":
    c.population.members = args.members or 4
    # Every stage a multiple of 20 steps: each training of one model and loss then runs
    # the same compiled 20-step program (compiling dominates the smoke's time).
    c.train.update(dict(steps=60, steps_per_dispatch=20, log_every=60, checkpoint_every=60,
                        eval_every=60))
    c.study.update(dict(sparsities=(0.9,), prunings=("one_shot",), linear_steps=20,
                        finetune_steps=20))
    c.efficiency.update(dict(latency_repeats=2, measure_batch=1, time_latency=False))
  return c
