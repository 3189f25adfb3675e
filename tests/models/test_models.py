"""Tests for tradeoffs.models: parameter counts by closed form, shapes, BN, dropout, registry."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.special

from tradeoffs import models

KEY = jax.random.key(0)


# Closed-form parameter counts, from the architecture rules (not from the models).
def conv(c_in, c_out, k, groups=1, bias=False):
  return k * k * (c_in // groups) * c_out + (c_out if bias else 0)


def bn(c):
  return 2 * c  # scale and bias; running statistics live in batch_stats


def dense(n_in, n_out):
  return n_in * n_out + n_out


def cifar_resnet_count(depth, base=16, classes=10, in_ch=3):
  n = (depth - 2) // 6
  total = conv(in_ch, base, 3) + bn(base)
  c_in = base
  for stage in range(3):
    width = base * 2**stage
    for _ in range(n):
      total += conv(c_in, width, 3) + bn(width) + conv(width, width, 3) + bn(width)
      if c_in != width:  # option-B projection
        total += conv(c_in, width, 1) + bn(width)
      c_in = width
  return total + dense(c_in, classes)


def wrn_count(depth, k, base=16, classes=10, in_ch=3):
  n = (depth - 4) // 6
  total = conv(in_ch, base, 3)
  c_in = base
  for group in range(3):
    width = base * 2**group * k
    for _ in range(n):
      total += bn(c_in) + conv(c_in, width, 3) + bn(width) + conv(width, width, 3)
      if c_in != width:
        total += conv(c_in, width, 1)
      c_in = width
  return total + bn(c_in) + dense(c_in, classes)


def imagenet_resnet_count(blocks, bottleneck, base=64, groups=1, per_group=None, classes=1000):
  per_group = base // groups if per_group is None else per_group
  total = conv(3, base, 7) + bn(base)
  c_in = base
  for stage, num in enumerate(blocks):
    planes = base * 2**stage
    for block in range(num):
      stride = 2 if stage > 0 and block == 0 else 1
      if bottleneck:
        inner, out = groups * per_group * 2**stage, 4 * planes
        total += (conv(c_in, inner, 1) + bn(inner) + conv(inner, inner, 3, groups) + bn(inner)
                  + conv(inner, out, 1) + bn(out))
      else:
        out = planes
        total += conv(c_in, out, 3) + bn(out) + conv(out, out, 3) + bn(out)
      if c_in != out or stride != 1:
        total += conv(c_in, out, 1) + bn(out)
      c_in = out
  return total + dense(c_in, classes)


def count(name, input_shape, num_classes=10, **kwargs):
  net = models.get(name, num_classes=num_classes, **kwargs)
  return models.param_count(models.abstract_init(net, input_shape)["params"])


def random_variables(net, input_shape, seed=0):
  """Variables with `init`'s structure filled by numpy: skips compiling every initializer."""
  rng = np.random.default_rng(seed)
  shapes = models.abstract_init(net, input_shape)
  fill = lambda path, s: (np.ones(s.shape, s.dtype) if "var" in str(path[-1])  # noqa: E731
                          else (0.3 * rng.standard_normal(s.shape)).astype(s.dtype))
  return jax.tree_util.tree_map_with_path(fill, shapes)


CIFAR = (1, 32, 32, 3)
IMAGENET = (1, 224, 224, 3)


def test_mlp_count_by_hand():
  # 64-256-256-10: 64*256+256 + 256*256+256 + 256*10+10.
  assert count("mlp", (1, 8, 8, 1)) == 85_002


def test_cnn_count_by_formula():
  # 8x8 input, two 2x2 pools -> 2x2x64 features into the hidden dense layer.
  expected = conv(1, 32, 3, bias=True) + conv(32, 64, 3, bias=True) + dense(2 * 2 * 64, 128) \
      + dense(128, 10)
  assert count("cnn", (1, 8, 8, 1)) == expected
  with_bn = conv(1, 32, 3) + bn(32) + conv(32, 64, 3) + bn(64) + 256 * 128 + bn(128) \
      + dense(128, 10)
  assert count("cnn", (1, 8, 8, 1), batch_norm=True) == with_bn


@pytest.mark.parametrize("name,depth", [("resnet20", 20), ("resnet56", 56), ("resnet110", 110)])
def test_cifar_resnet_counts(name, depth):
  assert count(name, CIFAR) == cifar_resnet_count(depth)


