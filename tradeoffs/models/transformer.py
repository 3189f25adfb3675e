"""Pre-LN Transformers: an encoder block stack, a sequence classifier and an encoder–decoder.

    net = models.get("transformer_seq2seq", num_classes=vocab, d_model=64, num_layers=2)
    variables = net.init(key, source, decoder_inputs, train=False)
    logits = net.apply(variables, source, decoder_inputs)        # [B, T, vocab], teacher forcing
    tokens = greedy_decode(net, variables, source, max_length=40)  # [B, 40], jit-able

Token conventions (shared with `tradeoffs.data.subwords`): id 0 is padding, 1 begins and 2
ends a sentence. Source and target share one vocabulary of `num_classes` ids (a joint subword
vocabulary), so `tie_embeddings` can use one matrix for the source embedding, the target
embedding and the output projection (logits = h · Eᵀ).

Pre-LN (Xiong et al. 2020): each sublayer is x + Dropout(F(LayerNorm(x))), and the stack ends
with a LayerNorm. Padding positions are masked out as attention keys; the decoder's
self-attention is also causal. `EncoderStack` runs on any continuous features [B, T, D] (the
speech encoder uses it), the token models embed first. A sequence longer than `max_length`
is refused (ValueError) at trace time.

Greedy decoding runs the decoder one position at a time with cached self-attention keys and
values (static shapes, one compiled `fori_loop`); beam search re-runs the decoder over the
whole fixed-length prefix at every step (no cache). Both equal teacher forcing by
construction of the causal mask, which the tests check.
"""

from __future__ import annotations

import functools
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from tradeoffs.models import layers
from tradeoffs.models.registry import register

PAD, BOS, EOS = 0, 1, 2
POSITIONS = ("sinusoidal", "learned", "none")


def attention_mask(query_valid: jax.Array, key_valid: jax.Array,
                   causal: bool = False) -> jax.Array:
  """Boolean mask [B, 1, Tq, Tk]: query i may attend key j iff both are real tokens
  (`*_valid` [B, T] bool) and, when `causal`, j <= i."""
  mask = query_valid[:, None, :, None] & key_valid[:, None, None, :]
  if causal:
    tq, tk = query_valid.shape[1], key_valid.shape[1]
    mask = mask & (jnp.arange(tk)[None, :] <= jnp.arange(tq)[:, None])[None, None]
  return mask


def sinusoidal_positions(length: int, d_model: int) -> np.ndarray:
  """[length, d_model]: sin on even, cos on odd features, wavelengths 2π·10000^(2i/d)."""
  position = np.arange(length)[:, None]
  rate = np.exp(-math.log(10000.0) * (np.arange(0, d_model, 2) / d_model))
  table = np.zeros((length, d_model), np.float32)
  table[:, 0::2] = np.sin(position * rate)
  table[:, 1::2] = np.cos(position * rate)[:, :d_model // 2]
  return table


def shift_right(targets: jax.Array) -> jax.Array:
  """Decoder inputs for teacher forcing: BOS, then the targets without their last token."""
  return jnp.concatenate([jnp.full_like(targets[:, :1], BOS), targets[:, :-1]], axis=1)


def _check_fields(module: Any) -> None:
  layers.check_common(module)
  for name in ("d_model", "num_heads", "num_layers", "ffn_dim", "max_length"):
    layers.check_positive_int(name, getattr(module, name))
  if module.d_model % module.num_heads:
    raise ValueError(f"d_model ({module.d_model}) must be divisible by num_heads "
                     f"({module.num_heads})")
  if module.positions not in POSITIONS:
    raise ValueError(f"positions must be one of {POSITIONS}, got {module.positions!r}")


class _FeedForward(nn.Module):
  ffn_dim: int
  dropout: float
  dtype: Any

  @nn.compact
  def __call__(self, x: jax.Array, train: bool) -> jax.Array:
    d = x.shape[-1]
    h = nn.relu(nn.Dense(self.ffn_dim, dtype=self.dtype, name="wi")(x))
    h = nn.Dropout(self.dropout, deterministic=not train)(h)
    return nn.Dense(d, dtype=self.dtype, name="wo")(h)


def _attention(num_heads: int, dropout: float, dtype: Any, train: bool, name: str):
  return nn.MultiHeadDotProductAttention(num_heads=num_heads, dtype=dtype, dropout_rate=dropout,
                                         deterministic=not train, name=name)


class EncoderBlock(nn.Module):
  """x + Drop(SelfAttn(LN(x))), then x + Drop(FFN(LN(x)))."""
  num_heads: int
  ffn_dim: int
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, mask: jax.Array, train: bool = False) -> jax.Array:
    drop = nn.Dropout(self.dropout, deterministic=not train)
    h = nn.LayerNorm(dtype=self.dtype, name="ln_attention")(x)
    x = x + drop(_attention(self.num_heads, self.dropout, self.dtype, train, "attention")(
        h, h, mask=mask))
    h = nn.LayerNorm(dtype=self.dtype, name="ln_ffn")(x)
    return x + drop(_FeedForward(self.ffn_dim, self.dropout, self.dtype, name="ffn")(h, train))


