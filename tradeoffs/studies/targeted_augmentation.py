"""Two long tails: targeted augmentation of the examples a model is least sure of.

D'souza, Nussbaum, Agarwal & Hooker, "A tale of two long tails" (ICML 2021 UDL workshop;
PAPERS.md section 13; code `dsouzadaniel/long_tail`): atypical examples (rare, reducible
with more information) and noisy ones (wrong labels, irreducible) both sit in the tail of
a model's confidence; a targeted intervention — augment, every epoch, the bottom q of the
training set by softmax probability of the label — is meant to make them learn at
different rates, and the per-example dynamics then retrieve each set (AUPR against a
random score).

Data: `digits_groups`' training split with its rotated subgroup (12% of every class)
thinned to `study.atypical_fraction` of the set (the atypical tail), and exactly
round(`study.noise_rate` · n_typical) labels of the typical examples made wrong
(`tradeoffs.data.noise.two_long_tails`; the ids go to workdir/dynamics/<variant>/). The
test split is unchanged: its rotated digits are the atypical test examples, its upright
digits the clean ones.

Variants (each a population of `population.members` models; member i shares its init,
data-order and augmentation seeds across variants), trained by `tradeoffs.train.dynamics.train`
for `study.epochs` epochs with the per-example dynamics recorded at every epoch boundary:
  no_augmentation        the reference;
  uniform_augmentation   every example augmented from `study.start_epoch` on;
  random_q<q>            a fresh uniform draw of q·N examples each epoch (budget-matched);
  targeted_q<q>          the q·N examples of lowest true-class probability at the end of
                         the previous epoch (the paper's intervention; q = 0.2 there).
The augmentation is `config.augment` (pad-and-crop by one pixel on the 8×8 digits). Before
`study.start_epoch` the augmented variants augment nothing (default) or, with
`study.augment_before_start=True`, everything, as the paper's code does.

Formulations chosen:
  * retrieval score: −mean true-class probability over epochs start_epoch..E−1 (the
    paper's −MSP, averaged over the epochs it tracks), beside −AUM and the forgetting score
    (tables only); the random score is a fresh uniform draw per member (its AP estimates
    the prevalence). AP as sklearn defines it (`tradeoffs.dynamics.average_precision`).
  * claims: AP(score) − AP(random) per member (paired t over members), per variant and
    target; test accuracy on the rotated (atypical) and upright (clean) digits of each
    augmented variant against no augmentation and of targeted against uniform and random
    (Welch t over members: separately trained populations). Holm within each section.
"""

from __future__ import annotations

import dataclasses
import math
import os
import time
from typing import Any, Mapping, Sequence

import jax
import numpy as np

from tradeoffs import dynamics
from tradeoffs.train import dynamics as train_dynamics
from tradeoffs import stats
from tradeoffs import workdir as workdir_lib
from tradeoffs.data import batching
from tradeoffs.data import noise
from tradeoffs.report import figures
from tradeoffs.report import format as fmt
from tradeoffs.report import verdict as verdict_lib
from tradeoffs.report.pareto import get_path
from tradeoffs.studies import base
from tradeoffs.studies import recipes
from tradeoffs.studies import runner
from tradeoffs.train import experiment

NAME = "targeted_augmentation"
TITLE = "Two long tails: targeted augmentation and what the dynamics retrieve"
REFERENCE = "no_augmentation"
DATASET = "digits_groups"
KINDS = ("clean", "noisy", "atypical")
SCORES = {"low_p_true": "−mean p(label)", "low_aum": "−AUM", "forgetting": "forgetting"}
TARGETS = ("noisy", "atypical")
CLEAN, ATYPICAL = "subgroup=0", "subgroup=1"
GROUP_LABELS = {CLEAN: "clean (upright)", ATYPICAL: "atypical (rotated)"}


# ---------------------------------------------------------------------------------------
# Plan.


def variant_names(fraction: float) -> dict[str, str]:
  """selection -> variant name."""
  return {"none": REFERENCE, "all": "uniform_augmentation",
          "random": f"random_q{float(fraction):g}",
          "lowest_p_true": f"targeted_q{float(fraction):g}"}


