"""The targeted_augmentation study: plan and validation (one clear error per bad knob),
records checked against the saved dynamics and changed ids, and the verdict sections (the
shared all-studies test covers running, schema, reports and bad input through the binary)."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest
from sklearn.metrics import average_precision_score

from experiments.configs import targeted_augmentation as config_lib
from tradeoffs import data as data_lib
from tradeoffs import dynamics
from tradeoffs.train import dynamics as train_dynamics
from tradeoffs import errors
from tradeoffs import stats
from tradeoffs.report import records as records_lib
from tradeoffs.studies import runner
from tradeoffs.studies import targeted_augmentation as study
from tradeoffs.train import predictions as predictions_lib


@pytest.fixture(scope="module")
def smoke_run(smoke_workdir):  # The all-studies test's run (tests/studies/conftest.py).
  return smoke_workdir("targeted_augmentation")


def test_plan_of_the_default_config():
  variants = runner.plan(study, config_lib.get_config())
  assert [v.name for v in variants] == ["no_augmentation", "uniform_augmentation",
                                        "random_q0.2", "targeted_q0.2"]
  assert [v.knobs["selection"] for v in variants] == list(train_dynamics.SELECTIONS)
  assert variants[0].source is None and all(v.source == "no_augmentation"
                                            for v in variants[1:])
  assert all(v.knobs["start_epoch"] == 4 and v.knobs["noise_rate"] == 0.1 for v in variants)
  assert "study" not in variants[0].train_config


@pytest.mark.parametrize("key,value,needle", [
    ("study.noise_rate", 1.0, "--config.study.noise_rate=1.0"),
    ("study.noise_rate", -0.1, "--config.study.noise_rate=-0.1"),
    ("study.fraction", 0.0, "--config.study.fraction=0.0"),
    ("study.fraction", 1.2, "--config.study.fraction=1.2"),
    ("study.atypical_fraction", 0.0, "--config.study.atypical_fraction=0.0"),
    ("study.start_epoch", 0, "--config.study.start_epoch=0"),
    ("study.start_epoch", 40, "--config.study.start_epoch=40"),
    ("study.epochs", 1, "--config.study.epochs=1"),
    ("study.noise_kind", "pairs", "--config.study.noise_kind='pairs'"),
    ("population.members", 1, "--config.population.members=1"),
    ("dataset.name", "digits", "--config.dataset.name='digits'"),
    ("augment.names", (), "--config.augment.names=()"),
])
def test_bad_input_names_the_flag(key, value, needle):
  config = config_lib.get_config()
  section, field = key.split(".")
  config[section][field] = value
  with pytest.raises(errors.ConfigError) as e:
    runner.plan(study, config)
  assert needle in str(e.value)


def test_smoke_records_match_the_saved_dynamics(smoke_run):
  records = {r["variant"]: r for r in records_lib.read_records(smoke_run)}
  assert sorted(records) == ["no_augmentation", "random_q0.2", "targeted_q0.2",
                             "uniform_augmentation"]
  full = data_lib.load("digits_groups")
  changed = json.load(open(os.path.join(smoke_run, "dynamics", "targeted_q0.2",
                                        "changed_ids.json")))
  train, noisy, atypical = data_lib.noise.two_long_tails(
      full.train, noise_rate=0.1, atypical_fraction=0.05, seed=0)
  assert changed["noisy"] == noisy.tolist() and changed["atypical"] == atypical.tolist()
  assert len(noisy) == round(0.1 * (len(train.labels) - len(atypical)))
  for name, record in records.items():
    fields = record["study_fields"]
    dyn = train_dynamics.Dynamics.load(os.path.join(smoke_run, "dynamics", name, "dynamics.npz"))
    assert dyn.p_true.shape == (2, 6, len(train.labels))
    np.testing.assert_array_equal(dyn.ids, train.ids)
    is_noisy = np.isin(dyn.ids, noisy)
    score = -dyn.p_true.astype(np.float64)[:, 2:].mean(axis=1)
    for m in range(2):  # The recorded AP is sklearn's, member by member.
      assert fields["average_precision"]["noisy"]["low_p_true"][m] == pytest.approx(
          average_precision_score(is_noisy, score[m]), abs=1e-9)
    expected_visits = {"none": 0, "all": 4 * len(train.labels)}.get(
        record["knobs"]["selection"], 4 * round(0.2 * len(train.labels)))
    assert fields["augmented_visits"] == [expected_visits] * 2
    preds = predictions_lib.load(smoke_run, name)
    rotated = preds.groups[:, 0] == 1
    acc = (preds.logits.argmax(-1) == preds.labels[None])[:, rotated].mean(axis=1)
    np.testing.assert_allclose(
        record["accuracy"]["per_member_per_group"]["subgroup=1"], acc, atol=1e-6)


def test_targeted_augmentation_goes_to_the_low_confidence_tails(smoke_run):
  records = {r["variant"]: r for r in records_lib.read_records(smoke_run)}
  prevalence = records["targeted_q0.2"]["study_fields"]["prevalence"]
  share = records["targeted_q0.2"]["study_fields"]["augmented_share"]
  # Noisy labels sit at the bottom of p(label): the targeted budget over-samples them
  # against their prevalence (a random selection does not, up to sampling noise).
  assert np.mean(share["noisy"]) > 1.5 * prevalence["noisy"]
  random_share = records["random_q0.2"]["study_fields"]["augmented_share"]
  assert abs(np.mean(random_share["noisy"]) - prevalence["noisy"]) < 0.03


def test_sections_have_holm_families_and_a_finding(smoke_run):
  records = records_lib.read_records(smoke_run)
  claims = study.retrieval_claims(records)
  assert len(claims) == 10 and [c.test for c in claims] == ["paired"] * 8 + ["welch"] * 2
  assert [c.p_holm for c in claims] == pytest.approx(stats.holm([c.p for c in claims]))
  accuracy = study.accuracy_claims(records)
  assert len(accuracy) == 10 and all(c.test == "welch" for c in accuracy)
  blocks = study.sections(records, config_lib.get_config("smoke"))
  headings = [b[1] for b in blocks if b[0] == "h2"]
  assert headings == ["Setup", "Retrieving noisy and atypical examples from the dynamics",
                      "Accuracy on atypical and clean test examples", "Against the paper"]
  finding = study.finding(claims, accuracy)
  assert "targeted" in finding.lower() or "Targeted" in finding
