"""Populations of models trained by `jax.vmap` inside one compiled program.

A population is a `TrainState` whose array leaves carry a leading member axis. The
single-member forward pass, batch selection, augmentation and optimizer update are
vmapped over members; the batch itself is gathered inside the compiled step from the
device-resident dataset, as a pure function of (member's data key, step). The member axis
is sharded over the mesh's `members` axis and each member's batch over `data`.

Losses: the population loss is Σ_members mean_batch loss_fn(logits, labels) — its gradient
with respect to member i's parameters is member i's own gradient — plus whatever the
step's extensions add (`tradeoffs.train.extensions`: member loss terms, example weights,
population terms such as co-training, gradient metrics, per-example gradients for DP-SGD,
state carried across steps, selection of the examples that are backpropagated).
The optimizer update is vmapped, so per-member state (e.g. pruning masks) stays per member.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import threading
import zlib
from typing import Any, Callable

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jax.sharding import Mesh

from tradeoffs.data import batching
from tradeoffs.train import extensions as extensions_lib
from tradeoffs.train import losses as losses_lib
from tradeoffs.train import mesh as mesh_lib
from tradeoffs.train import plan as plan_lib
from tradeoffs.train import seeds as seeds_lib

LossFn = Callable[[jax.Array, jax.Array], jax.Array]
CouplingFn = Callable[[jax.Array, jax.Array, jax.Array], jax.Array]


class TrainState(flax.struct.PyTreeNode):
  """Everything a run needs to continue: checkpoint this and nothing else."""
  step: jax.Array  # int32 [M]
  params: Any
  batch_stats: Any  # {} for models without batch norm
  opt_state: Any
  rngs: dict[str, jax.Array]  # raw keys per source, [M, key_size]
  apply_fn: Callable[..., Any] = flax.struct.field(pytree_node=False)
  tx: optax.GradientTransformation = flax.struct.field(pytree_node=False)
  # Step extensions' carried state, name -> pytree [M, ...] (`init_extension_state`).
  extension_state: dict[str, Any] = flax.struct.field(default_factory=dict)

  @property
  def members(self) -> int:
    return int(self.step.shape[0])

  def member(self, i: int) -> "TrainState":
    """Member i as a population of one."""
    return jax.tree.map(lambda x: x[i:i + 1], self)


class DeviceData(flax.struct.PyTreeNode):
  """A split resident on device (replicated), for in-jit batching; `extras` holds
  per-example arrays [N, ...] the step's extensions read (teacher logits, weights, ...)."""
  images: jax.Array
  labels: jax.Array
  groups: jax.Array
  extras: dict[str, jax.Array] = flax.struct.field(default_factory=dict)

  @property
  def num_examples(self) -> int:
    return int(self.labels.shape[0])


def to_device(split: Any, mesh: Mesh, extras: dict[str, Any] | None = None) -> DeviceData:
  extras = dict(extras or {})
  for name, value in extras.items():
    if np.shape(value)[0] != len(split.labels):
      raise ValueError(f"per-example input {name!r} has {np.shape(value)[0]} rows for "
                       f"{len(split.labels)} examples")
  return DeviceData(images=mesh_lib.put_replicated(split.images, mesh),
                    labels=mesh_lib.put_replicated(split.labels, mesh),
                    groups=mesh_lib.put_replicated(split.groups, mesh),
                    extras={k: mesh_lib.put_replicated(np.asarray(v), mesh)
                            for k, v in extras.items()})


softmax_cross_entropy = losses_lib.softmax_cross_entropy


_LAYOUT = threading.local()


@contextlib.contextmanager
def unrolled_members(unrolled: bool = True):
  """While tracing under this context, `over_members` writes the member axis out as one
  unbatched call per member (the `*_unroll` execution plans) instead of `jax.vmap`."""
  previous = getattr(_LAYOUT, "unrolled", False)
  _LAYOUT.unrolled = unrolled
  try:
    yield
  finally:
    _LAYOUT.unrolled = previous


