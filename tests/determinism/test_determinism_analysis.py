"""Analyses of a run matrix (tradeoffs.determinism.analysis) on tiny hand-made runs."""

from __future__ import annotations

import os

import numpy as np
import pytest

from tradeoffs import workdir as workdir_lib
from tradeoffs.determinism import analysis
from tradeoffs.determinism import matrix


def _write_run(workdir, logits, labels, groups=None, params=None, initial=None,
               seconds=None):
  """A training workdir in the trainer's file format: logits [members, examples, classes]."""
  os.makedirs(os.path.join(workdir, "predictions"), exist_ok=True)
  ids = np.arange(len(labels), dtype=np.int32)
  extra = {}
  if groups is not None:
    extra = dict(groups=np.asarray(groups, np.int32)[:, None], group_names=np.array(["g"]))
  np.savez(os.path.join(workdir, "predictions", "test.npz"), logits=np.asarray(logits,
                                                                               np.float32),
           labels=np.asarray(labels), ids=ids, **extra)
  members = np.asarray(logits).shape[0]
  params = params if params is not None else {"w": np.zeros((members, 2), np.float32)}
  np.savez(os.path.join(workdir, matrix.FINAL_PARAMS_FILE), **params)
  if initial is not None:
    np.savez(os.path.join(workdir, analysis.INITIAL_PARAMS_FILE), **initial)
  if seconds is not None:
    workdir_lib.append_jsonl(os.path.join(workdir, "metrics.jsonl"),
                             [{"step": 10 * (i + 1), "seconds_per_step": s}
                              for i, s in enumerate(seconds)])


def _onehot(predictions, classes=3):
  return np.eye(classes, dtype=np.float32)[np.asarray(predictions)]


LABELS = [0, 1, 2, 0, 1, 2]
GROUPS = [0, 0, 0, 1, 1, 1]


def test_measure_runs_against_hand_computed_values(tmp_path):
  preds = [[0, 1, 2, 0, 1, 2], [0, 1, 2, 0, 1, 1]]  # Run 1 misses the last example.
  wd = str(tmp_path / "a")
  _write_run(wd, _onehot(preds), LABELS, GROUPS,
             params={"w": np.array([[0.0, 0.0], [3.0, 4.0]], np.float32)},
             initial={"w": np.zeros((2, 2), np.float32)}, seconds=[9.0, 0.2, 0.4])
  m = analysis.measure_runs([wd], "g")
  assert m["runs"] == 2 and m["top1_mean"] == pytest.approx((1 + 5 / 6) / 2)
  assert m["top1_std"] == pytest.approx(np.std([1, 5 / 6]))           # ddof 0
  assert m["churn"] == pytest.approx(1 / 6) and m["flipped_examples"] == 1
  assert m["flips"] == [0, 0, 0, 0, 0, 1] and m["max_flips"] == 1
  assert m["weight_l2"] == pytest.approx(5.0) and m["weights_identical"] is False
  assert m["init_identical"] is True and m["logits_identical"] is False
  # Class 2 has accuracy 1 and 0.5 in the two runs: std 0.25; the others do not vary.
  np.testing.assert_allclose(m["per_class_std"], [0, 0, 0.25])
  assert m["per_class_std_max"] == pytest.approx(0.25)
  assert m["seconds_per_step"] == pytest.approx(0.3)  # Median after the first interval.
  # Group 1 holds the miss: error 0 and 1/3 per run.
  np.testing.assert_allclose(m["group_error"], [[0, 0], [0, 1 / 3]], atol=1e-7)
  assert m["worst_group"] == pytest.approx(1 - 1 / 6)
  assert m["per_class_null"]["draws"] == analysis.NULL_DRAWS
  no_groups = analysis.measure_runs([wd], None)
  assert "group_loss" not in no_groups and no_groups["num_groups"] is None


def test_compare_to_reference_pairs_run_r_with_run_r(tmp_path):
  a, b = str(tmp_path / "a"), str(tmp_path / "b")
  _write_run(a, _onehot([[0, 1, 2, 0, 1, 2]] * 2), LABELS)
  _write_run(b, _onehot([[0, 1, 2, 0, 1, 2], [1, 1, 2, 0, 1, 2]]), LABELS,
             params={"w": np.array([[0.0, 0.0], [0.0, 2.0]], np.float32)})
  versus = analysis.compare_to_reference({"_runs": matrix.load_runs([b])},
                                         {"_runs": matrix.load_runs([a])})
  assert versus["pairs"] == 2 and versus["churn"] == pytest.approx(1 / 12)
  assert versus["weight_l2"] == pytest.approx(1.0)  # Mean of the per-pair distances 0, 2.
  assert not versus["logits_identical"] and not versus["weights_identical"]


def test_sensitivity_and_per_run_xi_by_hand():
  # [runs][groups] group losses of two settings.
  a = [[1.0, 2.0], [1.0, 2.0], [1.0, 2.0]]
  b = [[1.5, 2.1], [1.2, 2.4], [1.0, 2.0]]
  h = analysis.sensitivity({"a": a, "b": b}, "range", attribute="g")
  # Range per run and group: [.5,.1], [.2,.4], [0,0] -> mean Delta [0.2333, 0.1667].
  np.testing.assert_allclose(h["delta"], [0.7 / 3, 0.5 / 3], rtol=1e-5)
  assert h["xi"] == pytest.approx(0.2 / 3, rel=1e-4) and h["runs"] == 3
  assert h["group_names"] == ["g=0", "g=1"]
  runs = analysis.per_run_sensitivity({"a": a, "b": b}, "range")
  np.testing.assert_allclose(runs["xi"], [0.4, 0.2, 0.0], atol=1e-6)
  np.testing.assert_allclose(runs["mean_delta"], [0.3, 0.3, 0.0], atol=1e-6)
  assert analysis.sensitivity({"a": a}, "range") is None
  assert analysis.per_run_sensitivity({"a": a}, "range") == {"xi": [], "mean_delta": []}
  # Settings with fewer runs cut every setting to the fewest.
  assert analysis.sensitivity({"a": a, "b": b[:2]}, "range")["runs"] == 2


def test_determinism_cost():
  cost = analysis.determinism_cost({"gpu_deterministic": 0.3, "gpu_default": 0.2},
                                   {"gpu_deterministic": "gpu", "gpu_default": "gpu"})
  assert cost["value"] == pytest.approx(1.5)
  assert analysis.determinism_cost({"control": 0.1}, {"control": "cpu"}) == {
      "value": None, "note": analysis.CPU_COST_NOTE}
  assert "not measured" in analysis.determinism_cost({"x": 0.1}, {"x": "gpu"})["note"]
