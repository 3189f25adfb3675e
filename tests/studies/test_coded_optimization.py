"""The coded-optimization study: planned variants, validation messages, the verdicts'
inputs (paired over seeds, speed-ups against hand computation) and what a tiny run
records (the shared all-studies test covers the binary, the schema and the reports)."""

from __future__ import annotations

import json
import math
import os

import numpy as np
import pytest
from scipy import stats as scipy_stats

from experiments.configs import coded_optimization as config_lib
from tradeoffs import errors
from tradeoffs import stats
from tradeoffs.report import records as records_lib
from tradeoffs.studies import coded_optimization as study
from tradeoffs.studies import runner


def _tiny_config():
  c = config_lib.get_config("smoke")
  s = c.study
  s.seeds = (0, 1, 2)
  s.steps = 40
  s.problem.num_examples = 64
  s.problem.dim = 4
  s.problem.condition_number = 10.0
  s.sweep.encodings = ("uncoded", "hadamard")
  s.sweep.ks = (4, 8)
  s.diagnostics.rip_n = 16
  s.diagnostics.rip_sets = 4
  return c


def test_plan_puts_the_reference_and_ignore_stragglers_first():
  variants = study.plan(config_lib.get_config("smoke"))
  names = [v.name for v in variants]
  model = "shifted_exponential"
  assert names == [f"{n}_{model}" for n in (
      "uncoded_b1_k8", "uncoded_b1_k7", "uncoded_b1_k4", "gaussian_b2_k4", "gaussian_b2_k8",
      "hadamard_b2_k4", "hadamard_b2_k8", "gc_cyclic_s1_k7")]
  reference = variants[0]
  assert reference.source is None and reference.knobs["k"] == 8
  assert all(v.source == reference.name for v in variants[1:])
  assert all(v.train_config is None for v in variants)
  assert variants[-1].technique == "gradient_code" and variants[-1].knobs["beta"] == 2.0
  assert variants[0].knobs["seeds"] == list(range(8))


def test_every_straggler_model_gets_its_own_reference():
  c = _tiny_config()
  c.study.sweep.stragglers = ("shifted_exponential", "pareto")
  variants = study.plan(c)
  refs = [v.name for v in variants if v.source is None]
  assert refs == ["uncoded_b1_k8_shifted_exponential", "uncoded_b1_k8_pareto"]
  assert {v.source for v in variants if v.knobs["straggler"] == "pareto"} == {
      None, "uncoded_b1_k8_pareto"}


@pytest.mark.parametrize("key,value,match", [
    ("sweep.ks", (4, 9), r"^--config.study.sweep.ks=\(4, 9\) is not allowed; allowed: "
                         r"integers 1 <= k <= num_workers=8$"),
    ("sweep.betas", (0.5,), r"--config.study.sweep.betas=\(0.5,\) .*beta >= 1"),
    ("gradient_coding.k", 5, r"--config.study.gradient_coding.k=5 .*tolerate 3 "
                             r"stragglers.*allowed: k >= 7"),
    ("sweep.encodings", ("fourier",), r"--config.study.sweep.encodings=\('fourier',\).*gaussian"),
    ("sweep.stragglers", ("lognormal",), r"--config.study.sweep.stragglers=\('lognormal',\)"),
    ("epsilon", -1.0, r"^--config.study.epsilon=-1.0 is not allowed.*\(0, inf\)"),
    ("epsilon", 0.0, r"^--config.study.epsilon=0.0 is not allowed"),
    ("step_scale", 2.0, r"^--config.study.step_scale=2.0 is not allowed.*\(0, 2\)$"),
    ("step_scale", -0.5, r"^--config.study.step_scale=-0.5 is not allowed"),
    ("seeds", (0,), r"^--config.study.seeds=\(0,\) is not allowed; allowed: at least 2"),
    ("seeds", (1, 1, 2), r"--config.study.seeds=\(1, 1, 2\)"),
    ("problem.condition_number", 0.5, r"--config.study.problem.condition_number=0.5"),
    ("executor.schemes", ("nope",), None),
])
def test_bad_config_names_the_key(key, value, match):
  c = _tiny_config()
  section, _, name = key.rpartition(".")
  target = c.study[section] if section else c.study
  target[name] = value
  if key == "executor.schemes":
    c.study.executor.name = "process_pool"
    match = r"--config.study.executor.schemes=\('nope',\).*hadamard_b2_k4"
  with pytest.raises(ValueError, match=match):
    study.plan(c)
  with pytest.raises(errors.ConfigError):  # What the runner turns it into (exit 2).
    runner.plan(study, c)