def over_members(fn: Callable[..., Any], in_axes: Any = 0) -> Callable[..., Any]:
  """`jax.vmap(fn, in_axes)` over the member axis; a population of one runs `fn` unbatched.

  XLA:CPU runs matmuls with a batch dimension of 1 measurably slower than plain ones
  (~15% for the digits MLP), so a single model should not pay for being a population.
  Under `unrolled_members()` every member is such an unbatched call, results stacked.
  """
  vmapped = jax.vmap(fn, in_axes=in_axes)

  def call(*args):
    axes = in_axes if isinstance(in_axes, (tuple, list)) else (in_axes,) * len(args)
    sizes = {x.shape[0] for a, ax in zip(args, axes) if ax == 0 for x in jax.tree.leaves(a)}
    if len(sizes) != 1 or (sizes != {1} and not getattr(_LAYOUT, "unrolled", False)):
      return vmapped(*args)
    outs = [fn(*[jax.tree.map(lambda x: x[i], a) if ax == 0 else a
                 for a, ax in zip(args, axes)]) for i in range(sizes.pop())]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *outs)

  return call


def _variables(params, batch_stats):
  return {"params": params, **({"batch_stats": batch_stats} if batch_stats else {})}


# Compiled inits by program: a study initialises the same model, optimizer and shape again
# and again (each variant of a sweep, each recipe that retrains), and every call traces a
# fresh closure, so `jax.jit`'s own cache never hits; the lowered program's text, the
# devices and the options identify the executable. Bounded: the oldest entry goes first.
_COMPILED_INITS: dict[tuple[Any, ...], Any] = {}
_COMPILED_INITS_MAX = 64


def _compiled_init(lowered: Any, mesh: Mesh) -> Any:
  # Init runs once, so on CPU it is compiled without LLVM's optimisations: ~10x faster to
  # compile (7 s -> 0.6 s for the digits MLP's threefry draws, the main job's largest
  # fixed cost per population); the weights differ from an optimised build by <= 1 ulp.
  options = {"xla_backend_optimization_level": 0} if jax.default_backend() == "cpu" else {}
  key = (lowered.as_text(), tuple(int(d.id) for d in mesh.devices.flat),
         tuple(mesh.shape.items()), tuple(sorted(options.items())))
  compiled = _COMPILED_INITS.pop(key, None)
  if compiled is None:
    compiled = lowered.compile(compiler_options=options)
    while len(_COMPILED_INITS) >= _COMPILED_INITS_MAX:
      _COMPILED_INITS.pop(next(iter(_COMPILED_INITS)))
  _COMPILED_INITS[key] = compiled  # (Re)inserted last: the most recently used.
  return compiled


def create_population(model: Any, tx: optax.GradientTransformation, input_shape: tuple[int, ...],
                      members: int, seeds: seeds_lib.Seeds, mesh: Mesh | None = None,
                      init_fn: Callable[[Any, jax.Array], Any] | None = None) -> TrainState:
  """Initialises `members` models and optimizer states in one compiled program.

  Args:
    model: a Flax Linen module called as `model.apply(variables, x, train=...)`.
    tx: the optax transformation (vmapped per member).
    input_shape: one example's shape, e.g. (8, 8, 1).
    members: population size.
    seeds: which sources of randomness vary per member.
    mesh: the ('members', 'data') mesh; default: all devices.
    init_fn: optional `(params, key) -> params` applied after init (e.g. rescaling).
  """
  mesh = mesh or mesh_lib.make_mesh(members)
  keys = seeds.member_keys(members)

  def init_one(init_key):
    variables = model.init({"params": seeds_lib.wrap(init_key),
                            "dropout": jax.random.key(0)},
                           jnp.zeros((1, *input_shape), jnp.float32), train=False)
    params = variables["params"]
    if init_fn is not None:
      params = init_fn(params, seeds_lib.wrap(init_key))
    return params, variables.get("batch_stats", {}), tx.init(params)

  sharding = mesh_lib.member_sharded(mesh)
  init = jax.jit(jax.vmap(init_one), out_shardings=sharding).lower(keys["init"])
  params, batch_stats, opt_state = _compiled_init(init, mesh)(keys["init"])
  rngs = {k: jax.device_put(keys[k], sharding) for k in ("data", "augment", "dropout")}
  step = jax.device_put(jnp.zeros((members,), jnp.int32), sharding)
  return TrainState(step=step, params=params, batch_stats=batch_stats, opt_state=opt_state,
                    rngs=rngs, apply_fn=model.apply, tx=tx)


