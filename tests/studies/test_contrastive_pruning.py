"""The contrastive pruning study: validation before anything loads, the plan (methods ×
prunings × sparsities against each method's dense population), the per-example fields
recounted from the library, and the report's claims on constructed records (the
all-studies test runs the `:smoke` config end to end, with its bad-input cases)."""

from __future__ import annotations

import types

import numpy as np
import optax
import pytest

from experiments.configs import contrastive_pruning as config_lib
from tradeoffs import data
from tradeoffs import errors
from tradeoffs import exemplars
from tradeoffs import models
from tradeoffs import stats
from tradeoffs.studies import contrastive_pruning as study
from tradeoffs.studies import runner
from tradeoffs.train import experiment
from tradeoffs.train import population as pop_lib
from tradeoffs.train import seeds as seeds_lib


def _config(**knobs):
  c = config_lib.get_config("smoke")
  c.study.update(knobs)
  return c


@pytest.mark.parametrize("knobs, needle", [
    (dict(sparsities=(1.0,)), "study.sparsities=1.0"),
    (dict(sparsities=(-0.1,)), "study.sparsities=-0.1"),
    (dict(sparsities=()), "sparsities=() is empty"),
    (dict(methods=("simclr",)), "study.methods"),
    (dict(prunings=("random",)), "study.prunings"),
    (dict(temperature=0.0), "study.temperature=0.0"),
    (dict(gradual_end=0.05), "study.gradual_end=0.05"),
    (dict(knn_k=0), "study.knn_k=0"),
    (dict(depth_definition="first"), "depth_definition='first'"),
    (dict(linear_learning_rate=-1.0), "study.linear_learning_rate=-1.0"),
])
def test_bad_knobs_are_one_config_error(knobs, needle):
  with pytest.raises(errors.ConfigError, match=needle.replace("(", "\\(").replace(")", "\\)")):
    runner.plan(study, _config(**knobs))


def test_bad_model_and_population_are_config_errors():
  c = _config()
  c.population.members = 1
  with pytest.raises(errors.ConfigError, match="members=1"):
    runner.plan(study, c)
  c = _config()
  c.model.name = "mlp"
  with pytest.raises(errors.ConfigError, match="model.name='mlp'"):
    runner.plan(study, c)


def test_plan_prunes_each_method_against_its_own_dense_population():
  variants = runner.plan(study, config_lib.get_config())
  by = {v.name: v for v in variants}
  assert len(variants) == 2 + 2 * 2 * 2
  assert by["cross_entropy_dense"].technique == "dense" and by["supcon_dense"].source is None
  for name, v in by.items():
    if v.source is not None:
      assert v.source == f"{v.knobs['method']}_dense"
      assert v.knobs["keep_dense"] == ["proj_", "head"]
  assert by["cross_entropy_gradual_s90"].technique == "pruned_gradual"
  assert by["cross_entropy_one_shot_s50"].technique == "pruned_one_shot"
  assert by["cross_entropy_one_shot_s50"].train_config.train.steps == 200  # fine-tune
  assert by["supcon_one_shot_s90"].technique == "supcon"
  gradual = by["supcon_gradual_s50"].knobs
  assert (gradual["begin_step"], gradual["end_step"], gradual["frequency"]) == (60, 419, 30)
  # Both methods are scored as the same architecture: the encoder and a linear head.
  for v in variants:
    assert v.train_config.model.kwargs.projection == ()
    assert v.train_config.model.kwargs.output == "logits"


def test_representation_fields_recount_from_the_library():
  rng = np.random.default_rng(0)
  labels = np.arange(40) % 4
  split = lambda n: types.SimpleNamespace(  # noqa: E731
      images=rng.normal(size=(n, 8, 8, 1)).astype(np.float32), labels=labels[:n])
  dataset = types.SimpleNamespace(train=split(40), test=split(12), num_classes=4)
  net = models.get("encoder_net", num_classes=4, hidden=(8, 6), projection=())
  state = pop_lib.create_population(net, optax.sgd(0.1), (8, 8, 1), 3,
                                    seeds_lib.Seeds(init=0))
  logits = pop_lib.predict(state, dataset.test.images)
  source = rng.normal(size=logits.shape).astype(np.float32)
  fields = study.representation_fields(state, dataset, k=5, definition="paper",
                                       source_logits=source, logits=logits)
  np.testing.assert_array_equal(fields["pie_index"],
                                np.flatnonzero(exemplars.cie(source, logits, 4)))
  modal = np.asarray(exemplars.modal_labels(source.argmax(-1), 4))
  np.testing.assert_allclose(fields["per_member_flip_rate"],
                             (logits.argmax(-1) != modal).mean(-1))
  assert fields["depth_layers"] == 3  # two hidden layers and the logits
  depth = np.asarray(fields["prediction_depth"])
  assert depth.shape == (12,) and np.all((0 <= depth) & (depth <= 3))
  layers, embedding = models.contrastive.layer_representations(
      state.apply_fn, {"params": state.params}, dataset.test.images)
  np.testing.assert_allclose(fields["q_score"],
                             np.asarray(exemplars.q_score(embedding)).mean(0), atol=1e-6)


