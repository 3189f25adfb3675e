"""Detector heads: output shapes, the backbone's stride and widths, the registry's errors."""

import jax
import numpy as np
import pytest

from tradeoffs.models import detectors


@pytest.mark.parametrize("width", [0.5, 1.0])
def test_output_shapes(width):
  x = np.zeros((2, 32, 32, 1), np.float32)
  net = detectors.get("centernet", num_classes=5, width_multiplier=width)
  out = net.apply(net.init(jax.random.key(0), x), x)
  assert net.stride == 4
  assert out["heatmap"].shape == (2, 8, 8, 5)
  assert out["size"].shape == out["offset"].shape == (2, 8, 8, 2)
  ssd = detectors.get("ssd", num_classes=5, width_multiplier=width,
                      anchor_sizes=(0.25, 0.5), anchor_ratios=(1.0, 0.5, 2.0))
  variables = ssd.init(jax.random.key(0), x)
  out = ssd.apply(variables, x)
  assert out["class_logits"].shape == (2, 8 * 8 * 6, 5)
  assert out["box_codes"].shape == (2, 8 * 8 * 6, 4)
  kernel = variables["params"]["backbone"]["conv_2"]["kernel"]
  assert kernel.shape[-1] == int(round(32 * width))  # the last conv width, scaled


def test_initial_scores_follow_the_priors():
  x = np.zeros((1, 16, 16, 1), np.float32)
  net = detectors.get("ssd", num_classes=3)
  out = net.apply(net.init(jax.random.key(0), x), x)
  np.testing.assert_allclose(jax.nn.sigmoid(out["class_logits"]), 0.01, rtol=1e-3)


def test_registry_errors():
  assert detectors.names() == ["centernet", "ssd"]
  with pytest.raises(ValueError, match="unknown detector"):
    detectors.get("yolo", num_classes=2)
  with pytest.raises(ValueError, match="unknown kwarg"):
    detectors.get("ssd", num_classes=2, depth=3)
  with pytest.raises(ValueError, match="num_classes"):
    detectors.get("ssd", num_classes=0)
  with pytest.raises(ValueError, match="width_multiplier"):
    detectors.get("centernet", num_classes=2, width_multiplier=0)
  with pytest.raises(ValueError, match="anchor_sizes"):
    detectors.get("ssd", num_classes=2, anchor_sizes=())
