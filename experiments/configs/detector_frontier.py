r"""Speed/accuracy frontier of small object detectors (Huang et al. 2017, PAPERS.md 6).

    python -m experiments.detector_frontier            # workdir workdirs/detector_frontier
    python -m experiments.detector_frontier \
        --config=experiments/configs/detector_frontier.py:smoke --workdir=/tmp/df_smoke

Procedural scenes (`tradeoffs.detection.synthetic`: 1-4 of 13 classes — the 10 UCI digit
glyphs, square, disk, triangle — with sides 6-28 px on 64x64 flat / gradient / stripes /
clutter backgrounds; 768 train and 256 test scenes); CenterNet- and SSD-style one-stage
detectors on the CNN conv stack (8-16-32 channels, head 32) at width x0.5 and x1, input
64 px and 32 px, keeping 5, 20 or 100 detections per image; 3 seeds each (one detector
per seed, 400 Adam steps of 16 scenes at lr 3e-3); 24 variants from 12 x 3 trainings.

Measured runtime (fresh process, 2 cores shared with ~8 other jobs, load 10-27): default
21 min 22 s wall, 313 s user CPU (24 variants; an earlier run of the same grid at load ~10
took 11 min 11 s) — on idle cores expect well under 10 min; `:smoke` (both heads, width
x0.5, 32 px, 20 detections, 2 seeds, 20 steps; 2 variants) 17.1 s user CPU at load ~23
(165 s wall there; mostly XLA compiles, idle wall not measured).

Result of the default (mAP@[.5:.95] x100, mean [95% t interval] over 3 seeds):
  best: centernet x1 at 64 px, 100 detections 17.5 [8.4, 26.6]; ssd x1 64 px 8.2 [4.5, 11.9]
  32 px against 64 px: mAP -50% on average (e.g. centernet x1 -10.8 pt [-19.6, -1.9])
    for -69% FLOPs; no single resolution claim survives Holm (Welch, n = 3/3)
  5 against 100 detections: -0.8 to -2.1 pt, lower in all 8 (paired, Holm p <= 0.05)
  small against large objects: -5 to -14 pt (paired, uncorrected p 0.004-0.10; none
    survives Holm over 16); hardest background kind against the other kinds: < 1 pt
    in most, none detectable
  Latencies at batch 1 are 0.2-4 ms and dominated by call overhead and load spikes on
  this CPU, so the Pareto front of mAP against latency is noisy; FLOPs are exact.
"""
from __future__ import annotations

import ml_collections

from experiments.configs import common


def get_config(arg=None):
  args = common.parse_arg(arg, variants=("smoke",), seeds=0)
  c = ml_collections.ConfigDict()
  c.study = ml_collections.ConfigDict(dict(
      meta_architectures=("centernet", "ssd"),
      widths=(0.5, 1.0),                  # backbone + head width multipliers
      resolutions=(32, 64),               # input side (px); scenes drawn at scene.image_size
      detections=(5, 20, 100),            # detections kept per image
      seeds=tuple(range(args.seeds or 3)),  # one detector per seed (init + batch order)
      channels=(8, 16, 32), head=32,      # the backbone's conv widths (stride 4) and head
      steps=400, batch_size=16, learning_rate=3e-3,
      train_images=768, test_images=256, data_seed=0,
      pre_nms=300,                        # SSD: candidates entering NMS
      nms_iou_threshold=0.5,              # SSD's NMS
      match_iou_threshold=0.5,            # the single-threshold mAP (COCO's AP50)
      small_side=0.1875, large_side=0.3125,  # size buckets as fractions of the side
      scene=ml_collections.ConfigDict(dict(
          image_size=64, min_objects=1, max_objects=4, min_side=6, max_side=28,
          max_overlap=0.3))))
  c.efficiency = ml_collections.ConfigDict(dict(latency_repeats=20, time_latency=True,
                                                measure_batch=16))
  c.report = ml_collections.ConfigDict(dict(
      title="Speed/accuracy trade-offs of small object detectors",
      axes=("efficiency.latency_ms", "efficiency.flops"),
      metrics=("accuracy.map", "accuracy.map_small")))
  if args.variant == "smoke":
    c.study.widths = (0.5,)
    c.study.resolutions = (32,)
    c.study.detections = (20,)
    c.study.seeds = tuple(range(args.seeds or 2))
    c.study.steps = 20
    c.study.train_images = 64
    c.study.test_images = 24
    c.efficiency.latency_repeats = 2
    c.efficiency.measure_batch = 1
  return c