def test_values_just_inside_the_ranges_are_accepted():
  c = _tiny_config()
  c.study.step_scale, c.study.epsilon = 1.99, 1e-6
  study.plan(c)


def test_trace_file_with_wrong_shape_is_refused(tmp_path):
  path = tmp_path / "delays.npy"
  np.save(path, np.ones((20, 6), np.float32))
  c = _tiny_config()
  c.study.sweep.stragglers = ("trace",)
  c.study.straggler_params.trace.path = str(path)
  with pytest.raises(ValueError, match=r"straggler_params.trace: .*shape \(20, 6\).*"
                                       r"num_workers=8"):
    study.plan(c)


def _record(name, k, times, floors, seeds=(0, 1, 2, 3), source="ref"):
  return {"variant": name, "source": None if name == source else source,
          "efficiency": {"num_workers": 8},
          "study_fields": {"scheme": name, "k": k, "per_seed": {
              "seed": list(seeds), "time_to_epsilon": list(times),
              "error_floor": list(floors)}}}


def test_speedup_and_claims_are_paired_over_the_common_seeds():
  ref = _record("ref", 8, [10.0, 12.0, 9.0, 11.0], [0.0, 0.0, 0.0, 0.0])
  scheme = _record("fast", 4, [5.0, 4.0, None, 5.5], [0.1, 0.2, 0.1, 0.3])
  mean, low, high, n = study.speedup(scheme, ref)
  ratios = np.array([10 / 5, 12 / 4, 11 / 5.5])  # Seed 2 never reached: left out.
  half = scipy_stats.t.ppf(0.975, 2) * ratios.std(ddof=1) / math.sqrt(3)
  assert n == 3 and mean == pytest.approx(ratios.mean())
  assert (low, high) == pytest.approx((ratios.mean() - half, ratios.mean() + half))
  seeds, a, b = study.paired(scheme, ref, "time_to_epsilon")
  assert seeds == [0, 1, 3] and a.tolist() == [5.0, 4.0, 5.5] and b.tolist() == [10, 12, 11]


def test_claims_family_against_reference_and_ignore_stragglers():
  ref = _record("uncoded_b1_k8", 8, [10.0, 12.0, 9.0, 11.0], [0.0, 0.01, 0.0, 0.02],
                source="uncoded_b1_k8")
  ignore = _record("uncoded_b1_k4", 4, [6.0, 6.5, 5.0, 6.2], [0.3, 0.35, 0.28, 0.31],
                   source="uncoded_b1_k8")
  coded = _record("hadamard_b2_k4", 4, [6.1, 6.0, 5.2, 6.6], [0.1, 0.12, 0.09, 0.1],
                  source="uncoded_b1_k8")
  for r in (ref, ignore, coded):
    r["variant"] += "_m"
    r["study_fields"]["scheme"] = r["variant"][:-2]
  family = study.claims([ref, ignore, coded], ref, "m")
  by = {c.claim: c for c in family}
  assert set(by) == {"uncoded_b1_k4: time to ε vs waiting for all",
                     "uncoded_b1_k4: error floor vs waiting for all",
                     "hadamard_b2_k4: time to ε vs waiting for all",
                     "hadamard_b2_k4: time to ε vs ignoring stragglers",
                     "hadamard_b2_k4: error floor vs ignoring stragglers"}
  c = by["hadamard_b2_k4: error floor vs ignoring stragglers"]
  a, b = np.array([0.1, 0.12, 0.09, 0.1]), np.array([0.3, 0.35, 0.28, 0.31])
  assert c.test == "paired" and c.estimate == pytest.approx((a - b).mean())
  assert c.p == pytest.approx(scipy_stats.ttest_rel(a, b).pvalue)
  holm = stats.holm([x.p for x in family])
  assert [x.p_holm for x in family] == pytest.approx(holm)
  assert c.verdict == "lower" and by["hadamard_b2_k4: time to ε vs waiting for all"].verdict \
      == "lower"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("coded") / "wd")
  c = _tiny_config()
  result = runner.run(study, c, workdir)
  assert result.finished
  return workdir, c


