r"""The main job: every efficiency technique on one frontier, with its hidden costs.

    python -m experiments.frontier                            # workdirs/frontier, offline
    python -m experiments.frontier --config=experiments/configs/frontier.py:smoke \
        --workdir=/tmp/frontier_smoke
    python -m experiments.frontier --workdir=workdirs/frontier --report_only
    python -m experiments.frontier --workdir=workdirs/merged --merge=workdirs/a,workdirs/b

The study is `tradeoffs.studies.frontier`; flags and errors are `experiments.app`'s.
Programs compile once per run: an XLA compilation cache under <workdir>/xla_cache (unless
JAX_COMPILATION_CACHE_DIR names one) serves the programs several variants share (one
fine-tune step for every pruned and N:M variant, one evaluation per population shape, the
robust student's EG rounds).
"""

import os

from experiments import app


def compile_once_per_run(load_config, workdir: str) -> bool:
  """Points JAX's persistent compilation cache at <workdir>/xla_cache; handles nothing."""
  del load_config
  if not os.environ.get("JAX_COMPILATION_CACHE_DIR"):
    import jax
    jax.config.update("jax_compilation_cache_dir", os.path.join(workdir, "xla_cache"))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.1)
  return False


if __name__ == "__main__":
  app.run_study("frontier", default_config="frontier.py", alternative=compile_once_per_run)