def test_resnet20_is_the_papers_027m():
  assert round(count("resnet20", CIFAR) / 1e6, 2) == 0.27


def test_wrn_counts_match_formula_and_paper():
  wrn28_10 = count("wrn28_10", CIFAR)
  assert wrn28_10 == wrn_count(28, 10)
  assert abs(wrn28_10 - 36.5e6) / 36.5e6 < 0.005
  wrn16_4 = count("wrn", CIFAR, depth=16, widen_factor=4)
  assert wrn16_4 == wrn_count(16, 4) == count("wrn16_4", CIFAR)
  assert abs(wrn16_4 - 2.75e6) / 2.75e6 < 0.005


@pytest.mark.parametrize("name,blocks,bottleneck,published", [
    ("resnet18", (2, 2, 2, 2), False, 11.69e6),
    ("resnet50", (3, 4, 6, 3), True, 25.56e6),
])
def test_imagenet_resnet_counts(name, blocks, bottleneck, published):
  n = count(name, IMAGENET, num_classes=1000)
  assert n == imagenet_resnet_count(blocks, bottleneck)
  assert round(n / 1e4) * 1e4 == published


def test_resnext_and_wide_resnet50_counts():
  assert count("resnext50_32x4d", IMAGENET, num_classes=1000) == imagenet_resnet_count(
      (3, 4, 6, 3), True, groups=32, per_group=4)
  # Dividing cardinality by S, as in divided ensembles, keeps the per-group width.
  assert count("resnet50", IMAGENET, num_classes=1000, groups=16, width_per_group=4) == \
      imagenet_resnet_count((3, 4, 6, 3), True, groups=16, per_group=4)
  assert count("wide_resnet50_2", IMAGENET, num_classes=1000) == imagenet_resnet_count(
      (3, 4, 6, 3), True, per_group=128)


def test_width_multiplier_scales_every_hidden_width():
  assert count("mlp", (1, 8, 8, 1), width_multiplier=0.5) == \
      dense(64, 128) + dense(128, 128) + dense(128, 10)
  assert count("resnet20", CIFAR, width_multiplier=0.5) == cifar_resnet_count(20, base=8)
  assert count("wrn16_4", CIFAR, width_multiplier=0.5) == wrn_count(16, 4, base=8)
  assert count("resnet18", IMAGENET, num_classes=1000, width_multiplier=0.5) == \
      imagenet_resnet_count((2, 2, 2, 2), False, base=32)
  # Rounded to the nearest int and never below 1.
  assert count("mlp", (1, 4), hidden=(3, 10), width_multiplier=0.1) == \
      dense(4, 1) + dense(1, 1) + dense(1, 10)
  assert count("cnn", (1, 8, 8, 1), channels=(5,), dense=7, width_multiplier=1.5) == \
      conv(1, 8, 3, bias=True) + dense(4 * 4 * 8, 10) + dense(10, 10)
  assert models.scale_width(6, 0.75) == 4 and models.scale_width(2, 0.01) == 1


def test_describe_matches_param_count():
  net = models.get("resnet20", num_classes=10, base_width=4)
  per_layer = models.describe(net, (1, 8, 8, 3))
  assert per_layer["stem_conv"] == conv(3, 4, 3)
  assert per_layer["stage2_block0/proj_conv"] == conv(4, 8, 1)
  assert per_layer["head"] == dense(16, 10)
  assert sum(per_layer.values()) == cifar_resnet_count(20, base=4)
  by_name = models.describe("resnet20", (1, 8, 8, 3), num_classes=10, base_width=4)
  assert by_name == per_layer and list(by_name) == list(per_layer)


TINY = {
    "mlp": ((3, 8, 8, 1), dict(hidden=(6, 5), batch_norm=True, dropout=0.2)),
    "cnn": ((3, 8, 8, 1), dict(channels=(4, 6), dense=5, batch_norm=True, dropout=0.2)),
    "resnet_cifar": ((3, 8, 8, 3), dict(depth=8, base_width=2)),
    "wrn": ((3, 8, 8, 3), dict(depth=10, widen_factor=2, base_width=2, dropout=0.2)),
    "resnet18": ((3, 16, 16, 3), dict(base_width=2)),
    "resnet50": ((3, 16, 16, 3), dict(base_width=4, groups=2, width_per_group=2)),
}
# Deep ImageNet nets are checked by tracing only (eager CPU execution of 50 layers is slow).
RUN_FORWARD = ("mlp", "cnn", "resnet_cifar", "wrn")


