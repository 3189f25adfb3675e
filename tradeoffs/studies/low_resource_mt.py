"""The low-resource double bind (Ahia, Kreutzer & Hooker 2021; PAPERS.md section 12): does
magnitude pruning cost a low-resource translation model more, and its rare-token and
out-of-domain sentences most?

Data: `bible_en_es` (WEB English → Reina-Valera 1909 Spanish, `tradeoffs.data.bible`) at two
resource levels (6,000 and 25,778 training pairs; the same test verses), with the KJV English
of the test verses as the out-of-domain source. One BPE vocabulary
(`tradeoffs.data.subwords`) learned on the low-resource training split (a subset of the
high-resource one, so no test text is seen and both levels share one model shape).

Variants, per resource level: `dense_<level>` (a population of `members` pre-LN
encoder–decoders, `transformer_seq2seq`, token cross-entropy with teacher forcing);
`gradual_s<pct>_<level>`: the same members (same init and data seeds) trained with Zhu &
Gupta gradual magnitude pruning (`tradeoffs.sparsity.masked`, global magnitude, cubic ramp
over the middle of training); `oneshot_s<pct>_<level>`: the trained dense members pruned
once by global magnitude at the end, without fine-tuning (derived, paired per member).

Scores (greedy decoding, `sacrebleu` computed locally): corpus chrF and BLEU per member on
the in-domain test and the out-of-domain (KJV-source) test, and chrF per source-frequency
bucket: the mean training-set frequency of each test sentence's source subwords, cut into
`num_buckets` quantile buckets (bucket 0 = rarest). Δ against the dense population of the
same level with paired t intervals over members, Holm-corrected per section.

Null floors (`tradeoffs.translation.metrics.null_floors`): what a model scores without
translating — the English source copied as the output (English and Spanish share names,
numbers and many subword characters, so chrF is far from 0) and the most frequent training
target sentence for every input. The report tests each dense population against both before reading any Δ: a
Δ between models that are not above copying the source says nothing about translation.
"""

from __future__ import annotations

import math
import types
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tradeoffs import errors
from tradeoffs import models
from tradeoffs import sparsity
from tradeoffs import stats
from tradeoffs.data import bible
from tradeoffs.data import subwords
from tradeoffs.models import transformer as tf
from tradeoffs.report import format as fmt
from tradeoffs.translation import metrics
from tradeoffs.report import verdict as verdict_lib
from tradeoffs.studies import base
from tradeoffs.train import mesh as mesh_lib
from tradeoffs.train import population as pop_lib
from tradeoffs.train import seeds as seeds_lib

NAME = "low_resource_mt"
TITLE = "The low-resource double bind: what pruning costs translation, and for which sentences"
SCHEDULES = ("gradual", "one_shot")
_tuple = base.as_tuple


# ---------------------------------------------------------------------------------------
# Plan.


def validate(config: Any) -> None:
  if "study" not in config:
    raise ValueError("config has no 'study' section; use experiments/configs/low_resource_mt.py")
  s = config.study
  resources = _tuple(s.resources)
  if not resources or len(set(resources)) != len(resources) or any(
      r not in bible.RESOURCE_LEVELS for r in resources):
    raise ValueError(f"--config.study.resources={resources!r}: expected distinct levels from "
                     f"{sorted(bible.RESOURCE_LEVELS)}")
  for v in _tuple(s.sparsities):
    base.check_number(v, "study.sparsities", 0.0, 1.0, high_open=True)
  schedules = _tuple(s.schedules)
  if any(x not in SCHEDULES for x in schedules):
    raise ValueError(f"--config.study.schedules={schedules!r}: expected names from {SCHEDULES}")
  base.check_number(s.num_buckets, "study.num_buckets", 1, 100, integer=True)
  base.check_number(s.members, "study.members", 2, 64, integer=True)
  base.check_number(s.steps, "study.steps", 1, 10**6, integer=True)
  base.check_number(s.batch_size, "study.batch_size", 1, 4096, integer=True)
  base.check_number(s.learning_rate, "study.learning_rate", 0.0, 1.0, low_open=True)
  base.check_number(s.num_merges, "study.num_merges", 0, 10**5, integer=True)
  base.check_number(s.max_length, "study.max_length", 4, 4096, integer=True)
  base.check_number(s.max_test_examples, "study.max_test_examples", 0, 10**6, integer=True)
  base.check_number(s.max_train_examples, "study.max_train_examples", 0, 10**6, integer=True)
  kwargs = dict(s.model)
  unknown = sorted(set(kwargs) - set(models.accepted_kwargs("transformer_seq2seq")))
  if unknown or "max_length" in kwargs:
    raise ValueError(f"--config.study.model has {unknown or ['max_length']}, which "
                     "transformer_seq2seq does not take here (max_length is "
                     "--config.study.max_length)")


