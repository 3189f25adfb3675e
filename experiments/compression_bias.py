r"""Compression bias: dense vs pruned and quantized populations, CIEs and who pays.

    python -m experiments.compression_bias --workdir=workdirs/compression_bias
    python -m experiments.compression_bias \
        --config=experiments/configs/compression_bias.py:smoke --workdir=/tmp/cb_smoke
    python -m experiments.compression_bias --workdir=workdirs/compression_bias --report_only

The study is `tradeoffs.studies.compression_bias`; flags and errors are `experiments.app`'s.
Rerunning the same command resumes (recorded variants are skipped; an interrupted variant
continues from its checkpoint).
"""

from experiments import app

if __name__ == "__main__":
  app.run_study("compression_bias", default_config="compression_bias.py")
