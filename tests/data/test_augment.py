import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoffs import data


def _images():
  return jnp.arange(2 * 4 * 4 * 1, dtype=jnp.float32).reshape(2, 4, 4, 1)


def test_flip_is_keyed_and_mirrors():
  x = _images()
  out = np.asarray(data.random_flip(jax.random.key(0), x))
  for i in range(2):
    assert (np.array_equal(out[i], x[i]) or np.array_equal(out[i], np.asarray(x[i])[:, ::-1]))
  np.testing.assert_array_equal(out, data.random_flip(jax.random.key(0), x))


def test_pad_and_crop_shifts_content():
  x = _images()
  out = np.asarray(data.pad_and_crop(jax.random.key(1), x, pad=1))
  assert out.shape == x.shape
  for i in range(2):
    padded = np.pad(np.asarray(x[i, ..., 0]), 1)
    windows = [padded[r:r + 4, c:c + 4] for r in range(3) for c in range(3)]
    assert any(np.array_equal(out[i, ..., 0], w) for w in windows)


def test_make_augment_composes_and_rejects_unknown():
  aug = data.make_augment(("pad_crop", "flip"), pad=2)
  assert aug(jax.random.key(0), _images()).shape == (2, 4, 4, 1)
  assert data.make_augment(()) is None
  with pytest.raises(ValueError, match="unknown augmentation"):
    data.make_augment(("rotate_by_magic",))
