"""Human audit of CIEs: an image grid and a machine-readable list of example ids.

Host-side writers (numpy + matplotlib's Agg canvas, no pyplot global state); only
process 0 writes.
"""

from __future__ import annotations

import math
import os
from typing import Sequence

import numpy as np

from tradeoffs import files as files_lib
from tradeoffs.exemplars import cie as cie_lib
from tradeoffs.exemplars import population


def _select(ids, dense_modal, comp_modal, is_cie, scores):
  """Indices of the CIEs to show/list: highest score first, else in example order."""
  ids = np.asarray(ids)
  if is_cie is None:
    if dense_modal is None or comp_modal is None:
      raise ValueError("pass is_cie=, or dense_modal= and comp_modal= to derive it")
    is_cie = np.asarray(dense_modal) != np.asarray(comp_modal)
  is_cie = np.asarray(is_cie, bool)
  if is_cie.shape != ids.shape:
    raise ValueError(f"is_cie has shape {is_cie.shape}, ids {ids.shape}: one per example")
  index = np.flatnonzero(is_cie)
  if scores is not None:
    scores = np.asarray(scores)
    if scores.shape != ids.shape:
      raise ValueError(f"scores has shape {scores.shape}, ids {ids.shape}: one per example")
    index = index[np.argsort(-scores[index], kind="stable")]
  return index


def _name(value, class_names):
  value = int(value)
  return class_names[value] if class_names is not None else str(value)


