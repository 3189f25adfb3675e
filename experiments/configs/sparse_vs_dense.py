r"""Same-capacity sparse vs dense MLPs across optimizer x activation x batch norm, with EGF.

    python -m experiments.sparse_vs_dense --config=experiments/configs/sparse_vs_dense.py \
        --workdir=workdirs/sparse_vs_dense

Digits (offline), dense MLP 64-64-64-10 vs wide-sparse 64-202-202-10 (random masks fixed from
init, nominal sparsity 0.9, equal active weights per layer), {sgd-momentum, adam} x {relu,
swish} x {no BN, BN} = 8 settings x {sparse, dense} = 16 populations of 4 seeds, 550 steps
(~49 epochs) each, EGF logged at 11 evaluations.

Runtime: 3.0 min of CPU time (user, 2 CPU cores), so 1.5-3 min wall on an idle 2-core
machine (not measured idle: 9.5 min wall while the cores were shared at load ~11).
Expected (seeds 0-3): top-1 96.7-98.9% per variant; batch norm helps sparse more (+0.8 to +1.8
pp) than dense (0 to +0.8 pp), as the paper found; sparse
ahead in 5 of 8 settings (all four BN settings), mean +0.03 pp, not significant (one-sided
Wilcoxon across settings p ~0.43; only adam-swish-bn significant alone, p ~0.03); EGF_2 and
the gradient norm both correlate negatively with top-1 (Spearman -0.83 vs -0.78 over the
16 variants; -0.97 for both over the 8 sparse ones, Pearson -0.85 vs -0.78).
`:smoke` trains 2 settings x {sparse, dense} with 2 members for 22 steps
(~40 s of CPU time, mostly compilation).
Variant args: `:members=8`, `:smoke,members=4`.
"""

import ml_collections

from experiments.configs import common


def get_config(arg=None):
  args = common.parse_arg(arg, variants=("smoke",), members=0)  # 0: 4 members, 2 for smoke.
  smoke = args.variant == "smoke"
  c = common.base_config()
  c.dataset.name = "digits"
  c.model.name = "mlp"
  c.population.members = args.members or (2 if smoke else 4)
  c.train.steps = 550
  c.train.steps_per_dispatch = 50
  c.train.checkpoint_every = 275
  c.study = ml_collections.ConfigDict(dict(
      dense_hidden=(64, 64),  # The narrow dense network; the sparse one is widened.
      sparsity=0.9,  # Nominal: hidden widths x 1/sqrt(1 - sparsity); per-layer exact counts.
      optimizers=("sgd", "adam"),
      activations=("relu", "swish"),
      batch_norm=(False, True),
      learning_rates=ml_collections.ConfigDict(dict(sgd=0.05, adam=1e-3, adamw=1e-3)),
      init_scaling="dense",  # 'dense' | 'none' | 'effective' (see the study module).
      egf_evaluations=11,  # Metrics (EGF) logged every train.steps // egf_evaluations steps.
      egf_normalize=False,  # True divides each layer's EGF norm by its active weights.
      latency_repeats=10,  # 0 skips latency measurement.
  ))
  if smoke:
    common.smoke(c, steps=22)
    c.train.checkpoint_every = 22  # Only the final save: seconds matter here.
    c.study.dense_hidden = (16, 16)
    c.study.activations = ("relu",)
    c.study.batch_norm = (False,)
    c.study.latency_repeats = 0
  return c
