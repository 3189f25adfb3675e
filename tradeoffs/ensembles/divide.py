"""Dividing one wide network into S small members (Divide and Co-training, Zhao et al.).

A layer's parameter count grows like C_in * C_out, so S members whose widths are the
wide width / sqrt(S) together hold about the wide model's parameters. The paper's own
rules are reproduced per model family (see `WIDTH_RULES`); regularization is divided
too (dropout p/S, weight decay by a named rule, no decay on norms and biases).

Model specs are `ModelSpec(name, kwargs)` for `tradeoffs.models.get(name, num_classes=...,
**kwargs)`. The width rules are pure arithmetic on specs; parameter counting builds the
model abstractly with `jax.eval_shape`, so it allocates nothing.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Callable, Mapping

import jax
import numpy as np

# CIFAR ResNet stem / base width per S (model/resnet.py of the reference code).
CIFAR_RESNET_WIDTHS: dict[int, dict[int, int]] = {16: {2: 12, 4: 8, 8: 6, 16: 4}}
# ImageNet ResNet stem width per S.
IMAGENET_RESNET_WIDTHS: dict[int, dict[int, int]] = {64: {2: 44, 4: 32, 8: 24}}
# Bottleneck width per group of wide ImageNet ResNets (WRN-50-2: 128, WRN-50-3: 192) per S.
WIDE_IMAGENET_WIDTHS: dict[int, dict[int, int]] = {128: {2: 64}, 192: {2: 128}}

CIFAR_RESNETS = ("resnet_cifar", "resnet20", "resnet32", "resnet44", "resnet56", "resnet110")
IMAGENET_RESNETS = ("resnet_imagenet", "resnet18", "resnet34", "resnet50", "resnet101",
                    "resnet152")

# Registry presets whose divided field is pinned, as (general model, its kwargs): a member
# of a preset is the general model with the divided value.
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "resnext50_32x4d": ("resnet_imagenet", {"depth": 50, "groups": 32, "width_per_group": 4}),
    "wide_resnet50_2": ("resnet_imagenet", {"depth": 50, "width_per_group": 128}),
}
_WRN_PRESET = re.compile(r"^wrn(\d+)_(\d+)$")  # wrn28_10 = wrn(depth=28, widen_factor=10)

# Defaults of `tradeoffs.models` (its documented API), used when a kwarg is absent and
# the module itself cannot be asked (see `_current`).
_MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "mlp": {"hidden": (256, 256)},
    "cnn": {"channels": (32, 64), "dense": 128},
    "wrn": {"base_width": 16, "dropout": 0.0},
    **{name: {"base_width": 16} for name in CIFAR_RESNETS},
    **{name: {"base_width": 64, "groups": 1, "width_per_group": None}
       for name in IMAGENET_RESNETS},
}

# Input shapes (without batch) used to build a model abstractly for counting.
_DEFAULT_INPUT_SHAPES: dict[str, tuple[int, ...]] = {
    "mlp": (8, 8, 1), "cnn": (8, 8, 1), "wrn": (32, 32, 3),
    **{name: (32, 32, 3) for name in CIFAR_RESNETS},
    **{name: (224, 224, 3) for name in IMAGENET_RESNETS},
}


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """A model by registry name and the keyword arguments for `tradeoffs.models.get`."""
  name: str
  kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)

  def build(self, num_classes: int):
    from tradeoffs import models  # Lazy: keeps the width arithmetic free of Flax.
    return models.get(self.name, num_classes=num_classes, **dict(self.kwargs))


@dataclasses.dataclass(frozen=True)
class Division:
  """The result of dividing a wide model into `num_members` members.

  Attributes:
    wide: the original spec.
    member: the spec of every member (all members share one architecture, so they
      stack into one population pytree).
    num_members: S.
    weight_decay: the divided weight decay (None when no weight decay was given).
    wide_params, member_params: parameter counts (None unless counting was asked for).
  """
  wide: ModelSpec
  member: ModelSpec
  num_members: int
  weight_decay: float | None = None
  wide_params: int | None = None
  member_params: int | None = None

  @property
  def member_specs(self) -> tuple[ModelSpec, ...]:
    return (self.member,) * self.num_members

  @property
  def total_member_params(self) -> int | None:
    return None if self.member_params is None else self.member_params * self.num_members

  @property
  def param_ratio(self) -> float | None:
    """S * member params / wide params: 1.0 is exact parity."""
    if self.wide_params is None or self.member_params is None:
      return None
    return self.total_member_params / self.wide_params


def check_num_members(num_members: Any, name: str = "num_members") -> int:
  """Returns S as an int, or raises ValueError for anything but an integer >= 1."""
  if isinstance(num_members, bool) or not isinstance(num_members, (int, np.integer)):
    raise ValueError(f"{name} must be an integer >= 1, got {num_members!r}")
  if num_members < 1:
    raise ValueError(f"{name} must be >= 1, got {num_members}")
  return int(num_members)


# ---------------------------------------------------------------------------------------
# Width arithmetic.


def wrn_widen_factor(widen_factor: float, num_members: int) -> int:
  """The paper's WRN rule k -> int(max(k / sqrt(S) + 0.4, 1)); 10 -> 7 (S=2), 5 (S=4)."""
  num_members = check_num_members(num_members)
  if num_members == 1:
    return widen_factor
  return int(max(widen_factor / math.sqrt(num_members) + 0.4, 1))


