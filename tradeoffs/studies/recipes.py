"""Shared producers: the techniques every study (and the main job's frontier) builds on.

A recipe is `produce(ctx, variant) -> Outcome` for one technique; a study's `produce` can
simply be `recipes.produce`. Each recipe reads its knobs from `variant.knobs` (plain
values) and its training config from `variant.train_config`; the variant's `source`
names the trained population it starts from.

Techniques and their one definition each:

  dense                    train the variant's config from scratch.
  pruned_one_shot          rank each member's trained source weights by magnitude, keep
                           exactly round((1-s)·n) (knob `distribution`: global or
                           layer-wise; knob `keep_dense`: path substrings of leaves left
                           dense, also for pruned_gradual), zero the rest, then fine-tune for
                           `train_config.train.steps` with the masks fixed in the optax
                           state (Han et al.; Hooker et al.'s one-shot + fine-tune).
  pruned_gradual           Zhu & Gupta gradual magnitude pruning while training from
                           scratch: the cubic ramp from `begin_step` to `end_step`,
                           masks updated every `frequency` steps.
  pruned_gradual_finetune  the same cubic ramp, applied while fine-tuning the trained
                           source (from 0 to `ramp_fraction` of the fine-tune).
  quantized                post-training symmetric fake quantization of the source's
                           members (int`bits`, per channel or per tensor); weight bytes =
                           packed codes + float32 scales + other leaves at their dtype.
  loss_prioritized         label-noised training set, each batch forward-passed and k of
                           it backpropagated, chosen by Selective Backprop, loss-
                           proportional or uniform sampling (or 'full': all of it).
  divided                  R ensembles of S members (`train_config.population.members`
                           = R·S), the S members of an ensemble on the same batches, the
                           co-training loss of each ensemble added with weight
                           `cotraining_weight` (0: independent members), combined by
                           `combine`; scored as R ensembles.

Efficiency is measured on member 0 (one model) or ensemble 0 (one ensemble), at batch 1
and `config.efficiency.measure_batch`; latency is a median with its spread.
"""

from __future__ import annotations

import dataclasses
import functools
import os
from typing import Any, Callable, Mapping, Sequence

import jax
import ml_collections
import numpy as np

from tradeoffs import cascades
from tradeoffs import distill
from tradeoffs import efficiency
from tradeoffs import ensembles
from tradeoffs import errors
from tradeoffs import privacy
from tradeoffs import quantization
from tradeoffs import selection
from tradeoffs import sparsity
from tradeoffs import workdir as workdir_lib
from tradeoffs.data import long_tail as data_lib
from tradeoffs.data import noise as data_noise
from tradeoffs.studies import base
from tradeoffs.train import distributed
from tradeoffs.train import extensions as step_extensions
from tradeoffs.train import optimizers
from tradeoffs.train import population as pop_lib
from tradeoffs.train import seeds as seeds_lib

TECHNIQUES = ("dense", "pruned_one_shot", "pruned_gradual", "pruned_gradual_finetune",
              "quantized", "divided")
DERIVED = ("pruned_one_shot", "pruned_gradual_finetune", "quantized")


def host_copy(tree: Any) -> Any:
  return jax.tree.map(np.asarray, distributed.to_host(tree))


def place_like(host_tree: Any, like: Any) -> Any:
  """Host arrays placed with the shardings of `like` (fresh buffers: training donates)."""
  return jax.tree.map(lambda h, x: jax.device_put(h, x.sharding), host_tree, like)


def member_variables(state: Any, index: int = 0) -> dict[str, Any]:
  """One member's variables (params and, if any, batch statistics) on host."""
  take = lambda x: np.asarray(x)[index]  # noqa: E731
  out = {"params": jax.tree.map(take, host_copy(state.params))}
  if jax.tree.leaves(state.batch_stats):
    out["batch_stats"] = jax.tree.map(take, host_copy(state.batch_stats))
  return out


def timing_reference(ctx: Any, state: Any = None, params_override: Any = None
                     ) -> tuple[Any, Any] | None:
  """(jitted apply, member-0 variables) of the study's timing reference — its first
  dense variant without a source, the one the hardware lottery divides by — to time in
  alternation with every other measurement (`config.efficiency.paired_timing`); None when
  that is off, timing is off, the study has no such variant, or `state` is the reference
  itself (and `params_override` does not replace its parameters)."""
  opts = ctx.efficiency
  if not (opts.get("paired_timing") and opts["time_it"]):
    return None
  name = next((v.name for v in ctx.variants.values()
               if v.technique == "dense" and v.source is None), None)
  if name is None:
    return None
  if "timing_reference" not in ctx.cache:
    ref = source(ctx, name).state
    ctx.cache["timing_reference"] = (
        ref, jax.jit(lambda v, x: ref.apply_fn(v, x, train=False)), member_variables(ref))
  ref, apply, variables = ctx.cache["timing_reference"]
  if state is ref and params_override is None:
    return None
  return apply, variables


def measure_member(ctx: Any, state: Any, train_config: Any, *, params_override: Any = None,
                   bits_per_leaf: Any = None) -> dict[str, Any]:
  """Efficiency of one member (theoretical and measured side by side; timed in
  alternation with the study's `timing_reference` where there is one)."""
  variables = member_variables(state)
  if params_override is not None:
    variables = {**variables, "params": params_override}
  apply = lambda v, x: state.apply_fn(v, x, train=False)  # noqa: E731
  bits = None
  if bits_per_leaf is not None:  # Bits given for params only; stats stay at 32 bits.
    bits = {"params": bits_per_leaf,
            **({"batch_stats": None} if "batch_stats" in variables else {})}
  opts = ctx.efficiency
  return efficiency.measure(apply, variables, ctx.example_images(train_config),
                            repeats=opts["repeats"], time_it=opts["time_it"],
                            bits_per_leaf=bits,
                            reference=timing_reference(ctx, state, params_override))


def source(ctx: Any, name: str) -> Any:
  """The trained source population `name` (trained now, or restored from its finished
  checkpoint), cached for the run."""
  key = f"trained:{name}"
  if key not in ctx.cache:
    variant = ctx.variants[name]
    ctx.cache[key] = ctx.train(variant)
  return ctx.cache[key]


