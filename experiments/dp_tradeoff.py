r"""The price of privacy: DP-SGD accuracy and per-group accuracy against ε.

    python -m experiments.dp_tradeoff                          # workdirs/dp_tradeoff, offline
    python -m experiments.dp_tradeoff --config=experiments/configs/dp_tradeoff.py:smoke \
        --workdir=/tmp/dp_smoke

The study is `tradeoffs.studies.dp_tradeoff`; flags and errors are `experiments.app`'s.
"""

from experiments import app

if __name__ == "__main__":
  app.run_study("dp_tradeoff", default_config="dp_tradeoff.py")