def sqrt_width(width: int, num_members: int, *, name: str = "width") -> int:
  """round(width / sqrt(S)); raises when that rounds to 0 (the layer would vanish)."""
  num_members = check_num_members(num_members)
  divided = int(round(width / math.sqrt(num_members)))
  if divided < 1:
    raise ValueError(f"{name}={width} cannot be divided into num_members={num_members}: "
                     f"width/sqrt(S) rounds to {divided}; use a smaller S or a wider model")
  return divided


def table_width(width: int, num_members: int, table: Mapping[int, Mapping[int, int]], *,
                name: str = "base_width", fallback: str | None = None) -> int:
  """The paper's width for S from `table`, else `fallback` ("sqrt") or a ValueError."""
  num_members = check_num_members(num_members)
  if num_members == 1:
    return width
  row = table.get(width, {})
  if num_members in row:
    return row[num_members]
  if fallback == "sqrt":
    return sqrt_width(width, num_members, name=name)
  known = {w: sorted(r) for w, r in table.items()}
  raise ValueError(f"{name}={width} with num_members={num_members} is not in the paper's "
                   f"table (base width: [S, ...]) {known}; pass width_rule='sqrt' to use "
                   f"round({name}/sqrt(S)) instead")


def _current(spec: ModelSpec, field: str) -> Any:
  """The value of `field` for `spec`: its kwarg, else the model's own default."""
  if field in spec.kwargs:
    return spec.kwargs[field]
  try:  # The built module is the truth about defaults when tradeoffs.models exists.
    return getattr(spec.build(num_classes=2), field)
  except (ImportError, AttributeError, TypeError, ValueError):
    pass
  defaults = _MODEL_DEFAULTS.get(spec.name, {})
  if field not in defaults:
    raise ValueError(f"model {spec.name!r} needs an explicit {field!r} in its kwargs to be "
                     f"divided (its default is unknown here)")
  return defaults[field]


def _divide_dropout(spec: ModelSpec, kwargs: dict[str, Any], num_members: int) -> None:
  if "dropout" in spec.kwargs or spec.name == "wrn":
    kwargs["dropout"] = float(_current(spec, "dropout")) / num_members


def _divide_wrn(spec: ModelSpec, num_members: int, width_rule: str) -> dict[str, Any]:
  kwargs = dict(spec.kwargs)
  k = _current(spec, "widen_factor")
  if width_rule == "paper":
    kwargs["widen_factor"] = wrn_widen_factor(k, num_members)
  else:
    kwargs["widen_factor"] = sqrt_width(k, num_members, name="widen_factor")
  _divide_dropout(spec, kwargs, num_members)
  return kwargs


