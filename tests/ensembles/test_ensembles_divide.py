"""Dividing a wide model: the paper's width rules, parameter parity, regularization.

The model facts come from the models registry (`models.division_info`, `models.count_params`)
and are passed in: `ensembles` itself imports no models.
"""

from __future__ import annotations

import functools
import importlib
import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from tradeoffs import ensembles
from tradeoffs import models
from tradeoffs.ensembles import ModelSpec

# The module (`ensembles.divide` is the function).
divide_lib = importlib.import_module("tradeoffs.ensembles.divide")


def _name_kwargs(spec):
  if isinstance(spec, str):
    return spec, {}
  if isinstance(spec, ModelSpec):
    return spec.name, dict(spec.kwargs)
  return spec[0], dict(spec[1])


def divide_spec(spec, num_members, **kwargs):
  """`ensembles.divide_spec` with the model facts the registry resolves, as a study calls it."""
  return ensembles.divide_spec(spec, num_members,
                               model_info=models.division_info(*_name_kwargs(spec)), **kwargs)


def divide(spec, num_members, *, count=False, num_classes=10, input_shape=None, **kwargs):
  """`ensembles.divide` with the registry's model facts and parameter counter."""
  counter = (functools.partial(models.count_params, num_classes=num_classes,
                               input_shape=input_shape) if count else None)
  info = models.division_info(*_name_kwargs(spec))
  return ensembles.divide(spec, num_members, model_info=info, count_params=counter, **kwargs)


def wrn_param_count(depth: int, k: int, num_classes: int = 100) -> int:
  """Closed-form WRN-depth-k parameters (convs, BN scale+bias, 1x1 shortcuts, classifier)."""
  n = (depth - 4) // 6
  widths = [16, 16 * k, 32 * k, 64 * k]
  total = 3 * 3 * 3 * 16
  in_ch = 16
  for out_ch in widths[1:]:
    for block in range(n):
      c_in = in_ch if block == 0 else out_ch
      total += 2 * c_in + 9 * c_in * out_ch          # BN, conv1
      total += 2 * out_ch + 9 * out_ch * out_ch      # BN, conv2
      if block == 0 and c_in != out_ch:
        total += c_in * out_ch                       # 1x1 projection shortcut
    in_ch = out_ch
  return total + 2 * in_ch + in_ch * num_classes + num_classes


def test_wrn_widen_factor_paper_cases():
  assert ensembles.wrn_widen_factor(10, 2) == 7
  assert ensembles.wrn_widen_factor(10, 4) == 5
  assert ensembles.wrn_widen_factor(10, 1) == 10
  # The max(., 1) floor keeps a narrow WRN alive.
  assert ensembles.wrn_widen_factor(1, 16) == 1


# (k, S) -> k' = int(max(k / sqrt(S) + 0.4, 1)) (PAPERS.md section 1), where round() differs:
# 5/sqrt(2) = 3.54 (round 4), 3/2 = 1.5 (round 2), 11/2 = 5.5 (6), 15/2 = 7.5 (8); and
# where the +0.4 lifts above floor(): 8/sqrt(2) = 5.66 -> 6, 4/sqrt(2) = 2.83 -> 3.
@pytest.mark.parametrize("k, s, expected", [(5, 2, 3), (3, 4, 1), (11, 4, 5), (15, 4, 7),
                                            (8, 2, 6), (4, 2, 3), (2, 16, 1)])
def test_wrn_widen_factor_paper_rounding_not_round(k, s, expected):
  assert ensembles.wrn_widen_factor(k, s) == expected
  spec = divide_spec(("wrn", {"depth": 16, "widen_factor": k}), s)
  assert spec.kwargs["widen_factor"] == expected


def test_divide_spec_wrn_divides_width_and_dropout():
  wide = ModelSpec("wrn", {"depth": 28, "widen_factor": 10, "dropout": 0.3})
  s2 = divide_spec(wide, 2)
  s4 = divide_spec(wide, 4)
  assert s2.kwargs["widen_factor"] == 7 and s4.kwargs["widen_factor"] == 5
  assert s2.kwargs["dropout"] == pytest.approx(0.15)
  assert s4.kwargs["dropout"] == pytest.approx(0.075)
  assert s2.kwargs["depth"] == 28
  assert divide_spec(wide, 1) == wide


