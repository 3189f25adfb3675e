"""Noise-source switches: presets, overrides, subprocess environments, XLA flag probes."""

from __future__ import annotations

import dataclasses
import os

import jax
import pytest

from tradeoffs.determinism import settings as st


def test_control_overrides_identical_across_repeats():
  control = st.preset("control")
  runs = [st.config_overrides(control, r) for r in range(3)]
  assert runs[0] == runs[1] == runs[2]
  assert "--config.seeds.init=0" in runs[0] and "--config.seeds.vary=" in runs[0]


def test_algo_varies_every_seed_and_single_sources_vary_one():
  algo = st.preset("algo", init_seed=5)
  assert st.config_overrides(algo, 2)[:4] == [
      "--config.seeds.init=7", "--config.seeds.data=2", "--config.seeds.augment=2",
      "--config.seeds.dropout=2"]
  assert "--config.seeds.vary=init,data,augment,dropout" in st.config_overrides(algo, 0, 4)
  assert "--config.population.members=4" in st.config_overrides(algo, 0, 4)
  data_only = st.preset("data_order_only")
  assert st.seeds_for_repeat(data_only, 3) == {"init": 0, "data": 3, "augment": 0,
                                               "dropout": 0}


def test_presets_pick_deterministic_kernels_per_backend():
  assert st.preset("control", backend="gpu").xla_flags == ("--xla_gpu_deterministic_ops=true",)
  assert st.preset("algo", backend="gpu").xla_flags == ("--xla_gpu_deterministic_ops=true",)
  assert st.preset("impl", backend="gpu").xla_flags == ()
  assert st.preset("algo+impl", backend="gpu").vary == st.ALGORITHMIC_SOURCES
  assert st.preset("control", backend="cpu").xla_flags == ()


def test_bad_names_list_valid_choices():
  with pytest.raises(ValueError, match=r"name='nope'.*'algo\+impl'.*'control'"):
    st.preset("nope")
  with pytest.raises(ValueError, match=r"backend='cuda'.*'cpu', 'gpu', 'tpu'"):
    st.Setting("x", backend="cuda")
  with pytest.raises(ValueError, match=r"backend='cuda'"):
    st.preset("control", backend="cuda")
  with pytest.raises(ValueError, match="vary=.*'weights'"):
    st.Setting("x", vary=("weights",))
  with pytest.raises(ValueError, match="prng_impl='mt'"):
    st.Setting("x", prng_impl="mt")
  with pytest.raises(ValueError, match="matmul_precision='fast'"):
    st.Setting("x", matmul_precision="fast")
  with pytest.raises(ValueError, match="device_count=0"):
    st.Setting("x", device_count=0)
  with pytest.raises(ValueError, match="set device_count"):
    st.Setting("x", xla_flags=("--xla_force_host_platform_device_count=4",))
  with pytest.raises(ValueError, match="repeat=-1"):
    st.config_overrides(st.preset("control"), -1)
  with pytest.raises(ValueError, match=r"overrides \['seed'\]"):
    st.preset("control", seed=3)


def test_subprocess_env_sets_switches_without_touching_parent():
  before = dict(os.environ)
  base = {"PATH": "/bin", "XLA_FLAGS": "--xla_force_host_platform_device_count=8 --xla_dump_to=x"}
  base_copy = dict(base)
  s = st.Setting("s", device_count=3, xla_flags=("--xla_cpu_enable_fast_math=false",),
                 matmul_precision="highest", prng_impl="rbg", threefry_partitionable=False)
  env = st.subprocess_env(s, base)
  assert env["XLA_FLAGS"] == ("--xla_cpu_enable_fast_math=false "
                              "--xla_force_host_platform_device_count=3")
  assert env["JAX_PLATFORMS"] == "cpu"
  assert env["JAX_DEFAULT_MATMUL_PRECISION"] == "highest"
  assert env["JAX_DEFAULT_PRNG_IMPL"] == "rbg"
  assert env["JAX_THREEFRY_PARTITIONABLE"] == "0"
  assert env["PATH"] == "/bin"
  assert base == base_copy and dict(os.environ) == before
  # Default base is a copy of os.environ, which stays untouched.
  env = st.subprocess_env(s)
  assert env["XLA_FLAGS"] != os.environ["XLA_FLAGS"] and dict(os.environ) == before


def test_subprocess_env_gpu_restricts_visible_devices():
  gpu = st.preset("impl", backend="gpu", device_count=2)
  assert st.subprocess_env(gpu, {"CUDA_VISIBLE_DEVICES": "4,5,6"})["CUDA_VISIBLE_DEVICES"] == "4,5"
  assert st.subprocess_env(gpu, {})["CUDA_VISIBLE_DEVICES"] == "0,1"
  with pytest.raises(ValueError, match="device_count=2"):
    st.subprocess_env(gpu, {"CUDA_VISIBLE_DEVICES": "3"})


def test_needs_subprocess():
  current = st.current_setting()
  assert current.backend == "cpu" and current.device_count == jax.device_count() == 8
  same = st.preset("algo", device_count=8)
  assert not st.needs_subprocess(same)
  # Precision and PRNG are JAX config values: applied in-process, no fresh process.
  assert not st.needs_subprocess(dataclasses.replace(same, matmul_precision="highest"))
  assert st.needs_subprocess(dataclasses.replace(same, device_count=2))
  assert st.needs_subprocess(dataclasses.replace(same, backend="gpu"))
  assert st.needs_subprocess(
      dataclasses.replace(same, xla_flags=("--xla_cpu_enable_fast_math=true",)))
  # An environment.json dict (from another machine) works as `current`.
  env = {"backend": "gpu", "device_count": 1, "xla_flags": "--xla_gpu_deterministic_ops=true"}
  assert not st.needs_subprocess(st.preset("control", backend="gpu"), env)
  assert st.needs_subprocess(st.preset("impl", backend="gpu"), env)


