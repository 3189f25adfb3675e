"""Sweeps: grid expansion, run names, SLURM emission, local runs and the merged report."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from launch import sweep


def test_expand_product_names_and_commands(tmp_path):
  grid = sweep.grid_from_args(["train.steps=100,200", "model.width=64,128"], None)
  runs = sweep.expand(grid, str(tmp_path))
  assert [r.name for r in runs] == [
      "train.steps=100__model.width=64", "train.steps=100__model.width=128",
      "train.steps=200__model.width=64", "train.steps=200__model.width=128"]
  assert runs[1].overrides == (("train.steps", "100"), ("model.width", "128"))
  assert runs[1].workdir == os.path.join(str(tmp_path), runs[1].name)
  command = runs[1].command("train", "experiments/configs/digits_mlp.py:smoke", "python")
  assert command == ["python", "-m", "experiments.train",
                     "--config=experiments/configs/digits_mlp.py:smoke",
                     f"--workdir={runs[1].workdir}", "--config.train.steps=100",
                     "--config.model.width=128"]


def test_grid_files_json_product_and_python_list(tmp_path):
  json_file = tmp_path / "grid.json"
  json_file.write_text(json.dumps({"sparsity.target": [0.5, 0.9], "name": ["a b"]}))
  runs = sweep.expand(sweep.grid_from_args(["seed=0,1"], str(json_file)), "/s")
  assert len(runs) == 4 and runs[0].name == "sparsity.target=0.5__name=a_b__seed=0"
  assert runs[0].overrides[1] == ("name", "a b")  # the value itself is kept
  py_file = tmp_path / "grid.py"
  py_file.write_text("GRID = [{'model.width': 8}, {'model.width': 16, 'train.lr': 1e-3}]\n")
  runs = sweep.expand(sweep.grid_from_args([], str(py_file)), "/s")
  assert [r.name for r in runs] == ["model.width=8", "model.width=16__train.lr=0.001"]


@pytest.mark.parametrize("grid_args,match", [
    ([], "empty sweep"), (["train.steps="], "no values"), (["train.steps"], "key=value"),
    (["bad key=1"], "dotted name"), (["a=1", "a=2"], "given twice")])
def test_bad_or_empty_sweeps_raise(grid_args, match):
  with pytest.raises(ValueError, match=match):
    sweep.expand(sweep.grid_from_args(grid_args, None), "/s")


def test_empty_grid_structures_raise():
  with pytest.raises(ValueError, match="empty sweep"):
    sweep.expand([], "/s")
  with pytest.raises(ValueError, match="empty sweep"):
    sweep.expand({"train.steps": []}, "/s")


def test_long_names_stay_short_and_distinct():
  a = sweep.run_name([("x" * 80, "1"), ("y" * 80, "2")])
  b = sweep.run_name([("x" * 80, "1"), ("y" * 80, "3")])
  assert len(a) <= sweep.MAX_NAME_LENGTH and a != b


def test_slurm_emission(tmp_path):
  sweep_dir = str(tmp_path / "sw")
  assert sweep.main(["slurm", "--binary=train", "--config=cfg.py:smoke",
                     f"--sweep_dir={sweep_dir}", "--grid", "model.width=8,16,32",
                     "--partition=gpu", "--time=01:00:00", "--nodes=2",
                     "--tasks_per_node=4", "--gpus_per_node=4", "--max_parallel=2"]) == 0
  script = open(os.path.join(sweep_dir, "sweep.sbatch")).read()
  assert "#SBATCH --array=0-2%2" in script
  assert "#SBATCH --partition=gpu" in script and "#SBATCH --gpus-per-node=4" in script
  assert "#SBATCH --nodes=2" in script and "#SBATCH --ntasks-per-node=4" in script
  assert "export TRADEOFFS_DISTRIBUTED=1" in script
  assert script.count("-m experiments.train") == 3
  assert f"--workdir={sweep_dir}/model.width=16" in script
  assert "launch.sweep merge" in script
  subprocess.run(["bash", "-n", os.path.join(sweep_dir, "sweep.sbatch")], check=True)
  manifest = json.load(open(os.path.join(sweep_dir, "sweep.json")))
  assert [r["overrides"] for r in manifest["runs"]] == [
      {"model.width": "8"}, {"model.width": "16"}, {"model.width": "32"}]
  # The emitted array picks a run by SLURM_ARRAY_TASK_ID: check the selection in bash.
  body = script.split("RUNS=(", 1)[1].split(")\n", 1)[0]
  picked = subprocess.run(["bash", "-c", f"RUNS=({body})\necho \"${{RUNS[1]}}\""],
                          capture_output=True, text=True, check=True).stdout
  assert "--config.model.width=16" in picked and "width=8" not in picked


def test_local_run_and_merge_into_one_report(tmp_path):
  sweep_dir = str(tmp_path / "sw")
  runs = sweep.expand({"model.width": [4, 16], "fail": [0]}, sweep_dir)
  # A stand-in binary (plain Python, no JAX) that writes one record, like a study would.
  writer = ("import json, os, sys; wd = sys.argv[1]; width = int(sys.argv[2]); "
            "os.makedirs(wd, exist_ok=True); "
            "open(os.path.join(wd, 'records.jsonl'), 'a').write(json.dumps({"
            "'schema_version': 2, 'technique': 'dense', "
            "'study': 'width', 'variant': 'w%d' % width, 'members': 1, 'hidden_costs': {}, "
            "'efficiency': {'params': width * 10}, 'accuracy': {'top1': 0.5 + width / 40}}) "
            "+ '\\n')")
  commands = [[sys.executable, "-c", writer, r.workdir, dict(r.overrides)["model.width"]]
              for r in runs]
  commands.append([sys.executable, "-c", "import sys; sys.exit(3)"])
  runs = runs + [sweep.Run("broken", (), os.path.join(sweep_dir, "broken"))]
  sweep.write_manifest(sweep_dir, runs, commands, "fake", "cfg.py")
  codes = sweep.run_local(runs, commands, parallel=2, stream=open(os.devnull, "w"))
  assert codes == {runs[0].name: 0, runs[1].name: 0, "broken": 3}
  out = sweep.merge(sweep_dir, title="Width sweep", stream=open(os.devnull, "w"))
  assert out["missing"] == ["broken"]
  markdown = open(out["markdown"]).read()
  assert "| w4 ★ |" in markdown and "| w16 ★ |" in markdown
  assert "4.00× fewer params (160 → 40)" in markdown  # against the largest run
  assert os.path.getsize(os.path.join(sweep_dir, "frontier_params.png")) > 0


def test_merge_without_records_is_a_clear_error(tmp_path):
  with pytest.raises(ValueError, match="no sweep.json"):
    sweep.merge(str(tmp_path))
  runs = sweep.expand({"a": [1]}, str(tmp_path))
  sweep.write_manifest(str(tmp_path), runs, [["true"]], "fake", "cfg.py")
  with pytest.raises(ValueError, match="no run .* has trade-off records"):
    sweep.merge(str(tmp_path))