@pytest.mark.parametrize("name", sorted(TINY))
def test_output_shape_and_float32_logits(name):
  shape, kwargs = TINY[name]
  images = jax.random.uniform(jax.random.key(1), shape)
  # Any computation dtype still yields float32 logits.
  half = models.get(name, num_classes=7, dtype=jnp.bfloat16, **kwargs)
  variables = models.abstract_init(half, shape)
  assert variables["params"]["head"]["kernel"].dtype == jnp.float32  # params stay float32
  for train in (False, True):
    logits, updates = jax.eval_shape(
        lambda v, x: half.apply(v, x, train=train, rngs={"dropout": KEY},  # noqa: B023
                                mutable=["batch_stats"]), variables, images)
    assert logits.shape == (3, 7) and logits.dtype == jnp.float32
    assert jax.tree.structure(updates["batch_stats"]) == \
        jax.tree.structure(variables["batch_stats"])
  if name in RUN_FORWARD:
    net = models.get(name, num_classes=7, **kwargs)
    logits = net.apply(random_variables(net, shape), images, train=False)
    assert logits.shape == (3, 7) and bool(jnp.all(jnp.isfinite(logits)))


def test_batch_norm_running_stats_update_only_in_train():
  net = models.get("mlp", num_classes=2, hidden=(3,), batch_norm=True)
  variables = models.init(net, KEY, (4, 5))
  x = np.asarray(jax.random.normal(jax.random.key(2), (4, 5)))
  _, updates = net.apply(variables, x, train=True, mutable=["batch_stats"])
  hidden = x @ np.asarray(variables["params"]["dense_0"]["kernel"])  # no bias under BN
  stats = updates["batch_stats"]["bn_0"]
  np.testing.assert_allclose(stats["mean"], 0.9 * 0 + 0.1 * hidden.mean(0), rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(stats["var"], 0.9 * 1 + 0.1 * hidden.var(0), rtol=1e-5)
  # Eval mode reads running averages and needs nothing mutable.
  _, eval_updates = net.apply(variables, x, train=False, mutable=["batch_stats"])
  assert jax.tree.all(jax.tree.map(np.array_equal, eval_updates["batch_stats"],
                                   variables["batch_stats"]))
  # Eval is per-example (batch-independent); train normalises with the batch's statistics.
  eval_batch = net.apply(variables, x, train=False)
  eval_one = net.apply(variables, x[:1], train=False)
  np.testing.assert_allclose(eval_batch[:1], eval_one, rtol=1e-5, atol=1e-6)
  train_batch, _ = net.apply(variables, x, train=True, mutable=["batch_stats"])
  train_two, _ = net.apply(variables, x[:2], train=True, mutable=["batch_stats"])
  assert not np.allclose(train_batch[:2], train_two)


def test_dropout_only_in_train_and_driven_by_rng():
  net = models.get("mlp", num_classes=3, hidden=(32,), dropout=0.5)
  no_dropout = models.get("mlp", num_classes=3, hidden=(32,))
  variables = models.init(net, KEY, (2, 6))
  x = jax.random.normal(jax.random.key(3), (2, 6))
  eval_out = net.apply(variables, x, train=False)
  np.testing.assert_array_equal(eval_out, no_dropout.apply(variables, x, train=False))
  run = lambda seed: net.apply(variables, x, train=True, rngs={"dropout": jax.random.key(seed)})
  np.testing.assert_array_equal(run(0), run(0))
  assert not np.allclose(run(0), run(1))
  assert not np.allclose(run(0), eval_out)
  with pytest.raises(Exception, match="dropout"):
    net.apply(variables, x, train=True)


def test_wrn_dropout_sits_in_the_blocks():
  shape, kwargs = TINY["wrn"]
  net = models.get("wrn", num_classes=7, **kwargs)
  variables = random_variables(net, shape)
  x = jax.random.uniform(KEY, shape)
  apply = jax.jit(lambda key: net.apply(variables, x, train=True, rngs={"dropout": key},
                                        mutable=["batch_stats"])[0])
  run = lambda seed: apply(jax.random.key(seed))  # noqa: E731
  assert not np.allclose(run(0), run(1))


def test_activations():
  x = jnp.linspace(-3.0, 3.0, 13)
  expected = {
      "relu": np.maximum(x, 0), "tanh": np.tanh(x), "leaky_relu": np.where(x > 0, x, 0.01 * x),
      "gelu": x * 0.5 * (1 + scipy.special.erf(np.asarray(x) / math.sqrt(2))),
      "swish": x * scipy.special.expit(np.asarray(x)), "prelu": np.where(x > 0, x, 0.25 * x),
  }
  expected["silu"] = expected["swish"]
  assert sorted(expected) == models.activation_names()
  for name, want in expected.items():
    # A 1-wide identity-initialised MLP layer exposes the activation itself.
    net = models.get("mlp", num_classes=1, hidden=(1,), activation=name)
    params = random_variables(net, (13, 1))["params"]
    params["dense_0"] = {"kernel": jnp.ones((1, 1)), "bias": jnp.zeros((1,))}
    params["head"] = {"kernel": jnp.ones((1, 1)), "bias": jnp.zeros((1,))}
    if name == "prelu":
      params["PReLU_0"] = {"negative_slope": jnp.array(0.25)}
    out = net.apply({"params": params}, x[:, None], train=False)[:, 0]
    np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-6, err_msg=name)
  # PReLU learns one slope per layer.
  assert count("mlp", (1, 4), hidden=(3, 3), activation="prelu") == \
      dense(4, 3) + dense(3, 3) + dense(3, 10) + 2


