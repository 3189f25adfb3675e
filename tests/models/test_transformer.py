"""Tests for tradeoffs.models.transformer: masks and positions against numpy, parameter
counts in closed form, teacher forcing against step-by-step decoding, beam search against
exhaustive search, padding invariance, bad input."""

from __future__ import annotations

import itertools
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoffs import models
from tradeoffs.models import transformer as tf

KEY = jax.random.key(0)


def test_attention_mask_matches_numpy():
  rng = np.random.default_rng(0)
  q_valid = rng.random((3, 5)) > 0.3
  k_valid = rng.random((3, 4)) > 0.3
  for causal in (False, True):
    got = np.asarray(tf.attention_mask(jnp.asarray(q_valid), jnp.asarray(k_valid), causal))
    want = np.zeros((3, 1, 5, 4), bool)
    for b, i, j in itertools.product(range(3), range(5), range(4)):
      want[b, 0, i, j] = q_valid[b, i] and k_valid[b, j] and (not causal or j <= i)
    np.testing.assert_array_equal(got, want)


def test_sinusoidal_positions_formula():
  table = tf.sinusoidal_positions(7, 6)
  for pos, i in itertools.product(range(7), range(6)):
    angle = pos / 10000 ** ((i - i % 2) / 6)
    assert table[pos, i] == pytest.approx(math.sin(angle) if i % 2 == 0 else math.cos(angle),
                                          abs=1e-6)


# Closed-form counts from the architecture (q, k, v, out projections with biases; LN scale+bias).
def attn(d):
  return 4 * (d * d + d)


def ffn(d, f):
  return d * f + f + f * d + d


def enc_block(d, f):
  return 2 * 2 * d + attn(d) + ffn(d, f)


def dec_block(d, f):
  return 3 * 2 * d + 2 * attn(d) + ffn(d, f)


@pytest.mark.parametrize("tie,positions,dec_layers", [(True, "sinusoidal", 0),
                                                       (False, "learned", 3)])
def test_seq2seq_param_count(tie, positions, dec_layers):
  v, d, f, layers, max_len = 37, 16, 24, 2, 9
  net = models.get("transformer_seq2seq", num_classes=v, d_model=d, num_heads=4,
                   num_layers=layers, decoder_layers=dec_layers, ffn_dim=f,
                   positions=positions, max_length=max_len, tie_embeddings=tie)
  params = jax.eval_shape(net.init, KEY, jnp.ones((1, 5), jnp.int32))["params"]
  embeddings = v * d if tie else 2 * v * d + d * v + v
  pos = 2 * max_len * d if positions == "learned" else 0
  want = (embeddings + pos + layers * enc_block(d, f) + 2 * d
          + (dec_layers or layers) * dec_block(d, f) + 2 * d)
  assert models.param_count(params) == want


def test_encoder_classifier_param_count():
  net = models.get("transformer_encoder", num_classes=3, vocab_size=50, d_model=8,
                   num_heads=2, num_layers=3, ffn_dim=12, positions="learned", max_length=10)
  params = jax.eval_shape(net.init, KEY, jnp.ones((2, 6), jnp.int32))["params"]
  want = 50 * 8 + 10 * 8 + 3 * enc_block(8, 12) + 2 * 8 + (8 * 3 + 3)
  assert models.param_count(params) == want


def _tiny(vocab=9, **kwargs):
  # Untied embeddings: a fresh tied model predicts nearly the same token everywhere.
  options = dict(d_model=16, num_heads=2, num_layers=1, ffn_dim=32, tie_embeddings=False)
  options.update(kwargs)
  net = models.get("transformer_seq2seq", num_classes=vocab, max_length=8, dropout=0.0,
                   **options)
  source = jnp.array([[5, 6, 7, 3, 2, 0], [4, 4, 8, 2, 0, 0]], jnp.int32)
  return net, jax.jit(net.init)(KEY, source), source


def _first_eos_prefix(row):
  row = list(np.asarray(row))
  return row[:row.index(tf.EOS) + 1] if tf.EOS in row else row


# The cached greedy decoder re-implements the decoder's step from its parameters: check it on
# both embedding and position options and on more than one block.
OPTIONS = [{}, dict(positions="learned", num_layers=2, decoder_layers=3, num_heads=4),
           dict(tie_embeddings=True, positions="none")]


