r"""Pruning contrastive models: SupCon against cross-entropy populations under gradual and
one-shot magnitude pruning; PIEs, accuracy on them, Q-scores and prediction depth.

    python -m experiments.contrastive_pruning                    # offline
    python -m experiments.contrastive_pruning \
        --config=experiments/configs/contrastive_pruning.py:smoke --workdir=/tmp/cp_smoke
    python -m experiments.contrastive_pruning --workdir=workdirs/contrastive_pruning \
        --report_only

The study is `tradeoffs.studies.contrastive_pruning`; flags and errors are
`experiments.app`'s.
"""

from experiments import app

if __name__ == "__main__":
  app.run_study("contrastive_pruning", default_config="contrastive_pruning.py")