class DecoderBlock(nn.Module):
  """Causal self-attention, cross-attention over the encoder output, FFN; each pre-LN."""
  num_heads: int
  ffn_dim: int
  dropout: float = 0.0
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, y: jax.Array, encoded: jax.Array, self_mask: jax.Array,
               cross_mask: jax.Array, train: bool = False) -> jax.Array:
    drop = nn.Dropout(self.dropout, deterministic=not train)
    h = nn.LayerNorm(dtype=self.dtype, name="ln_self")(y)
    y = y + drop(_attention(self.num_heads, self.dropout, self.dtype, train, "self_attention")(
        h, h, mask=self_mask))
    h = nn.LayerNorm(dtype=self.dtype, name="ln_cross")(y)
    y = y + drop(_attention(self.num_heads, self.dropout, self.dtype, train, "cross_attention")(
        h, encoded, mask=cross_mask))
    h = nn.LayerNorm(dtype=self.dtype, name="ln_ffn")(y)
    return y + drop(_FeedForward(self.ffn_dim, self.dropout, self.dtype, name="ffn")(h, train))


class EncoderStack(nn.Module):
  """`num_layers` encoder blocks and a final LayerNorm over features [B, T, d_model].

  `valid` [B, T] marks real positions (default: all). `positions` adds sinusoidal or learned
  position embeddings (up to `max_length`) first; 'none' leaves that to the caller (e.g. a
  convolutional position embedding). Input dropout applies after the positions.
  """
  num_layers: int
  num_heads: int
  ffn_dim: int
  dropout: float = 0.0
  positions: str = "none"
  max_length: int = 512
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array, valid: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    if x.ndim != 3:
      raise ValueError(f"features must be [B, T, D], got shape {x.shape}")
    x = x.astype(self.dtype)
    x = _add_positions(self, x, "position_embedding")
    valid = jnp.ones(x.shape[:2], bool) if valid is None else valid
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    mask = attention_mask(valid, valid)
    for i in range(self.num_layers):
      x = EncoderBlock(self.num_heads, self.ffn_dim, self.dropout, self.dtype,
                       name=f"block_{i}")(x, mask, train)
    return nn.LayerNorm(dtype=self.dtype, name="ln_final")(x)


def _add_positions(module: Any, x: jax.Array, name: str) -> jax.Array:
  length, d = x.shape[1], x.shape[2]
  if length > module.max_length:
    raise ValueError(f"sequence length {length} exceeds the model's max_length "
                     f"{module.max_length}")
  if module.positions == "sinusoidal":
    return x + jnp.asarray(sinusoidal_positions(length, d), x.dtype)[None]
  if module.positions == "learned":
    table = module.param(name, nn.initializers.normal(0.02), (module.max_length, d))
    return x + table[None, :length].astype(x.dtype)
  return x


