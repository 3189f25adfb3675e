r"""Benchmark: divided ensembles against the wide model, on CPU. Prints ratios, asserts nothing.

1. Training step time: S members (one compiled program, co-training loss) against the
   wide model of about equal parameters (an MLP and a small CNN on 8x8x1 digits-sized
   inputs; the CNN's max-pooling and convs lowered as `--pool`, `--conv`, default the
   execution plan's rules). The members vmapped, mapped with `lax.map`, unrolled (the
   `*_unroll` execution plans: one unbatched call per member, written out at trace time,
   lax convs) and, last, the project's own population step (`train_step` with the
   co-training extension, in-jit batches) under the plan the rules pick on this backend.
   Target from the issue: <= 1.2x the wide model per step (issue 17: <= 1.5x for the CNN).
2. Inference latency: the members sharded over a `members` mesh (concurrent), the members
   vmapped on one device, the sequential loop (one member after another), and the wide
   model. Target: concurrent beats the sequential loop.

The number of simulated host devices must be set before JAX starts, so without --devices
the script reruns itself once per device count in --device_counts:

  python experiments/benchmarks/ensemble_concurrency.py               # 4 and 2 devices
  python experiments/benchmarks/ensemble_concurrency.py --devices=4 --repeats=50

Timing uses `tradeoffs.efficiency.measure_latency(jit=False)`: wrapping the function in
`jax.jit` would compile the sequential Python loop into one program and stop it being a
sequential baseline.
"""

from __future__ import annotations

import dataclasses

import os
import subprocess
import sys

from absl import app, flags

_DEVICES = flags.DEFINE_integer("devices", None, "Simulated CPU devices (set before JAX).")
_DEVICE_COUNTS = flags.DEFINE_list("device_counts", ["4", "2"],
                                   "Device counts to run when --devices is not given.")
_MEMBERS = flags.DEFINE_integer("members", 4, "S, the number of members.")
_TRAIN_BATCH = flags.DEFINE_integer("train_batch", 128, "Training batch size.")
_INFER_BATCH = flags.DEFINE_integer("infer_batch", 256, "Inference batch size.")
_REPEATS = flags.DEFINE_integer("repeats", 30, "Timed calls per measurement (median).")
_WARMUP = flags.DEFINE_integer("warmup", 3, "Untimed calls before timing.")
_POOL = flags.DEFINE_enum("pool", "auto", ["auto", "window", "reshape"],
                          "CNN max-pooling lowering; auto: the execution plan's rule for "
                          "the backend (tradeoffs.train.plan).")
_CONV = flags.DEFINE_enum("conv", "auto", ["auto", "lax", "im2col"],
                          "CNN convolution lowering; auto: the execution plan's rule (vmapped "
                          "members and the one wide model apart).")


def median_ms(fn, *args, repeats: int, warmup: int) -> float:
  """Median wall-clock of an already-compiled fn(*args), synchronised, in milliseconds."""
  from tradeoffs import efficiency
  return efficiency.measure_latency(fn, *args, repeats=repeats, warmup=warmup,
                                    jit=False)["latency_ms"]


