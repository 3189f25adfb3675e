"""The loss_prioritization study: plan and validation (one clear error per bad knob), the
loss_prioritized recipe's records against independent recounts (changed labels, batches,
counts) and the verdict sections (the shared all-studies test covers running, schema,
reports and bad input through the binary)."""

from __future__ import annotations

import os

import jax
import numpy as np
import pytest

from experiments.configs import loss_prioritization as config_lib
from tradeoffs import data as data_lib
from tradeoffs import errors
from tradeoffs import stats
from tradeoffs.data import batching
from tradeoffs.data import noise as data_noise
from tradeoffs.report import records as records_lib
from tradeoffs.studies import loss_prioritization as study
from tradeoffs.studies import recipes
from tradeoffs.studies import runner
from tradeoffs.train import seeds as seeds_lib


def _small_config():
  c = config_lib.get_config("smoke")
  c.study.noise_rates = (0.4,)
  return c


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
  workdir = str(tmp_path_factory.mktemp("lp") / "wd")
  result = runner.run(study, _small_config(), workdir)
  assert result.finished
  return workdir


def test_plan_of_the_default_config():
  variants = runner.plan(study, config_lib.get_config())
  names = [v.name for v in variants]
  assert names[:5] == ["uniform_n0", "full_n0", "lossprop_n0", "sb_beta1_n0", "sb_beta2_n0"]
  assert len(names) == 15 and names[5] == "uniform_n20" and names[-1] == "sb_beta2_n40"
  for v in variants:
    assert v.technique == "loss_prioritized" and "study" not in v.train_config
    rate = v.knobs["label_noise"]
    assert v.source == (None if v.knobs["method"] == "uniform" else study.variant_name(
        "uniform", rate))
  assert "loss_prioritized" in recipes.RECIPES


@pytest.mark.parametrize("field,value,message", [
    ("betas", (1.0, 0.0), r"--config.study.betas=0.0: expected a number in \(0, inf\]"),
    ("betas", (-2.0,), r"--config.study.betas=-2.0"),
    ("noise_rates", (0.0, 1.0), r"--config.study.noise_rates=1.0: expected a number in "
                                r"\[0, 1\)"),
    ("noise_rates", (-0.1,), r"--config.study.noise_rates=-0.1"),
    ("noise_rates", (), r"--config.study.noise_rates=\(\)"),
    ("backward_fraction", 0.0, r"--config.study.backward_fraction=0.0"),
    ("methods", ("selective_backprop",), r"--config.study.methods=.*including 'uniform'"),
    ("history_size", 0, r"--config.study.history_size=0"),
    ("noise_kind", "random", r"--config.study.noise_kind='random'")])
def test_bad_study_knobs_are_one_clear_error(field, value, message):
  config = config_lib.get_config("smoke")
  config.study[field] = value
  with pytest.raises(errors.ConfigError, match=message):
    runner.plan(study, config)


def test_recipe_refuses_a_bad_beta_and_method():
  with pytest.raises(ValueError, match="knob 'beta'=0.0"):
    recipes.selection_extension("selective_backprop", 4, 0.0)
  with pytest.raises(ValueError, match="knob 'method'='topk'"):
    recipes.selection_extension("topk", 4, 1.0)


def test_records_count_backward_rows_and_noisy_shares_against_recounts(smoke_run):
  config = _small_config()
  records = {r["variant"]: r for r in records_lib.read_records(smoke_run)}
  assert sorted(records) == ["sb_beta1_n40", "uniform_n40"]
  data = data_lib.load("digits")
  labels, changed = data_noise.label_noise(data.train.labels, num_classes=10, rate=0.4,
                                           seed=0)
  ids = data_noise.read_changed_ids(os.path.join(smoke_run, "label_noise",
                                                 "rate0.4_seed0_uniform"))
  assert ids["train"] == data.train.ids[changed].tolist() and ids["rate"] == 0.4
  mask = np.zeros(len(labels), np.int64)
  mask[changed] = 1
  steps, batch = config.train.steps, config.train.batch_size
  k = round(config.study.backward_fraction * batch)
  seeds = seeds_lib.Seeds.from_config(config.seeds).member_keys(2)["data"]
  def member_batches(m):  # [steps, batch]: the trainer's rule, for every step at once
    return np.asarray(jax.vmap(lambda s: batching.batch_indices(
        seeds_lib.wrap(seeds[m]), s, len(labels), batch))(np.arange(steps)))

  forward_noisy = [int(mask[member_batches(m)].sum()) for m in range(2)]
  for r in records.values():
    f = r["study_fields"]
    assert f["backward_size"] == k and f["backward_examples"] == [k * steps] * 2
    assert f["forward_examples"] == [batch * steps] * 2
    assert all(0 < s <= k * steps for s in f["selected_examples"])
    assert f["changed_labels"] == len(changed) == round(0.4 * len(labels))
    np.testing.assert_allclose(f["forward_noisy_share"],
                               np.array(forward_noisy) / (batch * steps))
  # Uniform selection never pads: every backward row carries weight.
  assert records["uniform_n40"]["study_fields"]["selected_examples"] == [k * steps] * 2


def test_sections_draw_holm_families_against_uniform(smoke_run):
  records = records_lib.read_records(smoke_run)
  acc = study.accuracy_claims(records)
  assert [c.claim for c in acc] == ["sb_beta1_n40: clean top-1 vs uniform_n40"]
  by = {r["variant"]: r for r in records}
  expected = stats.compare(by["sb_beta1_n40"]["accuracy"]["per_member_top1"],
                           by["uniform_n40"]["accuracy"]["per_member_top1"], paired=False)
  assert acc[0].estimate == pytest.approx(expected.estimate)
  noisy = study.noise_claims(records)
  assert len(noisy) == 2 and all(c.test == "paired" for c in noisy)
  assert noisy[0].p_holm >= noisy[0].p
  text = str(study.sections(records, _small_config()))
  assert "Does prioritization up-weight mislabelled examples?" in text
  assert "Hu et al. (2021)" in text