def test_population_by_vmap():
  net = models.get("mlp", num_classes=2, hidden=(3,), batch_norm=True)
  keys = jax.random.split(KEY, 4)
  population = jax.vmap(lambda k: models.init(net, k, (4, 5)))(keys)
  assert population["params"]["head"]["kernel"].shape == (4, 3, 2)
  assert population["batch_stats"]["bn_0"]["var"].shape == (4, 3)
  images = jnp.ones((2, 5))
  logits = jax.vmap(lambda v: net.apply(v, images, train=False))(population)
  assert logits.shape == (4, 2, 2)
  assert not np.allclose(logits[0], logits[1])  # members differ by their init key


def test_registry_errors():
  assert {"mlp", "cnn", "resnet20", "resnet32", "resnet56", "resnet110", "wrn", "wrn28_10",
          "wrn16_4", "resnet18", "resnet50"} <= set(models.names())
  with pytest.raises(ValueError, match="unknown model name 'resnet21'.*'resnet20'"):
    models.get("resnet21", num_classes=10)
  with pytest.raises(ValueError, match=r"\['width'\].*'hidden'"):
    models.get("mlp", num_classes=10, width=256)
  # A preset kwarg is not a free one.
  with pytest.raises(ValueError, match=r"\['depth'\].*accepted"):
    models.get("resnet20", num_classes=10, depth=32)
  assert "depth" in models.accepted_kwargs("wrn")
  assert "depth" not in models.accepted_kwargs("wrn28_10")
  with pytest.raises(ValueError, match="already registered"):
    models.register("mlp")(models.MLP)


def test_equal_settings_share_one_instance_and_its_apply():
  a = models.get("mlp", num_classes=10, hidden=(8, 4))
  assert a is models.get("mlp", num_classes=10, hidden=(8, 4))
  assert a.apply == models.get("mlp", num_classes=10, hidden=(8, 4)).apply
  assert models.get("mlp", num_classes=10, hidden=(8, 5)) is not a
  assert models.get("mlp", num_classes=9, hidden=(8, 4)) is not a
  # 1 == 1.0, but the settings differ in type: not shared.
  one = models.get("mlp", num_classes=10, width_multiplier=1)
  assert models.get("mlp", num_classes=10, width_multiplier=1.0) is not one
  # Unhashable values still build (unshared).
  listed = models.get("mlp", num_classes=10, hidden=[8, 4])
  assert listed is not models.get("mlp", num_classes=10, hidden=[8, 4])
  assert listed == a  # the module itself normalises the widths


@pytest.mark.parametrize("name,kwargs,match", [
    ("mlp", dict(num_classes=0), "num_classes"),
    ("mlp", dict(num_classes=10, activation="sigmoid"), "activation.*relu"),
    ("mlp", dict(num_classes=10, dropout=1.0), "dropout"),
    ("mlp", dict(num_classes=10, hidden="256"), "hidden"),
    ("mlp", dict(num_classes=10, hidden=(256, 0)), "hidden"),
    ("mlp", dict(num_classes=10, width_multiplier=0.0), "width_multiplier"),
    ("mlp", dict(num_classes=10, dtype=jnp.int32), "dtype"),
    ("cnn", dict(num_classes=10, dense=0), "dense"),
    ("wrn", dict(num_classes=10, depth=27), r"depth.*\(depth - 4\) % 6"),
    ("resnet_cifar", dict(num_classes=10, depth=21), "depth must be 6n"),
    ("resnet_imagenet", dict(num_classes=10, depth=20), "depth must be one of"),
    ("resnet18", dict(num_classes=10, groups=2), "bottleneck"),
    ("resnet50", dict(num_classes=10, groups=3), "groups=3 must divide"),
])
def test_bad_values_raise(name, kwargs, match):
  with pytest.raises(ValueError, match=match):
    models.get(name, **kwargs)