def audit_figure(images, ids, dense_modal, comp_modal, labels, *, max_images: int = 64,
                 is_cie=None, scores=None, class_names: Sequence[str] | None = None,
                 title: str | None = None, reference: str = "dense",
                 variant: str = "comp"):
  """A matplotlib Figure (Agg canvas) of CIE images captioned with the example id, both
  modal labels (`reference`'s and `variant`'s) and the true label; returns (figure,
  number of images drawn). Arguments as `audit_sheet`.

  >>> import numpy as np
  >>> images = np.zeros((3, 4, 4, 1))
  >>> figure, drawn = audit_figure(images, [10, 11, 12], [0, 1, 2], [0, 2, 0], [0, 1, 2])
  >>> drawn, [a.get_title().splitlines()[0] for a in figure.axes]   # the two CIEs
  (2, ['id 11', 'id 12'])
  """
  from matplotlib.backends.backend_agg import FigureCanvasAgg
  from matplotlib.figure import Figure

  if int(max_images) < 0:
    raise ValueError(f"max_images={max_images!r}: must be >= 0")
  images = np.asarray(images, np.float32)
  if images.ndim != 4 or images.shape[-1] not in (1, 3):
    raise ValueError(f"images has shape {images.shape}: expected [examples, H, W, 1 or 3]")
  if images.shape[0] != np.asarray(ids).shape[0]:
    raise ValueError(f"images has {images.shape[0]} examples, ids {np.asarray(ids).shape[0]}")
  index = _select(ids, dense_modal, comp_modal, is_cie, scores)[:int(max_images)]
  dense_modal, comp_modal = np.asarray(dense_modal), np.asarray(comp_modal)
  labels, ids = np.asarray(labels), np.asarray(ids)
  columns = max(1, min(8, len(index)))
  rows = max(1, math.ceil(len(index) / columns))
  figure = Figure(figsize=(1.6 * columns, 1.9 * rows + (0.4 if title else 0.0)), dpi=100)
  FigureCanvasAgg(figure)
  if title:
    figure.suptitle(title, fontsize=9)
  if not len(index):
    figure.text(0.5, 0.5, "no CIE examples", ha="center", va="center")
  for slot, i in enumerate(index):
    axis = figure.add_subplot(rows, columns, slot + 1)
    image = np.clip(images[i], 0.0, 1.0)
    if image.shape[-1] == 1:
      axis.imshow(image[..., 0], cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest")
    else:
      axis.imshow(image, interpolation="nearest")
    axis.set_xticks([])
    axis.set_yticks([])
    axis.set_title(f"id {int(ids[i])}\n{reference} {_name(dense_modal[i], class_names)} "
                   f"{variant} {_name(comp_modal[i], class_names)}\n"
                   f"true {_name(labels[i], class_names)}", fontsize=6)
  figure.tight_layout()
  return figure, len(index)


def audit_sheet(path_png: str, images, ids, dense_modal, comp_modal, labels, *,
                max_images: int = 64, is_cie=None, scores=None,
                class_names: Sequence[str] | None = None, title: str | None = None) -> int:
  """Writes a PNG grid of CIE images captioned with id, both modal labels and the label.

  Args:
    path_png: output file.
    images: float [examples, H, W, C] in [0, 1] (C = 1 or 3).
    ids: example ids [examples].
    dense_modal, comp_modal: modal labels [examples] of the two populations.
    labels: true labels [examples].
    max_images: at most this many images are drawn (highest `scores` first when given).
    is_cie: which examples to draw; default: where the modal labels differ.
    scores: optional per-example scores (e.g. taxicab) to order the grid.
    class_names: optional names for the label ints.
    title: optional figure title.

  Returns:
    The number of images drawn (the file is written even when it is 0).

  >>> import os, tempfile
  >>> import numpy as np
  >>> path = os.path.join(tempfile.mkdtemp(), "cie.png")
  >>> audit_sheet(path, np.zeros((3, 4, 4, 1)), [10, 11, 12], [0, 1, 2], [0, 2, 0], [0, 1, 2],
  ...             max_images=1)
  1
  >>> open(path, "rb").read(4)[1:]
  b'PNG'
  """
  if not files_lib.is_writer():
    return len(_select(ids, dense_modal, comp_modal, is_cie, scores)[:int(max_images)])
  figure, drawn = audit_figure(images, ids, dense_modal, comp_modal, labels,
                               max_images=max_images, is_cie=is_cie, scores=scores,
                               class_names=class_names, title=title)
  os.makedirs(os.path.dirname(os.path.abspath(path_png)), exist_ok=True)
  figure.savefig(path_png, format="png")
  return drawn


def write_cie_list(path_json: str, ids, *, is_cie=None, scores=None, dense_modal=None,
                   comp_modal=None, labels=None, **metadata) -> list[dict]:
  """Writes the CIEs as JSON: {"count", "examples": [{"id", ...}], **metadata}.

  Each entry holds the example id and, when given, its score, both modal labels and the
  true label; entries are ordered by score (highest first) when scores are given, else by
  example order. `is_cie` defaults to where the modal labels differ.

  >>> import json, os, tempfile
  >>> path = os.path.join(tempfile.mkdtemp(), "cie.json")
  >>> write_cie_list(path, [10, 11, 12], dense_modal=[0, 1, 2], comp_modal=[0, 2, 0],
  ...                scores=[0.0, 0.5, 1.5], variant="pruned")     # highest score first
  [{'id': 12, 'score': 1.5, 'dense_modal': 2, 'compressed_modal': 0},
   {'id': 11, 'score': 0.5, 'dense_modal': 1, 'compressed_modal': 2}]
  >>> saved = json.load(open(path))
  >>> saved["count"], saved["variant"]
  (2, 'pruned')
  """
  index = _select(ids, dense_modal, comp_modal, is_cie, scores)
  columns = {"score": scores, "dense_modal": dense_modal, "compressed_modal": comp_modal,
             "label": labels}
  columns = {k: np.asarray(v) for k, v in columns.items() if v is not None}
  ids = np.asarray(ids)
  examples = [{"id": ids[i].item(), **{k: v[i].item() for k, v in columns.items()}}
              for i in index]
  if files_lib.is_writer():
    files_lib.write_json(path_json, {"count": len(examples), "examples": examples,
                                       **metadata})
  return examples


def write_audit(path_json: str, variant: str, reference: str, reference_logits, logits,
                labels, ids, *, group_ids=None, group_names: Sequence[str] = (),
                num_classes: int | None = None, top: int = 64) -> dict:
  """The audit list of `variant`'s CIEs against the `reference` population.

  Writes `path_json` (every modal CIE by id with both modal labels, the true label and its
  taxicab score, highest score first, plus the CIE count per group) and returns {"json",
  "count", "top": the first `top` entries with their example index}, from which an audit
  image grid can be drawn (`audit_figure`).

  Args:
    reference_logits, logits: the two populations [members, examples, classes] (or labels
      [members, examples]).
    labels, ids: true labels and example ids [examples].
    group_ids, group_names: optional group id per example and the groups' names.

  >>> import os, tempfile
  >>> import numpy as np
  >>> dense = np.array([[0, 1, 2], [0, 1, 2]])
  >>> pruned = np.array([[0, 2, 2], [0, 2, 1]])             # example 1 is a CIE
  >>> out = write_audit(os.path.join(tempfile.mkdtemp(), "a.json"), "pruned", "dense", dense,
  ...                   pruned, labels=[0, 1, 2], ids=[7, 8, 9], group_ids=[0, 1, 1],
  ...                   group_names=["a", "b"], num_classes=3)
  >>> out["count"], out["top"]
  (1, [{'index': 1, 'id': 8, 'score': 2.0, 'dense_modal': 1, 'compressed_modal': 2, 'label': 1}])
  """
  reference_modal = np.asarray(population.modal_labels(reference_logits, num_classes))
  modal = np.asarray(population.modal_labels(logits, num_classes))
  scores = np.asarray(cie_lib.taxicab_scores(reference_logits, logits, num_classes))
  is_cie = reference_modal != modal
  per_group = {}
  if group_ids is not None:
    group_ids = np.asarray(group_ids)
    per_group = {name: int(np.sum(is_cie & (group_ids == g)))
                 for g, name in enumerate(group_names)}
  examples = write_cie_list(
      path_json, ids, is_cie=is_cie, scores=scores, dense_modal=reference_modal,
      comp_modal=modal, labels=labels, variant=variant, reference=reference,
      reference_members=int(np.shape(reference_logits)[0]),
      members=int(np.shape(logits)[0]), cie_per_group=per_group,
      order="taxicab score, highest first")
  index = _select(ids, reference_modal, modal, is_cie, scores)[:max(0, int(top))]
  top_entries = [{"index": int(i), **examples[j]} for j, i in enumerate(index)]
  return {"json": path_json, "count": len(examples), "top": top_entries}
