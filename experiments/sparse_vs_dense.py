r"""Same-capacity sparse vs dense (SC-SDC) and effective gradient flow (PAPERS.md §16).

    python -m experiments.sparse_vs_dense --workdir=workdirs/sparse_vs_dense
    python -m experiments.sparse_vs_dense \
        --config=experiments/configs/sparse_vs_dense.py:smoke --workdir=/tmp/svd

The study is `tradeoffs.studies.sparse_vs_dense`; the shared main is `experiments.app`.
"""

from experiments import app

if __name__ == "__main__":
  app.run_study("sparse_vs_dense", default_config="sparse_vs_dense.py")