def test_init_rejects_bad_shape():
  with pytest.raises(ValueError, match="input_shape"):
    models.init(models.get("mlp", num_classes=2), KEY, (8,))


# The registry's facts for dividing a model (techniques receive them as arguments).


def test_family_by_model_class():
  assert models.family("mlp") == "mlp" and models.family("cnn") == "cnn"
  assert models.family("resnet110") == models.family("resnet_cifar") == "cifar_resnet"
  assert {models.family(n) for n in ("resnet18", "resnext50_32x4d", "wide_resnet50_2")} == {
      "imagenet_resnet"}
  assert models.family("wrn28_10") == models.family("wrn") == "wrn"
  # No width-division rule: encoder_net (an encoder with two heads, for contrastive studies),
  # the multi-task MLP and the sequence models.
  no_rule = {"encoder_net", "multitask_mlp", "transformer_encoder", "transformer_seq2seq",
             "speech_ctc"}
  assert set(models.division_names()) == set(models.names()) - no_rule
  assert set(models.FAMILIES) == {"mlp", "cnn", "cifar_resnet", "imagenet_resnet", "wrn"}


def test_model_facts():
  facts = models.model_facts("wrn28_10")
  assert facts == {"name": "wrn28_10", "family": "wrn", "model": "wrn",
                   "preset": {"depth": 28, "widen_factor": 10}, "width_keyword": "base_width",
                   "defaults": {"widen_factor": 10, "dropout": 0.0}, "input_shape": (32, 32, 3)}
  resnet = models.model_facts("resnet50")
  assert resnet["defaults"] == {"base_width": 64, "groups": 1, "width_per_group": None}
  assert resnet["input_shape"] == (224, 224, 3) and resnet["preset"] == {"depth": 50}
  assert models.model_facts("mlp")["defaults"] == {"hidden": (256, 256), "dropout": 0.0}
  assert models.model_facts("cnn")["input_shape"] == (8, 8, 1)


def test_division_info_resolves_pinned_presets():
  assert models.division_info("wrn28_10", {"dropout": 0.3}) == {
      "name": "wrn", "kwargs": {"depth": 28, "widen_factor": 10, "dropout": 0.3},
      "family": "wrn", "values": {"widen_factor": 10, "dropout": 0.3}}
  assert models.division_info("resnext50_32x4d") == {
      "name": "resnet_imagenet", "kwargs": {"depth": 50, "groups": 32, "width_per_group": 4},
      "family": "imagenet_resnet",
      "values": {"base_width": 64, "groups": 32, "width_per_group": 4}}
  # A preset pinning only the depth stays itself; defaults fill the values.
  assert models.division_info("resnet20") == {
      "name": "resnet20", "kwargs": {}, "family": "cifar_resnet", "values": {"base_width": 16}}
  assert models.division_info("mlp", {"hidden": (64,), "dropout": 0.4})["values"] == {
      "hidden": (64,), "dropout": 0.4}
  assert models.division_info("cnn")["values"] == {"channels": (32, 64), "dense": 128}
  with pytest.raises(ValueError, match="'transformer9' has no division rule; valid:.*'mlp'"):
    models.division_info("transformer9")
  with pytest.raises(ValueError, match="unknown kwarg"):
    models.division_info("mlp", {"width": 3})


def test_count_params_builds_abstractly():
  assert models.count_params("mlp", {"hidden": (3,)}, num_classes=2, input_shape=(4,)) == (
      dense(4, 3) + dense(3, 2))
  # Default input shape per family; ImageNet-size models cost nothing to count.
  assert models.count_params("wrn28_10", num_classes=10) == wrn_count(28, 10)
  assert models.count_params("resnet50", num_classes=1000) == models.param_count(
      models.abstract_init(models.get("resnet50", num_classes=1000), IMAGENET)["params"])