def validate(config: Any) -> None:
  if "study" not in config:
    raise ValueError("config has no 'study' section; use "
                     "experiments/configs/targeted_augmentation.py")
  s = config.study
  base.check_number(s.noise_rate, "study.noise_rate", 0, 1, high_open=True)
  if s.noise_kind not in noise.LABEL_NOISE_KINDS:
    raise ValueError(f"--config.study.noise_kind={s.noise_kind!r}: choose from "
                     f"{list(noise.LABEL_NOISE_KINDS)}")
  base.check_number(s.atypical_fraction, "study.atypical_fraction", 0, 1, low_open=True,
                    high_open=True)
  base.check_number(s.fraction, "study.fraction", 0, 1, low_open=True)
  base.check_number(s.epochs, "study.epochs", 2, integer=True)
  base.check_number(s.start_epoch, "study.start_epoch", 1, int(s.epochs) - 1, integer=True)
  base.check_number(s.noise_seed, "study.noise_seed", 0, integer=True)
  if not isinstance(s.augment_before_start, bool):
    raise ValueError(f"--config.study.augment_before_start={s.augment_before_start!r}: "
                     "expected True or False")
  base.check_number(config.population.members, "population.members", 2, integer=True)
  if config.dataset.name != DATASET:
    raise ValueError(f"--config.dataset.name={config.dataset.name!r}: this study needs "
                     f"{DATASET!r} (its rotated subgroup is the atypical tail)")
  if not base.as_tuple(config.augment.names):
    raise ValueError("--config.augment.names=(): the study compares augmentation policies, "
                     "so it needs an augmentation (e.g. ('pad_crop',))")
  for key in ("latency_repeats", "measure_batch"):
    base.check_number(config.efficiency[key], f"efficiency.{key}", 1, integer=True)


def plan(config: Any) -> list[base.Variant]:
  validate(config)
  s = config.study
  train_config = base.training_config(config)
  common = {"fraction": float(s.fraction), "start_epoch": int(s.start_epoch),
            "epochs": int(s.epochs), "noise_rate": float(s.noise_rate),
            "noise_kind": str(s.noise_kind), "atypical_fraction": float(s.atypical_fraction),
            "noise_seed": int(s.noise_seed),
            "augment_before_start": bool(s.augment_before_start)}
  out = []
  for selection, name in variant_names(s.fraction).items():
    out.append(base.Variant(name, NAME, {"selection": selection, **common},
                            None if name == REFERENCE else REFERENCE, train_config))
  return out


# ---------------------------------------------------------------------------------------
# Produce.


def study_data(ctx: Any, variant: base.Variant) -> tuple[Any, np.ndarray, np.ndarray]:
  """(dataset with the two tails in its training split, noisy ids, atypical ids), cached:
  every variant trains on the same examples and labels."""
  k = variant.knobs
  key = ("two_long_tails", k["noise_rate"], k["noise_kind"], k["atypical_fraction"],
         k["noise_seed"])
  if key not in ctx.cache:
    full = ctx.dataset(variant.train_config)
    train, noisy_ids, atypical_ids = noise.two_long_tails(
        full.train, noise_rate=k["noise_rate"], atypical_fraction=k["atypical_fraction"],
        seed=k["noise_seed"], kind=k["noise_kind"])
    ctx.cache[key] = (dataclasses.replace(full, train=train), noisy_ids, atypical_ids)
  return ctx.cache[key]


def kinds_of(ids: np.ndarray, noisy_ids: np.ndarray, atypical_ids: np.ndarray
             ) -> dict[str, np.ndarray]:
  noisy, atypical = np.isin(ids, noisy_ids), np.isin(ids, atypical_ids)
  return {"clean": ~noisy & ~atypical, "noisy": noisy, "atypical": atypical}


