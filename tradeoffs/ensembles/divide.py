"""Dividing one wide network into S small members (Divide and Co-training, Zhao et al.).

A layer's parameter count grows like C_in * C_out, so S members whose widths are the
wide width / sqrt(S) together hold about the wide model's parameters. The paper's own
rules are reproduced per model family (see `WIDTH_RULES`); regularization is divided
too (dropout p/S, weight decay by a named rule, no decay on norms and biases).

This module knows no models: it works on width numbers. `divide_widths(family, values,
S)` is the arithmetic on the family's fields (e.g. {"widen_factor": 10} of a WRN);
`divide(spec, S, model_info=..., count_params=...)` divides a `ModelSpec(name, kwargs)`
with the model facts its caller resolved (the models registry owns them):

    info = models.division_info(name, kwargs)
    count = functools.partial(models.count_params, num_classes=10)
    division = ensembles.divide(ensembles.ModelSpec(name, kwargs), S, model_info=info,
                                count_params=count, weight_decay=5e-4)

`model_info` is required: this package knows no models.
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


@dataclasses.dataclass(frozen=True)
class ModelSpec:
  """A model by registry name and the keyword arguments it is built with."""
  name: str
  kwargs: Mapping[str, Any] = dataclasses.field(default_factory=dict)


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
  """Returns S as an int, or raises ValueError for anything but an integer >= 1.

  >>> check_num_members(4)
  4
  >>> check_num_members(0)
  Traceback (most recent call last):
  ...
  ValueError: num_members must be >= 1, got 0
  """
  if isinstance(num_members, bool) or not isinstance(num_members, (int, np.integer)):
    raise ValueError(f"{name} must be an integer >= 1, got {num_members!r}")
  if num_members < 1:
    raise ValueError(f"{name} must be >= 1, got {num_members}")
  return int(num_members)


# ---------------------------------------------------------------------------------------
# Width arithmetic.


def wrn_widen_factor(widen_factor: float, num_members: int) -> int:
  """The paper's WRN rule k -> int(max(k / sqrt(S) + 0.4, 1)); 10 -> 7 (S=2), 5 (S=4).

  >>> wrn_widen_factor(10, 2), wrn_widen_factor(10, 4), wrn_widen_factor(2, 16)
  (7, 5, 1)
  """
  num_members = check_num_members(num_members)
  if num_members == 1:
    return widen_factor
  return int(max(widen_factor / math.sqrt(num_members) + 0.4, 1))


def sqrt_width(width: int, num_members: int, *, name: str = "width") -> int:
  """round(width / sqrt(S)); raises when that rounds to 0 (the layer would vanish).

  >>> sqrt_width(64, 4), sqrt_width(100, 2)
  (32, 71)
  """
  num_members = check_num_members(num_members)
  divided = int(round(width / math.sqrt(num_members)))
  if divided < 1:
    raise ValueError(f"{name}={width} cannot be divided into num_members={num_members}: "
                     f"width/sqrt(S) rounds to {divided}; use a smaller S or a wider model")
  return divided


def table_width(width: int, num_members: int, table: Mapping[int, Mapping[int, int]], *,
                name: str = "base_width", fallback: str | None = None) -> int:
  """The paper's width for S from `table`, else `fallback` ("sqrt") or a ValueError.

  >>> table_width(16, 4, CIFAR_RESNET_WIDTHS)                      # the paper's table
  8
  >>> table_width(16, 3, CIFAR_RESNET_WIDTHS, fallback="sqrt")     # off the table: 16/sqrt(3)
  9
  """
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


def _value(values: Mapping[str, Any], field: str, family: str) -> Any:
  if field not in values or (values[field] is None and field != "width_per_group"):
    raise ValueError(f"dividing a {family!r} model needs the value of {field!r} "
                     f"(got values {dict(values)})")
  return values[field]


def _divide_dropout(values: Mapping[str, Any], out: dict[str, Any], num_members: int) -> None:
  if values.get("dropout") is not None:
    out["dropout"] = float(values["dropout"]) / num_members


def _divide_wrn(values: Mapping[str, Any], num_members: int, width_rule: str) -> dict[str, Any]:
  k = _value(values, "widen_factor", "wrn")
  out = {"widen_factor": (wrn_widen_factor(k, num_members) if width_rule == "paper"
                          else sqrt_width(k, num_members, name="widen_factor"))}
  _divide_dropout(values, out, num_members)
  return out


def _divide_table(table, family):
  def divide(values: Mapping[str, Any], num_members: int, width_rule: str) -> dict[str, Any]:
    width = _value(values, "base_width", family)
    out = {"base_width": (table_width(width, num_members, table) if width_rule == "paper"
                          else sqrt_width(width, num_members, name="base_width"))}
    _divide_dropout(values, out, num_members)
    return out
  return divide


def _divide_imagenet(values: Mapping[str, Any], num_members: int,
                     width_rule: str) -> dict[str, Any]:
  groups = _value(values, "groups", "imagenet_resnet")
  per_group = values.get("width_per_group")
  if groups > 1:  # ResNeXt: divide the cardinality, keep the width per group.
    if groups % num_members:
      raise ValueError(f"groups={groups} (ResNeXt cardinality) cannot be divided into "
                       f"num_members={num_members}: S must divide it")
    return {"groups": groups // num_members}
  if per_group is not None:  # Wide ResNet-50: divide the bottleneck width, keep the stem.
    if width_rule == "paper":
      return {"width_per_group": table_width(per_group, num_members, WIDE_IMAGENET_WIDTHS,
                                             name="width_per_group")}
    return {"width_per_group": sqrt_width(per_group, num_members, name="width_per_group")}
  return _divide_table(IMAGENET_RESNET_WIDTHS, "imagenet_resnet")(values, num_members,
                                                                   width_rule)


def _divide_mlp(values: Mapping[str, Any], num_members: int, width_rule: str) -> dict[str, Any]:
  del width_rule  # The paper has no MLP rule: width / sqrt(S) is the rule.
  out = {"hidden": tuple(sqrt_width(h, num_members, name="hidden")
                         for h in _value(values, "hidden", "mlp"))}
  _divide_dropout(values, out, num_members)
  return out


def _divide_cnn(values: Mapping[str, Any], num_members: int, width_rule: str) -> dict[str, Any]:
  del width_rule
  out = {"channels": tuple(sqrt_width(c, num_members, name="channels")
                           for c in _value(values, "channels", "cnn")),
         "dense": sqrt_width(_value(values, "dense", "cnn"), num_members, name="dense")}
  _divide_dropout(values, out, num_members)
  return out


# Family -> fn(values, S, width_rule) -> the member's values of the fields the rule sets.
# `values` holds the wide model's value of each field the rule reads: mlp `hidden`; cnn
# `channels`, `dense`; cifar_resnet `base_width`; imagenet_resnet `base_width`, `groups`,
# `width_per_group`; wrn `widen_factor`; any family `dropout` (divided when present).
WIDTH_RULES: dict[str, Callable[[Mapping[str, Any], int, str], dict[str, Any]]] = {
    "mlp": _divide_mlp,
    "cnn": _divide_cnn,
    "wrn": _divide_wrn,
    "cifar_resnet": _divide_table(CIFAR_RESNET_WIDTHS, "cifar_resnet"),
    "imagenet_resnet": _divide_imagenet,
}
FAMILIES = tuple(WIDTH_RULES)
WIDTH_RULE_NAMES = ("paper", "sqrt")


def _check_width_rule(width_rule: str) -> None:
  if width_rule not in WIDTH_RULE_NAMES:
    raise ValueError(f"width_rule={width_rule!r} is unknown; valid: {list(WIDTH_RULE_NAMES)}")


def divide_widths(family: str, values: Mapping[str, Any], num_members: int, *,
                  width_rule: str = "paper") -> dict[str, Any]:
  """A member's widths: the paper's rule for `family` applied to the wide `values`.

  Args:
    family: a key of `WIDTH_RULES` ("mlp", "cnn", "cifar_resnet", "imagenet_resnet",
      "wrn"); the models registry says which a model is (`models.family`).
    values: the wide model's value of each field the family's rule reads (see
      `WIDTH_RULES`), e.g. {"widen_factor": 10, "dropout": 0.3}.
    num_members: S >= 1.
    width_rule: "paper" uses the paper's rules (WRN widen factor, the ResNet width
      tables; MLP/CNN widths round(w/sqrt(S))), and raises for widths off the tables;
      "sqrt" uses round(w/sqrt(S)) everywhere. ResNeXt divides its cardinality by S
      under either rule (the paper); wide ImageNet ResNets divide width_per_group.

  Returns:
    The member's values of the fields the rule sets, e.g. {"widen_factor": 7,
    "dropout": 0.15} for S = 2.

  >>> divide_widths("wrn", {"widen_factor": 10, "dropout": 0.3}, 2)
  {'widen_factor': 7, 'dropout': 0.15}
  >>> divide_widths("mlp", {"hidden": (64, 32)}, 4)
  {'hidden': (32, 16)}
  """
  num_members = check_num_members(num_members)
  _check_width_rule(width_rule)
  if family not in WIDTH_RULES:
    raise ValueError(f"family {family!r} has no division rule; valid: {sorted(WIDTH_RULES)}")
  return WIDTH_RULES[family](values, num_members, width_rule)


def divide_spec(spec: ModelSpec | tuple[str, Mapping[str, Any]] | str, num_members: int, *,
                model_info: Mapping[str, Any] | None = None,
                width_rule: str = "paper") -> ModelSpec:
  """The spec of one of S members with about 1/S of the wide model's parameters.

  Args:
    spec: the wide model, a `ModelSpec`, (name, kwargs) or a name.
    num_members: S >= 1; S = 1 returns the spec unchanged.
    model_info: the model facts, `models.division_info(spec.name, spec.kwargs)`: a dict
      with `family` and `values` (see `divide_widths`), and optionally `name` and
      `kwargs`, the model a member is built as (defaults: the spec's). Presets with
      pinned widths (wrn28_10, resnext50_32x4d) come back from the registry as their
      general model (wrn, resnet_imagenet), so their members are that model with the
      divided value.
    width_rule: see `divide_widths`.

  >>> info = {"family": "mlp", "values": {"hidden": (64,)}}
  >>> divide_spec(ModelSpec("mlp", {"hidden": (64,), "act": "relu"}), 4, model_info=info)
  ModelSpec(name='mlp', kwargs={'hidden': (32,), 'act': 'relu'})
  """
  spec = _as_spec(spec)
  num_members = check_num_members(num_members)
  _check_width_rule(width_rule)
  if num_members == 1:
    return spec
  info = _model_info(spec, model_info)
  divided = divide_widths(info["family"], info["values"], num_members, width_rule=width_rule)
  return ModelSpec(info["name"], {**info["kwargs"], **divided})


def _model_info(spec: ModelSpec, model_info: Mapping[str, Any] | None) -> dict[str, Any]:
  if model_info is None:
    raise ValueError(f"dividing {spec.name!r} needs model_info=models.division_info(name, "
                     "kwargs): the ensembles package knows no models")
  if not isinstance(model_info, Mapping) or not {"family", "values"} <= set(model_info):
    raise ValueError(f"model_info must be a dict with 'family' and 'values' (from "
                     f"models.division_info(name, kwargs)), got {model_info!r}")
  return {"name": model_info.get("name", spec.name),
          "kwargs": dict(model_info.get("kwargs", spec.kwargs)),
          "family": model_info["family"], "values": dict(model_info["values"])}


def divide(spec: ModelSpec | tuple[str, Mapping[str, Any]] | str, num_members: int, *,
           model_info: Mapping[str, Any] | None = None,
           count_params: Callable[[str, Mapping[str, Any]], int] | None = None,
           weight_decay: float | None = None, weight_decay_rule: str = "exp",
           width_rule: str = "paper") -> Division:
  """Divides a wide model into S members: member spec, weight decay, parameter counts.

  Args:
    spec: the wide model.
    num_members: S.
    model_info: the model facts (see `divide_spec`), `models.division_info(name, kwargs)`.
    count_params: fn(name, kwargs) -> trainable parameters, e.g.
      `functools.partial(models.count_params, num_classes=10)`; when given, the wide
      model and one member are counted.
    weight_decay: the wide model's weight decay, divided by `weight_decay_rule`.
    weight_decay_rule: a key of `WEIGHT_DECAY_RULES`.
    width_rule: see `divide_widths`.

  >>> info = {"family": "mlp", "values": {"hidden": (64,)}}
  >>> count = lambda name, kwargs: (10 + 2) * kwargs["hidden"][0]   # 10 inputs, 2 classes
  >>> d = divide(("mlp", {"hidden": (64,)}), 4, model_info=info, count_params=count,
  ...            weight_decay=5e-4)
  >>> d.member.kwargs, d.wide_params, d.member_params, d.param_ratio
  ({'hidden': (32,)}, 768, 384, 2.0)
  >>> round(d.weight_decay, 7)                                   # 5e-4 * exp(1/4 - 1)
  0.0002362
  """
  spec = _as_spec(spec)
  member = divide_spec(spec, num_members, model_info=model_info, width_rule=width_rule)
  wd = None
  if weight_decay is not None:
    wd = divide_weight_decay(weight_decay, num_members, rule=weight_decay_rule)
  elif weight_decay_rule not in WEIGHT_DECAY_RULES:
    raise ValueError(f"weight_decay_rule={weight_decay_rule!r} is unknown; "
                     f"valid: {sorted(WEIGHT_DECAY_RULES)}")
  wide_params = member_params = None
  if count_params is not None:
    wide_params = int(count_params(spec.name, dict(spec.kwargs)))
    member_params = int(count_params(member.name, dict(member.kwargs)))
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
  """Total number of elements over a pytree of arrays or `jax.ShapeDtypeStruct`s.

  >>> import jax
  >>> import numpy as np
  >>> count_params({"a": np.zeros((2, 3)), "b": jax.ShapeDtypeStruct((4,), np.float32)})
  10
  """
  return int(sum(math.prod(leaf.shape) for leaf in jax.tree.leaves(tree)))


def count_init_params(init_fn: Callable[..., Any], *args: Any, collection: str | None = None,
                      **kwargs: Any) -> int:
  """Counts the parameters `init_fn(*args)` would create, without allocating them.

  `collection` picks one entry of a dict result (e.g. "params" of Flax variables, which
  leaves out batch statistics).

  >>> import jax.numpy as jnp
  >>> init = lambda: {"params": {"w": jnp.zeros((3, 4))}, "batch_stats": {"m": jnp.zeros(4)}}
  >>> count_init_params(init), count_init_params(init, collection="params")
  (16, 12)
  """
  shapes = jax.eval_shape(lambda: init_fn(*args, **kwargs))
  if collection is not None:
    shapes = shapes[collection]
  return count_params(shapes)


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
  wd/S, "linear_floor" wd*max(1 - S/20, 1/S), or "none".

  >>> divide_weight_decay(1e-3, 2, rule="divide"), round(divide_weight_decay(1e-3, 2), 8)
  (0.0005, 0.00060653)
  """
  num_members = check_num_members(num_members)
  if rule not in WEIGHT_DECAY_RULES:
    raise ValueError(f"weight_decay_rule={rule!r} is unknown; valid: {sorted(WEIGHT_DECAY_RULES)}")
  if weight_decay < 0:
    raise ValueError(f"weight_decay must be >= 0, got {weight_decay}")
  return float(WEIGHT_DECAY_RULES[rule](float(weight_decay), num_members))


def divide_dropout(rate: float, num_members: int) -> float:
  """Dropout rate of each member: p / S.

  >>> divide_dropout(0.5, 2)
  0.25
  """
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

  >>> import numpy as np
  >>> params = {"dense": {"kernel": np.zeros((3, 4)), "bias": np.zeros(4)},
  ...           "BatchNorm_0": {"scale": np.zeros(4)}, "layer_norm": {"w": np.zeros((4, 4))}}
  >>> weight_decay_mask(params)
  {'BatchNorm_0': {'scale': False}, 'dense': {'bias': False, 'kernel': True}, 'layer_norm': {'w': False}}
  >>> weight_decay_mask({"w": np.zeros((8, 3))}, member_axes=1)   # [members, 3]: 1-D per member
  {'w': False}
  """
  def decays(path, leaf) -> bool:
    names = _path_names(path)
    if names and names[-1] in _NO_DECAY_LEAVES:
      return False
    if any(_NORM_MODULE.search(n) for n in names[:-1]):
      return False
    return np.ndim(leaf) - member_axes >= 2

  return jax.tree_util.tree_map_with_path(decays, params)