def run_benchmark(num_devices: int) -> None:
  import jax
  import jax.numpy as jnp
  import numpy as np
  import optax

  from tradeoffs import ensembles, models
  from tradeoffs.train import plan as plan_lib

  s = _MEMBERS.value
  timing = dict(repeats=_REPEATS.value, warmup=_WARMUP.value)
  rng = np.random.default_rng(0)
  x_train = jnp.asarray(rng.uniform(size=(_TRAIN_BATCH.value, 8, 8, 1)), jnp.float32)
  y_train = jnp.asarray(rng.integers(0, 10, size=_TRAIN_BATCH.value), jnp.int32)
  x_infer = jnp.asarray(rng.uniform(size=(_INFER_BATCH.value, 8, 8, 1)), jnp.float32)
  tx = optax.sgd(0.1, momentum=0.9, nesterov=True)
  pool = (plan_lib.pool_rule(jax.default_backend())[0] if _POOL.value == "auto"
          else _POOL.value)
  backend = jax.default_backend()
  member_conv, wide_conv = ((plan_lib.conv_rule(backend, "vmap")[0],
                             plan_lib.conv_rule(backend, "loop")[0])
                            if _CONV.value == "auto" else (_CONV.value,) * 2)
  print(f"\n== {jax.device_count()} CPU devices (requested {num_devices}), S={s}, "
        f"train batch {_TRAIN_BATCH.value}, inference batch {_INFER_BATCH.value}, "
        f"median of {_REPEATS.value}, CNN pooling {pool}, conv: members {member_conv}, "
        f"wide {wide_conv}")

  wide_specs = [("mlp", {"hidden": (512, 512)}), ("cnn", {"channels": (64, 128), "dense": 256})]
  for wide_spec in wide_specs:
    name, kwargs = wide_spec
    count = lambda spec: models.count_params(spec.name, dict(spec.kwargs), num_classes=10,  # noqa: E731
                                             input_shape=(8, 8, 1))
    division = ensembles.divide(ensembles.ModelSpec(name, kwargs), s,
                                model_info=models.division_info(name, kwargs))
    division = dataclasses.replace(division, wide_params=count(division.wide),
                                   member_params=count(division.member))
    def lowering(conv):
      return {"pooling": pool, "convolution": conv} if name == "cnn" else {}
    wide_net = models.get(division.wide.name, num_classes=10, **dict(division.wide.kwargs),
                          **lowering(wide_conv))
    member_net = models.get(division.member.name, num_classes=10,
                            **dict(division.member.kwargs), **lowering(member_conv))
    print(f"\n{wide_spec[0]}: wide {dict(division.wide.kwargs)} {division.wide_params:,} params; "
          f"{s} x member {dict(division.member.kwargs)} = {division.total_member_params:,} "
          f"params (ratio {division.param_ratio:.3f})")

    # --- Training step: wide model vs S vmapped members with the co-training loss.
    wide_params = models.init(wide_net, jax.random.key(0), (1, 8, 8, 1))["params"]
    keys = jax.random.split(jax.random.key(1), s)
    member_params = jax.jit(jax.vmap(
        lambda k: models.init(member_net, k, (1, 8, 8, 1))["params"]))(keys)

    wide_loss = cross_entropy_loss(wide_net)

    unrolled_net = models.get(division.member.name, num_classes=10,
                              **dict(division.member.kwargs),
                              **lowering(plan_lib.conv_rule(backend, "unroll")[0]))

    def members_loss(params, x, y, loop="vmap"):
      one = lambda p: member_net.apply({"params": p}, x, train=True)
      # lax.map runs the members one after another inside the program: no grouped convs.
      if loop == "vmap":
        logits = jax.vmap(one)(params)
      elif loop == "map":
        logits = jax.lax.map(one, params)
      else:  # unroll: what the '*_unroll' plans trace (one ungrouped call per member)
        logits = jnp.stack([unrolled_net.apply({"params": jax.tree.map(lambda v: v[i], params)},
                                               x, train=True) for i in range(s)])
      total, _ = ensembles.cotraining_objective(logits, y, 0.5)
      return total

    def make_step(loss_fn):
      @jax.jit
      def step(params, opt_state, x, y):
        loss, grads = jax.value_and_grad(loss_fn)(params, x, y)
        updates, opt_state = tx.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss
      return step

    # Independent members (no co-training term): the plain population step.
    def population_loss(params, x, y):
      return jnp.sum(jax.vmap(cross_entropy_loss(member_net), in_axes=(0, None, None))(
          params, x, y))

    wide_step = make_step(wide_loss)
    members_step = make_step(members_loss)
    population_step = make_step(population_loss)
    t_wide = median_ms(wide_step, wide_params, tx.init(wide_params), x_train, y_train, **timing)
    t_cot = median_ms(members_step, member_params, tx.init(member_params), x_train, y_train,
                      **timing)
    t_pop = median_ms(population_step, member_params, tx.init(member_params), x_train, y_train,
                      **timing)
    mapped_step = make_step(lambda p, x, y: members_loss(p, x, y, loop="map"))
    t_map = median_ms(mapped_step, member_params, tx.init(member_params), x_train, y_train,
                      **timing)
    unrolled_step = make_step(lambda p, x, y: members_loss(p, x, y, loop="unroll"))
    t_unroll = median_ms(unrolled_step, member_params, tx.init(member_params), x_train,
                         y_train, **timing)
    base_net = lambda spec: models.get(spec.name, num_classes=10, **dict(spec.kwargs))  # noqa: E731
    t_project, project_plan = project_step_ms(base_net(division.member), s, tx, timing,
                                              convolutional=name == "cnn")
    t_project_wide, wide_plan = project_step_ms(base_net(division.wide), 1, tx, timing,
                                                convolutional=name == "cnn")
    mesh = ensembles.members_mesh(s)
    sharded_params = ensembles.shard_members(member_params, mesh)
    t_shard = median_ms(members_step, sharded_params, tx.init(sharded_params), x_train, y_train,
                        **timing)
    print(f"  train step: wide {t_wide:.3f} ms | {s} members co-training (CE + JS): vmapped "
          f"{t_cot:.3f} ms (x{t_cot / t_wide:.2f}) [target <= x1.2], lax.map {t_map:.3f} ms "
          f"(x{t_map / t_wide:.2f}), unrolled {t_unroll:.3f} ms (x{t_unroll / t_wide:.2f}), "
          f"vmapped and sharded over {mesh.size} devices "
          f"{t_shard:.3f} ms (x{t_shard / t_wide:.2f}) | vmapped, CE only {t_pop:.3f} ms "
          f"(x{t_pop / t_wide:.2f})")
    print(f"  the project's step: {s} members co-trained, plan {project_plan}: "
          f"{t_project:.3f} ms | the wide model, plan {wide_plan}: {t_project_wide:.3f} ms | "
          f"x{t_project / t_project_wide:.2f} [issue 17 target for the CNN: <= x1.5]")

    # --- Inference: concurrent (sharded) vs one-device vmap vs sequential loop vs wide.
    wide_apply = jax.jit(lambda p, x: wide_net.apply({"params": p}, x, train=False))
    member_apply = lambda p, x: member_net.apply({"params": p}, x, train=False)
    concurrent = ensembles.concurrent_apply_fn(member_apply, mesh)
    concurrent_map = ensembles.concurrent_apply_fn(member_apply, mesh, method="shard_map",
                                                   member_loop="map")
    one_device = jax.jit(jax.vmap(member_apply, in_axes=(0, None)))
    sequential = ensembles.sequential_apply_fn(member_apply)
    members_list = ensembles.unstack_members(member_params, jax.devices()[0])

    t_wide_inf = median_ms(wide_apply, wide_params, x_infer, **timing)
    t_conc = median_ms(concurrent, sharded_params, x_infer, **timing)
    t_conc_map = median_ms(concurrent_map, sharded_params, x_infer, **timing)
    t_vmap = median_ms(one_device, member_params, x_infer, **timing)
    t_seq = median_ms(sequential, members_list, x_infer, **timing)
    np.testing.assert_allclose(concurrent(sharded_params, x_infer),
                               sequential(members_list, x_infer), rtol=1e-4,
                               atol=1e-4)  # Sanity, not a benchmark target.
    print(f"  inference: wide {t_wide_inf:.3f} ms | concurrent on {mesh.size} devices: "
          f"sharded vmap {t_conc:.3f} ms, shard_map + lax.map {t_conc_map:.3f} ms | "
          f"vmapped on 1 device {t_vmap:.3f} ms | sequential loop {t_seq:.3f} ms")
    best = min(t_conc, t_conc_map)
    print(f"  ratios: sequential/concurrent x{t_seq / t_conc:.2f} (vmap), "
          f"x{t_seq / t_conc_map:.2f} (lax.map) [target > 1] | best concurrent/wide "
          f"x{best / t_wide_inf:.2f} | vmapped-1-device/wide x{t_vmap / t_wide_inf:.2f} | "
          f"sequential/wide x{t_seq / t_wide_inf:.2f}")