def _record(name, method, pruning, level, top1, flips, q, depth, pies, source=None):
  return {"variant": name, "source": source, "members": len(top1),
          "knobs": {"method": method, "pruning": pruning, "sparsity": level},
          "accuracy": {"per_member_top1": top1, "top1": float(np.mean(top1))},
          "hidden_costs": {"cie_count": len(pies),
                           "cie_kind": "derived" if pruning == "one_shot" else "retrained"},
          "study_fields": {"per_member_flip_rate": flips, "q_score": q,
                           "prediction_depth": depth, "pie_index": pies}}


def test_claims_on_constructed_records():
  q = [0.1, 0.12, 0.5, 0.55, 0.52, 0.5]  # PIEs (0, 1) have lower Q
  depth = [3, 4, 1, 1, 0, 1]
  records = [
      _record("cross_entropy_dense", "cross_entropy", "none", 0.0, [0.9, 0.91, 0.92],
              [0.05, 0.06, 0.05], q, depth, []),
      _record("cross_entropy_one_shot_s90", "cross_entropy", "one_shot", 0.9,
              [0.8, 0.82, 0.81], [0.1, 0.11, 0.1], q, depth, [0, 1], "cross_entropy_dense"),
      _record("supcon_one_shot_s90", "supcon", "one_shot", 0.9, [0.7, 0.71, 0.69],
              [0.3, 0.31, 0.32], q, depth, [1, 2], "supcon_dense"),
  ]
  top1 = study.accuracy_claims(records)
  assert [c.claim for c in top1] == ["cross_entropy_one_shot_s90: top-1 vs "
                                     "cross_entropy_dense"]
  assert top1[0].test == "paired" and top1[0].verdict == stats.LOWER
  (method,) = study.method_claims(records)
  assert method.test == "welch" and method.verdict == stats.HIGHER
  np.testing.assert_allclose(method.estimate, 0.31 - 0.103333, atol=1e-5)
  pies = study.pie_property_claims(records)
  assert len(pies) == 4 and len({c.p_holm for c in pies}) >= 1
  ce_q = next(c for c in pies if c.claim.startswith("cross_entropy") and "Q-score" in c.claim)
  np.testing.assert_allclose(ce_q.estimate, 0.11 - np.mean(q[2:]))
  assert ce_q.p_holm >= ce_q.p
  (row,) = study.overlap_rows(records)
  assert row[-3:] == ["2", "1", "0.33"]  # {0, 1} and {1, 2}: 1 shared of 3


@pytest.mark.slow
def test_the_mnist_5k_variant_runs_on_a_slice(tmp_path):
  """The `:mnist_5k` config end to end on 300 training and 100 test images (cross-entropy
  only, a few steps: one compiled training program): the 784-input encoder trains,
  prunes, and is scored."""
  c = config_lib.get_config("mnist_5k")
  assert c.dataset.name == "mnist_5k" and tuple(c.model.kwargs.hidden) == (256, 128, 64)
  c.dataset.update(dict(max_train_examples=300, max_test_examples=100))
  c.population.members = 2
  c.train.update(dict(steps=20, steps_per_dispatch=10, log_every=20, checkpoint_every=20,
                      eval_every=20))
  c.study.update(dict(methods=("cross_entropy",), prunings=("one_shot",), sparsities=(0.9,),
                      finetune_steps=10, gradual_frequency=5))
  c.efficiency.update(dict(latency_repeats=1, measure_batch=1, time_latency=False))
  runners_before = pop_lib.make_runner.cache_info().misses
  result = runner.run(study, c, str(tmp_path / "wd"), write=False)
  assert result.finished
  # Training from scratch (2 chunks) and the one-shot fine-tune (1 chunk) ran one program,
  # compiled once: equal step configs, and one model and optimizer object in the states.
  assert pop_lib.make_runner.cache_info().misses == runners_before + 1
  augment = data.make_augment(tuple(c.augment.names), pad=3, size=10, probability=0.5)
  program = pop_lib._scan_program(pop_lib.StepConfig(batch_size=64, augment_fn=augment),
                                  experiment.make_mesh(c), 10)
  assert program._cache_size() == 1
  by = {r["variant"]: r for r in result.records}
  assert sorted(by) == ["cross_entropy_dense", "cross_entropy_one_shot_s90"]
  pruned = by["cross_entropy_one_shot_s90"]["study_fields"]
  assert len(pruned["q_score"]) == len(pruned["prediction_depth"]) == 100
  assert pruned["depth_layers"] == 4  # three hidden layers and the logits
  # 90% of the encoder's 784·256 + 256·128 + 128·64 kernel weights are exact zeros.
  assert abs(pruned["achieved_sparsity"]["mean"] - 0.9) < 1e-4
  assert by["cross_entropy_dense"]["study_fields"]["achieved_sparsity"]["mean"] == 0.0
  with pytest.raises(ValueError, match="mnist_5k variant trains on mnist_5k"):
    config_lib.get_config("mnist_5k,dataset=digits")
