"""The squeezed speech study: validation before anything loads, the extractor × squeeze ×
encoder plan, DER scoring on a hand-made split, and the verdict family (the all-studies
test covers running, schema, reports and bad input on the command line)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

from experiments.configs import squeezed_speech as config_lib
from tradeoffs import errors
from tradeoffs.data import spoken_digits
from tradeoffs.studies import base
from tradeoffs.studies import runner
from tradeoffs.studies import squeezed_speech as study


def _config(**knobs):
  c = config_lib.get_config("smoke")
  c.study.update(knobs)
  return c


@pytest.mark.parametrize("knobs, needle", [
    (dict(squeezes=(5,)), "study.squeezes has 5: the squeeze factor must divide the "
                          "feature length \\(48 frames"),
    (dict(squeezes=(0,)), "study.squeezes=0"),
    (dict(squeezes=(2, 2)), "study.squeezes=\\(2, 2\\) must be non-empty"),
    (dict(extractors=("tiny",)), "study.extractors has 'tiny'"),
    (dict(extractors=()), "study.extractors=\\(\\) must be non-empty"),
    (dict(encoders=("2by64",)), "study.encoders has '2by64'"),
    (dict(encoders=("2x30",)), "study.encoders has '2x30'"),
    (dict(compact_channels=0), "study.compact_channels=0"),
    (dict(only=("compact_s3_1x16",)), "study.only has \\['compact_s3_1x16'\\], not in the grid"),
    (dict(only=("compact_s2_1x16",)), "leaves out the reference\\(s\\) \\['original_s1_1x16'\\]"),
    (dict(xla_backend_optimization_level=4), "study.xla_backend_optimization_level=4"),
])
def test_bad_knobs_are_one_config_error(knobs, needle):
  with pytest.raises(errors.ConfigError, match=needle):
    runner.plan(study, _config(**knobs))


def test_the_dataset_must_be_spoken_digits():
  c = _config()
  c.dataset.name = "digits"
  with pytest.raises(errors.ConfigError, match="dataset.name='digits'"):
    runner.plan(study, c)


def test_plan_is_every_encoder_extractor_and_squeeze_against_one_reference():
  variants = runner.plan(study, config_lib.get_config())
  assert len(variants) == 2 * 2 * 3
  by = {v.name: v for v in variants}
  assert by["original_s1_1x64"].source is None and by["original_s1_2x64"].source is None
  assert by["compact_s4_2x64"].source == "original_s1_2x64"
  assert by["compact_s2_1x64"].source == "original_s1_1x64"
  kwargs = by["compact_s4_2x64"].train_config.model.kwargs
  assert (kwargs.extractor, kwargs.squeeze, kwargs.num_layers, kwargs.d_model,
          kwargs.ffn_dim, kwargs.conv_channels) == ("compact", 4, 2, 64, 256, 4)
  small = by["original_s2_1x64"].train_config.model.kwargs
  assert (small.num_layers, small.d_model, small.conv_channels) == (1, 64, 32)
  assert by["original_s2_1x64"].train_config.train.loss == "ctc"


def test_split_scores_count_digit_errors_overall_and_per_family():
  # Three utterances: male "12" decoded "12", female "3" decoded "35", klatt "44" -> "4".
  targets = np.array([[1, 2, -1, -1], [3, -1, -1, -1], [4, 4, -1, -1]])
  split = spoken_digits.SpeechSplit(
      waveforms=np.zeros((3, 4), np.float32), lengths=np.full(3, 4, np.int32),
      targets=targets, ids=np.arange(3, dtype=np.int32),
      groups=np.array([[0, 0], [1, 0], [2, 1]], np.int32),
      group_names=spoken_digits.GROUP_NAMES, voices=("m1", "f1", "klatt"))
  blank = 10
  frames = [[1, blank, 2, blank], [3, 3, blank, 5], [4, 4, 4, blank]]
  logits = np.asarray(jax.nn.one_hot(np.array(frames), 11))[None]  # one member
  scores = study.split_scores(logits, split)
  assert scores["der"] == [pytest.approx(2 / 5)]  # 0 + 1 + 1 errors over 2 + 1 + 2 digits
  assert scores["families"] == {"male": [0.0], "female": [1.0], "klatt": [0.5]}
  assert scores["empty"] == [0.0]
  # A second member that emits only blanks decodes every utterance to nothing: stuck.
  all_blank = np.asarray(jax.nn.one_hot(np.full((3, 4), blank), 11))[None]
  both = study.split_scores(np.concatenate([logits, all_blank]), split)
  assert both["empty"] == [0.0, 1.0] and both["der"][1] == pytest.approx(1.0)
  assert study.stuck_members(both["empty"]) == 1


def test_the_smoke_runs_the_reference_and_one_compact_variant_at_backend_o0():
  c = config_lib.get_config("smoke")
  assert [v.name for v in runner.plan(study, c)] == ["original_s1_1x16", "compact_s2_1x16"]
  assert runner.plan(study, c)[1].source == "original_s1_1x16"
  assert base.xla_flags(c) == ("--xla_backend_optimization_level=0",)
  # The default compiles at O1 (faster compiles, optimised code); None: XLA's default.
  assert base.xla_flags(config_lib.get_config()) == ("--xla_backend_optimization_level=1",)
  c.study.xla_backend_optimization_level = None
  assert base.xla_flags(c) == ()


def _record(name, source, der, held, worst, latency):
  return {"variant": name, "technique": study.TECHNIQUE, "source": source, "members": 3,
          "knobs": {"extractor": name.split("_")[0], "squeeze": int(name.split("_")[1][1:]),
                    "encoder": "1x32"},
          "efficiency": {"latency_ms": latency, "flops": 10.0 * latency, "params": 100,
                         "latency_p10_ms": latency, "latency_p90_ms": latency,
                         "peak_bytes": 1000},
          "accuracy": {"per_member_der": der, "per_member_der_heldout_voice": held,
                       "per_member_worst_family_der": worst}}


def test_claims_are_one_holm_family_against_the_reference():
  ref = _record("original_s1_1x32", None, [0.10, 0.12, 0.11], [0.2, 0.22, 0.21],
                [0.15, 0.16, 0.17], 4.0)
  worse = _record("original_s4_1x32", "original_s1_1x32", [0.30, 0.33, 0.31],
                  [0.4, 0.41, 0.45], [0.35, 0.37, 0.36], 2.0)
  same = _record("compact_s1_1x32", "original_s1_1x32", [0.11, 0.11, 0.12],
                 [0.21, 0.21, 0.22], [0.16, 0.15, 0.17], 1.0)
  found = study.claims([ref, worse, same])
  assert len(found) == 6 and all(c.test == "paired" for c in found)
  by = {c.claim: c for c in found}
  assert by["original_s4_1x32: DER"].verdict == "higher"
  assert by["original_s4_1x32: DER"].estimate == pytest.approx(0.2033, abs=1e-3)
  assert by["compact_s1_1x32: DER"].verdict != "higher"
  ps = sorted(c.p for c in found)
  assert min(c.p_holm for c in found) == pytest.approx(min(1.0, 6 * ps[0]))
  blocks = study.sections([ref, worse, same], _config())
  text = " ".join(str(b) for b in blocks)
  assert "latency 0.50×" in text and "FLOPs 0.50×" in text  # original_s4 against the ref


def _note(level):
  ref = _record("original_s1_1x32", None, [0.1, 0.1, 0.1], [0.2] * 3, [0.2] * 3, 4.0)
  ref["environment"] = {"xla_flags": f"--foo=1 --xla_backend_optimization_level={level}"}
  return " ".join(str(b) for b in study.sections([ref], _config()))


def test_the_report_flags_unoptimised_latencies_at_o0_only():
  assert "code LLVM did not optimise" in _note(0)
  at_o1 = _note(1)
  assert "--xla_backend_optimization_level=1" in at_o1
  assert "did not optimise" not in at_o1 and "--compare_level" in at_o1
  no_flag = _record("original_s1_1x32", None, [0.1] * 3, [0.2] * 3, [0.2] * 3, 4.0)
  assert "xla_backend_optimization_level" not in " ".join(
      str(b) for b in study.sections([no_flag], _config()))


def test_a_squeeze_that_does_not_divide_the_features_is_one_line_on_the_command_line(tmp_path):
  import os
  import subprocess
  import sys
  repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  result = subprocess.run(
      [sys.executable, "-m", "experiments.squeezed_speech",
       f"--config={repo}/experiments/configs/squeezed_speech.py:smoke",
       f"--workdir={tmp_path / 'wd'}", "--config.study.squeezes=(5,)"],
      cwd=repo, env={**os.environ, "PYTHONPATH": repo}, capture_output=True, text=True,
      timeout=300)
  errors_ = [line for line in result.stderr.splitlines() if "error" in line.lower()]
  assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
  assert len(errors_) == 1 and "squeeze factor must divide the feature length" in errors_[0]
  assert not (tmp_path / "wd").exists()
