"""Writes the notebooks in this folder from the cell sources below (outputs stripped).

    python notebooks/build.py        # after editing a cell here; commit the .ipynb files

Every notebook opens with a Colab badge and an install cell: in a fresh Colab runtime it
pip-installs tradeoffs from GitHub (ORG below is a placeholder: replace it with the
organisation that hosts the repository); where tradeoffs is already importable (a checkout,
CI) it installs nothing and runs offline. TRADEOFFS_NOTEBOOK_SMOKE=1 shrinks the training
so that tests/test_notebooks.py runs each notebook in well under a minute.
"""

from __future__ import annotations

import os

import nbformat

ORG = "YOUR_ORG"  # Placeholder: the GitHub organisation hosting tradeoffs.
HERE = os.path.dirname(os.path.abspath(__file__))


def badge(name: str, title: str, blurb: str) -> str:
  url = f"https://colab.research.google.com/github/{ORG}/tradeoffs/blob/main/notebooks/{name}"
  return (f"[![Open In Colab](https://colab.research.google.com/assets/colab-badge.svg)]({url})\n\n"
          f"# {title}\n\n{blurb}")


INSTALL = f'''# Install (Colab): skipped where tradeoffs is already installed (a checkout, CI).
# `{ORG}` is a placeholder for the GitHub organisation that hosts tradeoffs.
import importlib.util, os, subprocess, sys
if importlib.util.find_spec("tradeoffs") is None:
    subprocess.check_call([sys.executable, "-m", "pip", "install", "-q",
                           "tradeoffs[notebook] @ git+https://github.com/{ORG}/tradeoffs"])
SMOKE = os.environ.get("TRADEOFFS_NOTEBOOK_SMOKE") == "1"   # tests: tiny, < 1 minute
print("smoke run" if SMOKE else "full run")'''