def retrieval_scores(dyn: train_dynamics.Dynamics, start_epoch: int, seed: int
                     ) -> dict[str, np.ndarray]:
  """name -> [M, N] scores, higher = more suspect; 'random' a uniform draw per member."""
  p_true = dyn.p_true.astype(np.float64)[:, start_epoch:]
  rng = np.random.default_rng([seed, 3])
  return {"low_p_true": -p_true.mean(axis=1), "low_aum": -dyn.area_under_margin(),
          "forgetting": dyn.forgetting_score().astype(np.float64),
          "random": rng.random(dyn.p_true.shape[::2])}


def analyse(dyn: train_dynamics.Dynamics, kinds: Mapping[str, np.ndarray], start_epoch: int,
            seed: int) -> dict[str, Any]:
  """The study fields of one variant: per-member AP per score and target, per-kind
  true-class-probability curves, end-of-training fit and where the augmentation went."""
  scores = retrieval_scores(dyn, start_epoch, seed)
  ap = {target: {name: [dynamics.average_precision(s[m], kinds[target])
                        for m in range(dyn.members)] for name, s in scores.items()}
        for target in TARGETS if kinds[target].any()}
  p_true = dyn.p_true.astype(np.float64)
  curves = {kind: p_true[:, :, mask].mean(axis=2).tolist() for kind, mask in kinds.items()
            if mask.any()}
  fit = {kind: dyn.correct[:, -1, mask].mean(axis=1).tolist() for kind, mask in kinds.items()
         if mask.any()}
  # [M] augmented example-epochs: a selected example is augmented at its presentation in
  # that epoch (none for the N mod batch examples an epoch's batches leave out).
  visits = dyn.augmented.sum(axis=(1, 2))
  share = {kind: (dyn.augmented[:, :, mask].sum(axis=(1, 2)) / np.maximum(visits, 1)).tolist()
           for kind, mask in kinds.items() if mask.any()}
  return {"average_precision": ap, "prevalence": {t: float(kinds[t].mean()) for t in TARGETS},
          "p_true_curves": curves, "final_train_fit": fit,
          "augmented_visits": visits.tolist(), "augmented_share": share,
          "counts": {kind: int(mask.sum()) for kind, mask in kinds.items()}}


def produce(ctx: Any, variant: base.Variant) -> base.Outcome:
  k = variant.knobs
  dataset, noisy_ids, atypical_ids = study_data(ctx, variant)
  train = dataset.train
  used = base.training_config(variant.train_config)  # A copy: steps follow the epochs.
  used.train.steps = int(k["epochs"]) * batching.steps_per_epoch(len(train.labels),
                                                                 int(used.train.batch_size))
  folder = os.path.join(ctx.workdir, "dynamics", variant.name)
  if workdir_lib.is_writer():
    noise.write_changed_ids(folder, {"noisy": noisy_ids, "atypical": atypical_ids},
                            noise_rate=k["noise_rate"], noise_kind=k["noise_kind"],
                            atypical_fraction=k["atypical_fraction"], seed=k["noise_seed"],
                            train_examples=len(train.labels))
  start = time.time()
  # Every variant starts from the same population (same config, same seeds) and differs
  # only in the selection, a traced input of the compiled epoch: build it once, and every
  # variant reuses its initial weights and the one compilation.
  key = ("initial", repr(workdir_lib.to_jsonable(used)))
  if key not in ctx.cache:
    mesh, _, _, state, step_config = experiment.build(used, dataset=dataset)
    ctx.cache[key] = (mesh, step_config, recipes.host_copy(state),
                      jax.tree.map(lambda x: x.sharding, state))
  mesh, step_config, initial, shardings = ctx.cache[key]
  state = jax.tree.map(jax.device_put, initial, shardings)
  state, dyn, _ = train_dynamics.train(state, train, step_config, mesh, epochs=int(k["epochs"]),
                                 selection=k["selection"], fraction=k["fraction"],
                                 start_epoch=int(k["start_epoch"]),
                                 augment_before_start=bool(k.get("augment_before_start")),
                                 eval_batch=int(used.eval.batch_size))
  seconds = time.time() - start
  if workdir_lib.is_writer():
    dyn.save(os.path.join(folder, "dynamics.npz"))
  ctx.meshes[variant.name] = {name: int(size) for name, size in mesh.shape.items()}
  trained = runner.Trained(state=state, mesh=mesh, seconds=seconds)
  logits = ctx.evaluate(trained, used)
  fields = analyse(dyn, kinds_of(train.ids, noisy_ids, atypical_ids), int(k["start_epoch"]),
                   int(k["noise_seed"]))
  fields.update(train_seconds=seconds, train_examples=len(train.labels),
                steps=int(used.train.steps))
  return base.Outcome(members=state.members, logits=logits, study_fields=fields,
                      efficiency=recipes.measure_member(ctx, state, used), config=used)


