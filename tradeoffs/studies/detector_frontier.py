"""Speed/accuracy of object detectors (Huang et al., CVPR 2017; PAPERS.md section 6) on a
procedural detection set: meta-architecture x backbone width x input resolution x number
of detections, each configuration a point of (measured latency, FLOPs, memory, mAP).

    config -> scenes (`detection.synthetic`, a pure function of the seed) -> per
    (meta-architecture, width, resolution): one detector per seed, trained with
    `detection.training` -> per number of detections: decode + NMS, COCO-style mAP
    (`detection.metrics`) per seed, overall, per size bucket and per background kind ->
    the Pareto front of mAP against latency; verdicts, Holm-corrected per section

Formulations chosen (the paper's settings are [mem]; what is run here is small):
  * meta-architectures: `centernet` (centre heatmap, no NMS) and `ssd` (anchors, focal
    loss, class-aware NMS) from `tradeoffs.models.detectors`, both one-stage on the
    registry CNN's conv stack; no two-stage (proposals + RoI pooling) variant was built,
    so "number of proposals" is here the number of detections kept per image (the
    decoder's top-k / NMS output size), a test-time knob like the paper's proposal count.
  * resolution: the same scenes drawn at `scene.image_size` and resampled (antialiased)
    to each resolution, boxes scaled exactly; size buckets scale with the side (small <
    `small_side`·S, large >= `large_side`·S, as fractions of the side S), so a bucket
    holds the same objects at every resolution.
  * latency / FLOPs / memory: `tradeoffs.efficiency.measure` of the whole test-time
    computation (backbone, head, decoding, NMS) at batch 1 and `efficiency.measure_batch`;
    mAP: mean over seeds with the 95% t interval (`stats.t_interval`); every seed trains
    its own detector (init and batch order from the seed), all on the same scenes.
  * verdicts: halving the resolution (Welch over seeds: retrained detectors), fewer
    detections (paired: the same detectors decoded twice), small against large objects and
    the hardest background kind against the other kinds' mean (paired: the same detectors
    on subsets of one test set), each section one Holm family.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Mapping, Sequence

import jax
import numpy as np
import optax

from tradeoffs import efficiency as efficiency_lib
from tradeoffs import stats
from tradeoffs.detection import boxes as boxes_lib
from tradeoffs.detection import metrics
from tradeoffs.detection import synthetic
from tradeoffs.detection import training
from tradeoffs.models import detectors
from tradeoffs.report import figures
from tradeoffs.report import format as fmt
from tradeoffs.report import pareto
from tradeoffs.report import verdict as verdict_lib
from tradeoffs.studies import base

NAME = "detector_frontier"
TITLE = "Speed/accuracy trade-offs of small object detectors"
LEDGER = False
BUCKETS = ("small", "medium", "large")
_tuple = base.as_tuple
check_number = base.check_number


# ---------------------------------------------------------------------------------------
# Plan.


def scene_config(study: Any) -> synthetic.SceneConfig:
  s = study.scene
  return synthetic.SceneConfig(**{k: s[k] for k in s.keys()}).check(
      prefix="--config.study.scene.")


def validate(config: Any) -> None:
  if "study" not in config:
    raise ValueError("config has no 'study' section; use experiments/configs/"
                     "detector_frontier.py")
  s = config.study
  metas = _tuple(s.meta_architectures)
  if not metas or len(set(metas)) != len(metas) or any(m not in detectors.names()
                                                       for m in metas):
    raise ValueError(f"--config.study.meta_architectures={metas!r}: expected distinct names "
                     f"from {detectors.names()}")
  scene = scene_config(s)
  stride = 2 ** (len(_tuple(s.channels)) - 1)
  for name, low, integer in (("widths", 0, False), ("resolutions", 16, True),
                             ("detections", 1, True)):
    values = _tuple(s[name])
    if not values or len(set(values)) != len(values):
      raise ValueError(f"--config.study.{name}={values!r}: expected distinct values")
    for v in values:
      check_number(v, f"study.{name}", low, low_open=(low == 0), integer=integer)
  for r in _tuple(s.resolutions):
    if r > scene.image_size or r % stride:
      raise ValueError(f"--config.study.resolutions={r!r}: expected a multiple of the "
                       f"backbone stride {stride} that is <= scene.image_size "
                       f"({scene.image_size})")
  seeds = _tuple(s.seeds)
  if len(seeds) < 2 or len(set(seeds)) != len(seeds) or any(
      isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in seeds):
    raise ValueError(f"--config.study.seeds={seeds!r}: expected at least 2 distinct ints "
                     ">= 0 (intervals over seeds)")
  for name in ("nms_iou_threshold", "match_iou_threshold"):
    try:
      boxes_lib.check_iou_threshold(s[name], f"--config.study.{name}")
    except ValueError as e:
      raise ValueError(str(e)) from None
  for name in ("steps", "batch_size", "train_images", "test_images", "pre_nms", "head"):
    check_number(s[name], f"study.{name}", 1, integer=True)
  check_number(s.learning_rate, "study.learning_rate", 0, low_open=True)
  check_number(s.small_side, "study.small_side", 0, 1, low_open=True, high_open=True)
  check_number(s.large_side, "study.large_side", s.small_side, 1, low_open=True)
  for c in _tuple(s.channels):
    check_number(c, "study.channels", 1, integer=True)


def variant_name(meta: str, width: float, resolution: int, detections: int) -> str:
  return f"{meta}_w{float(width):g}_r{int(resolution)}_k{int(detections)}"


def plan(config: Any) -> list[base.Variant]:
  """One variant per (meta-architecture, width, resolution, detections); detections
  innermost, so one training serves every detection count."""
  validate(config)
  s = config.study
  out = []
  for meta, width, res in itertools.product(_tuple(s.meta_architectures), _tuple(s.widths),
                                            sorted(_tuple(s.resolutions))):
    for k in sorted(_tuple(s.detections)):
      knobs = {"meta_architecture": meta, "width_multiplier": float(width),
               "resolution": int(res), "detections": int(k),
               "seeds": [int(v) for v in s.seeds]}
      out.append(base.Variant(variant_name(meta, width, res, k), meta, knobs))
  return out


# ---------------------------------------------------------------------------------------
# Produce.


def _data(ctx: Any, resolution: int) -> tuple[synthetic.DetectionSet, synthetic.DetectionSet]:
  s = ctx.config.study
  if "data" not in ctx.cache:
    scene = scene_config(s)
    ctx.cache["data"] = (synthetic.generate(int(s.data_seed), int(s.train_images), scene,
                                            "train"),
                         synthetic.generate(int(s.data_seed), int(s.test_images), scene,
                                            "test"))
  key = f"data:{resolution}"
  if key not in ctx.cache:
    ctx.cache[key] = tuple(synthetic.resize(d, resolution) for d in ctx.cache["data"])
  return ctx.cache[key]


def _net(study: Any, meta: str, width: float) -> Any:
  return detectors.get(meta, num_classes=len(synthetic.CLASSES), width_multiplier=width,
                       channels=tuple(int(c) for c in study.channels), head=int(study.head))


def _trained(ctx: Any, meta: str, width: float, resolution: int) -> dict[str, Any]:
  """One detector per seed for (meta, width, resolution), trained once per run."""
  key = f"trained:{meta}:{width}:{resolution}"
  if key in ctx.cache:
    return ctx.cache[key]
  s = ctx.config.study
  train, _ = _data(ctx, resolution)
  net = _net(s, meta, width)
  tx = optax.adam(float(s.learning_rate))
  step = training.make_step(net.apply, detectors.loss_fn(net, resolution), tx)
  # Jitted, and from an `rbg` key: on XLA:CPU the threefry init of these models compiles
  # ~4x slower (29 s against 7 s under load); rbg is deterministic on CPU as well.
  init_fn = jax.jit(net.init)
  params, losses, seconds = [], [], []
  for seed in s.seeds:
    init = init_fn(jax.random.key(int(seed), impl="rbg"), train.images[:1])
    p, info = training.fit(init, step, tx, train, steps=int(s.steps),
                           batch_size=int(s.batch_size), seed=int(seed))
    params.append(p)
    losses.append(info["loss"][-1])
    seconds.append(info["seconds"])
  ctx.cache[key] = {"net": net, "params": params, "final_loss": losses, "seconds": seconds}
  return ctx.cache[key]


def _ranges(study: Any, resolution: int) -> dict[str, tuple[float, float]]:
  return metrics.area_ranges(float(study.small_side) * resolution,
                             float(study.large_side) * resolution)


def _scores(study: Any, test: synthetic.DetectionSet, dets: Mapping[str, np.ndarray],
            resolution: int, max_detections: int) -> dict[str, float]:
  """mAP at 0.5:0.95, at the match threshold, per size bucket, and per background kind."""
  gt_boxes, gt_classes = test.ground_truth()
  match = float(study.match_iou_threshold)
  det = (list(dets["boxes"]), list(dets["scores"]), list(dets["classes"]))
  size = (resolution, resolution)
  out = metrics.evaluate(gt_boxes, gt_classes, *det, ranges=_ranges(study, resolution),
                         max_detections=max_detections, image_sizes=[size] * len(test))
  at_match = metrics.evaluate(gt_boxes, gt_classes, *det, iou_thresholds=(match,),
                              ranges={"all": (0.0, 1e10)}, max_detections=max_detections)
  out["map_match"] = at_match["map"]
  for g, name in enumerate(test.background_names):
    index = np.flatnonzero(test.background == g)
    if not len(index):
      continue
    sub = metrics.evaluate([gt_boxes[i] for i in index], [gt_classes[i] for i in index],
                           *[[d[i] for i in index] for d in det],
                           ranges={"all": (0.0, 1e10)}, max_detections=max_detections)
    out[f"map_{name}"] = sub["map"]
  out.pop("ap_per_threshold", None)
  return out


def produce(ctx: Any, variant: base.Variant) -> base.Outcome:
  s = ctx.config.study
  k = variant.knobs
  meta, width = str(k["meta_architecture"]), float(k["width_multiplier"])
  resolution, count = int(k["resolution"]), int(k["detections"])
  trained = _trained(ctx, meta, width, resolution)
  _, test = _data(ctx, resolution)
  net = trained["net"]
  inference = detectors.decode_fn(net, resolution, max_detections=count,
                                  pre_nms=int(s.pre_nms),
                                  iou_threshold=float(s.nms_iou_threshold))
  run = jax.jit(inference)
  per_seed: dict[str, list[float]] = {}
  for params in trained["params"]:
    dets = jax.device_get(run(params, test.images))
    for key, value in _scores(s, test, dets, resolution, count).items():
      per_seed.setdefault(key, []).append(float(value))
  accuracy: dict[str, Any] = {key: float(np.mean(v)) for key, v in per_seed.items()}
  accuracy.update({f"per_seed_{key}": v for key, v in per_seed.items()})
  groups = {name: accuracy[f"map_{name}"] for name in test.background_names
            if f"map_{name}" in accuracy}
  hardest = min(groups, key=groups.get) if len(groups) > 1 else None
  # The other kinds' mean per seed: a subset's mAP is not comparable with the whole test
  # set's (fewer images rank differently), but subsets of one size are with each other.
  if hardest:
    others = [per_seed[f"map_{g}"] for g in groups if g != hardest]
    accuracy["per_seed_map_other_backgrounds"] = [float(v) for v in np.mean(others, axis=0)]
    accuracy["map_other_backgrounds"] = float(np.mean(others))
  hidden = {"small_object_gap": accuracy["map_large"] - accuracy["map_small"]
            if math.isfinite(accuracy.get("map_small", math.nan))
            and math.isfinite(accuracy.get("map_large", math.nan)) else None,
            "hardest_background": hardest,
            "hardest_background_gap": accuracy["map_other_backgrounds"] - groups[hardest]
            if hardest else None}
  opts = ctx.efficiency
  eff = efficiency_lib.measure(inference, trained["params"][0],
                               test.images[:max(1, min(opts["measure_batch"], len(test)))],
                               repeats=opts["repeats"], time_it=opts["time_it"])
  eff["notes"] = dict(eff.get("notes") or {}, scope="backbone + head + decoding + NMS, "
                      "float32, member 0 (every seed has the same architecture)")
  fields = {"seeds": list(k["seeds"]), "train_seconds": trained["seconds"],
            "final_loss": trained["final_loss"], "stride": int(net.stride),
            "test_images": len(test), "objects": int(test.valid.sum()),
            "buckets": {name: list(r) for name, r in _ranges(s, resolution).items()},
            "background_counts": {name: int((test.background == g).sum())
                                  for g, name in enumerate(test.background_names)}}
  return base.Outcome(members=len(trained["params"]), efficiency=eff, logits=None,
                      accuracy=accuracy, hidden_costs=hidden, study_fields=fields)


# ---------------------------------------------------------------------------------------
# The report.


def _k(r: Mapping[str, Any], key: str) -> Any:
  return (r.get("knobs") or {}).get(key)


def _seeds(r: Mapping[str, Any], metric: str) -> list[float] | None:
  v = (r.get("accuracy") or {}).get(f"per_seed_{metric}")
  if not isinstance(v, list) or not v or any(x is None or not math.isfinite(x) for x in v):
    return None
  return [float(x) for x in v]


def _cell(values: list[float] | None) -> str:
  if values is None:
    return fmt.DASH
  mean, low, high = stats.t_interval(values)
  if not math.isfinite(low):
    return f"{100 * mean:.1f}"
  return f"{100 * mean:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def front(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
  usable = [r for r in records if pareto.as_number(pareto.get_path(r, "efficiency.latency_ms"))
            is not None]
  return pareto.pareto_front(usable, "efficiency.latency_ms", "accuracy.map") if usable else []


def results_table(records: Sequence[Mapping[str, Any]]) -> tuple[Any, ...]:
  on = {id(r) for r in front(records)}
  headers = ["Variant", "Latency ms (b=1)", "GFLOPs (b=1)", "Peak MB", "mAP [95% CI]",
             "mAP@match [95% CI]", "small", "medium", "large", "Hardest background",
             "Pareto"]
  rows = []
  for r in records:
    e, h = r.get("efficiency") or {}, r.get("hidden_costs") or {}
    hard = h.get("hardest_background")
    rows.append([r["variant"], fmt.number(e.get("latency_ms")),
                 fmt.number((e.get("flops") or 0) / 1e9),
                 fmt.number((e.get("peak_bytes") or 0) / 1e6) if e.get("peak_bytes")
                 else fmt.DASH,
                 _cell(_seeds(r, "map")), _cell(_seeds(r, "map_match")),
                 *[_cell(_seeds(r, f"map_{b}")) for b in BUCKETS],
                 f"{hard}: {_cell(_seeds(r, f'map_{hard}'))}" if hard else fmt.DASH,
                 "yes" if id(r) in on else ""])
  return ("table", headers, rows)


def plot_frontier(records: Sequence[Mapping[str, Any]]):
  """mAP against latency and against FLOPs (95% t intervals over seeds); the Pareto front
  of mAP against latency as a line; colour = meta-architecture, marker = resolution."""
  points = [r for r in records if _seeds(r, "map") is not None]
  if not points:
    return None
  fig, axs = figures.new(2)
  metas = sorted({_k(r, "meta_architecture") for r in points})
  resolutions = sorted({_k(r, "resolution") for r in points})
  markers = "osD^v<>"
  for ax, axis, label in ((axs[0], "latency_ms", "latency per image, batch 1 (ms)"),
                          (axs[1], "flops", "FLOPs per image (batch 1)")):
    for r in points:
      x = (r.get("efficiency") or {}).get(axis)
      if x is None:
        continue
      mean, low, high = stats.t_interval(_seeds(r, "map"))
      err = [[mean - low], [high - mean]] if math.isfinite(low) else None
      ax.errorbar([x], [mean], yerr=err, capsize=2, linestyle="none",
                  marker=markers[resolutions.index(_k(r, "resolution")) % len(markers)],
                  color=figures.color(metas.index(_k(r, "meta_architecture"))), alpha=0.8,
                  markersize=4 + 2 * _k(r, "width_multiplier"))
    ax.set_xscale("log")
    ax.set_xlabel(label + " — cheaper ←")
    ax.set_ylabel("mAP@[.5:.95] (↑ better)")
  line = front(points)
  if line:
    axs[0].plot([r["efficiency"]["latency_ms"] for r in line],
                [r["accuracy"]["map"] for r in line], "k--", lw=1, label="Pareto front")
  for j, m in enumerate(metas):
    axs[0].plot([], [], "o", color=figures.color(j), label=m)
  for j, res in enumerate(resolutions):
    axs[0].plot([], [], markers[j % len(markers)], color="grey", label=f"{res} px")
  axs[0].legend(fontsize=8)
  axs[0].set_title("mAP against measured latency")
  axs[1].set_title("mAP against FLOPs (marker size = width)")
  return fig


def _group(records: Sequence[Mapping[str, Any]], *drop: str) -> dict[tuple, list]:
  out: dict[tuple, list] = {}
  for r in records:
    key = tuple((n, _k(r, n)) for n in ("meta_architecture", "width_multiplier",
                                         "resolution", "detections") if n not in drop)
    out.setdefault(key, []).append(r)
  return out


def resolution_claims(records: Sequence[Mapping[str, Any]]) -> list[stats.Comparison]:
  """Lowest against highest resolution at each (meta, width, detections): Welch over
  seeds (each resolution retrains its detectors)."""
  claims = []
  for rs in _group(records, "resolution").values():
    rs = sorted(rs, key=lambda r: _k(r, "resolution"))
    low, high = rs[0], rs[-1]
    a, b = _seeds(low, "map"), _seeds(high, "map")
    if len(rs) < 2 or a is None or b is None:
      continue
    claims.append(stats.compare(a, b, paired=False, claim=(
        f"{low['variant']} vs {_k(high, 'resolution')} px: mAP")))
  return stats.family(claims)


def detection_claims(records: Sequence[Mapping[str, Any]]) -> list[stats.Comparison]:
  """Fewest against most detections, paired (the same detectors decoded twice)."""
  claims = []
  for rs in _group(records, "detections").values():
    rs = sorted(rs, key=lambda r: _k(r, "detections"))
    a, b = _seeds(rs[0], "map"), _seeds(rs[-1], "map")
    if len(rs) < 2 or a is None or b is None:
      continue
    claims.append(stats.compare(a, b, paired=True, claim=(
        f"{rs[0]['variant']} vs {_k(rs[-1], 'detections')} detections: mAP")))
  return stats.family(claims)


def hidden_cost_claims(records: Sequence[Mapping[str, Any]]) -> list[stats.Comparison]:
  """Per variant at its most detections: mAP on small against large objects, and on the
  hardest background kind against the mean of the other kinds (paired over seeds)."""
  claims = []
  for rs in _group(records, "detections").values():
    r = max(rs, key=lambda r: _k(r, "detections"))
    small, large = _seeds(r, "map_small"), _seeds(r, "map_large")
    if small is not None and large is not None:
      claims.append(stats.compare(small, large, paired=True,
                                  claim=f"{r['variant']}: mAP small − large objects"))
    hard = (r.get("hidden_costs") or {}).get("hardest_background")
    worst, others = _seeds(r, f"map_{hard}"), _seeds(r, "map_other_backgrounds")
    if hard and worst is not None and others is not None:
      claims.append(stats.compare(worst, others, paired=True,
                                  claim=f"{r['variant']}: mAP on {hard} − other backgrounds"))
  return stats.family(claims)


def _relative(records, knob, pick_low, pick_high, metric_path):
  """Mean over groups of (low - high) / high of a record value, for the paper comparison."""
  out = []
  for rs in _group(records, knob).values():
    if len(rs) < 2:
      continue
    lo, hi = pick_low(rs), pick_high(rs)
    a, b = pareto.as_number(pareto.get_path(lo, metric_path)), pareto.as_number(
        pareto.get_path(hi, metric_path))
    if a is not None and b:
      out.append((a - b) / b)
  return float(np.mean(out)) if out else None


def paper_comparison(records: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
  by_res = lambda rs: sorted(rs, key=lambda r: _k(r, "resolution"))
  by_k = lambda rs: sorted(rs, key=lambda r: _k(r, "detections"))
  res_map = _relative(records, "resolution", lambda rs: by_res(rs)[0],
                      lambda rs: by_res(rs)[-1], "accuracy.map")
  res_time = _relative(records, "resolution", lambda rs: by_res(rs)[0],
                       lambda rs: by_res(rs)[-1], "efficiency.latency_ms")
  res_flops = _relative(records, "resolution", lambda rs: by_res(rs)[0],
                        lambda rs: by_res(rs)[-1], "efficiency.flops")
  k_map = _relative(records, "detections", lambda rs: by_k(rs)[0], lambda rs: by_k(rs)[-1],
                    "accuracy.map")
  k_time = _relative(records, "detections", lambda rs: by_k(rs)[0], lambda rs: by_k(rs)[-1],
                     "efficiency.latency_ms")
  pct = lambda v: fmt.DASH if v is None else f"{100 * v:+.1f}%"
  small = [r for r in records if _seeds(r, "map_small") and _seeds(r, "map_large")]
  gap = {m: float(np.mean([r["accuracy"]["map_large"] - r["accuracy"]["map_small"]
                           for r in small if _k(r, "meta_architecture") == m]))
         for m in sorted({_k(r, "meta_architecture") for r in small})}
  return [
      ("h2", "Against the paper (Huang et al. 2017)"),
      ("p", "Lowest against highest resolution, averaged over the other axes: mAP "
            f"{pct(res_map)}, latency {pct(res_time)}, FLOPs {pct(res_flops)}. The paper "
            "reports (PAPERS.md section 6, [mem]) about −15.9% accuracy for about −27% time "
            "when halving the resolution of its COCO detectors. Fewest against most "
            f"detections per image: mAP {pct(k_map)}, latency {pct(k_time)}; the paper's "
            "finding is that fewer proposals speed two-stage detectors up substantially at "
            "little accuracy cost — here the detectors are one-stage, so the count only "
            "truncates the decoder's output (no per-proposal second stage to save), and "
            "the time it saves is the NMS/top-k's, not a box classifier's. Mean mAP gap "
            "large − small objects per meta-architecture: "
            + ", ".join(f"{m} {100 * v:.1f} pt" for m, v in gap.items())
            + " (the paper: SSD is weak on small objects; compare the two gaps, and the "
              "hidden-cost verdicts above, before reading that into this scale).")]


def sections(records: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[Any, ...]]:
  records = list(records)
  fields = (records[0].get("study_fields") or {}) if records else {}
  blocks: list[tuple[Any, ...]] = [
      ("h2", "The speed/accuracy frontier"),
      ("p", f"{len(records)} configurations; each trained with {len(fields.get('seeds', []))} "
            f"seeds (one detector per seed) on the same procedural scenes and scored on "
            f"{fields.get('test_images')} test scenes ({fields.get('objects')} objects at "
            "the first resolution). mAP is COCO's mAP@[.5:.95] ×100 (mAP@match: at the "
            "config's single IoU threshold), means over seeds with 95% t intervals; "
            "latency is the median of timed calls of the whole test-time computation on "
            "this machine's CPU at batch 1; 'Pareto' marks the front of mAP against "
            "latency.")]
  figure = plot_frontier(records)
  if figure is not None:
    blocks.append(("figure", "detector_frontier.png", figure,
                   "mAP against latency (left; dashed: the Pareto front) and FLOPs (right), "
                   "95% t intervals over seeds."))
  blocks.append(results_table(records))
  for title, claims, text in (
      ("Halving the resolution", resolution_claims(records),
       "lowest against highest resolution; Welch t over seeds (retrained detectors)"),
      ("Fewer detections", detection_claims(records),
       "fewest against most detections per image; paired t over seeds (the same "
       "detectors)"),
      ("Hidden costs: small objects and the hardest background", hidden_cost_claims(records),
       "small against large objects, and the hardest background kind (lowest mean mAP) "
       "against the mean of the other kinds (subsets of similar size: a subset's mAP is "
       "not comparable with the whole set's), at the most detections; paired t over "
       "seeds; the hardest kind is picked on the same data, so its gap is biased away "
       "from zero — read it as an upper bound")):
    if claims:
      blocks += [("h2", title),
                 ("p", f"{len(claims)} claims in one family, Holm-corrected; {text}; "
                       "differences in mAP points."),
                 verdict_lib.table(claims)]
      blocks += [("p", verdict_lib.sentence(c)) for c in claims
                 if c.verdict != stats.NO_DIFFERENCE]
  return blocks + paper_comparison(records)