QUICKSTART = [
    ("md", badge("quickstart.ipynb", "Quick start: what pruning and quantization cost, and for whom",
                 "Load the embedded `digits_groups` set (offline; a rotated, under-represented "
                 "subgroup), train a population of 8 MLPs in one compiled program, prune and "
                 "quantize every member, then look where top-1 does not: the "
                 "compression-identified exemplars (CIE), the audit sheet, and the damage per "
                 "group. A few minutes on a CPU runtime.")),
    ("code", INSTALL),
    ("code", '''import jax, numpy as np, matplotlib.pyplot as plt
from tradeoffs import data, models, train, sparsity, quantization, exemplars, sheet

ds = data.load("digits_groups")              # arrays + a group attribute, offline
print(ds.input_shape, len(ds.train), len(ds.test), ds.group_names)
print("subgroup share of test:", ds.test.groups[:, 0].mean().round(3))'''),
    ("md", "## A population of 8 in one program\nEach member has its own init and data order "
           "(seed + member index); `train.fit` runs `jax.vmap` of one step for all of them."),
    ("code", '''MEMBERS, STEPS = 8, (60 if SMOKE else 500)
net = models.get("mlp", num_classes=10, hidden=(64, 64) if SMOKE else (256, 256))
mesh = train.make_mesh(members=MEMBERS)
tx = train.make_optimizer({"name": "adam", "learning_rate": 1e-3}, total_steps=STEPS)
pop = train.create_population(net, tx, ds.input_shape, members=MEMBERS, mesh=mesh,
                              seeds=train.Seeds(init=0, data=0, vary=("init", "data")))
pop, metrics = train.fit(pop, ds.train, steps=STEPS, batch_size=128, mesh=mesh)
dense = train.predict(pop, ds.test.images, mesh=mesh)        # [members, examples, classes]
print("top-1 per member:", (dense.argmax(-1) == ds.test.labels).mean(-1).round(3))'''),
    ("md", "## Prune 90% and quantize to int4, every member\nOne-shot global magnitude pruning "
           "(`sparsity.prune_population`) and symmetric per-channel fake quantization "
           "(`quantization.quantize_population`), both vmapped over members."),
    ("code", '''pruned_params, masks = sparsity.prune_population(pop.params, 0.9, "global")
print("achieved sparsity per member:", sparsity.measured_sparsity(pruned_params))
int4_params = quantization.quantize_population(pop.params, bits=4)
pruned = train.predict(pop.replace(params=pruned_params), ds.test.images, mesh=mesh)
int4 = train.predict(pop.replace(params=int4_params), ds.test.images, mesh=mesh)'''),
    ("md", "## The sheet: top-1 and what it hides\n`sheet.score` is the scoring every study "
           "uses: worst class, worst group, CIEs against the dense population and their noise "
           "floor (CIEs between random halves of the dense population), churn."),
    ("code", '''import pandas as pd
rows = {}
for name, logits in {"dense": dense, "pruned 90%": pruned, "int4": int4}.items():
    acc, hidden = sheet.score(logits, ds.test.labels, groups=ds.test.groups,
                              group_names=ds.test.group_names, source_logits=dense,
                              is_source=(name == "dense"))
    rows[name] = {"top-1": acc["top1"], "worst class": acc["worst_class"],
                  "worst group": acc["worst_group"], "CIE": hidden.get("cie_count"),
                  "CIE null p95": hidden.get("cie_null", {}).get("p95"),
                  "churn": hidden["churn"]}
pd.DataFrame(rows).T.round(3)'''),
    ("md", "## Who the compressed population forgets\nThe CIEs are the examples whose modal "
           "label moved (`exemplars.cie`); the audit sheet shows them, highest taxicab score "
           "first."),
    ("code", '''is_cie = np.asarray(exemplars.cie(dense, pruned))
scores = np.asarray(exemplars.taxicab_scores(dense, pruned))
print(f"{is_cie.sum()} CIEs of {is_cie.size}; on the subgroup:",
      int((is_cie & (ds.test.groups[:, 0] == 1)).sum()))
figure, drawn = exemplars.audit_figure(
    ds.test.images, ds.test.ids, exemplars.modal_labels(dense), exemplars.modal_labels(pruned),
    ds.test.labels, is_cie=is_cie, scores=scores, max_images=16,
    title="CIEs of the 90%-pruned population", reference="dense", variant="pruned")
figure'''),
    ("md", "## Per-group damage\nAccuracy drop per group (dense minus compressed, mean over "
           "members) and the CIE rate per group (`exemplars.group_breakdown`)."),
    ("code", '''groups = ds.test.groups[:, 0]
fig, axes = plt.subplots(1, 2, figsize=(9, 3))
for i, (name, logits) in enumerate({"pruned 90%": pruned, "int4": int4}.items()):
    b = exemplars.group_breakdown(dense, logits, ds.test.labels, groups, num_groups=2)
    drop, rate = np.asarray(b["accuracy_drop"]) * 100, np.asarray(b["cie_rate"]) * 100
    axes[0].bar(np.arange(2) + 0.4 * i, drop, 0.4, label=name)
    axes[1].bar(np.arange(2) + 0.4 * i, rate, 0.4, label=name)
for ax, title in zip(axes, ["accuracy drop (pt)", "CIE rate (%)"]):
    ax.set_xticks([0.2, 1.2], ["majority", "rotated subgroup"]); ax.set_title(title)
axes[0].legend(); plt.tight_layout(); plt.show()'''),
]

