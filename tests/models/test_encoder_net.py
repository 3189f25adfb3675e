"""encoder_net: the same parameters whatever the output, and its sown representations."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from tradeoffs import models


def test_outputs_share_parameters_and_representations_are_sown():
  images = np.random.default_rng(0).normal(size=(5, 8, 8, 1)).astype(np.float32)
  logits_net = models.get("encoder_net", num_classes=3, hidden=(6, 4), projection=(5, 2))
  proj_net = models.get("encoder_net", num_classes=3, hidden=(6, 4), projection=(5, 2),
                        output="projection")
  variables = logits_net.init(jax.random.key(0), images)
  assert (jax.tree.structure(variables) ==
          jax.tree.structure(proj_net.init(jax.random.key(1), images)))
  assert proj_net.apply(variables, images).shape == (5, 2)
  logits = logits_net.apply(variables, images)
  stacked = jax.tree.map(lambda x: np.stack([x, 2 * x]), variables)  # 2 "members"
  layers, embedding = models.contrastive.layer_representations(logits_net.apply, stacked,
                                                               images, batch_size=2)
  assert [l.shape for l in layers] == [(2, 5, 6), (2, 5, 4), (2, 5, 3)]
  np.testing.assert_allclose(layers[-1][0], logits, rtol=1e-5)  # the logits come last
  np.testing.assert_allclose(embedding[0], layers[1][0])  # the last hidden layer
  assert np.all(layers[0] >= 0)  # after the activation
  conv = models.get("encoder_net", num_classes=3, channels=(2,), hidden=(4,), projection=())
  conv_layers, _ = models.contrastive.layer_representations(
      conv.apply, jax.tree.map(lambda x: x[None], conv.init(jax.random.key(0), images)),
      images)
  assert [l.shape for l in conv_layers] == [(1, 5, 128), (1, 5, 4), (1, 5, 3)]
  with pytest.raises(ValueError, match="output='projection' needs"):
    models.get("encoder_net", num_classes=3, projection=(), output="projection")
  with pytest.raises(ValueError, match="output='z'"):
    models.get("encoder_net", num_classes=3, output="z")
