r"""The main job: an efficiency frontier with its hidden costs, offline on digits_groups.

    python -m experiments.frontier                        # workdir workdirs/frontier

Variants, each a population of 8 (so variance, churn and CIE are measured):
  * dense width sweep: MLP 64-w-w-10 for w = 32, 64, 128, 256 (width multipliers of the
    widest, hidden (256, 256)), 400 steps of Adam 1e-3 at batch 128;
  * pruned: the widest dense population pruned one-shot by global magnitude to 50%, 80%
    and 90% sparsity, then fine-tuned 100 steps (Adam 3e-4) with the masks fixed;
  * structured: the widest dense population channel-pruned (half of each hidden layer's
    units removed, ranked per member by ||incoming|| x ||outgoing||: a 64-128-128-10
    dense model, fine-tuned like the pruned ones; params, FLOPs and latency all drop)
    and 2:4 N:M-masked (fine-tuned with the masks fixed; it runs dense here);
  * quantized: the widest dense population fake-quantized post-training to int8 and int4
    (symmetric, per channel), no retraining;
  * divided: the widest model divided into S = 2 and S = 4 members (widths w / sqrt(S),
    Zhao et al.), trained with co-training (JS divergence, weight 0.5 ramped over the
    first quarter), 8 ensembles per S, combined by mean logits;
  * distilled: the smallest width (w = 32) taught by the source's member 0 at T = 3
    (CE + T²·KL), standard and worst-class robust (α = 1, 4 rounds of exponentiated
    gradient at step 2, as the robust distillation study runs them); both hold out 10
    training images per class (100, stratified, seed 0) as the validation split the
    robust rounds measure per-class error on, and train on the other 1,337;
  * cascades: w = 32 always, the source on the 20% / 50% least confident inputs;
    expected latency from the two measured latencies (not timed);
  * loss-prioritized: the source's width from scratch with Selective Backprop (β = 1),
    64 of each batch of 128 backpropagated (clean labels): half the backward rows,
    1.2× fewer counted training FLOPs (the selection forward-passes the whole batch);
  * DP-SGD: w = 32 from scratch, clip 1, noise multiplier 1 and 3 (ε ≈ 14 and ≈ 2.8 at
    δ = 1e-5, RDP accountant), 400 steps at batch 128.
Measured runtime (`/usr/bin/time python -m experiments.frontier --workdir=<fresh>`, fresh
process and workdir, compilation included), 21 variants, 2026-12-02 on 2 idle cores (load
~1), with paired timing and the one-draw DP-SGD noise: 64.5 s wall, 89.9 s of CPU (86.0
user + 3.8 sys); before those two, 79.6 s wall, 110.6 s of CPU. The 20-variant job before took 1 min 27 s wall /
123 s of CPU on nearly idle cores. The binary's compilation cache (<workdir>/xla_cache)
compiles each program once per run (the pruned and N:M fine-tunes share one step,
populations of one shape one evaluation, the EG rounds one step). Where CPU goes (per
variant, measured under load): the two divided ensembles ~12 s each (16 and 32 networks),
DP-SGD ~11-13 s each (its per-example-gradient step compiles anew for each noise
multiplier), dense_w256 ~9 s, Selective Backprop ~8 s. `:smoke` (11 variants, compiled at
XLA:CPU backend level 0, `study.xla_backend_optimization_level`, which the report flags):
24.4 and 25.1 s wall, 29.4 and 30.4 s of CPU on idle cores (2026-12-02, one device); at
backend level 2 27.4 s wall, 35.5 s CPU (earlier, before the DP-SGD noise draw was one
kernel: 34.1 s wall, 45.1 s CPU).
The report's "Seconds" column gives each variant's time. Populations (8 members) and steps
are unchanged from the 14-variant job.
Variants: `:smoke` (2 members, 2 widths, one variant of every technique: one sparsity,
channels, 2:4, int8, S=2, the robust student with 2 EG rounds, a cascade at 50%, Selective
Backprop, DP-SGD at σ = 1; used by tests), `:full` (the expensive extras: 16 members, a
wider sweep, the fine-tune axis to 1,600 steps, more bits, rates and noise multipliers,
loss-proportional and uniform selection beside Selective Backprop; not measured), `:cifar10` (ResNet-20 width sweep on CIFAR-10 for accelerators; prepare
the data once with `python -m tradeoffs.data.prepare --datasets=cifar10`; not measured
here, expect roughly 1-2 GPU-hours for 4 members), `:members=16`.
Rebuild the report only: `python -m experiments.frontier --report_only`; merge several
runs: `python -m experiments.frontier --workdir=workdirs/merged --merge=a,b`.
The README's headline figure and caption come from the default run:
`python -m experiments.frontier --workdir=workdirs/frontier && cp
workdirs/frontier/frontier_headline.png docs/frontier_headline.png`; the caption's numbers
are the "Verdicts against the dense source" section of workdirs/frontier/report.md.
"""