def test_wrn_closed_form_matches_paper_and_parity_within_25_percent():
  # The paper quotes 36.5M for WRN-28-10 on CIFAR-100: the closed form reproduces it.
  wide = wrn_param_count(28, 10)
  assert wide == pytest.approx(36.5e6, rel=0.01)
  # Tolerance: int(k/sqrt(S) + 0.4) moves the width by -0.6..+0.4 of one unit of k; at
  # k/sqrt(S) in [5, 7.1] that is at most 12% of the width, so at most ~25% in the
  # (quadratic) parameter count. WRN-28-10 itself lands within a few percent.
  for s in (2, 4):
    k = divide_spec(("wrn", {"depth": 28, "widen_factor": 10}), s).kwargs["widen_factor"]
    ratio = s * wrn_param_count(28, k) / wide
    assert 0.75 <= ratio <= 1.25, (s, ratio)
    assert abs(ratio - 1) < 0.05, (s, ratio)


def test_cifar_and_imagenet_resnet_tables():
  for s, width in {2: 12, 4: 8, 8: 6, 16: 4}.items():
    assert divide_spec(("resnet110", {"base_width": 16}), s).kwargs["base_width"] == width
  for s, width in {2: 44, 4: 32, 8: 24}.items():
    assert divide_spec(("resnet50", {"base_width": 64}), s).kwargs["base_width"] == width
  # Off-table widths raise by default and use round(w/sqrt(S)) on request.
  with pytest.raises(ValueError, match="base_width=20.*width_rule='sqrt'"):
    divide_spec(("resnet20", {"base_width": 20}), 2)
  with pytest.raises(ValueError, match="num_members=3"):
    divide_spec(("resnet20", {"base_width": 16}), 3)
  sqrt_spec = divide_spec(("resnet20", {"base_width": 20}), 2, width_rule="sqrt")
  assert sqrt_spec.kwargs["base_width"] == round(20 / math.sqrt(2))


def test_mlp_and_cnn_sqrt_rule():
  mlp = divide_spec(("mlp", {"hidden": (512, 512)}), 4)
  assert mlp.kwargs["hidden"] == (256, 256)
  assert divide_spec(("mlp", {"hidden": (100,)}), 2).kwargs["hidden"] == (71,)
  cnn = divide_spec(("cnn", {"channels": (32, 64), "dense": 128}), 2)
  assert cnn.kwargs == {"channels": (23, 45), "dense": 91}
  dropped = divide_spec(("mlp", {"hidden": (64,), "dropout": 0.4}), 4)
  assert dropped.kwargs == {"hidden": (32,), "dropout": pytest.approx(0.1)}


def test_bad_input_raises_value_errors():
  with pytest.raises(ValueError, match="num_members must be >= 1, got 0"):
    divide_spec(("mlp", {"hidden": (8,)}), 0)
  with pytest.raises(ValueError, match="integer"):
    divide_spec(("mlp", {"hidden": (8,)}), 2.0)
  with pytest.raises(ValueError, match="hidden=1 cannot be divided into num_members=16"):
    divide_spec(("mlp", {"hidden": (1,)}), 16)
  with pytest.raises(ValueError, match="valid:.*'mlp'"):
    divide_spec(("transformer9", {}), 2)
  with pytest.raises(ValueError, match="width_rule='golden'.*'paper'"):
    divide_spec(("mlp", {"hidden": (8,)}), 2, width_rule="golden")
  with pytest.raises(ValueError, match="weight_decay_rule='l2'.*'exp'"):
    divide(("mlp", {"hidden": (8,)}), 2, weight_decay=1e-4, weight_decay_rule="l2")


@pytest.mark.parametrize("s", [1, 2, 4, 8, 16])
def test_weight_decay_rules_match_formulas(s):
  wd = 5e-4
  assert ensembles.divide_weight_decay(wd, s) == pytest.approx(wd * np.exp(1 / s - 1))
  assert ensembles.divide_weight_decay(wd, s, rule="divide") == pytest.approx(wd / s)
  assert ensembles.divide_weight_decay(wd, s, rule="linear_floor") == pytest.approx(
      wd * max(1 - s / 20, 1 / s))
  assert ensembles.divide_weight_decay(wd, s, rule="none") == wd
  assert ensembles.divide_dropout(0.3, s) == pytest.approx(0.3 / s)


def test_divide_reports_divided_weight_decay():
  division = divide(("mlp", {"hidden": (512, 512)}), 4, weight_decay=1e-3)
  assert division.member.kwargs["hidden"] == (256, 256)
  assert division.weight_decay == pytest.approx(1e-3 * math.exp(-0.75))
  assert division.member_specs == (division.member,) * 4
  assert division.param_ratio is None  # Not counted unless asked.