def _scored(ctx: Any, variant: base.Variant, trained: Any, **extra: Any) -> base.Outcome:
  logits = ctx.evaluate(trained, variant.train_config)
  eff = measure_member(ctx, trained.state, variant.train_config)
  return base.Outcome(members=trained.state.members, efficiency=eff, logits=logits,
                      derived=variant.technique in DERIVED, **extra)


def dense(ctx: Any, variant: base.Variant) -> base.Outcome:
  trained = ctx.train(variant)
  ctx.cache[f"trained:{variant.name}"] = trained
  return _scored(ctx, variant, trained)


def _from_source(src_state: Any, params: Any | None = None,
                 masks: Any | None = None) -> Callable[[Any], Any]:
  """state_fn: a fresh fine-tune state holding the source's weights (and fixed masks)."""
  dense_params = host_copy(src_state.params) if params is None else host_copy(params)
  dense_stats = host_copy(src_state.batch_stats)

  def state_fn(state):
    state = state.replace(params=place_like(dense_params, state.params),
                          batch_stats=place_like(dense_stats, state.batch_stats))
    if masks is not None:
      state = state.replace(opt_state=sparsity.replace_masks(
          state.opt_state, place_like(host_copy(masks),
                                      sparsity.get_masks(state.opt_state))))
    return state

  return state_fn


def _inner_optimizer(train_config: Any) -> Any:
  return optimizers.make_optimizer(train_config.optimizer, int(train_config.train.steps))


def _keep_dense(knobs: Mapping[str, Any]) -> tuple[str, ...]:
  """The `keep_dense` knob: path substrings of leaves never pruned (e.g. a head)."""
  return base.as_tuple(knobs.get("keep_dense"))


def prunable_filter(keep_dense: Sequence[str] = ()) -> Callable[[str, Any], bool]:
  """The default prunable filter less the leaves whose path contains a `keep_dense` part."""
  keep = tuple(keep_dense)
  return lambda name, leaf: (sparsity.default_filter(name, leaf)
                             and not any(s in name for s in keep))


def _pruned_outcome(ctx: Any, variant: base.Variant, trained: Any) -> base.Outcome:
  ctx.cache[f"trained:{variant.name}"] = trained
  achieved = sparsity.measured_sparsity(host_copy(trained.state.params),
                                        prunable_filter(_keep_dense(variant.knobs)))
  return _scored(ctx, variant, trained, study_fields={"achieved_sparsity": {
      k: round(v, 6) for k, v in achieved.items()}})


def pruned_one_shot(ctx: Any, variant: base.Variant) -> base.Outcome:
  k = variant.knobs
  src = source(ctx, variant.source)
  params, masks = sparsity.prune_population(src.state.params, float(k["sparsity"]),
                                            k.get("distribution", "global"),
                                            keep_dense=_keep_dense(k))
  tx = sparsity.masked(_inner_optimizer(variant.train_config), None)
  trained = ctx.train(variant, tx=tx, state_fn=_from_source(src.state, params, masks))
  return _pruned_outcome(ctx, variant, trained)


def pruned_gradual(ctx: Any, variant: base.Variant) -> base.Outcome:
  k = variant.knobs
  schedule = sparsity.gradual(float(k["sparsity"]), int(k["begin_step"]), int(k["end_step"]),
                              int(k["frequency"]), float(k.get("initial_sparsity", 0.0)))
  tx = sparsity.masked(_inner_optimizer(variant.train_config), schedule,
                       k.get("distribution", "global"), keep_dense=_keep_dense(k))
  return _pruned_outcome(ctx, variant, ctx.train(variant, tx=tx))


def pruned_gradual_finetune(ctx: Any, variant: base.Variant) -> base.Outcome:
  k = variant.knobs
  steps = int(variant.train_config.train.steps)
  end = max(1, int(round(float(k["ramp_fraction"]) * steps)) - 1)
  schedule = sparsity.gradual(float(k["sparsity"]), 0, end, int(k["frequency"]))
  tx = sparsity.masked(_inner_optimizer(variant.train_config), schedule,
                       k.get("distribution", "global"))
  src = source(ctx, variant.source)
  trained = ctx.train(variant, tx=tx, state_fn=_from_source(src.state))
  return _pruned_outcome(ctx, variant, trained)


def quantized(ctx: Any, variant: base.Variant) -> base.Outcome:
  k = variant.knobs
  bits, granularity = int(k["bits"]), str(k.get("granularity", "per_channel"))
  src = source(ctx, variant.source)
  qparams = quantization.quantize_population(src.state.params, bits, granularity)
  qstate = src.state.replace(params=qparams)
  config = ctx.variants[variant.source].train_config
  logits = ctx.evaluate(base_trained(src, qstate), config)
  member0 = jax.tree.map(lambda x: np.asarray(x)[0], host_copy(qparams))
  eff = measure_member(ctx, src.state, config, params_override=member0,
                       bits_per_leaf=quantization.quantized_bits_per_leaf(member0, bits))
  variables = {**member_variables(src.state), "params": member0}
  eff["weight_bytes"] = quantization.quantized_bytes(variables, bits, granularity)
  eff.setdefault("notes", {})["weight_bytes"] = (
      f"int{bits} codes packed at {bits} bits + float32 {granularity} scales + other "
      "leaves (biases, norms, batch statistics) at float32; compute stays float32 (fake "
      "quantization), so FLOPs and latency are the float model's")
  return base.Outcome(members=src.state.members, efficiency=eff, logits=logits,
                      derived=True, config=config)


def base_trained(trained: Any, state: Any) -> Any:
  """`trained` with another state (same mesh), e.g. quantized params."""
  return type(trained)(state=state, mesh=trained.mesh, seconds=trained.seconds)