def _divide_table(table):
  def divide(spec: ModelSpec, num_members: int, width_rule: str) -> dict[str, Any]:
    kwargs = dict(spec.kwargs)
    width = _current(spec, "base_width")
    if width_rule == "paper":
      kwargs["base_width"] = table_width(width, num_members, table)
    else:
      kwargs["base_width"] = sqrt_width(width, num_members, name="base_width")
    _divide_dropout(spec, kwargs, num_members)
    return kwargs
  return divide


def _divide_imagenet(spec: ModelSpec, num_members: int, width_rule: str) -> dict[str, Any]:
  kwargs = dict(spec.kwargs)
  groups = _current(spec, "groups")
  per_group = _current(spec, "width_per_group")
  if groups > 1:  # ResNeXt: divide the cardinality, keep the width per group.
    if groups % num_members:
      raise ValueError(f"groups={groups} (ResNeXt cardinality) cannot be divided into "
                       f"num_members={num_members}: S must divide it")
    kwargs["groups"] = groups // num_members
  elif per_group is not None:  # Wide ResNet-50: divide the bottleneck width, keep the stem.
    if width_rule == "paper":
      kwargs["width_per_group"] = table_width(per_group, num_members, WIDE_IMAGENET_WIDTHS,
                                              name="width_per_group")
    else:
      kwargs["width_per_group"] = sqrt_width(per_group, num_members, name="width_per_group")
  else:
    return _divide_table(IMAGENET_RESNET_WIDTHS)(spec, num_members, width_rule)
  return kwargs


def _divide_mlp(spec: ModelSpec, num_members: int, width_rule: str) -> dict[str, Any]:
  del width_rule  # The paper has no MLP rule: width / sqrt(S) is the rule.
  kwargs = dict(spec.kwargs)
  hidden = _current(spec, "hidden")
  kwargs["hidden"] = tuple(sqrt_width(h, num_members, name="hidden") for h in hidden)
  _divide_dropout(spec, kwargs, num_members)
  return kwargs


def _divide_cnn(spec: ModelSpec, num_members: int, width_rule: str) -> dict[str, Any]:
  del width_rule
  kwargs = dict(spec.kwargs)
  kwargs["channels"] = tuple(sqrt_width(c, num_members, name="channels")
                             for c in _current(spec, "channels"))
  kwargs["dense"] = sqrt_width(_current(spec, "dense"), num_members, name="dense")
  _divide_dropout(spec, kwargs, num_members)
  return kwargs


# Model name -> fn(spec, S, width_rule) -> member kwargs.
WIDTH_RULES: dict[str, Callable[[ModelSpec, int, str], dict[str, Any]]] = {
    "mlp": _divide_mlp,
    "cnn": _divide_cnn,
    "wrn": _divide_wrn,
    **{name: _divide_table(CIFAR_RESNET_WIDTHS) for name in CIFAR_RESNETS},
    **{name: _divide_imagenet for name in IMAGENET_RESNETS},
}
WIDTH_RULE_NAMES = ("paper", "sqrt")


def divide_spec(spec: ModelSpec | tuple[str, Mapping[str, Any]], num_members: int, *,
                width_rule: str = "paper") -> ModelSpec:
  """The spec of one of S members with about 1/S of the wide model's parameters.

  Args:
    spec: the wide model, a `ModelSpec` or (name, kwargs).
    num_members: S >= 1; S = 1 returns the spec unchanged.
    width_rule: "paper" uses the paper's rules (WRN widen factor, the ResNet width
      tables; MLP/CNN widths round(w/sqrt(S))), and raises for widths off the tables;
      "sqrt" uses round(w/sqrt(S)) everywhere. ResNeXt divides its cardinality by S
      under either rule (the paper); wide ImageNet ResNets divide width_per_group.

  Presets with pinned widths (wrn28_10, wide_resnet50_2, resnext50_32x4d) come back as
  their general model (wrn, resnet_imagenet) with the divided value.
  """
  spec = _as_spec(spec)
  num_members = check_num_members(num_members)
  if width_rule not in WIDTH_RULE_NAMES:
    raise ValueError(f"width_rule={width_rule!r} is unknown; valid: {list(WIDTH_RULE_NAMES)}")
  if num_members == 1:
    return spec
  general = _resolve_preset(spec)
  if general.name not in WIDTH_RULES:
    raise ValueError(f"model {spec.name!r} has no division rule; valid: "
                     f"{sorted(WIDTH_RULES) + sorted(PRESETS)} and wrn<depth>_<k> presets")
  return ModelSpec(general.name, WIDTH_RULES[general.name](general, num_members, width_rule))


