"""Per-example losses of the training step, chosen by name (`StepConfig(loss_fn="...")`).

A loss maps (logits, labels) of one member's batch to per-example losses [B]; the step
averages them (or weights them, `tradeoffs.train.extensions`), so populations, example
weights, per-example gradients (DP-SGD), sparsity masks and quantization apply to any loss
unchanged. Each loss has a matching accuracy (logits, labels) -> scalar for the step's
`accuracy` metric.

  * `softmax_cross_entropy`: logits [B, C], labels [B] (classification);
  * `ctc`: frame logits [B, T, K] (class K-1 the blank), label strings [B, L] with -1 after
    each ends: the CTC negative log-likelihood over all frames (`optax.ctc_loss`); its
    accuracy is the share of utterances whose greedy CTC decoding is exactly right
    (`tradeoffs.models.speech`);
  * `token_cross_entropy`: logits [B, T, V], labels [B, T] with 0 = padding: the mean
    cross-entropy over each sequence's real tokens (a sentence's loss, so the batch mean
    weights sentences equally, not tokens); its accuracy is over real tokens.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from tradeoffs.models import speech

LossFn = Callable[[jax.Array, jax.Array], jax.Array]
PAD = 0  # the padding id of `tradeoffs.models.transformer` and `tradeoffs.data.subwords`


def softmax_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  return optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), labels)


def classification_accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  return jnp.mean(jnp.argmax(logits, -1) == labels)


def token_cross_entropy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  """[B]: mean over positions with labels != PAD of -log softmax(logits)[label]."""
  per_token = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32),
                                                              labels)
  real = (labels != PAD).astype(jnp.float32)
  return jnp.sum(per_token * real, -1) / jnp.maximum(jnp.sum(real, -1), 1.0)


def token_accuracy(logits: jax.Array, labels: jax.Array) -> jax.Array:
  real = labels != PAD
  hits = (jnp.argmax(logits, -1) == labels) & real
  return jnp.sum(hits) / jnp.maximum(jnp.sum(real), 1)


def ctc(logits: jax.Array, labels: jax.Array) -> jax.Array:
  return speech.ctc_loss(logits, labels, blank=logits.shape[-1] - 1)


def ctc_exact_match(logits: jax.Array, labels: jax.Array) -> jax.Array:
  decoded, _ = speech.greedy_ctc_decode(logits, blank=logits.shape[-1] - 1)
  width = labels.shape[1]
  if decoded.shape[1] < width:
    return jnp.zeros(())
  # A string longer than the label width is wrong: its extra label is then != -1.
  tail_ok = (jnp.all(decoded[:, width:] < 0, axis=1) if decoded.shape[1] > width
             else jnp.ones(labels.shape[0], bool))
  hits = jnp.all(decoded[:, :width] == jnp.where(labels < 0, -1, labels), axis=1) & tail_ok
  return jnp.mean(hits)


LOSSES: dict[str, tuple[LossFn, LossFn]] = {
    "ctc": (ctc, ctc_exact_match),
    "softmax_cross_entropy": (softmax_cross_entropy, classification_accuracy),
    "token_cross_entropy": (token_cross_entropy, token_accuracy),
}


def register(name: str, loss_fn: LossFn, accuracy_fn: LossFn) -> None:
  """Adds a named loss (e.g. CTC) and its accuracy."""
  if name in LOSSES:
    raise ValueError(f"loss {name!r} is already registered")
  LOSSES[name] = (loss_fn, accuracy_fn)


def get(loss: str | LossFn) -> LossFn:
  """The loss function named `loss` (a callable passes through)."""
  if callable(loss):
    return loss
  if loss not in LOSSES:
    raise ValueError(f"unknown loss {loss!r}; choose from {sorted(LOSSES)}")
  return LOSSES[loss][0]


def accuracy_for(loss_fn: LossFn) -> LossFn:
  """The accuracy that goes with a registered loss; classification accuracy otherwise."""
  for fn, accuracy in LOSSES.values():
    if fn is loss_fn:
      return accuracy
  return classification_accuracy
