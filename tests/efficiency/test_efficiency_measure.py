"""Efficiency accounting: counts, XLA FLOPs against closed forms, sparse FLOPs, latency."""

from __future__ import annotations

import itertools
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoffs import efficiency


def dense(params, x):
  return x @ params["w"]


def conv(params, x, padding):
  return jax.lax.conv_general_dilated(x, params["k"], (1, 1), padding,
                                      dimension_numbers=("NHWC", "HWIO", "NHWC"))


def test_counts_and_weight_bytes_by_hand():
  params = {"a": jnp.array([[0.0, 1.0], [2.0, 0.0]]), "b": {"c": jnp.zeros(3, jnp.bfloat16)},
            "d": jnp.ones(5, jnp.int8)}
  assert efficiency.param_count(params) == 12
  assert efficiency.nonzero_count(params) == 7
  assert efficiency.weight_bytes(params) == 4 * 4 + 3 * 2 + 5 * 1
  # Quantized a to 4 bits: 4 * 4 bits = 2 bytes, others as stored.
  bits = {"a": 4, "b": {"c": None}, "d": None}
  assert efficiency.weight_bytes(params, bits) == 2 + 6 + 5
  by_path = lambda path, leaf: 8 if path.startswith("b/") else None
  assert efficiency.weight_bytes(params, by_path) == 16 + 3 + 5
  # 5 int8 at 3 bits = 15 bits; total rounds up to whole bytes.
  assert efficiency.weight_bytes({"d": jnp.ones(5, jnp.int8)}, {"d": 3}) == 2


def test_bad_bits_per_leaf_raise():
  params = {"a": jnp.ones(2), "b": jnp.ones(2)}
  with pytest.raises(ValueError, match="bits_per_leaf"):
    efficiency.weight_bytes(params, {"a": 8})
  with pytest.raises(ValueError, match="positive int"):
    efficiency.weight_bytes(params, {"a": 0, "b": None})


@pytest.mark.parametrize("batch,fan_in,fan_out", [(1, 5, 7), (3, 4, 6)])
def test_dense_flops_match_closed_form(batch, fan_in, fan_out):
  params = {"w": jnp.ones((fan_in, fan_out))}
  cost = efficiency.compiled_cost(dense, params, jnp.ones((batch, fan_in)))
  assert cost["flops"] == 2 * batch * fan_in * fan_out  # XLA: multiply-add = 2 FLOPs.
  # Bias adds one FLOP per output element.
  with_bias = lambda p, x: x @ p["w"] + p["b"]
  cost = efficiency.compiled_cost(with_bias, {**params, "b": jnp.ones(fan_out)},
                                  jnp.ones((batch, fan_in)))
  assert cost["flops"] == 2 * batch * fan_in * fan_out + batch * fan_out
  assert cost["bytes"] > 0 and cost["peak_bytes"] > 0
  assert cost["memory_upper_bound_bytes"] >= cost["argument_bytes"] + cost["output_bytes"]


def _conv_flops_reference(n, h, w, kh, kw, cin, cout, padding):
  """2 FLOPs per multiply-add over taps that hit real (non-padding) input."""
  if padding == "VALID":
    return 2 * n * (h - kh + 1) * (w - kw + 1) * kh * kw * cin * cout
  pad_h, pad_w = (kh - 1) // 2, (kw - 1) // 2
  taps = 0
  for i, j in itertools.product(range(h), range(w)):
    rows = sum(0 <= i - pad_h + a < h for a in range(kh))
    cols = sum(0 <= j - pad_w + b < w for b in range(kw))
    taps += rows * cols
  return 2 * n * taps * cin * cout


@pytest.mark.parametrize("padding", ["VALID", "SAME"])
def test_conv_flops_match_closed_form(padding):
  n, h, w, kh, kw, cin, cout = 2, 6, 5, 3, 3, 2, 4
  params = {"k": jnp.ones((kh, kw, cin, cout))}
  cost = efficiency.compiled_cost(lambda p, x: conv(p, x, padding), params,
                                  jnp.ones((n, h, w, cin)))
  assert cost["flops"] == _conv_flops_reference(n, h, w, kh, kw, cin, cout, padding)


def test_sparse_flops_scale_each_matmul_by_its_density():
  w1 = np.ones((4, 6), np.float32)
  w1[:, :3] = 0.0  # density 0.5
  w2 = np.ones((5, 6), np.float32)  # used transposed and cast: density followed through
  w2[0, 0] = 0.0  # density 29/30
  params = {"w1": jnp.asarray(w1), "w2": jnp.asarray(w2)}

  def mlp(p, x):
    h = jnp.tanh(x @ p["w1"])
    return h @ p["w2"].astype(jnp.bfloat16).astype(jnp.float32).T

  x = jnp.ones((3, 4))
  ops = efficiency.weight_op_flops(mlp, params, x)
  assert [(op["param"], op["flops"]) for op in ops] == [("w1", 2 * 3 * 4 * 6),
                                                        ("w2", 2 * 3 * 6 * 5)]
  result = efficiency.sparse_flops(mlp, params, x)
  expected_saved = 2 * 3 * 4 * 6 * 0.5 + 2 * 3 * 6 * 5 * (1 / 30)
  assert result["dense_flops"] == efficiency.compiled_cost(mlp, params, x)["flops"]
  np.testing.assert_allclose(result["sparse_flops"], result["dense_flops"] - expected_saved)
  assert "theoretical" in result["note"]


