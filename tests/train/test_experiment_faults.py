"""train.experiment under faults: divergence, preemption at a checkpoint boundary, resume of
a batch-norm model, reruns of finished runs, data that fails to load, a held workdir."""

import json
import os
import signal
import socket
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from experiments.configs import digits_cnn, digits_mlp
from tradeoffs import workdir as workdir_lib
from tradeoffs.train import checkpoint as checkpoint_lib
from tradeoffs.train import experiment


def _mlp_config(**train):
  config = digits_mlp.get_config("smoke,members=2")
  config.model.kwargs.hidden = (16,)
  for key, value in train.items():
    config.train[key] = value
  return config


def test_nan_parameters_stop_training_and_keep_the_last_good_checkpoint(workdir):
  config = _mlp_config(steps=40)  # dispatch, log and checkpoint every 10
  # The update of step 13 (state.step 12) is NaN, so the loss of step 14 is the first NaN
  # one; the divergence shows at the log boundary 20, after the good checkpoint at 10.
  poison = lambda logits, labels, step: jnp.where(step >= 12, jnp.nan, 0.0) * jnp.sum(logits)
  mesh, dataset, _, state, step_config = experiment.build(
      config, step_overrides={"coupling_fn": poison})
  with pytest.raises(experiment.TrainingDiverged) as info:
    experiment.train_population(config, workdir, state=state, mesh=mesh, dataset=dataset,
                                step_config=step_config)
  message = str(info.value)
  assert isinstance(info.value, ValueError) and "\n" not in message
  assert "loss is nan for member 0 at step 14 (checked at step 20)" in message
  assert "the last good checkpoint, step 10" in message
  ckpt = checkpoint_lib.Checkpointer(os.path.join(workdir, "checkpoints"))
  assert ckpt.all_steps() == [10]
  restored = ckpt.restore(state)
  assert all(np.isfinite(np.asarray(x)).all() for x in jax.tree.leaves(restored.params))
  ckpt.close()


def test_learning_rate_1e30_fails_naming_the_step_and_the_loss(workdir):
  config = _mlp_config()
  config.optimizer.learning_rate = 1e30
  with pytest.raises(experiment.TrainingDiverged, match=r"loss is nan for member \d at step 2 "
                     r"\(checked at step 10\); no checkpoint was saved"):
    experiment.run(config, workdir)
  assert not os.path.exists(os.path.join(workdir, "summary.json"))
  assert not os.path.exists(os.path.join(workdir, workdir_lib.LOCK_FILE))


def test_a_loss_growing_tenfold_is_warned_about(workdir, caplog):
  config = _mlp_config()
  config.optimizer.learning_rate = 1e6  # finite but useless: ~1e18 at step 10
  with caplog.at_level("WARNING"):
    experiment.run(config, workdir)
  growing = [r.getMessage() for r in caplog.records if "LOSS IS GROWING" in r.getMessage()]
  assert growing and "at step 10" in growing[0] and "at step 1;" in growing[0]


def test_a_healthy_run_is_not_warned_about(workdir, caplog):
  with caplog.at_level("WARNING"):
    experiment.run(_mlp_config(), workdir)
  assert not [r for r in caplog.records if "LOSS IS GROWING" in r.getMessage()]


def test_rerunning_a_finished_run_changes_nothing(workdir, caplog):
  config = _mlp_config()
  seen = []
  assert experiment.run(config, workdir, on_result=seen.append) is not None
  files = {}
  for root, _, names in os.walk(workdir):
    for name in names:
      path = os.path.join(root, name)
      files[path] = (os.path.getmtime(path), open(path, "rb").read())
  with caplog.at_level("WARNING"):
    assert experiment.run(config, workdir, on_result=seen.append) is None
  assert len(seen) == 1
  assert any("already finished at step 20; nothing to do" in r.getMessage()
             for r in caplog.records)
  after = {os.path.join(r, n) for r, _, ns in os.walk(workdir) for n in ns}
  assert after == set(files)
  for path, (mtime, raw) in files.items():
    assert os.path.getmtime(path) == mtime and open(path, "rb").read() == raw, path


def test_data_that_fails_to_load_leaves_the_workdir_unclaimed(workdir, monkeypatch):
  broken = _mlp_config()
  broken.dataset.max_train_examples = 7  # stands in for a config whose data cannot load
  real = experiment.load_dataset

  def load(config):
    if int(config.dataset.max_train_examples) == 7:
      raise FileNotFoundError("no such dataset files")
    return real(config)

  monkeypatch.setattr(experiment, "load_dataset", load)
  with pytest.raises(FileNotFoundError):
    experiment.run(broken, workdir)
  assert not os.path.exists(os.path.join(workdir, "config.json"))
  assert not os.path.exists(os.path.join(workdir, workdir_lib.LOCK_FILE))
  assert experiment.run(_mlp_config(), workdir) is not None  # the fixed config runs


def test_run_refuses_a_workdir_held_by_a_live_process(workdir):
  os.makedirs(workdir)
  with open(os.path.join(workdir, workdir_lib.LOCK_FILE), "w") as f:
    json.dump({"host": socket.gethostname(), "pid": os.getppid(), "time": time.time()}, f)
  with pytest.raises(workdir_lib.WorkdirLockedError, match=f"pid {os.getppid()}"):
    experiment.run(_mlp_config(), workdir)
  assert sorted(os.listdir(workdir)) == [workdir_lib.LOCK_FILE]


def test_sigterm_exactly_at_a_checkpoint_boundary_saves_once_and_resumes_bitwise(
    tmp_path, monkeypatch, caplog):
  """checkpoint_every == steps_per_dispatch: the periodic save has just written the step
  when the preemption save asks for it again (this raised StepAlreadyExistsError)."""
  config = _mlp_config(steps=30)
  reference = experiment.run(config, str(tmp_path / "reference"))
  wd = str(tmp_path / "preempted")
  monkeypatch.setenv(experiment.SIGNAL_AT_STEP_ENV, "20")
  with caplog.at_level("WARNING"):
    assert experiment.run(config, wd) is None
  assert any("preempted at step 20; rerun the same command to resume" in r.getMessage()
             for r in caplog.records)
  assert sorted(int(d) for d in os.listdir(os.path.join(wd, "checkpoints"))
                if d.isdigit()) == [10, 20]
  assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
  monkeypatch.delenv(experiment.SIGNAL_AT_STEP_ENV)
  resumed = experiment.run(config, wd)
  for a, b in zip(jax.tree.leaves(reference.state), jax.tree.leaves(resumed.state)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  np.testing.assert_array_equal(reference.predictions.logits, resumed.predictions.logits)
  steps = [r["step"] for r in workdir_lib.read_jsonl(os.path.join(wd, "metrics.jsonl"))]
  assert steps == [10, 20, 30]
