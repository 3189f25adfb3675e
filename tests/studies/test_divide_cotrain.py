"""The divide-and-co-train study: planned variants and their training configs, the parity
width rule against a brute-force search, validation messages, the verdicts' inputs (paired
per run, one Holm family), the report's labels, and what a short run records."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments.configs import divide_cotrain as config_lib
from tradeoffs import ensembles
from tradeoffs import errors
from tradeoffs import models
from tradeoffs import stats
from tradeoffs.report import records as records_lib
from tradeoffs.studies import divide_cotrain as study
from tradeoffs.studies import runner


def mlp_params(hidden, inputs=64, classes=10):
  """Closed form of an MLP's parameter count (weights + biases)."""
  sizes = (inputs, *hidden, classes)
  return sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))


def test_plan_variants_and_training_configs():
  config = config_lib.get_config()
  variants = {v.name: v for v in study.plan(config)}
  assert list(variants) == ["wide", "divided_s2", "divided_s2_cotrain", "divided_s4",
                            "divided_s4_cotrain"]
  wide = variants["wide"]
  assert wide.technique == "dense" and wide.source is None
  assert wide.train_config.population.members == 3
  assert "data" in wide.train_config.seeds.vary  # Run r: data seed data + r.
  for size in (2, 4):
    for cotrain in (False, True):
      v = variants[study.variant_name(size, cotrain)]
      assert v.technique == "divided" and v.source == "wide"
      tc = v.train_config
      assert tc.population.members == 3 * size
      assert "data" not in tc.seeds.vary  # The recipe sets one data order per ensemble.
      assert np.isclose(tc.optimizer.weight_decay, 5e-4 * math.exp(1 / size - 1))
      assert v.knobs["cotraining_weight"] == (0.5 if cotrain else 0.0)
      assert "study" not in tc and "efficiency" not in tc and "report" not in tc
  # Parity widths of the 64-512-512-10 MLP (closed form below).
  assert tuple(variants["divided_s2"].train_config.model.kwargs.hidden) == (352, 352)
  assert tuple(variants["divided_s4"].train_config.model.kwargs.hidden) == (239, 239)
  wide_params = mlp_params((512, 512))
  assert wide_params == 301066
  assert variants["divided_s2"].knobs["planned_params_ratio"] == round(
      2 * mlp_params((352, 352)) / wide_params, 6)


@pytest.mark.parametrize("size", [2, 3, 4, 8])
def test_parity_width_is_the_closest_uniform_width(size):
  wide = ensembles.ModelSpec("mlp", {"hidden": (512, 512)})
  member = ensembles.divide_spec(wide, size, width_rule="sqrt",
                                 model_info=models.division_info(wide.name, dict(wide.kwargs)))
  count = lambda spec: mlp_params(spec.kwargs["hidden"])  # noqa: E731
  got = study.parity_spec(wide, member, size, count).kwargs["hidden"]
  target = mlp_params((512, 512))
  best = min(range(1, 513), key=lambda h: (abs(size * mlp_params((h, h)) - target), h))
  assert got == (best, best)
  # Strictly closer to parity than w/sqrt(S) whenever the two differ.
  sqrt_gap = abs(size * count(member) - target)
  assert abs(size * mlp_params(got) - target) <= sqrt_gap


def test_widths_and_ratios_under_each_rule():
  config = config_lib.get_config()
  expected = {"parity": {2: ((352, 352), 1.000884), 4: ((239, 239), 1.000379)},
              "sqrt": {2: ((362, 362), 1.053364), 4: ((256, 256), 1.129347)}}
  for rule, by_size in expected.items():
    config.study.width_rule = rule
    for size, (hidden, ratio) in by_size.items():
      d, got = study.division(config, size)
      assert tuple(d.member.kwargs["hidden"]) == hidden
      assert got == pytest.approx(size * mlp_params(hidden) / 301066)
      assert got == pytest.approx(ratio, abs=1e-6)


def test_parity_needs_a_width_field():
  wide = ensembles.ModelSpec("resnet_imagenet", {"depth": 50, "groups": 32,
                                                 "width_per_group": 4})
  member = ensembles.divide_spec(  # ResNeXt: divides the cardinality only.
      wide, 2, model_info=models.division_info(wide.name, dict(wide.kwargs)))
  with pytest.raises(ValueError, match=r"divided through \['groups'\], not a width field"):
    study.parity_spec(wide, member, 2, lambda spec: 1)


def test_cifar_variants_keep_the_papers_widths():
  config = config_lib.get_config("cifar100_wrn28_10")
  assert config.study.width_rule == "paper" and config.population.members == 1
  # Planning counts WRN-28 parameters abstractly; check the member specs only.
  d2, r2 = study.division(config, 2)
  d4, r4 = study.division(config, 4)
  assert d2.member.kwargs["widen_factor"] == 7 and d4.member.kwargs["widen_factor"] == 5
  assert r2 == pytest.approx(0.981, abs=1e-3) and r4 == pytest.approx(1.003, abs=1e-3)


