"""The `pruned_channels` and `pruned_nm` recipes: the model glue (which layer feeds which)
on the registry's Flax MLP and CNN, and a toy study through the runner on a tiny digits
MLP whose channel-pruned variant is smaller in params and FLOPs, while N:M stays dense.
"""

from __future__ import annotations

import types

import jax
import numpy as np
import pytest

from experiments.configs import digits_mlp
from tradeoffs import models
from tradeoffs import sparsity
from tradeoffs.report import ledger
from tradeoffs.report import records as records_lib
from tradeoffs.studies import base
from tradeoffs.studies import recipes
from tradeoffs.studies import runner


def _randomize(tree, rng, low=None):
  """Random leaves (positive where `low` is given: variances)."""
  def draw(x):
    x = np.asarray(x)
    return (rng.uniform(0.5, 2.0, x.shape) if low else rng.normal(size=x.shape)).astype(x.dtype)
  return jax.tree.map(draw, tree)


@pytest.mark.parametrize("name,kwargs,shape", [
    ("mlp", {"hidden": (12, 10)}, (8, 8, 1)),
    ("mlp", {"hidden": (12, 10), "batch_norm": True}, (8, 8, 1)),
    ("cnn", {"channels": (6, 8), "dense": 10}, (8, 8, 1)),
    ("cnn", {"channels": (6, 8), "dense": 10, "batch_norm": True}, (8, 8, 3)),
])
def test_small_registry_model_equals_masked_big_model(name, kwargs, shape):
  rng = np.random.default_rng(0)
  big = models.get(name, num_classes=5, **kwargs)
  x = rng.normal(size=(4,) + shape).astype(np.float32)
  variables = jax.tree.map(np.asarray, big.init(jax.random.PRNGKey(0), x))
  variables = {"params": _randomize(variables["params"], rng),
               **({"batch_stats": {
                   k: {"mean": rng.normal(size=v["mean"].shape).astype(np.float32),
                       "var": rng.uniform(0.5, 2.0, v["var"].shape).astype(np.float32)}
                   for k, v in variables["batch_stats"].items()}}
                  if "batch_stats" in variables else {})}
  layers = recipes.unit_layers(name, variables["params"])
  kept = sparsity.kept_units(sparsity.unit_scores(variables, layers), 0.5)
  small_vars = sparsity.slice_units(variables, layers, kept)
  small_kwargs = {**kwargs, **recipes._unit_model_kwargs(name, layers, kept)}
  small = models.get(name, num_classes=5, **small_kwargs)
  # The sliced variables have exactly the smaller model's structure and shapes.
  expected = jax.eval_shape(lambda: small.init(jax.random.PRNGKey(1), x))
  assert (jax.tree.map(np.shape, small_vars) ==
          jax.tree.map(lambda s: tuple(s.shape), dict(expected)))
  masked = sparsity.apply_unit_masks(variables, sparsity.unit_masks(variables, layers, kept))
  out_small = small.apply(small_vars, x, train=False)
  out_masked = big.apply(masked, x, train=False)
  np.testing.assert_allclose(out_small, out_masked, rtol=2e-5, atol=2e-5)
  if name == "cnn":  # Convs and the hidden Dense are all pruned.
    assert small_kwargs["channels"] == (3, 4) and small_kwargs["dense"] == 5
  else:
    assert small_kwargs["hidden"] == (6, 5)


def test_unit_layers_refuses_models_it_does_not_know():
  with pytest.raises(ValueError, match="only for models \\['mlp', 'cnn'\\], not 'resnet20'"):
    recipes.unit_layers("resnet20", {})


@pytest.mark.parametrize("bad", [1.0, -0.5, 2, None])
def test_bad_sparsity_knob_is_named_before_any_work(bad):
  variant = base.Variant("channels", "pruned_channels", {"sparsity": bad}, "dense")
  with pytest.raises(ValueError, match=r"knob 'sparsity'=.*\[0, 1\)"):
    recipes.pruned_channels(None, variant)  # No context needed: it fails first.


def test_bad_nm_knobs_are_named():
  variant = base.Variant("nm", "pruned_nm", {"n": 4, "m": 4}, "dense")
  with pytest.raises(ValueError, match="knobs 'n'=4, 'm'=4"):
    recipes.pruned_nm(None, variant)


def _toy_config():
  c = digits_mlp.get_config("smoke")
  c.unlock()
  c.population.members = 2
  c.train.steps = 20
  c.train.batch_size = 32
  c.model.kwargs.hidden = (32, 32)
  c.efficiency = dict(latency_repeats=5, measure_batch=8, time_latency=True)
  c.study = dict(channel_sparsity=0.5)
  return c


