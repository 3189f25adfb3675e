"""Efficiency of one ensemble (`tradeoffs.efficiency.measure_ensemble`): the fields every
study reads, the whole ensemble's parameters and FLOPs by hand, both latencies measured."""

from __future__ import annotations

import numpy as np
import pytest

from tradeoffs import efficiency

D, H, C = 6, 5, 3


def member_apply(variables, x):
  p = variables["params"]
  h = x.reshape(x.shape[0], -1) @ p["w1"] + p["b1"]
  return h @ p["w2"] + p["b2"]


def stacked(size, seed=0):
  rng = np.random.default_rng(seed)
  shapes = {"w1": (D, H), "b1": (H,), "w2": (H, C), "b2": (C,)}
  return {"params": {k: rng.normal(size=(size, *s)).astype(np.float32)
                     for k, s in shapes.items()}}


MEMBER_PARAMS = D * H + H + H * C + C  # 53


@pytest.mark.parametrize("size", [1, 3])
def test_fields_params_and_latencies(size):
  images = np.random.default_rng(1).normal(size=(4, 2, 3, 1)).astype(np.float32)
  eff = efficiency.measure_ensemble(member_apply, stacked(size), images,
                                    batch_sizes=(1, 4), repeats=3, warmup=1)
  for key in ("params", "params_per_member", "nonzero_params", "weight_bytes", "flops",
              "latency_ms", "latency_concurrent_ms", "latency_sequential_ms",
              "latency_batch_size", "batch_size", "throughput_per_s", "per_batch",
              "concurrent_devices", "backend", "device_kind", "notes"):
    assert key in eff, key
  assert eff["params"] == size * MEMBER_PARAMS
  assert eff["params_per_member"] == MEMBER_PARAMS
  assert eff["weight_bytes"] == 4 * size * MEMBER_PARAMS  # float32
  # XLA counts a multiply-add as 2 FLOPs: each member 2·(D·H + H·C) at batch 1, plus the
  # bias adds; the ensemble is S times that (and the combine), never less.
  assert eff["flops"] >= size * 2 * (D * H + H * C)
  assert eff["latency_concurrent_ms"] > 0 and eff["latency_sequential_ms"] > 0
  assert eff["latency_ms"] == eff["latency_concurrent_ms"]
  assert eff["latency_batch_size"] == 1 and eff["batch_size"] == 4
  assert set(eff["per_batch"]) == {"1", "4"}
  for row in eff["per_batch"].values():
    assert row["concurrent_ms"] > 0 and row["sequential_ms"] > 0
  np.testing.assert_allclose(eff["throughput_per_s"],
                             4 / (eff["per_batch"]["4"]["concurrent_ms"] / 1e3))
  if size == 1:  # The wide model: one measurement, reported as both.
    assert eff["latency_concurrent_ms"] == eff["latency_sequential_ms"]
    assert eff["per_batch"]["1"]["wide_ms"] == eff["latency_ms"]
  assert 1 <= eff["concurrent_devices"] <= size
