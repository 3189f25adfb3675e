"""Object detection as pure functions: boxes and their coding, IoU, jit-able NMS with
fixed-size outputs, COCO-style mAP, CenterNet- and SSD-style targets/losses/decoding, a
compact jitted training loop, RoI Align for a second stage, and a seeded procedural
detection set.

    from tradeoffs.detection import boxes, metrics, nms, synthetic
    data = synthetic.generate(seed=0, count=256)
    keep, valid = nms.nms(b, s, iou_threshold=0.5, max_outputs=20)
    metrics.evaluate(gt_boxes, gt_classes, det_boxes, det_scores, det_classes)["map"]

No Flax here: the heads live in `tradeoffs.models.detectors`; the training loop takes an
apply function.
"""

from tradeoffs.detection import boxes
from tradeoffs.detection import centernet
from tradeoffs.detection import metrics
from tradeoffs.detection import nms
from tradeoffs.detection import roi
from tradeoffs.detection import ssd
from tradeoffs.detection import synthetic
from tradeoffs.detection import training

__all__ = ["boxes", "centernet", "metrics", "nms", "roi", "ssd", "synthetic", "training"]