FRONTIER = [
    ("md", badge("frontier.ipynb", "Frontiers from records: any axis against any hidden cost",
                 "Every study writes one trade-off record per variant into its workdir. Here: "
                 "run the frontier study (a small version of `python -m experiments.frontier`) "
                 "twice with different seeds, load both workdirs as one DataFrame "
                 "(`report.to_dataframe`), plot a custom frontier, and compare the runs with "
                 "the verdict layer (`stats.compare`, `report.verdict.against_reference`). "
                 "Point `WORKDIRS` at your own workdirs to skip the runs.")),
    ("code", INSTALL),
    ("code", '''import os, tempfile, jax
ROOT = tempfile.mkdtemp(prefix="tradeoffs_frontier_")
# Recompiling the same programs for the second run is the slow part on CPU: cache them.
jax.config.update("jax_compilation_cache_dir", os.path.join(ROOT, "jax_cache"))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
from tradeoffs import studies, report, stats
from tradeoffs.report import verdict
from tradeoffs.studies import runner
from experiments.configs import frontier as frontier_config

WORKDIRS = []            # e.g. ["workdirs/frontier", "workdirs/frontier_seed1"]
if not WORKDIRS:
    for seed in (0, 100):
        config = frontier_config.get_config("smoke" if SMOKE else "members=4")
        config.seeds.init = config.seeds.data = seed
        if SMOKE:   # dense, pruned 80% and int8 only
            config.study.update(dict(width_multipliers=(1.0,), sparsities=(0.8,), bits=(8,),
                                     divided=(), channel_sparsities=(), nm=(),
                                     loss_prioritized=()))
            config.efficiency.update(dict(latency_repeats=2))
        workdir = os.path.join(ROOT, f"seed{seed}")
        runner.run(studies.get("frontier"), config, workdir)
        WORKDIRS.append(workdir)
WORKDIRS'''),
    ("md", "## All records as one DataFrame\nNested fields are dotted columns; per-member lists "
           "stay lists."),
    ("code", '''df = report.to_dataframe(WORKDIRS)
df["run"] = df["workdir"].map(os.path.basename)
cols = ["run", "variant", "technique", "members", "accuracy.top1", "accuracy.worst_group",
        "hidden_costs.cie_count", "efficiency.nonzero_params", "efficiency.weight_bytes"]
df[cols].round(4)'''),
    ("md", "## A custom frontier\nAny numeric column against any other: here weight bytes "
           "against worst-group accuracy, top-1 beside it, one marker per run."),
    ("code", '''import matplotlib.pyplot as plt
x, hidden = "efficiency.weight_bytes", "accuracy.worst_group"
fig, ax = plt.subplots(figsize=(6, 3.5))
for (run, frame), marker in zip(df.groupby("run"), "os^"):
    ax.scatter(frame[x], frame[hidden] * 100, marker=marker, label=f"{run}: worst group")
    ax.scatter(frame[x], frame["accuracy.top1"] * 100, marker=marker, facecolors="none",
               edgecolors="grey", label=f"{run}: top-1")
    for _, r in frame.iterrows():
        ax.annotate(r["variant"], (r[x], r[hidden] * 100), fontsize=7)
ax.set_xscale("log"); ax.set_xlabel("weight bytes"); ax.set_ylabel("accuracy (%)")
ax.legend(fontsize=7); plt.tight_layout(); plt.show()
axes = report.available_axes(report.load_records(WORKDIRS[0]))
print(len(axes), "numeric axes any frontier can use, e.g.", axes[:6])'''),
    ("md", "## Filter\nRows are records: filter them like any DataFrame, e.g. the pruned "
           "variants that lost fewer than 5 points of worst-group accuracy."),
    ("code", '''dense_wg = df[df.technique == "dense"].groupby("run")["accuracy.worst_group"].max()
df["worst_group_drop"] = df["run"].map(dense_wg) - df["accuracy.worst_group"]
df[(df.technique != "dense")][["run", "variant", "worst_group_drop", "hidden_costs.cie_count"]]'''),
    ("md", "## The verdict layer\nWithin a run, `verdict.against_reference` compares every "
           "variant with the dense reference — paired over members where the variant is the "
           "reference's own members pruned or quantized — and Holm-corrects the family. "
           "Between runs, `stats.compare(paired=False)` (Welch) on the per-member values."),
    ("code", '''records = report.load_records(WORKDIRS[0])
# The source every compressed variant was derived from (the widest dense population).
source = next(r["source"] for r in records if r.get("source"))
reference = next(r for r in records if r["variant"] == source)
print("reference:", reference["variant"])
family = verdict.against_reference(records, reference)
for c in family:
    print(verdict.sentence(c))'''),
    ("code", '''runs = [report.load_records(w) for w in WORKDIRS]
claims = []
for variant in sorted({r["variant"] for r in runs[0]} & {r["variant"] for r in runs[1]}):
    a = next(r for r in runs[1] if r["variant"] == variant)["accuracy"]["per_member_top1"]
    b = next(r for r in runs[0] if r["variant"] == variant)["accuracy"]["per_member_top1"]
    claims.append(stats.compare(a, b, paired=False, claim=f"{variant}: top-1, run 2 vs run 1"))
_, headers, rows = verdict.table(stats.family(claims))
import pandas as pd
pd.DataFrame(rows, columns=headers)'''),
]

