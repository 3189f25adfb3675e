"""Execution plans (tradeoffs.train.plan): the rules pick what they document, every plan
trains the same model to float rounding (with extensions), a looped member is exactly a
lone run, and a run records its plan and keeps it on resume (bitwise)."""

import os

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from experiments.configs import digits_cnn, digits_mlp
from tradeoffs import data, models, train
from tradeoffs import workdir as workdir_lib
from tradeoffs.train import experiment
from tradeoffs.train import extensions as extensions_lib
from tradeoffs.train import mesh as mesh_lib
from tradeoffs.train import plan as plan_lib
from tradeoffs.train import population as pop_lib

@pytest.fixture(scope="module")
def digits():
  return data.load("digits")


# Logits of a tiny CNN after a few Adam steps agree across plans to about 1e-6; the bound
# leaves room for the different convolution programs of vmapped and looped members.
TOLERANCE = 1e-4


def test_the_rules_pick_what_they_document():
  rule = lambda backend, **kw: plan_lib.rule(backend, **kw)[0].name
  assert rule("cpu", convolutional=True) == "step_loop"
  assert rule("cpu", convolutional=False) == "scan_vmap"
  assert rule("cpu", convolutional=True, coupled=True) == "step_unroll"
  assert rule("cpu", convolutional=False, coupled=True) == "scan_vmap"
  for backend in ("gpu", "tpu"):
    assert rule(backend, convolutional=True) == "scan_vmap"
    assert rule(backend, convolutional=False) == "scan_vmap"
  assert rule("cpu", convolutional=True, streamed=True) == "step_vmap"
  assert plan_lib.choose("scan_loop", "gpu", convolutional=True)[0].name == "scan_loop"
  with pytest.raises(ValueError, match="population loss"):
    plan_lib.choose("step_loop", "cpu", convolutional=True, coupled=True)
  assert plan_lib.choose("scan_unroll", "cpu", convolutional=True,
                         coupled=True)[0].name == "scan_unroll"
  with pytest.raises(ValueError, match="unknown"):
    plan_lib.choose("scan_pmap", "cpu", convolutional=True)
  assert plan_lib.get(None).name == "scan_vmap"  # make_runner's historical default


def test_convolutions_are_detected_by_tracing_the_model():
  tx = optax.adam(1e-3)
  cnn = pop_lib.create_population(models.get("cnn", num_classes=10, channels=(4,), dense=8),
                                  tx, (8, 8, 1), 2, train.Seeds(), mesh_lib.make_mesh(2))
  mlp = pop_lib.create_population(models.get("mlp", num_classes=10, hidden=(8,)), tx,
                                  (8, 8, 1), 2, train.Seeds(), mesh_lib.make_mesh(2))
  assert plan_lib.state_has_convolutions(cnn, (8, 8, 1))
  assert not plan_lib.state_has_convolutions(mlp, (8, 8, 1))


def _tiny_cnn(members, mesh):
  net = models.get("cnn", num_classes=10, channels=(4, 8), dense=16)
  return pop_lib.create_population(net, optax.adam(1e-2), (8, 8, 1), members,
                                   train.Seeds(), mesh)


# A member loss and example weights read the batch; grad metrics read the gradients.
_EXTENSIONS = (
    extensions_lib.StepExtension(
        name="l2_logits", member_loss=lambda logits, batch: 1e-3 * jnp.mean(logits**2)),
    extensions_lib.StepExtension(
        name="hard", example_weights=lambda per_example, batch: 1.0 + per_example),
    extensions_lib.StepExtension(
        name="norms", grad_metrics=lambda p, g, o: {"param_norm": optax.tree.norm(p)}),
)


# Members over two mesh rows: the reference, both loops (their per-row split and join) and
# an unrolled program (slicing member-sharded leaves); the other plans differ from these
# only in what one mesh row already tests.
_TWO_ROW_PLANS = ("scan_vmap", "scan_loop", "step_loop", "step_unroll")
# One row: every plan but scan_unroll, which the coupled-population test trains (scan and
# step dispatch of one member layout differ only in the dispatch the others already cover).
_ONE_ROW_PLANS = tuple(p for p in plan_lib.PLANS if p != "scan_unroll")


