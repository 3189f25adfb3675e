"""Library tests of tradeoffs.studies.compression_bias on tiny populations and pytrees."""

from __future__ import annotations

import numpy as np
import optax
import pytest
import scipy.stats

from experiments.configs import compression_bias as config_lib
from tradeoffs import models
from tradeoffs.studies import compression_bias as cb
from tradeoffs.train import mesh as mesh_lib
from tradeoffs.train import population as pop_lib
from tradeoffs.train import seeds as seeds_lib


@pytest.fixture(scope="module")
def tiny_population():
  model = models.get("mlp", num_classes=3, hidden=(6,))
  mesh = mesh_lib.make_mesh(2)
  return pop_lib.create_population(model, optax.sgd(0.1), (2, 2, 1), 2,
                                   seeds_lib.Seeds(init=3, data=0, augment=0, dropout=0), mesh)


def test_prune_population_keeps_largest_magnitudes_per_member(tiny_population):
  pruned, masks = cb.prune_population(tiny_population, 0.5)
  for member in range(2):
    kernels = [np.asarray(tiny_population.params[layer]["kernel"][member])
               for layer in ("dense_0", "head")]
    flat = np.concatenate([k.ravel() for k in kernels])
    keep = int(round(0.5 * flat.size))
    threshold = np.sort(np.abs(flat))[::-1][keep - 1]
    for layer, kernel in zip(("dense_0", "head"), kernels):
      got = np.asarray(pruned.params[layer]["kernel"][member])
      np.testing.assert_array_equal(got, np.where(np.abs(kernel) >= threshold, kernel, 0.0))
      # Biases are not prunable: untouched.
      np.testing.assert_array_equal(pruned.params[layer]["bias"][member],
                                    tiny_population.params[layer]["bias"][member])
  sparsity = cb.measured_sparsity(pruned.params)
  assert sparsity["min"] == sparsity["max"] == 0.5


def test_quantize_population_matches_numpy_per_channel(tiny_population):
  quantized = cb.quantize_population(tiny_population, 4, "per_channel")
  for member in range(2):
    w = np.asarray(tiny_population.params["dense_0"]["kernel"][member], np.float64)
    scale = np.abs(w).max(axis=0, keepdims=True) / 7
    expected = np.clip(np.round(w / scale), -7, 7) * scale
    np.testing.assert_allclose(quantized.params["dense_0"]["kernel"][member], expected,
                               rtol=1e-6, atol=1e-7)
    np.testing.assert_array_equal(quantized.params["head"]["bias"][member],
                                  tiny_population.params["head"]["bias"][member])
  bits = cb.quantized_bits_per_leaf(
      {"dense_0": {"kernel": np.zeros((4, 6)), "bias": np.zeros(6)}}, 4)
  assert bits == {"dense_0": {"kernel": 4, "bias": None}}
  with pytest.raises(ValueError, match="bits=16"):
    cb.quantize_population(tiny_population, 16)
  with pytest.raises(ValueError, match="granularity='per_row'"):
    cb.quantize_population(tiny_population, 8, "per_row")


def test_compression_ratio_hand_computed():
  params = {"kernel": np.array([[1.0, 0.0], [0.0, 2.0]]), "bias": np.array([1.0, 1.0])}
  # Dense: 6 entries x 32 bits; pruned zeros are free: 4 non-zeros x 32 bits.
  assert cb.compression_ratio(params) == pytest.approx(6 / 4)
  # int4 kernel stored densely (4 x 4 bits) + bias 2 x 32 bits.
  bits = {"kernel": 4, "bias": None}
  assert cb.compression_ratio(params, bits) == pytest.approx(192 / (16 + 64))


def _labels_population():
  # 3 members x 6 examples; examples 4 and 5 are the under-represented group.
  labels = np.array([0, 1, 2, 0, 1, 2])
  dense = np.array([[0, 1, 2, 0, 1, 2],
                    [0, 1, 2, 0, 1, 0],
                    [0, 1, 1, 0, 1, 2]])
  comp = np.array([[0, 1, 2, 0, 0, 0],
                   [0, 1, 2, 1, 0, 1],
                   [0, 1, 2, 0, 1, 0]])
  groups = np.array([0, 0, 0, 0, 1, 1])[:, None]
  return labels, dense, comp, groups


