"""Figures without global state: a `matplotlib.figure.Figure` on its own Agg canvas.

No pyplot and no `matplotlib.use`, so building a report never switches a notebook's
plotting backend. Sizes are chosen for the width the HTML report shows (1,100 px) so that
text stays readable there: `new(columns=2)` gives two panels of 5.4 × 4 in at 100 dpi.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

DPI = 100
PANEL = (5.4, 4.0)  # inches per panel
FONT = {"font.size": 10, "axes.titlesize": 11, "axes.labelsize": 10, "xtick.labelsize": 9,
        "ytick.labelsize": 9, "legend.fontsize": 9}
COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
          "#7f7f7f", "#bcbd22", "#17becf")


def new(columns: int = 1, rows: int = 1, *, panel: tuple[float, float] = PANEL,
        width: float | None = None, height: float | None = None) -> tuple[Figure, list[Any]]:
  """(figure, flat list of axes) for a grid of panels, on an Agg canvas."""
  import matplotlib
  figure = Figure(figsize=(width or panel[0] * columns, height or panel[1] * rows), dpi=DPI)
  FigureCanvasAgg(figure)
  with matplotlib.rc_context(FONT):
    axes = [figure.add_subplot(rows, columns, i + 1) for i in range(rows * columns)]
  for ax in axes:
    ax.tick_params(labelsize=FONT["xtick.labelsize"])
    ax.xaxis.label.set_size(FONT["axes.labelsize"])
    ax.yaxis.label.set_size(FONT["axes.labelsize"])
    ax.title.set_size(FONT["axes.titlesize"])
    ax.grid(alpha=0.3)
  return figure, axes


def color(index: int) -> str:
  return COLORS[index % len(COLORS)]


def save(figure: Figure, path: str) -> str:
  """Writes a PNG (tight layout) and returns its path."""
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  figure.tight_layout()
  figure.savefig(path, format="png", dpi=DPI)
  return path


def spaced_labels(points: Any, min_dx: float, min_dy: float) -> list[int]:
  """Indices of `points` (display coordinates, in priority order) that get a label: a point
  is skipped when a kept one lies closer than `min_dx` horizontally and `min_dy` vertically
  (its label would overprint that one's)."""
  points = np.asarray(points, float).reshape(-1, 2)
  kept: list[int] = []
  for i, (x, y) in enumerate(points):
    if all(abs(x - points[j, 0]) >= min_dx or abs(y - points[j, 1]) >= min_dy for j in kept):
      kept.append(i)
  return kept
