"""The low-resource double bind study: plan and bad input, metrics against sacrebleu and
by hand, frequency buckets, vocabulary mismatch (the end-to-end smoke runs in
tests/studies/test_all_studies.py -k low_resource_mt)."""

from __future__ import annotations

import numpy as np
import pytest
import sacrebleu

from experiments.configs import low_resource_mt as config_lib
from tradeoffs import errors
from tradeoffs.data import subwords
from tradeoffs.studies import low_resource_mt as study
from tradeoffs.translation import metrics


def test_plan_names_sources_and_knobs():
  variants = study.plan(config_lib.get_config())
  names = [v.name for v in variants]
  assert len(names) == 2 * (1 + 1 * 2)  # two levels × (dense + 1 sparsity × 2 schedules)
  assert names[:3] == ["dense_low", "gradual_s70_low", "oneshot_s70_low"]
  assert {v.source for v in variants if v.name.endswith("_high")} == {None, "dense_high"}
  assert variants[1].knobs == {"resource": "low", "sparsity": 0.7, "schedule": "gradual"}


def test_full_variant_plans_every_sparsity_of_the_paper_grid():
  config = config_lib.get_config("full")
  study.validate(config)
  names = [v.name for v in study.plan(config)]
  assert len(names) == 2 * (1 + 3 * 2)
  assert {"gradual_s50_low", "oneshot_s90_high", "gradual_s70_high"} <= set(names)


@pytest.mark.parametrize("field,value,match", [
    ("num_buckets", 0, r"--config.study.num_buckets=0: expected an integer in \[1, 100\]"),
    ("sparsities", (0.0, 1.0), r"--config.study.sparsities=1.0"),
    ("resources", ("low", "mid"), r"--config.study.resources=\('low', 'mid'\)"),
    ("schedules", ("cubic",), r"--config.study.schedules"),
    ("members", 1, r"--config.study.members=1"),
    ("max_length", 2, r"--config.study.max_length=2"),
])
def test_bad_config_values(field, value, match):
  config = config_lib.get_config("smoke")
  config.study[field] = value
  with pytest.raises(ValueError, match=match):
    study.plan(config)


def test_model_max_length_is_the_study_field():
  config = config_lib.get_config("smoke")
  config.study.model.max_length = 8
  with pytest.raises(ValueError, match="max_length is --config.study.max_length"):
    study.plan(config)


def test_chrf_and_bleu_equal_sacrebleu_and_hand_values():
  hyp = ["the cat sat on the mat", "a dog barked loudly"]
  ref = ["the cat is on the mat", "the dog barked"]
  assert metrics.chrf(hyp, ref) == pytest.approx(sacrebleu.CHRF().corpus_score(hyp, [ref]).score)
  assert metrics.bleu(hyp, ref) == pytest.approx(sacrebleu.BLEU().corpus_score(hyp, [ref]).score)
  assert metrics.chrf(ref, ref) == pytest.approx(100.0)
  assert metrics.bleu(ref, ref) == pytest.approx(100.0)
  assert metrics.chrf(["xyz"], ["abc"]) == 0.0
  # BLEU by hand for one sentence: hyp 'a b c d', ref 'a b c e': p1..p4 = 3/4, 2/3, 1/2, 0/1
  # -> smoothed (sacrebleu's default 'exp' smoothing) p4 = 1/(2^1 * 1) = 1/2; BP = 1.
  want = 100 * np.exp(np.mean(np.log([3 / 4, 2 / 3, 1 / 2, 1 / 2])))
  assert metrics.bleu(["a b c d"], ["a b c e"]) == pytest.approx(want, rel=1e-6)


def test_score_per_member_and_buckets_partition():
  refs = ["uno dos", "tres cuatro", "cinco", "seis siete"]
  hyps = [refs, ["uno", "tres", "x", "seis siete"]]
  buckets = np.array([0, 1, 0, 1])
  out = metrics.score(hyps, hyps, refs, buckets, 2)
  assert out["chrf"][0] == pytest.approx(100.0)
  assert out["bucket_chrf"][1][1] == pytest.approx(metrics.chrf(["tres", "seis siete"],
                                                              [refs[1], refs[3]]))
  assert len(out["bucket_chrf"][1]) == 2


