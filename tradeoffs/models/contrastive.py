"""An encoder with a projection head and a linear classifier: `encoder_net`.

One module for both sides of a contrastive-vs-cross-entropy comparison, so both train the
same encoder: [3x3 conv -> activation -> 2x2 max-pool] per `channels`, flatten, [Dense ->
activation] per `hidden` (the encoder; its last output is the embedding), then

  * a projection head [Dense -> activation] per `projection[:-1]` and a final Dense
    `projection[-1]` (SupCon's z; empty `projection`: none), and
  * a linear classifier `head` on the embedding.

`output` picks what `__call__` returns: 'logits' (the classifier's) or 'projection'. Both
heads are always built, so the parameters are the same whatever the output: a model
trained on its projection is linearly evaluated by the same parameters with
output='logits'. The encoder's layer outputs (after the activation) and the logits are
sown into the 'representations' collection ('layers', in forward order) and the embedding
under 'embedding' (`layer_representations` reads them).
"""

from __future__ import annotations

import functools
from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from tradeoffs.models import layers
from tradeoffs.models.registry import register

OUTPUTS = ("logits", "projection")
REPRESENTATIONS = "representations"


@register("encoder_net")
class EncoderNet(nn.Module):
  num_classes: int
  channels: Sequence[int] = ()
  hidden: Sequence[int] = (64, 64)
  projection: Sequence[int] = (64, 32)
  output: str = "logits"
  activation: str = "relu"
  width_multiplier: float = 1.0
  dtype: Any = jnp.float32

  def __post_init__(self):
    layers.check_common(self)
    layers.check_widths("channels", self.channels)
    layers.check_widths("hidden", self.hidden, allow_empty=False)
    layers.check_widths("projection", self.projection)
    for field in ("channels", "hidden", "projection"):
      object.__setattr__(self, field, tuple(getattr(self, field)))
    if self.output not in OUTPUTS:
      raise ValueError(f"output={self.output!r}; choose from {list(OUTPUTS)}")
    if self.output == "projection" and not self.projection:
      raise ValueError("output='projection' needs a projection head (projection=())")
    super().__post_init__()

  @nn.compact
  def __call__(self, images: jax.Array, train: bool = False) -> jax.Array:
    layers.check_images(images)
    act = layers.make_activation(self.activation)
    scale = lambda w: layers.scale_width(w, self.width_multiplier)  # noqa: E731
    x = images.astype(self.dtype)
    for i, width in enumerate(self.channels):
      x = act(nn.Conv(scale(width), (3, 3), padding="SAME", dtype=self.dtype,
                      name=f"conv_{i}")(x))
      self.sow(REPRESENTATIONS, "layers", x.reshape((x.shape[0], -1)))
      x = nn.max_pool(x, (2, 2), strides=(2, 2))
    x = x.reshape((x.shape[0], -1))
    for i, width in enumerate(self.hidden):
      x = act(nn.Dense(scale(width), dtype=self.dtype, name=f"dense_{i}")(x))
      self.sow(REPRESENTATIONS, "layers", x)
    self.sow(REPRESENTATIONS, "embedding", x)
    logits = layers.to_logits(layers.classifier(self.num_classes, self.dtype)(x))
    self.sow(REPRESENTATIONS, "layers", logits)
    z = x
    for i, width in enumerate(self.projection):
      z = nn.Dense(width, dtype=self.dtype, name=f"proj_{i}")(z)
      if i < len(self.projection) - 1:
        z = act(z)
    return layers.to_logits(z) if self.output == "projection" else logits


@functools.lru_cache(maxsize=16)
def _representations_program(apply_fn: Any):
  def one(variables, x):
    variables = {k: v for k, v in variables.items() if k != REPRESENTATIONS}  # init's own
    _, state = apply_fn(variables, x, train=False, mutable=[REPRESENTATIONS])
    r = state[REPRESENTATIONS]
    return list(r["layers"]), r["embedding"][0]

  return jax.jit(jax.vmap(one, in_axes=(0, None)))


def layer_representations(apply_fn: Any, variables: Any, images: Any, batch_size: int = 512
                          ) -> tuple[list[np.ndarray], np.ndarray]:
  """(per-layer representations [[M, N, F_l] for each layer in forward order, the logits
  last], the embedding [M, N, F]) of a population (`variables` with a leading member
  axis) on `images`, in eval mode, in batches of `batch_size` (the last one zero-padded,
  so every split of every population of one model runs one compiled program)."""
  images = np.asarray(images)
  n = len(images)
  run = _representations_program(apply_fn)
  chunks = []
  for i in range(0, n, batch_size):
    batch = images[i:i + batch_size]
    pad = batch_size - len(batch)
    if pad:
      batch = np.concatenate([batch, np.zeros((pad, *batch.shape[1:]), batch.dtype)])
    chunks.append(run(variables, batch))
  per_layer = [np.concatenate([np.asarray(c[0][l]) for c in chunks], axis=1)[:, :n]
               for l in range(len(chunks[0][0]))]
  return per_layer, np.concatenate([np.asarray(c[1]) for c in chunks], axis=1)[:, :n]
