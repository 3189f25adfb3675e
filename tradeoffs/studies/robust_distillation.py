"""Robust distillation: which teacher and student objectives protect the worst class.

    config → teachers trained from labels under each objective (standard, balanced,
    robust) → every teacher × student objective pair, the student distilled from the
    teacher → (optionally) students trained from labels alone → overall against
    worst-class accuracy, verdicts against standard KD

Formulations chosen (Wang, Narasimhan, Zhou, Hooker, Lukasik, Menon 2022/UAI 2023; the
PAPERS.md reconstruction, see `tradeoffs.distill`):
  * data: `digits_long_tail` — an exponential 10:1 long tail over classes (class 0: 100
    training images … class 9: 10; 409 in all), a balanced validation split of 20 per
    class held out before subsampling (the class weights λ are estimated there), and the
    balanced digits test split (scored; nothing is tuned on it).
  * objectives (teacher and student alike): standard (ERM / plain KD), balanced (each
    class weighted 1/π_y: the balanced risk), robust (weights (1−α)·π_y + α·λ_y over π_y,
    λ by exponentiated-gradient ascent on the population's mean per-class validation
    error, `study.eg_rounds` rounds of training with one EG step between rounds).
  * distillation: per example CE + w·T²·KL(softmax(t/T) ‖ softmax(s/T)) (Hinton et al.),
    both terms weighted by the student's objective; w = `study.distill_weight`, T =
    `study.temperature`; every student member distils from teacher member
    `study.teacher_member` (the trainer's per-example inputs are shared by members), via
    the trainer's general per-example input (`teacher_logits`) and member loss term.
  * teachers and students of every variant share seeds by member index (same init and
    batch order), so verdicts are paired t over members; each Holm family is one report
    section.
"""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import ml_collections

from tradeoffs import distill
from tradeoffs import stats
from tradeoffs.report import figures
from tradeoffs.report import format as fmt
from tradeoffs.report import verdict as verdict_lib
from tradeoffs.studies import base
from tradeoffs.studies import recipes

NAME = "robust_distillation"
TITLE = "Robust distillation: who pays when the tail is small"
STUDY_SECTIONS = ("study", "report", "efficiency")
DATASETS = ("digits_long_tail",)
METRICS = {"worst class": "accuracy.per_member_worst_class",
           "top-1": "accuracy.per_member_top1"}


_tuple = base.as_tuple


def training_config(config: Any, model: str, kwargs: Mapping[str, Any]
                    ) -> ml_collections.ConfigDict:
  out = ml_collections.ConfigDict(config.to_dict())
  for key in STUDY_SECTIONS:
    if key in out:
      del out[key]
  out.model.name = str(model)
  out.model.kwargs = ml_collections.ConfigDict(
      kwargs.to_dict() if hasattr(kwargs, "to_dict") else dict(kwargs))
  return out


_number = base.check_number


def validate(config: Any) -> None:
  if "study" not in config:
    raise ValueError("config has no 'study' section; use "
                     "experiments/configs/robust_distillation.py")
  s = config.study
  for key in ("teacher_objectives", "student_objectives"):
    values = _tuple(s[key])
    if not values:
      raise ValueError(f"--config.study.{key}=() is empty; choose from "
                       f"{list(distill.OBJECTIVES)}")
    for v in values:
      if v not in distill.OBJECTIVES:
        raise ValueError(f"--config.study.{key} has {v!r}; choose from "
                         f"{list(distill.OBJECTIVES)}")
    if len(set(values)) != len(values):
      raise ValueError(f"--config.study.{key}={values!r} has duplicates")
  try:
    distill.check_alpha(s.alpha)
  except (TypeError, ValueError):
    raise ValueError(f"--config.study.alpha={s.alpha!r}: the overall/worst-class trade-off "
                     "must lie in [0, 1] (0: standard risk, 1: worst class)") from None
  try:
    distill.check_temperature(s.temperature)
  except (TypeError, ValueError):
    raise ValueError(f"--config.study.temperature={s.temperature!r}: the distillation "
                     "temperature must be a number > 0") from None
  _number(s.distill_weight, "study.distill_weight", 0.0)
  _number(s.eg_step, "study.eg_step", 0.0)
  _number(s.eg_rounds, "study.eg_rounds", 1, integer=True)
  _number(s.teacher_member, "study.teacher_member", 0,
          int(config.population.members) - 1, integer=True)
  if config.dataset.name not in DATASETS:
    raise ValueError(f"--config.dataset.name={config.dataset.name!r}: the robust objectives "
                     f"need a held-out validation split; use one of {list(DATASETS)}")
  if int(config.population.members) < 2:
    raise ValueError(f"--config.population.members={config.population.members}: verdicts are "
                     "paired over members; use at least 2")
  if int(s.eg_rounds) > int(config.train.steps):
    raise ValueError(f"--config.study.eg_rounds={s.eg_rounds} exceeds --config.train.steps="
                     f"{config.train.steps}")