# ---------------------------------------------------------------------------------------
# The report.


def _ordered(records: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
  order = {"none": 0, "all": 1, "random": 2, "lowest_p_true": 3}
  return sorted((r for r in records if r.get("technique") == NAME),
                key=lambda r: order.get(r["knobs"].get("selection"), 9))


def _by_selection(records, selection):
  return next((r for r in _ordered(records) if r["knobs"].get("selection") == selection), None)


def _values(record: Mapping[str, Any] | None, path: str) -> list[float] | None:
  if record is None:
    return None
  values = get_path(record, path)
  if not isinstance(values, list) or not values or any(
      not isinstance(v, (int, float)) or not math.isfinite(v) for v in values):
    return None
  return [float(v) for v in values]


def _group_path(group: str | None) -> str:
  return ("accuracy.per_member_top1" if group is None
          else f"accuracy.per_member_per_group.{group}")


def _cell(values: list[float] | None, scale: float = 100.0, digits: int = 1) -> str:
  if not values:
    return fmt.DASH
  mean, low, high = stats.t_interval(values)
  if not math.isfinite(low):
    return f"{scale * mean:.{digits}f}"
  return f"{scale * mean:.{digits}f} [{scale * low:.{digits}f}, {scale * high:.{digits}f}]"


def retrieval_claims(records: Sequence[Mapping[str, Any]]) -> list[stats.Comparison]:
  """AP of −mean p(label) against the random score, per variant and target (paired), and
  the targeted variant's AP against no augmentation's per target (Welch): one family."""
  claims = []
  for r in _ordered(records):
    for target in TARGETS:
      a = _values(r, f"study_fields.average_precision.{target}.low_p_true")
      b = _values(r, f"study_fields.average_precision.{target}.random")
      if a and b and len(a) == len(b):
        claims.append(stats.compare(a, b, paired=True,
                                    claim=f"{r['variant']}: AP({target}) vs random"))
  ref, targeted = _by_selection(records, "none"), _by_selection(records, "lowest_p_true")
  for target in TARGETS:
    path = f"study_fields.average_precision.{target}.low_p_true"
    a, b = _values(targeted, path), _values(ref, path)
    if a and b:
      claims.append(stats.compare(a, b, paired=False, claim=(
          f"{targeted['variant']} vs {ref['variant']}: AP({target})")))
  return stats.family(claims)


def accuracy_claims(records: Sequence[Mapping[str, Any]]) -> list[stats.Comparison]:
  """Atypical and clean test accuracy: every augmented variant against no augmentation,
  and the targeted one against uniform and random augmentation (Welch)."""
  pairs = [(sel, "none") for sel in ("all", "random", "lowest_p_true")]
  pairs += [("lowest_p_true", "all"), ("lowest_p_true", "random")]
  claims = []
  for a_sel, b_sel in pairs:
    a, b = _by_selection(records, a_sel), _by_selection(records, b_sel)
    if a is None or b is None:
      continue
    for group in (ATYPICAL, CLEAN):
      va, vb = _values(a, _group_path(group)), _values(b, _group_path(group))
      if va and vb:
        claims.append(stats.compare(
            va, vb, paired=False,
            claim=f"{a['variant']} vs {b['variant']}: {GROUP_LABELS[group]} accuracy"))
  return stats.family(claims)


def retrieval_table(records: Sequence[Mapping[str, Any]]) -> tuple[Any, ...]:
  headers = ["Variant", "Target", "Prevalence"] + [f"AP {label}" for label in
                                                   SCORES.values()] + ["AP random"]
  rows = []
  for r in _ordered(records):
    fields = r.get("study_fields") or {}
    for target in TARGETS:
      if target not in (fields.get("average_precision") or {}):
        continue
      path = f"study_fields.average_precision.{target}"
      rows.append([r["variant"], target, fmt.number((fields.get("prevalence") or {}).get(target))]
                  + [_cell(_values(r, f"{path}.{name}"), 1.0, 3) for name in SCORES]
                  + [_cell(_values(r, f"{path}.random"), 1.0, 3)])
  return ("table", headers, rows)


def accuracy_table(records: Sequence[Mapping[str, Any]]) -> tuple[Any, ...]:
  headers = ["Variant", "Top-1 % [95% CI]", "Atypical (rotated) %", "Clean (upright) %",
             "Train fit: noisy %", "Train fit: atypical %", "Augmented share: noisy / "
             "atypical / clean", "Train s"]
  rows = []
  for r in _ordered(records):
    fields = r.get("study_fields") or {}
    share = fields.get("augmented_share") or {}
    visits = _values(r, "study_fields.augmented_visits") or [0]
    share_text = (" / ".join(f"{100 * float(np.mean(share[k])):.0f}%" if k in share
                             else fmt.DASH for k in ("noisy", "atypical", "clean"))
                  if max(visits) > 0 else fmt.DASH)
    rows.append([r["variant"], _cell(_values(r, _group_path(None))),
                 _cell(_values(r, _group_path(ATYPICAL))), _cell(_values(r, _group_path(CLEAN))),
                 _cell(_values(r, "study_fields.final_train_fit.noisy")),
                 _cell(_values(r, "study_fields.final_train_fit.atypical")), share_text,
                 fmt.number(fields.get("train_seconds", r.get("seconds")))])
  return ("table", headers, rows)


def plot(records: Sequence[Mapping[str, Any]]):
  """Left: mean p(label) per epoch of clean, noisy and atypical training examples, no
  augmentation (dashed) against targeted (solid). Right: atypical and clean test accuracy
  per variant (mean, 95% t interval over members)."""
  ordered = _ordered(records)
  ref, targeted = _by_selection(records, "none"), _by_selection(records, "lowest_p_true")
  if ref is None or targeted is None:
    return None
  fig, (left, right) = figures.new(2, width=11.0, height=4.2)
  start = int(targeted["knobs"].get("start_epoch", 0))
  for j, kind in enumerate(KINDS):
    for record, style in ((ref, "--"), (targeted, "-")):
      curves = (record.get("study_fields") or {}).get("p_true_curves", {}).get(kind)
      if curves:
        mean = np.mean(np.asarray(curves, np.float64), axis=0)
        left.plot(np.arange(1, mean.size + 1), mean, style, color=figures.color(j),
                  label=f"{kind}, {record['variant']}")
  left.axvline(start + 0.5, color="grey", lw=0.8, ls=":")
  left.set_xlabel("epoch (dotted: targeted augmentation starts)")
  left.set_ylabel("mean p(assigned label) on the training set")
  left.set_ylim(0, 1)
  left.legend(fontsize=7)
  width = 0.38
  for j, group in enumerate((ATYPICAL, CLEAN)):
    xs, ys, errs = [], [], [[], []]
    for i, r in enumerate(ordered):
      values = _values(r, _group_path(group))
      if not values:
        continue
      mean, low, high = stats.t_interval(values)
      xs.append(i + (j - 0.5) * width)
      ys.append(100 * mean)
      errs[0].append(100 * (mean - low) if math.isfinite(low) else 0.0)
      errs[1].append(100 * (high - mean) if math.isfinite(high) else 0.0)
    right.bar(xs, ys, width, yerr=errs, capsize=3, color=figures.color(3 + j),
              label=GROUP_LABELS[group])
  right.set_xticks(range(len(ordered)))
  right.set_xticklabels([r["variant"].replace("_", "\n", 1) for r in ordered], fontsize=8)
  right.set_ylabel("test accuracy % (↑ better)")
  right.legend(fontsize=8, loc="lower right")
  return fig


def finding(retrieval: Sequence[stats.Comparison], accuracy: Sequence[stats.Comparison]
            ) -> str:
  """What the verdicts say about the paper's claims: retrieval, its change under the
  intervention, and atypical accuracy."""
  words = {stats.HIGHER: "above", stats.LOWER: "below"}
  target_of = lambda c: c.claim.split("AP(")[1].split(")")[0]  # noqa: E731
  parts = [f"AP({target_of(c)}) {fmt.number(c.mean_a)} is "
           f"{words.get(c.verdict, 'not detectably different from')} random "
           f"({fmt.number(c.mean_b)})" for c in retrieval
           if c.claim.startswith("targeted") and c.claim.endswith("vs random")]
  text = ("Under targeted augmentation, ranking by −mean p(label): " + "; ".join(parts)
          + ". ") if parts else ""
  changes = [c for c in retrieval if " vs no_augmentation: AP(" in c.claim]
  if changes:
    text += "Against no augmentation, targeting " + "; ".join(
        (f"changes AP({target_of(c)}) from {fmt.number(c.mean_b)} to {fmt.number(c.mean_a)} "
         f"(Holm p = {fmt.p(c.p_holm)})") if c.verdict != stats.NO_DIFFERENCE else
        f"leaves AP({target_of(c)}) without a detectable change" for c in changes) + ". "
  atypical = [c for c in accuracy if c.claim.startswith("targeted")
              and c.claim.endswith(f"{GROUP_LABELS[ATYPICAL]} accuracy")]
  moved = [c for c in atypical if c.verdict != stats.NO_DIFFERENCE]
  if moved:
    text += "Targeted augmentation changes atypical test accuracy detectably: " + "; ".join(
        verdict_lib.sentence(c) for c in moved) + "."
  elif atypical:
    text += ("Targeted augmentation does not change atypical test accuracy detectably "
             "against any baseline here (Holm); that it helps the atypical tail is not "
             "shown at this scale.")
  return text.strip()


def budget_sentence(records: Sequence[Mapping[str, Any]]) -> str:
  """Where the targeted budget went, and how much of each tail it left fitted."""
  ref, targeted = _by_selection(records, "none"), _by_selection(records, "lowest_p_true")
  if ref is None or targeted is None:
    return ""
  share = (targeted.get("study_fields") or {}).get("augmented_share") or {}
  prevalence = (targeted.get("study_fields") or {}).get("prevalence") or {}
  fit = lambda r, kind: _values(r, f"study_fields.final_train_fit.{kind}")  # noqa: E731
  if not all(k in share for k in TARGETS) or not all(fit(r, "atypical") for r in (ref,
                                                                                  targeted)):
    return ""
  return (f"Where the targeted budget went: {100 * np.mean(share['noisy']):.0f}% of its "
          f"augmented example-epochs fell on noisy labels and "
          f"{100 * np.mean(share['atypical']):.0f}% on atypical examples (prevalence "
          f"{100 * prevalence['noisy']:.1f}% and {100 * prevalence['atypical']:.1f}%). After the "
          f"last epoch it fits {_cell(fit(targeted, 'atypical'))}% of the atypical training "
          f"examples against {_cell(fit(ref, 'atypical'))}% without augmentation, and "
          f"memorises {_cell(fit(targeted, 'noisy'))}% of the wrong labels against "
          f"{_cell(fit(ref, 'noisy'))}% (95% t intervals over members).")


def sections(records: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[Any, ...]]:
  records = list(records)
  ordered = _ordered(records)
  if not ordered:
    return [("p", "No variant was recorded.")]
  first = ordered[0]
  k = first["knobs"]
  fields = first.get("study_fields") or {}
  counts = fields.get("counts") or {}
  before = ("every example in the augmented variants (as the paper's code)"
            if k.get("augment_before_start") else "none")
  blocks: list[tuple[Any, ...]] = [
      ("h2", "Setup"),
      ("p", f"{fields.get('train_examples', '?')} training digits (digits_groups): "
            f"{counts.get('atypical', '?')} atypical (rotated, thinned to "
            f"{100 * k['atypical_fraction']:g}% of the set), {counts.get('noisy', '?')} with a "
            f"wrong label ({100 * k['noise_rate']:g}% of the typical ones, {k['noise_kind']} "
            f"noise), {counts.get('clean', '?')} clean; noise seed {k['noise_seed']}. "
            f"Every variant: {first['members']} members (seeds 0–{first['members'] - 1} for "
            f"init, data order and augmentation), {k['epochs']} epochs "
            f"({fields.get('steps', '?')} steps); augmentation from epoch {k['start_epoch']} "
            f"(0-based) on, before it {before}; targeted and random augment "
            f"q = {k['fraction']:g} of the set "
            "each epoch. The dynamics are measured at every epoch boundary on the "
            "unaugmented training set (tradeoffs.dynamics). Intervals: 95% t over members.")]
  figure = plot(records)
  if figure is not None:
    blocks.append(("figure", "targeted_augmentation.png", figure,
                   "Left: mean p(assigned label) per epoch for clean, noisy and atypical "
                   "training examples (dashed: no augmentation; solid: targeted). Right: "
                   "atypical and clean test accuracy per variant (95% t intervals over "
                   "members)."))
  retrieval = retrieval_claims(records)
  blocks += [("h2", "Retrieving noisy and atypical examples from the dynamics"),
             ("p", "Average precision of ranking the training set by each score (higher = "
                   "more suspect) for the noisy and for the atypical examples; a random "
                   "score's AP is near the prevalence. Claims: AP of −mean p(label) over "
                   f"epochs {k['start_epoch']}–{k['epochs'] - 1} minus the random score's "
                   "AP (paired t over members), and the targeted variant's AP against no "
                   f"augmentation's (Welch t); {len(retrieval)} claims Holm-corrected "
                   "together (the table scales AP by 1, the claims by 100: points of AP)."),
             retrieval_table(records)]
  if retrieval:
    blocks.append(verdict_lib.table(retrieval))
  accuracy = accuracy_claims(records)
  blocks += [("h2", "Accuracy on atypical and clean test examples"),
             ("p", "Test accuracy on the rotated (atypical) and upright (clean) digits of the "
                   "unchanged test split; train fit is the share of noisy / atypical training "
                   "examples classified as their assigned label after the last epoch (for "
                   "noisy ones: memorised wrong labels); the augmented share says where the "
                   "augmentation went. Train s: the first variant's time includes the one "
                   f"compilation every variant shares. {len(accuracy)} claims, Welch t over "
                   "members, Holm-corrected together."),
             accuracy_table(records)]
  if accuracy:
    blocks += [verdict_lib.table(accuracy)] + [("p", verdict_lib.sentence(c))
                                                 for c in accuracy]
  blocks += [("h2", "Against the paper"),
             ("p", finding(retrieval, accuracy))]
  budget = budget_sentence(records)
  if budget:
    blocks.append(("p", budget))
  blocks += [
             ("p", "D'souza et al. (2021) inject 20% noisy and 20% atypical examples into "
                   "CIFAR-10/100, train a WRN-28-10 for 60 epochs and, from epoch 4, augment "
                   "the bottom 20% by softmax probability of the label; they report that "
                   "the two tails learn at different rates under this intervention and "
                   "compare AUPR against a random score, with plots only (no numbers were "
                   "found; PAPERS.md section 13). Their code differs from this study in "
                   "three documented ways: it scores each example by the softmax output of "
                   "its own training batch (train mode, augmented when chosen; here: a pass "
                   "over the unaugmented set at the epoch's end), it reports AP epoch by "
                   "epoch (here: of the score averaged over the augmented epochs), and it "
                   "augments every example until the first selection "
                   "(study.augment_before_start=True reproduces that). This study is far "
                   "smaller (8×8 digits, an MLP, 10% noisy labels and 5% atypical "
                   "examples), so a difference from the paper is a finding about this "
                   "scale, not a refutation.")]
  return blocks