def init_extension_state(state: TrainState, extensions: Any) -> TrainState:
  """`state` with a fresh carried state for each stateful extension it does not hold yet:
  member m's comes from `init_state(key)`, key = its data key folded with the extension's
  name (so it varies with the members' data seeds), member-sharded like the state."""
  todo = [e for e in extensions if e.stateful and e.name not in state.extension_state]
  if not todo:
    return state

  def init(data_keys):
    return {e.name: jax.vmap(lambda k, e=e: e.init_state(jax.random.fold_in(
        seeds_lib.wrap(k), zlib.crc32(e.name.encode()) & 0x7FFFFFFF)))(data_keys)
            for e in todo}

  fresh = jax.jit(init, out_shardings=state.step.sharding)(state.rngs["data"])
  return state.replace(extension_state={**state.extension_state, **fresh})


@dataclasses.dataclass(frozen=True)
class StepConfig:
  """Static settings of the training step; `extensions` plug in extra loss terms and
  per-batch inputs (see `tradeoffs.train.extensions`).

  `loss_fn` is a per-example loss or its name in `tradeoffs.train.losses` (e.g.
  'token_cross_entropy' for sequence logits [B, T, V] against labels [B, T]).
  `model_inputs` names per-example arrays of `DeviceData.extras` passed to the model as
  keyword arguments with every batch (e.g. 'decoder_inputs' for teacher forcing).

  `views` > 1 augments each member's batch that many times with independent keys and
  concatenates the views along the batch axis, view-major ([V·B, ...]; labels, groups
  and extras tiled to match): the multi-view batch contrastive losses need (SupCon's two
  views). View 0 is the single-view augmentation, so `views=1` changes nothing.
  """
  batch_size: int
  augment_fn: Callable[[jax.Array, jax.Array], jax.Array] | None = None
  loss_fn: LossFn | str = softmax_cross_entropy
  extensions: tuple[extensions_lib.StepExtension, ...] = ()
  model_inputs: tuple[str, ...] = ()
  views: int = 1

  def __post_init__(self):
    extensions_lib.check(tuple(self.extensions))
    object.__setattr__(self, "loss_fn", losses_lib.get(self.loss_fn))
    object.__setattr__(self, "model_inputs", tuple(self.model_inputs))
    if isinstance(self.views, bool) or not isinstance(self.views, int) or self.views < 1:
      raise ValueError(f"views={self.views!r}: expected an integer >= 1")


def member_batch(rngs: dict[str, jax.Array], step: jax.Array, data: DeviceData,
                 config: StepConfig) -> tuple[jax.Array, jax.Array, jax.Array, dict]:
  """One member's (images, labels, groups, extras) at `step`: a function of its data key
  and step."""
  idx = batching.batch_indices(seeds_lib.wrap(rngs["data"]), step, data.num_examples,
                               config.batch_size)
  return (data.images[idx], data.labels[idx], data.groups[idx],
          {k: v[idx] for k, v in data.extras.items()})


def augment_members(state: TrainState, images: jax.Array, config: StepConfig,
                    view: int = 0) -> jax.Array:
  """Each member augments its own batch [M, B, ...] with its own key, folded with the step
  (and, for views after the first, with the view index)."""
  if config.augment_fn is None:
    return images

  def one(k, s, x):
    key = jax.random.fold_in(seeds_lib.wrap(k), s)
    return config.augment_fn(jax.random.fold_in(key, view) if view else key, x)

  return over_members(one)(state.rngs["augment"], state.step, images)


def multi_view(state: TrainState, images: jax.Array, labels: jax.Array,
               groups: jax.Array | None, extras: dict[str, jax.Array], config: StepConfig):
  """`config.views` augmented views of each member's batch, concatenated view-major along
  the batch axis, with labels, groups and extras tiled to match."""
  if config.views == 1:
    return augment_members(state, images, config), labels, groups, extras
  tile = lambda x: jnp.concatenate([x] * config.views, axis=1)  # noqa: E731
  images = jnp.concatenate([augment_members(state, images, config, v)
                            for v in range(config.views)], axis=1)
  return (images, tile(labels), None if groups is None else tile(groups),
          {k: tile(v) for k, v in extras.items()})