def ensemble_variables(state: Any, size: int, group: int = 0) -> dict[str, Any]:
  """Stacked variables [S, ...] of ensemble `group` (params and batch stats), on host."""
  take = lambda x: np.asarray(x)[group * size:(group + 1) * size]  # noqa: E731
  out = {"params": jax.tree.map(take, host_copy(state.params))}
  if jax.tree.leaves(state.batch_stats):
    out["batch_stats"] = jax.tree.map(take, host_copy(state.batch_stats))
  return out


def divided(ctx: Any, variant: base.Variant) -> base.Outcome:
  k = variant.knobs
  size = int(k["S"])
  config = variant.train_config
  steps = int(config.train.steps)
  plug_ins = []
  weight = float(k.get("cotraining_weight", 0.0))
  if size > 1 and weight > 0:
    plug_ins.append(step_extensions.coupling(ensembles.cotraining_coupling(
        size, str(k.get("cotraining_loss", "js_divergence")), weight,
        int(round(float(k.get("cotraining_warmup_fraction", 0.0)) * steps)))))
  base_seed = int(config.seeds.data)
  trained = ctx.train(variant, extensions=plug_ins,
                      state_fn=lambda st: seeds_lib.group_data_keys(st, size, base_seed))
  member_logits = ctx.evaluate(trained, config)
  combine = str(k.get("combine", "mean_logits"))
  logits = ensembles.ensemble_logits(member_logits, size, combine)
  ctx.save_predictions(f"{variant.name}_members", member_logits, config)
  state = trained.state
  opts = ctx.efficiency
  eff = efficiency.measure_ensemble(
      lambda v, x: state.apply_fn(v, x, train=False), ensemble_variables(state, size),
      ctx.example_images(config), combine=combine, repeats=opts["repeats"],
      batch_sizes=(1, opts["measure_batch"]), reference=timing_reference(ctx))
  member_top1 = float((member_logits.argmax(-1) ==
                       ctx.dataset(config).test.labels[None]).mean())
  fields: dict[str, Any] = {"networks": int(state.members), "ensemble_size": size}
  diversity = ensembles.member_diversity(member_logits, size,
                                         str(k.get("cotraining_loss", "js_divergence")))
  return base.Outcome(members=state.members // size, efficiency=eff, logits=logits,
                      accuracy={"member_top1": member_top1},
                      hidden_costs={"member_diversity": diversity}, study_fields=fields)


# ---------------------------------------------------------------------------------------
# Structured pruning (units removed: a smaller dense model) and N:M masks (dense here).

UNIT_PRUNABLE_MODELS = ("mlp", "cnn")
NM_KERNEL_NOTE = ("2:4 sparse kernels exist on NVIDIA Ampere+ (cuSPARSELt); here it runs "
                  "dense")


def _knob_sparsity(knobs: Mapping[str, Any]) -> float:
  """The `sparsity` knob in [0, 1), else a ValueError naming it."""
  return sparsity.structured.check_sparsity(knobs.get("sparsity"), "knob 'sparsity'")


