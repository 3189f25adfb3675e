r"""Overhead of the run matrix: one vmapped population of 8 seeds vs 8 subprocess runs.

  python -m experiments.benchmarks.determinism_matrix --steps=300

Both paths go through `tradeoffs.determinism.matrix.run_matrix` with the study's trainer
(`tradeoffs.studies.determinism.train_one`, i.e. `train.experiment.run`): the `algo`
setting (all seeds vary) as one in-process population (what the study does whenever a
setting changes nothing fixed at JAX start-up), and the same setting with `isolate=True`,
one `python -m experiments.train` process per seed. Prints wall-clock
seconds, the ratio, and how far member i is from process i (same seeds).
"""

from __future__ import annotations

import os
import tempfile
import time

from absl import app
from absl import flags
import numpy as np

from experiments.configs import determinism as config_lib
from tradeoffs import workdir as workdir_lib
from tradeoffs.determinism import matrix
from tradeoffs.determinism import settings as settings_lib
from tradeoffs.studies import determinism as study
from tradeoffs.train import checkpoint

_STEPS = flags.DEFINE_integer("steps", 300, "Training steps per run.")
_MEMBERS = flags.DEFINE_integer("members", 8, "Seeds (population members / processes).")
_WORKDIR = flags.DEFINE_string("workdir", None, "Where runs go (default: a temp dir).")


def main(argv):
  del argv
  checkpoint.quiet_orbax()
  training = study.training_config(config_lib.get_config())
  training.train.steps = _STEPS.value
  training.train.checkpoint_every = _STEPS.value
  training.train.eval_every = _STEPS.value
  root = _WORKDIR.value or tempfile.mkdtemp(prefix="determinism_matrix_")
  current = settings_lib.current_setting()
  seeds = settings_lib.base_seeds(training.seeds)
  setting = settings_lib.parse_setting("algo", current, seeds)
  train_json = os.path.join(root, "train_config.json")
  workdir_lib.write_json(train_json, training)

  def population_fn(setting, members, workdir):
    return study.train_one(study.setting_config(training, setting, members), workdir)

  common = dict(command=matrix.train_command(train_json), population_fn=population_fn,
                current=current,
                base_env=matrix.checkout_env(), resume=False)
  members = _MEMBERS.value
  start = time.perf_counter()
  pop = matrix.run_matrix([setting], members, os.path.join(root, "population"), **common)
  population_s = time.perf_counter() - start
  start = time.perf_counter()
  sub = matrix.run_matrix([setting], members, os.path.join(root, "subprocess"),
                          isolate=True, **common)
  subprocess_s = time.perf_counter() - start
  a = matrix.load_runs(matrix.result_workdirs(pop, setting.name))
  b = matrix.load_runs(matrix.result_workdirs(sub, setting.name))
  same = [a.logits[i].tobytes() == b.logits[i].tobytes() for i in range(members)]
  churn = np.mean(a.logits.argmax(-1) != b.logits.argmax(-1), axis=1)
  print(f"config: digits_mlp on digits_groups, {_STEPS.value} steps, batch "
        f"{training.train.batch_size}, {current.device_count} device(s); seeds "
        f"init/data/augment/dropout = base + i for i in 0..{members - 1} (base "
        f"{seeds})")
  print(f"population of {members} (one vmapped program): {population_s:8.1f} s")
  print(f"{members} subprocess runs (one process each):   {subprocess_s:8.1f} s "
        f"(mean {np.mean([r.seconds for r in sub]):.1f} s per process)")
  print(f"ratio subprocess / population: {subprocess_s / population_s:.2f}x")
  print(f"member i vs process i: bitwise equal logits for {sum(same)}/{members}; "
        f"churn per seed {np.round(churn, 4).tolist()}")
  print(f"runs in {root}")


if __name__ == "__main__":
  app.run(main)
