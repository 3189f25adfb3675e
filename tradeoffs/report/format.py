"""One set of formatters for every report (tables, sentences, the ledger).

    count(1234567) -> '1.23M'      accuracy(0.9812) -> '98.1%'     pct_interval(...)
    number(8.137) -> '8.14'        signed(-8.1) -> '−8.1'          interval(7.2, 9.0) -> '[7.2, 9.0]'
    p(3.1e-5) -> '3.1e-05'         latency(ms, p10, p90) -> '0.21 ms (0.20–0.25)'
"""

from __future__ import annotations

import math
from typing import Any

DASH = "–"


def _ok(value: Any) -> bool:
  return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def count(value: Any) -> str:
  """1234567 -> '1.23M'; integers below 1,000 as they are."""
  if not _ok(value):
    return DASH
  for factor, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
    if abs(value) >= factor:
      return f"{value / factor:.3g}{suffix}"
  return f"{value:.3g}" if value != int(value) else str(int(value))


def accuracy(value: Any) -> str:
  """A fraction as a percentage with one decimal ('98.1%'); values > 1 are taken as %."""
  if not _ok(value):
    return DASH
  return f"{100 * value:.1f}%" if abs(value) <= 1.0 else f"{value:.1f}%"


def number(value: Any, digits: int = 3) -> str:
  if not _ok(value):
    return DASH
  return f"{value:.{digits}g}" if abs(value) >= 1e-3 or value == 0 else f"{value:.2e}"


def signed(value: Any, decimals: int = 1) -> str:
  if not _ok(value):
    return DASH
  text = f"{value:+.{decimals}f}"
  return text.replace("-", "−")


def interval(low: Any, high: Any, decimals: int = 1) -> str:
  if not (_ok(low) and _ok(high)):
    return "[–]"
  return f"[{low:.{decimals}f}, {high:.{decimals}f}]".replace("-", "−")


def p(value: Any) -> str:
  if not _ok(value):
    return DASH
  if value >= 0.01:
    return f"{value:.2f}"
  return f"{value:.1e}"


def fraction(value: Any, decimals: int = 3) -> str:
  """A fraction such as an achieved sparsity: 0.800000011920929 -> '0.800'."""
  if not _ok(value):
    return DASH
  return f"{value:.{decimals}f}"


def latency(median: Any, low: Any = None, high: Any = None) -> str:
  """'0.21 ms (p10–p90 0.20–0.25)': a latency is a median with its spread."""
  if not _ok(median):
    return DASH
  text = f"{median:.3g} ms"
  if _ok(low) and _ok(high):
    text += f" ({low:.3g}–{high:.3g})"
  return text