def _check_tokens(tokens: jax.Array, what: str) -> jax.Array:
  if tokens.ndim != 2:
    raise ValueError(f"{what} must be token ids [B, T], got shape {tokens.shape}")
  return tokens.astype(jnp.int32)


@register("transformer_encoder")
class TransformerEncoder(nn.Module):
  """A sequence classifier: embed tokens, `EncoderStack`, mean over real tokens, Dense.

  Takes token ids [B, T] (vocabulary `vocab_size`, 0 = padding); returns logits
  [B, num_classes].
  """
  num_classes: int
  vocab_size: int = 1000
  d_model: int = 128
  num_heads: int = 4
  num_layers: int = 2
  ffn_dim: int = 512
  dropout: float = 0.1
  positions: str = "sinusoidal"
  max_length: int = 128
  width_multiplier: float = 1.0
  dtype: Any = jnp.float32

  def __post_init__(self):
    _check_fields(self)
    layers.check_positive_int("vocab_size", self.vocab_size)
    super().__post_init__()

  @nn.compact
  def __call__(self, tokens: jax.Array, train: bool = False) -> jax.Array:
    tokens = _check_tokens(tokens, "tokens")
    valid = tokens != PAD
    x = nn.Embed(self.vocab_size, self.d_model, dtype=self.dtype, name="embedding")(tokens)
    x = EncoderStack(self.num_layers, self.num_heads, self.ffn_dim, self.dropout,
                     self.positions, self.max_length, self.dtype, name="encoder")(
                         x * math.sqrt(self.d_model), valid, train)
    weights = valid.astype(x.dtype)[..., None]
    pooled = jnp.sum(x * weights, 1) / jnp.maximum(jnp.sum(weights, 1), 1.0)
    return layers.to_logits(layers.classifier(self.num_classes, self.dtype)(pooled))


@register("transformer_seq2seq")
class Seq2SeqTransformer(nn.Module):
  """Encoder–decoder over one shared vocabulary of `num_classes` tokens.

  `__call__(source [B, S], decoder_inputs [B, T])` returns logits [B, T, num_classes] under
  teacher forcing (`decoder_inputs = shift_right(targets)`); without `decoder_inputs` (e.g.
  at init) it decodes from `shift_right(source)`, which has the same parameters.
  `encode` and `decode` are the two halves (for `greedy_decode` and `beam_decode`).
  """
  num_classes: int
  d_model: int = 128
  num_heads: int = 4
  num_layers: int = 2
  decoder_layers: int = 0  # 0: as many as `num_layers`
  ffn_dim: int = 512
  dropout: float = 0.1
  positions: str = "sinusoidal"
  max_length: int = 64
  tie_embeddings: bool = True
  width_multiplier: float = 1.0
  dtype: Any = jnp.float32

  def __post_init__(self):
    _check_fields(self)
    if not isinstance(self.decoder_layers, int) or self.decoder_layers < 0:
      raise ValueError(f"decoder_layers must be an int >= 0, got {self.decoder_layers!r}")
    super().__post_init__()

  def setup(self):
    embed = lambda name: nn.Embed(self.num_classes, self.d_model, dtype=self.dtype, name=name,
                                  embedding_init=nn.initializers.normal(self.d_model ** -0.5))
    self.target_embedding = embed("embedding" if self.tie_embeddings else "target_embedding")
    if not self.tie_embeddings:
      self.source_embedding = embed("source_embedding")
      self.output = nn.Dense(self.num_classes, dtype=self.dtype, name="output")
    self.encoder = EncoderStack(self.num_layers, self.num_heads, self.ffn_dim, self.dropout,
                                self.positions, self.max_length, self.dtype, name="encoder")
    self.decoder_blocks = [DecoderBlock(self.num_heads, self.ffn_dim, self.dropout, self.dtype,
                                        name=f"decoder_block_{i}")
                           for i in range(self.decoder_layers or self.num_layers)]
    self.decoder_norm = nn.LayerNorm(dtype=self.dtype, name="decoder_ln_final")
    self.decoder_dropout = nn.Dropout(self.dropout)
    if self.positions == "learned":
      self.decoder_positions = self.param("decoder_position_embedding",
                                          nn.initializers.normal(0.02),
                                          (self.max_length, self.d_model))

  def encode(self, source: jax.Array, train: bool = False) -> jax.Array:
    source = _check_tokens(source, "source")
    embedding = self.target_embedding if self.tie_embeddings else self.source_embedding
    x = embedding(source) * math.sqrt(self.d_model)
    return self.encoder(x, source != PAD, train)

  def decode(self, encoded: jax.Array, source: jax.Array, decoder_inputs: jax.Array,
             train: bool = False) -> jax.Array:
    decoder_inputs = _check_tokens(decoder_inputs, "decoder_inputs")
    length = decoder_inputs.shape[1]
    if length > self.max_length:
      raise ValueError(f"sequence length {length} exceeds the model's max_length "
                       f"{self.max_length}")
    y = self.target_embedding(decoder_inputs) * math.sqrt(self.d_model)
    if self.positions == "sinusoidal":
      y = y + jnp.asarray(sinusoidal_positions(length, self.d_model), y.dtype)[None]
    elif self.positions == "learned":
      y = y + self.decoder_positions[None, :length].astype(y.dtype)
    y = self.decoder_dropout(y, deterministic=not train)
    target_valid = decoder_inputs != PAD
    self_mask = attention_mask(target_valid, target_valid, causal=True)
    cross_mask = attention_mask(target_valid, _check_tokens(source, "source") != PAD)
    for block in self.decoder_blocks:
      y = block(y, encoded, self_mask, cross_mask, train)
    y = self.decoder_norm(y)
    logits = (self.target_embedding.attend(y) if self.tie_embeddings else self.output(y))
    return layers.to_logits(logits)

  def __call__(self, source: jax.Array, decoder_inputs: jax.Array | None = None,
               train: bool = False) -> jax.Array:
    source = _check_tokens(source, "source")
    if decoder_inputs is None:
      decoder_inputs = shift_right(source)
    return self.decode(self.encode(source, train), source, decoder_inputs, train)


