"""Dataset condensation under a simplicity prior (the condensation setting of Schirrmeister
et al. 2022; PAPERS.md §11): a small synthetic training set per class, optimised so that a
classifier trained on it does well, with λ·bits/dim of the synthetic images added.

Formulation chosen (the paper's condensation method was not retrieved): dataset
distillation with random initialisations (Wang et al. 2018). The set S (`per_class`
images per class, initialised from real training images, pixels kept in [0, 1] by
projection after each Adam step) minimises

    L(S) = CE(f_{θ_T(S)}(x), y) + λ·bits(S),
    θ_0 a fresh initialisation at every step, θ_{t+1} = θ_t − η ∇_θ CE(f_{θ_t}(S), y_S),

the first term on a batch of real training images, differentiated through the T unrolled
full-batch gradient-descent steps. A condensed set is scored by training fresh classifiers
on it the same way (`make_fitter`: T steps at η from new initialisations) and testing
them on real images.

    fit = make_fitter(init, classify, steps=50, learning_rate=0.3)
    condense = make_condenser(classify, bits, fit, steps=300, learning_rate=0.01,
                              batch_size=128)
    synthetic = condense(lam, start [M, n, ...], set_labels [n], images, labels, keys [M])
"""

from __future__ import annotations

from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax

from tradeoffs.generative import simplify


def initial_indices(labels: Any, per_class: int, seed: int) -> np.ndarray:
  """Indices of `per_class` distinct training examples of every class (class-major,
  classes in increasing order), drawn without replacement by `seed`; ValueError if a
  class has fewer examples."""
  labels = np.asarray(labels)
  if isinstance(per_class, bool) or not isinstance(per_class, (int, np.integer)) or (
      per_class < 1):
    raise ValueError(f"per_class={per_class!r}: expected an integer >= 1")
  rng = np.random.default_rng(int(seed))
  out = []
  for c in np.unique(labels):
    members = np.flatnonzero(labels == c)
    if len(members) < per_class:
      raise ValueError(f"per_class={per_class}: class {int(c)} has only {len(members)} "
                       "training examples")
    out.append(rng.choice(members, per_class, replace=False))
  return np.concatenate(out).astype(np.int64)


Fitter = Callable[[jax.Array, jax.Array, jax.Array], Any]


def make_fitter(init_classifier: Callable[[jax.Array], Any],
                classify: Callable[[Any, jax.Array], jax.Array], *, steps: int,
                learning_rate: float) -> Fitter:
  """fit(images [n, ...], labels [n], key) -> classifier params: a fresh initialisation
  from `key`, then `steps` full-batch gradient-descent steps on the mean CE at
  `learning_rate`. Differentiable in `images` (the condenser unrolls it)."""
  if int(steps) < 1 or not learning_rate > 0:
    raise ValueError(f"steps={steps!r}, learning_rate={learning_rate!r}: expected an "
                     "integer >= 1 and a number > 0")

  def ce(params, images, labels):
    return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(
        classify(params, images), labels))

  def fit(images, labels, key):
    def step(params, _):
      grads = jax.grad(ce)(params, images, labels)
      return jax.tree.map(lambda p, g: p - learning_rate * g, params, grads), None

    params, _ = jax.lax.scan(step, init_classifier(key), None, length=int(steps))
    return params

  return fit


def make_condenser(classify: Callable[[Any, jax.Array], jax.Array],
                   bits: Callable[[jax.Array, jax.Array], jax.Array], fit: Fitter, *,
                   steps: int, learning_rate: float, batch_size: int
                   ) -> Callable[..., jax.Array]:
  """A compiled condenser `(lam, start [M, n, ...], set_labels [n], images [N, ...],
  labels [N], keys [M]) -> synthetic sets [M, n, ...]`, vmapped over members: member m
  optimises its own set from `start[m]` for `steps` Adam steps on L(S) (module
  docstring), its fresh initialisations, real batches and dequantization noise a
  function of keys[m] and the step. λ is an argument: one compile serves every λ."""
  tx = optax.adam(learning_rate)

  def member(lam, start, set_labels, images, labels, key):
    def loss(synthetic, k):
      k_init, k_batch, k_noise = jax.random.split(k, 3)
      params = fit(synthetic, set_labels, k_init)
      idx = jax.random.randint(k_batch, (batch_size,), 0, images.shape[0])
      return simplify.objective(classify(params, images[idx]), labels[idx],
                                bits(synthetic, k_noise), lam)[0]

    def step(carry, i):
      synthetic, opt = carry
      grads = jax.grad(loss)(synthetic, jax.random.fold_in(key, i))
      updates, opt = tx.update(grads, opt, synthetic)
      return (jnp.clip(optax.apply_updates(synthetic, updates), 0.0, 1.0), opt), None

    (synthetic, _), _ = jax.lax.scan(step, (start, tx.init(start)), jnp.arange(steps))
    return synthetic

  run = jax.jit(jax.vmap(member, in_axes=(None, 0, None, None, None, 0)))

  def condense(lam, start, set_labels, images, labels, keys):
    lam = simplify.check_lambda(lam, "lam")
    return run(jnp.float32(lam), jnp.asarray(start, jnp.float32), jnp.asarray(set_labels),
               jnp.asarray(images, jnp.float32), jnp.asarray(labels), keys)

  return condense