CODED = [
    ("md", badge("coded.ipynb", "Coded optimization against stragglers",
                 "Encode a least-squares problem for m workers, simulate slow workers, and "
                 "plot error against simulated wall-clock for each scheme: uncoded (wait "
                 "for everyone), uncoded using the k fastest (drop the rest), Gaussian and "
                 "Hadamard encodings (Karakus et al.) and a cyclic gradient code (Tandon et "
                 "al.). Everything is `tradeoffs.coded`; seconds on a CPU.")),
    ("code", INSTALL),
    ("code", '''import jax, numpy as np, matplotlib.pyplot as plt
from tradeoffs import coded

M, STRAGGLERS = 8, 2                          # workers; how many each iteration may ignore
ITERS = 30 if SMOKE else 200
problem = coded.synthetic_problem(jax.random.key(0), num_examples=512 if SMOKE else 2048,
                                  dim=32, noise=0.5, condition_number=10.0)
delays = coded.sample_delays("shifted_exponential", jax.random.key(1), ITERS, M)
print("problem", problem.features.shape, "delays", delays.shape,
      "mean k-th delay (k=M, M-2):", float(delays.max(1).mean()),
      float(np.sort(np.asarray(delays), 1)[:, M - STRAGGLERS - 1].mean()))'''),
    ("md", "## Schemes\nEach scheme is a `WorkerData` (what every worker holds) and the "
           "number k of fastest workers the master waits for; `coded.run` simulates the "
           "iterations over the same delay draws."),
    ("code", '''key = jax.random.key(2)
k = M - STRAGGLERS
schemes = {
    "uncoded, wait for all": (coded.encode_problem(problem, "uncoded", 1.0, M, key), M),
    f"uncoded, fastest {k}": (coded.encode_problem(problem, "uncoded", 1.0, M, key), k),
    f"gaussian β=2, fastest {k}": (coded.encode_problem(problem, "gaussian", 2.0, M, key), k),
    f"hadamard β=2, fastest {k}": (coded.encode_problem(problem, "hadamard", 2.0, M, key), k),
    f"cyclic gradient code, fastest {k}": (
        coded.gradient_code_problem(problem, "cyclic", M, STRAGGLERS, key), k),
}
traces = {name: coded.run(problem, data, delays, kk) for name, (data, kk) in schemes.items()}
for name, t in traces.items():
    print(f"{name:34s} final f - f* = {t.suboptimality[-1]:.2e} after {t.time[-1]:.1f} s")'''),
    ("code", '''fig, ax = plt.subplots(figsize=(6.5, 3.8))
for name, t in traces.items():
    ax.semilogy(t.time, np.maximum(t.suboptimality, 1e-12), label=name)
ax.set_xlabel("simulated wall-clock (s)"); ax.set_ylabel("f(w_t) - f(w*)")
ax.legend(fontsize=7); plt.tight_layout(); plt.show()'''),
    ("md", "## Time to ε\nWhen does each scheme get (and stay) within ε of the optimum? "
           "Encoded data converges to a floor set by the redundancy; the gradient code is "
           "exact."),
    ("code", '''import pandas as pd
eps = 1e-2 * float(traces["uncoded, wait for all"].suboptimality[0])
pd.DataFrame({name: {"time to ε (s)": coded.time_to_stay_below(t.time, t.suboptimality, eps),
                     "final f - f*": float(t.suboptimality[-1])}
              for name, t in traces.items()}).T'''),
]

