"""tradeoffs from other JAX projects: a Flax NNX model, a plain-dict MLP in jax.numpy, and
(optional) an Equinox model — pruned, quantized and scored without Linen or tradeoffs.train.

Every framework goes through the same four steps, each a plain function of pytrees:

1. train a small population (members stacked on a leading axis, `jax.vmap` of one step) with
   plain optax on the embedded `digits_groups` set;
2. prune it while fine-tuning: `sparsity.masked(optax.adam(...), sparsity.one_shot(...))`
   keeps the masks in the optax state (`sparsity.get_masks(opt_state)`), and pruned weights
   stay exactly zero;
3. quantize the pruned population: `quantization.quantize_population` (per output channel:
   axis -1 for NNX / plain [in, out] kernels, axis 0 for Equinox's [out, in] weights);
4. score the framework's own predictions [members, examples, classes]:
   `exemplars.cie`, `exemplars.group_breakdown`, `fairness.by_group`,
   `fairness.worst_group_accuracy`.

    python examples/other_frameworks.py            # all frameworks, ~1 min on 2 CPU cores
    python examples/other_frameworks.py --steps=50 # faster

The only framework-specific code is "init one member" and "apply one member"; everything
tradeoffs does is on the pytree of arrays the framework hands out.
"""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tradeoffs import data
from tradeoffs import exemplars
from tradeoffs import fairness
from tradeoffs import quantization
from tradeoffs import sparsity

HIDDEN = 64
NUM_CLASSES = 10
INPUTS = 64  # 8x8 digits, flattened


@dataclasses.dataclass(frozen=True)
class Framework:
  """How to make and run one member: everything else is shared."""
  name: str
  init: Callable[[int], Any]                      # seed -> params pytree
  apply: Callable[[Any, jax.Array], jax.Array]    # (params, x [N, 64]) -> logits [N, 10]
  channel_axis: int = -1                          # output-channel axis of its weights


# --- plain dict MLP, jax.numpy only ---------------------------------------------------

def dict_init(seed: int) -> dict:
  k1, k2 = jax.random.split(jax.random.key(seed))
  glorot = jax.nn.initializers.glorot_uniform()
  return {"w1": glorot(k1, (INPUTS, HIDDEN)), "b1": jnp.zeros(HIDDEN),
          "w2": glorot(k2, (HIDDEN, NUM_CLASSES)), "b2": jnp.zeros(NUM_CLASSES)}


def dict_apply(params: dict, x: jax.Array) -> jax.Array:
  h = jax.nn.relu(x @ params["w1"] + params["b1"])
  return h @ params["w2"] + params["b2"]


PLAIN = Framework("plain_dict", dict_init, dict_apply)


# --- Flax NNX ----------------------------------------------------------------------------

def nnx_framework() -> Framework:
  from flax import nnx

  class MLP(nnx.Module):
    def __init__(self, rngs: nnx.Rngs):
      self.hidden = nnx.Linear(INPUTS, HIDDEN, rngs=rngs)
      self.norm = nnx.LayerNorm(HIDDEN, rngs=rngs)
      self.head = nnx.Linear(HIDDEN, NUM_CLASSES, rngs=rngs)

    def __call__(self, x):
      return self.head(jax.nn.relu(self.norm(self.hidden(x))))

  graphdef, _ = nnx.split(nnx.eval_shape(lambda: MLP(nnx.Rngs(0))))

  def init(seed: int):
    _, params = nnx.split(MLP(nnx.Rngs(seed)))  # an nnx.State: a pytree of arrays
    return params

  def apply(params, x):
    return nnx.merge(graphdef, params)(x)

  return Framework("flax_nnx", init, apply)


# --- Equinox (optional) ------------------------------------------------------------------

def equinox_framework() -> Framework:
  import equinox as eqx

  template = eqx.nn.MLP(INPUTS, NUM_CLASSES, HIDDEN, depth=1, key=jax.random.key(0))
  _, static = eqx.partition(template, eqx.is_array)

  def init(seed: int):
    model = eqx.nn.MLP(INPUTS, NUM_CLASSES, HIDDEN, depth=1, key=jax.random.key(seed))
    params, _ = eqx.partition(model, eqx.is_array)
    return params

  def apply(params, x):
    return jax.vmap(eqx.combine(params, static))(x)

  # Equinox Linear weights are [out, in]: output channels on axis 0.
  return Framework("equinox", init, apply, channel_axis=0)


def frameworks(include_equinox: bool = True) -> list[Framework]:
  out = [PLAIN, nnx_framework()]
  if include_equinox:
    try:
      out.append(equinox_framework())
    except ImportError:  # pip install 'tradeoffs[equinox]'
      pass
  return out


# --- the shared, framework-free part -------------------------------------------------------

def load_digits():
  ds = data.load("digits_groups")
  flat = lambda split: jnp.asarray(split.images.reshape(len(split), -1))  # noqa: E731
  return ds, flat(ds.train), jnp.asarray(ds.train.labels), flat(ds.test)


def init_population(fw: Framework, members: int, seed: int = 0):
  """Members stacked on a leading axis (each member its own init seed)."""
  return jax.tree.map(lambda *xs: jnp.stack(xs), *[fw.init(seed + i) for i in range(members)])


