r"""The main job: dense widths, pruned, quantized and divided variants on one frontier.

    python -m experiments.frontier                            # workdirs/frontier, offline
    python -m experiments.frontier --config=experiments/configs/frontier.py:smoke \
        --workdir=/tmp/frontier_smoke
    python -m experiments.frontier --workdir=workdirs/frontier --report_only
    python -m experiments.frontier --workdir=workdirs/merged --merge=workdirs/a,workdirs/b

The study is `tradeoffs.studies.frontier`; flags and errors are `experiments.app`'s.
"""

from experiments import app

if __name__ == "__main__":
  app.run_study("frontier", default_config="frontier.py")