def _resolve_preset(spec: ModelSpec) -> ModelSpec:
  """A preset name (wrn28_10, resnext50_32x4d, ...) as its general model's spec."""
  match = _WRN_PRESET.match(spec.name)
  if match:
    pinned = {"depth": int(match.group(1)), "widen_factor": int(match.group(2))}
    return ModelSpec("wrn", {**pinned, **spec.kwargs})
  if spec.name in PRESETS:
    name, pinned = PRESETS[spec.name]
    return ModelSpec(name, {**pinned, **spec.kwargs})
  return spec


def divide(spec: ModelSpec | tuple[str, Mapping[str, Any]], num_members: int, *,
           weight_decay: float | None = None, weight_decay_rule: str = "exp",
           width_rule: str = "paper", count: bool = False, num_classes: int = 10,
           input_shape: tuple[int, ...] | None = None) -> Division:
  """Divides a wide model into S members: member spec, weight decay, parameter counts.

  Args:
    spec: the wide model.
    num_members: S.
    weight_decay: the wide model's weight decay, divided by `weight_decay_rule`.
    weight_decay_rule: a key of `WEIGHT_DECAY_RULES`.
    width_rule: see `divide_spec`.
    count: also count parameters of the wide model and of one member (needs
      `tradeoffs.models`; free, via `jax.eval_shape`).
    num_classes, input_shape: what the models are built for when counting; the input
      shape (no batch axis) defaults per family (digits 8x8x1, CIFAR 32x32x3,
      ImageNet 224x224x3).
  """
  spec = _as_spec(spec)
  member = divide_spec(spec, num_members, width_rule=width_rule)
  wd = None
  if weight_decay is not None:
    wd = divide_weight_decay(weight_decay, num_members, rule=weight_decay_rule)
  elif weight_decay_rule not in WEIGHT_DECAY_RULES:
    raise ValueError(f"weight_decay_rule={weight_decay_rule!r} is unknown; "
                     f"valid: {sorted(WEIGHT_DECAY_RULES)}")
  wide_params = member_params = None
  if count:
    shape = input_shape or _DEFAULT_INPUT_SHAPES.get(_resolve_preset(spec).name)
    if shape is None:
      raise ValueError(f"input_shape is needed to count parameters of {spec.name!r}")
    wide_params = count_model_params(spec, num_classes=num_classes, input_shape=shape)
    member_params = count_model_params(member, num_classes=num_classes, input_shape=shape)
  return Division(wide=spec, member=member, num_members=int(num_members), weight_decay=wd,
                  wide_params=wide_params, member_params=member_params)


def _as_spec(spec: Any) -> ModelSpec:
  if isinstance(spec, ModelSpec):
    return spec
  if isinstance(spec, str):
    return ModelSpec(spec, {})
  if isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[0], str):
    return ModelSpec(spec[0], dict(spec[1]))
  raise ValueError(f"spec must be a ModelSpec, a model name or (name, kwargs), got {spec!r}")


# ---------------------------------------------------------------------------------------
# Parameter counting.


def count_params(tree: Any) -> int:
  """Total number of elements over a pytree of arrays or `jax.ShapeDtypeStruct`s."""
  return int(sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(tree)))


