r"""SEW-style squeezed speech encoders on spoken digit strings (Wu et al. 2021), offline.

    python -m experiments.squeezed_speech        # workdir workdirs/squeezed_speech

Data: `spoken_digits` (900 training utterances of 1-4 digits from 16 espeak-ng voices,
150 test utterances of the same voices, 150 of 3 held-out voices; 8 kHz, padded to 1.93 s
= 48 extractor frames). Model: `speech_ctc` — the original (uniform, c = 32 channels) or
compact (c = 8 growing to 64, one 1x1 conv per stage) waveform feature extractor, squeeze
s in {1, 2, 4}, and a pre-LN Transformer encoder of 1 layer × d 32 or 2 layers × d 64 (FFN
4d, 4 heads), a CTC head over 10 digits + blank. Trained from scratch with CTC (no wav2vec
2.0 pre-training: out of reach on 2 CPU cores): Adam 2e-3, batch 16, 600 steps, dropout
0.1, 3 members sharing seeds by index.
Measured (all under heavy load: 2 CPU cores shared by ~8 jobs, load average 12-25): the
default did NOT complete in this session. Its first variant (original_s1_1x32, 3 members,
600 steps) took 1,160 s wall at 0.4-0.6 steps/s; at that rate the 12 variants need ~3.5 h.
On idle cores a rough estimate is 25-30 min (1 member of compact_s2_1x32 trained 600 steps
in ~130 s wall at load ~12), i.e. over the ~10 min target; not measured. `:smoke` (compact,
s = 2, encoder 1x16, 2 members, 4 steps on 64 utterances; used by the tests) took 176 s wall
and 58 s CPU (user + sys) at load ~11-19, re-measured 2026-12-02; ~75% of it is XLA:CPU
compilation, and most of that is LLVM optimising the narrow convolutions (the vmapped
population init alone: ~12-29 s CPU). With XLA_FLAGS=--xla_backend_optimization_level=0
the same smoke took 29 s CPU at load ~20 with identical records; c = 8 without 1x1 convs
instead of c = 2 did not help (58 s CPU).
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
  c.train.update(dict(steps=300, batch_size=16, steps_per_dispatch=100, log_every=100,
                      checkpoint_every=300, eval_every=300, loss="ctc"))
  c.eval.batch_size = 150
  c.study = ml_collections.ConfigDict(dict(
      extractors=("original", "compact"),
      squeezes=(1, 2, 4),
      # "<layers>x<d_model>": FFN 4·d, 4 heads.
      encoders=("1x32", "2x64"),
      # c of each extractor: original uses c everywhere, compact grows c..8c; SEW's ratio
      # (WFE-O 512 = 8 x WFE-C's c = 64), so both end at the same width.
      original_channels=32, compact_channels=4,
      # Variant names to run out of the grid (empty: all); each size's reference included.
      only=(),
      # XLA:CPU backend (LLVM) optimisation level the binary compiles with; None: XLA's
      # default. Only the smoke lowers it: O0 code runs slower, so latencies measured under
      # it are not the architectures' (the level is in every record's environment).
      xla_backend_optimization_level=None))
  c.efficiency = ml_collections.ConfigDict(dict(latency_repeats=20, time_latency=True,
                                                measure_batch=16))
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
    c.efficiency.update(dict(latency_repeats=2, measure_batch=1))
  return c
