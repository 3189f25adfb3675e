r"""SEW-style squeezed speech encoders on spoken digit strings (Wu et al. 2021), offline.

    python -m experiments.squeezed_speech        # workdir workdirs/squeezed_speech

Data: `spoken_digits` (900 training utterances of 1-4 digits from 16 espeak-ng voices,
150 test utterances of the same voices, 150 of 3 held-out voices; 8 kHz, padded to 1.93 s
= 48 extractor frames). Model: `speech_ctc` — the original (uniform, c = 32 channels) or
compact (c = 4 growing to 32, one 1x1 conv per stage: SEW's WFE-C/WFE-O width ratio)
waveform feature extractor, squeeze s in {1, 2, 4}, and a pre-LN Transformer encoder of
1 layer × d 64 or 2 layers × d 64 (FFN 4d, 4 heads), a CTC head over 10 digits + blank.
Trained from scratch with CTC (no wav2vec 2.0 pre-training: out of reach on 2 CPU cores):
Adam 2e-3 with 30 warm-up steps and cosine decay, gradient clipping at norm 1, batch 16,
300 steps, dropout 0.1, 3 members sharing seeds by index. Compiled at XLA:CPU backend level 1;
efficiency measured at batch 1 only.
Warm-up and clipping replace a constant 2e-3 from step 0, under which a member stayed at
all-blank output (the known instability of a Transformer trained from scratch with Adam).

Changed 2026-12-02 (from 1x32/2x64, XLA's default level, measure batch 16), chosen by
compile time and training loss, not by test results. Profile (CPU s, 2 cores at load 6-14,
one variant, batch 16): the train step compiles in 11.7-14.3 s at XLA's default level and
the population init in 4.8-13.9 s (the compact extractor's most); at level 1 8.6-11.2 s and
2.7-4.8 s, with the same step time (71.5 vs 74.8 ms original s1 1x32, 57.7 vs 57.7 ms
compact s1 2x64) and forward latency (the benchmark's `--compare_level 1`, interleaved:
0.95-1.04x of the default-level program, every p10-p90 range spanning 1). Level 0 compiles
faster still (step 5.4 s) but steps 2.6x slower (193 ms), so only the smoke uses it. A step
costs ~60-95 ms (the extractor on 15,440 samples dominates; the Transformer size barely
matters), so of the old default's 982 CPU s about a third was compiling 12 × (init + step +
3 forward programs) and two thirds the 10,800 member-steps. Single-member probes (original
s1, c = 32, 300 steps, training loss at steps 60/120/180/240/300; DER seen/held-out):
    1x32 7.0 5.8 4.5 3.9 3.5 (46/49)   2x32 6.7 5.4 4.4 3.8 3.3 (47/54)
    1x64 6.1 3.8 2.2 1.5 1.1 (18/24)   2x64 6.5 3.5 1.7 1.0 0.7 (14/23)
so d 32 does not learn in 300 steps at either depth and d 64 does at both: the encoder sizes
are now 1x64 and 2x64 (a depth contrast). Cheaper settings learned too little: batch 8
(1x64 1.9 final loss, 27% DER; 2x64 2.5, 32%), c = 16 extractors (1x64 2.5, 34%; compact
c = 2 81%), 150 steps (1x64 3.7, 59%; 2x64 3.6, 53%; compact c = 4 89-100%), so the
default keeps 300 steps.
Default measured 2026-12-02 end to end (`/usr/bin/time -v python -m
experiments.squeezed_speech`, 2 cores, load ~1-2, 1 CPU device): 8 min 24 s wall, 816 CPU s
(658 user + 158 sys), 2.9 GB peak RSS. Results (mean over 3 members [95% t], DER %, seen /
held-out voices; FLOPs of a batch-1 forward pass; latency × the reference's):
    encoder 1x64: original s1 13.6 [10.8, 16.4] / 21.9 (29 MFLOPs), s2 28.0 / 33.9 (1.04x),
                  s4 42.0 / 46.8 (1.03x); compact s1 68.4 / 74.4 (10 MFLOPs, 0.92x),
                  s2 61.0 / 63.8 (0.87x), s4 65.8 / 68.8 (5.6 MFLOPs, 0.82x)
    encoder 2x64: original s1 14.8 [10.8, 18.8] / 24.9 (35 MFLOPs), s2 33.2 / 40.2 (0.94x),
                  s4 39.9 / 44.7 (0.80x); compact s1 54.7 / 62.1 (15 MFLOPs, 0.79x),
                  s2 65.9 / 68.2 (0.71x), s4 62.8 / 65.3 (6.9 MFLOPs, 0.71x)
No member stuck at all-blank. With 3 members and 15 claims per encoder (Holm): compact s2
and s4 cost +41 to +54 pt DER on every measure at both sizes (one exception: 1x64 compact s4
on the worst family, Holm p 0.09); compact s1's +37 to +57 pt do not survive Holm (its
members vary widely); at 2x64 the squeeze costs too (s4 +25.1 pt [20.8, 29.4] DER, s2 and
s4 on the worst family +17.5 / +28.6 pt); at 1x64 the squeeze's +12 to +32 pt do not
survive Holm (Holm p 0.06-0.15). At this scale, trained from scratch for 300 steps, the
compact extractor cuts FLOPs 2-5x and latency 8-29% and costs digit errors on seen and
held-out voices alike. For whom: the reference models err most on the held-out male voice
(35.9% at 1x64, 40.1% at 2x64, against 12-16% for every other family and split); the
cheaper variants are worse for every group, so their cost in points is smallest for that
held-out male voice (per-family intervals overlap). The old default (1x32 / 2x64, XLA's
default level) took 982 CPU s at load 14-18; its 1x32 models were undertrained (DER 53-91%).
Latencies in the records drift with the load (see the benchmark for interleaved ratios).
`:smoke` (the reference original_s1_1x16, c = 16, and compact_s2_1x16, c = 2; 2 members,
4 steps on 64 utterances, `mesh.member_shards=1` so both members share one compiled step,
compiled at XLA:CPU backend optimisation level 0 by the binary, recorded in each record's
environment; one shared frontier figure): 26.3 s wall, 33.9 s CPU (32.4 user + 1.5 sys) on
idle cores (load 0.4-0.9), 1 CPU device; before this change (four frontier figures) 28.3 s
wall, 35.8 s CPU at load 0-0.4. Level 0 still pays: the smoke model's train step compiles in
3.4 s CPU at level 0 against 10.2 s at the default level, its init in 1.9 s against 7.9 s.
What is left is fixed cost: per variant the init, train step, predict and batch-1 forward
compiles and the population's split/join/stack programs (~10 s CPU), ~6 s of imports and
~3 s of report figures; shorter padded utterances would not help (compile time does not
depend on the length: 4,240 vs 15,440 samples, 3.24 vs 3.37 s).
Expected (not tuned): squeezing cuts the Transformer's share of the FLOPs and latency by
about s; the compact extractor cuts the extractor's FLOPs several-fold; what either costs
in digit error rate, and for which voices, is what the study measures.
"""

