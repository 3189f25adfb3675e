"""End-to-end smoke of experiments/coded_optimization.py and its config validation."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from experiments.configs import coded_optimization as config_lib
from tradeoffs.coded import study


def _tiny_config():
  config = config_lib.get_config("smoke")
  config.steps = 20
  config.problem.num_examples = 64
  config.sweep.encodings = ("uncoded", "hadamard")
  config.sweep.betas = (1.0, 2.0)
  config.sweep.ks = (4, 8)
  config.gradient_coding.codes = ("cyclic",)
  config.diagnostics.rip_n = 16
  return config


def test_binary_writes_records_traces_and_report(workdir):
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  subprocess.run([
      sys.executable, "-m", "experiments.coded_optimization",
      "--config=experiments/configs/coded_optimization.py:smoke",
      f"--workdir={workdir}", "--config.steps=20", "--config.problem.num_examples=64",
      "--config.sweep.encodings=('uncoded','hadamard')", "--config.sweep.ks=(4,8)",
      "--config.gradient_coding.codes=('cyclic',)", "--config.diagnostics.rip_n=16"],
      cwd=repo, check=True, timeout=300)
  for name in ("config.json", "environment.json", "records.jsonl", "report.md",
               "error_floor_vs_beta.png", "suboptimality_shifted_exponential.png"):
    assert os.path.exists(os.path.join(workdir, name)), name
  with open(os.path.join(workdir, "records.jsonl")) as f:
    records = [json.loads(line) for line in f]
  variants = {r["variant"] for r in records}
  assert variants == {"uncoded/beta=1/k=4/shifted_exponential",
                      "uncoded/beta=1/k=8/shifted_exponential",
                      "hadamard/beta=2/k=4/shifted_exponential",
                      "hadamard/beta=2/k=8/shifted_exponential",
                      "gc_cyclic/s=1/k=7/shifted_exponential"}
  for r in records:
    assert r["study"] == "coded_optimization"
    assert r["efficiency"]["time_simulated"] is True
    assert "final_suboptimality" in r["accuracy"]
  by_variant = {r["variant"]: r for r in records}
  # Waiting for all workers or decoding a gradient code gives the exact gradient: tiny error.
  assert by_variant["gc_cyclic/s=1/k=7/shifted_exponential"]["accuracy"][
      "final_relative_suboptimality"] < 1e-3
  # Waiting for 4 of 8 makes each iteration faster than waiting for all 8.
  assert (by_variant["uncoded/beta=1/k=4/shifted_exponential"]["efficiency"]["seconds_per_iteration"]
          < by_variant["uncoded/beta=1/k=8/shifted_exponential"]["efficiency"]["seconds_per_iteration"])
  report = open(os.path.join(workdir, "report.md")).read()
  assert "time to eps=0.01" in report and "hadamard/beta=2/k=4" in report
  assert "simulated" in report
  trace_files = os.listdir(os.path.join(workdir, "traces"))
  assert len(trace_files) == 5
  with open(os.path.join(workdir, "traces", sorted(trace_files)[0])) as f:
    trace = json.load(f)
  assert len(trace["time"]) == 21 and np.all(np.diff(trace["time"]) > 0)


@pytest.mark.parametrize("key,value,match", [
    ("sweep.ks", (4, 9), r"sweep.ks contains k=9 with num_workers=8"),
    ("sweep.betas", (0.5,), r"sweep.betas contains beta=0.5; allowed: beta >= 1"),
    ("gradient_coding.k", 5, r"gradient_coding.k=5 .*tolerate 3 stragglers.*allowed: k >= 7"),
    ("sweep.encodings", ("fourier",), r"sweep.encodings contains 'fourier'; valid"),
    ("sweep.stragglers", ("lognormal",), r"sweep.stragglers contains 'lognormal'"),
])
def test_bad_config_raises_naming_the_key(key, value, match):
  config = _tiny_config()
  section, name = key.split(".")
  config[section][name] = value
  with pytest.raises(ValueError, match=match):
    study.validate_config(config)


def test_trace_file_with_wrong_shape_is_refused(tmp_path):
  path = tmp_path / "delays.npy"
  np.save(path, np.ones((20, 6), np.float32))
  config = _tiny_config()
  config.sweep.stragglers = ("trace",)
  config.straggler_params.trace.path = str(path)
  with pytest.raises(ValueError, match=r"straggler_params.trace: .*shape \(20, 6\).*num_workers=8"):
    study.validate_config(config)


@pytest.mark.parametrize("key,value,match", [
    ("epsilon", -1.0, r"^--config.epsilon=-1.0 is not allowed.*allowed: a finite epsilon > 0$"),
    ("epsilon", 0.0, r"^--config.epsilon=0.0 is not allowed"),
    ("step_scale", 2.0, r"^--config.step_scale=2.0 .*step < 2/L.*allowed: 0 < step_scale < 2$"),
    ("step_scale", -0.5, r"^--config.step_scale=-0.5 is not allowed"),
])
def test_bad_epsilon_and_step_scale_are_refused(key, value, match):
  config = _tiny_config()
  config[key] = value
  with pytest.raises(ValueError, match=match):
    study.validate_config(config)
  config[key] = 1.99 if key == "step_scale" else 1e-6  # Just inside the allowed range.
  study.validate_config(config)


@pytest.mark.parametrize("args,expected", [
    (["--config.epsilon=-1"], "--config.epsilon=-1.0 is not allowed"),
    (["--config.step_scale=2.5"], "--config.step_scale=2.5 is not allowed"),
    (["stray_positional"], "unexpected positional arguments ['stray_positional']"),
])
def test_binary_refuses_bad_input_with_one_line(tmp_path, args, expected):
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  result = subprocess.run(
      [sys.executable, "-m", "experiments.coded_optimization",
       "--config=experiments/configs/coded_optimization.py:smoke",
       f"--workdir={tmp_path / 'wd'}", *args],
      cwd=repo, capture_output=True, text=True, timeout=120)
  assert result.returncode == 2, result.stderr[-2000:]
  assert "Traceback" not in result.stderr
  lines = result.stderr.strip().splitlines()
  assert len(lines) == 1 and expected in lines[0], result.stderr[-2000:]
  assert not (tmp_path / "wd").exists()  # Refused before the workdir is prepared.
