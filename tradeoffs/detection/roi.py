"""RoI Align (He et al., Mask R-CNN 2017) with fixed-size outputs, for a two-stage
detector's second stage: each proposal box is cut from a feature map into an
`output_size` x `output_size` grid of bilinear samples, so the shapes never depend on the
data and the whole pooling jits.

Formulation chosen: `sampling_ratio` x `sampling_ratio` bilinear samples per output bin,
averaged; box coordinates as Detectron2's ROIAlign with `aligned=True` (a box in
pixel-edge coordinates is shifted by -0.5 so that sample points land on pixel centres).
The border differs: here the map is zero-padded (a sample reads bilinear weights of the
in-map pixels only), where Detectron2 clamps samples within one pixel of the border onto
it. Boxes are in input-image pixels; `stride` maps them to
the feature map.
"""

from __future__ import annotations

from typing import Any

import jax.numpy as jnp


def bilinear(features: Any, y: Any, x: Any) -> Any:
  """Samples features [H, W, C] at continuous (y, x) [...] in feature-pixel centres
  (integer coordinates = pixel centres), zero outside: [..., C]."""
  features = jnp.asarray(features)
  height, width = features.shape[:2]
  y0, x0 = jnp.floor(y), jnp.floor(x)
  out = 0.0
  for dy in (0, 1):
    for dx in (0, 1):
      yy, xx = y0 + dy, x0 + dx
      weight = (1 - jnp.abs(y - yy)) * (1 - jnp.abs(x - xx))
      inside = (yy >= 0) & (yy < height) & (xx >= 0) & (xx < width)
      value = features[jnp.clip(yy, 0, height - 1).astype(jnp.int32),
                       jnp.clip(xx, 0, width - 1).astype(jnp.int32)]
      out = out + jnp.where(inside, weight, 0.0)[..., None] * value
  return out


def roi_align(features: Any, boxes: Any, *, output_size: int, stride: float,
              sampling_ratio: int = 2) -> Any:
  """Pooled features [K, output_size, output_size, C] of boxes [K, 4] (x0, y0, x1, y1 in
  image pixels) from one image's feature map [H, W, C] of stride `stride`."""
  if int(output_size) < 1 or int(sampling_ratio) < 1 or not stride > 0:
    raise ValueError(f"output_size={output_size!r}, sampling_ratio={sampling_ratio!r}, "
                     f"stride={stride!r}: expected integers >= 1 and a stride > 0")
  boxes = jnp.asarray(boxes, jnp.float32) / stride - 0.5
  n, s = int(output_size), int(sampling_ratio)
  # Sample offsets inside the box, as fractions of its side: bin b, sample i at
  # (b + (i + 0.5) / s) / n.
  fractions = ((jnp.arange(n)[:, None] + (jnp.arange(s)[None, :] + 0.5) / s) / n).reshape(-1)
  x0, y0, x1, y1 = (boxes[:, i] for i in range(4))
  xs = x0[:, None] + fractions[None] * (x1 - x0)[:, None]  # [K, n*s]
  ys = y0[:, None] + fractions[None] * (y1 - y0)[:, None]
  samples = bilinear(features, ys[:, :, None], xs[:, None, :])  # [K, n*s, n*s, C]
  k, c = samples.shape[0], samples.shape[-1]
  return samples.reshape(k, n, s, n, s, c).mean(axis=(2, 4))
