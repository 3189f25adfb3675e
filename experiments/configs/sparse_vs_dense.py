r"""Same-capacity sparse vs dense MLPs across optimizer x activation x batch norm, with EGF.

    python -m experiments.sparse_vs_dense --config=experiments/configs/sparse_vs_dense.py \
        --workdir=workdirs/sparse_vs_dense

Digits (offline), dense MLP 64-64-64-10 vs wide-sparse 64-202-202-10 (random masks fixed from
init, nominal sparsity 0.9, equal active weights per layer), {sgd-momentum, adam} x {relu,
swish} x {no BN, BN} = 8 settings x {sparse, dense} = 16 populations of 4 seeds, 550 steps
(~49 epochs) each, EGF logged at 11 evaluations.

Runtime: 3.1 min of CPU time (user, 2 CPU cores), so ~2-3 min wall on an idle 2-core
machine (not measured idle: 9.3 min wall while the cores were shared at load ~7).
`:smoke` (`/usr/bin/time`, user+sys, fresh process, no compilation cache): 37.4 s CPU at
load ~15 with the masks compiled unoptimised, against 40.4 s before, back to back;
still over the 30 s smoke budget under that load (idle cores not measured).
Expected (seeds 0-3; verdicts two-sided, paired over the 4 seeds, Holm within a section):
top-1 96.7-98.9% per variant; sparse vs dense over the grid: no detectable difference
(+0.03 pp, 95% CI [-0.67, 0.72]); per setting: no detectable difference in all 8 (largest
+0.69 pp adam-swish-bn, -0.83 pp sgd-relu-nobn, Holm p >= 0.55); batch norm raises sparse
top-1 (+1.37 pp [0.82, 1.92], Holm p 0.01), for dense no detectable difference (+0.45 pp),
and the difference of the two gains is not detectable (+0.92 pp [-0.28, 2.12], Holm p 0.18);
EGF_2 and the gradient norm both correlate negatively with top-1 (Spearman -0.83 vs -0.78
over the 16 variants, -0.97 for both over the 8 sparse ones) and EGF does not track top-1
detectably better (|rho| difference +0.05 [-0.33, 0.45], bootstrap p 0.75; all four
EGF_1/EGF_2 x all/sparse claims: no detectable difference).
`:smoke` trains 2 settings x {sparse, dense} with 2 members for 22 steps (~46 s of CPU time,
mostly compilation; 1.9 min wall at load ~7.6), too few variants for correlation claims.
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
  ))
  c.efficiency = ml_collections.ConfigDict(dict(
      latency_repeats=10, measure_batch=128, time_latency=True))
  c.report = ml_collections.ConfigDict(dict(
      title="", axes=("efficiency.nonzero_params", "efficiency.flops", "efficiency.latency_ms"),
      metrics=("accuracy.top1", "accuracy.worst_class", "hidden_costs.cie_count"),
      reference=""))
  if smoke:
    common.smoke(c, steps=22)
    c.train.checkpoint_every = 22  # Only the final save: seconds matter here.
    c.study.dense_hidden = (16, 16)
    c.study.activations = ("relu",)
    c.study.batch_norm = (False,)
    c.efficiency.time_latency = False
    c.report.axes = ("efficiency.nonzero_params", "efficiency.flops")
  return c
