r"""Divide and co-train: a wide network against S = 2, 4 divided members, with and without
co-training, and concurrent member inference.

    python -m experiments.divide_cotrain                          # workdirs/divide_cotrain
    python -m experiments.divide_cotrain \
        --config=experiments/configs/divide_cotrain.py:smoke --workdir=/tmp/dc_smoke
    python -m experiments.divide_cotrain --workdir=workdirs/divide_cotrain --report_only

The study is `tradeoffs.studies.divide_cotrain`; flags and errors are `experiments.app`'s.
"""

from experiments import app

if __name__ == "__main__":
  app.run_study("divide_cotrain", default_config="divide_cotrain.py")
