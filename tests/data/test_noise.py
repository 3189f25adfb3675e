"""Noise injection: exact rates, changed ids that are right and reproducible, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from tradeoffs import data
from tradeoffs.data import noise


def _labels(n=1000, classes=10, seed=0):
  return np.random.default_rng(seed).integers(0, classes, n).astype(np.int32)


@pytest.mark.parametrize("kind", ["uniform", "class_conditional"])
@pytest.mark.parametrize("rate,n,expected", [(0.2, 1000, 200), (0.0, 50, 0), (0.25, 10, 2),
                                             (0.35, 10, 4), (0.999, 7, 7)])
def test_label_noise_changes_exactly_round_rate_n(kind, rate, n, expected):
  labels = _labels(n)
  noisy, changed = noise.label_noise(labels, num_classes=10, rate=rate, seed=3, kind=kind)
  assert changed.size == expected  # round half to even: 0.25·10 = 2.5 -> 2, 3.5 -> 4.
  np.testing.assert_array_equal(np.flatnonzero(noisy != labels), changed)
  assert noisy.dtype == labels.dtype
  again = noise.label_noise(labels, num_classes=10, rate=rate, seed=3, kind=kind)
  np.testing.assert_array_equal(again[0], noisy)
  np.testing.assert_array_equal(again[1], changed)


def test_label_noise_depends_on_the_seed_only():
  labels = _labels()
  a = noise.label_noise(labels, num_classes=10, rate=0.3, seed=0)[1]
  b = noise.label_noise(labels, num_classes=10, rate=0.3, seed=1)[1]
  assert not np.array_equal(a, b)
  assert len(set(a) & set(b)) < 0.6 * a.size  # Two seeds pick mostly different examples.


def test_uniform_noise_is_uniform_over_the_other_classes():
  labels = np.zeros(40_000, np.int32)
  noisy, changed = noise.label_noise(labels, num_classes=5, rate=0.5, seed=0)
  counts = np.bincount(noisy[changed], minlength=5)
  assert counts[0] == 0
  # 20,000 draws over 4 classes: each share 1/4 within 4 standard errors (0.003).
  np.testing.assert_allclose(counts[1:] / changed.size, 0.25, atol=0.013)


def test_pair_flip_is_the_default_class_conditional_noise():
  labels = np.arange(10, dtype=np.int32).repeat(20)
  noisy, changed = noise.label_noise(labels, num_classes=10, rate=0.5, seed=1,
                                     kind="class_conditional")
  np.testing.assert_array_equal(noisy[changed], (labels[changed] + 1) % 10)
  np.testing.assert_array_equal(noise.pair_flip(3), [[0, 1, 0], [0, 0, 1], [1, 0, 0]])


def test_class_conditional_follows_the_off_diagonal_of_the_transition():
  # Class 0 -> 1 or 2 at odds 1:3 (its diagonal 0.6 is ignored); class 1 -> 0; class 2 -> 1.
  transition = [[0.6, 0.1, 0.3], [0.5, 0.5, 0.0], [0.0, 1.0, 0.0]]
  labels = np.zeros(30_000, np.int32)
  labels[:2000] = 1
  labels[2000:3000] = 2
  noisy, changed = noise.label_noise(labels, num_classes=3, rate=0.6, seed=2,
                                     kind="class_conditional", transition=transition)
  old, new = labels[changed], noisy[changed]
  np.testing.assert_array_equal(new[old == 1], 0)
  np.testing.assert_array_equal(new[old == 2], 1)
  from_zero = new[old == 0]
  assert set(np.unique(from_zero)) == {1, 2}
  np.testing.assert_allclose(np.mean(from_zero == 2), 0.75, atol=0.015)


@pytest.mark.parametrize("kind", ["gaussian", "shuffle"])
def test_corrupt_inputs_changes_exactly_the_returned_images(kind):
  images = np.random.default_rng(0).random((30, 8, 8, 1)).astype(np.float32)
  out, changed = noise.corrupt_inputs(images, rate=0.2, seed=4, kind=kind)
  assert changed.size == 6
  differs = np.flatnonzero(np.any(out != images, axis=(1, 2, 3)))
  np.testing.assert_array_equal(differs, changed)
  assert out.dtype == images.dtype and out.min() >= 0 and out.max() <= 1
  if kind == "shuffle":  # The same pixel values, in another order.
    for i in changed:
      np.testing.assert_array_equal(np.sort(out[i].ravel()), np.sort(images[i].ravel()))
  again, changed_again = noise.corrupt_inputs(images, rate=0.2, seed=4, kind=kind)
  np.testing.assert_array_equal(again, out)
  np.testing.assert_array_equal(changed_again, changed)


def test_gaussian_corruption_has_the_documented_std():
  images = np.full((2000, 4, 4, 1), 0.5, np.float32)
  out, changed = noise.corrupt_inputs(images, rate=0.5, seed=0, std=0.1)
  np.testing.assert_allclose(np.std(out[changed] - 0.5), 0.1, rtol=0.03)  # Clipping is rare.


def _split():
  n = 200
  groups = np.zeros((n, 1), np.int32)
  groups[:40, 0] = 1
  return data.ArraySplit(images=np.zeros((n, 2, 2, 1), np.float32),
                         labels=np.arange(n, dtype=np.int32) % 4,
                         ids=np.arange(1000, 1000 + n, dtype=np.int32), groups=groups,
                         group_names=("subgroup",), num_classes=4)


def test_atypical_set_thins_the_subgroup_to_the_fraction():
  split = _split()
  thinned, ids = noise.atypical_set(split, fraction=0.05, seed=0)
  # 160 typical examples; k = round(0.05 · 160 / 0.95) = round(8.42) = 8.
  assert ids.size == 8 and len(thinned) == 168
  assert set(ids) <= set(range(1000, 1040))
  np.testing.assert_array_equal(np.sort(thinned.ids[thinned.groups[:, 0] == 1]), ids)
  assert np.all(np.diff(thinned.ids) > 0)  # Original order kept.
  np.testing.assert_array_equal(noise.atypical_set(split, fraction=0.05, seed=0)[1], ids)
  with pytest.raises(ValueError, match="only 40"):
    noise.atypical_set(split, fraction=0.5, seed=0)
  with pytest.raises(ValueError, match="group='rotated'"):
    noise.atypical_set(split, fraction=0.05, seed=0, group="rotated")


def test_changed_ids_round_trip(tmp_path):
  folder = str(tmp_path / "variant")
  noise.write_changed_ids(folder, {"noisy": np.array([3, 1]), "atypical": []}, rate=0.2)
  assert noise.read_changed_ids(folder) == {"noisy": [3, 1], "atypical": [], "rate": 0.2}


@pytest.mark.parametrize("rate", [-0.1, 1.0, 1.5, float("nan"), "x"])
def test_rates_outside_zero_one_are_refused(rate):
  with pytest.raises(ValueError, match=r"\[0, 1\)"):
    noise.label_noise(_labels(10), num_classes=10, rate=rate, seed=0)
  with pytest.raises(ValueError, match=r"\[0, 1\)"):
    noise.corrupt_inputs(np.zeros((4, 2, 2, 1)), rate=rate, seed=0)
  with pytest.raises(ValueError, match=r"fraction.*\[0, 1\)"):
    noise.atypical_set(_split(), fraction=rate, seed=0)


def test_bad_transitions_and_kinds_are_refused():
  labels = _labels(10, classes=3)
  with pytest.raises(ValueError, match="sum to 1"):
    noise.label_noise(labels, num_classes=3, rate=0.2, seed=0, kind="class_conditional",
                      transition=np.full((3, 3), 0.5))
  with pytest.raises(ValueError, match="no mass on another class"):
    noise.label_noise(labels, num_classes=3, rate=0.2, seed=0, kind="class_conditional",
                      transition=np.eye(3))
  with pytest.raises(ValueError, match="shape"):
    noise.label_noise(labels, num_classes=3, rate=0.2, seed=0, kind="class_conditional",
                      transition=np.eye(2))
  with pytest.raises(ValueError, match="kind="):
    noise.label_noise(labels, num_classes=3, rate=0.2, seed=0, kind="pairs")
  with pytest.raises(ValueError, match=r"\[0, 3\)"):
    noise.label_noise(labels + 3, num_classes=3, rate=0.2, seed=0)