@pytest.mark.parametrize("change,match", [
    (lambda c: setattr(c.study, "ensemble_sizes", (1, 2)),
     r"--config.study.ensemble_sizes=1: expected an integer in \[2, inf\]"),
    (lambda c: setattr(c.study, "ensemble_sizes", ()), r"ensemble_sizes=\(\) is empty"),
    (lambda c: setattr(c.study, "ensemble_sizes", (2, 2)), r"repeats a value"),
    (lambda c: setattr(c.study, "cotrain", ("yes",)), r"--config.study.cotrain=\('yes',\)"),
    (lambda c: setattr(c.study, "width_rule", "half"),
     r"--config.study.width_rule='half' is unknown; choose from \['parity', 'paper', 'sqrt'\]"),
    (lambda c: setattr(c.study, "weight_decay_rule", "half"), r"weight_decay_rule='half'"),
    (lambda c: setattr(c.study, "combine", "median"), r"--config.study.combine='median'"),
    (lambda c: setattr(c.study, "cotraining_loss", "l2"), r"--config.study.cotraining_loss"),
    (lambda c: setattr(c.study, "cotraining_warmup_fraction", 1.5),
     r"cotraining_warmup_fraction=1.5: expected a number in \[0, 1\]"),
    (lambda c: setattr(c.efficiency, "latency_repeats", 0), r"efficiency.latency_repeats=0"),
    (lambda c: setattr(c.population, "members", 0), r"population.members=0"),
    (lambda c: setattr(c.model.kwargs, "hidden", (1, 1)),
     r"--config.model \(mlp .*S=2 members of \{'hidden': \(1, 1\)\} holds 2.00x the wide "
     r"model's parameters \(width_rule='parity'\); the study needs 0.75-1.25x"),
    (lambda c: c.study.update(dict(width_rule="paper", ensemble_sizes=(4,))) or setattr(
        c.model.kwargs, "hidden", (1, 1)),
     r"S=4 \(width_rule='paper'.*hidden=1 cannot be divided into num_members=4"),
])
def test_bad_input_is_one_config_error(change, match):
  config = config_lib.get_config("smoke")
  change(config)
  with pytest.raises(errors.ConfigError, match=match):
    runner.plan(study, config)


# ---------------------------------------------------------------------------------------
# Verdict inputs and the report, on hand-made records.


def _record(name, size, cotrain, top1, worst, ratio=None):
  return records_lib.make_record(
      study=study.NAME, variant=name, technique="dense" if size == 1 else "divided",
      knobs={"S": size, "cotrain": cotrain, "width_rule": "parity"},
      source=None if size == 1 else "wide", members=len(top1),
      efficiency={"params": 1000 * (ratio or 1.0), "params_per_member": 1000 // size,
                  "latency_ms": 0.1 * size, "latency_concurrent_ms": 0.1 * size,
                  "latency_sequential_ms": 0.15 * size, "backend": "cpu",
                  "device_kind": "cpu", "concurrent_devices": 1},
      accuracy={"top1": float(np.mean(top1)), "per_member_top1": list(top1),
                "worst_class": float(np.mean(worst)), "per_member_worst_class": list(worst),
                "member_top1": float(np.mean(top1)) - 0.01},
      hidden_costs={"churn": 0.01, **({"member_churn": 0.02} if size > 1 else {})},
      study_fields={} if ratio is None else {"params_ratio": ratio})


def hand_records():
  return [
      _record("wide", 1, False, [0.90, 0.91, 0.92, 0.93], [0.70, 0.72, 0.71, 0.69]),
      _record("divided_s2", 2, False, [0.92, 0.93, 0.95, 0.95], [0.80, 0.82, 0.80, 0.81],
              1.0009),
      _record("divided_s2_cotrain", 2, True, [0.91, 0.90, 0.93, 0.93],
              [0.71, 0.72, 0.70, 0.70], 1.0009),
  ]


def test_wide_claims_are_paired_per_run_and_holm_corrected():
  records = hand_records()
  claims = study.wide_claims(records)
  assert [c.claim for c in claims] == [
      "divided_s2 vs wide: top-1", "divided_s2 vs wide: worst class",
      "divided_s2_cotrain vs wide: top-1", "divided_s2_cotrain vs wide: worst class"]
  by = {r["variant"]: r["accuracy"] for r in records}
  raw = []
  for c in claims:
    name, metric = c.claim.split(" vs wide: ")
    key = "per_member_top1" if metric == "top-1" else "per_member_worst_class"
    a, b = np.array(by[name][key]), np.array(by["wide"][key])
    assert c.test == "paired" and c.n_a == c.n_b == 4
    assert c.estimate == pytest.approx(np.mean(a - b))
    assert c.p == pytest.approx(scipy_stats.ttest_rel(a, b).pvalue)
    raw.append(c.p)
  assert [c.p_holm for c in claims] == pytest.approx(stats.holm(raw))
  verdicts = {c.claim: c.verdict for c in claims}
  assert verdicts["divided_s2 vs wide: worst class"] == stats.HIGHER
  assert verdicts["divided_s2_cotrain vs wide: worst class"] == stats.NO_DIFFERENCE


