r"""Two long tails: targeted augmentation and what the per-example dynamics retrieve.

    python -m experiments.targeted_augmentation          # workdirs/targeted_augmentation
    python -m experiments.targeted_augmentation \
        --config=experiments/configs/targeted_augmentation.py:smoke --workdir=/tmp/ta_smoke

The study is `tradeoffs.studies.targeted_augmentation`; flags and errors are
`experiments.app`'s.
"""

from experiments import app

if __name__ == "__main__":
  app.run_study("targeted_augmentation", default_config="targeted_augmentation.py")
