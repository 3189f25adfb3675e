"""The runner, written once for every study: resume skips finished variants, preemption,
the workdir guard, reruns that change nothing, torn records, the error policy.

A toy study module (dense training of a tiny digits MLP plus a derived variant that
perturbs the dense logits) exercises the protocol with real training, checkpoints and
records.
"""

from __future__ import annotations

import os
import types

import numpy as np
import pytest

from experiments.configs import digits_mlp
from tradeoffs import errors
from tradeoffs.report import records as records_lib
from tradeoffs.studies import base
from tradeoffs.studies import runner


def toy_config(steps=10, members=2):
  c = digits_mlp.get_config("smoke")
  c.unlock()
  c.population.members = members
  c.train.steps = steps
  c.model.kwargs.hidden = (16,)
  c.train.batch_size = 32
  c.study = dict(flip=3)
  return c


def toy_study(calls, preempt_once=None):
  def plan(config):
    if int(config.study.flip) < 0:
      raise ValueError(f"--config.study.flip={config.study.flip} must be >= 0")
    train = config.copy_and_resolve_references()
    return [base.Variant("dense", "dense", {"hidden": 16}, None, train),
            base.Variant("flipped", "flipped", {"flip": int(config.study.flip)},
                         "dense")]

  def produce(ctx, variant):
    calls.append(variant.name)
    if variant.name == "dense":
      trained = ctx.train(variant)
      logits = ctx.evaluate(trained, variant.train_config)
      return base.Outcome(members=trained.state.members, efficiency={"params": 1234},
                          logits=logits, study_fields={"steps": 10})
    if preempt_once is not None and not preempt_once:
      preempt_once.append(True)
      raise base.Preempted(variant.name, 0)
    logits = ctx.predictions("dense").logits.copy()
    logits[:, :ctx.config.study.flip] = -logits[:, :ctx.config.study.flip]
    return base.Outcome(members=logits.shape[0], efficiency={"params": 1234}, logits=logits,
                        derived=True)

  def sections(records, config):
    return [("h2", "Toy"), ("p", f"{len(records)} toy variants")]

  return types.SimpleNamespace(NAME="toy", TITLE="Toy study", plan=plan, produce=produce,
                               sections=sections)


def test_run_records_validate_and_rerun_changes_nothing(workdir):
  calls = []
  result = runner.run(toy_study(calls), toy_config(), workdir)
  assert result.finished and calls == ["dense", "flipped"]
  records = records_lib.read_records(workdir)
  assert [r["variant"] for r in records] == ["dense", "flipped"]
  dense, flipped = records
  assert dense["members"] == 2 and dense["environment"]["mesh"]
  assert dense["seeds"]["init"] == [0, 1]
  assert dense["hidden_costs"]["cie_count"] == 0 and dense["hidden_costs"]["cie_kind"] == "source"
  assert flipped["source"] == "dense" and flipped["hidden_costs"]["cie_kind"] == "derived"
  # Flipping the logits of 3 examples changes at most those 3 modal labels.
  assert 0 < flipped["hidden_costs"]["cie_count"] <= 3
  assert flipped["study_fields"] == {} and dense["study_fields"] == {"steps": 10}
  records_lib.check_predictions([dict(r, workdir=workdir) for r in records])
  with open(os.path.join(workdir, "report.md")) as f:
    md = f.read()
  with open(os.path.join(workdir, "report.html")) as f:
    html = f.read()
  assert "## Toy" in md and "<h2>Toy</h2>" in html
  before = {name: open(os.path.join(workdir, name), "rb").read()
            for name in ("records.jsonl", "report.md", "config.json")}
  again = runner.run(toy_study(calls), toy_config(), workdir)
  assert again.finished and calls == ["dense", "flipped"]  # Nothing produced again.
  for name, content in before.items():
    assert open(os.path.join(workdir, name), "rb").read() == content, name


