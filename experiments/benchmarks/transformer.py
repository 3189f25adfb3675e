r"""Transformer throughput: the project path against a plain hand-written Flax loop, side by
side in one process, printed as ratios (target >= 0.9x).

    python -m experiments.benchmarks.transformer [--steps=50] [--batch=32] [--length=48]

Training: `population.fit` on a population of one `transformer_seq2seq` (token
cross-entropy, decoder inputs through `DeviceData.extras`, one compiled scan) against a bare
loop (one jitted step per pre-gathered batch, adam, the same model). Decoding:
`transformer.greedy_decode` (one compiled `fori_loop`) against a Python loop of one jitted
decoder call per output position on the same fixed-length prefix. Each is compiled first,
then timed best of `--repeats`.
"""

from __future__ import annotations

import functools
import time
import types

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

from tradeoffs import models
from tradeoffs.models import transformer as tf
from tradeoffs.train import losses
from tradeoffs.train import mesh as mesh_lib
from tradeoffs.train import population as pop_lib
from tradeoffs.train import seeds as seeds_lib

STEPS = flags.DEFINE_integer("steps", 50, "training steps per timing")
BATCH = flags.DEFINE_integer("batch", 32, "sentences per batch")
LENGTH = flags.DEFINE_integer("length", 48, "tokens per sentence")
REPEATS = flags.DEFINE_integer("repeats", 3, "timings per path (best is kept)")


def _best(fn, repeats):
  fn()  # compile
  times = []
  for _ in range(repeats):
    t0 = time.perf_counter()
    fn()
    times.append(time.perf_counter() - t0)
  return min(times)


def main(_):
  steps, batch, length, vocab = STEPS.value, BATCH.value, LENGTH.value, 1000
  net = models.get("transformer_seq2seq", num_classes=vocab, d_model=64, num_heads=4,
                   num_layers=2, ffn_dim=128, dropout=0.0, max_length=length)
  rng = np.random.default_rng(0)
  src = rng.integers(3, vocab, (512, length)).astype(np.int32)
  tgt = rng.integers(3, vocab, (512, length)).astype(np.int32)
  dec_in = np.asarray(tf.shift_right(jnp.asarray(tgt)))
  tx = optax.adam(1e-3)

  mesh = mesh_lib.make_mesh(1)
  split = types.SimpleNamespace(images=src, labels=tgt, groups=np.zeros((512, 0), np.int32))
  data = pop_lib.to_device(split, mesh, {"decoder_inputs": dec_in})

  initial = pop_lib.create_population(net, tx, (length,), 1, seeds_lib.Seeds(), mesh)

  def project():  # fit donates its state: train a copy
    state = jax.tree.map(jnp.copy, initial)
    state, _ = pop_lib.fit(state, data, steps=steps, batch_size=batch, mesh=mesh,
                           steps_per_dispatch=steps, plan="scan_vmap",
                           loss_fn="token_cross_entropy", model_inputs=("decoder_inputs",))
    jax.block_until_ready(state.params)

  params = net.init(jax.random.key(0), jnp.asarray(src[:1]))["params"]
  order = rng.integers(0, 512, (steps, batch))
  batches = [tuple(jax.device_put(a[i]) for a in (src, tgt, dec_in)) for i in order]

  @functools.partial(jax.jit, donate_argnums=(0,))
  def step(carry, x, y, d):
    p, o = carry
    grads = jax.grad(lambda p: losses.token_cross_entropy(
        net.apply({"params": p}, x, d, train=True), y).mean())(p)
    updates, o = tx.update(grads, o, p)
    return optax.apply_updates(p, updates), o

  def bare():
    carry = jax.tree.map(jnp.copy, (params, tx.init(params)))
    for x, y, d in batches:
      carry = step(carry, x, y, d)
    jax.block_until_ready(carry)

  t_project, t_bare = _best(project, REPEATS.value), _best(bare, REPEATS.value)
  print(f"training ({steps} steps of {batch}x{length}): project {steps * batch / t_project:.0f} "
        f"sentences/s, bare {steps * batch / t_bare:.0f} sentences/s, "
        f"ratio {t_bare / t_project:.2f}x")

  variables = {"params": params}
  source = jnp.asarray(src[:batch])
  project_decode = jax.jit(lambda v, s: tf.greedy_decode(net, v, s, length))
  decoder = jax.jit(lambda v, e, s, prefix: net.apply(v, e, s, prefix, method=net.decode))
  encoder = jax.jit(lambda v, s: net.apply(v, s, method=net.encode))

  def bare_decode():
    encoded = encoder(variables, source)
    tokens = np.zeros((batch, length + 1), np.int32)
    tokens[:, 0] = tf.BOS
    for t in range(length):
      logits = np.array(decoder(variables, encoded, source, jnp.asarray(tokens[:, :length])))
      logits[:, t, [tf.PAD, tf.BOS]] = -np.inf
      tokens[:, t + 1] = np.argmax(logits[:, t], -1)
    return tokens

  t_pd = _best(lambda: jax.block_until_ready(project_decode(variables, source)), REPEATS.value)
  t_bd = _best(bare_decode, REPEATS.value)
  print(f"greedy decoding ({batch} sentences x {length} tokens): project "
        f"{batch / t_pd:.1f} sentences/s, bare {batch / t_bd:.1f} sentences/s, "
        f"ratio {t_bd / t_pd:.2f}x")


if __name__ == "__main__":
  app.run(main)