from __future__ import annotations

import ml_collections

from experiments.configs import common


def get_config(arg=None):
  args = common.parse_arg(arg, variants=("smoke",), members=0)
  c = common.base_config()
  c.dataset.name = "spoken_digits"
  c.model.name = "speech_ctc"
  c.model.kwargs = ml_collections.ConfigDict(dict(dropout=0.1, pos_conv_groups=8))
  c.population.members = args.members or 3
  # Warm-up and clipping: Adam at a constant 2e-3 from step 0 left members stuck emitting
  # only blanks (the usual Transformer-from-scratch instability), not a tuned setting.
  c.optimizer.update(dict(learning_rate=2e-3, schedule="warmup_cosine", warmup_steps=30,
                          grad_clip_norm=1.0))
  # 300 steps: 150 left the best encoder at 53% DER (probe in the docstring).
  c.train.update(dict(steps=300, batch_size=16, steps_per_dispatch=100, log_every=100,
                      checkpoint_every=300, eval_every=300, loss="ctc"))
  c.eval.batch_size = 150
  c.study = ml_collections.ConfigDict(dict(
      extractors=("original", "compact"),
      squeezes=(1, 2, 4),
      # "<layers>x<d_model>": FFN 4·d, 4 heads.
      # d_model 64 at both depths: d 32 did not learn in 300 steps (see the docstring).
      encoders=("1x64", "2x64"),
      # c of each extractor: original uses c everywhere, compact grows c..8c; SEW's ratio
      # (WFE-O 512 = 8 x WFE-C's c = 64), so both end at the same width.
      original_channels=32, compact_channels=4,
      # Variant names to run out of the grid (empty: all); each size's reference included.
      only=(),
      # XLA:CPU backend (LLVM) optimisation level the binary compiles with; None: XLA's
      # default (2). 1 compiles 25-65% faster at the same step and forward time (docstring);
      # the smoke's 0 compiles faster still but runs ~2.6x slower, so its latencies are not
      # the architectures' (the level is in every record's environment).
      xla_backend_optimization_level=1))
  # Batch 1 only: the report reads batch-1 latency, FLOPs and memory; a second batch size
  # would compile and time a second forward program per variant for nothing it shows.
  c.efficiency = ml_collections.ConfigDict(dict(latency_repeats=20, time_latency=True,
                                                measure_batch=1))
  c.report = ml_collections.ConfigDict(dict(
      title="Squeezed speech encoders: what SEW's squeeze and compact extractor cost",
      axes=("efficiency.latency_ms", "efficiency.flops", "efficiency.params",
            "efficiency.peak_bytes"),
      metrics=("accuracy.der", "accuracy.der_heldout_voice", "accuracy.worst_family_der"),
      reference=""))
  if args.variant == "smoke":
    c.population.members = args.members or 2
    c.mesh.member_shards = 1  # One compiled step for both members on a multi-device host.
    c.optimizer.warmup_steps = 1
    c.dataset.max_train_examples = 64
    c.dataset.max_test_examples = 16
    c.train.update(dict(steps=4, steps_per_dispatch=4, log_every=4, checkpoint_every=4,
                        eval_every=4, batch_size=8))
    # Two variants, the reference (original, s = 1) and compact at s = 2, so the verdicts,
    # cost sentences and frontier render.
    c.study.update(dict(extractors=("original", "compact"), squeezes=(1, 2),
                        encoders=("1x16",), original_channels=16, compact_channels=2,
                        only=("original_s1_1x16", "compact_s2_1x16"),
                        xla_backend_optimization_level=0))
    c.efficiency.update(dict(latency_repeats=2))
    # One shared frontier figure (latency) instead of four: the same plotting code runs.
    c.report.axes = ("efficiency.latency_ms",)
  return c
