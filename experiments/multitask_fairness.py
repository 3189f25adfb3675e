r"""Multi-task fairness (MTA-F): per-task error and FPR gap, ARFG/ARE and their Pareto front
for fairness losses with and without MTA-F gradient routing.

    python -m experiments.multitask_fairness          # workdirs/multitask_fairness
    python -m experiments.multitask_fairness \
        --config=experiments/configs/multitask_fairness.py:smoke --workdir=/tmp/mtaf_smoke

The study is `tradeoffs.studies.multitask_fairness`; flags and errors are
`experiments.app`'s.
"""

from experiments import app

if __name__ == "__main__":
  app.run_study("multitask_fairness", default_config="multitask_fairness.py")
