"""Every config file in experiments/configs: declared variants build, typos are rejected."""

from __future__ import annotations

import glob
import importlib
import os
import re

import pytest

from experiments.configs import common

_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "configs")
CONFIG_FILES = sorted(os.path.basename(p) for p in glob.glob(os.path.join(_DIR, "*.py"))
                      if os.path.basename(p) not in ("__init__.py", "common.py"))


def _module(filename):
  return importlib.import_module(f"experiments.configs.{filename[:-3]}")


def _declared_variants(module):
  """The variants a config names when given an unknown one ('allowed: '', 'smoke', ...')."""
  with pytest.raises(ValueError, match=r"'no_such_variant'.*allowed") as err:
    module.get_config("no_such_variant")
  names = re.findall(r"'([^']*)'", str(err.value).split("allowed", 1)[1])
  assert "" in names, str(err.value)
  return names


def test_config_files_found():
  assert len(CONFIG_FILES) >= 10 and "digits_mlp.py" in CONFIG_FILES


@pytest.mark.parametrize("filename", CONFIG_FILES)
def test_every_declared_variant_builds_and_differs_from_default(filename):
  module = _module(filename)
  variants = _declared_variants(module)
  default = module.get_config(None).to_dict()
  assert module.get_config("").to_dict() == default
  for variant in variants:
    config = module.get_config(variant)
    if variant:  # A declared variant that the config ignores would run the default.
      assert config.to_dict() != default, f"{filename}:{variant} is the default config"


@pytest.mark.parametrize("filename", CONFIG_FILES)
def test_unknown_variant_raises_naming_allowed(filename):
  module = _module(filename)
  variants = _declared_variants(module)
  with pytest.raises(ValueError) as err:
    module.get_config("smokey")
  message = str(err.value)
  assert "'smokey'" in message
  for variant in variants:
    assert repr(variant) in message


@pytest.mark.parametrize("filename", CONFIG_FILES)
def test_unknown_key_raises_naming_it(filename):
  module = _module(filename)
  with pytest.raises(ValueError, match=r"no_such_key.*allowed"):
    module.get_config("smoke,no_such_key=3")


def test_parse_arg_typo_names_file_and_allowed():
  with pytest.raises(ValueError, match=(r"config variant 'smokey' is unknown for "
                                        r"test_configs.py; allowed: '', 'smoke'$")):
    common.parse_arg("smokey", variants=("smoke",), members=4)
  with pytest.raises(ValueError, match=r"'membrs' is unknown .*\['members', 'variant'\]"):
    common.parse_arg("smoke,membrs=2", variants=("smoke",), members=4)
  # No variants declared: only the default.
  with pytest.raises(ValueError, match=r"allowed: ''$"):
    common.parse_arg("smoke")


def test_parse_arg_types_values_like_defaults():
  args = common.parse_arg(" smoke , members=2,flag=False, name=x", variants=("smoke",),
                          members=4, flag=True, name=None)
  assert (args.variant, args.members, args.flag, args.name) == ("smoke", 2, False, "x")
  assert isinstance(args.members, int)
  assert common.parse_arg("flag=1", flag=False).flag is True
  assert common.parse_arg(None, members=4).to_dict() == {"variant": "", "members": 4}
  with pytest.raises(ValueError, match=r"members='two'.*expected int"):
    common.parse_arg("members=two", members=4)
  with pytest.raises(ValueError, match=r"flag='yes please'.*true or false"):
    common.parse_arg("flag=yes please", flag=False)
