r"""Robust distillation: teacher × student objectives (standard, balanced, worst-class
robust) on a long-tailed digits set; overall against worst-class accuracy.

    python -m experiments.robust_distillation                    # offline
    python -m experiments.robust_distillation \
        --config=experiments/configs/robust_distillation.py:smoke --workdir=/tmp/rd_smoke
    python -m experiments.robust_distillation --workdir=workdirs/robust_distillation \
        --report_only

The study is `tradeoffs.studies.robust_distillation`; flags and errors are
`experiments.app`'s.
"""

from experiments import app

if __name__ == "__main__":
  app.run_study("robust_distillation", default_config="robust_distillation.py")