def train_step(state: TrainState, data: DeviceData, config: StepConfig,
               mesh: Mesh | None = None) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimisation step for every member on in-jit batches. Per-member metrics [M]."""
  extensions_lib.check(tuple(config.extensions), data.extras)
  missing = [k for k in config.model_inputs if k not in data.extras]
  if missing:
    raise ValueError(f"the model reads per-example inputs {missing}, which the training data "
                     f"lacks (has {sorted(data.extras)})")
  images, labels, groups, extras = over_members(member_batch, in_axes=(0, 0, None, None))(
      state.rngs, state.step, data, config)
  return update_step(state, images, labels, config, mesh, groups=groups, extras=extras)


def update_step(state: TrainState, images: jax.Array, labels: jax.Array, config: StepConfig,
                mesh: Mesh | None = None, groups: jax.Array | None = None,
                extras: dict[str, jax.Array] | None = None,
                ) -> tuple[TrainState, dict[str, jax.Array]]:
  """One optimisation step for every member on given batches [M, B, ...] (pre-augmentation)."""
  exts = tuple(config.extensions)
  needs_groups = any(e.member_loss is not None for e in exts)
  if needs_groups and groups is None:
    groups = jnp.zeros((*labels.shape, 0), jnp.int32)
  extras = dict(extras or {})
  if mesh is not None:
    images = jax.lax.with_sharding_constraint(images, mesh_lib.batch_sharded(mesh))
  images, labels, groups, extras = multi_view(state, images, labels, groups, extras, config)
  dropout_keys = over_members(lambda k, s: jax.random.fold_in(seeds_lib.wrap(k), s))(
      state.rngs["dropout"], state.step)
  has_stats = bool(jax.tree.leaves(state.batch_stats))
  per_example_grads = any(e.per_example_grads for e in exts)
  if per_example_grads and has_stats:
    raise ValueError("per-example gradients (DP-SGD) need a model without batch norm")
  if per_example_grads and any(e.population_loss is not None for e in exts):
    raise ValueError("per-example gradients cannot be combined with population loss terms")
  step = state.step[0]
  ext_states = dict(state.extension_state)
  missing = [e.name for e in exts if e.stateful and e.name not in ext_states]
  if missing:
    raise ValueError(f"step extensions {missing} carry state the TrainState lacks; "
                     "initialise it with population.init_extension_state(state, extensions)")
  selector = next((e for e in exts if e.select is not None), None)

  model_kwargs = {k: extras[k] for k in config.model_inputs}

  def forward(params, batch_stats, x, key, kwargs):
    variables = _variables(params, batch_stats)
    if has_stats:
      logits, updates = state.apply_fn(variables, x, train=True, rngs={"dropout": key},
                                       mutable=["batch_stats"], **kwargs)
      return logits, updates["batch_stats"]
    return state.apply_fn(variables, x, train=True, rngs={"dropout": key}, **kwargs), batch_stats

  def member_objective(logits, member_labels, member_groups, member_extras, member_step):
    """A member's loss on its batch: the (weighted) data loss plus member terms."""
    per_example = config.loss_fn(logits, member_labels)
    batch = extensions_lib.Batch(images=None, labels=member_labels, groups=member_groups,
                                 extras=member_extras, step=member_step)
    weighted = [e for e in exts if e.example_weights is not None]
    selection = member_extras.get(extensions_lib.SELECTION_WEIGHT)
    if weighted or selection is not None:
      weights = jnp.ones_like(per_example) if selection is None else selection
      for e in weighted:
        weights = weights * jax.lax.stop_gradient(e.example_weights(per_example, batch))
      loss = jnp.sum(weights * per_example) / jnp.maximum(jnp.sum(weights), 1e-12)
    else:
      loss = jnp.mean(per_example)
    for e in exts:
      if e.member_loss is not None:
        loss = loss + e.member_loss(logits, batch)
    return loss

  member_groups = groups if groups is not None else jnp.zeros((*labels.shape, 0), jnp.int32)
  member_steps = state.step

  def update_states(per_example, labels, groups, extras, states):
    """Every stateful extension's `update_state` on the step's per-example losses."""
    out = dict(states)
    for e in exts:
      if e.update_state is not None:
        out[e.name] = over_members(lambda s, l, y, g, x, t, e=e: e.update_state(
            s, l, extensions_lib.Batch(None, y, g, x, t, s)))(
                out[e.name], per_example, labels, groups, extras, member_steps)
    return out

  selected = None
  if selector is not None:  # Forward the whole batch, backpropagate the chosen k.
    candidate_logits, _ = over_members(forward)(state.params, state.batch_stats, images,
                                                dropout_keys, model_kwargs)
    candidate = jax.lax.stop_gradient(over_members(config.loss_fn)(candidate_logits, labels))
    ext_states = update_states(candidate, labels, member_groups, extras, ext_states)
    indices, selection, ext_states[selector.name] = over_members(
        lambda s, l, y, g, x, t: selector.select(l, extensions_lib.Batch(None, y, g, x, t, s)))(
            ext_states[selector.name], candidate, labels, member_groups, extras, member_steps)
    take = over_members(lambda tree, i: jax.tree.map(lambda v: v[i], tree))
    images, labels, member_groups, extras = take((images, labels, member_groups, extras),
                                                 indices)
    extras = {**extras, extensions_lib.SELECTION_WEIGHT: selection}
    model_kwargs = {k: extras[k] for k in config.model_inputs}  # the selected rows' inputs
    selected = jnp.sum(selection > 0, axis=-1)

  def population_loss(params):
    logits, batch_stats = over_members(forward)(params, state.batch_stats, images,
                                                dropout_keys, model_kwargs)
    member_losses = over_members(member_objective)(logits, labels, member_groups, extras,
                                                   member_steps)
    total = jnp.sum(member_losses)
    couplings = {}
    for e in exts:
      if e.population_loss is not None:
        couplings[e.name] = e.population_loss(logits, labels, step)
        total = total + couplings[e.name]
    return total, (member_losses, logits, batch_stats, couplings)

  if per_example_grads:
    grads, (member_losses, logits, batch_stats, couplings) = _per_example_grads(
        state, images, labels, member_groups, extras, dropout_keys, forward,
        member_objective, config.model_inputs)
  else:
    grads, (member_losses, logits, batch_stats, couplings) = jax.grad(
        population_loss, has_aux=True)(state.params)
  updates, opt_state = over_members(state.tx.update)(grads, state.opt_state, state.params)
  params = optax.apply_updates(state.params, updates)
  if selector is None and any(e.update_state is not None for e in exts):
    per_example = jax.lax.stop_gradient(over_members(config.loss_fn)(logits, labels))
    ext_states = update_states(per_example, labels, member_groups, extras, ext_states)
  mean_grads = (jax.tree.map(lambda g: jnp.mean(g, axis=1), grads) if per_example_grads
                else grads)
  metrics = {
      "loss": member_losses,
      "accuracy": over_members(losses_lib.accuracy_for(config.loss_fn))(logits, labels),
      "grad_norm": over_members(optax.tree.norm)(mean_grads),
  }
  if selected is not None:  # Examples with nonzero weight; `labels.shape[1]` went backward.
    metrics["selected_examples"] = selected
    metrics["backward_examples"] = jnp.full_like(selected, labels.shape[1])
  for name, value in couplings.items():
    key = "coupling_loss" if name == "coupling" else f"{name}_loss"
    metrics[key] = jnp.broadcast_to(value, member_losses.shape)
  for e in exts:
    if e.grad_metrics is not None:
      metrics.update(over_members(e.grad_metrics)(state.params, mean_grads, state.opt_state))
  new_state = state.replace(step=state.step + 1, params=params, batch_stats=batch_stats,
                            opt_state=opt_state, extension_state=ext_states)
  return new_state, metrics