def test_implementation_context_restores_config():
  before = (jax.config.jax_default_matmul_precision, jax.config.jax_default_prng_impl)
  s = st.Setting("s", matmul_precision="highest", prng_impl="rbg")
  with st.implementation_context(s):
    assert jax.config.jax_default_matmul_precision == "highest"
    assert jax.random.key_data(jax.random.key(0)).shape == (4,)  # rbg keys are 4 words
  assert (jax.config.jax_default_matmul_precision, jax.config.jax_default_prng_impl) == before
  assert jax.random.key_data(jax.random.key(0)).shape == (2,)


def test_validate_xla_flags_probes_in_subprocess():
  assert st.validate_xla_flags(["--xla_cpu_enable_fast_math=false"]) == {
      "--xla_cpu_enable_fast_math=false": "ok"}
  with pytest.raises(ValueError, match="--xla_this_flag_does_not_exist=1"):
    st.validate_xla_flags(["--xla_this_flag_does_not_exist=1"])
  with pytest.raises(ValueError, match="'-O3'"):
    st.validate_xla_flags(["-O3"])


def test_missing_backend_is_skipped_not_crashed():
  flag = "--xla_gpu_deterministic_ops=true"
  status = st.validate_xla_flags([flag], backend="gpu")
  assert status == {flag: "ok" if st.backend_available("gpu") else "skipped"}


# The study's setting grammar (moved here from the determinism study).

SEEDS = {"init": 3, "data": 4, "augment": 5, "dropout": 6}
CURRENT = st.Setting("current", device_count=8, xla_flags=("--xla_cpu_use_thunk_runtime=true",))


def test_parse_setting_forms():
  s = st.parse_setting("fast_math", CURRENT, SEEDS)
  assert s.vary == () and s.device_count == 8 and s.init_seed == 3
  assert s.xla_flags == ("--xla_cpu_use_thunk_runtime=true", "--xla_cpu_enable_fast_math=true")
  assert st.parse_setting("devices_2", CURRENT, SEEDS).device_count == 2
  assert st.parse_setting("opt_level_0", CURRENT, SEEDS).xla_flags[-1] == (
      "--xla_backend_optimization_level=0")
  assert st.parse_setting("precision_highest", CURRENT, SEEDS).matmul_precision == "highest"
  assert st.parse_setting("prng_rbg", CURRENT, SEEDS).prng_impl == "rbg"
  looped = st.parse_setting("plan_step_loop", CURRENT, SEEDS)
  assert looped.plan == "step_loop" and looped.vary == () and st.is_implementation(looped)
  assert not st.needs_subprocess(looped, CURRENT)  # a trainer argument, not a start-up switch
  assert st.config_overrides(looped, repeat=1)[-1] == "--config.train.plan=step_loop"
  assert not any("plan" in o for o in st.config_overrides(st.parse_setting("fast_math",
                                                                           CURRENT, SEEDS)))
  assert st.parse_setting("algo", CURRENT, SEEDS).vary == ("init", "data", "augment",
                                                           "dropout")
  assert st.parse_setting("data_order_only", CURRENT, SEEDS).vary == ("data",)
  assert st.parse_setting("control_process", CURRENT, SEEDS).vary == ()
  gpu = st.parse_setting("gpu_deterministic", CURRENT, SEEDS)
  assert gpu.backend == "gpu" and gpu.xla_flags == ("--xla_gpu_deterministic_ops=true",)
  assert gpu.dropout_seed == 6
  assert st.parse_setting("gpu_default", CURRENT, SEEDS).xla_flags == ()
  custom = st.parse_setting("slow=--xla_backend_optimization_level=0", CURRENT, SEEDS)
  assert custom.name == "slow" and custom.xla_flags[-1] == "--xla_backend_optimization_level=0"
  with pytest.raises(ValueError, match="matmul_precision='fastest'"):
    st.parse_setting("precision_fastest", CURRENT, SEEDS)
  with pytest.raises(ValueError, match="'warp_drive' is unknown; valid forms"):
    st.parse_setting("warp_drive", CURRENT, SEEDS)
  with pytest.raises(ValueError, match="custom flags need"):
    st.parse_setting("=--xla_foo=1", CURRENT, SEEDS)


@pytest.mark.parametrize("names,augment,match", [
    (("control", "control"), (), "--config.study.settings=.*duplicate names"),
    (("augment_only",), (), "augment_only.*turns augmentation off"),
    (("x+mitigated=--xla_foo=1",), (), "reserved for the mitigation runs"),
])
def test_study_settings_refuses(names, augment, match):
  with pytest.raises(ValueError, match=match):
    st.study_settings(names, SEEDS, CURRENT, augment)


def test_study_settings_kinds():
  got = st.study_settings(("control", "augment_only", "control_process", "devices_2"),
                          SEEDS, CURRENT, ("flip",))
  assert [st.is_implementation(s) for s in got] == [True, False, True, True]
  assert [st.in_own_processes(s) for s in got] == [False, False, True, False]
  assert st.in_own_processes(dataclasses.replace(got[2], name="control_process+mitigated"))
  assert st.base_seeds({"init": 1, "data": 2, "augment": 3, "dropout": 4, "vary": ""}) == {
      "init": 1, "data": 2, "augment": 3, "dropout": 4}