def _pct(s: float) -> str:
  return f"{round(100 * s):d}"


def plan(config: Any) -> list[base.Variant]:
  validate(config)
  s = config.study
  out = []
  for level in _tuple(s.resources):
    dense = f"dense_{level}"
    out.append(base.Variant(dense, "dense", {"resource": level, "sparsity": 0.0,
                                             "schedule": "dense"}))
    for sp in sorted({float(v) for v in _tuple(s.sparsities)} - {0.0}):
      for schedule in _tuple(s.schedules):
        short = "gradual" if schedule == "gradual" else "oneshot"
        out.append(base.Variant(f"{short}_s{_pct(sp)}_{level}", f"{schedule}_magnitude",
                                {"resource": level, "sparsity": sp, "schedule": schedule},
                                dense))
  return out


# ---------------------------------------------------------------------------------------
# Data, training, scoring.


def check_vocabulary(expected: str | None, vocab: subwords.Vocabulary) -> None:
  """Refuses a trained population whose vocabulary differs from the data's."""
  if expected is not None and expected != vocab.digest:
    raise errors.ConfigError(
        f"vocabulary mismatch: the trained model was built with vocabulary {expected}, the "
        f"data encodes with {vocab.digest} (another --config.study.num_merges or data); "
        "use a new --workdir")


def _vocab(ctx: Any) -> subwords.Vocabulary:
  if "vocab" not in ctx.cache:
    s = ctx.config.study
    train = _limit(bible.load("low").train, int(s.max_train_examples))
    ctx.cache["vocab"] = subwords.train_bpe(train.source + train.target, int(s.num_merges))
  return ctx.cache["vocab"]


def _limit(side: bible.Side, n: int) -> bible.Side:
  if not n or n >= len(side):
    return side
  return bible.Side(side.source[:n], side.target[:n], side.refs[:n])


def _usable(ctx: Any, level: str) -> tuple[bible.Side, list[int]]:
  """A level's training pairs and the indices of those whose both sides fit max_length."""
  key = f"usable:{level}"
  if key not in ctx.cache:
    s, vocab, length = ctx.config.study, _vocab(ctx), int(ctx.config.study.max_length)
    train = bible.load(level).train
    if int(s.max_train_examples):  # smoke: the low level keeps 1/4 of the high level's size
      n = int(s.max_train_examples) // (4 if level == "low" else 1)
      train = _limit(train, max(n, 1))
    fits = [i for i, (a, b) in enumerate(zip(train.source, train.target))
            if len(vocab.encode(a)) <= length and len(vocab.encode(b)) <= length]
    ctx.cache[key] = (train, fits)
  return ctx.cache[key]