def _per_example_grads(state, images, labels, groups, extras, dropout_keys, forward,
                       member_objective, model_inputs=()):
  """Gradients [M, B, ...]: each example's gradient of its member's loss on that example
  alone (for DP-SGD's per-example clipping); population terms are not supported here."""
  def one_example(params, x, y, g, extra, key, step):
    logits, _ = forward(params, {}, x[None], key,
                        {k: extra[k][None] for k in model_inputs})
    return member_objective(logits, y[None], g[None], {k: v[None] for k, v in extra.items()},
                            step), logits[0]

  def member(params, xs, ys, gs, extra, key, step):
    grad_fn = jax.grad(one_example, has_aux=True)
    grads, logits = jax.vmap(grad_fn, in_axes=(None, 0, 0, 0, 0, None, None))(
        params, xs, ys, gs, extra, key, step)
    losses, _ = jax.vmap(one_example, in_axes=(None, 0, 0, 0, 0, None, None))(
        params, xs, ys, gs, extra, key, step)
    return grads, jnp.mean(losses), logits

  grads, member_losses, logits = over_members(member)(state.params, images, labels, groups,
                                                      extras, dropout_keys, state.step)
  return grads, (member_losses, logits, state.batch_stats, {})


@functools.lru_cache(maxsize=64)
def make_runner(config: StepConfig, mesh: Mesh, num_steps: int,
                plan: plan_lib.Plan | str | None = None):
  """A function running `num_steps` steps on (state, data) under an execution plan
  (`tradeoffs.train.plan`; default `scan_vmap`: one compiled `lax.scan`); donates the state.

  Returns (state, metrics) with metrics stacked [num_steps, M] and replicated, so every
  process can read them. Every plan gives each member the same batches (a function of its
  data key and step) and the same extensions; vmapped and looped members agree to float
  rounding, not bitwise.
  """
  plan = plan_lib.get(plan)
  runner = _dispatch(config, mesh, num_steps, plan)

  def run(state, data):  # The model's pooling and convs lowered as the plan says.
    model_apply = state.apply_fn
    state, metrics = runner(state.replace(apply_fn=plan_lib.lowered(model_apply, plan)), data)
    return state.replace(apply_fn=model_apply), metrics

  if hasattr(runner, "lower"):  # one compiled program (scan_*): lowerable, e.g. for costs
    run.lower = lambda state, data: runner.lower(
        state.replace(apply_fn=plan_lib.lowered(state.apply_fn, plan)), data)
  return run