def test_tiny_run_records_what_the_report_needs(tiny_run):
  workdir, c = tiny_run
  records = records_lib.read_records(workdir)
  by = {r["study_fields"]["scheme"]: r for r in records}
  assert list(by) == ["uncoded_b1_k8", "uncoded_b1_k7", "uncoded_b1_k4", "hadamard_b2_k4",
                      "hadamard_b2_k8", "gc_cyclic_s1_k7"]
  for r in records:
    assert r["members"] == 3 and r["efficiency"]["time_simulated"] is True
    assert r["predictions"] is None and r["efficiency"]["epsilon"] == 0.01
    per_seed = r["study_fields"]["per_seed"]
    assert per_seed["seed"] == [0, 1, 2]
    for t, first in zip(per_seed["time_to_epsilon"], per_seed["first_dip"]):
      assert t is None or t >= first  # Staying below comes no sooner than the first dip.
  # Waiting for all 8 workers or decoding a gradient code gives the exact gradient.
  assert by["gc_cyclic_s1_k7"]["accuracy"]["final_relative_suboptimality"] < 1e-3
  # Waiting for 4 of 8 makes each iteration cheaper than waiting for all 8.
  assert (by["uncoded_b1_k4"]["efficiency"]["seconds_per_iteration"]
          < by["uncoded_b1_k8"]["efficiency"]["seconds_per_iteration"])
  # The ceiling: (E[T(8:8)] + c rows_8) / (E[T(4:8)] + c rows_4) for 1 + Exp(1) delays.
  compute = c.study.compute_seconds_per_row
  all8 = 1 + sum(1 / i for i in range(1, 9))
  four = 1 + 1 / 8 + 1 / 7 + 1 / 6 + 1 / 5
  rows = by["hadamard_b2_k4"]["efficiency"]["rows_per_worker"]
  assert rows == 16 and by["uncoded_b1_k8"]["efficiency"]["rows_per_worker"] == 8
  assert by["hadamard_b2_k4"]["study_fields"]["ceiling"]["speedup"] == pytest.approx(
      (all8 + 8 * compute) / (four + rows * compute))


def test_every_scheme_of_a_seed_sees_the_same_delays(tiny_run):
  workdir, c = tiny_run
  model = "shifted_exponential"
  def times(scheme):
    with open(os.path.join(workdir, "traces", f"{scheme}_{model}.json")) as f:
      return {s: np.asarray(v["time"]) for s, v in json.load(f).items()}
  uncoded, hadamard = times("uncoded_b1_k8"), times("hadamard_b2_k8")
  steps = np.arange(c.study.steps + 1)
  for seed in ("0", "1", "2"):  # Same delays: they differ only by compute on 8 more rows.
    np.testing.assert_allclose(hadamard[seed] - uncoded[seed],
                               steps * 8 * c.study.compute_seconds_per_row, atol=1e-9)
  assert not np.allclose(uncoded["0"], uncoded["1"])  # A seed is a new delay draw.


def test_time_to_epsilon_is_when_the_trace_stays_below(tiny_run):
  workdir, c = tiny_run
  records = {r["study_fields"]["scheme"]: r for r in records_lib.read_records(workdir)}
  with open(os.path.join(workdir, "traces", "uncoded_b1_k4_shifted_exponential.json")) as f:
    trace = json.load(f)
  per_seed = records["uncoded_b1_k4"]["study_fields"]["per_seed"]
  for i, seed in enumerate(per_seed["seed"]):
    rel, time = np.asarray(trace[str(seed)]["relative"]), np.asarray(trace[str(seed)]["time"])
    above = np.flatnonzero(rel > c.study.epsilon)
    expected = None if above[-1] == len(rel) - 1 else time[above[-1] + 1]
    assert per_seed["time_to_epsilon"][i] == (None if expected is None
                                              else pytest.approx(expected))


def test_report_carries_tables_verdicts_and_figures(tiny_run):
  workdir, _ = tiny_run
  md = open(os.path.join(workdir, "report.md")).read()
  for text in ("## Straggler model: shifted_exponential", "Speed-up vs all [95% CI]",
               "Ceiling", "### Verdicts (shifted_exponential)",
               "hadamard_b2_k4: time to ε vs ignoring stragglers", "coded_shifted_exponential.png",
               "error_floor_vs_beta.png", "simulated"):
    assert text in md, text
  assert os.path.exists(os.path.join(workdir, "report.html"))