@pytest.mark.parametrize("options", OPTIONS)
def test_cached_decoder_step_equals_teacher_forcing(options):
  net, variables, source = _tiny(**options)
  targets = jnp.array([[3, 8, 5, 4, 2, 0, 0, 0], [7, 7, 6, 3, 4, 5, 8, 2]], jnp.int32)
  inputs = tf.shift_right(targets)
  want = np.array(jax.nn.log_softmax(net.apply(variables, source, inputs)))
  want[..., [tf.PAD, tf.BOS]] = -np.inf
  encoded = net.apply(variables, source, method=net.encode)
  cache, step = tf._cached_decoder(net, variables, source, encoded, 8)  # noqa: SLF001
  for t in range(8):
    cache, logp = jax.jit(step)(cache, inputs[:, t], t)
    for b in range(2):
      if inputs[b, t] != tf.PAD:  # teacher forcing masks a PAD query; decoding never has one
        np.testing.assert_allclose(np.asarray(logp[b]), want[b, t], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("options", OPTIONS[:2])
def test_greedy_equals_step_by_step_and_teacher_forcing(options):
  net, variables, source = _tiny(**options)
  greedy = np.asarray(tf.jit_greedy_decode(net, variables, source, 8))
  # Independent reference: a Python loop feeding a growing, unpadded prefix.
  decode = jax.jit(lambda prefix: net.apply(variables, source, prefix)[:, -1])
  prefix = np.full((2, 1), tf.BOS, np.int32)
  for _ in range(8):
    logits = np.asarray(decode(jnp.asarray(prefix))).copy()
    logits[:, [tf.PAD, tf.BOS]] = -np.inf
    prefix = np.concatenate([prefix, np.argmax(logits, -1)[:, None].astype(np.int32)], 1)
  for b in range(2):
    want = _first_eos_prefix(prefix[b, 1:])
    assert _first_eos_prefix(greedy[b]) == want
    assert all(t == tf.PAD for t in greedy[b][len(want):])
  assert len(set(greedy.ravel().tolist())) >= 3  # the check is not on a constant output
  # Teacher forcing on the greedy output reproduces it (the causal mask hides the future).
  forced = np.array(jax.jit(net.apply)(variables, source, tf.shift_right(jnp.asarray(greedy))))
  forced[..., [tf.PAD, tf.BOS]] = -np.inf
  for b in range(2):
    n = len(_first_eos_prefix(greedy[b]))
    np.testing.assert_array_equal(np.argmax(forced[b, :n], -1), greedy[b, :n])


def test_beam_of_one_is_greedy_and_wide_beam_is_exhaustive():
  net, variables, source = _tiny(vocab=5)
  length = 3
  greedy = tf.jit_greedy_decode(net, variables, source, length)
  beam = jax.jit(tf.beam_decode, static_argnums=(0, 3, 4, 5))
  np.testing.assert_array_equal(beam(net, variables, source, length, 1, 0.6), greedy)
  # With as many beams as sequences (3 emittable tokens ** 3), beam search is exhaustive.
  beam = np.asarray(beam(net, variables, source, length, 27, 0.0))
  candidates = set()
  for seq in itertools.product(range(2, 5), repeat=length):
    prefix = _first_eos_prefix(seq)
    candidates.add(tuple(prefix + [tf.PAD] * (length - len(prefix))))
  candidates = np.array(sorted(candidates), np.int32)
  for b in range(source.shape[0]):
    src = jnp.repeat(source[b:b + 1], len(candidates), 0)
    scores = np.asarray(jax.jit(tf.sequence_log_prob, static_argnums=0)(
        net, variables, src, jnp.asarray(candidates)))
    np.testing.assert_array_equal(beam[b], candidates[np.argmax(scores)])


def test_encoder_stack_ignores_padded_positions():
  stack = tf.EncoderStack(num_layers=2, num_heads=2, ffn_dim=16, positions="sinusoidal",
                          max_length=10)
  x = jax.random.normal(KEY, (2, 6, 8))
  valid = jnp.array([[True] * 4 + [False] * 2, [True] * 6])
  variables = jax.jit(stack.init)(KEY, x, valid)
  out = jax.jit(stack.apply)(variables, x, valid)
  out2 = jax.jit(stack.apply)(variables, x.at[0, 4:].set(100.0), valid)
  np.testing.assert_allclose(out[0, :4], out2[0, :4], atol=1e-5)
  assert out.shape == (2, 6, 8)
  with pytest.raises(ValueError, match=r"\[B, T, D\]"):
    stack.apply(variables, x[0], valid)


def test_dropout_only_when_training():
  net = models.get("transformer_seq2seq", num_classes=9, d_model=8, num_heads=2,
                   num_layers=1, ffn_dim=8, dropout=0.5, max_length=8)
  source = jnp.array([[3, 4, 5, 2]])
  variables = jax.jit(net.init)(KEY, source)
  apply = jax.jit(lambda v, key, train: net.apply(v, source, train=train,
                                                  rngs={"dropout": key}), static_argnums=2)
  assert not np.allclose(apply(variables, jax.random.key(1), True),
                         apply(variables, jax.random.key(2), True))
  np.testing.assert_array_equal(apply(variables, jax.random.key(1), False),
                                apply(variables, jax.random.key(2), False))


def test_bad_input():
  net = models.get("transformer_seq2seq", num_classes=9, d_model=8, num_heads=2,
                   num_layers=1, ffn_dim=8, max_length=4)
  variables = jax.eval_shape(net.init, KEY, jnp.ones((1, 4), jnp.int32))
  with pytest.raises(ValueError, match="sequence length 5 exceeds the model's max_length 4"):
    jax.eval_shape(net.apply, variables, jnp.ones((1, 5), jnp.int32))
  with pytest.raises(ValueError, match="max_length must be an int in"):
    tf.greedy_decode(net, variables, jnp.ones((1, 3), jnp.int32), 5)
  with pytest.raises(ValueError, match="divisible by num_heads"):
    models.get("transformer_seq2seq", num_classes=9, d_model=10, num_heads=4)
  with pytest.raises(ValueError, match="positions must be one of"):
    models.get("transformer_encoder", num_classes=2, positions="rotary")