def test_cotrain_claims_pair_the_same_size():
  claims = study.cotrain_claims(hand_records())
  assert [c.claim for c in claims] == ["divided_s2_cotrain vs divided_s2: top-1",
                                       "divided_s2_cotrain vs divided_s2: worst class"]
  assert all(c.test == "paired" for c in claims)
  assert claims[0].estimate == pytest.approx(np.mean([-0.01, -0.03, -0.02, -0.02]))


def test_no_verdicts_from_a_single_run():
  records = [_record("wide", 1, False, [0.9], [0.7]),
             _record("divided_s2", 2, False, [0.95], [0.8], 1.0)]
  assert study.wide_claims(records) == []
  text = " ".join(b[1] for b in study.sections(records, None) if b[0] == "p")
  assert "no verdicts" in text


def test_sections_name_the_params_ratio_and_count_worst_class_verdicts():
  blocks = study.sections(hand_records(), None)
  kinds = [b[0] for b in blocks]
  assert kinds.count("h2") == 3 and "figure" in kinds
  table = next(b for b in blocks if b[0] == "table")
  labels = [row[0] for row in table[2]]
  assert labels == ["wide", "divided_s2 (1.001× params)", "divided_s2_cotrain (1.001× params)"]
  text = [b[1] for b in blocks if b[0] == "p"]
  assert any("divided_s2 1.001×, divided_s2_cotrain 1.001×" in t for t in text)
  assert any(t.startswith("Worst-class accuracy: higher than the wide model's for 1 of 2 "
                          "divided variants (divided_s2)") for t in text)
  assert any(t.startswith("divided_s2 vs wide: worst class higher by") for t in text)


def test_member_churn_by_hand():
  # Two ensembles of two members, 3 examples, 2 classes.
  logits = np.array([
      [[2, 0], [0, 1], [1, 0]],
      [[0, 1], [0, 3], [3, 0]],
      [[1, 0], [1, 0], [0, 1]],
      [[1, 0], [1, 0], [0, 1]],
  ], np.float32)
  # Ensemble 0's members disagree on example 0 only (1/3); ensemble 1's agree everywhere.
  assert study.member_churn(logits, 2) == pytest.approx((1 / 3 + 0) / 2)


# ---------------------------------------------------------------------------------------
# A short run: what the records hold.


@pytest.fixture(scope="module")
def short_run(tmp_path_factory):
  config = config_lib.get_config("smoke")
  config.study.ensemble_sizes = (2,)
  config.model.kwargs.hidden = (16, 16)
  config.train.steps = 10
  workdir = str(tmp_path_factory.mktemp("divide_cotrain"))
  result = runner.run(study, config, workdir, write=False)
  assert result.finished
  return {r["variant"]: r for r in result.records}, workdir


@pytest.mark.slow
def test_short_run_records(short_run):
  records, workdir = short_run
  assert set(records) == {"wide", "divided_s2_cotrain"}
  wide, div = records["wide"], records["divided_s2_cotrain"]
  assert wide["efficiency"]["params"] == mlp_params((16, 16))
  hidden = tuple(div["knobs"]["member_model"]["kwargs"]["hidden"])
  assert div["efficiency"]["params"] == 2 * mlp_params(hidden)
  assert div["study_fields"]["params_ratio"] == pytest.approx(
      2 * mlp_params(hidden) / mlp_params((16, 16)))
  assert div["study_fields"]["data_seeds"] == [0, 0, 1, 1]
  assert div["members"] == wide["members"] == 2  # R ensembles, R wide models.
  assert div["study_fields"]["networks"] == 4
  for r in (wide, div):
    e = r["efficiency"]
    assert e["latency_concurrent_ms"] > 0 and e["latency_sequential_ms"] > 0
    assert len(r["accuracy"]["per_member_top1"]) == 2
  assert 0 <= div["hidden_costs"]["member_churn"] <= 1
  assert div["hidden_costs"]["cie_kind"] == "retrained"
  # The record's top-1 is that of the combined ensembles, from the saved member logits.
  from tradeoffs.train import predictions as predictions_lib
  members = predictions_lib.load(workdir, "divided_s2_cotrain_members")
  combined = members.logits.reshape(2, 2, *members.logits.shape[1:]).mean(1)
  np.testing.assert_allclose(div["accuracy"]["per_member_top1"],
                             (combined.argmax(-1) == members.labels).mean(-1))
