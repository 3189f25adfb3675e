"""String-keyed model registry: `register`, `get`, `names`, `accepted_kwargs`.

A registered factory is a Flax Linen module class (or any callable returning a module) that
takes `num_classes` plus keyword arguments. `register(name, **preset)` can pin some of them
(e.g. `resnet20` is the CIFAR ResNet with `depth=20`); pinned kwargs are not accepted by `get`.
"""

from __future__ import annotations

import dataclasses
import inspect
import operator
from typing import Any, Callable

import flax.linen as nn

_REGISTRY: dict[str, tuple[Callable[..., nn.Module], dict[str, Any]]] = {}
# Dataclass fields every Linen module has that are not model hyperparameters.
_MODULE_INTERNALS = frozenset({"parent", "name"})
# One instance per (name, num_classes, kwargs): an unbound Linen module is an immutable
# value, and sharing it makes `model.apply` the same bound method for equal settings, so
# the training states of two populations of the same model have equal tree structures and
# share their compiled training and evaluation programs (bound methods compare by the
# identity of their instance).
_INSTANCES: dict[tuple[Any, ...], nn.Module] = {}


def register(name: str, **preset: Any) -> Callable:
  """Decorator registering `factory` under `name`, with `preset` kwargs pinned."""
  if not isinstance(name, str) or not name:
    raise ValueError(f"name must be a non-empty string, got {name!r}")

  def decorator(factory):
    if name in _REGISTRY:
      raise ValueError(f"model name {name!r} is already registered")
    unknown = set(preset) - set(_factory_kwargs(factory))
    if unknown:
      raise ValueError(f"preset kwargs {sorted(unknown)} for {name!r} are not accepted by "
                       f"{factory!r}; accepted: {sorted(_factory_kwargs(factory))}")
    _REGISTRY[name] = (factory, dict(preset))
    return factory

  return decorator


def names() -> list[str]:
  """Registered model names, sorted."""
  return sorted(_REGISTRY)


def _factory_kwargs(factory: Callable) -> list[str]:
  """Keyword arguments a factory takes, other than `num_classes`."""
  if dataclasses.is_dataclass(factory):
    params = [f.name for f in dataclasses.fields(factory) if f.init]
  else:
    params = [p.name for p in inspect.signature(factory).parameters.values()
              if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
  return [p for p in params if p not in _MODULE_INTERNALS and p != "num_classes"]


def _lookup(name: str):
  if name not in _REGISTRY:
    raise ValueError(f"unknown model name {name!r}; valid names: {names()}")
  return _REGISTRY[name]


def accepted_kwargs(name: str) -> list[str]:
  """The kwargs `get(name, num_classes=..., **kwargs)` accepts, in declaration order."""
  factory, preset = _lookup(name)
  return [k for k in _factory_kwargs(factory) if k not in preset]


def get(name: str, *, num_classes: int, **kwargs: Any) -> nn.Module:
  """Builds the registered model `name` with `num_classes` outputs.

  Raises:
    ValueError: unknown name (lists valid names), unknown kwarg (lists accepted ones), or a bad
      hyperparameter value (checked when the module is constructed, before any compile).
  """
  factory, preset = _lookup(name)
  accepted = accepted_kwargs(name)
  unknown = [k for k in kwargs if k not in accepted]
  if unknown:
    raise ValueError(f"unknown kwarg(s) {unknown} for model {name!r}; accepted: {accepted}")
  try:
    valid = not isinstance(num_classes, bool) and operator.index(num_classes) >= 1
  except TypeError:
    valid = False
  if not valid:
    raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
  # Types too: 1 == 1.0 == True, but a module built with one may differ from the others.
  key = (name, operator.index(num_classes),
         tuple(sorted((k, type(v).__name__, v) for k, v in kwargs.items())))
  try:
    return _INSTANCES[key]
  except TypeError:  # An unhashable kwarg value: build without sharing.
    return factory(num_classes=operator.index(num_classes), **preset, **kwargs)
  except KeyError:
    model = _INSTANCES[key] = factory(num_classes=operator.index(num_classes), **preset,
                                      **kwargs)
    return model