def _objective_knobs(s: Any, objective: str) -> dict[str, Any]:
  knobs: dict[str, Any] = {"objective": objective}
  if objective == "robust":
    knobs.update(alpha=float(s.alpha), eg_step=float(s.eg_step), eg_rounds=int(s.eg_rounds))
  return knobs


def plan(config: Any) -> list[base.Variant]:
  validate(config)
  s = config.study
  teacher_tc = training_config(config, s.teacher_model, s.teacher_kwargs)
  student_tc = training_config(config, s.student_model, s.student_kwargs)
  out = [base.Variant(f"teacher_{t}", "worst_class", {**_objective_knobs(s, t),
                                                      "role": "teacher"}, None, teacher_tc)
         for t in _tuple(s.teacher_objectives)]
  if bool(s.undistilled_students):
    out += [base.Variant(f"student_{o}_labels", "worst_class",
                         {**_objective_knobs(s, o), "role": "student"}, None, student_tc)
            for o in _tuple(s.student_objectives)]
  for t in _tuple(s.teacher_objectives):
    for o in _tuple(s.student_objectives):
      out.append(base.Variant(
          f"student_{o}_from_{t}", "distilled",
          {**_objective_knobs(s, o), "role": "student", "teacher_objective": t,
           "temperature": float(s.temperature), "distill_weight": float(s.distill_weight),
           "teacher_member": int(s.teacher_member)}, f"teacher_{t}", student_tc))
  return out


def produce(ctx: Any, variant: base.Variant) -> base.Outcome:
  return recipes.produce(ctx, variant)


# ---------------------------------------------------------------------------------------
# The report.


def _values(record: Mapping[str, Any], path: str) -> list[float]:
  section, key = path.split(".")
  return list((record.get(section) or {}).get(key) or [])


def _ci(values: Sequence[float]) -> str:
  if len(values) < 2:
    return fmt.accuracy(values[0]) if values else fmt.DASH
  mean, low, high = stats.t_interval(values)
  return f"{100 * mean:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def against(records: Sequence[Mapping[str, Any]], reference: str,
            pick: Any) -> list[stats.Comparison]:
  """Worst-class and top-1 of the picked records against `reference`, paired over members
  (shared seeds), one Holm family."""
  by = {r["variant"]: r for r in records}
  ref = by.get(reference)
  if ref is None:
    return []
  claims = []
  for r in records:
    if r is ref or not pick(r):
      continue
    for label, path in METRICS.items():
      a, b = _values(r, path), _values(ref, path)
      if a and len(a) == len(b):
        claims.append(stats.compare(a, b, paired=True,
                                    claim=f"{r['variant']}: {label} vs {reference}"))
  return stats.family(claims)


def grid(records: Sequence[Mapping[str, Any]], path: str) -> tuple[list[str], list[list[str]]]:
  """Rows: teacher objective (or 'labels only'); columns: student objective."""
  students = [r for r in records if (r.get("knobs") or {}).get("role") == "student"]
  columns = list(dict.fromkeys(r["knobs"]["objective"] for r in students))
  teachers = list(dict.fromkeys(r["knobs"].get("teacher_objective", "labels only")
                                for r in students))
  headers = ["Teacher \\ student"] + [f"{c} student" for c in columns]
  rows = []
  for t in teachers:
    row = [t if t == "labels only" else f"{t} teacher"]
    for c in columns:
      match = [r for r in students if r["knobs"]["objective"] == c
               and r["knobs"].get("teacher_objective", "labels only") == t]
      row.append(_ci(_values(match[0], path)) if match else fmt.DASH)
    rows.append(row)
  return headers, rows