@pytest.mark.parametrize("member_shards", [1, 2])  # one mesh row; members over two rows
def test_every_plan_trains_the_same_model(digits, member_shards):
  mesh = mesh_lib.make_mesh(2, member_shards)
  predictions, metrics = {}, {}
  plans = _ONE_ROW_PLANS if member_shards == 1 else _TWO_ROW_PLANS
  for plan in plans:
    state = _tiny_cnn(2, mesh)
    state, m = train.fit(state, digits.train, steps=6, batch_size=16, mesh=mesh,
                         steps_per_dispatch=4, plan=plan, extensions=_EXTENSIONS,
                         augment_fn=lambda key, x: x + 0.01 * jax.random.normal(key, x.shape))
    assert m["loss"].shape == (2, 2) and m["param_norm"].shape == (2, 2)
    assert np.asarray(state.step).tolist() == [6, 6]
    predictions[plan] = train.predict(state, digits.test.images[:64], mesh=mesh)
    metrics[plan] = m
  for plan in plans:
    np.testing.assert_allclose(predictions[plan], predictions["scan_vmap"], atol=TOLERANCE,
                               rtol=TOLERANCE, err_msg=plan)
    np.testing.assert_allclose(metrics[plan]["loss"], metrics["scan_vmap"]["loss"],
                               atol=TOLERANCE, rtol=TOLERANCE, err_msg=plan)
  # The members differ (their seeds do): the plans did not train one member twice.
  assert np.abs(predictions["step_loop"][0] - predictions["step_loop"][1]).max() > 1e-3


