"""A procedurally generated detection set: digit glyphs and shapes at several scales on
textured backgrounds, with exact boxes and a background-kind group per image.

Generated on the fly as a pure function of (seed, split, index) — nothing is vendored,
because drawing a few hundred 64x64 scenes costs well under a second, less than shipping
and checking texture files would. The glyphs are the embedded UCI digits (8x8, CC BY 4.0,
`tradeoffs/data/vendored/uci_digits`); train scenes draw glyphs from the digits' train
split, test scenes from its test split. The backgrounds are procedural textures (not the
scikit-image PNGs the issue suggests, which would have to be vendored):

  flat      one grey level in [0, 0.35]
  gradient  a linear ramp in a random direction, from ~0.05 to ~0.45
  stripes   a sinusoidal grating (period 3-9 px, random orientation) around 0.3
  clutter   smoothed uniform noise in [0, 0.6] plus a few bright blobs: the hardest kind,
            because its blobs look like small objects

Objects: a class (10 digits, then square, disk, triangle), a side drawn log-uniformly in
[min_side, max_side] (so every size bucket is populated), a grey level in [0.75, 1]
alpha-blended over the background, and a position with IoU <= 0.3 to the objects placed
before it. A box is exactly the smallest pixel rectangle holding the object's visible
pixels (alpha >= 0.25 after resampling; fainter pixels are zeroed so the box is tight).
Lower resolutions (`resize`) are the same scenes, antialiased, with boxes scaled exactly.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import numpy as np
from scipy import ndimage

from tradeoffs.detection import boxes as boxes_lib

BACKGROUNDS = ("flat", "gradient", "stripes", "clutter")
SHAPES = ("square", "disk", "triangle")
CLASSES = tuple(f"digit_{d}" for d in range(10)) + SHAPES
SPLITS = ("train", "test")
_ALPHA_FLOOR = 0.25


@dataclasses.dataclass(frozen=True)
class SceneConfig:
  """How scenes are drawn (see the module docstring)."""
  image_size: int = 64
  min_objects: int = 1
  max_objects: int = 4
  min_side: int = 6
  max_side: int = 28
  max_overlap: float = 0.3

  def check(self, prefix: str = "") -> "SceneConfig":
    def fail(field, allowed):
      raise ValueError(f"{prefix}{field}={getattr(self, field)!r}: {allowed}")
    for field in ("image_size", "min_objects", "max_objects", "min_side", "max_side"):
      value = getattr(self, field)
      if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        fail(field, "expected an int >= 1")
    if self.image_size < 16:
      fail("image_size", "expected an int >= 16")
    if self.max_objects < self.min_objects:
      fail("max_objects", f"expected >= min_objects ({self.min_objects})")
    if self.min_side < 4:
      fail("min_side", "expected an int >= 4 (a glyph needs a few pixels)")
    if not self.min_side <= self.max_side <= self.image_size:
      fail("max_side", f"expected min_side ({self.min_side}) <= max_side <= image_size "
                       f"({self.image_size}): an object must fit inside the image")
    if not 0 <= self.max_overlap < 1:
      fail("max_overlap", "expected a number in [0, 1)")
    return self


@dataclasses.dataclass(frozen=True)
class DetectionSet:
  """Scenes padded to a fixed object count (jit-friendly): images [N, S, S, 1] float32 in
  [0, 1]; boxes [N, M, 4] float32 (x0, y0, x1, y1) pixels; classes [N, M] int32 (-1 in
  padding); valid [N, M] bool; background [N] int32 (an index into `background_names`)."""
  images: np.ndarray
  boxes: np.ndarray
  classes: np.ndarray
  valid: np.ndarray
  background: np.ndarray
  class_names: tuple[str, ...] = CLASSES
  background_names: tuple[str, ...] = BACKGROUNDS

  @property
  def image_size(self) -> int:
    return int(self.images.shape[1])

  def __len__(self) -> int:
    return int(self.images.shape[0])

  def subset(self, index: Any) -> "DetectionSet":
    return dataclasses.replace(self, images=self.images[index], boxes=self.boxes[index],
                               classes=self.classes[index], valid=self.valid[index],
                               background=self.background[index])

  def ground_truth(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per-image (boxes [n, 4], classes [n]) without padding, for `metrics.evaluate`."""
    return ([b[v] for b, v in zip(self.boxes, self.valid)],
            [c[v] for c, v in zip(self.classes, self.valid)])


@functools.lru_cache(maxsize=None)
def _glyphs(split: str) -> tuple[np.ndarray, np.ndarray]:
  from tradeoffs.data import builders  # The embedded digits (a data file, not a model).
  images, labels = builders.read_digits_file()
  index = builders.digits_split_indices()[split]
  return images[index].astype(np.float32) / 16.0, labels[index]


def _background(rng: np.random.Generator, kind: str, size: int) -> np.ndarray:
  yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
  if kind == "flat":
    return np.full((size, size), rng.uniform(0.0, 0.35), np.float32)
  if kind == "gradient":
    angle = rng.uniform(0, 2 * np.pi)
    ramp = (np.cos(angle) * xx + np.sin(angle) * yy) / size
    ramp = (ramp - ramp.min()) / max(float(np.ptp(ramp)), 1e-6)
    return (0.05 + 0.4 * ramp).astype(np.float32)
  if kind == "stripes":
    angle, period = rng.uniform(0, np.pi), rng.uniform(3.0, 9.0)
    phase = rng.uniform(0, 2 * np.pi)
    wave = np.sin(2 * np.pi * (np.cos(angle) * xx + np.sin(angle) * yy) / period + phase)
    return (0.3 + 0.2 * wave).astype(np.float32)
  if kind == "clutter":
    noise = ndimage.uniform_filter(rng.uniform(0, 1, (size, size)), size=3)
    noise = 0.6 * (noise - noise.min()) / max(float(np.ptp(noise)), 1e-6)
    for _ in range(int(rng.integers(2, 6))):  # Distractors: bright blurred blobs.
      cx, cy, r = rng.uniform(0, size), rng.uniform(0, size), rng.uniform(1.0, 3.0)
      noise = np.maximum(noise, 0.7 * np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * r * r)))
    return noise.astype(np.float32)
  raise ValueError(f"background kind {kind!r} is unknown; known: {BACKGROUNDS}")


