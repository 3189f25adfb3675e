r"""When does loss-based prioritization fail? Selective Backprop under label noise.

    python -m experiments.loss_prioritization             # workdirs/loss_prioritization
    python -m experiments.loss_prioritization \
        --config=experiments/configs/loss_prioritization.py:smoke --workdir=/tmp/lp_smoke

The study is `tradeoffs.studies.loss_prioritization`; flags and errors are
`experiments.app`'s.
"""

from experiments import app

if __name__ == "__main__":
  app.run_study("loss_prioritization", default_config="loss_prioritization.py")