# Decoding -------------------------------------------------------------------------------


def _step_logits(model: nn.Module, variables: Any, encoded: jax.Array, source: jax.Array,
                 prefix: jax.Array, t: jax.Array) -> jax.Array:
  """Log-probabilities [B, V] of the token after position t of `prefix` [B, L]; PAD and BOS
  are never emitted (-inf), the rest keep their log-softmax values."""
  logits = model.apply(variables, encoded, source, prefix, method=model.decode)
  logp = jax.nn.log_softmax(jax.lax.dynamic_index_in_dim(logits, t, axis=1, keepdims=False))
  return logp.at[:, PAD].set(-jnp.inf).at[:, BOS].set(-jnp.inf)


def _check_length(model: nn.Module, max_length: int) -> None:
  if not isinstance(max_length, int) or not 1 <= max_length <= model.max_length:
    raise ValueError(f"max_length must be an int in [1, {model.max_length}] (the model's "
                     f"max_length), got {max_length!r}")


def _cached_decoder(model: nn.Module, variables: Any, source: jax.Array, encoded: jax.Array,
                    max_length: int):
  """(initial cache, step): the decoder run one position at a time with the self-attention
  keys/values of earlier positions cached and the cross-attention keys/values of the source
  computed once — the same parameters and the same functions (`nn.LayerNorm`, `nn.Dense`,
  `nn.DenseGeneral`, `nn.dot_product_attention`) as `Seq2SeqTransformer.decode`, so a
  position's output equals teacher forcing on the prefix (the tests check it).

  `step(cache, token [B], t)` returns (cache, log-probabilities [B, V] of the next token,
  PAD and BOS at -inf). Per output token it costs O(t) attention and one position's
  projections, instead of a full decoder pass over `max_length` positions.
  """
  p, dtype, d = variables["params"], model.dtype, model.d_model
  heads = model.num_heads
  layer_norm = lambda q, x: nn.LayerNorm(dtype=dtype).apply({"params": q}, x)  # noqa: E731
  dense = lambda q, x: nn.Dense(q["kernel"].shape[-1], dtype=dtype).apply(  # noqa: E731
      {"params": q}, x)
  project = lambda q, x: nn.DenseGeneral((heads, d // heads), dtype=dtype).apply(  # noqa: E731
      {"params": q}, x)
  merge = lambda q, x: nn.DenseGeneral(d, axis=(-2, -1), dtype=dtype).apply(  # noqa: E731
      {"params": q}, x)
  blocks = [p[f"decoder_block_{i}"] for i in range(model.decoder_layers or model.num_layers)]
  embedding = p["embedding" if model.tie_embeddings else "target_embedding"]["embedding"]
  batch = source.shape[0]
  source_valid = (source != PAD)[:, None, None, :]                       # [B, 1, 1, S]
  cross = [(project(b["cross_attention"]["key"], encoded),
            project(b["cross_attention"]["value"], encoded)) for b in blocks]
  empty = jnp.zeros((batch, max_length, heads, d // heads), dtype)
  cache = [(empty, empty) for _ in blocks]
  if model.positions == "sinusoidal":
    table = jnp.asarray(sinusoidal_positions(max_length, d), dtype)
  elif model.positions == "learned":
    table = p["decoder_position_embedding"][:max_length].astype(dtype)
  else:
    table = jnp.zeros((max_length, d), dtype)

  def step(cache, token, t):
    y = jnp.take(embedding, token, axis=0).astype(dtype) * math.sqrt(d)
    y = (y + jax.lax.dynamic_index_in_dim(table, t, keepdims=False))[:, None]  # [B, 1, d]
    seen = (jnp.arange(max_length) <= t)[None, None, None, :]             # causal
    new_cache = []
    for b, (keys, values), (cross_k, cross_v) in zip(blocks, cache, cross):
      h = layer_norm(b["ln_self"], y)
      a = b["self_attention"]
      keys = jax.lax.dynamic_update_index_in_dim(keys, project(a["key"], h)[:, 0], t, 1)
      values = jax.lax.dynamic_update_index_in_dim(values, project(a["value"], h)[:, 0], t, 1)
      new_cache.append((keys, values))
      y = y + merge(a["out"], nn.dot_product_attention(project(a["query"], h), keys, values,
                                                       mask=seen, dtype=dtype))
      h = layer_norm(b["ln_cross"], y)
      a = b["cross_attention"]
      y = y + merge(a["out"], nn.dot_product_attention(project(a["query"], h), cross_k, cross_v,
                                                       mask=source_valid, dtype=dtype))
      h = layer_norm(b["ln_ffn"], y)
      y = y + dense(b["ffn"]["wo"], nn.relu(dense(b["ffn"]["wi"], h)))
    y = layer_norm(p["decoder_ln_final"], y)[:, 0]
    if model.tie_embeddings:
      logits = jnp.dot(y, jnp.asarray(embedding, dtype).T)
    else:
      logits = dense(p["output"], y)
    logp = jax.nn.log_softmax(layers.to_logits(logits))
    return new_cache, logp.at[:, PAD].set(-jnp.inf).at[:, BOS].set(-jnp.inf)

  return cache, step


def greedy_decode(model: nn.Module, variables: Any, source: jax.Array,
                  max_length: int) -> jax.Array:
  """Greedy output tokens [B, max_length]: EOS, then PAD, once a sentence has ended.

  Pure and of static shape, so it runs under `jax.jit` (with `model`, `max_length` static).
  The decoder runs incrementally (`_cached_decoder`: cached self-attention keys/values).
  """
  _check_length(model, max_length)
  source = _check_tokens(jnp.asarray(source), "source")
  encoded = model.apply(variables, source, method=model.encode)
  batch = source.shape[0]
  cache, step_fn = _cached_decoder(model, variables, source, encoded, max_length)

  def step(t, carry):
    cache, tokens, previous, done = carry
    cache, logp = step_fn(cache, previous, t)
    nxt = jnp.where(done, PAD, jnp.argmax(logp, -1).astype(jnp.int32))
    tokens = jax.lax.dynamic_update_index_in_dim(tokens, nxt, t, axis=1)
    return cache, tokens, nxt, done | (nxt == EOS)

  start = (cache, jnp.zeros((batch, max_length), jnp.int32), jnp.full((batch,), BOS, jnp.int32),
           jnp.zeros((batch,), bool))
  return jax.lax.fori_loop(0, max_length, step, start)[1]


def beam_decode(model: nn.Module, variables: Any, source: jax.Array, max_length: int,
                beam_size: int = 4, length_penalty: float = 0.6) -> jax.Array:
  """Beam-search output tokens [B, max_length] (EOS, then PAD), static shapes (jit-able).

  Each beam's score is its summed log-probability through EOS; an ended beam keeps its score
  and continues with PAD at no cost. The returned beam maximises score / lp(length) with
  lp(n) = ((5 + n) / 6) ** length_penalty (Wu et al. 2016); length_penalty=0 is plain
  log-probability, and beam_size=1 is greedy decoding.
  """
  _check_length(model, max_length)
  layers.check_positive_int("beam_size", beam_size)
  source = _check_tokens(jnp.asarray(source), "source")
  batch, k = source.shape[0], beam_size
  encoded = model.apply(variables, source, method=model.encode)
  flat = lambda x: x.reshape((batch * k, *x.shape[2:]))
  beams = lambda x: jnp.repeat(x, k, axis=0)
  encoded_k, source_k = beams(encoded), beams(source)
  tokens = jnp.zeros((batch, k, max_length + 1), jnp.int32).at[:, :, 0].set(BOS)
  scores = jnp.full((batch, k), -jnp.inf).at[:, 0].set(0.0)  # one live beam to start
  done = jnp.zeros((batch, k), bool)
  lengths = jnp.zeros((batch, k), jnp.int32)
  vocab = model.num_classes
  ended_row = jnp.full((vocab,), -jnp.inf).at[PAD].set(0.0)

  def step(t, carry):
    tokens, scores, done, lengths = carry
    logp = _step_logits(model, variables, encoded_k, source_k,
                        flat(tokens)[:, :max_length], t).reshape(batch, k, vocab)
    logp = jnp.where(done[..., None], ended_row, logp)
    candidates = (scores[..., None] + logp).reshape(batch, k * vocab)
    scores, index = jax.lax.top_k(candidates, k)
    parent, token = index // vocab, (index % vocab).astype(jnp.int32)
    pick = lambda x: jnp.take_along_axis(x, parent.reshape(batch, k, *([1] * (x.ndim - 2))),
                                         axis=1)
    tokens = pick(tokens).at[:, :, t + 1].set(token)
    was_done = pick(done)
    lengths = pick(lengths) + (~was_done).astype(jnp.int32)
    return tokens, scores, was_done | (token == EOS), lengths

  tokens, scores, done, lengths = jax.lax.fori_loop(0, max_length, step,
                                                    (tokens, scores, done, lengths))
  penalty = ((5.0 + lengths) / 6.0) ** length_penalty
  best = jnp.argmax(scores / penalty, axis=1)
  return jnp.take_along_axis(tokens, best[:, None, None], axis=1)[:, 0, 1:]


def sequence_log_prob(model: nn.Module, variables: Any, source: jax.Array,
                      targets: jax.Array) -> jax.Array:
  """Σ_t log p(target_t | source, target_<t) over real (non-PAD) target tokens, [B]."""
  logits = model.apply(variables, source, shift_right(targets))
  logp = jnp.take_along_axis(jax.nn.log_softmax(logits), targets[..., None], -1)[..., 0]
  return jnp.sum(jnp.where(targets != PAD, logp, 0.0), -1)


@functools.partial(jax.jit, static_argnames=("model", "max_length"))
def jit_greedy_decode(model: nn.Module, variables: Any, source: jax.Array,
                      max_length: int) -> jax.Array:
  """`greedy_decode` compiled once per (model, shapes, max_length)."""
  return greedy_decode(model, variables, source, max_length)
