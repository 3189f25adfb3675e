r"""The low-resource double bind on bible_en_es (see `tradeoffs.studies.low_resource_mt`).

    python -m experiments.low_resource_mt --config=experiments/configs/low_resource_mt.py
    python -m experiments.low_resource_mt \
        --config=experiments/configs/low_resource_mt.py:smoke --workdir=/tmp/mt_smoke

Default: both resource levels (6,000 and 25,778 training pairs), dense and gradual magnitude
pruning at 50/70/90% plus one-shot pruning of the dense members at the same sparsities; 3
members each; a 2+2-layer d_model=64 Transformer, 2,000 BPE merges, sentences of at most 72
subwords; 600 training steps of 32 pairs; the first 300 test verses.
Measured time: NOT measured here (the machine was shared by ~8 jobs at load 12-17 during
development); expect well over 10 minutes on 2 cores — 8 trainings of 600 steps and 14
decodes of 600 sentences — and shrink steps/max_test_examples first if that matters.
`:smoke`: 400 high / 100 low training pairs, 1+1-layer d_model=16 model, 30 steps, 16 test
verses, one-shot pruning to 50% only. Measured under load 12-17 (2 cores shared by ~8 jobs):
5.3 min wall / 70 s CPU with gradual variants too, 5.3 min wall as configured inside the
all-studies test; re-measured as configured (one-shot only) at 53 s CPU (user+sys; ~15 min
wall at load 10-26). It is far above the 15 s budget: most of it is XLA compilation (per
resource level a population init and a training scan, then the greedy-decoding loop) —
not yet cut down.
"""
from __future__ import annotations

import ml_collections

from experiments.configs import common


def get_config(arg=None):
  args = common.parse_arg(arg, variants=("smoke",), members=0)
  c = ml_collections.ConfigDict()
  c.study = ml_collections.ConfigDict(dict(
      resources=("low", "high"),
      sparsities=(0.0, 0.7),
      schedules=("gradual", "one_shot"),
      num_buckets=5,
      members=args.members or 3,
      seed=0,
      steps=200, batch_size=32, learning_rate=3e-3,
      num_merges=2000, max_length=72,
      max_test_examples=200,   # the first test verses (0: all 1,423)
      max_train_examples=0,    # 0: the full resource level
      model=ml_collections.ConfigDict(dict(d_model=64, num_heads=4, num_layers=2,
                                           ffn_dim=128, dropout=0.1))))
  c.efficiency = ml_collections.ConfigDict(dict(latency_repeats=1, time_latency=False,
                                                measure_batch=1))
  c.report = ml_collections.ConfigDict(dict(
      title="The low-resource double bind: pruning English→Spanish translation",
      axes=("efficiency.nonzero_params",), metrics=("accuracy.chrf", "accuracy.ood_chrf"),
      reference="dense_high"))
  if args.variant == "smoke":
    c.study.update(dict(sparsities=(0.0, 0.5), schedules=("one_shot",), steps=30,
                        members=args.members or 2,
                        batch_size=16, num_merges=150, max_length=96, max_test_examples=16,
                        max_train_examples=400, num_buckets=2))
    c.study.model = ml_collections.ConfigDict(dict(d_model=16, num_heads=2, num_layers=1,
                                                   ffn_dim=32, dropout=0.0))
  return c