DETERMINISM = [
    ("md", badge("determinism.ipynb", "Two runs held against each other",
                 "Train the same configuration twice under different settings (here: the "
                 "same seeds, then a different data order), each into its own workdir, and "
                 "compare them from their saved predictions alone: churn, flips, and the "
                 "per-class accuracy std with its shuffled-class null "
                 "(`determinism.per_class_std_null`). Replace `WORKDIRS` by two workdirs from "
                 "two machines or backends to compare those.")),
    ("code", INSTALL),
    ("code", '''import os, tempfile, jax, numpy as np
from tradeoffs import determinism
from tradeoffs.train import experiment
from experiments.configs import digits_mlp

ROOT = tempfile.mkdtemp(prefix="tradeoffs_determinism_")
WORKDIRS = []            # e.g. ["workdirs/cpu_run", "workdirs/gpu_run"]
if not WORKDIRS:
    for name, data_seed in (("run_a", 0), ("run_b", 1)):
        config = digits_mlp.get_config("smoke,members=4" if SMOKE else "members=8")
        if SMOKE:
            config.model.kwargs.hidden = (64, 64)
        else:
            config.train.steps = 400
        config.seeds.data = data_seed            # the setting that differs between runs
        workdir = os.path.join(ROOT, name)
        experiment.run(config, workdir)
        WORKDIRS.append(workdir)
runs = determinism.load_runs(WORKDIRS, params=False)
print(runs.logits.shape, "runs x examples x classes; sources:", runs.sources)'''),
    ("md", "## Churn and flips\nChurn: the fraction of test examples on which two runs "
           "disagree. Within each workdir the members differ by init (and data order); "
           "across workdirs by the setting as well."),
    ("code", '''import matplotlib.pyplot as plt
preds = runs.logits.argmax(-1)
source = np.array([WORKDIRS.index(w) for w, _ in runs.sources])
pairwise = np.asarray(determinism.pairwise_churn(preds))
within = [float(determinism.churn(preds[source == s])) for s in range(len(WORKDIRS))]
across = pairwise[np.ix_(source == 0, source == 1)].mean()
print("churn within each run:", np.round(within, 4), " across runs:", round(float(across), 4))
flips = np.asarray(determinism.flip_counts(preds, 10))
print(f"{(flips > 0).sum()} of {flips.size} test examples flip in at least one run")
fig, axes = plt.subplots(1, 2, figsize=(9, 3.2))
axes[0].imshow(pairwise, cmap="viridis"); axes[0].set_title("pairwise churn (runs x runs)")
axes[1].hist(flips, bins=np.arange(flips.max() + 2) - 0.5)
axes[1].set_title("runs disagreeing with the modal label"); axes[1].set_yscale("log")
plt.tight_layout(); plt.show()'''),
    ("md", "## Per-class std and its null\nA class's accuracy averages fewer examples than "
           "top-1, so its std across runs is larger even when no class is fragile. The null "
           "permutes which class each example belongs to; an observed value inside the null "
           "band is test-set size, not fragility."),
    ("code", '''null = determinism.per_class_std_null(preds, runs.labels, 10, jax.random.key(0),
                                     num_draws=50 if SMOKE else 500)
observed = np.asarray(null.per_class_std)
low, high = np.quantile(np.asarray(null.null_per_class_std), [0.025, 0.975], axis=0)
fig, ax = plt.subplots(figsize=(6, 3))
ax.bar(range(10), observed * 100, color="tab:blue", label="observed")
ax.errorbar(range(10), (low + high) / 2 * 100, yerr=(high - low) / 2 * 100, fmt="none",
            ecolor="k", capsize=3, label="null 95% band")
ax.set_xlabel("class"); ax.set_ylabel("accuracy std across runs (pt)"); ax.legend()
plt.tight_layout(); plt.show()
print("top-1 std:", round(float(null.top1_std) * 100, 3), "pt")'''),
    ("md", "## The same, per group\nDoes one group carry the run-to-run noise? "
           "(`determinism.per_group_error_rate_std`)"),
    ("code", '''if runs.groups is not None and runs.groups.shape[-1]:
    g = runs.groups[:, 0]
    for value in np.unique(g):
        sel = g == value
        err = 1 - (preds[:, sel] == runs.labels[sel]).mean(-1)
        print(f"group {runs.group_names[0]}={value}: error {err.mean():.3f} ± {err.std():.3f} "
              f"({sel.sum()} examples)")
else:
    print("digits has no group attribute; digits_groups runs show the per-group split")'''),
]

NOTEBOOKS = {"quickstart.ipynb": QUICKSTART, "frontier.ipynb": FRONTIER,
             "coded.ipynb": CODED, "determinism.ipynb": DETERMINISM}


def build(cells) -> nbformat.NotebookNode:
  nb = nbformat.v4.new_notebook()
  nb.metadata = {"kernelspec": {"display_name": "Python 3", "language": "python",
                                "name": "python3"},
                 "language_info": {"name": "python"},
                 "colab": {"provenance": []}}
  for kind, source in cells:
    cell = (nbformat.v4.new_markdown_cell(source) if kind == "md"
            else nbformat.v4.new_code_cell(source))
    cell.pop("id", None)
    nb.cells.append(cell)
  nb.nbformat, nb.nbformat_minor = 4, 4
  return nb


def main() -> None:
  for name, cells in NOTEBOOKS.items():
    nb = build(cells)
    nbformat.validate(nb)
    with open(os.path.join(HERE, name), "w") as f:
      nbformat.write(nb, f)
    print("wrote", name)


if __name__ == "__main__":
  main()