def test_count_init_params_counts_without_allocating():
  def init(key, n_in, n_out):
    del key
    return {"params": {"w": jnp.zeros((n_in, n_out)), "b": jnp.zeros((n_out,))},
            "batch_stats": {"mean": jnp.zeros((n_out,))}}

  assert ensembles.count_init_params(init, jax.random.key(0), 3, 4, collection="params") == 16
  assert ensembles.count_init_params(init, jax.random.key(0), 3, 4) == 20
  # Huge shapes are fine: eval_shape never materializes them.
  assert ensembles.count_init_params(init, None, 100_000, 100_000, collection="params") == (
      100_000 * 100_000 + 100_000)


@pytest.mark.parametrize("spec", [("mlp", {"hidden": (512, 512)}),
                                  ("cnn", {"channels": (32, 64), "dense": 128})])
def test_member_param_parity_on_real_models(spec):
  # Within 25%: the quadratic hidden layers divide exactly by S, the input and output
  # layers are linear in width and grow by sqrt(S) = 2 at S = 4.
  division = divide(spec, 4, count=True, num_classes=10, input_shape=(8, 8, 1))
  assert division.wide_params > division.member_params > 0
  assert 0.75 <= division.param_ratio <= 1.25, division


@pytest.mark.parametrize("s", [2, 4])
def test_wrn_parity_on_real_models(s):
  division = divide(("wrn", {"depth": 28, "widen_factor": 10}), s, count=True,
                              num_classes=100)
  # The model agrees with the independent closed form, for the wide model and a member.
  assert division.wide_params == wrn_param_count(28, 10)
  assert division.member_params == wrn_param_count(28, division.member.kwargs["widen_factor"])
  assert 0.75 <= division.param_ratio <= 1.25, division


def test_presets_resolve_to_general_models():
  member = divide_spec(("wrn28_10", {"dropout": 0.2}), 4)
  assert member == ModelSpec("wrn", {"depth": 28, "widen_factor": 5, "dropout": 0.05})
  # ResNeXt: cardinality / S, width per group unchanged.
  resnext = divide_spec("resnext50_32x4d", 2)
  assert resnext == ModelSpec("resnet_imagenet",
                              {"depth": 50, "groups": 16, "width_per_group": 4})
  with pytest.raises(ValueError, match="groups=32.*num_members=3"):
    divide_spec("resnext50_32x4d", 3)
  # WRN-50-2 at S=2 becomes two plain ResNet-50 widths (the paper's choice).
  wide50 = divide_spec("wide_resnet50_2", 2)
  assert wide50.kwargs["width_per_group"] == 64
  division = divide("wide_resnet50_2", 2, count=True, num_classes=1000)
  assert division.member_params == models.count_params(
      "resnet50", num_classes=1000, input_shape=(224, 224, 3))


# (k, S) cases as above, on numbers alone: no model is named or built.
@pytest.mark.parametrize("k, s, expected", [(5, 2, 3), (3, 4, 1), (11, 4, 5), (15, 4, 7),
                                            (8, 2, 6), (4, 2, 3), (2, 16, 1)])
def test_divide_widths_works_on_numbers(k, s, expected):
  assert ensembles.divide_widths("wrn", {"widen_factor": k}, s) == {"widen_factor": expected}


def test_divide_widths_per_family():
  assert ensembles.divide_widths("wrn", {"widen_factor": 10, "dropout": 0.3}, 2) == {
      "widen_factor": 7, "dropout": pytest.approx(0.15)}
  assert ensembles.divide_widths("cifar_resnet", {"base_width": 16}, 4) == {"base_width": 8}
  imagenet = {"base_width": 64, "groups": 1, "width_per_group": None}
  assert ensembles.divide_widths("imagenet_resnet", imagenet, 8) == {"base_width": 24}
  assert ensembles.divide_widths("imagenet_resnet", {**imagenet, "groups": 32,
                                                     "width_per_group": 4}, 2) == {"groups": 16}
  assert ensembles.divide_widths("imagenet_resnet", {**imagenet, "width_per_group": 128},
                                 2) == {"width_per_group": 64}
  assert ensembles.divide_widths("mlp", {"hidden": (512, 512)}, 4) == {"hidden": (256, 256)}
  assert ensembles.divide_widths("cnn", {"channels": (32, 64), "dense": 128}, 2) == {
      "channels": (23, 45), "dense": 91}
  assert ensembles.divide_widths("cifar_resnet", {"base_width": 20}, 2, width_rule="sqrt") == {
      "base_width": 14}
  with pytest.raises(ValueError, match="family 'transformer'.*valid:.*'wrn'"):
    ensembles.divide_widths("transformer", {"width": 8}, 2)
  with pytest.raises(ValueError, match="'wrn' model needs the value of 'widen_factor'"):
    ensembles.divide_widths("wrn", {"depth": 28}, 2)