def _toy_study():
  def plan(config):
    train = config.copy_and_resolve_references()
    del train["study"], train["efficiency"]
    finetune = train.copy_and_resolve_references()
    finetune.train.steps = 5
    knobs = {"finetune_steps": 5, "finetune_learning_rate": 3e-4}
    return [base.Variant("dense", "dense", {}, None, train),
            base.Variant("channels_s50", "pruned_channels",
                         {"sparsity": float(config.study.channel_sparsity), "score": "in_out",
                          **knobs}, "dense", finetune),
            base.Variant("nm_2of4", "pruned_nm", {"n": 2, "m": 4, "sparsity": 0.5, **knobs},
                         "dense", finetune)]

  return types.SimpleNamespace(NAME="toy_structured", TITLE="Toy structured pruning",
                               plan=plan, produce=recipes.produce, sections=lambda r, c: [])


def test_channel_pruning_shrinks_the_model_and_nm_stays_dense(workdir):
  result = runner.run(_toy_study(), _toy_config(), workdir)
  assert result.finished
  records = {r["variant"]: r for r in records_lib.read_records(workdir)}
  dense, channels, nm = records["dense"], records["channels_s50"], records["nm_2of4"]
  e_dense, e_ch, e_nm = dense["efficiency"], channels["efficiency"], nm["efficiency"]
  # Channel pruning: a smaller dense model, measured as such.
  assert e_ch["params"] < 0.5 * e_dense["params"]
  assert e_ch["flops"] < 0.5 * e_dense["flops"]
  assert e_ch["nonzero_params"] > 0.95 * e_ch["params"]  # removed, not zeroed
  assert tuple(channels["config"]["model"]["kwargs"]["hidden"]) == (16, 16)
  assert channels["study_fields"]["widths"] == {"dense_0": [32, 16], "dense_1": [32, 16]}
  kept = channels["study_fields"]["kept_units"]
  assert np.shape(kept["dense_0"]) == (2, 16)  # the same count for both members
  assert channels["hidden_costs"]["cie_kind"] == "derived"
  assert 0.0 <= channels["accuracy"]["top1"] <= 1.0  # (20 steps: accuracy is not the point)
  # The channel variant never gets the "saves on paper" note: it holds no zeros.
  entry = ledger.trade_entry(channels, dense)
  assert not any("saves on paper" in n for n in entry["notes"])
  # N:M: zeros in a model of the dense size; FLOPs are the dense model's.
  assert e_nm["params"] == e_dense["params"] and e_nm["flops"] == e_dense["flops"]
  assert e_nm["nonzero_params"] < 0.55 * e_nm["params"]
  assert "cuSPARSELt" in e_nm["notes"]["sparse_kernels"]
  assert "here it runs dense" in e_nm["notes"]["sparse_kernels"]
  assert nm["study_fields"]["pattern"] == "2:4" and nm["study_fields"]["dense_leaves"] == []
  assert nm["study_fields"]["achieved_sparsity"]["min"] > 0.49


def test_frontier_plans_channel_and_nm_variants_after_the_pruned_ones():
  from experiments.configs import frontier as frontier_config
  from tradeoffs.studies import frontier
  variants = frontier.plan(frontier_config.get_config("smoke"))
  names = [v.name for v in variants]
  assert names.index("pruned_s80") < names.index("channels_s50") < names.index("nm_2of4")
  channels = variants[names.index("channels_s50")]
  nm = variants[names.index("nm_2of4")]
  assert channels.technique == "pruned_channels" and nm.technique == "pruned_nm"
  assert channels.source == nm.source == "dense_w64"
  assert channels.knobs == {"sparsity": 0.5, "score": "in_out", "finetune_steps": 10,
                            "finetune_learning_rate": 3e-4}
  assert nm.knobs["n"] == 2 and nm.knobs["m"] == 4 and nm.knobs["sparsity"] == 0.5
  assert channels.train_config.train.steps == 10  # smoke: fine-tunes of <= 10 steps
  # cifar10 (a ResNet) plans N:M but no channel pruning (the recipe knows mlp/cnn).
  cifar = [v.name for v in frontier.plan(frontier_config.get_config("cifar10"))]
  assert "nm_2of4" in cifar and not any(n.startswith("channels_") for n in cifar)


@pytest.mark.parametrize("key,value,match", [
    ("channel_sparsities", (1.0,), r"--config.study.channel_sparsities=1.0: expected a number "
                                   r"in \[0, 1\)"),
    ("channel_sparsities", (-0.1,), r"--config.study.channel_sparsities=-0.1"),
    ("nm", ((4, 4),), r"--config.study.nm=.*0 < n < m"),
    ("nm", (2, 4), r"--config.study.nm=.*pairs"),
])
def test_frontier_refuses_bad_structured_knobs(key, value, match):
  from experiments.configs import frontier as frontier_config
  from tradeoffs.studies import frontier
  config = frontier_config.get_config("smoke")
  config.study[key] = value
  with pytest.raises(ValueError, match=match):
    frontier.plan(config)


def test_frontier_refuses_channel_pruning_of_an_unknown_model():
  from experiments.configs import frontier as frontier_config
  from tradeoffs.studies import frontier
  config = frontier_config.get_config("cifar10")
  config.study.channel_sparsities = (0.5,)
  with pytest.raises(ValueError, match=r"channel_sparsities=\(0.5,\) needs .*'resnet20'"):
    frontier.plan(config)
