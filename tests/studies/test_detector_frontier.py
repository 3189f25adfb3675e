"""detector_frontier: the plan, its validation messages, and the verdicts and front drawn
from hand-made records (the end-to-end smoke is tests/studies/test_all_studies.py)."""

import numpy as np
import pytest

from experiments.configs import detector_frontier as config_lib
from tradeoffs import stats
from tradeoffs.studies import detector_frontier as study


def test_plan_crosses_the_axes_with_detections_innermost():
  variants = study.plan(config_lib.get_config())
  assert len(variants) == 2 * 2 * 2 * 3
  assert variants[0].name == "centernet_w0.5_r32_k5"
  assert [v.knobs["detections"] for v in variants[:3]] == [5, 20, 100]
  assert {v.technique for v in variants} == {"centernet", "ssd"}
  assert all(v.knobs["seeds"] == [0, 1, 2] for v in variants)
  assert len(study.plan(config_lib.get_config("smoke"))) == 2


@pytest.mark.parametrize("path,value,needle", [
    ("nms_iou_threshold", 0.0, "--config.study.nms_iou_threshold=0.0"),
    ("nms_iou_threshold", 1.5, "(0, 1]"),
    ("match_iou_threshold", -0.2, "--config.study.match_iou_threshold"),
    ("detections", (0,), "--config.study.detections=0"),
    ("detections", (5, -1), "--config.study.detections=-1"),
    ("detections", (5, 5), "distinct"),
    ("resolutions", (30,), "multiple of the backbone stride 4"),
    ("resolutions", (128,), "<= scene.image_size"),
    ("widths", (0.0,), "--config.study.widths=0.0"),
    ("seeds", (0,), "at least 2"),
    ("meta_architectures", ("yolo",), "meta_architectures"),
    ("steps", 0, "--config.study.steps=0"),
    ("scene.max_side", 80, "--config.study.scene.max_side=80: expected"),
    ("scene.min_side", 2, "--config.study.scene.min_side=2"),
])
def test_bad_input_names_the_field(path, value, needle):
  config = config_lib.get_config("smoke")
  section = config.study
  *parents, leaf = path.split(".")
  for p in parents:
    section = section[p]
  section[leaf] = value
  with pytest.raises(ValueError) as info:
    study.plan(config)
  assert needle in str(info.value)


def _record(meta, width, res, k, maps, small=None, large=None, groups=None, latency=1.0):
  acc = {"map": float(np.mean(maps)), "per_seed_map": list(maps)}
  if small is not None:
    acc.update(per_seed_map_small=list(small), per_seed_map_large=list(large),
               map_small=float(np.mean(small)), map_large=float(np.mean(large)))
  hidden = {}
  if groups:
    (hard, worst), (_, others) = groups
    acc[f"per_seed_map_{hard}"] = list(worst)
    acc["per_seed_map_other_backgrounds"] = list(others)
    hidden["hardest_background"] = hard
  return {"variant": study.variant_name(meta, width, res, k),
          "knobs": {"meta_architecture": meta, "width_multiplier": width, "resolution": res,
                    "detections": k},
          "accuracy": acc, "hidden_costs": hidden,
          "efficiency": {"latency_ms": latency, "flops": latency * 1e6}}


def test_resolution_claims_are_welch_and_see_a_drop():
  records = [_record("ssd", 1.0, 32, 20, [0.10, 0.11, 0.12]),
             _record("ssd", 1.0, 64, 20, [0.20, 0.21, 0.22])]
  (claim,) = study.resolution_claims(records)
  assert claim.test == "welch" and claim.verdict == stats.LOWER
  assert claim.estimate == pytest.approx(-0.10)


def test_detection_claims_are_paired():
  records = [_record("centernet", 1.0, 64, 5, [0.10, 0.12, 0.11]),
             _record("centernet", 1.0, 64, 100, [0.101, 0.121, 0.111])]
  (claim,) = study.detection_claims(records)
  assert claim.test == "paired"
  assert claim.estimate == pytest.approx(-0.001)
  assert claim.low == pytest.approx(-0.001) and claim.p < 1e-6  # constant differences


def test_hidden_cost_claims_use_the_most_detections():
  records = [_record("ssd", 1.0, 64, 5, [0.1, 0.1, 0.1], [0.9, 0.9, 0.9], [0.0, 0.0, 0.0]),
             _record("ssd", 1.0, 64, 100, [0.2, 0.21, 0.22], [0.05, 0.06, 0.08],
                     [0.30, 0.32, 0.33], groups=(("clutter", [0.1, 0.12, 0.11]),
                                                 (None, [0.25, 0.26, 0.28])))]
  claims = study.hidden_cost_claims(records)
  assert [c.claim for c in claims] == [
      "ssd_w1_r64_k100: mAP small − large objects",
      "ssd_w1_r64_k100: mAP on clutter − other backgrounds"]
  assert claims[0].estimate == pytest.approx(np.mean([-0.25, -0.26, -0.25]))
  assert claims[1].estimate == pytest.approx(np.mean([-0.15, -0.14, -0.17]))
  assert all(c.p_holm >= c.p for c in claims)


def test_front_is_the_pareto_set_of_map_against_latency():
  fast = _record("ssd", 0.5, 32, 5, [0.1, 0.1], latency=1.0)
  slow_better = _record("ssd", 1.0, 64, 5, [0.3, 0.3], latency=3.0)
  dominated = _record("centernet", 1.0, 64, 5, [0.2, 0.2], latency=4.0)
  front = study.front([fast, slow_better, dominated])
  assert [r["variant"] for r in front] == [fast["variant"], slow_better["variant"]]
  blocks = study.sections([fast, slow_better, dominated], config_lib.get_config("smoke"))
  assert ("h2", "The speed/accuracy frontier") in blocks
  table = next(b for b in blocks if b[0] == "table")
  assert [row[-1] for row in table[2]] == ["yes", "yes", ""]