def test_vocabulary_mismatch_is_refused():
  vocab = subwords.train_bpe(["a b c", "a b"], 2)
  study.check_vocabulary(vocab.digest, vocab)
  study.check_vocabulary(None, vocab)  # nothing recorded yet
  with pytest.raises(errors.ConfigError, match="vocabulary mismatch"):
    study.check_vocabulary("0" * 16, vocab)


def test_training_rows_give_both_levels_one_shape_and_even_weights():
  low = study.training_rows(6, 27, "low")
  high = study.training_rows(6, 27, "high")
  assert len(low) == len(high) == 24  # k = 27 // 6 = 4 copies of the low level
  np.testing.assert_array_equal(np.bincount(low), np.full(6, 4))  # every low pair 4 times
  assert len(set(high.tolist())) == 24 and high.max() < 27 and np.all(np.diff(high) > 0)
  np.testing.assert_array_equal(study.training_rows(6, 27, "high", seed=0), high)
  assert len(study.training_rows(10, 7, "low")) == 10  # more low than high: no repetition


def test_test_sentence_longer_than_max_length_is_one_config_error():
  import types
  config = config_lib.get_config("smoke")
  config.study.max_length = 8
  ctx = types.SimpleNamespace(config=config, cache={}, records={})
  with pytest.raises(errors.ConfigError,
                     match=r"--config.study.max_length=8: .*more than the model's max_length 8"):
    study._data(ctx, "low")  # noqa: SLF001


def test_null_floors_score_copying_and_the_most_frequent_target_by_sacrebleu():
  sources = ["In the beginning God created", "Jesus wept."]
  ood = ["In the beginning God made", "Jesus wept"]
  refs = ["En el principio creó Dios", "Y lloró Jesús."]
  train_targets = ["Amén.", "Selah.", "Amén.", "Selah.", "Amén."]  # the mode: "Amén."
  floors = metrics.null_floors(sources, ood, refs, train_targets)
  assert floors["most_frequent_target"] == "Amén."
  assert floors["copy_source_chrf"] == pytest.approx(
      sacrebleu.corpus_chrf(sources, [refs]).score)
  assert floors["copy_source_ood_chrf"] == pytest.approx(
      sacrebleu.corpus_chrf(ood, [refs]).score)
  assert floors["copy_source_ood_chrf"] != floors["copy_source_chrf"]  # not swapped
  assert floors["most_frequent_target_chrf"] == pytest.approx(
      sacrebleu.corpus_chrf(["Amén.", "Amén."], [refs]).score)
  # A tie goes to the first seen.
  assert metrics.null_floors(sources, ood, refs, ["b", "a", "a", "b"])[
      "most_frequent_target"] == "b"


def _dense_record(name, chrf_values, copy, frequent):
  return {"variant": name, "source": None, "members": len(chrf_values),
          "accuracy": {"per_member_chrf": chrf_values},
          "study_fields": {"floors": {"copy_source_chrf": copy, "copy_source_ood_chrf": copy,
                                      "most_frequent_target_chrf": frequent}}}


def test_the_report_tests_dense_models_against_their_floors():
  below = study._learned([_dense_record("dense_low", [9.0, 9.5, 8.7], 17.8, 3.0)])
  text = " ".join(str(b) for b in below)
  assert "Did the dense models learn?" in text and "Not every dense population" in text
  above = study._learned([_dense_record("dense_low", [30.0, 31.0, 30.5], 17.8, 3.0)])
  assert "Every dense population is above both floors" in " ".join(str(b) for b in above)
  # A pruned variant (with a source) is not tested against the floors.
  assert study._learned([{**_dense_record("gradual_s70_low", [1, 2, 3], 5, 1),
                          "source": "dense_low"}]) == []