def test_preemption_keeps_finished_variants_and_resumes(workdir):
  calls = []
  first = runner.run(toy_study(calls, preempt_once=[]), toy_config(), workdir)
  assert not first.finished and [r["variant"] for r in first.records] == ["dense"]
  assert not os.path.exists(os.path.join(workdir, "report.md"))
  second = runner.run(toy_study(calls, preempt_once=[True]), toy_config(), workdir)
  assert second.finished and calls == ["dense", "flipped", "flipped"]
  assert [r["variant"] for r in records_lib.read_records(workdir)] == ["dense", "flipped"]


def test_torn_final_record_is_recomputed(workdir):
  calls = []
  runner.run(toy_study(calls), toy_config(), workdir)
  path = records_lib.records_path(workdir)
  with open(path) as f:
    lines = f.read().splitlines()
  with open(path, "w") as f:  # An append cut short by a kill: half a line, no newline.
    f.write(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])
  result = runner.run(toy_study(calls), toy_config(), workdir)
  assert result.finished and calls[-1] == "flipped" and calls.count("dense") == 1
  assert [r["variant"] for r in records_lib.read_records(workdir)] == ["dense", "flipped"]


def test_damaged_middle_record_names_file_and_line(workdir):
  runner.run(toy_study([]), toy_config(), workdir)
  path = records_lib.records_path(workdir)
  lines = open(path).read().splitlines()
  with open(path, "w") as f:
    f.write("{not json\n" + lines[1] + "\n")
  with pytest.raises(records_lib.RecordError, match=r"records.jsonl:1: not valid JSON"):
    records_lib.read_records(workdir)


def test_bad_config_is_a_config_error_before_any_work(workdir):
  calls = []
  config = toy_config()
  config.study.flip = -1
  with pytest.raises(errors.ConfigError, match=r"--config.study.flip=-1"):
    runner.run(toy_study(calls), config, workdir)
  assert calls == [] and not os.path.exists(workdir)
  bad_train = toy_config()
  bad_train.train.batch_size = 3  # Not divisible by the data-parallel degree.
  with pytest.raises(errors.ConfigError):
    runner.run(toy_study(calls), bad_train, workdir)


def test_workdir_with_another_config_is_refused(workdir):
  runner.run(toy_study([]), toy_config(), workdir)
  before = open(records_lib.records_path(workdir), "rb").read()
  with pytest.raises(errors.ConfigError, match="different config"):
    runner.run(toy_study([]), toy_config(steps=12), workdir)
  assert open(records_lib.records_path(workdir), "rb").read() == before


def test_report_only_checks_prediction_files(workdir):
  study = toy_study([])
  runner.run(study, toy_config(), workdir)
  out = runner.report_only(study, toy_config(), workdir)
  assert os.path.exists(out["html"])
  path = os.path.join(workdir, "predictions", "flipped.npz")
  with open(path, "r+b") as f:
    f.seek(100)
    f.write(b"\x00\x01\x02")
  with pytest.raises(errors.ConfigError, match="does not match the digest"):
    runner.report_only(study, toy_config(), workdir)


def test_schema_refuses_unknown_fields_and_other_versions():
  record = records_lib.make_record(study="toy", variant="a", efficiency={}, accuracy={},
                                   members=2, sparsity=0.9)
  assert record["study_fields"] == {"sparsity": 0.9}
  with pytest.raises(records_lib.RecordError, match="outside the schema"):
    records_lib.validate_record({**record, "sparsity": 0.9})
  with pytest.raises(records_lib.RecordError, match="schema version 1"):
    records_lib.validate_record({**record, "schema_version": 1})
  with pytest.raises(records_lib.RecordError, match="members"):
    records_lib.validate_record({**record, "members": 0})
  # JSON has no NaN: a missing value is stored as null, and a stored NaN is refused.
  made = records_lib.make_record(study="toy", variant="a", efficiency={}, members=1,
                                 accuracy={"top1": float("nan"), "per_class": [1.0, "nan"]})
  assert made["accuracy"] == {"top1": None, "per_class": [1.0, None]}
  with pytest.raises(records_lib.RecordError, match="not finite"):
    records_lib.validate_record({**made, "accuracy": {"top1": "nan"}})
