"""CenterNet and SSD targets, decoding and training on hand-made inputs."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tradeoffs.detection import centernet, ssd, synthetic, training
from tradeoffs.models import detectors

BOX = np.array([[8, 8, 16, 16], [0, 0, 0, 0]], np.float32)  # one object, one padding slot
CLASSES = np.array([2, -1], np.int32)
VALID = np.array([True, False])


def test_centernet_targets_hand_computed():
  t = centernet.targets(BOX, CLASSES, VALID, grid=8, stride=4, num_classes=3)
  # Centre (12, 12) px = (3, 3) cells; size 2 x 2 cells; no sub-cell offset.
  assert int(t["index"][0]) == 3 * 8 + 3
  np.testing.assert_allclose(t["size"][0], [2, 2])
  np.testing.assert_allclose(t["offset"][0], [0, 0])
  heat = np.asarray(t["heatmap"])
  assert heat[3, 3, 2] == pytest.approx(1.0) and heat[..., :2].max() == 0.0
  sigma = 0.5  # max(2, 2) / 6 < 0.5 cells
  assert heat[3, 4, 2] == pytest.approx(np.exp(-1 / (2 * sigma ** 2)))
  np.testing.assert_array_equal(t["mask"], [1, 0])


def test_centernet_decode_reads_a_peak_back():
  g, c = 8, 3
  heat = np.full((g, g, c), -10.0, np.float32)
  heat[3, 5, 1] = 5.0  # row 3, column 5
  out = {"heatmap": heat, "size": np.full((g, g, 2), 2.0, np.float32),
         "offset": np.full((g, g, 2), 0.5, np.float32)}
  d = centernet.decode(out, stride=4, max_detections=4)
  assert d["boxes"].shape == (4, 4)
  assert int(d["classes"][0]) == 1
  np.testing.assert_allclose(d["boxes"][0], [(5.5 - 1) * 4, (3.5 - 1) * 4, (5.5 + 1) * 4,
                                             (3.5 + 1) * 4])
  assert float(d["scores"][1]) < 1e-3


def test_ssd_anchors_and_assignment():
  anchors = ssd.anchors(2, 8, [8.0], [1.0])  # 2 x 2 cells of 8 px, one 8 x 8 anchor each
  np.testing.assert_allclose(anchors, [[0, 0, 8, 8], [8, 0, 16, 8], [0, 8, 8, 16],
                                       [8, 8, 16, 16]])
  boxes = np.array([[8, 8, 16, 16], [0, 0, 6, 6], [0, 0, 0, 0]], np.float32)
  label, owner, codes = ssd.assign(boxes, np.array([4, 1, -1]), np.array([True, True, False]),
                                   anchors)
  # Anchor 3 is exact for object 0; anchor 0 is object 1's best (IoU 36/64 >= 0.5).
  assert np.asarray(label).tolist() == [1, -1, -1, 4]
  np.testing.assert_allclose(codes[3], [0, 0, 0, 0], atol=1e-6)


def test_ssd_forced_match_below_threshold():
  anchors = ssd.anchors(1, 16, [16.0])
  label, _, _ = ssd.assign(np.array([[0, 0, 4, 4]], np.float32), np.array([0]),
                           np.array([True]), anchors)
  assert np.asarray(label).tolist() == [0]  # IoU 1/16, but its best anchor


@pytest.mark.parametrize("meta", ["centernet", "ssd"])
def test_training_lowers_the_loss_and_decoding_has_fixed_shapes(meta):
  data = synthetic.generate(0, 32, synthetic.SceneConfig(image_size=32, max_side=16))
  net = detectors.get(meta, num_classes=len(synthetic.CLASSES), width_multiplier=0.5)
  params = jax.jit(net.init)(jax.random.key(0, impl="rbg"), data.images[:1])
  tx = optax.adam(3e-3)
  step = training.make_step(net.apply, detectors.loss_fn(net, 32), tx)
  params, info = training.fit(params, step, tx, data, steps=40, batch_size=8, seed=0)
  assert np.mean(info["loss"][-5:]) < 0.9 * np.mean(info["loss"][:5])  # from its init
  dets = jax.jit(detectors.decode_fn(net, 32, max_detections=7))(params, data.images[:3])
  assert dets["boxes"].shape == (3, 7, 4) and dets["scores"].shape == (3, 7)
  assert float(jnp.min(dets["boxes"])) >= 0 and float(jnp.max(dets["boxes"])) <= 32


def test_batches_are_a_pure_function_of_seed_and_step():
  a = training.batch_indices(1, 7, 50, 8)
  np.testing.assert_array_equal(a, training.batch_indices(1, 7, 50, 8))
  assert not np.array_equal(a, training.batch_indices(2, 7, 50, 8))
  epoch = np.concatenate([training.batch_indices(1, s, 48, 8) for s in range(6)])
  assert sorted(epoch.tolist()) == list(range(48))  # an epoch visits every example once
