"""The multitask_fairness study: plan and its validation messages, and the report's claims
on hand-made records (the shared all-studies test runs the binary end to end)."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.configs import multitask_fairness as config_lib
from tradeoffs import stats
from tradeoffs.studies import multitask_fairness as study


def test_plan_of_the_default_config_and_the_dataset_switch():
  variants = study.plan(config_lib.get_config())
  names = [v.name for v in variants]
  assert names[0] == "vanilla" and len(names) == 1 + 3 * 2 * 3
  assert {"mmd_baseline_lam0.3", "fpr_gap_mtaf_lam3", "corr_mtaf_lam1"} <= set(names)
  assert all(v.source == "vanilla" for v in variants[1:])
  assert variants[0].knobs["tasks"] == ["odd", "greater_than_4"]
  adult = study.plan(config_lib.get_config("dataset=uci_adult"))
  assert adult[0].knobs["tasks"] == ["income", "capital_gain"]
  assert adult[0].knobs["sensitive"] == "sex"
  german = study.plan(config_lib.get_config("dataset=uci_german,smoke"))
  assert [v.name for v in german] == ["vanilla", "mmd_mtaf_lam1"]


@pytest.mark.parametrize("field,value,needle", [
    ("lambdas", (), "--config.study.lambdas=()"),
    ("lambdas", (1.0, -0.5), "--config.study.lambdas=-0.5"),
    ("lambdas", (0.0,), "--config.study.lambdas=0.0"),
    ("tasks", ("odd", "income"), "--config.study.tasks=('odd', 'income')"),
    ("tasks", ("odd",), "--config.study.tasks=('odd',)"),
    ("sensitive", "sex", "--config.study.sensitive='sex'"),
    ("losses", ("mmd", "kl"), "--config.study.losses"),
    ("routings", ("both",), "--config.study.routings"),
    ("dataset", "digits", "--config.study.dataset='digits'"),
    ("members", 1, "--config.study.members=1"),
    ("task_weights", (0.5, 0.6), "--config.study.task_weights"),
])
def test_bad_input_names_the_flag(field, value, needle):
  config = config_lib.get_config("smoke")
  config.study[field] = value
  with pytest.raises(ValueError) as error:
    study.plan(config)
  assert needle in str(error.value), str(error.value)


def record(name, loss, routing, lam, arfg, are):
  knobs = {"loss": loss} if loss == "none" else {"loss": loss, "routing": routing,
                                                "lam": lam}
  return {"variant": name, "knobs": knobs,
          "accuracy": {"per_member_arfg": list(arfg), "per_member_are": list(are)}}


RECORDS = [
    record("vanilla", "none", None, None, [1.1, 0.9, 1.0, 1.0], [0.9, 1.1, 1.0, 1.0]),
    record("mmd_baseline_lam1", "mmd", "baseline", 1.0, [0.6, 0.5, 0.7, 0.6],
           [1.3, 1.4, 1.35, 1.3]),
    record("mmd_mtaf_lam1", "mmd", "mtaf", 1.0, [0.5, 0.45, 0.6, 0.5], [1.2, 1.3, 1.2, 1.25]),
    record("mmd_mtaf_lam3", "mmd", "mtaf", 3.0, [0.3, 0.2, 0.3, 0.35], [2.0, 2.1, 2.0, 2.2]),
]


def test_routing_claims_pair_mtaf_with_baseline_at_equal_loss_and_lambda():
  claims = study.routing_claims(RECORDS)
  assert [c.claim for c in claims] == ["MMD λ=1: MTA-F − baseline ARFG",
                                       "MMD λ=1: MTA-F − baseline ARE"]
  arfg = stats.compare([0.5, 0.45, 0.6, 0.5], [0.6, 0.5, 0.7, 0.6], paired=True)
  assert claims[0].estimate == pytest.approx(arfg.estimate)
  assert claims[0].p == pytest.approx(arfg.p)
  np.testing.assert_allclose([c.p_holm for c in claims], stats.holm([c.p for c in claims]))
  assert all(c.test == "paired" for c in claims)


def test_claims_against_vanilla_are_one_holm_family_and_the_front():
  claims = study.vs_vanilla_claims(RECORDS)
  assert len(claims) == 6
  ps = [c.p for c in claims]
  np.testing.assert_allclose([c.p_holm for c in claims], stats.holm(ps))
  by = {c.claim: c for c in claims}
  assert by["mmd_mtaf_lam3: ARFG"].verdict == stats.LOWER
  assert by["mmd_mtaf_lam3: ARE"].verdict == stats.HIGHER
  # Pareto front on (ARE, ARFG) means: vanilla, mtaf λ=1, mtaf λ=3; baseline is dominated.
  pts = study.points(RECORDS)
  front = [pts[i][0] for i in study.mtaf.pareto_front([(p[1], p[2]) for p in pts])]
  assert front == ["vanilla", "mmd_mtaf_lam1", "mmd_mtaf_lam3"]
  text = study.summary(RECORDS, claims, study.routing_claims(RECORDS))
  assert "The Pareto front holds 2 MTA-F and 0 baseline-routing variants" in text
  assert "ARFG lower in 1, higher in 0" in text


def test_sections_render_every_table_from_records():
  fields = {"tasks": ["a", "b"], "final_train_full": [0.2, 0.1],
            "final_train_exclusive": [0.05, 0.02], "gap_floor": [0.04, 0.06]}
  records = []
  for r in RECORDS:
    r = dict(r, study_fields=fields, accuracy=dict(r["accuracy"]))
    r["accuracy"]["per_member_error"] = [[0.1, 0.2]] * 3 + [[0.12, 0.2]]
    r["accuracy"]["per_member_fpr_gap"] = [[0.01, -0.02]] * 4
    records.append(r)
  blocks = study.sections(records, None)
  headings = [b[1] for b in blocks if b[0] == "h2"]
  assert headings == ["Per-task error and FPR gap", "Fairness losses against vanilla",
                      "MTA-F routing against baseline routing",
                      "Training fairness terms: all negatives vs head-exclusive ones",
                      "Fairness losses on the test negatives", "Against the paper"]
  terms = next(b for b in blocks if b[0] == "table" and b[1][1] == "a: Full")
  assert terms[2][0] == ["vanilla", "–", "–", "–", "–"]  # no fairness loss, none computed
  assert terms[2][1] == ["mmd_baseline_lam1", "0.2", "0.1", "0.05", "0.02"]
