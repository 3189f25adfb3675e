r"""Simplified inputs: a simplifier per classifier trained on CE + λ·bits under a flow prior
(post hoc, classifier fixed, and jointly with the classifier), swept over λ, plus condensed
training sets under the same λ·bits term; accuracy against bits per dimension, with the
images side by side.

    python -m experiments.input_simplification                    # offline
    python -m experiments.input_simplification \
        --config=experiments/configs/input_simplification.py:smoke --workdir=/tmp/is_smoke
    python -m experiments.input_simplification --workdir=workdirs/input_simplification \
        --report_only

The study is `tradeoffs.studies.input_simplification`; flags and errors are
`experiments.app`'s.
"""

from experiments import app

if __name__ == "__main__":
  app.run_study("input_simplification", default_config="input_simplification.py")
