"""Coded and encoded optimization against stragglers (see experiments/configs/coded_optimization.py).

  python -m experiments.coded_optimization --config=experiments/configs/coded_optimization.py:smoke \
    --workdir=/tmp/coded
"""

from experiments import app

if __name__ == "__main__":
  app.run_study("coded_optimization", default_config="coded_optimization.py")
