"""Which keyword is a registered model's width, and its value: the registry owns this.

`width_keyword(name)` is the first of `WIDTH_FIELDS` the model accepts (the MLP's
`hidden`, the CNN's `channels`, the ResNets' `base_width`, ...); `base_width(name, kwargs)`
is its widest value, from `kwargs` or the module's own default. Techniques (`ensembles`,
the studies' width sweeps) receive these numbers as arguments instead of knowing models.
"""

from __future__ import annotations

from typing import Any, Mapping

from tradeoffs.models import registry

# Model kwargs that name a model's width, in order of preference.
WIDTH_FIELDS = ("hidden", "channels", "base_width", "widen_factor", "width_per_group")


def width_keyword(name: str) -> str | None:
  accepted = set(registry.accepted_kwargs(name))
  return next((f for f in WIDTH_FIELDS if f in accepted), None)


def _widest(value: Any) -> int | None:
  if isinstance(value, (list, tuple)):
    value = max(value) if value else None
  if isinstance(value, bool) or not isinstance(value, int):
    try:
      value = int(value) if value is not None and float(value) == int(value) else None
    except (TypeError, ValueError):
      return None
  return value


def base_width(name: str, kwargs: Mapping[str, Any] | None = None) -> int | None:
  """The widest width of model `name` built with `kwargs` (None when it has no width)."""
  kwargs = dict(kwargs or {})
  for field in WIDTH_FIELDS:
    if field not in registry.accepted_kwargs(name):
      continue
    value = kwargs.get(field)
    if value is None:
      try:
        value = getattr(registry.get(name, num_classes=2, **kwargs), field, None)
      except (TypeError, ValueError):
        value = None
    widest = _widest(value)
    if widest is not None:
      return widest
  return None