def training_rows(low: int, high: int, level: str, seed: int = 0) -> np.ndarray:
  """Row indices into a level's usable pairs (`low` or `high` of them), the same count
  at both levels.

  One compiled training program serves both levels only if their arrays have one shape:
  the low level repeats each of its `low` pairs k = high // low times (every pair equally
  often, so batches sample the same distribution), the high level keeps a seeded subset of
  k · low of its `high` pairs (it loses fewer than `low`: ~7% at 6,000 / 25,778).
  """
  k = max(high // low, 1)
  if level == "low":
    return np.tile(np.arange(low), k)
  return np.sort(np.random.default_rng(seed).permutation(high)[:k * low])


def _data(ctx: Any, level: str) -> dict[str, Any]:
  key = f"data:{level}"
  if key in ctx.cache:
    return ctx.cache[key]
  s, vocab = ctx.config.study, _vocab(ctx)
  length = int(s.max_length)
  pairs = bible.load(level, max_test_examples=int(s.max_test_examples) or None)
  try:
    test_src = vocab.encode_batch(pairs.test.source, length)
    ood_src = vocab.encode_batch(pairs.test_ood.source, length)
  except ValueError as e:
    raise errors.ConfigError(f"--config.study.max_length={length}: {e}") from None
  train, fits = _usable(ctx, level)
  if not fits:
    raise errors.ConfigError(f"--config.study.max_length={length}: no {level}-resource "
                             "training pair fits (both sides, in subwords); raise it")
  # Whichever levels this run trains, so that a run of one level matches a run of both.
  counts = {r: len(_usable(ctx, r)[1]) for r in ("low", "high")}
  rows = [fits[i] for i in training_rows(counts["low"], counts["high"], level)]
  src = vocab.encode_batch([train.source[i] for i in rows], length)
  tgt = vocab.encode_batch([train.target[i] for i in rows], length)
  used = sorted(set(rows))
  freqs = subwords.token_frequencies(vocab, [train.source[i] for i in used])
  ctx.cache[key] = {
      "train_src": src, "train_tgt": tgt, "train_pairs": len(used),
      "dropped": len(train) - len(fits), "unused": len(fits) - len(used),
      "test_src": test_src, "ood_src": ood_src, "refs": list(pairs.test.target),
      "buckets": subwords.frequency_buckets(test_src, freqs, int(s.num_buckets)),
      "floors": metrics.null_floors(pairs.test.source, pairs.test_ood.source,
                                    list(pairs.test.target),
                                    [train.target[i] for i in fits])}
  return ctx.cache[key]


def _model(ctx: Any) -> Any:
  if "model" not in ctx.cache:
    s = ctx.config.study
    ctx.cache["model"] = models.get("transformer_seq2seq", num_classes=len(_vocab(ctx)),
                                    max_length=int(s.max_length), **dict(s.model))
  return ctx.cache["model"]


def _optimizer(ctx: Any, sparsity_level: float) -> optax.GradientTransformation:
  """One optimizer object per sparsity, shared by both levels: the train state carries it
  as static data, so a fresh (unequal) one would compile the training program again."""
  key = f"tx:{sparsity_level}"
  if key not in ctx.cache:
    s = ctx.config.study
    steps = int(s.steps)
    tx = optax.adamw(optax.warmup_cosine_decay_schedule(0.0, float(s.learning_rate),
                                                        max(1, steps // 10), steps),
                     weight_decay=0.0)
    if sparsity_level > 0:
      tx = sparsity.masked(tx, sparsity.gradual(sparsity_level, begin_step=steps // 5,
                                                end_step=max(steps // 5 + 1, 7 * steps // 10),
                                                frequency=max(1, steps // 20)))
    ctx.cache[key] = tx
  return ctx.cache[key]


def _train(ctx: Any, level: str, sparsity_level: float) -> Any:
  s, data = ctx.config.study, _data(ctx, level)
  steps = int(s.steps)
  tx = _optimizer(ctx, sparsity_level)
  members = int(s.members)
  mesh = mesh_lib.make_mesh(members)
  state = pop_lib.create_population(_model(ctx), tx, (int(s.max_length),), members,
                                    seeds_lib.Seeds(init=int(s.seed), data=int(s.seed),
                                                    dropout=int(s.seed)), mesh)
  split = types.SimpleNamespace(images=data["train_src"], labels=data["train_tgt"],
                                groups=np.zeros((len(data["train_src"]), 0), np.int32))
  device = pop_lib.to_device(split, mesh, {"decoder_inputs": np.asarray(
      tf.shift_right(jnp.asarray(data["train_tgt"])))})
  state, _ = pop_lib.fit(state, device, steps=steps, batch_size=int(s.batch_size), mesh=mesh,
                         steps_per_dispatch=steps, plan="scan_vmap",
                         loss_fn="token_cross_entropy", model_inputs=("decoder_inputs",))
  return jax.device_get(state.params)


def _prune(ctx: Any, sparsity_level: float):
  """One-shot global magnitude pruning per member, compiled once per sparsity (both levels
  share the model shape): `sparsity.population_masks` builds a new jit per call."""
  key = f"prune:{sparsity_level}"
  if key not in ctx.cache:
    def prune(params):
      masks = jax.vmap(lambda p: sparsity.magnitude_masks(p, sparsity_level, "global"))(params)
      return sparsity.apply_masks(params, masks)
    ctx.cache[key] = jax.jit(prune)
  return ctx.cache[key]


def _decode(ctx: Any, params: Any, source: np.ndarray) -> list[list[str]]:
  """Greedy translations per member (all members in one compiled, vmapped program)."""
  model, length = _model(ctx), int(ctx.config.study.max_length)
  key = "decode"
  if key not in ctx.cache:
    ctx.cache[key] = jax.jit(jax.vmap(
        lambda p, x: tf.greedy_decode(model, {"params": p}, x, length), in_axes=(0, None)))
  tokens = np.asarray(ctx.cache[key](params, jnp.asarray(source)))
  vocab = _vocab(ctx)
  return [[vocab.decode(row) for row in member] for member in tokens]


def produce(ctx: Any, variant: base.Variant) -> base.Outcome:
  k, s = variant.knobs, ctx.config.study
  level, sp = str(k["resource"]), float(k["sparsity"])
  vocab, data = _vocab(ctx), _data(ctx, level)
  dense_key = f"dense_params:{level}"
  if k["schedule"] == "gradual":
    params = _train(ctx, level, sp)
  else:
    if dense_key not in ctx.cache:  # also after a resume: retrain (deterministic)
      dense_record = ctx.records.get(f"dense_{level}") or {}
      check_vocabulary((dense_record.get("study_fields") or {}).get("vocabulary"), vocab)
      ctx.cache[dense_key] = _train(ctx, level, 0.0)
    params = ctx.cache[dense_key]
    if sp > 0:
      params = jax.device_get(_prune(ctx, sp)(params))
  hyps = _decode(ctx, params, data["test_src"])
  ood = _decode(ctx, params, data["ood_src"])
  per_member = metrics.score(hyps, ood, data["refs"], data["buckets"], int(s.num_buckets))
  accuracy = {m: float(np.mean(v)) for m, v in per_member.items() if m != "bucket_chrf"}
  accuracy.update({f"per_member_{m}": v for m, v in per_member.items()})
  buckets = np.asarray(per_member["bucket_chrf"])
  total = models.param_count(params) // int(s.members)
  nonzero = int(sum(np.count_nonzero(x) for x in jax.tree.leaves(params))) // int(s.members)
  hidden = {"worst_bucket_chrf": float(buckets.mean(0).min()),
            "ood_chrf_drop": accuracy["chrf"] - accuracy["ood_chrf"]}
  fields = {"resource": level, "train_pairs": int(data["train_pairs"]),
            "train_rows": int(len(data["train_src"])),
            "train_pairs_too_long": int(data["dropped"]),
            "train_pairs_unused": int(data["unused"]),
            "test_sentences": len(data["refs"]), "vocabulary": vocab.digest,
            "vocabulary_size": len(vocab),
            "bucket_sizes": np.bincount(data["buckets"], minlength=int(s.num_buckets)).tolist(),
            "floors": data["floors"],
            "example": {"source": bible.load(level).test.source[0], "hypothesis": hyps[0][0],
                        "reference": data["refs"][0]}}
  return base.Outcome(members=int(s.members), logits=None, accuracy=accuracy,
                      hidden_costs=hidden, study_fields=fields,
                      efficiency={"params": total, "nonzero_params": nonzero},
                      derived=k["schedule"] == "one_shot")


# ---------------------------------------------------------------------------------------
# Report.


def _member_values(record: Mapping[str, Any], metric: str) -> list[float] | None:
  values = (record.get("accuracy") or {}).get(f"per_member_{metric}")
  return [float(v) for v in values] if isinstance(values, list) and values else None


def _bucket_values(record: Mapping[str, Any], b: int) -> list[float] | None:
  rows = (record.get("accuracy") or {}).get("per_member_bucket_chrf")
  return [float(r[b]) for r in rows] if isinstance(rows, list) and rows else None


def _cell(values: list[float] | None) -> str:
  if not values:
    return fmt.DASH
  mean, low, high = stats.t_interval(values)
  return f"{mean:.1f} [{low:.1f}, {high:.1f}]" if math.isfinite(low) else f"{mean:.1f}"


def _deltas(record, dense, get) -> list[float] | None:
  a, b = get(record), get(dense)
  if a is None or b is None or len(a) != len(b):
    return None
  return [x - y for x, y in zip(a, b)]


def sections(records: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[Any, ...]]:
  records = list(records)
  by_name = {r["variant"]: r for r in records}
  num_buckets = max((len(((r.get("accuracy") or {}).get("per_member_bucket_chrf") or [[]])[0])
                     for r in records), default=0)
  members = max((int(r.get("members", 0)) for r in records), default=0)
  blocks: list[tuple[Any, ...]] = [
      ("h2", "Translation quality against sparsity"),
      ("p", f"Populations of {members} members per variant (the same init and data seeds "
            "across variants of a level, so Δs are paired per member); greedy decoding; "
            "corpus chrF and BLEU (sacrebleu) per member, mean [95% t interval]. "
            "Out-of-domain: the same test verses with the King James Version as source. "
            f"Buckets: {num_buckets} quantiles of the mean training frequency of a test "
            "sentence's source subwords (b0 = rarest).")]
  headers = (["Variant", "Train pairs", "Non-zero params", "chrF", "BLEU", "OOD chrF"]
             + [f"chrF b{b}" for b in range(num_buckets)])
  rows = []
  for r in records:
    f = r.get("study_fields") or {}
    rows.append([r["variant"], str(f.get("train_pairs", "")),
                 fmt.number((r.get("efficiency") or {}).get("nonzero_params")),
                 _cell(_member_values(r, "chrf")), _cell(_member_values(r, "bleu")),
                 _cell(_member_values(r, "ood_chrf"))]
                + [_cell(_bucket_values(r, b)) for b in range(num_buckets)])
  blocks.append(("table", headers, rows))
  blocks += _learned(records)
  claims, bind, rare = [], [], []
  for r in records:
    if r.get("source") is None or r["source"] not in by_name:
      continue
    dense = by_name[r["source"]]
    for metric, label in (("chrf", "chrF"), ("ood_chrf", "OOD chrF")):
      a, b = _member_values(r, metric), _member_values(dense, metric)
      if a and b and len(a) == len(b):
        claims.append(stats.compare(a, b, paired=True, claim=f"{r['variant']}: Δ {label}"))
    if num_buckets >= 2:
      d_rare = _deltas(r, dense, lambda x: _bucket_values(x, 0))
      d_freq = _deltas(r, dense, lambda x: _bucket_values(x, num_buckets - 1))
      if d_rare and d_freq:
        rare.append(stats.compare(d_rare, d_freq, paired=True,
                                  claim=f"{r['variant']}: Δ chrF rarest − Δ chrF most frequent"))
    if r["variant"].endswith("_low"):
      twin = by_name.get(r["variant"][:-len("_low")] + "_high")
      if twin is not None and twin.get("source") in by_name:
        d_low = _deltas(r, dense, lambda x: _member_values(x, "chrf"))
        d_high = _deltas(twin, by_name[twin["source"]], lambda x: _member_values(x, "chrf"))
        if d_low and d_high:
          bind.append(stats.compare(d_low, d_high, paired=False,
                                    claim=f"{r['variant'][:-4]}: Δ chrF low − Δ chrF high"))
  for title, text, family in (
      ("Pruned against dense", "Δ = pruned − dense chrF points (paired t over members).",
       claims),
      ("Does pruning cost the low-resource model more?",
       "Δ chrF of the low-resource level minus that of the high-resource level at the same "
       "sparsity and schedule (Welch t over members); negative: pruning costs the "
       "low-resource model more.", bind),
      ("Do rare-token sentences pay most?",
       "Δ chrF in the rarest bucket minus Δ chrF in the most frequent bucket (paired over "
       "members); negative: the rare-token sentences lose more.", rare)):
    if family:
      family = stats.family(family)
      blocks += [("h2", title), ("p", text + f" {len(family)} claims, Holm-corrected."),
                 verdict_lib.table(family, scale=1.0, unit="chrF")]
  return blocks


def _learned(records: Sequence[Mapping[str, Any]]) -> list[tuple[Any, ...]]:
  """"Did the dense models learn?": each dense population's chrF against the null floors
  of its level (one-sample t over members, Holm over the section)."""
  claims, floors_text = [], []
  for r in records:
    floors = (r.get("study_fields") or {}).get("floors")
    values = _member_values(r, "chrf")
    if r.get("source") is not None or not floors or not values:
      continue
    floors_text.append(f"{r['variant']}: copy the source {floors['copy_source_chrf']:.1f} "
                       f"(out-of-domain {floors['copy_source_ood_chrf']:.1f}), the most "
                       f"frequent training target {floors['most_frequent_target_chrf']:.1f}")
    for key, label in (("copy_source_chrf", "copying the source"),
                       ("most_frequent_target_chrf", "the most frequent target")):
      claims.append(stats.compare(values, [float(floors[key])] * len(values), paired=True,
                                  claim=f"{r['variant']}: chrF − {label}"))
  if not claims:
    return []
  family = stats.family(claims)
  above = all(c.verdict == stats.HIGHER for c in family)
  return [("h2", "Did the dense models learn?"),
          ("p", "chrF of outputs that do not translate (null floors): " + "; ".join(
              floors_text) + ". Each dense population against them, one-sample t over "
           f"members, {len(family)} claims, Holm-corrected. " + (
               "Every dense population is above both floors." if above else
               "Not every dense population is above both floors: the Δs below compare "
               "models that have not learned to translate better than these baselines, "
               "and say little about what pruning costs translation.")),
          verdict_lib.table(family, scale=1.0, unit="chrF")]
