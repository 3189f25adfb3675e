"""Augmentations against numpy expectations on tiny images: what each may output, that it
does change images, that it is a pure function of the key, and that examples differ."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoffs import data

# 2x3 image, 2 channels; the second channel is the first + 100, so a flip along the wrong
# axis (rows or channels) cannot pass for a left-right mirror.
IMAGE = np.stack([np.array([[1., 2., 3.], [4., 5., 6.]]),
                  np.array([[101., 102., 103.], [104., 105., 106.]])], axis=-1)
MIRRORED = np.stack([np.array([[3., 2., 1.], [6., 5., 4.]]),
                     np.array([[103., 102., 101.], [106., 105., 104.]])], axis=-1)
# 3x3, values 1..9 (non-zero, so zero padding is visible).
SQUARE = np.arange(1., 10.).reshape(3, 3, 1)


def _batch(image, n):
  return jnp.asarray(np.repeat(image[None], n, axis=0))


def _keys_give_different_outputs(fn, x):
  outs = [np.asarray(fn(jax.random.key(seed), x)) for seed in range(4)]
  return any(not np.array_equal(outs[0], o) for o in outs[1:])


# ----------------------------------------------------------------------------------- flip


def test_flip_outputs_the_image_or_its_left_right_mirror_each_about_half():
  np.testing.assert_array_equal(IMAGE[:, ::-1], MIRRORED)  # The hand-written mirror.
  out = np.asarray(data.random_flip(jax.random.key(0), _batch(IMAGE, 64)))
  flipped = []
  for image in out:
    assert np.array_equal(image, IMAGE) or np.array_equal(image, MIRRORED), image[..., 0]
    flipped.append(np.array_equal(image, MIRRORED))
  # p = 1/2 per example, drawn per example: 64 draws, +-4 sigma.
  assert 16 <= sum(flipped) <= 48, sum(flipped)


def test_flip_is_a_pure_function_of_the_key():
  x = _batch(IMAGE, 64)
  a = data.random_flip(jax.random.key(3), x)
  np.testing.assert_array_equal(a, data.random_flip(jax.random.key(3), x))
  np.testing.assert_array_equal(a, jax.jit(data.random_flip)(jax.random.key(3), x))
  assert _keys_give_different_outputs(data.random_flip, x)


# ------------------------------------------------------------------------------- pad/crop


def _windows(image, pad, mode="constant"):
  """{(row offset, col offset): crop} of every crop of the padded image (numpy)."""
  h, w, _ = image.shape
  padded = np.pad(image, ((pad, pad), (pad, pad), (0, 0)), mode=mode)
  return {(r, c): padded[r:r + h, c:c + w]
          for r, c in itertools.product(range(2 * pad + 1), repeat=2)}


def _offset(image, windows):
  matches = [o for o, w in windows.items() if np.array_equal(image, w)]
  assert len(matches) == 1, (image[..., 0], matches)
  return matches[0]


def test_pad_crop_windows_hand_computed():
  windows = _windows(SQUARE, 1)
  # Offset (0, 0) shifts the content down-right, (2, 2) up-left, (1, 1) is the image.
  np.testing.assert_array_equal(windows[0, 0][..., 0], [[0, 0, 0], [0, 1, 2], [0, 4, 5]])
  np.testing.assert_array_equal(windows[2, 2][..., 0], [[5, 6, 0], [8, 9, 0], [0, 0, 0]])
  np.testing.assert_array_equal(windows[1, 1], SQUARE)
  reflect = _windows(SQUARE, 1, "reflect")
  np.testing.assert_array_equal(reflect[0, 0][..., 0], [[5, 4, 5], [2, 1, 2], [5, 4, 5]])


@pytest.mark.parametrize("mode", ["constant", "reflect"])
def test_pad_crop_outputs_one_of_the_shifted_windows_and_all_of_them(mode):
  out = np.asarray(data.pad_and_crop(jax.random.key(1), _batch(SQUARE, 256), pad=1,
                                     mode=mode))
  assert out.shape == (256, 3, 3, 1)
  windows = _windows(SQUARE, 1, mode)
  offsets = [_offset(image, windows) for image in out]
  counts = {o: offsets.count(o) for o in windows}
  # Uniform over the 9 offsets, per example: ~28 each; none missing or dominating.
  assert all(10 <= c <= 60 for c in counts.values()), counts


def test_pad_crop_shifts_all_channels_together():
  out = np.asarray(data.pad_and_crop(jax.random.key(2), _batch(IMAGE, 32), pad=1))
  windows = _windows(IMAGE, 1)
  offsets = {_offset(image, windows) for image in out}  # Both channels match one window.
  assert len(offsets) > 1


def test_pad_crop_zero_pad_is_identity_and_keyed():
  x = _batch(SQUARE, 8)
  np.testing.assert_array_equal(data.pad_and_crop(jax.random.key(0), x, pad=0), x)
  fn = lambda key, images: data.pad_and_crop(key, images, pad=1)  # noqa: E731
  np.testing.assert_array_equal(fn(jax.random.key(5), x), fn(jax.random.key(5), x))
  assert _keys_give_different_outputs(fn, x)


# -------------------------------------------------------------------------------- erasing


def test_erasing_zeroes_exactly_one_size_by_size_square_or_nothing():
  x = _batch(np.ones((6, 6, 2)), 128)
  out = np.asarray(data.random_erasing(jax.random.key(4), x, size=2, probability=0.5))
  corners = []
  for image in out:
    zero = image == 0
    np.testing.assert_array_equal(zero[..., 0], zero[..., 1])  # Same square in every channel.
    np.testing.assert_array_equal(image[~zero], 1.0)
    rows, cols = np.nonzero(zero[..., 0])
    if rows.size == 0:
      continue
    top, left = rows.min(), cols.min()
    expected = np.zeros((6, 6), bool)
    expected[top:top + 2, left:left + 2] = True
    np.testing.assert_array_equal(zero[..., 0], expected)
    corners.append((top, left))
  assert 40 <= len(corners) <= 88, len(corners)  # p = 1/2 of 128, +-4 sigma.
  tops, lefts = zip(*corners)
  assert set(tops) == set(lefts) == set(range(5))  # Every position in 0..6-2.
  assert any(t != l for t, l in corners)  # Row and column drawn independently.


def test_erasing_probability_extremes_and_key():
  x = _batch(np.ones((4, 4, 1)), 16)
  np.testing.assert_array_equal(
      data.random_erasing(jax.random.key(0), x, size=2, probability=0.0), x)
  always = np.asarray(data.random_erasing(jax.random.key(0), x, size=2, probability=1.0))
  assert np.all((always == 0).sum(axis=(1, 2, 3)) == 4)
  fn = lambda key, images: data.random_erasing(key, images, size=2)  # noqa: E731
  np.testing.assert_array_equal(fn(jax.random.key(7), x), fn(jax.random.key(7), x))
  assert _keys_give_different_outputs(fn, x)


# --------------------------------------------------------------------------------- compose


def test_member_keys_give_member_specific_augmentations():
  # A population vmaps one augmentation over its members' keys.
  x = _batch(IMAGE, 16)
  keys = jax.random.split(jax.random.key(0), 4)
  out = np.asarray(jax.vmap(data.random_flip, in_axes=(0, None))(keys, x))
  assert len({o.tobytes() for o in out}) == 4
  np.testing.assert_array_equal(out[2], data.random_flip(keys[2], x))


def test_make_augment_composes_flip_after_crop_with_routed_kwargs():
  aug = data.make_augment(("pad_crop", "flip"), pad=1, size=99)  # size= is erase's only.
  out = np.asarray(aug(jax.random.key(0), _batch(SQUARE, 256)))
  windows = _windows(SQUARE, 1)
  flipped_windows = {o: w[:, ::-1] for o, w in windows.items()}
  seen = set()
  for image in out:
    plain = [o for o, w in windows.items() if np.array_equal(image, w)]
    mirrored = [o for o, w in flipped_windows.items() if np.array_equal(image, w)]
    assert plain or mirrored, image[..., 0]
    seen.update((o, False) for o in plain)
    seen.update((o, True) for o in mirrored)
  assert len(seen) == 18  # Every offset both mirrored and not: independent draws.
  np.testing.assert_array_equal(out, aug(jax.random.key(0), _batch(SQUARE, 256)))


def test_make_augment_rejects_unknown_and_empty_is_none():
  assert data.make_augment(()) is None
  assert data.make_augment(("", )) is None
  assert data.make_augment("flip") is not None
  # Equal settings give equal (hashable) augmentations, so equal step configs share a
  # compiled step; other settings do not.
  assert data.make_augment(("pad_crop",), pad=1, size=3) == data.make_augment(["pad_crop"], pad=1)
  assert hash(data.make_augment(("pad_crop",), pad=1)) == hash(data.make_augment("pad_crop", pad=1))
  assert data.make_augment(("pad_crop",), pad=2) != data.make_augment(("pad_crop",), pad=1)
  with pytest.raises(ValueError, match=r"unknown augmentation.*rotate_by_magic.*choose from"):
    data.make_augment(("rotate_by_magic",))