def test_hidden_costs_hand_computed():
  labels, dense, comp, groups = _labels_population()
  costs = cb.compression_hidden_costs(dense, comp, labels, groups, ("subgroup",),
                                      taxicab_k=2)
  # Modal labels: dense [0,1,2,0,1,2], compressed [0,1,2,0,0,0] -> CIE at examples 4, 5.
  assert costs["cie_count"] == 2
  assert costs["cie_fraction"] == pytest.approx(2 / 6)
  # Taxicab: example 5 moves (1/3, 0, 2/3) -> (2/3, 1/3, 0): L1 = 4/3, the largest.
  assert costs["taxicab"]["max"] == pytest.approx(4 / 3, abs=1e-6)
  assert costs["taxicab"]["k"] == 2 and costs["taxicab"]["topk_modal_overlap"] == 1.0
  under = costs["per_group"]["subgroup=1"]
  assert under["count"] == 2 and under["cie_count"] == 2 and under["cie_rate"] == 1.0
  # Dense members on examples 4, 5: 2/2, 1/2, 2/2 -> 5/6; compressed 0, 0, 1/2 -> 1/6.
  assert under["dense_accuracy"] == pytest.approx(5 / 6)
  assert under["accuracy_drop"] == pytest.approx(4 / 6)
  rest = costs["per_group"]["subgroup=0"]
  # Dense on examples 0-3: 1, 1, 3/4 -> 11/12; compressed 1, 3/4, 1 -> 11/12.
  assert rest["accuracy_drop"] == pytest.approx(0.0, abs=1e-6)
  assert costs["underrepresented"]["group"] == "subgroup=1"
  assert costs["underrepresented"]["share_of_cie"] == 1.0
  d = costs["disparity"]
  assert d["excess_drop"] == pytest.approx(d["drop_under"] - d["drop_rest"])
  assert d["drop_under"] == pytest.approx(4 / 6)
  acc = costs["cie_accuracy"]
  assert acc["dense"]["cie_accuracy"] == pytest.approx(5 / 6)
  assert acc["compressed"]["cie_accuracy"] == pytest.approx(1 / 6)
  assert acc["dense"]["cie_count"] == 2 and acc["dense"]["non_cie_count"] == 4
  assert costs["group_gap"]["change"] == pytest.approx(
      abs(rest["compressed_accuracy"] - under["compressed_accuracy"])
      - abs(rest["dense_accuracy"] - under["dense_accuracy"]), abs=1e-6)
  assert costs["per_class_ttest"]["alpha"] == 0.05


def test_hidden_costs_of_dense_against_itself_are_zero():
  labels, dense, _, groups = _labels_population()
  costs = cb.compression_hidden_costs(dense, dense, labels, groups, ("subgroup",))
  assert costs["cie_count"] == 0 and costs["taxicab"]["max"] == 0.0
  assert costs["per_class_ttest"]["significant_hurt"] == 0
  assert costs["disparity"]["excess_drop"] == 0.0
  assert costs["disparity"]["verdict"] == "no_significant_difference"


def test_disparity_test_agrees_with_scipy_welch():
  rng = np.random.default_rng(0)
  labels = rng.integers(0, 4, 200)
  under = np.arange(200) < 30
  dense_correct = rng.random((8, 200)) < 0.9
  comp_correct = rng.random((6, 200)) < np.where(under, 0.6, 0.85)
  result = cb.disparity_test(dense_correct, comp_correct, under)
  gap = lambda c: c[:, ~under].mean(1) - c[:, under].mean(1)  # noqa: E731
  expected = scipy.stats.ttest_ind(gap(comp_correct), gap(dense_correct), equal_var=False)
  assert result["statistic"] == pytest.approx(expected.statistic, rel=1e-4)
  assert result["pvalue"] == pytest.approx(expected.pvalue, rel=1e-3, abs=1e-6)
  assert result["verdict"] == "harder"  # The group lost ~30 points, the rest ~5.
  del labels


def test_validate_config_rejects_bad_input_naming_the_flag():
  def bad(**changes):
    config = config_lib.get_config("smoke")
    for path, value in changes.items():
      node = config
      *parents, leaf = path.split("__")
      for p in parents:
        node = node[p]
      node[leaf] = value
    return config

  cases = [
      (dict(compression__sparsities=(0.5, 1.0)), r"sparsities=\(0.5, 1.0\).*\[0, 1\)"),
      (dict(compression__sparsities=(-0.1,)), r"sparsities"),
      (dict(compression__distribution="gaussian"), r"distribution='gaussian'.*global"),
      (dict(compression__gradual__begin_step=30, compression__gradual__end_step=20),
       r"end_step=20 is before begin_step=30"),
      (dict(compression__gradual__end_step=60), r"end_step=60 must be < "
                                                r"--config.train.steps=60"),
      (dict(compression__methods=("gradual", "random")), r"methods=.*'one_shot'"),
      (dict(compression__quantization_bits=(8, 1)), r"bits.*1.*\[2, 8\]"),
      (dict(compression__granularity="per_row"), r"granularity='per_row'"),
      (dict(analysis__ttest_normalize="z"), r"ttest_normalize='z'"),
      (dict(analysis__audit_variant="gmp_0.3"), r"audit_variant='gmp_0.3'.*gmp_0.5"),
      (dict(compression__methods=(), compression__quantization_bits=()),
       r"no compressed variant"),
  ]
  for changes, pattern in cases:
    with pytest.raises(ValueError, match=pattern):
      cb.validate_config(bad(**changes))
  cb.validate_config(config_lib.get_config("smoke"))  # The config itself is valid.


def test_run_fails_before_writing_anything(tmp_path):
  config = config_lib.get_config("smoke")
  config.compression.sparsities = (0.5, 1.5)
  workdir = tmp_path / "never"
  with pytest.raises(ValueError, match="sparsities"):
    cb.run(config, str(workdir))
  assert not workdir.exists()


def test_planned_variants_and_config_variants():
  names = [v["variant"] for v in cb.planned_variants(config_lib.get_config(""))]
  assert names == ["dense", "gmp_0.3", "gmp_0.5", "gmp_0.7", "gmp_0.9", "oneshot_0.3",
                   "oneshot_0.5", "oneshot_0.7", "oneshot_0.9", "int8", "int4"]
  assert config_lib.get_config("")["population"]["members"] == 30
  celeb = config_lib.get_config("celeb_a")
  assert celeb.dataset.group_attributes == ("Male", "Young")
  assert celeb.dataset.label_attribute == "Blond_Hair"
  assert config_lib.get_config("cifar10,members=8").population.members == 8
  with pytest.raises(ValueError, match="'imagenet'"):
    config_lib.get_config("imagenet")
