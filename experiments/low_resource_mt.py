r"""The low-resource double bind: dense and pruned English→Spanish translation populations at
two resource levels, scored by chrF/BLEU overall, out of domain and per frequency bucket.

    python -m experiments.low_resource_mt                 # workdirs/low_resource_mt
    python -m experiments.low_resource_mt \
        --config=experiments/configs/low_resource_mt.py:smoke --workdir=/tmp/mt_smoke

The study is `tradeoffs.studies.low_resource_mt`; flags and errors are `experiments.app`'s.
"""

from experiments import app

if __name__ == "__main__":
  app.run_study("low_resource_mt", default_config="low_resource_mt.py")
