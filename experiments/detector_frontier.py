r"""Speed/accuracy frontier of small object detectors on procedural scenes.

    python -m experiments.detector_frontier               # workdirs/detector_frontier
    python -m experiments.detector_frontier \
        --config=experiments/configs/detector_frontier.py:smoke --workdir=/tmp/df_smoke

The study is `tradeoffs.studies.detector_frontier`; flags and errors are
`experiments.app`'s.
"""

from experiments import app

if __name__ == "__main__":
  app.run_study("detector_frontier", default_config="detector_frontier.py")