def count_init_params(init_fn: Callable[..., Any], *args: Any, collection: str | None = None,
                      **kwargs: Any) -> int:
  """Counts the parameters `init_fn(*args)` would create, without allocating them.

  `collection` picks one entry of a dict result (e.g. "params" of Flax variables, which
  leaves out batch statistics).
  """
  shapes = jax.eval_shape(lambda: init_fn(*args, **kwargs))
  if collection is not None:
    shapes = shapes[collection]
  return count_params(shapes)


def count_model_params(spec: ModelSpec | tuple[str, Mapping[str, Any]], *, num_classes: int,
                       input_shape: tuple[int, ...]) -> int:
  """Trainable parameters of a `tradeoffs.models` model (the "params" collection)."""
  from tradeoffs import models  # Lazy: keeps the width arithmetic free of Flax.
  spec = _as_spec(spec)
  model = spec.build(num_classes=num_classes)
  shapes = models.abstract_init(model, (1, *input_shape))  # jax.eval_shape: allocates nothing
  return models.param_count(shapes["params"])


# ---------------------------------------------------------------------------------------
# Dividing the regularization.

# Name -> fn(wd, S). "exp" is the reference code's default (is_div_wd=1); the other two
# are the alternatives left commented out there. The code warns none always helps.
WEIGHT_DECAY_RULES: dict[str, Callable[[float, int], float]] = {
    "exp": lambda wd, s: wd * math.exp(1.0 / s - 1.0),
    "divide": lambda wd, s: wd / s,
    "linear_floor": lambda wd, s: wd * max(1.0 - s / 20.0, 1.0 / s),
    "none": lambda wd, s: wd,
}


def divide_weight_decay(weight_decay: float, num_members: int, *, rule: str = "exp") -> float:
  """The weight decay of each of S members: "exp" wd*exp(1/S - 1) (default), "divide"
  wd/S, "linear_floor" wd*max(1 - S/20, 1/S), or "none"."""
  num_members = check_num_members(num_members)
  if rule not in WEIGHT_DECAY_RULES:
    raise ValueError(f"weight_decay_rule={rule!r} is unknown; valid: {sorted(WEIGHT_DECAY_RULES)}")
  if weight_decay < 0:
    raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
  return float(WEIGHT_DECAY_RULES[rule](float(weight_decay), num_members))


def divide_dropout(rate: float, num_members: int) -> float:
  """Dropout rate of each member: p / S."""
  num_members = check_num_members(num_members)
  if not 0.0 <= rate < 1.0:
    raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
  return rate / num_members


# Path entries that mark parameters exempt from weight decay: biases and normalization
# parameters under Flax (bias, scale), Haiku (b, offset, scale) and Equinox (bias) names.
_NO_DECAY_LEAVES = frozenset({"bias", "b", "scale", "offset", "beta", "gamma"})
_NORM_MODULE = re.compile(r"(norm|^bn\d*$|^bn_|_bn$|^ln\d*$|^gn\d*$)", re.IGNORECASE)


def _path_names(path) -> list[str]:
  names = []
  for entry in path:
    for attr in ("key", "name", "idx"):
      if hasattr(entry, attr):
        names.append(str(getattr(entry, attr)))
        break
  return names


def weight_decay_mask(params: Any, *, member_axes: int = 0) -> Any:
  """True for parameters that get weight decay: no norms, no biases, nothing 1-D.

  Usable as `mask=` of `optax.add_decayed_weights` / `optax.adamw`. A parameter is
  exempt when its leaf name is a bias/norm name (bias, scale, offset, ...), when a
  module on its path is a normalization layer (name contains "norm", or bn/ln/gn), or
  when it has fewer than two dimensions besides `member_axes` leading population axes.
  """
  def decays(path, leaf) -> bool:
    names = _path_names(path)
    if names and names[-1] in _NO_DECAY_LEAVES:
      return False
    if any(_NORM_MODULE.search(n) for n in names[:-1]):
      return False
    return np.ndim(leaf) - member_axes >= 2

  return jax.tree_util.tree_map_with_path(decays, params)
