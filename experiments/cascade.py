r"""Fast/slow model selection: a cascade that invokes the slow model where it pays.

    python -m experiments.cascade                                # workdirs/cascade, offline
    python -m experiments.cascade --config=experiments/configs/cascade.py:smoke \
        --workdir=/tmp/cascade_smoke
    python -m experiments.cascade --workdir=workdirs/cascade --report_only

The study is `tradeoffs.studies.cascade`; flags and errors are `experiments.app`'s.
"""

from experiments import app

if __name__ == "__main__":
  app.run_study("cascade", default_config="cascade.py")