def test_a_looped_member_is_exactly_a_lone_run(digits):
  mesh = mesh_lib.make_mesh(2, 1)
  pair, _ = train.fit(_tiny_cnn(2, mesh), digits.train, steps=5, batch_size=16, mesh=mesh,
                      plan="step_loop")
  lone_mesh = mesh_lib.make_mesh(1, 1)
  lone, _ = train.fit(_tiny_cnn(1, lone_mesh), digits.train, steps=5, batch_size=16,
                      mesh=lone_mesh, plan="step_vmap", conv="lax")  # the loop's lowering
  for a, b in zip(jax.tree.leaves(pair.member(0).params), jax.tree.leaves(lone.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_population_loss_refuses_a_member_loop(digits):
  coupling = extensions_lib.StepExtension(
      name="coupling", population_loss=lambda logits, labels, step: jnp.mean(logits))
  mesh = mesh_lib.make_mesh(2, 1)
  with pytest.raises(ValueError, match="population loss"):
    train.fit(_tiny_cnn(2, mesh), digits.train, steps=1, batch_size=16, mesh=mesh,
              plan="step_loop", extensions=(coupling,))
  state, _ = train.fit(_tiny_cnn(2, mesh), digits.train, steps=1, batch_size=16, mesh=mesh,
                       extensions=(coupling,))  # auto: step_unroll on CPU
  assert np.asarray(state.step).tolist() == [1, 1]


def test_unrolled_members_train_the_coupled_population_the_vmapped_one_does(digits):
  # A population loss that reads every member's logits: the unrolled program must hand it
  # the same [M, B, C] stack the vmapped one does, member i in row i.
  coupling = extensions_lib.StepExtension(
      name="coupling", population_loss=lambda logits, labels, step: 0.1 * jnp.mean(
          (logits[0] - logits[1]) ** 2) + 0.01 * jnp.mean(logits[1]))
  mesh = mesh_lib.make_mesh(2, 1)
  runs = {}
  for plan in ("step_vmap", "step_unroll", "scan_unroll"):
    state, m = train.fit(_tiny_cnn(2, mesh), digits.train, steps=6, batch_size=16,
                         mesh=mesh, plan=plan, conv="lax", extensions=(coupling,),
                         steps_per_dispatch=3)
    runs[plan] = (train.predict(state, digits.test.images[:64], mesh=mesh), m)
  for plan in ("step_unroll", "scan_unroll"):
    np.testing.assert_allclose(runs[plan][0], runs["step_vmap"][0], atol=TOLERANCE,
                               rtol=TOLERANCE, err_msg=plan)
    np.testing.assert_allclose(runs[plan][1]["coupling_loss"],
                               runs["step_vmap"][1]["coupling_loss"], atol=TOLERANCE,
                               rtol=TOLERANCE, err_msg=plan)
  # The coupling term is asymmetric in the members: swapping rows would change the loss.
  assert runs["step_unroll"][1]["coupling_loss"][0, 0] != 0


def test_an_unrolled_program_has_no_batched_convolution():
  # vmap turns a convolution into a grouped one (feature_group_count = members); the
  # unrolled program keeps every member's convolution ungrouped.
  mesh = mesh_lib.make_mesh(1, 1)
  state = _tiny_cnn(3, mesh)
  config = pop_lib.StepConfig(batch_size=8)
  images = jnp.zeros((3, 8, 8, 8, 1))
  labels = jnp.zeros((3, 8), jnp.int32)

  def text(unrolled):
    def step(s):
      with pop_lib.unrolled_members(unrolled):
        return pop_lib.update_step(s, images, labels, config)[1]["loss"]
    return str(jax.make_jaxpr(step)(state))

  assert "feature_group_count=1" in text(True)
  assert "feature_group_count=3" not in text(True)
  assert text(False).count("conv_general_dilated") < text(True).count("conv_general_dilated")


def _cnn_config(plan):
  config = digits_cnn.get_config("smoke,members=2")
  config.model.kwargs.channels = (4, 8)
  config.model.kwargs.dense = 16
  config.train.steps = 20
  config.train.plan = plan
  return config


def test_the_plan_is_recorded_and_kept_on_resume(tmp_path, monkeypatch, caplog):
  # Uninterrupted reference with the plan the auto rule would NOT pick on CPU for a CNN.
  reference = experiment.run(_cnn_config("scan_vmap"), str(tmp_path / "reference"))
  wd = str(tmp_path / "run")
  env = lambda: workdir_lib.read_json(os.path.join(wd, "environment.json"))
  config = _cnn_config("scan_vmap")
  monkeypatch.setenv(experiment.SIGNAL_AT_STEP_ENV, "10")
  assert experiment.run(config, wd) is None  # preempted at step 10
  monkeypatch.delenv(experiment.SIGNAL_AT_STEP_ENV)
  assert env()["plan"]["plan"] == "scan_vmap"
  assert plan_lib.read(os.path.join(wd, "checkpoints"))["plan"] == "scan_vmap"
  # Resume where the rule would now choose differently ('auto' → step_loop on CPU): the
  # library entry point (the binary refuses a changed config) keeps the recorded plan.
  resumed_config = _cnn_config("auto")
  mesh, dataset, _, state, step_config = experiment.build(resumed_config)
  with caplog.at_level("WARNING"):
    state, _, preempted = experiment.train_population(
        resumed_config, wd, state=state, mesh=mesh, dataset=dataset, step_config=step_config)
  assert not preempted and int(np.asarray(state.step)[0]) == 20
  assert any("recorded execution plan scan_vmap" in r.getMessage() for r in caplog.records)
  for a, b in zip(jax.tree.leaves(reference.state.params), jax.tree.leaves(state.params)):
    np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
  logits = pop_lib.predict(state, dataset.test.images, mesh=mesh)
  np.testing.assert_array_equal(logits, reference.predictions.logits)


def test_auto_is_recorded_with_its_reason_and_resumes_bitwise(tmp_path, monkeypatch):
  config = _cnn_config("auto")
  reference = experiment.run(config, str(tmp_path / "reference"))
  wd = str(tmp_path / "run")
  monkeypatch.setenv(experiment.SIGNAL_AT_STEP_ENV, "10:TERM")
  assert experiment.run(config, wd) is None
  monkeypatch.delenv(experiment.SIGNAL_AT_STEP_ENV)
  resumed = experiment.run(config, wd)
  np.testing.assert_array_equal(resumed.predictions.logits, reference.predictions.logits)
  attempts = workdir_lib.read_environments(wd)
  assert [a["plan"]["plan"] for a in attempts] == ["step_loop", "step_loop"]
  assert "convolutions" in attempts[0]["plan"]["reason"]
  mlp = digits_mlp.get_config("smoke,members=2")
  mlp.model.kwargs.hidden = (16,)
  experiment.run(mlp, str(tmp_path / "mlp"))
  assert workdir_lib.read_json(os.path.join(tmp_path, "mlp", "environment.json"))[
      "plan"]["plan"] == "scan_vmap"


def test_the_pool_rule_and_its_override():
  assert plan_lib.rule("cpu", convolutional=True)[0].pool == "reshape"
  assert plan_lib.rule("gpu", convolutional=True)[0].pool == "window"
  plan, reason = plan_lib.choose("auto", "cpu", convolutional=True, pool="window")
  assert (plan.name, plan.pool) == ("step_loop", "window") and "train.pool" in reason
  plan, _ = plan_lib.choose("scan_vmap", "cpu", convolutional=True)
  assert (plan.name, plan.pool) == ("scan_vmap", "reshape")
  with pytest.raises(ValueError, match="train.pool='max'"):
    plan_lib.choose("auto", "cpu", convolutional=True, pool="max")
  # A record from before pools were recorded resumes with the pooling it ran with.
  assert plan_lib.from_record({"plan": "step_loop"}) == plan_lib.Plan("step", "loop", "window")


@pytest.mark.parametrize("shape", [(3, 8, 8, 2), (2, 7, 9, 3), (1, 2, 3, 1)])
def test_reshaped_max_pool_gives_the_window_pool_values_and_gradients_bitwise(shape):
  rng = np.random.default_rng(0)
  # Half-integer values: many ties inside windows, where a gradient rule shows.
  x = jnp.asarray(np.round(2 * rng.standard_normal(shape)) / 2, jnp.float32)
  window, window_vjp = jax.vjp(lambda v: models.layers.max_pool(v, 2, "window"), x)
  reshaped, reshaped_vjp = jax.vjp(lambda v: models.layers.max_pool(v, 2, "reshape"), x)
  cotangent = jnp.asarray(rng.standard_normal(window.shape), jnp.float32)
  np.testing.assert_array_equal(reshaped, window)
  np.testing.assert_array_equal(reshaped_vjp(cotangent)[0], window_vjp(cotangent)[0])
  # By hand: each cotangent lands on the first maximum of its window (row-major), once.
  grad = np.asarray(reshaped_vjp(cotangent)[0])
  xs, g = np.asarray(x), np.asarray(cotangent)
  for b, i, j, c in np.ndindex(g.shape):
    patch = xs[b, 2 * i:2 * i + 2, 2 * j:2 * j + 2, c].ravel()
    di, dj = divmod(int(np.argmax(patch)), 2)
    assert grad[b, 2 * i + di, 2 * j + dj, c] != 0 or g[b, i, j, c] == 0
  assert np.count_nonzero(grad) == np.count_nonzero(g)
  batched = jax.vmap(lambda v: models.layers.max_pool(v, 2, "reshape"))(x[None])
  np.testing.assert_array_equal(batched[0], window)


def test_the_pool_trains_the_same_model(digits):
  # The pooling op itself is bitwise equal (above); the programs around it may fuse and
  # reduce in another order, so training agrees to float rounding (~1 ulp seen here).
  mesh = mesh_lib.make_mesh(2, 1)
  trained = {}
  for pool in plan_lib.POOLS:
    state, _ = train.fit(_tiny_cnn(2, mesh), digits.train, steps=4, batch_size=16, mesh=mesh,
                         plan="step_loop", pool=pool)
    trained[pool] = state
  assert trained["reshape"].apply_fn.__self__.pooling == "window"  # the caller's model back
  for a, b in zip(jax.tree.leaves(trained["window"].params),
                  jax.tree.leaves(trained["reshape"].params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=TOLERANCE, rtol=TOLERANCE)


def test_a_resume_on_another_device_count_keeps_the_recorded_plan(tmp_path, caplog):
  directory = str(tmp_path / "checkpoints")
  recorded = {"plan": "scan_vmap", "pool": "window", "backend": jax.default_backend(),
              "device_count": jax.device_count() + 7, "reason": "an earlier attempt"}
  plan_lib.write(directory, recorded)
  state = _tiny_cnn(2, mesh_lib.make_mesh(2, 1))
  with caplog.at_level("WARNING"):
    plan, record = plan_lib.for_training("auto", directory, state=state,
                                         input_shape=(8, 8, 1))  # auto: step_loop, reshape
  assert plan == plan_lib.Plan("scan", "vmap", "window") and record == recorded
  messages = " ".join(r.getMessage() for r in caplog.records)
  assert "recorded execution plan" in messages and "bits may differ" in messages
  assert plan_lib.read(directory) == recorded  # the record is not rewritten


def test_the_conv_rule_follows_the_member_layout():
  plan = plan_lib.rule("cpu", convolutional=True, coupled=True)[0]
  assert (plan.name, plan.conv) == ("step_unroll", "lax")
  assert plan_lib.choose("step_vmap", "cpu", convolutional=True, coupled=True)[0].conv == (
      "im2col")
  assert plan_lib.rule("cpu", convolutional=True)[0].conv == "lax"  # step_loop
  assert plan_lib.rule("gpu", convolutional=True)[0].conv == "lax"
  assert plan_lib.choose("scan_vmap", "cpu", convolutional=True)[0].conv == "im2col"
  assert plan_lib.choose("auto", "cpu", convolutional=True, conv="im2col")[0] == plan_lib.Plan(
      "step", "loop", "reshape", "im2col")
  with pytest.raises(ValueError, match="train.conv='fft'"):
    plan_lib.choose("auto", "cpu", convolutional=True, conv="fft")


@pytest.mark.parametrize("stride,padding,kernel", [
    (1, "SAME", 3), (2, ((1, 1), (1, 1)), 3), (1, "VALID", 1), (2, "SAME", 5)])
def test_im2col_conv_matches_lax_outputs_and_gradients(stride, padding, kernel):
  rng = np.random.default_rng(stride * 10 + kernel)
  x = jnp.asarray(rng.standard_normal((2, 9, 7, 3)), jnp.float32)
  w = jnp.asarray(rng.standard_normal((kernel, kernel, 3, 4)), jnp.float32)
  conv = lambda f: lambda a, b: f(a, b, (stride, stride), padding,  # noqa: E731
                                  dimension_numbers=("NHWC", "HWIO", "NHWC"))
  reference, reference_vjp = jax.vjp(conv(jax.lax.conv_general_dilated), x, w)
  out, vjp = jax.vjp(conv(models.layers.im2col_conv), x, w)
  cotangent = jnp.asarray(rng.standard_normal(reference.shape), jnp.float32)
  assert out.shape == reference.shape
  np.testing.assert_allclose(out, reference, rtol=1e-5, atol=1e-5)
  for got, want in zip(vjp(cotangent), reference_vjp(cotangent)):
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
  # Grouped convolutions are not im2col's: they go to lax unchanged.
  grouped = dict(dimension_numbers=("NHWC", "HWIO", "NHWC"), feature_group_count=3)
  w1 = w[:, :, :1, :3]
  np.testing.assert_array_equal(
      models.layers.im2col_conv(x, w1, (1, 1), "SAME", **grouped),
      jax.lax.conv_general_dilated(x, w1, (1, 1), "SAME", **grouped))


def test_the_conv_lowering_trains_the_same_vmapped_model(digits):
  mesh = mesh_lib.make_mesh(2, 1)
  trained = {}
  for conv in plan_lib.CONVS:
    trained[conv], _ = train.fit(_tiny_cnn(2, mesh), digits.train, steps=4, batch_size=16,
                                 mesh=mesh, plan="step_vmap", conv=conv)
  for a, b in zip(jax.tree.leaves(trained["lax"].params),
                  jax.tree.leaves(trained["im2col"].params)):
    np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=TOLERANCE, rtol=TOLERANCE)


def test_a_scanned_runner_lowers_to_the_program_it_runs(digits):
  # Benchmarks read a step's FLOPs from the lowered program; the lowering must be the
  # plan's (im2col under scan_vmap on CPU: no convolution left in the compiled program).
  mesh = mesh_lib.make_mesh(2, 1)
  state = _tiny_cnn(2, mesh)
  data_on_device = pop_lib.to_device(digits.train, mesh)
  config = pop_lib.StepConfig(batch_size=16)
  lowered = pop_lib.make_runner(config, mesh, 2, plan_lib.get("scan_vmap", conv="im2col")
                                ).lower(state, data_on_device)
  assert "convolution" not in lowered.as_text()
  assert "convolution" in pop_lib.make_runner(config, mesh, 2, "scan_vmap").lower(
      state, data_on_device).as_text()
  cost = lowered.compile().cost_analysis()
  assert (cost[0] if isinstance(cost, (list, tuple)) else cost)["flops"] > 0
  assert not hasattr(pop_lib.make_runner(config, mesh, 2, "step_loop"), "lower")
