"""Shared producers: the techniques every study (and the main job's frontier) builds on.

A recipe is `produce(ctx, variant) -> Outcome` for one technique; a study's `produce` can
simply be `recipes.produce`. Each recipe reads its knobs from `variant.knobs` (plain
values) and its training config from `variant.train_config`; the variant's `source`
names the trained population it starts from.

Techniques and their one definition each:

  dense                    train the variant's config from scratch.
  pruned_one_shot          rank each member's trained source weights by magnitude, keep
                           exactly round((1-s)·n) (knob `distribution`: global or
                           layer-wise), zero the rest, then fine-tune for
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
  divided                  R ensembles of S members (`train_config.population.members`
                           = R·S), the S members of an ensemble on the same batches, the
                           co-training loss of each ensemble added with weight
                           `cotraining_weight` (0: independent members), combined by
                           `combine`; scored as R ensembles.

Efficiency is measured on member 0 (one model) or ensemble 0 (one ensemble), at batch 1
and `config.efficiency.measure_batch`; latency is a median with its spread.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import jax
import numpy as np

from tradeoffs import efficiency
from tradeoffs import ensembles
from tradeoffs import quantization
from tradeoffs import sparsity
from tradeoffs.studies import base
from tradeoffs.train import distributed
from tradeoffs.train import extensions as step_extensions
from tradeoffs.train import optimizers
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


def measure_member(ctx: Any, state: Any, train_config: Any, *, params_override: Any = None,
                   bits_per_leaf: Any = None) -> dict[str, Any]:
  """Efficiency of one member (theoretical and measured side by side)."""
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
                            bits_per_leaf=bits)


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


def _pruned_outcome(ctx: Any, variant: base.Variant, trained: Any) -> base.Outcome:
  achieved = sparsity.measured_sparsity(host_copy(trained.state.params))
  return _scored(ctx, variant, trained, study_fields={"achieved_sparsity": {
      k: round(v, 6) for k, v in achieved.items()}})


def pruned_one_shot(ctx: Any, variant: base.Variant) -> base.Outcome:
  k = variant.knobs
  src = source(ctx, variant.source)
  params, masks = sparsity.prune_population(src.state.params, float(k["sparsity"]),
                                            k.get("distribution", "global"))
  tx = sparsity.masked(_inner_optimizer(variant.train_config), None)
  trained = ctx.train(variant, tx=tx, state_fn=_from_source(src.state, params, masks))
  return _pruned_outcome(ctx, variant, trained)


def pruned_gradual(ctx: Any, variant: base.Variant) -> base.Outcome:
  k = variant.knobs
  schedule = sparsity.gradual(float(k["sparsity"]), int(k["begin_step"]), int(k["end_step"]),
                              int(k["frequency"]), float(k.get("initial_sparsity", 0.0)))
  tx = sparsity.masked(_inner_optimizer(variant.train_config), schedule,
                       k.get("distribution", "global"))
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
      batch_sizes=(1, opts["measure_batch"]))
  member_top1 = float((member_logits.argmax(-1) ==
                       ctx.dataset(config).test.labels[None]).mean())
  fields: dict[str, Any] = {"networks": int(state.members), "ensemble_size": size}
  diversity = ensembles.member_diversity(member_logits, size,
                                         str(k.get("cotraining_loss", "js_divergence")))
  return base.Outcome(members=state.members // size, efficiency=eff, logits=logits,
                      accuracy={"member_top1": member_top1},
                      hidden_costs={"member_diversity": diversity}, study_fields=fields)


RECIPES: Mapping[str, Callable[[Any, base.Variant], base.Outcome]] = {
    "dense": dense, "pruned_one_shot": pruned_one_shot, "pruned_gradual": pruned_gradual,
    "pruned_gradual_finetune": pruned_gradual_finetune, "quantized": quantized,
    "divided": divided,
}


def produce(ctx: Any, variant: base.Variant) -> base.Outcome:
  """The recipe named by `variant.technique`."""
  if variant.technique not in RECIPES:
    raise ValueError(f"technique {variant.technique!r} has no recipe; recipes: "
                     f"{sorted(RECIPES)}")
  return RECIPES[variant.technique](ctx, variant)