def _dispatch(config: StepConfig, mesh: Mesh, num_steps: int, plan: plan_lib.Plan):
  if not plan.looped and plan.scanned:
    return _scan_program(config, mesh, num_steps, plan.unrolled)
  if not plan.looped:
    step = _step_program(config, mesh, plan.unrolled)
    stack = _stack_program(mesh)

    def run_steps(state, data):
      rows = []
      for _ in range(num_steps):
        state, metrics = step(state, data)
        rows.append([metrics])
      return state, stack(rows)

    return run_steps
  if any(e.population_loss is not None for e in config.extensions):
    raise ValueError(f"execution plan {plan.name!r} loops over members, but the step has a "
                     "population loss term coupling them; use a '*_vmap' or '*_unroll' plan")
  return _MemberLoop(config, mesh, num_steps, plan.scanned)


def _scan_program(config: StepConfig, mesh: Mesh, num_steps: int, unrolled: bool = False):
  """`num_steps` steps in one compiled `lax.scan`; one program per arguments, however they
  are passed (lru_cache keys positional and keyword arguments apart)."""
  return _compiled_scan(config, mesh, num_steps, bool(unrolled))


def _step_program(config: StepConfig, mesh: Mesh, unrolled: bool = False):
  """One compiled step per dispatch; metrics [M] (stacked per chunk by `_stack_program`)."""
  return _compiled_step(config, mesh, bool(unrolled))


@functools.lru_cache(maxsize=64)
def _compiled_scan(config: StepConfig, mesh: Mesh, num_steps: int, unrolled: bool):
  def run(state, data):
    with unrolled_members(unrolled):
      state, metrics = jax.lax.scan(lambda s, _: train_step(s, data, config, mesh), state,
                                    None, length=num_steps)
    return state, jax.lax.with_sharding_constraint(metrics, mesh_lib.replicated(mesh))

  return jax.jit(run, donate_argnums=(0,))


@functools.lru_cache(maxsize=64)
def _compiled_step(config: StepConfig, mesh: Mesh, unrolled: bool):
  def step(state, data):
    with unrolled_members(unrolled):
      return train_step(state, data, config, mesh)

  return jax.jit(step, donate_argnums=(0,))


