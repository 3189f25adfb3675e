"""How a population's training steps are executed: the execution plan.

A plan has four parts:

* dispatch — `scan`: `steps_per_dispatch` steps inside one compiled `lax.scan`; `step`: one
  compiled step per dispatch, called from Python.
* members — `vmap`: every member in one program (`jax.vmap` over the member axis); `loop`:
  a Python loop over members, each member's slice of the population state stepped by its
  own compiled single-member program (a population of one: the arithmetic of a lone run);
  `unroll`: one program, but the member axis unrolled at trace time (each member's
  forward, backward and update written out one after another, unbatched), so a
  population loss still sees every member's logits while each convolution stays an
  ordinary, ungrouped one.
* pool — how a model's max-pooling is lowered, for models with a `pooling` field
  (`tradeoffs.models.layers.POOLINGS`): `window` (`lax.reduce_window`; its gradient is
  XLA's select_and_scatter_add) or `reshape` (the input viewed as windows, max over them,
  a VJP sending each cotangent to the first maximum). The pooling gives the same values
  and gradients bit for bit either way (tests/train/test_plan.py); the compiled programs
  around it may fuse and reduce in another order, so training agrees to float rounding
  (~1 ulp after a few steps of a tiny CNN; the digits CNN population measured bitwise
  over 60 steps under every plan).
* conv — how a model's convolutions are lowered, for models with a `convolution` field
  (`tradeoffs.models.layers.CONVOLUTIONS`): `lax` (`lax.conv_general_dilated`) or `im2col`
  (shifted views stacked along the channels, one matmul). Agree to float rounding.

Plans: `scan_vmap` (the historical shape), `step_vmap`, `scan_loop`, `step_loop`,
`scan_unroll`, `step_unroll` (the dispatch and members parts, `config.train.plan`), each
with a pool (`config.train.pool`);
`auto` picks by these rules (measured on XLA:CPU, 2 cores, digits CNN 32-64-128, batch
128, `experiments/benchmarks/populations.py`: select_and_scatter_add made a training step
~2x slower than the reshaped pooling; with the reshaped pooling a convolution step still
runs slower inside `lax.scan` than dispatched step by step, and a vmapped convolution
population slower than its members one after another; matmul-only models do not have
these problems):

  1. the step couples members (an extension with `population_loss`, e.g. co-training) →
     members `vmap` or `unroll` (a loop cannot see the other members' logits);
  2. streamed batches (`dataset.pipeline='grain'`) → `step_vmap` (one host batch per step);
  3. backend `cpu` and a model with convolutions → `step_loop`; `step_unroll` under rule 1
     (the divided CNN ensemble, S=4, co-trained: the project's step 1.18x the wide CNN's;
     hand-written, unrolled 1.23x against vmapped with im2col 1.41x;
     `experiments/benchmarks/ensemble_concurrency.py`, 2 cores);
  4. otherwise (matmul-only models on CPU; every model on GPU/TPU) → `scan_vmap`;
  5. pool: backend `cpu` → `reshape`; otherwise `window` (GPU/TPU pooling not measured);
  6. conv: backend `cpu` and members `vmap` → `im2col` (vmapped, a lax convolution becomes
     a grouped convolution, ~7x slower on XLA:CPU than im2col's batched matmul); otherwise
     `lax` (one member's lax convolution, looped or unrolled, is as fast as im2col on CPU).

`config.train.plan`, `config.train.pool` and `config.train.conv` override the rules. The
plan a run starts with is recorded (`plan.json` next to its checkpoints, and in
environment.json) and a resumed run uses the recorded plan whatever the config or the
rules would now say, so resume stays bitwise (a record from before pools and convs were
recorded resumes with `window`, `lax`).

Plans differ in bits: a vmapped convolution is a different XLA program from its unbatched
member, so `*_vmap`, `*_unroll` and `*_loop` runs agree to float rounding, not bitwise
(scan and step dispatch of the same member layout agree to rounding too). That makes the
plan a named noise source for the determinism study (`train.plan`); the pool and conv lowerings
(`train.pool`, `train.conv`) are ones too, at the level of rounding only.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import os
from typing import Any

import jax
from absl import logging

PLAN_FILE = "plan.json"
DISPATCH = ("scan", "step")
MEMBERS = ("vmap", "loop", "unroll")
POOLS = ("window", "reshape")  # tradeoffs.models.layers.POOLINGS
PLANS = tuple(f"{d}_{m}" for d in DISPATCH for m in MEMBERS)  # scan_vmap, scan_loop, ...
CHOICES = ("auto",) + PLANS
POOL_CHOICES = ("auto",) + POOLS
CONVS = ("lax", "im2col")  # tradeoffs.models.layers.CONVOLUTIONS
CONV_CHOICES = ("auto",) + CONVS
DEFAULT_CONV = "lax"  # what models did before convs were planned
DEFAULT = "scan_vmap"  # what make_runner / fit did before plans existed
DEFAULT_POOL = "window"  # what models did before pools were planned


@dataclasses.dataclass(frozen=True)
class Plan:
  dispatch: str  # 'scan' | 'step'
  members: str  # 'vmap' | 'loop' | 'unroll'
  pool: str = DEFAULT_POOL  # 'window' | 'reshape'
  conv: str = DEFAULT_CONV  # 'lax' | 'im2col'

  def __post_init__(self):
    if (self.dispatch not in DISPATCH or self.members not in MEMBERS or self.pool not in POOLS
        or self.conv not in CONVS):
      raise ValueError(f"plan ({self.dispatch!r}, {self.members!r}, {self.pool!r}, "
                       f"{self.conv!r}): dispatch must be one of {DISPATCH}, members one of "
                       f"{MEMBERS}, pool one of {POOLS}, conv one of {CONVS}")

  @property
  def name(self) -> str:
    """dispatch_members (`config.train.plan`); the lowerings are `pool` and `conv`."""
    return f"{self.dispatch}_{self.members}"

  @property
  def scanned(self) -> bool:
    return self.dispatch == "scan"

  @property
  def looped(self) -> bool:
    return self.members == "loop"

  @property
  def unrolled(self) -> bool:
    return self.members == "unroll"

  def __str__(self) -> str:
    return f"{self.name} (pool {self.pool}, conv {self.conv})"


def get(plan: "Plan | str | None", pool: str | None = None, conv: str | None = None) -> Plan:
  """A Plan from its name ('step_loop', ...), pool (None → 'window') and conv (None →
  'lax'); plan None → the historical `scan_vmap`. A Plan passed in keeps its lowerings
  unless `pool` or `conv` is given."""
  if isinstance(plan, Plan):
    return dataclasses.replace(plan, pool=check_pool(pool or plan.pool),
                               conv=check_conv(conv or plan.conv))
  name = DEFAULT if plan in (None, "") else str(plan)
  if name not in PLANS:
    raise ValueError(f"execution plan {name!r} is unknown; choose from {CHOICES} "
                     "(--config.train.plan)")
  dispatch, members = name.split("_")
  return Plan(dispatch, members, check_pool(pool or DEFAULT_POOL),
              check_conv(conv or DEFAULT_CONV))


def check_conv(conv: str) -> str:
  if conv not in CONVS:
    raise ValueError(f"--config.train.conv={conv!r} is unknown; choose from {CONV_CHOICES}")
  return conv


def check_pool(pool: str) -> str:
  if pool not in POOLS:
    raise ValueError(f"--config.train.pool={pool!r} is unknown; choose from {POOL_CHOICES}")
  return pool


def lowered(apply_fn: Any, plan: Plan) -> Any:
  """`apply_fn` of the same model with its pooling and convolutions lowered as `plan` says,
  for the fields the model has (`pooling`, `convolution`; others unchanged). Same
  parameters and numbers to rounding; a different compiled program."""
  module = getattr(apply_fn, "__self__", None)
  wanted = {"pooling": plan.pool, "convolution": plan.conv}
  changes = tuple(sorted((k, v) for k, v in wanted.items()
                         if hasattr(module, k) and getattr(module, k) != v))
  return _lowered_apply(module, changes) if changes else apply_fn


@functools.lru_cache(maxsize=64)
def _lowered_apply(module: Any, changes: tuple[tuple[str, str], ...]) -> Any:
  # One bound method per (model, lowering): a fresh one would be a new pytree aux value in
  # the TrainState, a jit cache miss and a recompilation on every call.
  return module.clone(**dict(changes)).apply


def has_convolutions(apply_fn: Any, params: Any, batch_stats: Any,
                     input_shape: tuple[int, ...], member_axis: bool = True) -> bool:
  """Whether one forward pass of the model contains a convolution (traced, not run)."""
  strip = (lambda x: jax.ShapeDtypeStruct(x.shape[1:], x.dtype)) if member_axis else (
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype))
  params = jax.tree.map(strip, params)
  batch_stats = jax.tree.map(strip, batch_stats)
  x = jax.ShapeDtypeStruct((1, *input_shape), jax.numpy.float32)

  def forward(p, b, images):
    variables = {"params": p, **({"batch_stats": b} if jax.tree.leaves(b) else {})}
    return apply_fn(variables, images, train=False)

  return "conv_general_dilated" in str(jax.make_jaxpr(forward)(params, batch_stats, x))


def state_has_convolutions(state: Any, input_shape: tuple[int, ...]) -> bool:
  """`has_convolutions` of a population state, remembered per model and shapes (tracing
  takes ~0.1 s, a noticeable part of a short run)."""
  module = getattr(state.apply_fn, "__self__", None)
  shapes = lambda tree: (jax.tree.structure(tree), tuple(  # noqa: E731
      (tuple(x.shape), str(x.dtype)) for x in jax.tree.leaves(tree)))
  try:
    key = (module, shapes(state.params), shapes(state.batch_stats), tuple(input_shape))
    hash(key)
  except TypeError:  # an apply_fn that is not a module's bound `apply`
    return has_convolutions(state.apply_fn, state.params, state.batch_stats, input_shape)
  if module is None:
    return has_convolutions(state.apply_fn, state.params, state.batch_stats, input_shape)
  if key not in _CONVOLUTIONAL:
    _CONVOLUTIONAL[key] = has_convolutions(state.apply_fn, state.params, state.batch_stats,
                                           input_shape)
  return _CONVOLUTIONAL[key]


_CONVOLUTIONAL: dict[Any, bool] = {}


def pool_rule(backend: str) -> tuple[str, str]:
  """Rule 5 (module docstring): the pool and the reason, in words."""
  if backend == "cpu":
    return "reshape", "pool reshape: XLA:CPU's select_and_scatter_add is slow"
  return "window", f"pool window on {backend}"


def conv_rule(backend: str, members: str) -> tuple[str, str]:
  """Rule 6 (module docstring): the conv and the reason, in words."""
  if backend == "cpu" and members == "vmap":
    return "im2col", "conv im2col: XLA:CPU runs vmapped convolutions as slow grouped ones"
  return "lax", "conv lax"


def rule(backend: str, *, convolutional: bool, coupled: bool = False,
         streamed: bool = False) -> tuple[Plan, str]:
  """The documented choice (module docstring) and the reason, in words."""
  pool, pool_reason = pool_rule(backend)
  if streamed:
    name, reason = "step_vmap", "streamed (grain) batches arrive one step at a time"
  elif backend == "cpu" and convolutional and coupled:
    name, reason = "step_unroll", ("cpu + convolutions: one step per dispatch; members "
                                   "unrolled in one program because a population loss "
                                   "couples them (vmapped convolutions are slow on XLA:CPU)")
  elif backend == "cpu" and convolutional:
    name, reason = "step_loop", ("cpu + convolutions: XLA:CPU runs convolutions slower "
                                 "inside lax.scan and under vmap")
  else:
    why = "matmul-only model" if not convolutional else f"backend {backend}"
    name, reason = "scan_vmap", f"{why}: scanned steps, vmapped members"
  conv, conv_reason = conv_rule(backend, name.split("_")[1])
  return get(name, pool, conv), f"{reason}; {pool_reason}; {conv_reason}"


def choose(requested: str | None, backend: str, *, convolutional: bool, coupled: bool = False,
           streamed: bool = False, pool: str | None = "auto",
           conv: str | None = "auto") -> tuple[Plan, str]:
  """`requested` ('auto' or a plan name), `pool` and `conv` ('auto' or a lowering) resolved
  and checked against what the step needs."""
  requested, pool, conv = requested or "auto", pool or "auto", conv or "auto"
  if requested not in CHOICES:
    raise ValueError(f"--config.train.plan={requested!r} is unknown; choose from {CHOICES}")
  if pool not in POOL_CHOICES:
    raise ValueError(f"--config.train.pool={pool!r} is unknown; choose from {POOL_CHOICES}")
  if conv not in CONV_CHOICES:
    raise ValueError(f"--config.train.conv={conv!r} is unknown; choose from {CONV_CHOICES}")
  auto, auto_reason = rule(backend, convolutional=convolutional, coupled=coupled,
                           streamed=streamed)
  if requested == "auto" and pool == "auto" and conv == "auto":
    return auto, auto_reason
  plan = get(auto if requested == "auto" else requested, auto.pool if pool == "auto" else pool)
  plan = get(plan, conv=conv_rule(backend, plan.members)[0] if conv == "auto" else conv)
  check(plan, coupled=coupled, streamed=streamed)
  overridden = [k for k, v in (("plan", requested), ("pool", pool), ("conv", conv))
                if v != "auto"]
  return plan, "set by " + " and ".join(f"--config.train.{k}" for k in overridden)


def check(plan: Plan, *, coupled: bool = False, streamed: bool = False) -> None:
  if coupled and plan.looped:
    raise ValueError(f"execution plan {plan.name!r} loops over members, but the step has a "
                     "population loss term coupling them; use a '*_vmap' or '*_unroll' plan")
  if streamed and plan.name != "step_vmap":
    raise ValueError(f"execution plan {plan.name!r}: streamed (grain) batches run one step "
                     "per dispatch with vmapped members; use 'step_vmap' or 'auto'")


def read(directory: str) -> dict[str, Any] | None:
  """The plan record in `directory` (None when absent)."""
  path = os.path.join(directory, PLAN_FILE)
  if not os.path.exists(path):
    return None
  with open(path) as f:
    return json.load(f)


def write(directory: str, record: dict[str, Any]) -> None:
  if jax.process_index() != 0:
    return
  os.makedirs(directory, exist_ok=True)
  path = os.path.join(directory, PLAN_FILE)
  tmp = f"{path}.tmp.{os.getpid()}"
  with open(tmp, "w") as f:
    json.dump(record, f, indent=2, sort_keys=True)
  os.replace(tmp, path)


def from_record(record: dict[str, Any]) -> Plan:
  """The plan of a plan.json record (records from before the lowerings were recorded:
  'window', 'lax')."""
  return get(record["plan"], record.get("pool", DEFAULT_POOL),
             record.get("conv", DEFAULT_CONV))


def for_training(requested: str | None, directory: str, *, state: Any,
                 input_shape: tuple[int, ...], coupled: bool = False, streamed: bool = False,
                 name: str = "train", pool: str | None = "auto",
                 conv: str | None = "auto") -> tuple[Plan, dict[str, Any]]:
  """The plan of the run whose checkpoints live in `directory`: the recorded one when the
  run has started before (resume), else chosen now and recorded. Returns (plan, record)."""
  backend = jax.default_backend()
  devices = jax.device_count()
  recorded = read(directory)
  if recorded is None and os.path.isdir(directory) and any(
      n.isdigit() for n in os.listdir(directory)):
    recorded = {"plan": DEFAULT, "reason": "checkpoints written before plans were recorded"}
  convolutional = state_has_convolutions(state, input_shape)
  chosen, reason = choose(requested, backend, convolutional=convolutional, coupled=coupled,
                          streamed=streamed, pool=pool, conv=conv)
  if recorded is not None:
    plan = from_record(recorded)
    check(plan, coupled=coupled, streamed=streamed)
    if plan != chosen:
      logging.warning("[%s] resuming with the recorded execution plan %s (this attempt would "
                      "choose %s: %s), so the resumed steps repeat the same arithmetic",
                      name, plan, chosen, reason)
    if int(recorded.get("device_count", devices)) != devices or recorded.get(
        "backend", backend) != backend:
      logging.warning("[%s] the run started on %s x%s and resumes on %s x%d; the recorded "
                      "plan %s is kept, but the bits may differ from an uninterrupted run",
                      name, recorded.get("backend"), recorded.get("device_count"), backend,
                      devices, plan)
    return plan, recorded
  record = {"plan": chosen.name, "pool": chosen.pool, "conv": chosen.conv,
            "requested": requested or "auto", "requested_pool": pool or "auto",
            "requested_conv": conv or "auto", "reason": reason,
            "backend": backend, "device_count": devices, "convolutional": convolutional,
            "coupled": coupled, "streamed": streamed}
  write(directory, record)
  logging.info("[%s] execution plan %s (%s)", name, chosen, reason)
  return chosen, record
