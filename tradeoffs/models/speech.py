"""A wav2vec2-style speech encoder with SEW's squeeze and compact extractor, and a CTC head.

    net = models.get("speech_ctc", num_classes=11, extractor="compact", squeeze=2)
    variables = net.init(key, waveforms[:1], train=False)   # waveforms [B, samples]
    logits = net.apply(variables, waveforms)                # [B, frames, 11] (blank = 10)
    digits, lengths = greedy_ctc_decode(logits, blank=10)

The forward pass (Wu et al. 2021, "SEW"; wav2vec 2.0 before it):
  1. per-utterance standardisation of the waveform;
  2. a convolutional waveform feature extractor, 7 strided 1-D convs (strides 5, 2, 2, 2, 2,
     2, 2: one frame per 320 samples, 40 ms at 8 kHz; kernels 10, 3, 3, 3, 3, 2, 2), GELU
     after each and a per-channel GroupNorm after the first (wav2vec 2.0 base):
       * "original" (WFE-O): every conv has `conv_channels` channels (512 in wav2vec 2.0);
       * "compact" (WFE-C): channels grow c, 2c, 2c, 4c, 4c, 8c, 8c with c =
         `conv_channels`, and after every strided conv but the first `compact_pointwise`
         1x1 convs (SEW: c = 64, l = 1) — cheap at the high frame rates, wide at the low;
  3. LayerNorm and a linear projection to `d_model`;
  4. the squeeze: x <- AvgPool(s, s)(x) + GELU(Conv(kernel `pos_conv_kernel`, groups
     `pos_conv_groups`, stride s)(x)) — with s = 1 this is wav2vec 2.0's convolutional position
     embedding, with s > 1 it also shortens the sequence s-fold;
  5. the pre-LN Transformer encoder (`tradeoffs.models.transformer.EncoderStack`) at the
     squeezed frame rate;
  6. for s > 1 the upsampling: Dense(d -> s·d) + GELU, reshaped to s frames per frame, so the
     CTC head sees the extractor's frame rate again;
  7. the CTC head: Dense(num_classes), the last class the blank.

Deviations from SEW, kept small on purpose: no weight normalisation on the position conv; no
pre-training (the encoder is trained from scratch with CTC, wav2vec 2.0 pre-training being
out of reach here); the feature length must be a multiple of s (SEW pads the upsampled
sequence back to the original length; here a length s does not divide is refused, so a
length mismatch cannot hide). Padding is silence: utterances are zero-padded to one length
and the model sees all frames (no attention mask), so an utterance's output does not depend
on the batch it is in.
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from tradeoffs.models import layers
from tradeoffs.models import transformer
from tradeoffs.models.registry import register

EXTRACTORS = ("original", "compact")
# (kernel, stride) of the 7 strided convs of both extractors (wav2vec 2.0 / SEW).
CONV_LAYERS = ((10, 5), (3, 2), (3, 2), (3, 2), (3, 2), (2, 2), (2, 2))
COMPACT_MULTIPLIERS = (1, 2, 2, 4, 4, 8, 8)


def extractor_channels(extractor: str, conv_channels: int) -> tuple[int, ...]:
  """Output channels of the 7 strided convs."""
  if extractor not in EXTRACTORS:
    raise ValueError(f"extractor must be one of {EXTRACTORS}, got {extractor!r}")
  if extractor == "original":
    return (conv_channels,) * len(CONV_LAYERS)
  return tuple(m * conv_channels for m in COMPACT_MULTIPLIERS)


def feature_length(num_samples: int) -> int:
  """Frames the extractor makes of `num_samples` samples (valid convs)."""
  length = int(num_samples)
  for kernel, stride in CONV_LAYERS:
    length = (length - kernel) // stride + 1
    if length < 1:
      raise ValueError(f"{num_samples} samples are too short for the feature extractor "
                       f"(receptive field {receptive_field()} samples)")
  return length


def receptive_field() -> int:
  field, jump = 1, 1
  for kernel, stride in CONV_LAYERS:
    field += (kernel - 1) * jump
    jump *= stride
  return field


def check_squeeze(frames: int, squeeze: int) -> None:
  """ValueError unless the squeeze factor divides the feature length."""
  if frames % squeeze:
    raise ValueError(f"squeeze factor {squeeze} does not divide the feature length {frames} "
                     f"frames; pad the waveforms so the length is a multiple of {squeeze} "
                     "(see speech.feature_length)")


class FeatureExtractor(nn.Module):
  """The convolutional waveform feature extractor: [B, samples] -> [B, frames, channels]."""
  extractor: str = "original"
  conv_channels: int = 512
  compact_pointwise: int = 1
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, waveforms: jax.Array) -> jax.Array:
    x = waveforms.astype(self.dtype)[..., None]
    channels = extractor_channels(self.extractor, self.conv_channels)
    for i, ((kernel, stride), width) in enumerate(zip(CONV_LAYERS, channels)):
      x = nn.Conv(width, (kernel,), strides=(stride,), padding="VALID", use_bias=False,
                  dtype=self.dtype, name=f"conv_{i}")(x)
      if i == 0:  # wav2vec 2.0 base: a per-channel GroupNorm on the first layer only.
        x = nn.GroupNorm(num_groups=width, dtype=self.dtype, name="norm_0")(x)
      x = nn.gelu(x)
      if self.extractor == "compact" and i > 0:
        for j in range(self.compact_pointwise):
          x = nn.gelu(nn.Conv(width, (1,), use_bias=False, dtype=self.dtype,
                              name=f"pointwise_{i}_{j}")(x))
    return x


class Squeeze(nn.Module):
  """AvgPool(s, s)(x) + GELU(strided grouped position conv(x)): [B, T, d] -> [B, T/s, d]."""
  squeeze: int
  kernel: int
  groups: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    check_squeeze(x.shape[1], self.squeeze)
    s = self.squeeze
    pooled = x.reshape(x.shape[0], x.shape[1] // s, s, x.shape[2]).mean(axis=2)
    # 'SAME' padding: ceil(T / s) = T / s outputs, the position conv centred on each window.
    positions = nn.Conv(x.shape[-1], (self.kernel,), strides=(s,), padding="SAME",
                        feature_group_count=self.groups, dtype=self.dtype,
                        name="position_conv")(x)
    return pooled + nn.gelu(positions)


class Upsample(nn.Module):
  """Dense(d -> s·d) + GELU, then s frames per frame: [B, T', d] -> [B, T'·s, d]."""
  squeeze: int
  dtype: Any = jnp.float32

  @nn.compact
  def __call__(self, x: jax.Array) -> jax.Array:
    b, t, d = x.shape
    x = nn.gelu(nn.Dense(self.squeeze * d, dtype=self.dtype, name="dense")(x))
    return x.reshape(b, t * self.squeeze, d)


@register("speech_ctc")
class SpeechCTC(nn.Module):
  """Waveforms [B, samples] -> CTC logits [B, frames, num_classes] (last class = blank).

  Widths: `conv_channels` (c), `d_model`, `ffn_dim` are multiplied by `width_multiplier`.
  """
  num_classes: int
  extractor: str = "original"
  conv_channels: int = 32
  compact_pointwise: int = 1
  d_model: int = 64
  num_heads: int = 4
  num_layers: int = 2
  ffn_dim: int = 256
  squeeze: int = 1
  pos_conv_kernel: int = 15
  pos_conv_groups: int = 16
  dropout: float = 0.1
  max_length: int = 512
  width_multiplier: float = 1.0
  dtype: Any = jnp.float32

  def __post_init__(self):
    layers.check_common(self)
    for name in ("conv_channels", "d_model", "num_heads", "num_layers", "ffn_dim", "squeeze",
                 "pos_conv_kernel", "pos_conv_groups", "max_length"):
      layers.check_positive_int(name, getattr(self, name))
    if not isinstance(self.compact_pointwise, int) or self.compact_pointwise < 0:
      raise ValueError(f"compact_pointwise must be an int >= 0, got {self.compact_pointwise!r}")
    if self.num_classes < 2:
      raise ValueError(f"num_classes must be >= 2 (labels and the blank), got "
                       f"{self.num_classes}")
    extractor_channels(self.extractor, self.conv_channels)
    d = self.widths["d_model"]
    if d % self.num_heads or d % self.pos_conv_groups:
      raise ValueError(f"d_model ({d}) must be divisible by num_heads ({self.num_heads}) and "
                       f"pos_conv_groups ({self.pos_conv_groups})")
    super().__post_init__()

  @property
  def widths(self) -> dict[str, int]:
    m = self.width_multiplier
    return {k: layers.scale_width(getattr(self, k), m)
            for k in ("conv_channels", "d_model", "ffn_dim")}

  @property
  def blank(self) -> int:
    return self.num_classes - 1

  @nn.compact
  def __call__(self, waveforms: jax.Array, train: bool = False) -> jax.Array:
    if waveforms.ndim == 3 and waveforms.shape[-1] == 1:
      waveforms = waveforms[..., 0]
    if waveforms.ndim != 2:
      raise ValueError(f"waveforms must be [B, samples], got shape {waveforms.shape}")
    w = self.widths
    check_squeeze(feature_length(waveforms.shape[1]), self.squeeze)
    x = waveforms.astype(jnp.float32)
    x = (x - x.mean(axis=1, keepdims=True)) / (x.std(axis=1, keepdims=True) + 1e-5)
    x = FeatureExtractor(self.extractor, w["conv_channels"], self.compact_pointwise,
                         self.dtype, name="extractor")(x)
    x = nn.LayerNorm(dtype=self.dtype, name="feature_norm")(x)
    x = nn.Dense(w["d_model"], dtype=self.dtype, name="projection")(x)
    x = nn.Dropout(self.dropout, deterministic=not train)(x)
    x = Squeeze(self.squeeze, self.pos_conv_kernel, self.pos_conv_groups, self.dtype,
                name="squeeze")(x)
    x = transformer.EncoderStack(self.num_layers, self.num_heads, w["ffn_dim"], self.dropout,
                                 positions="none", max_length=self.max_length,
                                 dtype=self.dtype, name="encoder")(x, train=train)
    if self.squeeze > 1:
      x = Upsample(self.squeeze, self.dtype, name="upsample")(x)
    return layers.to_logits(nn.Dense(self.num_classes, dtype=self.dtype, name="head")(x))


def param_count_formula(*, num_classes: int, extractor: str, conv_channels: int,
                        compact_pointwise: int, d_model: int, num_layers: int, ffn_dim: int,
                        squeeze: int, pos_conv_kernel: int, pos_conv_groups: int) -> int:
  """The parameter count of `SpeechCTC` in closed form (width_multiplier 1)."""
  channels = extractor_channels(extractor, conv_channels)
  count, c_in = 0, 1
  for i, ((kernel, _), c) in enumerate(zip(CONV_LAYERS, channels)):
    count += kernel * c_in * c  # convs without bias
    if i == 0:
      count += 2 * c  # GroupNorm scale and bias
    if extractor == "compact" and i > 0:
      count += compact_pointwise * c * c
    c_in = c
  d = d_model
  count += 2 * c_in + c_in * d + d  # feature LayerNorm, projection
  count += pos_conv_kernel * (d // pos_conv_groups) * d + d  # position conv
  block = 4 * (d * d + d) + 2 * (2 * d) + (d * ffn_dim + ffn_dim + ffn_dim * d + d)
  count += num_layers * block + 2 * d  # blocks, final LayerNorm
  if squeeze > 1:
    count += d * squeeze * d + squeeze * d
  return count + d * num_classes + num_classes


# CTC ----------------------------------------------------------------------------------------


def ctc_loss(logits: jax.Array, targets: jax.Array, blank: int) -> jax.Array:
  """Per-utterance CTC negative log-likelihood [B] (`optax.ctc_loss`) over all frames.

  logits [B, T, K]; targets [B, L] with -1 after each string ends.
  """
  label_paddings = (targets < 0).astype(jnp.float32)
  logit_paddings = jnp.zeros(logits.shape[:2], jnp.float32)
  return optax.ctc_loss(logits, logit_paddings, jnp.maximum(targets, 0), label_paddings,
                        blank_id=blank)


def greedy_ctc_decode(logits: Any, blank: int) -> tuple[jax.Array, jax.Array]:
  """Best path: argmax per frame, merge repeats, drop blanks.

  Returns (labels [B, T] left-aligned, -1 after each string; lengths [B]); jit-able.
  """
  best = jnp.argmax(jnp.asarray(logits), axis=-1)
  previous = jnp.concatenate([jnp.full_like(best[:, :1], -1), best[:, :-1]], axis=1)
  keep = (best != blank) & (best != previous)
  # Stable partition: kept frames first, in order.
  order = jnp.argsort(~keep, axis=1, stable=True)
  labels = jnp.take_along_axis(jnp.where(keep, best, -1), order, axis=1)
  return labels, keep.sum(axis=1)


def strings(labels: Any) -> list[tuple[int, ...]]:
  """Rows of a -1-padded label array as tuples."""
  return [tuple(int(v) for v in row if v >= 0) for row in np.asarray(labels)]


def edit_distance(a: Any, b: Any) -> int:
  """Levenshtein distance (unit insertions, deletions and substitutions) of two sequences."""
  a, b = list(a), list(b)
  row = np.arange(len(b) + 1)
  for i, x in enumerate(a, 1):
    previous, row = row, np.empty_like(row)
    row[0] = i
    for j, y in enumerate(b, 1):
      row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + (x != y))
  return int(row[-1])


def error_counts(hypotheses: Any, references: Any) -> tuple[np.ndarray, np.ndarray]:
  """(edit distance, reference length) per utterance, from -1-padded label arrays; the
  digit error rate of a set is sum(distance) / sum(length)."""
  hyp, ref = strings(hypotheses), strings(references)
  if len(hyp) != len(ref):
    raise ValueError(f"{len(hyp)} hypotheses for {len(ref)} references")
  return (np.array([edit_distance(h, r) for h, r in zip(hyp, ref)], np.int64),
          np.array([len(r) for r in ref], np.int64))
