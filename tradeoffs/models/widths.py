"""What the registry knows about a model's width, for techniques that know no models.

`width_keyword(name)` is the first of `WIDTH_FIELDS` the model accepts (the MLP's
`hidden`, the CNN's `channels`, the ResNets' `base_width`, ...); `base_width(name, kwargs)`
is its widest value, from `kwargs` or the module's own default. Techniques (`ensembles`,
the studies' width sweeps) receive these numbers as arguments instead of knowing models.

Dividing a wide model into S members (`ensembles.divide`) needs a little more, and the
registry owns that too:

  * `family(name)`: which of the paper's width rules applies, one of `FAMILIES`
    ("mlp", "cnn", "cifar_resnet", "imagenet_resnet", "wrn"), by the model's class;
  * `model_facts(name)`: family, the general model a preset belongs to, the preset's
    pinned kwargs, the width keyword, the defaults of the fields the division reads, and
    the input shape the family is counted on;
  * `division_info(name, kwargs)`: the plain dict `ensembles.divide(..., model_info=...)`
    takes: the model to divide (a preset whose divided field is pinned, e.g. wrn28_10 or
    resnext50_32x4d, becomes its general model with the pinned values as kwargs), its
    family, and the current values of the fields the family's rule reads;
  * `count_params(name, kwargs, num_classes=..., input_shape=...)`: trainable parameters,
    built abstractly (`jax.eval_shape`), so it allocates nothing.

    info = models.division_info("wrn28_10", {"dropout": 0.3})
    # {"name": "wrn", "kwargs": {"depth": 28, "widen_factor": 10, "dropout": 0.3},
    #  "family": "wrn", "values": {"widen_factor": 10, "dropout": 0.3}}
"""

from __future__ import annotations

import dataclasses
from typing import Any, Mapping

from tradeoffs.models import registry
from tradeoffs.models import utils

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


# ---------------------------------------------------------------------------------------
# Families: what dividing a model reads.


@dataclasses.dataclass(frozen=True)
class Family:
  """A model family as the division sees it.

  Attributes:
    model: the general registry model of the family (presets of it share its class).
    fields: the kwargs the family's width rule reads (and sets on a member).
    input_shape: (H, W, C) a model of the family is built on to count its parameters
      (digits 8x8x1, CIFAR 32x32x3, ImageNet 224x224x3).
  """
  model: str
  fields: tuple[str, ...]
  input_shape: tuple[int, ...]


FAMILIES: dict[str, Family] = {
    "mlp": Family("mlp", ("hidden",), (8, 8, 1)),
    "cnn": Family("cnn", ("channels", "dense"), (8, 8, 1)),
    "cifar_resnet": Family("resnet_cifar", ("base_width",), (32, 32, 3)),
    # ResNeXt divides `groups`, wide ResNet-50s `width_per_group`, plain ones `base_width`.
    "imagenet_resnet": Family("resnet_imagenet", ("base_width", "groups", "width_per_group"),
                              (224, 224, 3)),
    # The WRN rule divides the dropout too, also when it is the default.
    "wrn": Family("wrn", ("widen_factor", "dropout"), (32, 32, 3)),
}


def family(name: str) -> str | None:
  """The family (a key of `FAMILIES`) of registered model `name`; None when it has none."""
  factory, _ = registry._lookup(name)  # pylint: disable=protected-access
  for key, fam in FAMILIES.items():
    if registry._lookup(fam.model)[0] is factory:  # pylint: disable=protected-access
      return key
  return None


def division_names() -> list[str]:
  """Registered models that have a family (so a division rule), sorted."""
  return [n for n in registry.names() if family(n) is not None]


def _family_of(name: str) -> str:
  fam = family(name) if name in registry.names() else None
  if fam is None:
    raise ValueError(f"model {name!r} has no division rule; valid: {division_names()}")
  return fam


def model_facts(name: str) -> dict[str, Any]:
  """What the registry knows about model `name` for dividing and counting it.

  Returns a plain dict: `name`, `family`, `model` (the family's general model), `preset`
  (kwargs the registry pins for `name`, e.g. depth=28 and widen_factor=10 for wrn28_10),
  `width_keyword` (see `width_keyword`), `defaults` (the module's own values of the
  family's fields, and of `dropout` where the model has one), `input_shape` (H, W, C).
  """
  fam = _family_of(name)
  _, preset = registry._lookup(name)  # pylint: disable=protected-access
  module = registry.get(name, num_classes=2)
  fields = FAMILIES[fam].fields + (("dropout",) if hasattr(module, "dropout") else ())
  return {"name": name, "family": fam, "model": FAMILIES[fam].model, "preset": dict(preset),
          "width_keyword": width_keyword(name),
          "defaults": {f: getattr(module, f) for f in dict.fromkeys(fields)},
          "input_shape": FAMILIES[fam].input_shape}


def division_info(name: str, kwargs: Mapping[str, Any] | None = None) -> dict[str, Any]:
  """The model facts `ensembles.divide(spec, S, model_info=...)` divides, as a plain dict.

  Returns:
    name, kwargs: the model whose kwargs a member sets: `name` itself, or, for a preset
      that pins one of the family's fields (wrn28_10, wide_resnet50_2, resnext50_32x4d),
      its general model with the pinned kwargs added (a member of wrn28_10 is a wrn).
    family: a key of `FAMILIES`.
    values: the current value of each of the family's fields (from `kwargs`, else the
      module's own default), plus `dropout` when `kwargs` sets it.

  Raises:
    ValueError: unknown model or kwarg, a bad value, or a model without a family.
  """
  kwargs = dict(kwargs or {})
  fam = _family_of(name)
  _, preset = registry._lookup(name)  # pylint: disable=protected-access
  module = registry.get(name, num_classes=2, **kwargs)  # Validates; its values are the truth.
  fields = FAMILIES[fam].fields
  values = {f: getattr(module, f) for f in fields}
  if "dropout" in kwargs:
    values["dropout"] = kwargs["dropout"]
  if any(f in preset for f in fields):
    return {"name": FAMILIES[fam].model, "kwargs": {**preset, **kwargs}, "family": fam,
            "values": values}
  return {"name": name, "kwargs": kwargs, "family": fam, "values": values}


def count_params(name: str, kwargs: Mapping[str, Any] | None = None, *, num_classes: int,
                 input_shape: tuple[int, ...] | None = None) -> int:
  """Trainable parameters (the "params" collection) of `get(name, num_classes, **kwargs)`.

  Built abstractly with `jax.eval_shape`: nothing is allocated, so ImageNet models are
  cheap. `input_shape` is (H, W, C) without the batch axis; None takes the family's
  (`FAMILIES[...].input_shape`).
  """
  if input_shape is None:
    input_shape = FAMILIES[_family_of(name)].input_shape
  module = registry.get(name, num_classes=num_classes, **dict(kwargs or {}))
  shapes = utils.abstract_init(module, (1, *tuple(input_shape)))
  return utils.param_count(shapes["params"])
