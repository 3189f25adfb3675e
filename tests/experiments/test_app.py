"""experiments.app: the XLA flags a study config asks for reach XLA_FLAGS (every study
binary), and a bad level is one config error."""

import ml_collections
import pytest

from experiments import app
from tradeoffs import errors


def _config(**study):
  return ml_collections.ConfigDict({"study": study})


def test_a_study_config_level_is_appended_to_xla_flags(monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=8")
  app.apply_xla_flags(_config(xla_backend_optimization_level=0))
  import os
  assert os.environ["XLA_FLAGS"] == ("--xla_force_host_platform_device_count=8 "
                                     "--xla_backend_optimization_level=0")
  monkeypatch.delenv("XLA_FLAGS")
  app.apply_xla_flags(_config(other=1))  # no level asked for: untouched
  app.apply_xla_flags(ml_collections.ConfigDict({"train": {}}))  # no study block at all
  assert "XLA_FLAGS" not in os.environ


@pytest.mark.parametrize("level", [4, -1, 1.5, True])
def test_a_bad_level_is_one_config_error(level, monkeypatch):
  monkeypatch.setenv("XLA_FLAGS", "")
  with pytest.raises(errors.ConfigError, match="study.xla_backend_optimization_level"):
    app.apply_xla_flags(_config(xla_backend_optimization_level=level))
