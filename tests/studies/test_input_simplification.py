"""The input simplification study: validation before anything loads (λ < 0 among it), the
plan, the report's claims on constructed records, and the simplifier trainer (the
all-studies test runs the `:smoke` config end to end)."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import optax
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
    (dict(settings=("post_hoc", "jointly")), "study.settings="),
    (dict(settings=()), "study.settings=()"),
    (dict(condense_lambdas=(-1.0,)), "study.condense_lambdas=-1.0"),
    (dict(condense_per_class=(0,)), "study.condense_per_class=0"),
    (dict(inner_learning_rate=0.0), "study.inner_learning_rate=0.0"),
])
def test_bad_knobs_are_one_config_error(knobs, needle):
  with pytest.raises(errors.ConfigError, match=needle.replace("(", "\\(").replace(")", "\\)")):
    runner.plan(study, _config(**knobs))


def test_plan_is_the_classifier_then_each_setting_and_lambda_then_condensation():
  variants = runner.plan(study, config_lib.get_config())
  lambdas = ["0", "0p01", "0p03", "0p1", "0p3", "1"]
  assert [v.name for v in variants] == (
      ["classifier"] + [f"simplified_lambda{t}" for t in lambdas]
      + [f"joint_lambda{t}" for t in lambdas]
      + [f"{n}_ipc{i}{t}" for i in (1, 10) for n, t in
         [("real", "")] + [("condensed", f"_lambda{t}") for t in ("0", "0p1", "1")]])
  assert all(v.source == "classifier" for v in variants[1:])
  assert variants[3].knobs["lambda"] == 0.03 and variants[3].knobs["levels"] == 17
  assert variants[3].knobs["setting"] == "post_hoc"
  assert variants[9].knobs["setting"] == "joint" and "simplifier_steps" not in variants[9].knobs
  condensed = [v for v in variants if v.technique == "condensed"]
  assert [(v.knobs["per_class"], v.knobs["lambda"]) for v in condensed] == [
      (1, 0.0), (1, 0.1), (1, 1.0), (10, 0.0), (10, 0.1), (10, 1.0)]
  no_condensation = _config(condense_per_class=(), condense_lambdas=())
  assert all(v.technique in ("dense", "simplified")
             for v in runner.plan(study, no_condensation))


def _record(name, lam, top1, bits, original=3.0, setting="post_hoc", technique=None,
            **fields):
  technique = technique or ("simplified" if lam is not None else "dense")
  return {"variant": name, "technique": technique,
          "knobs": {"lambda": lam, "setting": setting, **fields.pop("knobs", {})},
          "members": len(top1),
          "accuracy": {"per_member_top1": top1, "top1": float(np.mean(top1))},
          "study_fields": {"per_member_bits_per_dim": bits, "original_bits_per_dim": original,
                           **fields}}


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


def test_joint_and_condensation_claims_pair_with_their_own_baselines():
  ref = _record("classifier", None, [0.9, 0.92, 0.91], [])
  joint = _record("joint_lambda1", 1.0, [0.85, 0.86, 0.84], [2.0, 2.2, 2.1],
                  setting="joint", per_member_top1_original=[0.5, 0.6, 0.55])
  real = _record("real_ipc1", None, [0.6, 0.62, 0.58], [2.0, 2.1, 2.2],
                 technique="real_subset", knobs={"per_class": 1})
  cond = _record("condensed_ipc1_lambda1", 1.0, [0.8, 0.79, 0.83], [1.5, 1.6, 1.7],
                 technique="condensed", knobs={"per_class": 1})
  family = study.claims([ref, joint, real, cond])
  by = {c.claim: c for c in family}
  assert len(family) == 5
  np.testing.assert_allclose(
      by["joint_lambda1: top-1 on the original images vs the reference"].estimate, -0.36)
  np.testing.assert_allclose(by["joint_lambda1: top-1 vs the original images"].estimate,
                             -0.06)
  np.testing.assert_allclose(
      by["condensed_ipc1_lambda1: top-1 vs the real images it started from"].estimate,
      0.2067, atol=1e-4)
  np.testing.assert_allclose(
      by["condensed_ipc1_lambda1: bits/dim vs the real images it started from"].estimate,
      -0.5)
  assert all(c.test == "paired" for c in family)


def test_joint_training_moves_the_classifier_post_hoc_does_not():
  rng = np.random.default_rng(0)
  images = rng.random((64, 2, 2, 1)).astype(np.float32)
  labels = (images.reshape(64, -1).mean(-1) > 0.5).astype(np.int32)
  flow = generative.RealNVP(dim=4, layers=2, hidden=4)
  prior = flow.init(jax.random.key(0), jnp.zeros((1, 4)))["params"]
  bits = lambda x, key: generative.bits_per_dim(flow, prior, x, levels=17, key=key)  # noqa: E731
  classify = lambda p, x: x.reshape(x.shape[0], -1) @ p["w"]  # noqa: E731
  start = {"w": jnp.zeros((2, 4, 2))}  # 2 members, uniform logits: chance accuracy
  simplifier = generative.simplify.Simplifier(hidden=(8,))
  kwargs = dict(steps=60, batch_size=32, learning_rate=3e-2)
  fixed = generative.simplify.make_trainer(simplifier, classify, bits, **kwargs)
  joint = generative.simplify.make_trainer(simplifier, classify, bits, **kwargs,
                                           classifier_tx=optax.adam(0.1))
  _, same = fixed(0.1, start, images, labels, jax.random.key(1))
  np.testing.assert_array_equal(same["w"], start["w"])
  params, trained = joint(0.1, start, images, labels, jax.random.key(1))
  simple = jax.vmap(lambda p: simplifier.apply({"params": p}, images))(params)
  top1 = (jax.vmap(classify)(trained, simple).argmax(-1) == labels[None]).mean(-1)
  assert np.all(np.asarray(top1) > 0.8)


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


def test_condensation_runs_end_to_end_against_its_real_start(tmp_path):
  # The smoke config leaves condensation out (time budget); this runs it at smoke size.
  config = _config(settings=(), lambdas=(), condense_per_class=(1,),
                   condense_lambdas=(1.0,))
  result = runner.run(study, config, str(tmp_path / "wd"))
  by = {r["variant"]: r for r in result.records}
  assert set(by) == {"classifier", "real_ipc1", "condensed_ipc1_lambda1"}
  for name in ("real_ipc1", "condensed_ipc1_lambda1"):
    f = by[name]["study_fields"]
    assert f["set_size"] == 10 and len(f["per_member_bits_per_dim"]) == 2
    assert np.asarray(f["examples"]).shape == (10, 8, 8)
    images = np.asarray(f["examples"])
    assert images.min() >= 0 and images.max() <= 1
  # The real subset's shown images are the condensed set's starting images.
  np.testing.assert_array_equal(by["real_ipc1"]["study_fields"]["examples"],
                                by["condensed_ipc1_lambda1"]["study_fields"]["originals"])
  report = (tmp_path / "wd" / "report.md").read_text()
  assert "Dataset condensation" in report and "input_simplification_condensed_ipc1" in report
