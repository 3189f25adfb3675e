"""The dp_tradeoff study: plan and validation (one clear error per bad knob), the dp_sgd
recipe's records against independent recounts, and the verdict sections (the shared
all-studies test covers running, schema, reports and bad input through the binary)."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from experiments.configs import dp_tradeoff as config_lib
from tradeoffs import errors
from tradeoffs import privacy
from tradeoffs import stats
from tradeoffs.report import records as records_lib
from tradeoffs.studies import dp_tradeoff
from tradeoffs.studies import recipes
from tradeoffs.studies import runner
from tradeoffs.train import predictions as predictions_lib


@pytest.fixture(scope="module")
def smoke_run(smoke_workdir):  # The all-studies test's run (tests/studies/conftest.py).
  return smoke_workdir("dp_tradeoff")


def test_plan_of_the_default_config():
  variants = runner.plan(dp_tradeoff, config_lib.get_config())
  assert [v.name for v in variants] == ["nonprivate", "dp_sigma0", "dp_sigma0.7", "dp_sigma1",
                                        "dp_sigma2", "dp_sigma4"]
  assert variants[0].technique == "dense" and variants[0].source is None
  for v in variants[1:]:
    assert v.technique == "dp_sgd" and v.source == "nonprivate"
    assert v.knobs["clip_norm"] == 1.0 and v.knobs["delta"] == 1e-5
    assert "study" not in v.train_config
  assert "dp_sgd" in recipes.RECIPES


def test_smoke_records_carry_epsilon_and_the_recipe_knobs(smoke_run):
  records = {r["variant"]: r for r in records_lib.read_records(smoke_run)}
  assert sorted(records) == ["dp_sigma1", "nonprivate"]
  dp = records["dp_sigma1"]
  fields = dp["study_fields"]
  config = config_lib.get_config("smoke")
  q = config.train.batch_size / 1437
  expected = privacy.dp_sgd_epsilon(1.0, q, config.train.steps, 1e-5)
  assert fields["epsilon"] == pytest.approx(expected) and dp["hidden_costs"]["epsilon"] == \
      pytest.approx(expected)
  assert fields["sample_rate"] == pytest.approx(q) and fields["train_examples"] == 1437
  assert fields["noise_seeds"] == [0, 1] and fields["conversion"] == "improved"
  assert dp["knobs"]["noise_multiplier"] == 1.0 and dp["members"] == 2
  assert dp["hidden_costs"]["cie_kind"] == "retrained"
  preds = predictions_lib.load(smoke_run, "dp_sigma1")
  top1 = (preds.logits.argmax(-1) == preds.labels[None]).mean()
  assert dp["accuracy"]["top1"] == pytest.approx(float(top1), abs=1e-6)
  assert set(dp["accuracy"]["per_member_per_group"]) == {"subgroup=0", "subgroup=1"}


def test_report_sections_and_minority_claims(smoke_run):
  report = open(os.path.join(smoke_run, "report.md")).read()
  for heading in ("## Accuracy against ε", "## Drops against the non-private model",
                  "## Does the minority pay first?", "## What the literature reports"):
    assert heading in report
  assert os.path.getsize(os.path.join(smoke_run, "dp_accuracy_vs_epsilon.png")) > 1000
  records = records_lib.read_records(smoke_run)
  claims = dp_tradeoff.minority_claims(records, "subgroup=0", "subgroup=1")
  by = {r["variant"]: r for r in records}
  g = by["dp_sigma1"]["accuracy"]["per_member_per_group"]
  h = by["nonprivate"]["accuracy"]["per_member_per_group"]
  gap = np.subtract(g["subgroup=0"], g["subgroup=1"])
  base = np.subtract(h["subgroup=0"], h["subgroup=1"])
  reference = stats.compare(gap, base, paired=False)
  assert len(claims) == 1 and claims[0].estimate == pytest.approx(reference.estimate)
  assert claims[0].p_holm == pytest.approx(reference.p)  # A family of one.


def test_minority_finding_names_the_least_private_detectable_variant():
  def record(name, sigma, eps, maj, mino):
    return {"variant": name, "technique": "dp_sgd" if sigma is not None else "dense",
            "knobs": {"noise_multiplier": sigma}, "study_fields": {"epsilon": eps},
            "accuracy": {"per_member_per_group": {"subgroup=0": maj, "subgroup=1": mino}}}
  rng = np.random.default_rng(0)
  noise = lambda: (0.01 * rng.normal(size=6)).tolist()  # noqa: E731
  ref = record("nonprivate", None, None, [0.97 + e for e in noise()],
               [0.95 + e for e in noise()])
  weak = record("dp_sigma1", 1.0, 8.0, [0.9 + e for e in noise()], [0.88 + e for e in noise()])
  strong = record("dp_sigma4", 4.0, 1.0, [0.8 + e for e in noise()], [0.4 + e for e in noise()])
  records = [ref, weak, strong]
  claims = dp_tradeoff.minority_claims(records, "subgroup=0", "subgroup=1")
  text = dp_tradeoff.minority_finding(records, claims, "subgroup=0", "subgroup=1")
  assert "pays first here: from ε = 1 (dp_sigma4)" in text
  assert "1 of 2 DP variants" in text


@pytest.mark.parametrize("key,value,match", [
    ("clip_norm", 0.0, r"--config.study.clip_norm=0.0 must be a finite number > 0"),
    ("clip_norm", -1.0, r"--config.study.clip_norm=-1.0 must be"),
    ("noise_multipliers", (1.0, -0.5), r"--config.study.noise_multipliers=-0.5 must be a "
                                        r"finite number >= 0"),
    ("noise_multipliers", (), r"--config.study.noise_multipliers=\(\) must be a non-empty"),
    ("noise_multipliers", (1.0, 1.0), r"must be distinct values"),
    ("delta", 1.0, r"--config.study.delta=1.0 must be a number in \(0, 1\)"),
    ("delta", 0.0, r"--config.study.delta=0.0 must be"),
    ("conversion", "tight", r"--config.study.conversion='tight' must be one of"),
    ("noise_seed", -1, r"--config.study.noise_seed=-1 must be an integer >= 0"),
])
def test_bad_study_knobs_fail_before_anything_loads(key, value, match):
  config = config_lib.get_config("smoke")
  config.study[key] = value
  with pytest.raises(errors.ConfigError, match=match):
    runner.plan(dp_tradeoff, config)


def test_bad_training_knobs():
  config = config_lib.get_config("smoke")
  config.population.members = 1
  with pytest.raises(errors.ConfigError, match=r"population.members=1 must be at least 2"):
    runner.plan(dp_tradeoff, config)
  config = config_lib.get_config("smoke")
  config.model.kwargs.batch_norm = True
  with pytest.raises(errors.ConfigError, match=r"batch_norm=True must be False"):
    runner.plan(dp_tradeoff, config)
  config = config_lib.get_config("smoke")
  config.dataset.max_train_examples = 32
  with pytest.raises(errors.ConfigError, match=r"train.batch_size=64 must be <= "):
    runner.plan(dp_tradeoff, config)


def test_clip_only_epsilon_is_infinite_and_recorded_as_null():
  assert math.isinf(privacy.dp_sgd_epsilon(0.0, 0.1, 10, 1e-5))
  record = {"variant": "dp_sigma0", "study_fields": {"epsilon": None}}
  assert dp_tradeoff._eps_text(record) == "∞ (clip only)"