def _finetune_config(variant: base.Variant) -> Any:
  """The variant's training config (an unlocked copy), with the `finetune_steps` and
  `finetune_learning_rate` knobs applied where given (warm-up capped at a tenth)."""
  c = ml_collections.ConfigDict(variant.train_config.to_dict())
  k = variant.knobs
  if k.get("finetune_steps") is not None:
    steps = int(k["finetune_steps"])
    if steps < 1:
      raise ValueError(f"knob 'finetune_steps'={steps}: expected an integer >= 1")
    c.train.steps = steps
    c.optimizer.warmup_steps = min(int(c.optimizer.get("warmup_steps", 0) or 0), steps // 10)
  if k.get("finetune_learning_rate") is not None:
    c.optimizer.learning_rate = float(k["finetune_learning_rate"])
  return c


def unit_layers(model_name: str, params: Mapping[str, Any]) -> list[Any]:
  """Which layer feeds which, for the unit-prunable registry models (one member's params).

  mlp: dense_i -> dense_{i+1} (the last -> head), with bn_i after dense_i if present.
  cnn: conv_i -> conv_{i+1} (input channels, axis -2); the last conv -> dense through the
  flatten (axis 0, channel fastest); dense -> head; conv_bn_i / dense_bn if present.
  Batch statistics of a norm are sliced with it.
  """
  layer = sparsity.UnitLayer

  def unit(name: str, consumer: str, axis: int, norm: str) -> Any:
    has_bias = "bias" in params[name]
    has_norm = norm in params
    return layer(name, kernel=f"params/{name}/kernel", consumer=f"params/{consumer}/kernel",
                 consumer_axis=axis, bias=f"params/{name}/bias" if has_bias else None,
                 norm_scale=f"params/{norm}/scale" if has_norm and "scale" in params[norm]
                 else None,
                 norm_bias=f"params/{norm}/bias" if has_norm and "bias" in params[norm]
                 else None,
                 per_unit=(f"batch_stats/{norm}/mean", f"batch_stats/{norm}/var")
                 if has_norm else ())

  if model_name == "mlp":
    dense = sorted((k for k in params if k.startswith("dense_")), key=lambda k: int(k[6:]))
    return [unit(name, nxt, 0, f"bn_{name[6:]}")
            for name, nxt in zip(dense, dense[1:] + ["head"])]
  if model_name == "cnn":
    convs = sorted((k for k in params if k.startswith("conv_") and "kernel" in params[k]),
                   key=lambda k: int(k[5:]))
    out = [unit(name, nxt, -2, f"conv_bn_{name[5:]}")
           for name, nxt in zip(convs, convs[1:])]
    if convs:
      out.append(unit(convs[-1], "dense", 0, f"conv_bn_{convs[-1][5:]}"))
    return out + [unit("dense", "head", 0, "dense_bn")]
  raise ValueError(f"pruned_channels knows which layer feeds which only for models "
                   f"{list(UNIT_PRUNABLE_MODELS)}, not {model_name!r}")


def _unit_model_kwargs(model_name: str, layers: Sequence[Any],
                       kept: Mapping[str, np.ndarray]) -> dict[str, Any]:
  """The smaller model's width kwargs: the kept counts, at width multiplier 1."""
  counts = {layer.name: int(np.shape(kept[layer.name])[-1]) for layer in layers}
  if model_name == "mlp":
    return {"hidden": tuple(counts[layer.name] for layer in layers), "width_multiplier": 1.0}
  return {"channels": tuple(counts[layer.name] for layer in layers if layer.name != "dense"),
          "dense": counts["dense"], "width_multiplier": 1.0}


def pruned_channels(ctx: Any, variant: base.Variant) -> base.Outcome:
  """Structured pruning: each member's hidden units (MLP neurons, CNN channels) ranked by
  `score` (`sparsity.structured.SCORES`, default in_out: ||incoming|| x ||outgoing||),
  the top (1 - sparsity) of every layer kept (the same count per member), the registry
  model rebuilt at those widths with exactly the kept units' weights (kernels, biases,
  norms and batch statistics sliced), then fine-tuned (`finetune_steps`,
  `finetune_learning_rate`). Efficiency is measured on the smaller model."""
  k = variant.knobs
  level = _knob_sparsity(k)
  score = sparsity.structured.check_score(k.get("score", sparsity.structured.DEFAULT_SCORE),
                                          "knob 'score'")
  config = _finetune_config(variant)
  model_name = str(config.model.name)
  src = source(ctx, variant.source)
  variables = {"params": host_copy(src.state.params)}
  if jax.tree.leaves(src.state.batch_stats):
    variables["batch_stats"] = host_copy(src.state.batch_stats)
  member0 = jax.tree.map(lambda x: x[0], variables["params"])
  layers = unit_layers(model_name, member0)
  small, kept = sparsity.prune_units_population(variables, layers, level, score)
  config.model.kwargs.update(_unit_model_kwargs(model_name, layers, kept))

  def state_fn(state):
    state = state.replace(params=place_like(small["params"], state.params))
    if "batch_stats" in small:
      state = state.replace(batch_stats=place_like(small["batch_stats"], state.batch_stats))
    return state

  trained = ctx.train(variant, train_config=config, state_fn=state_fn)
  logits = ctx.evaluate(trained, config)
  eff = measure_member(ctx, trained.state, config)
  eff.setdefault("notes", {})["structure"] = (
      f"units removed, not zeroed: a dense {model_name} at widths "
      f"{dict(_unit_model_kwargs(model_name, layers, kept))}; params, FLOPs and latency "
      "are the smaller model's")
  widths = {layer.name: [int(np.shape(sparsity.structured.get_path(
      {"params": member0}, layer.kernel))[-1]), int(np.shape(kept[layer.name])[-1])]
      for layer in layers}  # [source width, kept width]
  return base.Outcome(
      members=trained.state.members, efficiency=eff, logits=logits, derived=True,
      config=config, study_fields={"unit_score": score, "widths": widths,
                                   "kept_units": {n: np.asarray(i).tolist()
                                                  for n, i in kept.items()}})


def _nm_axis_ok(m: int) -> Callable[[str, Any], bool]:
  """Prunable for N:M along the input axis (-2: Dense rows, Conv input channels): the
  default filter, and that axis a multiple of m (a first conv on 1 or 3 channels stays
  dense)."""
  def ok(name: str, leaf: Any) -> bool:
    return sparsity.default_filter(name, leaf) and np.shape(leaf)[-2] % m == 0
  return ok


def pruned_nm(ctx: Any, variant: base.Variant) -> base.Outcome:
  """N:M structured sparsity (knobs `n`, `m`; e.g. 2:4): in every run of m consecutive
  weights along each kernel's input axis (the reduction axis sparse tensor cores
  compress), keep the n largest |w| of each trained source member, then fine-tune with
  those masks fixed. The model stays dense: on this backend no N:M kernel exists, so
  FLOPs and latency are the dense model's (`efficiency.notes.sparse_kernels`)."""
  k = variant.knobs
  n, m = k.get("n"), k.get("m")
  if not (isinstance(n, int) and isinstance(m, int) and not isinstance(n, bool)
          and 0 < n < m):
    raise ValueError(f"knobs 'n'={n!r}, 'm'={m!r}: N:M needs integers 0 < n < m")
  config = _finetune_config(variant)
  src = source(ctx, variant.source)
  filter_fn = _nm_axis_ok(m)
  masks = jax.jit(jax.vmap(lambda p: sparsity.nm_masks(p, n, m, axis=-2,
                                                       filter_fn=filter_fn)))(
                                                           src.state.params)
  params = sparsity.apply_masks(src.state.params, masks)
  tx = sparsity.masked(_inner_optimizer(config), None)
  trained = ctx.train(variant, train_config=config, tx=tx,
                      state_fn=_from_source(src.state, params, masks))
  logits = ctx.evaluate(trained, config)
  eff = measure_member(ctx, trained.state, config)
  kernel_note = (NM_KERNEL_NOTE if (n, m) == (2, 4) else
                 f"{n}:{m} sparse kernels exist on no common backend; here it runs dense")
  eff.setdefault("notes", {})["sparse_kernels"] = kernel_note
  member0 = jax.tree.map(lambda x: np.asarray(x)[0], host_copy(src.state.params))
  dense_leaves = [name for name, leaf in (
      (sparsity.path_name(path), leaf)
      for path, leaf in jax.tree_util.tree_leaves_with_path(member0))
      if sparsity.default_filter(name, leaf) and not filter_fn(name, leaf)]
  achieved = sparsity.measured_sparsity(host_copy(trained.state.params))
  return base.Outcome(
      members=trained.state.members, efficiency=eff, logits=logits, derived=True,
      config=config, study_fields={
          "pattern": f"{n}:{m}", "axis": "input (-2)", "dense_leaves": dense_leaves,
          "runs_dense_here": True, "sparse_kernels": kernel_note,
          "achieved_sparsity": {key: round(v, 6) for key, v in achieved.items()}})


# ---------------------------------------------------------------------------------------
# Fast/slow cascades (combined from saved predictions) and distillation with worst-class
# objectives (`tradeoffs.cascades`, `tradeoffs.distill`).

CASCADE_POLICIES = ("confidence", "random")


def cascade_efficiency(ctx: Any, fast: str, slow: str, rate: float,
                       cost: str = "latency_ms") -> dict[str, Any]:
  """Expected efficiency of a cascade from the fast and slow variants' records: the fast
  model always runs, the slow one on a fraction `rate`, so latency and FLOPs are
  c_fast + rate·c_slow (computed from measured latencies and counted FLOPs, not timed);
  both models are deployed, so params and weight bytes add up."""
  ef, es = ctx.records[fast]["efficiency"], ctx.records[slow]["efficiency"]
  out: dict[str, Any] = {}
  for key in ("latency_ms", "flops", "bytes"):
    if ef.get(key) is not None and es.get(key) is not None:
      out[key] = float(cascades.expected_cost(rate, ef[key], es[key]))
  for key in ("params", "nonzero_params", "weight_bytes"):
    if ef.get(key) is not None and es.get(key) is not None:
      out[key] = ef[key] + es[key]
  out["invocation_rate"] = float(rate)
  out["notes"] = {"latency_ms": (
      f"expected, computed: {fast}'s measured latency + invocation rate × {slow}'s "
      "(medians at batch 1); not timed"),
      "flops": "expected: fast FLOPs + rate × slow FLOPs",
      "params": "fast + slow (both deployed)", "cost": cost}
  return out


def _cascade_rates(ctx: Any, knobs: Mapping[str, Any], members: int) -> np.ndarray:
  if knobs.get("match"):
    fields = ctx.records[str(knobs["match"])].get("study_fields") or {}
    return np.asarray(fields["per_member_rate"], np.float64)
  rate = float(knobs["rate"])
  if not 0.0 <= rate <= 1.0:
    raise ValueError(f"knob 'rate'={rate}: an invocation rate lies in [0, 1]")
  return np.full(members, rate)


def cascade(ctx: Any, variant: base.Variant) -> base.Outcome:
  """A fast/slow cascade from two recorded variants' saved test predictions, no
  retraining: knobs `fast`, `slow` (variant names; the variant's source is the slow one),
  `rate` (the invocation rate) or `match` (a recorded cascade variant whose per-member
  rates to match), `policy` ('confidence': invoke the slow model on the round(rate·N)
  least confident fast outputs, a confidence-threshold cascade; 'random': on
  round(rate·N) random ones, `seed`). Member i pairs fast member i with slow member i."""
  k = variant.knobs
  policy = str(k.get("policy", "confidence"))
  if policy not in CASCADE_POLICIES:
    raise ValueError(f"knob 'policy'={policy!r}; choose from {list(CASCADE_POLICIES)}")
  fast_p, slow_p = ctx.predictions(str(k["fast"])), ctx.predictions(str(k["slow"]))
  if fast_p.logits.shape != slow_p.logits.shape:
    raise ValueError(f"fast {fast_p.logits.shape} and slow {slow_p.logits.shape} "
                     "predictions differ in members or examples")
  members, n = fast_p.logits.shape[:2]
  rates = _cascade_rates(ctx, k, members)
  if policy == "random":
    invoke = cascades.random_at_rate(n, rates, int(k.get("seed", 0)), members)
  else:
    invoke = cascades.invoke_at_rate(-cascades.features(fast_p.logits)["confidence"], rates)
  logits = cascades.combine(fast_p.logits, slow_p.logits, invoke)
  summary = cascades.summary(invoke)
  eff = cascade_efficiency(ctx, str(k["fast"]), str(k["slow"]), summary["rate"],
                           str(k.get("cost", "latency_ms")))
  return base.Outcome(members=members, efficiency=eff, logits=logits, derived=True,
                      config=ctx.variants[str(k["slow"])].train_config,
                      study_fields={**summary, "policy": policy})


def _carry_state(previous: Any) -> Callable[[Any], Any]:
  """state_fn: the previous round's whole state (params, optimizer, step, keys), copied
  into fresh buffers with the new state's shardings (training donates)."""
  fields = ("step", "params", "batch_stats", "opt_state", "rngs")
  host = {f: host_copy(getattr(previous, f)) for f in fields}
  return lambda state: state.replace(**{f: place_like(host[f], getattr(state, f))
                                        for f in fields})


def validation_split(ctx: Any, train_config: Any) -> Any:
  """The dataset's held-out `validation` split (digits_long_tail, digits_heldout)."""
  name = str(train_config.dataset.name)
  key = f"validation:{name}"
  if key not in ctx.cache:
    ctx.cache[key] = data_lib.load_validation(
        name, train_config.dataset.get("data_dir") or None)
  return ctx.cache[key]


@dataclasses.dataclass(frozen=True)
class Holdout:
  """The data an objective-trained variant trains on, its validation split (None: the
  dataset's own, loaded when first needed), the rows of the config's training split
  trained on (None: all) and what the record says about it."""
  data: Any
  validation: Any
  train_rows: np.ndarray | None
  fields: Mapping[str, Any]


def carved_validation(ctx: Any, variant: base.Variant) -> Holdout:
  """Knob `validation_per_class` (an integer >= 1) carves a seeded, stratified validation
  split from the config's training split (`long_tail.subsample` with knob
  `validation_seed`, default 0: per class one permutation, its first n rows held out),
  for datasets without one (digits_groups); the variant trains on the remaining rows and
  the test split is untouched. Without the knob: the config's dataset as it is."""
  k, config = variant.knobs, variant.train_config
  data = ctx.dataset(config)
  if k.get("validation_per_class") is None:
    return Holdout(data, None, None, {})
  per_class, seed = k["validation_per_class"], k.get("validation_seed", 0)
  if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or per_class < 1:
    raise ValueError(f"knob 'validation_per_class'={per_class!r}: expected an integer >= 1")
  train_rows, validation_rows = data_lib.subsample(
      data.train.labels, None, validation_per_class=int(per_class), seed=int(seed))
  carved = dataclasses.replace(data, train=data.train.take(train_rows))
  validation = data.train.take(validation_rows)
  fields = {"validation": {
      "carved_from": "train", "per_class": int(per_class), "seed": int(seed),
      "examples": len(validation_rows), "ids": validation.ids.tolist(),
      "train_examples": len(train_rows), "train_ids": carved.train.ids.tolist()}}
  return Holdout(carved, validation, train_rows, fields)


def _population_logits(state: Any, mesh: Any, split: Any, train_config: Any) -> np.ndarray:
  batch = int((train_config.get("eval") or {}).get("batch_size", 512) or 512)
  return np.asarray(pop_lib.predict(state, split.images, batch_size=batch, mesh=mesh))


def _objective_knobs(k: Mapping[str, Any]) -> tuple[str, float, float, int]:
  objective = distill.check_objective(str(k.get("objective", "standard")))
  alpha = distill.check_alpha(k.get("alpha", 1.0))
  eg_step = float(k.get("eg_step", 1.0))
  rounds = int(k.get("eg_rounds", 1)) if objective == "robust" else 1
  if not eg_step >= 0 or rounds < 1:
    raise ValueError(f"knobs 'eg_step'={eg_step} (>= 0) and 'eg_rounds'={rounds} (>= 1)")
  return objective, alpha, eg_step, rounds


def train_objective(ctx: Any, variant: base.Variant, extensions: Sequence[Any] = (),
                    extras: Mapping[str, Any] | None = None,
                    holdout: Holdout | None = None) -> tuple[Any, dict[str, Any]]:
  """Trains `variant` under its worst-class objective (knobs `objective`, `alpha`,
  `eg_step`, `eg_rounds`; `tradeoffs.distill.robust`): examples of class y weighted by
  target_y / π_y. `robust` trains in `eg_rounds` equal rounds; after each but the last,
  λ takes one exponentiated-gradient step on the population's mean per-class error on
  the validation split (λ is one vector for the population: the trainer's per-example
  inputs are shared by members). Each round resumes from the last (one optimizer, one
  schedule over all steps); the last round's checkpoint is the variant's own. The data
  and validation split are `carved_validation`'s (`holdout`: its result, computed once
  by a caller whose per-example `extras` follow the carved training rows)."""
  objective, alpha, eg_step, rounds = _objective_knobs(variant.knobs)
  config = variant.train_config
  holdout = holdout or carved_validation(ctx, variant)
  data, validation = holdout.data, holdout.validation
  if validation is None and rounds > 1:
    validation = validation_split(ctx, config)
  labels = np.asarray(data.train.labels)
  priors = distill.class_priors(labels, data.num_classes)
  total = int(config.train.steps)
  tx = optimizers.make_optimizer(config.optimizer, total)
  weights_ext = step_extensions.StepExtension(
      name="class_weights", inputs=("class_weight",),
      example_weights=lambda losses, batch: batch.extras["class_weight"])
  lam = distill.uniform(data.num_classes)
  history, risks = [lam.tolist()], []
  trained = None
  for r in range(rounds):
    target = distill.target_weights(objective, priors, lam, alpha)
    weights = distill.example_weights(target, priors)[labels].astype(np.float32)
    round_config = ml_collections.ConfigDict(config.to_dict())
    round_config.train.steps = max(1, int(round(total * (r + 1) / rounds)))
    last = r == rounds - 1
    trained = ctx.train(variant, train_config=config if last else round_config,
                        name=variant.name if last else f"{variant.name}_round{r}", tx=tx,
                        extensions=[weights_ext, *extensions],
                        extras={"class_weight": weights, **dict(extras or {})},
                        state_fn=None if trained is None else _carry_state(trained.state),
                        dataset=data)
    if not last:
      logits = _population_logits(trained.state, trained.mesh, validation, config)
      risk = np.nanmean(distill.per_class_error(logits, validation.labels,
                                                data.num_classes), 0)
      lam = distill.eg_update(lam, risk, eg_step)
      history.append(lam.tolist())
      risks.append(risk.tolist())
  fields = {"objective": objective, "alpha": alpha, "class_priors": priors.tolist(),
            "target_weights": target.tolist(), "lambda_history": history,
            "validation_error_history": risks, "eg_rounds": rounds, **holdout.fields}
  return trained, fields


def _save_train_logits(ctx: Any, name: str, trained: Any, config: Any) -> np.ndarray:
  logits = ctx.evaluate(trained, config, split="train")
  ctx.save_predictions(f"{name}_train", logits, config, split="train")
  ctx.cache[f"train_logits:{name}"] = logits
  return logits


def worst_class(ctx: Any, variant: base.Variant) -> base.Outcome:
  """Training from labels under a worst-class objective (`train_objective`); the
  train-split logits are saved (`<name>_train`) for students that distil from it."""
  trained, fields = train_objective(ctx, variant)
  ctx.cache[f"trained:{variant.name}"] = trained
  _save_train_logits(ctx, variant.name, trained, variant.train_config)
  return _scored(ctx, variant, trained, study_fields=fields)


def teacher_train_logits(ctx: Any, name: str) -> np.ndarray:
  """The teacher's logits on the training split [members, N, C]: saved by its producer,
  else computed from its trained population."""
  key = f"train_logits:{name}"
  if key not in ctx.cache:
    try:
      ctx.cache[key] = ctx.predictions(f"{name}_train").logits
    except ValueError:
      config = ctx.variants[name].train_config
      _save_train_logits(ctx, name, source(ctx, name), config)
  return ctx.cache[key]


def distilled(ctx: Any, variant: base.Variant) -> base.Outcome:
  """Knowledge distillation from the variant's source (the teacher): per example
  CE + distill_weight·T²·KL(softmax(t/T) ‖ softmax(s/T)) (`tradeoffs.distill.kd`), both
  terms weighted by the student's worst-class objective (knobs `objective`, `alpha`,
  `eg_step`, `eg_rounds`; `validation_per_class`, `validation_seed`: a validation split
  carved from the training split, `carved_validation`); knobs `temperature`,
  `distill_weight` (default 1),
  `teacher_member` (default 0: every student member distils from that teacher member —
  the trainer's per-example inputs are shared by members). The teacher's train-split
  logits reach the step as the per-example input `teacher_logits`."""
  k = variant.knobs
  temperature = distill.check_temperature(k.get("temperature", 1.0))
  weight = float(k.get("distill_weight", 1.0))
  if not weight >= 0:
    raise ValueError(f"knob 'distill_weight'={weight} must be >= 0")
  if variant.source is None:
    raise ValueError(f"variant {variant.name!r}: distillation needs its teacher as source")
  teacher_config = ctx.variants[variant.source].train_config
  if teacher_config is not None and (str(teacher_config.dataset.name)
                                     != str(variant.train_config.dataset.name)):
    raise ValueError(f"teacher {variant.source!r} was trained on "
                     f"{teacher_config.dataset.name!r}, the student on "
                     f"{variant.train_config.dataset.name!r}: a teacher's train logits "
                     "must cover the student's training set")
  logits = teacher_train_logits(ctx, variant.source)
  member = int(k.get("teacher_member", 0))
  if not 0 <= member < logits.shape[0]:
    raise ValueError(f"knob 'teacher_member'={member}: the teacher has {logits.shape[0]} "
                     "members")
  holdout = carved_validation(ctx, variant)
  if holdout.train_rows is not None:  # The teacher's logits of the rows trained on.
    logits = logits[:, holdout.train_rows]

  def member_loss(student_logits, batch):
    w = batch.extras["class_weight"]
    kl = distill.distillation_kl(batch.extras["teacher_logits"], student_logits,
                                 temperature)
    return weight * jax.numpy.sum(w * kl) / jax.numpy.maximum(jax.numpy.sum(w), 1e-12)

  kd = step_extensions.StepExtension(name="distillation",
                                     inputs=("teacher_logits", "class_weight"),
                                     member_loss=member_loss)
  trained, fields = train_objective(ctx, variant, [kd],
                                    {"teacher_logits": logits[member].astype(np.float32)},
                                    holdout)
  ctx.cache[f"trained:{variant.name}"] = trained
  fields.update(temperature=temperature, distill_weight=weight, teacher=variant.source,
                teacher_member=member)
  return _scored(ctx, variant, trained, study_fields=fields)


def dp_sgd(ctx: Any, variant: base.Variant) -> base.Outcome:
  """DP-SGD (Abadi et al. 2016) from scratch: each example's gradient clipped to
  `clip_norm`, summed, N(0, (noise_multiplier · clip_norm)²) added, divided by the batch
  (`privacy.dp_sgd` in the optax state, the per-example gradients through a step
  extension), then the config's optimizer. Member m's noise seed is `noise_seed` + m. ε at
  `delta` (default 1e-5) from dp-accounting's RDP accountant for train.steps Poisson-sampled
  steps at rate batch / train examples (`privacy.dp_sgd_epsilon`, conversion knob
  `conversion`, default 'improved'); the trainer shuffles fixed-size batches, which is
  accounted as if Poisson-sampled. Recorded in `study_fields` and `hidden_costs.epsilon`
  (inf, stored null, for noise_multiplier 0: clipping only)."""
  k = variant.knobs
  config = variant.train_config
  sigma = privacy.accounting.check_noise_multiplier(k.get("noise_multiplier"),
                                                    "knob 'noise_multiplier'")
  clip = privacy.check_clip_norm(k.get("clip_norm"), "knob 'clip_norm'")
  delta = privacy.accounting.check_delta(k.get("delta", 1e-5), "knob 'delta'")
  conversion = str(k.get("conversion", privacy.accounting.DEFAULT_CONVERSION))
  seed = int(k.get("noise_seed", 0))
  n = len(ctx.dataset(config).train.labels)
  batch, steps = int(config.train.batch_size), int(config.train.steps)
  if batch > n:
    raise errors.ConfigError(f"--config.train.batch_size={batch} must be <= the {n} training "
                             "examples: DP-SGD's sample rate batch / examples is at most 1")
  seeds = seed + np.arange(int(config.population.members))
  tx = privacy.dp_sgd(clip, sigma, seed, inner=_inner_optimizer(config))
  trained = ctx.train(
      variant, tx=tx,
      extensions=[step_extensions.StepExtension(name="dp_sgd", per_example_grads=True)],
      state_fn=lambda st: st.replace(opt_state=privacy.with_noise_seeds(st.opt_state, seeds)))
  eps = privacy.dp_sgd_epsilon(sigma, batch / n, steps, delta, conversion=conversion)
  fields = {"epsilon": eps, "delta": delta, "noise_multiplier": sigma, "clip_norm": clip,
            "sample_rate": batch / n, "steps": steps, "train_examples": n,
            "noise_seeds": seeds.tolist(), "conversion": conversion,
            "accountant": "dp-accounting RDP, Poisson-sampled Gaussian (add/remove one)",
            "sampling": "shuffled fixed-size batches, accounted as Poisson sampling",
            "train_seconds": trained.seconds}
  return _scored(ctx, variant, trained, study_fields=fields, hidden_costs={"epsilon": eps})


# ---------------------------------------------------------------------------------------
# Loss-prioritized training (Selective Backprop, loss-proportional, uniform selection).

NOISY_INPUT = "label_changed"  # per-example 0/1: this example's training label was changed


@functools.lru_cache(maxsize=32)
def selection_extension(method: str, backward_size: int, beta: float = 1.0,
                        floor: float = 0.0, history_size: int = selection.HISTORY_SIZE
                        ) -> step_extensions.StepExtension:
  """The step extension choosing `backward_size` examples of each forward-passed batch by
  `method` (`tradeoffs.selection`). Its carried state: the selection key, Selective
  Backprop's loss history, and running counts of forward-passed / selected examples and of
  those whose label was changed (per-example input `label_changed`). Cached, so variants
  with the same knobs share one compiled step."""
  if method not in selection.METHODS:
    raise ValueError(f"knob 'method'={method!r}; choose from {list(selection.METHODS)}")
  beta = selection.check_beta(beta, "knob 'beta'")
  zero = lambda: jax.numpy.zeros((), jax.numpy.int32)  # noqa: E731

  def init_state(key):
    history = selection.empty_history(history_size)
    return {"key": jax.random.key_data(key), "losses": history.losses,
            "history_count": history.count, "forward": zero(), "forward_noisy": zero(),
            "selected": zero(), "selected_noisy": zero()}

  def select(losses, batch):
    st = dict(batch.state)
    key = jax.random.fold_in(jax.random.wrap_key_data(st["key"]), batch.step)
    if method == "selective_backprop":
      history, indices, weights, _ = selection.selective_backprop(
          key, selection.LossHistory(st["losses"], st["history_count"]), losses, beta,
          backward_size, floor)
      st["losses"], st["history_count"] = history.losses, history.count
    elif method == "loss_proportional":
      indices, weights = selection.loss_proportional(key, losses, backward_size)
    else:
      indices, weights = selection.uniform(key, losses.shape[0], backward_size)
    noisy = batch.extras[NOISY_INPUT].astype(jax.numpy.int32)
    kept = (weights > 0).astype(jax.numpy.int32)
    st["forward"] += losses.shape[0]
    st["forward_noisy"] += jax.numpy.sum(noisy)
    st["selected"] += jax.numpy.sum(kept)
    st["selected_noisy"] += jax.numpy.sum(kept * noisy[indices])
    return indices, weights, st

  return step_extensions.StepExtension(
      name="selection", inputs=(NOISY_INPUT,), init_state=init_state, select=select,
      backward_size=int(backward_size))


def noisy_training_set(ctx: Any, train_config: Any, rate: float, seed: int,
                       kind: str = "uniform") -> tuple[Any, np.ndarray]:
  """The config's dataset with `rate` of its training labels changed (`data.noise`) and
  the 0/1 mask of the changed examples; the changed example ids go to
  workdir/label_noise/rate<rate>_seed<seed>/changed_ids.json."""
  data = ctx.dataset(train_config)
  labels, changed = data_noise.label_noise(data.train.labels, num_classes=data.num_classes,
                                           rate=rate, seed=seed, kind=kind)
  mask = np.zeros(len(labels), np.int32)
  mask[changed] = 1
  if workdir_lib.is_writer():
    data_noise.write_changed_ids(
        os.path.join(ctx.workdir, "label_noise", f"rate{rate:g}_seed{seed}_{kind}"),
        {"train": data.train.ids[changed]}, rate=rate, seed=seed, kind=kind)
  noisy = dataclasses.replace(data, train=dataclasses.replace(data.train, labels=labels))
  return noisy, mask


def loss_prioritized(ctx: Any, variant: base.Variant) -> base.Outcome:
  """Training on a label-noised training set (knobs `label_noise` rate, default 0,
  `noise_seed`, `noise_kind`) with example selection: knob `method` 'full' (every
  example backpropagated: plain training), or 'uniform' / 'selective_backprop' (knobs
  `beta`, `floor`, `history_size`) / 'loss_proportional' choosing k =
  round(`backward_fraction` · batch) examples of each forward-passed batch, which alone go
  through forward + backward. Counted per member: `backward_examples` (rows through the
  backward pass, k per step, padding included: what the wall-clock reflects) and
  `selected_examples` (rows with nonzero weight), and the share of the selected whose
  label was changed (the null: the share among forward-passed examples)."""
  k, config = variant.knobs, variant.train_config
  rate = float(k.get("label_noise", 0.0))
  dataset, mask = noisy_training_set(ctx, config, rate, int(k.get("noise_seed", 0)),
                                     str(k.get("noise_kind", "uniform")))
  method = str(k.get("method", "selective_backprop"))
  batch, steps = int(config.train.batch_size), int(config.train.steps)
  members = int(config.population.members)
  fields: dict[str, Any] = {"method": method, "label_noise": rate,
                            "changed_labels": int(mask.sum())}
  if method == "full":
    trained = ctx.train(variant, dataset=dataset)
    per_member = np.full(members, batch * steps, np.int64)
    fields.update(backward_examples=per_member.tolist(), selected_examples=per_member.tolist(),
                  backward_size=batch)
  else:
    size = max(1, int(round(float(k.get("backward_fraction", 0.5)) * batch)))
    ext = selection_extension(method, size, float(k.get("beta", 1.0)),
                              float(k.get("floor", 0.0)),
                              int(k.get("history_size", selection.HISTORY_SIZE)))
    trained = ctx.train(variant, dataset=dataset, extensions=[ext],
                        extras={NOISY_INPUT: mask})
    counts = {name: np.asarray(v).astype(np.int64) for name, v in host_copy(
        trained.state.extension_state["selection"]).items()
        if name in ("forward", "forward_noisy", "selected", "selected_noisy")}
    fields.update(backward_examples=[size * steps] * members, backward_size=size,
                  selected_examples=counts["selected"].tolist(),
                  forward_examples=counts["forward"].tolist(),
                  selected_noisy_share=(counts["selected_noisy"]
                                        / np.maximum(counts["selected"], 1)).tolist(),
                  forward_noisy_share=(counts["forward_noisy"]
                                       / np.maximum(counts["forward"], 1)).tolist())
  fields["train_seconds"] = trained.seconds
  ctx.cache[f"trained:{variant.name}"] = trained
  return _scored(ctx, variant, trained, study_fields=fields)


RECIPES: Mapping[str, Callable[[Any, base.Variant], base.Outcome]] = {
    "dense": dense, "pruned_one_shot": pruned_one_shot, "pruned_gradual": pruned_gradual,
    "pruned_gradual_finetune": pruned_gradual_finetune, "quantized": quantized,
    "divided": divided, "pruned_channels": pruned_channels, "pruned_nm": pruned_nm,
    "cascade": cascade, "worst_class": worst_class, "distilled": distilled,
    "dp_sgd": dp_sgd, "loss_prioritized": loss_prioritized,
}


def produce(ctx: Any, variant: base.Variant) -> base.Outcome:
  """The recipe named by `variant.technique`."""
  if variant.technique not in RECIPES:
    raise ValueError(f"technique {variant.technique!r} has no recipe; recipes: "
                     f"{sorted(RECIPES)}")
  return RECIPES[variant.technique](ctx, variant)
