"""The study protocol: what a study is, and what the runner hands it.

A study is any module in `tradeoffs/studies/` with a name and three functions:

    NAME: str
    TITLE: str                                        the report's default title
    plan(config) -> list[Variant]                     validates the config; loads nothing
    produce(ctx, variant) -> Outcome                  trains / transforms / measures one variant
    sections(records, config) -> list[block]          the study's report sections (verdicts
                                                      through `tradeoffs.stats`)

and nothing else (optionally `LEDGER = False` to leave the per-variant "what was traded"
section out, for studies whose variants are not models). The runner (`tradeoffs.studies.runner`) owns everything around them: the
workdir guard and lock, the environment, skipping finished variants, resume, preemption,
progress with ETA, scoring on the one sheet (`tradeoffs.sheet`), appending records in the
one schema (`tradeoffs.report.records`), and report.md + report.html + figures.

Below `plan`, functions take plain values or small dataclasses, never the ConfigDict: a
`Variant` carries its knobs as given and, for trained variants, a plain training config.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Mapping, Sequence

import ml_collections
import numpy as np


# Sections of a study config that are not part of a training config.
STUDY_SECTIONS = ("study", "report", "efficiency")


def training_config(config: Any) -> ml_collections.ConfigDict:
  """An unlocked deep copy of a study config without its study-only sections: the plain
  training config (dataset, model, population, seeds, optimizer, train, ...) its
  variants start from."""
  out = ml_collections.ConfigDict(config.to_dict() if hasattr(config, "to_dict")
                                  else dict(config))
  for key in STUDY_SECTIONS:
    if key in out:
      del out[key]
  return out


def as_tuple(value: Any) -> tuple:
  """A config value as a tuple: '' or None -> (), a scalar -> (value,)."""
  if value is None or value == "":
    return ()
  return tuple(value) if isinstance(value, (list, tuple)) else (value,)


def check_number(value: Any, name: str, low: float, high: float = math.inf, *,
                 low_open: bool = False, high_open: bool = False,
                 integer: bool = False) -> None:
  """ValueError naming `--config.<name>` unless `value` is a finite number (an integer with
  `integer`) in the interval [low, high] (ends open as asked): what `plan` validates with."""
  ok = (not isinstance(value, bool) and isinstance(value, (int, float, np.number))
        and math.isfinite(float(value)) and (not integer or float(value) == int(value)))
  if ok:
    v = float(value)
    ok = (v > low if low_open else v >= low) and (v < high if high_open else v <= high)
  if not ok:
    kind = "an integer" if integer else "a number"
    bounds = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    raise ValueError(f"--config.{name}={value!r}: expected {kind} in {bounds}")


@dataclasses.dataclass(frozen=True)
class Variant:
  """One point of a study.

  name: file-safe and unique within the study (e.g. "pruned_s90").
  technique: the recipe that produces it (`recipes.RECIPES`) or the study's own name.
  knobs: the settings that define it, recorded as they are.
  source: the reference variant (CIE, verdicts); None for a reference itself.
  train_config: the training config of a trained variant (model, optimizer, train,
    seeds, population, ...), or None for a variant derived without training.
  """
  name: str
  technique: str
  knobs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  source: str | None = None
  train_config: Any = None


@dataclasses.dataclass
class Outcome:
  """What `produce` returns for one variant; the runner scores and records it.

  logits: test logits [members, examples, classes] of the scored population (an ensemble
    variant passes its combined ensembles), or None for a study without a classifier (the
    runner then takes `accuracy` as given).
  members: population size: the number of independent models (or ensembles) scored.
  efficiency: what it costs to run (params, nonzero_params, flops, weight_bytes,
    latency_*, peak_bytes), from `tradeoffs.efficiency`.
  accuracy / hidden_costs: merged over (and overriding) what the sheet computes.
  study_fields: study-specific values (only under the record's `study_fields`).
  comparisons: name -> `stats.Comparison` the study drew for this variant.
  config: the training config actually used (default: the variant's).
  derived: True when the population was derived from its source's own members (pruned,
    quantized: the same members, so CIEs against the source are paired), False when it
    was retrained (another width, a divided ensemble).
  """
  members: int
  efficiency: Mapping[str, Any]
  logits: np.ndarray | None = None
  accuracy: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  hidden_costs: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  study_fields: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  comparisons: Mapping[str, Any] = dataclasses.field(default_factory=dict)
  config: Any = None
  derived: bool = False


class Preempted(Exception):
  """Raised inside `produce` when training was preempted (its state is checkpointed).

  The one preemption mechanism: the runner stops, keeps every finished record, and says
  to rerun the same command.
  """

  def __init__(self, variant: str, step: int | None = None):
    super().__init__(variant)
    self.variant, self.step = variant, step


# XLA:CPU backend optimisation levels below this compile code LLVM did not optimise.
UNOPTIMISED_BELOW = 1


def xla_flags(config: Any) -> tuple[str, ...]:
  """The XLA_FLAGS entries a study config asks for (`study.xla_backend_optimization_level`,
  0-3, to cut compile time: the smokes use 0). The study binary appends them to XLA_FLAGS
  before JAX's backend starts (`experiments.app`), so every record's environment shows them."""
  study = getattr(config, "study", None)
  level = None if study is None else study.get("xla_backend_optimization_level", None)
  if level is None:
    return ()
  check_number(level, "study.xla_backend_optimization_level", 0, 3, integer=True)
  return (f"--xla_backend_optimization_level={int(level)}",)


def compile_level_blocks(records: Sequence[Mapping[str, Any]], benchmark: str = ""
                         ) -> list[tuple[str, str]]:
  """A report paragraph when the records were compiled at a chosen XLA backend level (read
  from their environments): below level 1 the latencies are of unoptimised code."""
  levels = sorted({int(flag.split("=")[1]) for r in records for flag in str(
      (r.get("environment") or {}).get("xla_flags", "")).split()
      if flag.startswith("--xla_backend_optimization_level=")})
  if not levels:
    return []
  flags = ", ".join(f"--xla_backend_optimization_level={v}" for v in levels)
  if min(levels) < UNOPTIMISED_BELOW:
    return [("p", f"Compiled with XLA_FLAGS {flags} (`study.xla_backend_optimization_level`): "
                  "the latencies are of code LLVM did not optimise, not the models' own; "
                  "read FLOPs, parameters and memory, not the latency ratios.")]
  return [("p", f"Compiled with XLA_FLAGS {flags} (`study.xla_backend_optimization_level`, "
                "to cut compile time): LLVM's lighter pipeline" + (
                    f"; {benchmark}" if benchmark else "") + ".")]
