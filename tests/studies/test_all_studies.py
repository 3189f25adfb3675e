"""One end-to-end test over the STUDIES registry: every study's `:smoke` config runs
through its binary, its records validate against the schema, report.md and report.html
carry the same sections, a rerun changes nothing, and bad input exits 2 with one line."""

from __future__ import annotations

import ast
import html as html_lib
import os
import re

import pytest

from tradeoffs import studies
from tradeoffs.report import records as records_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
NAMES = studies.names()


@pytest.fixture(scope="module", params=NAMES)
def smoke_run(request, smoke_workdir):  # The run is tests/studies/conftest.py's.
  return request.param, smoke_workdir(request.param)


def _headings_md(text):
  return [m.group(2).strip() for m in re.finditer(r"^(#{1,3}) (.+)$", text, re.M)]


def _headings_html(text):
  return [html_lib.unescape(m.group(2)).strip()
          for m in re.finditer(r"<(h[1-3])>(.*?)</\1>", text)]


def test_records_validate_and_reports_agree(smoke_run):
  name, workdir = smoke_run
  records = records_lib.read_records(workdir)  # Validates every line against the schema.
  assert records and all(r["study"] == name for r in records)
  assert len({r["variant"] for r in records}) == len(records)
  records_lib.check_predictions([dict(r, workdir=workdir) for r in records])
  md = open(os.path.join(workdir, "report.md")).read()
  html = open(os.path.join(workdir, "report.html")).read()
  assert _headings_md(md) == _headings_html(html)
  assert len(_headings_md(md)) >= 3
  for image in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
    assert os.path.exists(os.path.join(workdir, image)), image
  assert md.count("](") == html.count("<img")


def test_rerun_of_a_finished_study_changes_nothing(smoke_run, study_binary, config_flag):
  name, workdir = smoke_run
  files = ("records.jsonl", "report.md", "config.json")
  before = {f: open(os.path.join(workdir, f), "rb").read() for f in files}
  result = study_binary(name, config_flag(name), f"--workdir={workdir}")
  assert result.returncode == 0, result.stderr[-2000:]
  assert "nothing to do" in result.stderr
  for f in files:
    assert open(os.path.join(workdir, f), "rb").read() == before[f], f


def _one_line_error(result, *needles):
  assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
  assert "Traceback" not in result.stderr, result.stderr[-2000:]
  lines = [line for line in result.stderr.strip().splitlines() if "error" in line.lower()]
  assert len(lines) == 1, result.stderr[-2000:]
  for needle in needles:
    assert needle in lines[0], lines[0]


# A positional argument, a missing config file and --report_only without records are
# handled by `experiments.app.run_study`, the same code in every binary: checked on one plain
# binary and on determinism's (its own flags and mode); a study's own config (a bad variant)
# on every binary. Each check is a process start (~4 CPU s).
APP_CHECKED = (NAMES[0], "determinism")


@pytest.mark.parametrize("name", NAMES)
def test_bad_input_is_one_line_and_exit_2(name, tmp_path, study_binary, config_flag):
  workdir = str(tmp_path / "wd")
  _one_line_error(study_binary(name, config_flag(name, "smokey"), f"--workdir={workdir}"), "smokey")
  if name in APP_CHECKED:
    _one_line_error(study_binary(name, config_flag(name), f"--workdir={workdir}", "extra"), "extra")
    _one_line_error(study_binary(name, "--config=experiments/configs/no_such.py",
                            f"--workdir={workdir}"), "no_such.py")
    _one_line_error(study_binary(name, config_flag(name), f"--workdir={workdir}", "--report_only"),
                    workdir)
  assert not os.path.exists(os.path.join(workdir, "config.json"))


@pytest.mark.parametrize("name", NAMES)
def test_every_binary_runs_through_the_shared_app(name):
  """What lets the app-level bad-input checks above run on two binaries only: every
  binary's main hands its own study name to `experiments.app.run_study` (read, not run)."""
  source = open(os.path.join(REPO, "experiments", f"{name}.py")).read()
  calls = [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Call)
           and isinstance(node.func, ast.Attribute) and node.func.attr == "run_study"]
  assert len(calls) == 1, f"experiments/{name}.py must call app.run_study once"
  first = calls[0].args[0]
  assert isinstance(first, ast.Constant) and first.value == name
