"""Fake quantization: half-step error bound, numpy int8 reference, byte counts, bad input."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from tradeoffs import quantization


def _numpy_int8_per_channel(w, axis=-1):
  w = np.asarray(w, np.float32)
  reduce = tuple(i for i in range(w.ndim) if i != axis % w.ndim)
  scale = np.max(np.abs(w), axis=reduce, keepdims=True) / np.float32(127)
  scale = np.where(scale > 0, scale, 1).astype(np.float32)
  codes = np.clip(np.round(w / scale), -127, 127).astype(np.int8)
  return codes, scale, codes.astype(np.float32) * scale


@settings(max_examples=10, deadline=None)
@given(st.integers(0, 1000), st.sampled_from([4, 8]),
       st.sampled_from(["per_tensor", "per_channel"]), st.sampled_from([0, -1]))
def test_error_within_half_a_step(seed, bits, granularity, axis):
  w = jax.random.normal(jax.random.key(seed), (7, 5)) * 3.0
  q = quantization.quantize({"w": w}, bits, granularity, axis)
  err = np.abs(np.asarray(w) - np.asarray(q.params["w"]))
  scale = np.asarray(q.scales["w"])
  assert (err <= scale / 2 * (1 + 1e-6)).all()
  codes = np.asarray(q.codes["w"])
  assert np.abs(codes).max() == 2 ** (bits - 1) - 1  # the extreme value uses the full range
  expected_scales = 1 if granularity == "per_tensor" else w.shape[axis]
  assert scale.size == expected_scales


def test_int8_matches_numpy_reference():
  w = np.random.default_rng(0).normal(size=(6, 4)).astype(np.float32)
  w[:, 2] = 0.0  # an all-zero channel keeps scale 1 and codes 0
  q = quantization.quantize({"w": jnp.asarray(w)}, 8, "per_channel")
  codes, scale, deq = _numpy_int8_per_channel(w)
  np.testing.assert_array_equal(np.asarray(q.codes["w"]), codes)
  # XLA may divide by 127 as a multiply by 1/127: allow an ulp.
  np.testing.assert_allclose(np.asarray(q.scales["w"]), scale, rtol=3e-7)
  np.testing.assert_allclose(np.asarray(q.params["w"]), deq, rtol=3e-7)
  assert (np.asarray(q.params["w"])[:, 2] == 0).all()


def test_int4_hand_computed_and_filter():
  w = jnp.array([[0.7, -0.36], [0.1, 0.0]])
  q = quantization.quantize({"k": w, "bias": jnp.array([0.123, 4.56])}, 4, "per_tensor")
  # scale = 0.7 / 7 = 0.1; codes = round(w / 0.1) = [[7, -4], [1, 0]]
  np.testing.assert_array_equal(np.asarray(q.codes["k"]), [[7, -4], [1, 0]])
  np.testing.assert_allclose(np.asarray(q.params["k"]), [[0.7, -0.4], [0.1, 0.0]], rtol=1e-6)
  assert q.codes["bias"] is None
  np.testing.assert_array_equal(np.asarray(q.params["bias"]), np.float32([0.123, 4.56]))


def test_quantized_bytes():
  params = {"k": jnp.zeros((64, 256)), "bias": jnp.zeros(256), "h": jnp.zeros((3, 5), jnp.bfloat16)}
  # int8 per channel: codes 64*256 + 256 scales*4; h: 15 codes + 5 scales*4; bias float32.
  assert quantization.quantized_bytes(params, 8) == 64 * 256 + 1024 + 15 + 20 + 256 * 4
  # int4 per tensor: ceil(n/2) codes + one scale each.
  assert quantization.quantized_bytes(params, 4, "per_tensor") == 8192 + 4 + 8 + 4 + 1024
  assert quantization.dense_bytes(params) == 64 * 256 * 4 + 256 * 4 + 15 * 2
  abstract = jax.tree.map(lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype), params)
  assert quantization.quantized_bytes(abstract, 8) == quantization.quantized_bytes(params, 8)


def test_jit_and_vmap():
  w = jax.random.normal(jax.random.key(1), (3, 4, 5))
  fn = jax.jit(jax.vmap(lambda p: quantization.quantize(p, 8).params))
  out = fn({"w": w})
  for i in range(3):
    single = quantization.quantize({"w": w[i]}, 8).params["w"]
    np.testing.assert_array_equal(np.asarray(out["w"][i]), np.asarray(single))


@pytest.mark.parametrize("kwargs, match", [
    (dict(bits=1), "bits"), (dict(bits=16), "bits"), (dict(bits=8.0), "bits"),
    (dict(granularity="per_row"), "granularity"), (dict(axis=5), "axis=5"),
])
def test_bad_input(kwargs, match):
  with pytest.raises(ValueError, match=match):
    quantization.quantize({"w": jnp.ones((2, 2))}, **kwargs)
  if "axis" not in kwargs:
    with pytest.raises(ValueError, match=match):
      quantization.quantized_bytes({"w": jnp.ones((2, 2))}, **kwargs)
