"""The robust distillation study: validation before anything loads, the teacher × student
plan, and its `:smoke` records (the all-studies test covers running, schema, reports and
bad input on the command line)."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.configs import robust_distillation as config_lib
from tradeoffs import errors
from tradeoffs.report import records as records_lib
from tradeoffs.studies import robust_distillation as study
from tradeoffs.studies import runner


def _config(**knobs):
  c = config_lib.get_config("smoke")
  c.study.update(knobs)
  return c


@pytest.mark.parametrize("knobs, needle", [
    (dict(alpha=1.5), "study.alpha=1.5"),
    (dict(alpha=-0.1), "study.alpha=-0.1"),
    (dict(temperature=0.0), "study.temperature=0.0"),
    (dict(temperature=-2.0), "study.temperature=-2.0"),
    (dict(teacher_objectives=()), "teacher_objectives=() is empty"),
    (dict(student_objectives=("worst",)), "student_objectives"),
    (dict(eg_rounds=0), "study.eg_rounds"),
    (dict(teacher_member=5), "study.teacher_member"),
])
def test_bad_knobs_are_one_config_error(knobs, needle):
  with pytest.raises(errors.ConfigError, match=needle.replace("(", "\\(").replace(")", "\\)")):
    runner.plan(study, _config(**knobs))


def test_plan_is_every_teacher_times_student():
  c = config_lib.get_config()
  variants = runner.plan(study, c)
  students = [v for v in variants if v.technique == "distilled"]
  assert len(students) == 9 and len({(v.source, v.knobs["objective"]) for v in students}) == 9
  assert [v.name for v in variants][:3] == ["teacher_standard", "teacher_balanced",
                                            "teacher_robust"]
  assert all(v.source.startswith("teacher_") for v in students)
  robust = next(v for v in variants if v.name == "student_robust_from_balanced")
  assert robust.knobs["alpha"] == 1.0 and robust.knobs["eg_rounds"] == 4


@pytest.fixture(scope="module")
def smoke_run(smoke_workdir):  # The all-studies test's run (tests/studies/conftest.py).
  return smoke_workdir("robust_distillation")


def test_smoke_records(smoke_run):
  by = {r["variant"]: r for r in records_lib.read_records(smoke_run)}
  assert set(by) == {"teacher_standard", "student_standard_from_standard",
                     "student_robust_from_standard"}
  robust = by["student_robust_from_standard"]["study_fields"]
  history = np.asarray(robust["lambda_history"])
  assert history.shape == (2, 10) and np.allclose(history.sum(1), 1.0)
  # λ moved toward the classes with the larger validation error.
  err = np.asarray(robust["validation_error_history"][0])
  assert np.corrcoef(err, history[1] - history[0])[0, 1] > 0
  priors = np.asarray(robust["class_priors"])
  np.testing.assert_allclose(priors * 409, [100, 77, 60, 46, 36, 28, 22, 17, 13, 10])
  np.testing.assert_allclose(robust["target_weights"], history[-1])  # α = 1.
  assert robust["temperature"] == 3.0 and robust["teacher"] == "teacher_standard"
  assert by["student_standard_from_standard"]["source"] == "teacher_standard"
  claims = study.against(list(by.values()), "student_standard_from_standard",
                         lambda r: r["technique"] == "distilled")
  assert len(claims) == 2 and all(c.test == "paired" for c in claims)