def train_population(fw: Framework, params, tx: optax.GradientTransformation, x, y, *,
                     steps: int, batch_size: int = 128, seed: int = 0):
  """Plain optax on a population: one compiled program, `jax.vmap` over members."""
  def loss_fn(p, xb, yb):
    return optax.softmax_cross_entropy_with_integer_labels(fw.apply(p, xb), yb).mean()

  def member_step(p, opt_state, xb, yb):
    grads = jax.grad(loss_fn)(p, xb, yb)
    updates, opt_state = tx.update(grads, opt_state, p)
    return optax.apply_updates(p, updates), opt_state

  members = jax.tree.leaves(params)[0].shape[0]

  @jax.jit
  def run(params, opt_state):
    def body(carry, step):
      p, s = carry
      # Every member draws its own batch (data order varies with the member).
      keys = jax.vmap(lambda m: jax.random.fold_in(jax.random.key(seed + m), step))(
          jnp.arange(members))
      idx = jax.vmap(lambda k: jax.random.choice(k, x.shape[0], (batch_size,)))(keys)
      return jax.vmap(member_step)(p, s, x[idx], y[idx]), None
    (params, opt_state), _ = jax.lax.scan(body, (params, opt_state), jnp.arange(steps))
    return params, opt_state

  opt_state = jax.vmap(tx.init)(params)
  return run(params, opt_state)


def predict(fw: Framework, params, x) -> jax.Array:
  """The population's logits [members, examples, classes]."""
  return jax.jit(jax.vmap(fw.apply, in_axes=(0, None)))(params, x)


def pruned_fraction_per_layer(masks) -> dict[str, float]:
  """Fraction of False entries per prunable leaf (masks of one member or a population)."""
  out = {}
  for path, m in jax.tree_util.tree_leaves_with_path(masks):
    name = sparsity.path_name(path)
    out[name] = float(1.0 - np.asarray(m).mean())
  return out


def run_framework(fw: Framework, *, members: int = 4, steps: int = 300, prune_steps: int = 100,
                  target: float = 0.8, bits: int = 8, digits=None) -> dict[str, Any]:
  """Train, prune (masks in the optax state), quantize, score: a dict of results."""
  ds, x_train, y_train, x_test = digits or load_digits()
  labels, groups = ds.test.labels, ds.test.groups[:, 0]

  dense, _ = train_population(fw, init_population(fw, members),
                              optax.adam(3e-3), x_train, y_train, steps=steps)

  # Pruning: one-shot at the first fine-tuning step, layer-wise ('uniform': every prunable
  # leaf at `target`), then fine-tune with the masks held in the optimizer state.
  tx = sparsity.masked(optax.adam(1e-3), sparsity.one_shot(target, 0), "uniform")
  pruned, opt_state = train_population(fw, dense, tx, x_train, y_train, steps=prune_steps,
                                       seed=1000)
  masks = sparsity.get_masks(opt_state)

  quantized = quantization.quantize_population(pruned, bits, axis=fw.channel_axis)

  logits = {"dense": predict(fw, dense, x_test), "pruned": predict(fw, pruned, x_test),
            "quantized": predict(fw, quantized, x_test)}
  scores: dict[str, Any] = {}
  for variant, lg in logits.items():
    preds = lg.argmax(-1)
    per_group = fairness.by_group("accuracy", labels, preds, groups, num_groups=2)
    scores[variant] = {
        "top1": float((preds == labels).mean()),
        "per_group": np.asarray(per_group.mean(0)).tolist(),   # majority, subgroup
        "worst_group": float(jnp.mean(jax.vmap(lambda p: fairness.worst_group_accuracy(
            labels, p, groups, num_groups=2))(preds))),
    }
    if variant != "dense":
      is_cie = exemplars.cie(logits["dense"], lg)
      breakdown = exemplars.group_breakdown(logits["dense"], lg, labels, groups, num_groups=2)
      scores[variant]["cie_count"] = int(is_cie.sum())
      scores[variant]["cie_rate_per_group"] = np.asarray(breakdown["cie_rate"]).tolist()
  return {"framework": fw.name, "dense": dense, "pruned": pruned, "quantized": quantized,
          "masks": masks, "opt_state": opt_state, "logits": logits, "scores": scores,
          "labels": labels, "groups": groups, "target": target, "bits": bits}


def main(argv=None) -> None:
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--members", type=int, default=4)
  parser.add_argument("--steps", type=int, default=300)
  parser.add_argument("--prune_steps", type=int, default=100)
  parser.add_argument("--sparsity", type=float, default=0.8)
  args = parser.parse_args(argv)
  digits = load_digits()
  for fw in frameworks():
    out = run_framework(fw, members=args.members, steps=args.steps,
                        prune_steps=args.prune_steps, target=args.sparsity, digits=digits)
    fractions = {k: round(v, 3) for k, v in pruned_fraction_per_layer(out["masks"]).items()
                 if v > 0}
    print(f"== {fw.name}: pruned fraction per layer {fractions}")
    for variant, s in out["scores"].items():
      extra = (f", CIE {s['cie_count']} (rate majority/subgroup "
               f"{s['cie_rate_per_group'][0]:.3f}/{s['cie_rate_per_group'][1]:.3f})"
               if "cie_count" in s else "")
      print(f"  {variant:9s} top-1 {s['top1']:.3f}  worst group {s['worst_group']:.3f}  "
            f"per group {[round(v, 3) for v in s['per_group']]}{extra}")


if __name__ == "__main__":
  main()
