"""The input simplification study: validation before anything loads (λ < 0 among it), the
plan, the report's claims on constructed records, and the simplifier trainer (the
all-studies test runs the `:smoke` config end to end)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import input_simplification as config_lib
from tradeoffs import errors
from tradeoffs import generative
from tradeoffs import stats
from tradeoffs.studies import input_simplification as study
from tradeoffs.studies import runner


def _config(**knobs):
  c = config_lib.get_config("smoke")
  c.study.update(knobs)
  return c


@pytest.mark.parametrize("knobs, needle", [
    (dict(lambdas=(-0.1,)), "study.lambdas=-0.1"),
    (dict(lambdas=(0.0, float("nan"))), "study.lambdas=nan"),
    (dict(lambdas=()), "lambdas=() is empty"),
    (dict(lambdas=(0.1, 0.1)), "duplicates"),
    (dict(levels=1), "study.levels=1"),
    (dict(flow_steps=0), "study.flow_steps=0"),
    (dict(simplifier_learning_rate=0.0), "study.simplifier_learning_rate=0.0"),
])
def test_bad_knobs_are_one_config_error(knobs, needle):
  with pytest.raises(errors.ConfigError, match=needle.replace("(", "\\(").replace(")", "\\)")):
    runner.plan(study, _config(**knobs))


def test_plan_is_the_classifier_then_one_variant_per_lambda():
  variants = runner.plan(study, config_lib.get_config())
  assert [v.name for v in variants] == [
      "classifier", "simplified_lambda0", "simplified_lambda0p01", "simplified_lambda0p03",
      "simplified_lambda0p1", "simplified_lambda0p3", "simplified_lambda1"]
  assert all(v.source == "classifier" for v in variants[1:])
  assert variants[3].knobs["lambda"] == 0.03 and variants[3].knobs["levels"] == 17


def _record(name, lam, top1, bits, original=3.0):
  return {"variant": name, "technique": "simplified" if lam is not None else "dense",
          "knobs": {"lambda": lam}, "members": len(top1),
          "accuracy": {"per_member_top1": top1, "top1": float(np.mean(top1))},
          "study_fields": {"per_member_bits_per_dim": bits, "original_bits_per_dim": original}}


def test_claims_pair_each_lambda_with_the_original_images():
  records = [_record("classifier", None, [0.9, 0.92, 0.91], []),
             _record("simplified_lambda1", 1.0, [0.8, 0.83, 0.81], [2.0, 2.1, 1.9]),
             _record("simplified_lambda0", 0.0, [0.9, 0.92, 0.91], [3.0, 3.0, 3.0])]
  family = study.claims(records)
  by = {c.claim: c for c in family}
  assert len(family) == 4 and all(c.test == "paired" for c in family)
  low = by["simplified_lambda1: top-1 vs the original images"]
  np.testing.assert_allclose(low.estimate, -0.0967, atol=1e-4)
  assert low.verdict == stats.LOWER
  bits = by["simplified_lambda1: bits/dim vs the original images"]
  np.testing.assert_allclose(bits.estimate, -1.0)
  assert by["simplified_lambda0: top-1 vs the original images"].verdict == stats.NO_DIFFERENCE
  raw = stats.compare([0.8, 0.83, 0.81], [0.9, 0.92, 0.91], paired=True).p
  assert low.p == raw and low.p_holm >= raw  # Holm over the family of four


def test_a_larger_lambda_buys_fewer_bits():
  rng = np.random.default_rng(0)
  images = rng.random((64, 2, 2, 1)).astype(np.float32)
  labels = (images.reshape(64, -1).mean(-1) > 0.5).astype(np.int32)
  flow = generative.RealNVP(dim=4, layers=2, hidden=4)  # the identity: simplest at 0.5
  prior = flow.init(jax.random.key(0), jnp.zeros((1, 4)))["params"]
  classifier = {"w": jnp.ones((2, 4, 2)) * jnp.array([-1.0, 1.0])}  # 2 members
  classify = lambda p, x: x.reshape(x.shape[0], -1) @ p["w"]  # noqa: E731
  bits = lambda x, key: generative.bits_per_dim(flow, prior, x, levels=17, key=key)  # noqa: E731
  simplifier = generative.simplify.Simplifier(hidden=(8,))
  out = {}
  for lam in (0.0, 3.0):
    params = generative.simplify.train_simplifiers(
        simplifier, classify, classifier, bits, images, labels, lam=lam, steps=60,
        batch_size=32, learning_rate=3e-2, seed=0)
    simple = jax.vmap(lambda p: simplifier.apply({"params": p}, images))(params)
    out[lam] = float(jax.vmap(lambda x: bits(x, None).mean())(simple).mean())
  assert out[3.0] < out[0.0] - 0.05
  with pytest.raises(ValueError, match="λ must be"):
    generative.simplify.train_simplifiers(simplifier, classify, classifier, bits, images,
                                          labels, lam=-1.0, steps=1, batch_size=2,
                                          learning_rate=1e-3, seed=0)
