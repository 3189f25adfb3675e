"""The cascade study: validation before anything loads, and its `:smoke` records against
recomputations from the saved predictions (the all-studies test covers running, schema,
reports and bad input on the command line)."""

from __future__ import annotations

import numpy as np
import pytest

from experiments.configs import cascade as config_lib
from tradeoffs import cascades
from tradeoffs import errors
from tradeoffs.report import records as records_lib
from tradeoffs.studies import cascade
from tradeoffs.studies import runner
from tradeoffs.train import predictions as predictions_lib


def _config(**study):
  c = config_lib.get_config("smoke")
  c.study.update(study)
  return c


@pytest.mark.parametrize("study, needle", [
    (dict(gain_thresholds=()), "gain_thresholds=() is empty"),
    (dict(gain_thresholds=(-0.1,)), "study.gain_thresholds"),
    (dict(estimators=("kernel",)), "study.estimators"),
    (dict(feature="logit"), "study.feature"),
    (dict(cost="energy"), "study.cost"),
    (dict(bins=0), "study.bins"),
])
def test_bad_knobs_are_one_config_error(study, needle):
  with pytest.raises(errors.ConfigError, match=needle.replace("(", "\\(").replace(")", "\\)")):
    runner.plan(cascade, _config(**study))


def test_a_dataset_without_calibration_split_is_refused():
  c = _config()
  c.dataset.name = "digits"
  with pytest.raises(errors.ConfigError, match="calibration split"):
    runner.plan(cascade, c)


def test_plan_names_and_sources():
  names = [v.name for v in runner.plan(cascade, _config())]
  assert names == ["fast", "slow", "cascade_binned_t0.05", "random_binned_t0.05",
                   "confidence_binned_t0.05", "cascade_regression_t0.05",
                   "random_regression_t0.05", "confidence_regression_t0.05"]


@pytest.fixture(scope="module")
def smoke_run(smoke_workdir):  # The all-studies test's run (tests/studies/conftest.py).
  return smoke_workdir("cascade")


def test_cascade_records_follow_from_saved_predictions(smoke_run):
  by = {r["variant"]: r for r in records_lib.read_records(smoke_run)}
  fast = predictions_lib.load(smoke_run, "fast")
  slow = predictions_lib.load(smoke_run, "slow")
  fast_cal = predictions_lib.load(smoke_run, "fast_calibration")
  slow_cal = predictions_lib.load(smoke_run, "slow_calibration")
  assert not set(fast_cal.ids) & set(fast.ids) and len(fast_cal.labels) == 300
  rec = by["cascade_binned_t0.05"]
  cost = config_lib.get_config("smoke").study.cost
  c_fast = by["fast"]["efficiency"][cost]
  c_slow = by["slow"]["efficiency"][cost]
  delta = c_slow - c_fast
  assert rec["study_fields"]["beta_over_alpha"] == pytest.approx(0.05 / delta)
  invoke = []
  for m in range(fast.logits.shape[0]):  # Refit by hand: bins of the calibration confidence.
    g = ((fast_cal.logits[m].argmax(-1) != fast_cal.labels).astype(float)
         - (slow_cal.logits[m].argmax(-1) != slow_cal.labels))
    edges, means = cascades.fit_binned(cascades.features(fast_cal.logits[m])["confidence"],
                                       g, 10)
    g_hat = cascades.predict_binned(edges, means,
                                    cascades.features(fast.logits[m])["confidence"])
    invoke.append(g_hat > 0.05)
  invoke = np.stack(invoke)
  combined = np.where(invoke[..., None], slow.logits, fast.logits)
  saved = predictions_lib.load(smoke_run, "cascade_binned_t0.05")
  np.testing.assert_allclose(saved.logits, combined, atol=1e-6)
  rate = invoke.mean()
  assert rec["study_fields"]["rate"] == pytest.approx(rate)
  assert rec["efficiency"][cost] == pytest.approx(c_fast + rate * c_slow)
  assert rec["efficiency"]["params"] == (by["fast"]["efficiency"]["params"]
                                         + by["slow"]["efficiency"]["params"])
  assert "expected" in rec["efficiency"]["notes"][cost]
  for kind in ("random", "confidence"):
    base = by[f"{kind}_binned_t0.05"]
    np.testing.assert_allclose(base["study_fields"]["per_member_rate"],
                               rec["study_fields"]["per_member_rate"], atol=1e-9)
  # Confidence baseline: the least confident fast outputs, as many as the rule invoked.
  conf = predictions_lib.load(smoke_run, "confidence_binned_t0.05")
  for m in range(fast.logits.shape[0]):
    k = int(invoke[m].sum())
    order = np.argsort(cascades.features(fast.logits[m])["confidence"], kind="stable")
    expected = np.zeros(len(order), bool)
    expected[order[:k]] = True
    np.testing.assert_allclose(conf.logits[m], np.where(expected[:, None], slow.logits[m],
                                                        fast.logits[m]), atol=1e-6)
  claims = cascade.comparisons(list(by.values()), "random")
  assert len(claims) == 2 and all(c.test == "paired" for c in claims)