@functools.lru_cache(maxsize=16)
def _stack_program(mesh: Mesh):
  """rows[t][i] = metrics {name: [m_i]} of step t, member group i → {name: [T, M]},
  replicated on `mesh`: one dispatch per chunk."""
  def stack(rows):
    steps = [jax.tree.map(lambda *xs: jnp.concatenate(xs), *row) for row in rows]
    return jax.tree.map(lambda *xs: jnp.stack(xs), *steps)

  return jax.jit(stack, out_shardings=mesh_lib.replicated(mesh))


@functools.lru_cache(maxsize=16)
def _split_program(mesh: Mesh, members: int):
  """The population state → one single-member state per member (same mesh)."""
  sharding = mesh_lib.member_sharded(mesh)
  return jax.jit(lambda state: [jax.tree.map(lambda x: x[i:i + 1], state)
                                for i in range(members)],
                 out_shardings=sharding)


@functools.lru_cache(maxsize=16)
def _join_program(mesh: Mesh):
  return jax.jit(lambda states: jax.tree.map(lambda *xs: jnp.concatenate(xs), *states),
                 out_shardings=mesh_lib.member_sharded(mesh))


class _MemberLoop:
  """`*_loop` plans: the population state is split into its members once per chunk; each
  member runs its own compiled single-member program (scanned or one step per dispatch) on
  its slice, on the mesh row that holds it; the members are joined back at the end.

  With one mesh row (the usual single-device or data-parallel case) split and join are one
  compiled program each; with members spread over rows they go through the host (one
  process only)."""

  def __init__(self, config: StepConfig, mesh: Mesh, num_steps: int, scanned: bool):
    self.config, self.mesh, self.num_steps, self.scanned = config, mesh, num_steps, scanned
    rows = int(mesh.shape[mesh_lib.MEMBERS])
    self.row_meshes = [Mesh(mesh.devices[r:r + 1], mesh.axis_names,
                            axis_types=getattr(mesh, "axis_types", None))
                       for r in range(rows)] if rows > 1 else [mesh]
    self._data: tuple[Any, list[DeviceData]] | None = None

  def _row_data(self, data: DeviceData) -> list[DeviceData]:
    if len(self.row_meshes) == 1:
      return [data]
    if self._data is None or self._data[0] is not data:
      self._data = (data, [jax.device_put(data, mesh_lib.replicated(m))
                           for m in self.row_meshes])
    return self._data[1]

  def _split(self, state: TrainState) -> list[TrainState]:
    members = state.members
    if len(self.row_meshes) == 1:
      return _split_program(self.mesh, members)(state)
    if jax.process_count() > 1:
      raise ValueError("'*_loop' execution plans with members sharded over devices need a "
                       "single process; use a '*_vmap' plan")
    host = jax.device_get(state)
    per_row = members // len(self.row_meshes)
    return [jax.device_put(jax.tree.map(lambda x: x[i:i + 1], host),
                           mesh_lib.member_sharded(self.row_meshes[i // per_row]))
            for i in range(members)]

  def _join(self, states: list[TrainState]) -> TrainState:
    if len(self.row_meshes) == 1:
      return _join_program(self.mesh)(states)
    host = jax.device_get(states)
    joined = jax.tree.map(lambda *xs: np.concatenate(xs), *host)
    return jax.device_put(joined, mesh_lib.member_sharded(self.mesh))

  def __call__(self, state: TrainState, data: DeviceData):
    members = state.members
    row_data = self._row_data(data)
    per_row = members // len(self.row_meshes)
    states = self._split(state)
    member_metrics = []
    for i in range(members):
      row = i // per_row
      mesh, member_data = self.row_meshes[row], row_data[row]
      if self.scanned:
        states[i], metrics = _scan_program(self.config, mesh, self.num_steps)(
            states[i], member_data)
      else:
        step = _step_program(self.config, mesh)
        rows = []
        for _ in range(self.num_steps):
          states[i], m = step(states[i], member_data)
          rows.append(m)
        metrics = rows
      member_metrics.append(metrics)
    state = self._join(states)
    if len(self.row_meshes) > 1:
      member_metrics = jax.device_get(member_metrics)
    if self.scanned:  # [T, 1] per member
      metrics = jax.tree.map(lambda *xs: jnp.concatenate(xs, axis=1), *member_metrics)
      return state, jax.device_put(metrics, mesh_lib.replicated(self.mesh))
    rows = [[member_metrics[i][t] for i in range(members)] for t in range(self.num_steps)]
    return state, _stack_program(self.mesh)(rows)


def predict(state: TrainState, images: np.ndarray | jax.Array, batch_size: int = 512,
            mesh: Mesh | None = None) -> np.ndarray:
  """Per-member logits [M, N, C] for `images` [N, ...] (eval mode), as a numpy array."""
  images = np.asarray(images)
  n = images.shape[0]
  degree = mesh_lib.data_degree(mesh) if mesh is not None else 1
  batch_size = max(degree, (min(batch_size, n) + degree - 1) // degree * degree)
  padded = -(-n // batch_size) * batch_size
  images = np.concatenate([images, np.zeros((padded - n, *images.shape[1:]), images.dtype)])
  batches = images.reshape(padded // batch_size, batch_size, *images.shape[1:])
  if mesh is not None:
    batches = mesh_lib.put_replicated(batches, mesh)
  logits = _predict_fn(mesh)(state, batches)
  logits = np.asarray(jax.device_get(logits))
  return logits.reshape(logits.shape[0], padded, -1)[:, :n]


def eval_step(state: TrainState, images: jax.Array) -> jax.Array:
  """Every member's eval-mode logits [M, B, C] for one batch `images` [B, ...] (pure)."""
  def member(params, batch_stats):
    return state.apply_fn(_variables(params, batch_stats), images, train=False)
  return over_members(member)(state.params, state.batch_stats)


@functools.lru_cache(maxsize=16)
def make_batch_runner(config: StepConfig, mesh: Mesh):
  """A compiled step on a host-fed batch [B, ...] shared by all members (grain pipeline)."""

  def run(state, images, labels):
    members = state.step.shape[0]
    tile = lambda x: jnp.broadcast_to(x[None], (members, *x.shape))
    state, metrics = update_step(state, tile(images), tile(labels), config, mesh)
    return state, jax.lax.with_sharding_constraint(metrics, mesh_lib.replicated(mesh))

  return jax.jit(run, donate_argnums=(0,))


@functools.lru_cache(maxsize=None)
def _predict_fn(mesh: Mesh | None):
  def run(state, batches):
    one_batch = lambda _, x: (None, eval_step(state, x))
    _, logits = jax.lax.scan(one_batch, None, batches)  # [num_batches, M, B, C]
    return jnp.moveaxis(logits, 0, 1)

  if mesh is None:
    return jax.jit(run)
  return jax.jit(run, out_shardings=mesh_lib.replicated(mesh))


def fit(state: TrainState, split: Any, *, steps: int, batch_size: int, mesh: Mesh | None = None,
        steps_per_dispatch: int = 100, plan: str | None = "auto", pool: str | None = "auto",
        conv: str | None = "auto", **step_options: Any) -> tuple[TrainState, dict]:
  """Trains a population for `steps` more steps on an in-memory split (no checkpoints).

  The Colab-sized entry point; binaries use `tradeoffs.train.experiment.train_population`,
  which adds resume, logging and preemption. `plan` is an execution plan name or 'auto'
  and `pool`, `conv` lowerings or 'auto' (`tradeoffs.train.plan`: by backend and model).
  Returns (state, metrics of the last chunk).
  """
  mesh = mesh or mesh_lib.make_mesh(state.members)
  mesh_lib.check_batch(batch_size, mesh, "batch_size")
  config = StepConfig(batch_size=batch_size, **step_options)
  state = init_extension_state(state, config.extensions)
  data = split if isinstance(split, DeviceData) else to_device(split, mesh)
  if isinstance(plan, plan_lib.Plan):
    plan = plan_lib.get(plan, None if pool == "auto" else pool,
                        None if conv == "auto" else conv)
  else:
    plan, _ = plan_lib.choose(
        plan, jax.default_backend(),
        convolutional=plan_lib.state_has_convolutions(state, tuple(data.images.shape[1:])),
        coupled=any(e.population_loss is not None for e in config.extensions), pool=pool,
        conv=conv)
  metrics = {}
  done = 0
  while done < steps:
    length = min(steps_per_dispatch, steps - done)
    state, metrics = make_runner(config, mesh, length, plan)(state, data)
    done += length
  return state, jax.device_get(metrics)
