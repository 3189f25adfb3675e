"""The workdir's guards: one run at a time (lock), damaged config.json, environment per
attempt, metrics rows of an interrupted attempt."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from experiments.configs import digits_mlp
from tradeoffs import workdir as workdir_lib

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _lock_path(wd):
  return os.path.join(os.path.abspath(wd), workdir_lib.LOCK_FILE)


def _write_lock(wd, pid, host=None):
  os.makedirs(wd, exist_ok=True)
  with open(_lock_path(wd), "w") as f:
    json.dump({"host": host or socket.gethostname(), "pid": pid, "time": time.time()}, f)


def _dead_pid():
  proc = subprocess.Popen(["true"])
  proc.wait()
  return proc.pid


def test_lock_is_taken_and_released_even_on_an_exception(workdir):
  with pytest.raises(RuntimeError):
    with workdir_lib.lock(workdir) as path:
      holder = json.load(open(path))
      assert holder["pid"] == os.getpid() and holder["host"] == socket.gethostname()
      with workdir_lib.lock(workdir):  # re-entrant: a study runner and its run
        pass
      assert os.path.exists(path)
      raise RuntimeError("boom")
  assert not os.path.exists(_lock_path(workdir))


def test_a_live_holder_is_refused_at_once_and_named(workdir):
  live = os.getppid()  # alive, on this host, not us
  _write_lock(workdir, live)
  with pytest.raises(workdir_lib.WorkdirLockedError, match=rf"in use by pid {live} on host "):
    with workdir_lib.lock(workdir):
      pass
  assert json.load(open(_lock_path(workdir)))["pid"] == live  # left alone


def test_another_host_is_refused_even_when_the_pid_is_dead_here(workdir):
  _write_lock(workdir, _dead_pid(), host="elsewhere")
  with pytest.raises(workdir_lib.WorkdirLockedError, match="host elsewhere"):
    with workdir_lib.lock(workdir):
      pass


def test_a_stale_lock_of_a_dead_process_is_taken_over_with_a_warning(workdir, caplog):
  dead = _dead_pid()
  _write_lock(workdir, dead)
  with caplog.at_level("WARNING"):
    with workdir_lib.lock(workdir) as path:
      assert json.load(open(path))["pid"] == os.getpid()
  assert any("took over" in r.getMessage() and str(dead) in r.getMessage()
             for r in caplog.records)
  assert not os.path.exists(_lock_path(workdir))


def test_a_leftover_lock_with_our_own_pid_is_stale(workdir):
  """Containers reuse PIDs: a lock naming us that we do not hold is a leftover."""
  _write_lock(workdir, os.getpid())
  with workdir_lib.lock(workdir):
    pass
  assert not os.path.exists(_lock_path(workdir))


def test_a_second_process_is_refused_while_the_first_holds_the_lock(workdir):
  code = ("import sys, time; from tradeoffs import workdir as w\n"
          "with w.lock(sys.argv[1]):\n  print('held', flush=True); time.sleep(60)\n")
  holder = subprocess.Popen([sys.executable, "-c", code, workdir], cwd=ROOT,
                            stdout=subprocess.PIPE, text=True)
  try:
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(workdir_lib.WorkdirLockedError, match=f"pid {holder.pid}"):
      with workdir_lib.lock(workdir):
        pass
  finally:
    holder.kill()
    holder.wait()
  with workdir_lib.lock(workdir):  # killed -9: stale now, taken over
    pass


def test_truncated_config_json_is_named(workdir):
  config = digits_mlp.get_config("smoke")
  workdir_lib.prepare(workdir, config)
  path = os.path.join(workdir, "config.json")
  text = open(path).read()
  with open(path, "w") as f:
    f.write(text[:len(text) // 2])
  with pytest.raises(workdir_lib.WorkdirError) as info:
    workdir_lib.prepare(workdir, config)
  message = str(info.value)
  assert message.startswith(f"{path}: not valid JSON (")
  assert message.endswith("remove it or use another --workdir") and "\n" not in message


def test_environment_is_appended_per_attempt_never_overwritten(workdir):
  config = digits_mlp.get_config("smoke")
  workdir_lib.prepare(workdir, config, {"device_count": 1})
  workdir_lib.prepare(workdir, config, {"device_count": 4})
  attempts = workdir_lib.read_environments(workdir)
  assert [a["device_count"] for a in attempts] == [1, 4]
  assert [a["attempt"] for a in attempts] == [1, 2]
  # environment.json keeps what the first attempt (the one that trained) used.
  assert workdir_lib.read_json(os.path.join(workdir, "environment.json"))["device_count"] == 1


def test_metric_rows_after_the_restored_step_are_dropped_for_that_run_only(workdir):
  writer = workdir_lib.MetricWriter(workdir, tensorboard=False)
  for step in (10, 20, 30):
    writer.write(step, {"a/loss": float(step)})
    writer.write(step, {"b/loss": float(step)})
  assert writer.drop_after(20, lambda row: "a/loss" in row) == 1
  rows = workdir_lib.read_jsonl(os.path.join(workdir, "metrics.jsonl"))
  assert [(r["step"], sorted(k for k in r if "/" in k)) for r in rows] == [
      (10, ["a/loss"]), (10, ["b/loss"]), (20, ["a/loss"]), (20, ["b/loss"]), (30, ["b/loss"])]
