"""The exposure_notification study: plan and validation, records against recounts from
the library, and the paired mechanism verdicts (the shared all-studies test covers the
binary, schema, reports and bad input)."""

from __future__ import annotations

import math
import os

import numpy as np
import pytest

from experiments.configs import exposure_notification as config_lib
from tradeoffs import errors
from tradeoffs import stats
from tradeoffs.privacy import exposure
from tradeoffs.privacy import mechanisms
from tradeoffs.report import records as records_lib
from tradeoffs.studies import exposure_notification as study
from tradeoffs.studies import runner


@pytest.fixture(scope="module")
def smoke_run(smoke_workdir):  # The all-studies test's run (tests/studies/conftest.py).
  return smoke_workdir("exposure_notification")


def test_plan_of_the_default_config():
  names = [v.name for v in runner.plan(study, config_lib.get_config())]
  assert names[0] == "exact" and len(names) == 1 + 3 * 5
  assert "rr_eps0.5" in names and "laplace_eps8" in names and "gaussian_eps1" in names


def test_records_match_a_recount_from_the_library(smoke_run):
  config = config_lib.get_config("smoke")
  records = {r["variant"]: r for r in records_lib.read_records(smoke_run)}
  process_config = study.process_config(config.study)
  r = records["laplace_eps4"]
  recount = [exposure.notify(exposure.simulate(s, process_config), "laplace", 4.0, seed=s)
             .metrics["precision"] for s in config.study.seeds]
  assert r["accuracy"]["per_seed_precision"] == pytest.approx(recount)
  assert r["accuracy"]["precision"] == pytest.approx(float(np.mean(recount)))
  assert r["members"] == len(config.study.seeds) and r["source"] == "exact"
  assert r["efficiency"]["epsilon"] == 4.0
  assert r["efficiency"]["noise_std"] == pytest.approx(math.sqrt(2) * 16 / 4.0)
  assert r["efficiency"]["dinur_nissim_scale"] == pytest.approx(4.0)
  rr = records["rr_eps1"]
  assert rr["study_fields"]["keep_probability"] == pytest.approx(math.e / (1 + math.e))
  exact = records["exact"]
  assert exact["accuracy"]["precision"] == 1.0 and exact["accuracy"]["recall"] == 1.0
  assert exact["efficiency"]["epsilon"] is None
  assert records["gaussian_eps1"]["knobs"]["delta"] == 1e-5


def test_mechanism_claims_are_paired_over_seeds_and_holm_corrected(smoke_run):
  records = records_lib.read_records(smoke_run)
  claims = study.mechanism_claims(records)
  assert len(claims) == 2 * 3 * 3  # 2 ε x 3 mechanism pairs x 3 metrics
  assert all(c.test == "paired" for c in claims)
  by = {r["variant"]: r for r in records}
  a = by["rr_eps4"]["accuracy"]["per_seed_recall"]
  b = by["laplace_eps4"]["accuracy"]["per_seed_recall"]
  claim = next(c for c in claims if c.claim == "rr_eps4 vs laplace_eps4: recall")
  assert claim.p == pytest.approx(stats.compare(a, b, paired=True).p)
  assert claim.p_holm == pytest.approx(
      stats.holm([c.p for c in claims])[claims.index(claim)])
  report = open(os.path.join(smoke_run, "report.md")).read()
  for heading in ("## Notification accuracy against ε", "## Mechanisms at equal ε",
                  "## Bounds beside the measurements"):
    assert heading in report
  assert "not retrieved" in report and "Dinur & Nissim" in report
  assert f"{mechanisms.keep_probability(1.0):.4f}" in report


@pytest.mark.parametrize("key,value,match", [
    ("epsilons", (1.0, 0.0), r"--config.study.epsilons=0.0 must be a finite number > 0"),
    ("epsilons", (), r"--config.study.epsilons=\(\) must be a non-empty"),
    ("delta", 1.0, r"--config.study.delta=1.0 must be a number in \(0, 1\)"),
    ("delta", -1e-5, r"--config.study.delta=-1e-05 must be"),
    ("mechanisms", ("laplace", "shuffle"), r"--config.study.mechanisms=.* must be distinct"),
    ("seeds", (0,), r"--config.study.seeds=\(0,\) must be at least 2"),
    ("threshold", 0.0, r"--config.study.threshold=0.0 must be a finite number > 0"),
])
def test_bad_study_knobs(key, value, match):
  config = config_lib.get_config("smoke")
  config.study[key] = value
  with pytest.raises(errors.ConfigError, match=match):
    runner.plan(study, config)


@pytest.mark.parametrize("key,value,match", [
    ("transmission", 1.5, r"--config.study.process.transmission=1.5 must be a rate in "
                          r"\[0, 1\]"),
    ("diagnosis_prob", -0.1, r"--config.study.process.diagnosis_prob=-0.1 must be a rate"),
    ("initial_infected", 2.0, r"--config.study.process.initial_infected=2.0 must be a rate"),
    ("people", 1, r"--config.study.process.people=1 must be an integer >= 2"),
])
def test_bad_process_knobs(key, value, match):
  config = config_lib.get_config("smoke")
  config.study.process[key] = value
  with pytest.raises(errors.ConfigError, match=match):
    runner.plan(study, config)