def test_model_info_from_the_caller_without_a_registry():
  # A plain dict is enough: the member keeps the spec's name and other kwargs.
  info = {"family": "wrn", "values": {"widen_factor": 10, "dropout": 0.0}}
  member = ensembles.divide_spec(("my_wrn", {"depth": 28, "widen_factor": 10}), 2,
                                 model_info=info)
  assert member == ModelSpec("my_wrn", {"depth": 28, "widen_factor": 7, "dropout": 0.0})
  counts = {7: 17_000_000, 10: 36_000_000}
  division = ensembles.divide(("my_wrn", {"widen_factor": 10}), 2, model_info=info,
                              count_params=lambda name, kw: counts[kw["widen_factor"]])
  assert (division.wide_params, division.member_params) == (36_000_000, 17_000_000)
  with pytest.raises(ValueError, match="model_info must be a dict with 'family' and 'values'"):
    ensembles.divide_spec(("my_wrn", {}), 2, model_info={"values": {}})


def test_dividing_without_model_facts_says_what_to_pass():
  # The ensembles package knows no models: the caller resolves the facts.
  with pytest.raises(ValueError, match="model_info=models.division_info"):
    ensembles.divide_spec(("mlp", {"hidden": (64,)}), 2)


def test_weight_decay_mask_excludes_norms_and_biases():
  params = {
      "Dense_0": {"kernel": jnp.ones((3, 4)), "bias": jnp.ones((4,))},
      "Conv_0": {"kernel": jnp.ones((3, 3, 1, 2)), "bias": jnp.ones((2,))},
      "BatchNorm_0": {"scale": jnp.ones((2,)), "bias": jnp.ones((2,))},
      "LayerNorm_1": {"scale": jnp.ones((4,))},
      "group_norm": {"weight": jnp.ones((2, 2))},  # 2-D, but inside a norm layer.
      "bn1": {"w": jnp.ones((2, 2))},
      "Embed_0": {"embedding": jnp.ones((5, 3))},
  }
  mask = ensembles.weight_decay_mask(params)
  assert mask == {
      "Dense_0": {"kernel": True, "bias": False},
      "Conv_0": {"kernel": True, "bias": False},
      "BatchNorm_0": {"scale": False, "bias": False},
      "LayerNorm_1": {"scale": False},
      "group_norm": {"weight": False},
      "bn1": {"w": False},
      "Embed_0": {"embedding": True},
  }
  # A stacked population [S, ...]: member axes do not count as parameter dimensions.
  stacked = jax.tree.map(lambda x: jnp.stack([x, x]), params)
  assert ensembles.weight_decay_mask(stacked, member_axes=1) == mask
  # Without member_axes, the stacked 1-D vectors would wrongly look like matrices.
  assert ensembles.weight_decay_mask({"v": jnp.ones((2, 4))}, member_axes=1) == {"v": False}


def test_weight_decay_mask_on_real_model_decays_exactly_the_kernels():
  from tradeoffs import models
  params = models.abstract_init(models.get("resnet20", num_classes=10), (1, 32, 32, 3))["params"]
  paths_and_leaves = jax.tree_util.tree_flatten_with_path(params)[0]
  mask = jax.tree.leaves(ensembles.weight_decay_mask(params))
  for (path, leaf), decays in zip(paths_and_leaves, mask):
    assert decays == (path[-1].key == "kernel"), jax.tree_util.keystr(path)
  assert any(mask) and not all(mask)


def test_weight_decay_mask_drives_optax():
  params = {"Dense_0": {"kernel": jnp.full((2, 2), 2.0), "bias": jnp.full((2,), 2.0)}}
  tx = optax.add_decayed_weights(0.1, mask=ensembles.weight_decay_mask)
  zeros = jax.tree.map(jnp.zeros_like, params)
  updates, _ = tx.update(zeros, tx.init(params), params)
  np.testing.assert_allclose(updates["Dense_0"]["kernel"], 0.2)
  np.testing.assert_allclose(updates["Dense_0"]["bias"], 0.0)