def _shape_alpha(kind: str, side: int) -> np.ndarray:
  yy, xx = (np.mgrid[0:side, 0:side].astype(np.float32) + 0.5) / side
  if kind == "square":
    return np.ones((side, side), np.float32)
  if kind == "disk":
    return ((xx - 0.5) ** 2 + (yy - 0.5) ** 2 <= 0.25).astype(np.float32)
  if kind == "triangle":  # Apex at the top centre, base along the bottom row.
    return (np.abs(xx - 0.5) <= 0.5 * yy).astype(np.float32)
  raise ValueError(kind)


def _object_alpha(rng: np.random.Generator, label: int, side: int, split: str) -> np.ndarray:
  if label < 10:
    glyphs, labels = _glyphs(split)
    choices = np.flatnonzero(labels == label)
    glyph = glyphs[choices[int(rng.integers(len(choices)))]]
    alpha = np.clip(ndimage.zoom(glyph, side / 8.0, order=1), 0, 1)[:side, :side]
  else:
    alpha = _shape_alpha(SHAPES[label - 10], side)
  return np.where(alpha >= _ALPHA_FLOOR, alpha, 0.0).astype(np.float32)


def scene(seed: int, split: str, index: int, config: SceneConfig
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
  """One scene: image [S, S], boxes [n, 4], classes [n], background index; a pure function
  of (seed, split, index, config)."""
  s = config.image_size
  rng = np.random.default_rng([int(seed), SPLITS.index(split), int(index)])
  kind = int(rng.integers(len(BACKGROUNDS)))
  image = _background(rng, BACKGROUNDS[kind], s)
  boxes, classes = [], []
  for _ in range(int(rng.integers(config.min_objects, config.max_objects + 1))):
    label = int(rng.integers(len(CLASSES)))
    side = int(round(np.exp(rng.uniform(np.log(config.min_side), np.log(config.max_side)))))
    alpha = _object_alpha(rng, label, side, split)
    rows, cols = np.flatnonzero(alpha.any(1)), np.flatnonzero(alpha.any(0))
    if not len(rows):
      continue
    for _ in range(20):  # Rejection sampling of a position that overlaps little.
      x, y = int(rng.integers(0, s - side + 1)), int(rng.integers(0, s - side + 1))
      box = np.array([x + cols[0], y + rows[0], x + cols[-1] + 1, y + rows[-1] + 1],
                     np.float32)
      overlap = float(np.max(boxes_lib.iou(box[None], np.stack(boxes), np))) if boxes else 0.0
      if overlap <= config.max_overlap:
        break
    else:
      continue
    grey = rng.uniform(0.75, 1.0)
    patch = image[y:y + side, x:x + side]
    image[y:y + side, x:x + side] = patch * (1 - alpha) + grey * alpha
    boxes.append(box)
    classes.append(label)
  boxes_arr = np.stack(boxes) if boxes else np.zeros((0, 4), np.float32)
  return image, boxes_arr, np.asarray(classes, np.int32), kind


def generate(seed: int, count: int, config: SceneConfig = SceneConfig(),
             split: str = "train") -> DetectionSet:
  """`count` scenes of `split`, a pure function of (seed, split, config)."""
  config.check()
  if split not in SPLITS:
    raise ValueError(f"split={split!r}: expected one of {SPLITS}")
  if isinstance(count, bool) or int(count) != count or count < 1:
    raise ValueError(f"count={count!r}: expected an int >= 1")
  m = config.max_objects
  images = np.zeros((count, config.image_size, config.image_size, 1), np.float32)
  boxes = np.zeros((count, m, 4), np.float32)
  classes = np.full((count, m), -1, np.int32)
  valid = np.zeros((count, m), bool)
  background = np.zeros((count,), np.int32)
  for i in range(int(count)):
    image, b, c, kind = scene(seed, split, i, config)
    images[i, ..., 0], background[i] = image, kind
    boxes[i, :len(b)], classes[i, :len(c)], valid[i, :len(b)] = b, c, True
  boxes_lib.check_boxes(boxes[valid], (config.image_size, config.image_size), "scene boxes")
  return DetectionSet(images, boxes, classes, valid, background)


@functools.partial(jax.jit, static_argnums=1)
def _resize_images(images: Any, shape: tuple[int, ...]) -> jax.Array:
  return jax.image.resize(images, shape, method="linear", antialias=True)


def resize(data: DetectionSet, size: int) -> DetectionSet:
  """The same scenes at `size` x `size` (antialiased linear resampling), boxes scaled."""
  if isinstance(size, bool) or int(size) != size or size < 8:
    raise ValueError(f"size={size!r}: expected an int >= 8")
  if size == data.image_size:
    return data
  n = len(data)
  images = np.asarray(_resize_images(data.images, (n, size, size, 1)))
  scale = size / data.image_size
  return dataclasses.replace(data, images=np.clip(images, 0, 1).astype(np.float32),
                             boxes=(data.boxes * scale).astype(np.float32))