def plot_frontier(records: Sequence[Mapping[str, Any]]):
  """Overall top-1 against worst-class accuracy (means with 95% t intervals)."""
  if not records:
    return None
  fig, axs = figures.new(1)
  ax = axs[0]
  objectives = list(distill.OBJECTIVES)
  markers = {"standard": "o", "balanced": "s", "robust": "^", "labels only": "x"}
  for r in records:
    k = r.get("knobs") or {}
    top1, worst = _values(r, METRICS["top-1"]), _values(r, METRICS["worst class"])
    if len(top1) < 2:
      continue
    (mx, lx, hx), (my, ly, hy) = stats.t_interval(worst), stats.t_interval(top1)
    teacher = k.get("role") == "teacher"
    marker = "*" if teacher else markers[k.get("teacher_objective", "labels only")]
    color = figures.color(objectives.index(k.get("objective", "standard")))
    ax.errorbar(mx, my, xerr=[[mx - lx], [hx - mx]], yerr=[[my - ly], [hy - my]],
                fmt=marker, color=color, ms=11 if teacher else 7, alpha=0.85, capsize=2)
    ax.annotate(r["variant"].replace("student_", "").replace("teacher_", "T:"), (mx, my),
                fontsize=7, xytext=(4, 3), textcoords="offset points")
  from matplotlib.lines import Line2D
  handles = [Line2D([], [], marker="o", ls="", color=figures.color(i)) for i in
             range(len(objectives))]
  handles += [Line2D([], [], marker=m, ls="", color="0.3") for m in markers.values()]
  handles.append(Line2D([], [], marker="*", ls="", color="0.3", ms=11))
  ax.legend(handles, [f"{o} objective" for o in objectives]
            + [f"teacher: {t}" for t in markers] + ["a teacher"], fontsize=7)
  ax.set_xlabel("worst-class accuracy (↑ better)")
  ax.set_ylabel("top-1 accuracy (↑ better)")
  return fig


def sections(records: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[Any, ...]]:
  records = list(records)
  by = {r["variant"]: r for r in records}
  any_record = records[0] if records else {}
  priors = next((r["study_fields"].get("class_priors") for r in records
                 if (r.get("study_fields") or {}).get("class_priors")), None)
  blocks: list[tuple[Any, ...]] = [("h2", "Setting"), ("p", (
      f"Every variant is a population of {any_record.get('members', '?')} members sharing "
      "seeds by member index. Training data: digits with an exponential 10:1 long tail "
      + (f"(class priors {', '.join(f'{p:.3f}' for p in priors)})" if priors else "")
      + "; class weights of the robust objective are estimated on a balanced validation "
      "split; the scored test split is balanced. Worst class = the mean over members of "
      "each member's lowest per-class test accuracy."))]
  figure = plot_frontier(records)
  if figure is not None:
    blocks.append(("figure", "robust_distillation_frontier.png", figure,
                   "Overall top-1 against worst-class accuracy, means with 95% t intervals "
                   "over members; colour: the variant's own objective; marker: its teacher's "
                   "objective (stars: the teachers)."))
  for label, path in (("Worst-class accuracy", METRICS["worst class"]),
                      ("Top-1 accuracy", METRICS["top-1"])):
    headers, rows = grid(records, path)
    blocks += [("h2", f"{label}: teacher × student (% [95% CI])"), ("table", headers, rows)]
  teachers = [r for r in records if (r.get("knobs") or {}).get("role") == "teacher"]
  blocks += [("h2", "Teachers"), ("table", ["Teacher", "Top-1 % [95% CI]",
                                            "Worst class % [95% CI]", "Final λ (tail 3)"],
                                  [[r["variant"], _ci(_values(r, METRICS["top-1"])),
                                    _ci(_values(r, METRICS["worst class"])),
                                    ", ".join(f"{x:.2f}" for x in (r["study_fields"].get(
                                        "lambda_history") or [[]])[-1][-3:])]
                                   for r in teachers])]
  families = [
      ("Verdicts: students against standard KD", "student_standard_from_standard",
       lambda r: r["technique"] == "distilled"),
      ("Verdicts: teachers against the standard teacher", "teacher_standard",
       lambda r: (r.get("knobs") or {}).get("role") == "teacher")]
  for o in distill.OBJECTIVES:
    if f"student_{o}_labels" in by:
      families.append((f"Verdicts: {o} students distilled against {o} from labels",
                       f"student_{o}_labels",
                       lambda r, o=o: r["technique"] == "distilled"
                       and r["knobs"].get("objective") == o))
  for title, reference, pick in families:
    claims = against(records, reference, pick)
    if claims:
      blocks += [("h2", title),
                 ("p", f"{len(claims)} claims, one Holm family; paired t over members "
                       "(shared seeds); differences in percentage points."),
                 verdict_lib.table(claims)]
      blocks += [("p", verdict_lib.sentence(c)) for c in claims
                 if c.verdict != stats.NO_DIFFERENCE]
  blocks += [("h2", "What the paper reports"), ("p", (
      "Wang et al. (2022; UAI 2023) report, on long-tailed CIFAR and larger benchmarks with "
      "ResNet teacher/student pairs, that robust students improve worst-class accuracy "
      "over standard distillation at some cost in overall accuracy, that a robust teacher "
      "does not by itself give a robust student, and that the teacher's per-class "
      "calibration matters; numbers were not found (PAPERS.md §10). This study runs the "
      "same grid with MLPs on 409 long-tailed digits: read the verdict tables for what "
      "shows at this scale, and the intervals for what does not."))]
  return blocks
