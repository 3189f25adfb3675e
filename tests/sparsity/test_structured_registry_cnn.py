"""Channel pruning of the registry CNN (Flax, both pooling lowerings): the small model keeps
exactly the surviving units' weights and computes what the big model with the removed units
zeroed computes."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoffs import models, sparsity
from tradeoffs.studies import recipes


@pytest.mark.parametrize("pooling", ["window", "reshape"])
def test_pruned_registry_cnn_equals_the_masked_one(pooling):
  big = models.get("cnn", num_classes=3, channels=(6, 8), dense=10, pooling=pooling)
  images = jax.random.normal(jax.random.key(1), (5, 8, 8, 1))
  variables = jax.tree.map(np.asarray, big.init(jax.random.key(0), images))
  layers = recipes.unit_layers("cnn", variables["params"])
  kept = sparsity.kept_units(sparsity.unit_scores(variables, layers), 0.5)
  assert {k: len(v) for k, v in kept.items()} == {"conv_0": 3, "conv_1": 4, "dense": 5}
  small_vars = sparsity.slice_units(variables, layers, kept)
  p, s = variables["params"], small_vars["params"]
  np.testing.assert_array_equal(s["conv_0"]["kernel"],
                                p["conv_0"]["kernel"][..., kept["conv_0"]])
  np.testing.assert_array_equal(
      s["conv_1"]["kernel"], p["conv_1"]["kernel"][:, :, kept["conv_0"]][..., kept["conv_1"]])
  np.testing.assert_array_equal(s["conv_1"]["bias"], p["conv_1"]["bias"][kept["conv_1"]])
  masked = sparsity.apply_unit_masks(variables, sparsity.unit_masks(variables, layers, kept))
  small = models.get("cnn", num_classes=3, channels=(3, 4), dense=5, pooling=pooling)
  np.testing.assert_allclose(small.apply(small_vars, images), big.apply(masked, images),
                             rtol=1e-5, atol=1e-6)
  # Masking changed the outputs: the equality above is not between two unpruned models.
  changed = np.asarray(big.apply(variables, images) - big.apply(masked, images))
  assert np.abs(changed).max() > 1e-3