def project_step_ms(net, s, tx, timing, convolutional):
  """Median ms of the project's population step of `s` members of `net` (batches gathered
  in the step; for s > 1 the co-training extension) under the plan `tradeoffs.train.plan`
  picks here, and the plan. The model comes with the default lowerings: the plan lowers it."""
  import jax
  import numpy as np

  from tradeoffs import data, ensembles, train
  from tradeoffs.train import extensions as extensions_lib
  from tradeoffs.train import mesh as mesh_lib
  from tradeoffs.train import plan as plan_lib
  from tradeoffs.train import population as pop_lib

  # One device, like the hand-written steps (a mesh over every simulated device would add
  # the batch's all-reduce on two shared cores).
  mesh = mesh_lib.make_mesh(s, 1, devices=jax.devices()[:1])
  state = pop_lib.create_population(net, tx, (8, 8, 1), s, train.Seeds(), mesh)
  rng = np.random.default_rng(1)
  split = data.ArraySplit(images=rng.uniform(size=(2048, 8, 8, 1)).astype(np.float32),
                          labels=rng.integers(0, 10, 2048).astype(np.int32),
                          ids=np.arange(2048, dtype=np.int32),
                          groups=np.zeros((2048, 0), np.int32), group_names=(), num_classes=10)
  device_data = pop_lib.to_device(split, mesh)
  coupling = extensions_lib.StepExtension(
      name="coupling", population_loss=ensembles.cotraining_coupling(s))
  assert plan_lib.state_has_convolutions(state, (8, 8, 1)) == convolutional
  plan, _ = plan_lib.rule(jax.default_backend(), convolutional=convolutional, coupled=s > 1)
  extensions = (coupling,) if s > 1 else ()
  runner = pop_lib.make_runner(pop_lib.StepConfig(batch_size=_TRAIN_BATCH.value,
                                                  extensions=extensions), mesh, 1, plan)
  held = [state]

  def step():  # The runner donates its state: carry it from call to call.
    held[0], metrics = runner(held[0], device_data)
    return metrics

  return median_ms(step, **timing), plan


def cross_entropy_loss(net):
  """loss(params, x, y): mean softmax cross-entropy of a Flax model in training mode."""
  import optax

  def loss(params, x, y):
    logits = net.apply({"params": params}, x, train=True)
    return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()
  return loss


def main(argv):
  del argv
  if _DEVICES.value is None:
    passthrough = [a for a in sys.argv[1:] if not a.startswith("--device_counts")]
    for count in _DEVICE_COUNTS.value:
      subprocess.run([sys.executable, __file__, f"--devices={int(count)}", *passthrough],
                     check=True)
    return
  os.environ["XLA_FLAGS"] = " ".join(
      [f for f in os.environ.get("XLA_FLAGS", "").split()
       if not f.startswith("--xla_force_host_platform_device_count")]
      + [f"--xla_force_host_platform_device_count={_DEVICES.value}"])
  os.environ.setdefault("JAX_PLATFORMS", "cpu")
  run_benchmark(_DEVICES.value)


if __name__ == "__main__":
  app.run(main)
