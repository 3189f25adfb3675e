"""Squeezed speech encoders: where SEW's squeeze and compact extractor save time, and for whom
they cost digit errors (Wu et al. 2021; PAPERS.md section 5).

    config → for every Transformer encoder size × extractor {original, compact} × squeeze
    s: a population trained from scratch with CTC on `spoken_digits` → digit error rate
    (DER) on the seen-voice test and the held-out-voice test, per voice family, against
    latency per utterance, FLOPs, parameters and peak memory → verdicts against the
    original extractor at s = 1 of the same encoder size

Formulations chosen:
  * model: `tradeoffs.models.speech` (`speech_ctc`): waveform extractor → LayerNorm and
    projection → squeeze (average pool + strided position conv) → pre-LN Transformer →
    upsampling → CTC head. No wav2vec 2.0 pre-training (out of reach on 2 CPU cores): every
    variant is trained from scratch with CTC, so this measures the architectures' cost in a
    supervised low-data regime, not SEW's pre-train-then-fine-tune setting.
  * DER = Σ edit distance(greedy CTC decoding, reference digits) / Σ reference digits over
    a split (per member); per voice family the same sums over the family's utterances;
    worst family = each member's highest family DER (on the seen-voice test); the
    speaker-shift cost = held-out-voice DER − seen-voice DER.
  * cost: `tradeoffs.efficiency.measure` on member 0: latency per utterance is the median
    of repeated batch-1 forward passes (with its 10-90% spread), FLOPs from XLA's cost
    analysis, peak bytes from XLA's buffer assignment.
  * stuck members: a member that decodes every seen-voice test utterance to nothing (CTC
    stuck emitting blanks) is counted per variant in the report and stays in every mean.
  * `study.only` runs named variants of the grid (each encoder size's reference among
    them); `study.xla_backend_optimization_level` is applied by the binary to XLA_FLAGS
    before JAX starts (`base.xla_flags`), and the report flags latencies measured under it.
  * members of every variant share seeds by index (init, batch order, dropout), so
    verdicts are paired t over members; one Holm family per encoder size (every variant ×
    {DER, held-out DER, worst-family DER} against that size's reference).
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

import ml_collections
import numpy as np

from tradeoffs import stats
from tradeoffs.data import spoken_digits
from tradeoffs.models import speech
from tradeoffs.report import figures
from tradeoffs.report import format as fmt
from tradeoffs.report import verdict as verdict_lib
from tradeoffs.studies import base
from tradeoffs.studies import recipes
from tradeoffs.train import population as pop_lib

NAME = "squeezed_speech"
TITLE = "Squeezed speech encoders: what SEW's squeeze and compact extractor cost"
TECHNIQUE = "speech_ctc"
ENCODER = re.compile(r"^(\d+)x(\d+)$")
# XLA:CPU backend levels below this compile unoptimised code (latencies not the models').
METRICS = {"DER": "accuracy.per_member_der",
           "held-out-voice DER": "accuracy.per_member_der_heldout_voice",
           "worst-family DER": "accuracy.per_member_worst_family_der"}


def parse_encoder(text: Any) -> tuple[int, int]:
  """'2x64' -> (layers 2, d_model 64); ValueError naming the config field otherwise."""
  match = ENCODER.match(str(text))
  if not match or int(match[1]) < 1 or int(match[2]) < 4 or int(match[2]) % 4:
    raise ValueError(f"--config.study.encoders has {text!r}: expected '<layers>x<d_model>' "
                     "with layers >= 1 and d_model a multiple of 4 (4 heads)")
  return int(match[1]), int(match[2])


def _name(extractor: str, squeeze: int, encoder: str) -> str:
  return f"{extractor}_s{squeeze}_{encoder}"


def reference_name(config: Any, encoder: str) -> str:
  """The reference of an encoder size: the first extractor at the smallest squeeze."""
  s = config.study
  return _name(base.as_tuple(s.extractors)[0], min(base.as_tuple(s.squeezes)), encoder)


def validate(config: Any) -> None:
  if "study" not in config:
    raise ValueError("config has no 'study' section; use "
                     "experiments/configs/squeezed_speech.py")
  s = config.study
  extractors, squeezes, encoders = (base.as_tuple(s[k]) for k in
                                    ("extractors", "squeezes", "encoders"))
  for key, values in (("extractors", extractors), ("squeezes", squeezes),
                      ("encoders", encoders)):
    if not values or len(set(values)) != len(values):
      raise ValueError(f"--config.study.{key}={values!r} must be non-empty without duplicates")
  for e in extractors:
    if e not in speech.EXTRACTORS:
      raise ValueError(f"--config.study.extractors has {e!r}; choose from "
                       f"{list(speech.EXTRACTORS)}")
  frames = speech.feature_length(spoken_digits.NUM_SAMPLES)
  for q in squeezes:
    base.check_number(q, "study.squeezes", 1, frames, integer=True)
    if frames % int(q):
      raise ValueError(f"--config.study.squeezes has {q}: the squeeze factor must divide the "
                       f"feature length ({frames} frames of {spoken_digits.NUM_SAMPLES} "
                       f"samples); choose divisors of {frames}")
  for e in encoders:
    parse_encoder(e)
  only = base.as_tuple(s.get("only", ()))
  if only:
    grid = {_name(e, int(q), enc) for e in extractors for q in squeezes for enc in encoders}
    unknown = sorted(set(only) - grid)
    if unknown:
      raise ValueError(f"--config.study.only has {unknown}, not in the grid; choose from "
                       f"{sorted(grid)}")
    missing = sorted({reference_name(config, enc) for enc in encoders} - set(only))
    if missing:
      raise ValueError(f"--config.study.only={only!r} leaves out the reference(s) {missing} "
                       "the verdicts compare against; add them")
  level = s.get("xla_backend_optimization_level", None)
  if level is not None:
    base.check_number(level, "study.xla_backend_optimization_level", 0, 3, integer=True)
  base.check_number(s.original_channels, "study.original_channels", 1, integer=True)
  base.check_number(s.compact_channels, "study.compact_channels", 1, integer=True)
  if config.dataset.name != spoken_digits.NAME:
    raise ValueError(f"--config.dataset.name={config.dataset.name!r}: this study needs "
                     f"{spoken_digits.NAME!r} (held-out voices, voice families)")
  base.check_number(config.population.members, "population.members", 1, integer=True)


def plan(config: Any) -> list[base.Variant]:
  validate(config)
  s = config.study
  only = set(base.as_tuple(s.get("only", ())))
  out = []
  for encoder in base.as_tuple(s.encoders):
    layers, d = parse_encoder(encoder)
    reference = reference_name(config, encoder)
    for extractor in base.as_tuple(s.extractors):
      for q in base.as_tuple(s.squeezes):
        tc = base.training_config(config)
        channels = int(s.original_channels if extractor == "original" else
                       s.compact_channels)
        kwargs = dict(extractor=extractor, conv_channels=channels, squeeze=int(q),
                      num_layers=layers, d_model=d, ffn_dim=4 * d, num_heads=4)
        tc.model.kwargs = ml_collections.ConfigDict({**tc.model.kwargs.to_dict(), **kwargs})
        name = _name(extractor, int(q), encoder)
        if only and name not in only:
          continue
        out.append(base.Variant(name, TECHNIQUE, {**kwargs, "encoder": encoder},
                                None if name == reference else reference, tc))
  return out


def split_scores(logits: np.ndarray, split: Any) -> dict[str, Any]:
  """Per-member DER overall and per voice family of one split, and the fraction of
  utterances decoded to nothing (all blank); logits [M, N, T, K]."""
  per_member, families, empty = [], {f: [] for f in spoken_digits.FAMILIES}, []
  family = split.groups[:, 0]
  for member_logits in logits:
    hyp, hyp_lengths = speech.greedy_ctc_decode(member_logits, blank=logits.shape[-1] - 1)
    errors, lengths = speech.error_counts(np.asarray(hyp), split.targets)
    empty.append(float(np.mean(np.asarray(hyp_lengths) == 0)))
    per_member.append(errors.sum() / lengths.sum())
    for i, f in enumerate(spoken_digits.FAMILIES):
      mask = family == i
      families[f].append(errors[mask].sum() / max(lengths[mask].sum(), 1))
  return {"der": [float(v) for v in per_member], "empty": empty,
          "families": {f: [float(v) for v in v_] for f, v_ in families.items()}}


def stuck_members(empty_fractions: Sequence[float]) -> int:
  """Members that decode every seen-voice test utterance to nothing: CTC stuck at blank."""
  return int(sum(f >= 1.0 for f in empty_fractions))


def produce(ctx: Any, variant: base.Variant) -> base.Outcome:
  tc = variant.train_config
  trained = ctx.train(variant)
  dataset = ctx.dataset(tc)
  scores = {}
  for split_name in ("test", "heldout_voice"):
    split = getattr(dataset, split_name)
    flat = pop_lib.predict(trained.state, split.waveforms, int(tc.eval.batch_size),
                           trained.mesh)
    logits = flat.reshape(flat.shape[0], flat.shape[1], -1, dataset.num_classes)
    scores[split_name] = split_scores(logits, split)
  test, held = scores["test"], scores["heldout_voice"]
  worst = [max(test["families"][f][m] for f in spoken_digits.FAMILIES)
           for m in range(len(test["der"]))]
  mean = lambda v: float(np.mean(v))  # noqa: E731
  accuracy = {"der": mean(test["der"]), "per_member_der": test["der"],
              "der_heldout_voice": mean(held["der"]),
              "per_member_der_heldout_voice": held["der"],
              "worst_family_der": mean(worst), "per_member_worst_family_der": worst,
              "per_member_empty_fraction": test["empty"],
              "stuck_members": stuck_members(test["empty"])}
  for split_name, suffix in (("test", ""), ("heldout_voice", "_heldout_voice")):
    for f, values in scores[split_name]["families"].items():
      accuracy[f"per_member_der_{f}{suffix}"] = values
  family_means = {f: mean(v) for f, v in test["families"].items()}
  hidden = {"worst_family": max(family_means, key=family_means.get),
            "worst_family_der": mean(worst),
            "heldout_voice_gap": mean(held["der"]) - mean(test["der"]),
            "stuck_members": stuck_members(test["empty"])}
  efficiency = recipes.measure_member(ctx, trained.state, tc)
  fields = {"feature_frames": speech.feature_length(dataset.input_shape[0]),
            "transformer_frames": speech.feature_length(dataset.input_shape[0])
            // int(variant.knobs["squeeze"]),
            "train_seconds": trained.seconds, "train_utterances": len(dataset.train),
            "test_utterances": len(dataset.test),
            "heldout_voice_utterances": len(dataset.heldout_voice)}
  return base.Outcome(members=len(test["der"]), efficiency=efficiency, logits=None,
                      accuracy=accuracy, hidden_costs=hidden, study_fields=fields)


# ---------------------------------------------------------------------------------------
# The report.


def _values(record: Mapping[str, Any], path: str) -> list[float]:
  section, key = path.split(".")
  return list((record.get(section) or {}).get(key) or [])


def _ci(values: Sequence[float]) -> str:
  if not values:
    return fmt.DASH
  mean, low, high = stats.t_interval(values)
  if len(values) < 2:
    return f"{100 * mean:.1f}"
  return f"{100 * mean:.1f} [{100 * low:.1f}, {100 * high:.1f}]"


def _eff(record: Mapping[str, Any], key: str) -> float:
  value = (record.get("efficiency") or {}).get(key)
  return float(value) if isinstance(value, (int, float)) else float("nan")


def _ratio(record: Mapping[str, Any], reference: Mapping[str, Any] | None, key: str) -> str:
  if reference is None:
    return fmt.DASH
  value = _eff(record, key) / _eff(reference, key)
  return f"{value:.2f}×" if np.isfinite(value) else fmt.DASH


def _stuck(record: Mapping[str, Any]) -> str:
  """'k of M': members whose every seen-voice test utterance decodes to nothing."""
  stuck = (record.get("accuracy") or {}).get("stuck_members")
  return fmt.DASH if stuck is None else f"{int(stuck)} of {record.get('members', '?')}"


def _by_encoder(records: Sequence[Mapping[str, Any]]) -> dict[str, list[Mapping[str, Any]]]:
  out: dict[str, list[Mapping[str, Any]]] = {}
  for r in records:
    out.setdefault(str((r.get("knobs") or {}).get("encoder")), []).append(r)
  return out


def _reference(group: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
  return next((r for r in group if r.get("source") is None), None)


def claims(group: Sequence[Mapping[str, Any]]) -> list[stats.Comparison]:
  """Every variant's DERs against the encoder size's reference: one Holm family, paired
  over members (shared seeds)."""
  ref = _reference(group)
  if ref is None:
    return []
  out = []
  for r in group:
    if r is ref:
      continue
    for label, path in METRICS.items():
      a, b = _values(r, path), _values(ref, path)
      if a and len(a) == len(b):
        out.append(stats.compare(a, b, paired=True, claim=f"{r['variant']}: {label}"))
  return stats.family(out)


def plot_frontier(records: Sequence[Mapping[str, Any]]):
  """DER (seen voices, held-out voices) against latency per utterance."""
  if not records:
    return None
  fig, axs = figures.new(2)
  squeezes = sorted({int(r["knobs"]["squeeze"]) for r in records})
  encoders = list(_by_encoder(records))
  markers = {"original": "o", "compact": "s"}
  for ax, (title, path) in zip(axs, (("seen-voice test", METRICS["DER"]),
                                     ("held-out voices", METRICS["held-out-voice DER"]))):
    for r in records:
      k = r["knobs"]
      values = _values(r, path)
      if not values:
        continue
      mean, low, high = stats.t_interval(values)
      err = None if not np.isfinite(low) else [[100 * (mean - low)], [100 * (high - mean)]]
      ax.errorbar(_eff(r, "latency_ms"), 100 * mean, yerr=err, fmt=markers[k["extractor"]],
                  color=figures.color(squeezes.index(int(k["squeeze"]))),
                  ms=5 + 3 * encoders.index(str(k["encoder"])), alpha=0.85, capsize=2)
    ax.set_xscale("log")
    ax.set_xlabel("latency per utterance, ms (batch 1, log scale)")
    ax.set_ylabel("digit error rate, % (↓ better)")
    ax.set_title(title)
  from matplotlib.lines import Line2D
  handles = ([Line2D([], [], marker=m, ls="", color="0.3") for m in markers.values()]
             + [Line2D([], [], marker="o", ls="", color=figures.color(i))
                for i in range(len(squeezes))])
  axs[0].legend(handles, [f"{e} extractor" for e in markers] + [f"s = {s}" for s in squeezes],
                fontsize=7)
  return fig


def _cost_sentence(r: Mapping[str, Any], ref: Mapping[str, Any],
                   found: Mapping[str, stats.Comparison]) -> str:
  k = r["knobs"]
  parts = [f"{r['variant']} (extractor {k['extractor']}, s = {k['squeeze']}): latency "
           f"{_ratio(r, ref, 'latency_ms')}, FLOPs {_ratio(r, ref, 'flops')}, params "
           f"{_ratio(r, ref, 'params')} of {ref['variant']}"]
  for label in METRICS:
    c = found.get(f"{r['variant']}: {label}")
    if c is not None:
      parts.append(f"{label} {fmt.signed(100 * c.estimate)} pt "
                   f"{fmt.interval(100 * c.low, 100 * c.high)} ({c.verdict})")
  hidden = r.get("hidden_costs") or {}
  if hidden.get("worst_family"):
    parts.append(f"its worst voice family on the seen-voice test: {hidden['worst_family']} "
                 f"(reference: {(ref.get('hidden_costs') or {}).get('worst_family', '?')})")
  return "; ".join(parts) + "."


def sections(records: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[Any, ...]]:
  records = [r for r in records if r.get("technique") == TECHNIQUE]
  any_record = records[0] if records else {}
  tc = any_record.get("config") or {}
  train = tc.get("train") or {}
  n = lambda key: (any_record.get("study_fields") or {}).get(key, "?")  # noqa: E731
  blocks: list[tuple[Any, ...]] = [("h2", "Setting"), ("p", (
      f"Every variant is a population of {any_record.get('members', '?')} members sharing "
      f"seeds by member index, trained from scratch with CTC for {train.get('steps', '?')} "
      f"steps at batch {train.get('batch_size', '?')} on {n('train_utterances')} training "
      "utterances of `spoken_digits` (16 espeak-ng voices in 3 families, 6 English accents; "
      "8 kHz, "
      "padded to 48 extractor frames of 40 ms). No wav2vec 2.0 pre-training: SEW's results "
      "are for pre-trained encoders fine-tuned on LibriSpeech, these are not. Scored: DER "
      f"of greedy CTC decoding on {n('test_utterances')} seen-voice and "
      f"{n('heldout_voice_utterances')} held-out-voice utterances (voices "
      "m8, f5, klatt6); intervals are 95% t intervals over members; latency per utterance "
      "is member 0's median batch-1 forward pass on this machine's CPU, measured once per "
      "variant (its 10-90% spread in the table), not over seeds. Variants are timed "
      "minutes apart, so on a shared machine their latency ratios carry the load's drift; "
      "`experiments/benchmarks/speech_encoder.py` times every extractor × squeeze "
      "interleaved in one process (ratios per round), the comparison to trust for latency."
      ))]
  blocks += base.compile_level_blocks(
      records, "`experiments/benchmarks/speech_encoder.py --compare_level` times its forward "
      "passes against XLA's default level")
  figure = plot_frontier(records)
  if figure is not None:
    blocks.append(("figure", "squeezed_speech_frontier.png", figure,
                   "Digit error rate against latency per utterance; marker: extractor, "
                   "colour: squeeze factor s, size: encoder size; bars: 95% t intervals "
                   "over members."))
  for encoder, group in _by_encoder(records).items():
    ref = _reference(group)
    headers = ["Variant", "Params", "FLOPs", "Latency ms [p10, p90]", "× ref latency",
               "Peak bytes", "DER % [95% CI]", "Held-out DER %", "Worst family DER %",
               "Stuck members"]
    rows = [[r["variant"], fmt.number(_eff(r, "params")), fmt.number(_eff(r, "flops")),
             f"{_eff(r, 'latency_ms'):.3g} [{_eff(r, 'latency_p10_ms'):.3g}, "
             f"{_eff(r, 'latency_p90_ms'):.3g}]", _ratio(r, ref, "latency_ms"),
             fmt.number(_eff(r, "peak_bytes")), _ci(_values(r, METRICS["DER"])),
             _ci(_values(r, METRICS["held-out-voice DER"])),
             _ci(_values(r, METRICS["worst-family DER"])), _stuck(r)] for r in group]
    blocks += [("h2", f"Encoder {encoder} (layers × d_model): cost and errors"),
               ("table", headers, rows),
               ("p", "Stuck members: members that decode every seen-voice test utterance "
                     "to nothing (CTC stuck at the blank); they stay in every mean and "
                     "interval (DER 100% each).")]
    fam_headers = ["Variant"] + [f"{f} {where}" for where in ("seen", "held-out")
                                 for f in spoken_digits.FAMILIES]
    fam_rows = [[r["variant"]] + [_ci(_values(r, f"accuracy.per_member_der_{f}{suffix}"))
                                  for suffix in ("", "_heldout_voice")
                                  for f in spoken_digits.FAMILIES] for r in group]
    blocks += [("h2", f"Encoder {encoder}: DER % per voice family [95% CI]"),
               ("table", fam_headers, fam_rows)]
    found = claims(group)
    if found and ref is not None:
      by_claim = {c.claim: c for c in found}
      blocks += [("h2", f"Encoder {encoder}: verdicts against {ref['variant']}"),
                 ("p", f"{len(found)} claims, one Holm family; paired t over members "
                       "(shared seeds); Δ DER in percentage points (positive: more errors)."),
                 verdict_lib.table(found)]
      blocks += [("p", _cost_sentence(r, ref, by_claim)) for r in group if r is not ref]
  blocks += [("h2", "What the paper reports"), ("p", (
      "Wu et al. (2021) report for pre-trained encoders fine-tuned on LibriSpeech 100h: "
      "SEW gives a 1.9× inference speed-up over wav2vec 2.0 with a 13.5% relative WER "
      "reduction, and 25-50% lower WER at similar inference time (PAPERS.md §5). Here the "
      "encoders are small, trained from scratch on 900 synthetic utterances, and timed on "
      "a shared CPU: read the ratios for where the time goes at this scale, and the "
      "verdicts for whether the squeeze or the compact extractor costs digit errors; a "
      "difference the intervals cannot resolve is reported as none detected."))]
  return blocks