from __future__ import annotations

import ml_collections

from experiments.configs import cifar10_resnet20
from experiments.configs import common


def get_config(arg=None):
  # members=0: the variant's default population size.
  args = common.parse_arg(arg, variants=("smoke", "full", "cifar10"), members=0)
  c = common.base_config()
  c.dataset.name = "digits_groups"
  c.model.name = "mlp"
  c.model.kwargs.hidden = (256, 256)  # The widest model: source of every compression.
  c.population.members = args.members or 8
  c.train.update(dict(steps=400, batch_size=128, steps_per_dispatch=100, log_every=100,
                      checkpoint_every=200, eval_every=400))
  c.eval.batch_size = 512
  c.study = ml_collections.ConfigDict(dict(
      # Dense width sweep as width multipliers of c.model; the largest is the source.
      width_multipliers=(0.125, 0.25, 0.5, 1.0),
      # Pruning of the source: 'one_shot' (prune at fine-tune step 0, masks then fixed)
      # or 'gradual' (Zhu & Gupta cubic ramp over the first prune_ramp_fraction).
      sparsities=(0.5, 0.8, 0.9),
      prune_schedule="one_shot", prune_distribution="global", prune_ramp_fraction=0.5,
      prune_frequency=10, finetune_steps=100, finetune_learning_rate=3e-4,
      # Fine-tune length as a recorded axis: the most pruned variant also at these lengths.
      finetune_steps_axis=(400,),
      # Structured compression of the source, fine-tuned like the pruned ones: whole
      # hidden units removed (a smaller dense model: saves time on this hardware) at
      # each channel sparsity, and N:M masks (n, m) (zeros in a dense model: kernels for
      # 2:4 exist on NVIDIA Ampere+, none on CPU).
      channel_sparsities=(0.5,), nm=((2, 4),),
      # Post-training fake quantization of the source.
      bits=(8, 4), quant_granularity="per_channel",
      # Divided ensembles of the source (S members of width w / sqrt(S)), co-trained.
      divided=(2, 4), width_rule="sqrt", cotraining_loss="js_divergence",
      cotraining_weight=0.5, cotraining_warmup_fraction=0.25, combine="mean_logits",
      # Distilled students at the smallest width, taught by the source (CE + w·T²·KL), per
      # objective: 'standard' or 'robust' (worst-class weights by exponentiated-gradient
      # rounds, as in the robust distillation study's config: α = 1, step 2, 4 rounds).
      # digits_groups has no validation split: both students hold out
      # distill_validation_per_class training images of every class (stratified, seeded)
      # and train on the rest; the robust one's EG rounds measure per-class error there.
      distilled=("standard", "robust"), distill_temperature=3.0, distill_weight=1.0,
      distill_alpha=1.0, distill_eg_step=2.0, distill_eg_rounds=4,
      distill_validation_per_class=10, distill_validation_seed=0,
      # Loss-prioritized training at the source's width from scratch (the shared
      # loss_prioritized recipe, clean labels): per method, round(backward_fraction ·
      # batch) rows of each forward-passed batch backpropagated (Selective Backprop at
      # selectivity selection_beta; or 'loss_proportional', 'uniform').
      loss_prioritized=("selective_backprop",), backward_fraction=0.5, selection_beta=1.0,
      # Fast/slow cascades: the smallest dense model, the source on the given fraction of
      # least confident inputs; expected cost from the two measured latencies.
      cascade_rates=(0.2, 0.5),
      # DP-SGD from scratch at the smallest width, per noise multiplier (ε at dp_delta
      # from the RDP accountant).
      dp_noise_multipliers=(1.0, 3.0), dp_clip_norm=1.0, dp_delta=1e-5))
  # Efficiency of one member (or one ensemble): latency and FLOPs at batch 1 and at
  # measure_batch (1: batch 1 only); latency is the median of latency_repeats calls,
  # each variant's timed in alternation with the source's (paired_timing), so the
  # hardware lottery's ratios are paired measurements.
  c.efficiency = ml_collections.ConfigDict(dict(latency_repeats=20, time_latency=True,
                                                measure_batch=32, paired_timing=True))
  c.report = ml_collections.ConfigDict(dict(
      title="What efficiency costs: the frontier and its hidden costs",
      # x axes of the frontier plots (weight bytes is where quantization saves); empty
      # metrics: the report's defaults (top-1, worst class, worst group, CIE count, churn).
      # Reference '' = the widest dense variant.
      # Non-zero params are the headline figure's axis, and FLOPs track params for these
      # MLPs, so they get no frontier figure of their own (figures cost ~2 s each here).
      axes=("efficiency.params", "efficiency.weight_bytes", "efficiency.latency_ms"),
      metrics=(), reference=""))
  if args.variant == "smoke":
    c.population.members = args.members or 2
    c.train.update(dict(steps=30, steps_per_dispatch=30, log_every=30, checkpoint_every=30,
                        eval_every=30))
    c.model.kwargs.hidden = (64, 64)
    c.study.update(dict(width_multipliers=(0.5, 1.0), sparsities=(0.8,), bits=(8,),
                        divided=(2,), finetune_steps=10, channel_sparsities=(0.5,),
                        nm=((2, 4),), finetune_steps_axis=(), distilled=("robust",),
                        cascade_rates=(0.5,), dp_noise_multipliers=(1.0,),
                        distill_eg_rounds=2))
    # Compiling is most of a smoke: XLA:CPU's backend level 0 (experiments.app sets it).
    c.study.xla_backend_optimization_level = 0
    c.efficiency.update(dict(latency_repeats=2, measure_batch=1))
  elif args.variant == "full":
    # The expensive extras: 16 members per population, the fine-tune axis to 1,600
    # steps, a wider dense sweep and both pruning schedules' knobs at more sparsities.
    c.population.members = args.members or 16
    c.study.update(dict(width_multipliers=(0.0625, 0.125, 0.25, 0.5, 1.0),
                        sparsities=(0.5, 0.8, 0.9, 0.95), finetune_steps_axis=(400, 1600),
                        bits=(8, 4, 2), cascade_rates=(0.1, 0.2, 0.5),
                        loss_prioritized=("selective_backprop", "loss_proportional",
                                          "uniform"),
                        dp_noise_multipliers=(0.7, 1.0, 3.0)))
  elif args.variant == "cifar10":
    # The standard ResNet-20 CIFAR-10 training, for half as many steps.
    recipe = cifar10_resnet20.get_config()
    for section in ("dataset", "model", "optimizer", "augment", "train"):
      c[section] = recipe[section]
    c.train.update(dict(steps=32000, checkpoint_every=4000, eval_every=4000))
    c.population.members = args.members or 4
    c.study.update(dict(width_multipliers=(0.5, 1.0, 2.0), sparsities=(0.5, 0.8, 0.9, 0.95),
                           prune_schedule="gradual", finetune_steps=8000,
                           finetune_learning_rate=0.01, width_rule="paper", divided=(2, 4),
                           channel_sparsities=(),  # unit pruning knows mlp/cnn only
                           finetune_steps_axis=(32000,), distilled=(),
                           dp_noise_multipliers=(), loss_prioritized=()))
  return c