def test_sparse_flops_follow_weights_into_nested_jit():
  params = {"w": jnp.zeros((4, 4)).at[0].set(1.0)}  # density 0.25
  inner = jax.jit(lambda w, x: x @ w)
  fn = lambda p, x: inner(p["w"], x)
  result = efficiency.sparse_flops(fn, params, jnp.ones((2, 4)))
  np.testing.assert_allclose(result["sparse_flops"], 2 * 2 * 4 * 4 * 0.25)


def test_measure_fills_record_fields_at_both_batch_sizes():
  params = {"w": jnp.ones((8, 3)).at[:4].set(0.0)}
  out = efficiency.measure(dense, params, jnp.ones((4, 8)), repeats=5, warmup=1)
  for key in ("params", "nonzero_params", "flops", "bytes", "latency_ms", "peak_bytes",
              "sparse_flops", "weight_bytes"):
    assert key in out, key
  assert out["params"] == 24 and out["nonzero_params"] == 12 and out["weight_bytes"] == 96
  assert set(out["per_batch"]) == {"1", "4"} and out["batch_size"] == 4
  assert out["flops"] == 2 * 8 * 3
  assert out["per_batch"]["4"]["flops"] == 4 * out["flops"]
  assert out["sparse_flops"] == out["flops"] / 2
  for row in out["per_batch"].values():
    assert 0 < row["latency_p10_ms"] <= row["latency_ms"] <= row["latency_p90_ms"]
    assert np.isfinite(row["latency_ms"]) and row["latency_ms"] < 10_000
  assert out["throughput_per_s"] > 0
  overridden = efficiency.measure(dense, params, jnp.ones((2, 8)), batch_sizes=(2,),
                                  nonzero_params=3, weight_bytes=7, time_it=False)
  assert overridden["nonzero_params"] == 3 and overridden["weight_bytes"] == 7
  assert overridden["latency_ms"] is None and overridden["flops"] == 2 * 2 * 8 * 3


@pytest.mark.parametrize("kwargs,match", [
    ({"repeats": 0}, "repeats"), ({"warmup": -1}, "warmup"),
    ({"batch_sizes": (0,)}, "batch_sizes"), ({"batch_sizes": ()}, "batch_sizes")])
def test_measure_rejects_bad_arguments(kwargs, match):
  with pytest.raises(ValueError, match=match):
    efficiency.measure(dense, {"w": jnp.ones((2, 2))}, jnp.ones((1, 2)), **kwargs)
  with pytest.raises(ValueError, match="apply_fn"):
    efficiency.measure("not a function", {"w": jnp.ones((2, 2))}, jnp.ones((1, 2)))


def test_batch_of_cycles_examples():
  x = jnp.arange(6.0).reshape(3, 2)
  np.testing.assert_array_equal(efficiency.batch_of(x, 5)[:, 0], [0, 2, 4, 0, 2])


def test_paired_latency_alternates_abba_and_keeps_each_side_apart():
  calls = []

  def variant(x):
    calls.append("v")
    return x

  def reference(x):
    calls.append("r")
    time.sleep(0.05)  # Slept time is a floor: the reference's median cannot fall below it.
    return x

  out = efficiency.measure_latency(variant, jnp.ones(2), repeats=4, warmup=1, jit=False,
                                   reference=(reference, (jnp.ones(2),)))
  # One warm-up pair, then ABBA: a swapped or dropped side would change this order.
  assert "".join(calls) == "vr" + "vr" + "rv" + "vr" + "rv"
  assert out["reference_latency_ms"] >= 50 > out["latency_ms"]
  assert out["reference_latency_p10_ms"] >= 50 and out["repeats"] == 4
  alone = efficiency.measure_latency(variant, jnp.ones(2), repeats=2, warmup=1, jit=False)
  assert not any(k.startswith("reference_") for k in alone)


def test_measure_times_the_reference_at_every_batch_size():
  params = {"w": jnp.ones((8, 3))}
  out = efficiency.measure(dense, params, jnp.ones((4, 8)), repeats=3, warmup=1,
                           reference=(jax.jit(dense), params))
  for row in out["per_batch"].values():
    assert row["reference_latency_p10_ms"] <= row["reference_latency_ms"] \
        <= row["reference_latency_p90_ms"]
  assert out["reference_latency_ms"] == out["per_batch"]["1"]["reference_latency_ms"]
  assert "reference_latency_ms" not in efficiency.measure(dense, params, jnp.ones((4, 8)),
                                                          repeats=2, warmup=1)
