"""Noise sources as named switches (Zhuang et al., MLSys 2022; PAPERS.md section 15).

A `Setting` names every source of run-to-run variation:

* algorithmic: the init, data-order, augmentation and dropout seeds, and which of them
  vary from run to run (`vary`);
* implementation: backend, device count (simulated CPU devices or data-parallel degree),
  XLA flags, default matmul precision, PRNG implementation, `threefry_partitionable`.

Backend, device count and XLA flags are read once when JAX starts its backend, so a setting
that changes them runs in a fresh process (`needs_subprocess`, `subprocess_env`); the other
implementation switches are JAX config values and can be applied in-process
(`implementation_context`).

Presets follow NeuralNetworkRandomness (ANCHORS.md A4): `control` (everything fixed and
deterministic kernels), `algo` (seeds vary, deterministic kernels), `impl` (seeds fixed,
default possibly non-deterministic kernels), `algo+impl` (both), and single-source settings
(`init_only`, `data_order_only`, `augment_only`, `dropout_only`). On XLA:GPU "deterministic
kernels" means `--xla_gpu_deterministic_ops=true` (ANCHORS.md A9); XLA:CPU and TPU need no
flag, so there `impl` noise comes only from what differs between processes.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import shlex
import subprocess
import sys
from typing import Any, Iterator, Mapping

import jax

ALGORITHMIC_SOURCES = ("init", "data", "augment", "dropout")
BACKENDS = ("cpu", "gpu", "tpu")
MATMUL_PRECISIONS = (
    "default", "high", "highest", "bfloat16", "tensorfloat32", "float32",
    "ANY_F8_ANY_F8_F32", "ANY_F8_ANY_F8_F32_FAST_ACCUM", "ANY_F8_ANY_F8_ANY",
    "ANY_F8_ANY_F8_ANY_FAST_ACCUM", "F16_F16_F16", "F16_F16_F32", "BF16_BF16_BF16",
    "BF16_BF16_F32", "BF16_BF16_F32_X3", "BF16_BF16_F32_X6", "BF16_BF16_F32_X9",
    "TF32_TF32_F32", "TF32_TF32_F32_X3", "F32_F32_F32", "F64_F64_F64")
PRNG_IMPLS = ("threefry2x32", "rbg", "unsafe_rbg")

# Flags that make a backend's kernels deterministic (openxla.org/xla/determinism).
DETERMINISTIC_FLAGS = {
    "cpu": (),
    "gpu": ("--xla_gpu_deterministic_ops=true",),
    "tpu": (),
}

_DEVICE_COUNT_FLAG = "--xla_force_host_platform_device_count"


@dataclasses.dataclass(frozen=True)
class Setting:
  """One combination of noise-source switches.

  Attributes:
    name: label used for workdirs and records.
    init_seed, data_seed, augment_seed, dropout_seed: base seeds of the algorithmic sources.
    vary: algorithmic sources that change from run to run (repeat r adds r to their seed;
      in a population they vary per member). Sources not listed are identical in all runs.
    backend: 'cpu', 'gpu' or 'tpu' (JAX_PLATFORMS).
    device_count: simulated CPU devices, or the number of visible GPUs (data-parallel
      degree); on TPU it is recorded and compared but not enforced.
    xla_flags: XLA_FLAGS of the run, e.g. ('--xla_gpu_deterministic_ops=true',). The device
      count flag is derived from `device_count`, never given here.
    matmul_precision: `jax_default_matmul_precision`.
    prng_impl: `jax_default_prng_impl`.
    threefry_partitionable: `jax_threefry_partitionable` (default True since JAX 0.5).
    plan: the trainer's execution plan (`--config.train.plan`: e.g. 'scan_vmap',
      'step_loop'), or '' for the training config's own. Vmapped and per-member arithmetic
      differ in the last bits, so the plan is one more implementation noise source.
  """

  name: str
  init_seed: int = 0
  data_seed: int = 0
  augment_seed: int = 0
  dropout_seed: int = 0
  vary: tuple[str, ...] = ()
  backend: str = "cpu"
  device_count: int = 1
  xla_flags: tuple[str, ...] = ()
  matmul_precision: str = "default"
  prng_impl: str = "threefry2x32"
  threefry_partitionable: bool = True
  plan: str = ""

  def __post_init__(self):
    # Normalise lists/strings to tuples so settings hash and compare by value.
    if isinstance(self.vary, str):
      object.__setattr__(self, "vary", tuple(s for s in self.vary.split(",") if s))
    object.__setattr__(self, "vary", tuple(self.vary))
    if isinstance(self.xla_flags, str):
      object.__setattr__(self, "xla_flags", tuple(shlex.split(self.xla_flags)))
    object.__setattr__(self, "xla_flags", tuple(self.xla_flags))
    _validate_setting(self)

  @property
  def seeds(self) -> dict[str, int]:
    return {"init": self.init_seed, "data": self.data_seed, "augment": self.augment_seed,
            "dropout": self.dropout_seed}

  def implementation(self) -> dict[str, Any]:
    """The implementation switches, as recorded in environment.json."""
    return {"backend": self.backend, "device_count": self.device_count,
            "xla_flags": tuple(sorted(self.xla_flags)),
            "matmul_precision": self.matmul_precision, "prng_impl": self.prng_impl,
            "threefry_partitionable": self.threefry_partitionable, "plan": self.plan}

  def to_dict(self) -> dict[str, Any]:
    return dataclasses.asdict(self)


def _validate_setting(s: Setting) -> None:
  if not isinstance(s.name, str) or not s.name or os.sep in s.name:
    raise ValueError(f"Setting name={s.name!r}: need a non-empty string without {os.sep!r}")
  for source, seed in s.seeds.items():
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
      raise ValueError(f"Setting {s.name!r}: {source}_seed={seed!r}; need an int >= 0")
  unknown = [v for v in s.vary if v not in ALGORITHMIC_SOURCES]
  if unknown:
    raise ValueError(f"Setting {s.name!r}: vary={s.vary!r} has unknown sources {unknown}; "
                     f"valid: {list(ALGORITHMIC_SOURCES)}")
  if s.backend not in BACKENDS:
    raise ValueError(f"Setting {s.name!r}: backend={s.backend!r}; valid: {list(BACKENDS)}")
  if isinstance(s.device_count, bool) or not isinstance(s.device_count, int) or \
      s.device_count < 1:
    raise ValueError(f"Setting {s.name!r}: device_count={s.device_count!r}; need an int >= 1")
  for flag in s.xla_flags:
    if not isinstance(flag, str) or not flag.startswith("--xla_") or " " in flag:
      raise ValueError(f"Setting {s.name!r}: xla_flags entry {flag!r}; each must be one "
                       "'--xla_<name>=<value>' string")
    if flag.split("=")[0] == _DEVICE_COUNT_FLAG:
      raise ValueError(f"Setting {s.name!r}: xla_flags entry {flag!r}; set device_count "
                       "instead of the device count flag")
  if s.matmul_precision not in MATMUL_PRECISIONS:
    raise ValueError(f"Setting {s.name!r}: matmul_precision={s.matmul_precision!r}; valid: "
                     f"{list(MATMUL_PRECISIONS)}")
  if s.prng_impl not in PRNG_IMPLS:
    raise ValueError(f"Setting {s.name!r}: prng_impl={s.prng_impl!r}; valid: "
                     f"{list(PRNG_IMPLS)}")
  if not isinstance(s.threefry_partitionable, bool):
    raise ValueError(f"Setting {s.name!r}: threefry_partitionable="
                     f"{s.threefry_partitionable!r}; need a bool")
  if not isinstance(s.plan, str) or not re.fullmatch(r"[a-z_]*", s.plan):
    raise ValueError(f"Setting {s.name!r}: plan={s.plan!r}; need '' (the config's) or an "
                     "execution plan name such as 'step_loop'")


# Preset name -> (sources that vary, use deterministic kernels).
PRESETS: dict[str, tuple[tuple[str, ...], bool]] = {
    "control": ((), True),
    "algo": (ALGORITHMIC_SOURCES, True),
    "impl": ((), False),
    "algo+impl": (ALGORITHMIC_SOURCES, False),
    "init_only": (("init",), True),
    "data_order_only": (("data",), True),
    "augment_only": (("augment",), True),
    "dropout_only": (("dropout",), True),
}


def preset(name: str, *, backend: str = "cpu", **overrides: Any) -> Setting:
  """A named preset for `backend`; `overrides` replace any Setting field.

  Deterministic presets add the backend's DETERMINISTIC_FLAGS to `xla_flags`.

  >>> s = preset("algo", backend="gpu", device_count=2)
  >>> s.vary, s.xla_flags, s.device_count          # deterministic kernels, every seed varies
  (('init', 'data', 'augment', 'dropout'), ('--xla_gpu_deterministic_ops=true',), 2)
  >>> preset("impl").xla_flags                     # default (non-deterministic) kernels
  ()
  """
  if name not in PRESETS:
    raise ValueError(f"preset name={name!r}; valid: {sorted(PRESETS)}")
  if backend not in BACKENDS:
    raise ValueError(f"preset backend={backend!r}; valid: {list(BACKENDS)}")
  vary, deterministic = PRESETS[name]
  fields = {"name": name, "vary": vary, "backend": backend,
            "xla_flags": DETERMINISTIC_FLAGS[backend] if deterministic else ()}
  unknown = sorted(set(overrides) - {f.name for f in dataclasses.fields(Setting)})
  if unknown:
    raise ValueError(f"preset overrides {unknown} are not Setting fields; valid: "
                     f"{[f.name for f in dataclasses.fields(Setting)]}")
  fields.update(overrides)
  return Setting(**fields)


def seeds_for_repeat(setting: Setting, repeat: int) -> dict[str, int]:
  """Seeds of run `repeat`: sources in `vary` get base seed + repeat, others stay fixed.

  >>> seeds_for_repeat(preset("init_only", init_seed=10, data_seed=5), 3)
  {'init': 13, 'data': 5, 'augment': 0, 'dropout': 0}
  """
  _check_repeat(repeat)
  return {source: seed + (repeat if source in setting.vary else 0)
          for source, seed in setting.seeds.items()}


def config_overrides(setting: Setting, repeat: int = 0, members: int = 1) -> list[str]:
  """Command-line overrides of the training config for one run of `setting`.

  The varying seeds are offset by `repeat` (one process per repeat); with members > 1 the
  trainer also gives member i seed + i for the sources in `seeds.vary`, so member i of a
  population equals repeat i run alone (tradeoffs.train.Seeds).

  >>> config_overrides(preset("data_order_only", plan="step_loop"), repeat=2, members=4)
  ['--config.seeds.init=0', '--config.seeds.data=2', '--config.seeds.augment=0',
   '--config.seeds.dropout=0', '--config.seeds.vary=data', '--config.population.members=4',
   '--config.train.plan=step_loop']
  """
  _check_repeat(repeat)
  if isinstance(members, bool) or not isinstance(members, int) or members < 1:
    raise ValueError(f"members={members!r}; need an int >= 1")
  seeds = seeds_for_repeat(setting, repeat)
  vary = ",".join(setting.vary)
  plan = [f"--config.train.plan={setting.plan}"] if setting.plan else []
  return ([f"--config.seeds.{source}={seed}" for source, seed in seeds.items()]
          + [f"--config.seeds.vary={vary}", f"--config.population.members={members}"] + plan)


def _check_repeat(repeat: Any) -> None:
  if isinstance(repeat, bool) or not isinstance(repeat, int) or repeat < 0:
    raise ValueError(f"repeat={repeat!r}; need an int >= 0")


def subprocess_env(setting: Setting, base_env: Mapping[str, str] | None = None
                   ) -> dict[str, str]:
  """The environment for a process running `setting`; `base_env` (default os.environ) is
  copied, never modified.

  XLA_FLAGS is replaced, not appended to, so that nothing inherited from the parent (for
  example the test suite's 8 simulated devices) changes the run silently.

  >>> env = subprocess_env(Setting("fast", device_count=4, xla_flags=("--xla_cpu_enable_fast_math=true",)),
  ...                      base_env={"XLA_FLAGS": "--xla_force_host_platform_device_count=8"})
  >>> env["XLA_FLAGS"]                              # replaced, not appended to
  '--xla_cpu_enable_fast_math=true --xla_force_host_platform_device_count=4'
  >>> env["JAX_PLATFORMS"], env["JAX_THREEFRY_PARTITIONABLE"]
  ('cpu', '1')
  """
  env = dict(os.environ if base_env is None else base_env)
  flags = list(setting.xla_flags)
  if setting.backend == "cpu":
    flags.append(f"{_DEVICE_COUNT_FLAG}={setting.device_count}")
  elif setting.backend == "gpu":
    visible = [d for d in env.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
    if not visible:
      visible = [str(i) for i in range(setting.device_count)]
    if len(visible) < setting.device_count:
      raise ValueError(f"Setting {setting.name!r}: device_count={setting.device_count} but "
                       f"CUDA_VISIBLE_DEVICES lists only {len(visible)} devices")
    env["CUDA_VISIBLE_DEVICES"] = ",".join(visible[:setting.device_count])
  env["XLA_FLAGS"] = " ".join(flags)
  env["JAX_PLATFORMS"] = setting.backend
  env["JAX_DEFAULT_MATMUL_PRECISION"] = setting.matmul_precision
  env["JAX_DEFAULT_PRNG_IMPL"] = setting.prng_impl
  env["JAX_THREEFRY_PARTITIONABLE"] = "1" if setting.threefry_partitionable else "0"
  return env


def current_setting(name: str = "current") -> Setting:
  """The implementation switches of this process (initialises JAX's backend).

  >>> import jax
  >>> s = current_setting()
  >>> s.backend == jax.default_backend(), s.device_count == jax.device_count(), s.vary
  (True, True, ())
  """
  flags = tuple(f for f in shlex.split(os.environ.get("XLA_FLAGS", ""))
                if not f.startswith(_DEVICE_COUNT_FLAG))
  return Setting(
      name=name, backend=jax.default_backend(), device_count=jax.device_count(),
      xla_flags=flags,
      matmul_precision=str(jax.config.jax_default_matmul_precision or "default"),
      prng_impl=str(jax.config.jax_default_prng_impl),
      threefry_partitionable=bool(jax.config.jax_threefry_partitionable))


def needs_subprocess(setting: Setting, current: Setting | Mapping[str, Any] | None = None
                     ) -> bool:
  """True when `setting` changes a switch fixed at JAX start-up (backend, device count,
  XLA flags) relative to `current` (a Setting, an environment.json dict, or this process).

  >>> here = Setting("here", device_count=1)
  >>> needs_subprocess(Setting("algo", vary=("init",)), here)     # seeds change in-process
  False
  >>> needs_subprocess(Setting("devices_2", device_count=2), here)
  True
  >>> needs_subprocess(Setting("x"), {"backend": "cpu", "device_count": 1,
  ...                                 "xla_flags": "--xla_cpu_enable_fast_math=true"})
  True
  """
  if current is None:
    current = current_setting()
  if isinstance(current, Setting):
    backend, count, flags = current.backend, current.device_count, current.xla_flags
  else:
    backend, count = current.get("backend"), current.get("device_count")
    raw = current.get("xla_flags", "")
    flags = tuple(shlex.split(raw) if isinstance(raw, str) else raw)
    flags = tuple(f for f in flags if not f.startswith(_DEVICE_COUNT_FLAG))
  return (setting.backend != backend or setting.device_count != count
          or sorted(setting.xla_flags) != sorted(flags))


@contextlib.contextmanager
def implementation_context(setting: Setting) -> Iterator[None]:
  """Applies the in-process switches (matmul precision, PRNG) and restores them after.

  >>> import jax
  >>> before = jax.config.jax_default_matmul_precision
  >>> with implementation_context(Setting("hi", matmul_precision="highest")):
  ...   print(jax.config.jax_default_matmul_precision)
  highest
  >>> jax.config.jax_default_matmul_precision == before
  True
  """
  names = {"jax_default_matmul_precision": setting.matmul_precision,
           "jax_default_prng_impl": setting.prng_impl,
           "jax_threefry_partitionable": setting.threefry_partitionable}
  saved = {name: getattr(jax.config, name) for name in names}
  try:
    for name, value in names.items():
      jax.config.update(name, value)
    yield
  finally:
    for name, value in saved.items():
      jax.config.update(name, value)


# ---------------------------------------------------------------------------------------
# Probing XLA flags and backends in throw-away processes.

_PROBE_CODE = "import jax; jax.devices()"
_probe_cache: dict[tuple[str, str, str], tuple[int, str]] = {}


def _probe(backend: str, flag: str, python: str, timeout_s: float) -> tuple[int, str]:
  """(returncode, stderr tail) of starting JAX on `backend` with only `flag`; cached."""
  key = (python, backend, flag)
  if key not in _probe_cache:
    env = {k: v for k, v in os.environ.items()
           if k not in ("XLA_FLAGS", "JAX_PLATFORMS")}
    env.update(JAX_PLATFORMS=backend, XLA_FLAGS=flag)
    try:
      done = subprocess.run([python, "-c", _PROBE_CODE], env=env, capture_output=True,
                            text=True, timeout=timeout_s, check=False)
      _probe_cache[key] = (done.returncode, _tail(done.stderr))
    except subprocess.TimeoutExpired as e:
      _probe_cache[key] = (-1, f"timed out after {timeout_s}s: {_tail(e.stderr)}")
  return _probe_cache[key]


def backend_available(backend: str, python: str = sys.executable,
                      timeout_s: float = 120.0) -> bool:
  """Whether JAX can start `backend` (probed once per python and backend).

  >>> backend_available("cpu")          # starts JAX in a throw-away process (cached)
  True
  >>> backend_available("quantum")
  Traceback (most recent call last):
  ...
  ValueError: backend='quantum'; valid: ['cpu', 'gpu', 'tpu']
  """
  if backend not in BACKENDS:
    raise ValueError(f"backend={backend!r}; valid: {list(BACKENDS)}")
  return _probe(backend, "", python, timeout_s)[0] == 0


def validate_xla_flags(flags: tuple[str, ...] | list[str], backend: str = "cpu",
                       python: str = sys.executable, timeout_s: float = 120.0
                       ) -> dict[str, str]:
  """Checks each flag in a throw-away process before a real run depends on it.

  XLA aborts the whole process on a flag the installed jaxlib does not know, so each flag
  is probed alone (cached). Returns {flag: 'ok'} or, when `backend` itself cannot start
  here, {flag: 'skipped'}. Raises ValueError naming the first rejected flag.

  >>> validate_xla_flags([])            # nothing to probe
  {}
  >>> validate_xla_flags(["-O3"])       # rejected before any process starts
  Traceback (most recent call last):
  ...
  ValueError: xla flag '-O3': need '--xla_<name>=<value>'
  """
  if isinstance(flags, str):
    flags = shlex.split(flags)
  if backend not in BACKENDS:
    raise ValueError(f"backend={backend!r}; valid: {list(BACKENDS)}")
  for flag in flags:
    if not isinstance(flag, str) or not flag.startswith("--xla_"):
      raise ValueError(f"xla flag {flag!r}: need '--xla_<name>=<value>'")
  status = {}
  for flag in flags:
    returncode, stderr = _probe(backend, flag, python, timeout_s)
    if returncode != 0:
      # Only a failing probe pays for a second one telling a missing backend from a bad flag.
      if not backend_available(backend, python, timeout_s):
        return {f: "skipped" for f in flags}
      raise ValueError(f"xla flag {flag!r} is rejected by the installed jaxlib on backend "
                       f"{backend!r} (exit {returncode}): {stderr}")
    status[flag] = "ok"
  return status


def _tail(text: str | bytes | None, chars: int = 2000) -> str:
  if text is None:
    return ""
  if isinstance(text, bytes):
    text = text.decode(errors="replace")
  return text[-chars:].strip()


# ---------------------------------------------------------------------------------------
# The setting grammar of the determinism study (`--config.study.settings`).

MITIGATED_SUFFIX = "+mitigated"
# Algorithmic settings: seeds that vary, on this process's implementation.
ALGORITHMIC = {
    "control": (),
    "algo": ALGORITHMIC_SOURCES,
    "init_only": ("init",),
    "data_order_only": ("data",),
    "augment_only": ("augment",),
    "dropout_only": ("dropout",),
}
# Control, but one member per process: the reference for settings that run in processes,
# so that they are not confounded with population (vmapped) vs single-member programs.
PROCESS_SETTINGS = {"control_process": "control"}
# Backend settings from the presets: (preset, backend).
BACKEND_SETTINGS = {
    "gpu_default": ("impl", "gpu"),
    "gpu_deterministic": ("control", "gpu"),
    "tpu": ("control", "tpu"),
}
SETTING_FORMS = (sorted(ALGORITHMIC) + sorted(PROCESS_SETTINGS) + sorted(BACKEND_SETTINGS) + [
    "devices_<N>", "fast_math", "opt_level_<N>", "precision_<P>", "prng_<impl>", "plan_<plan>",
    "<name>=--xla_<flag>=<value>[ --xla_<flag>=<value> ...]"])


def parse_setting(spec: str, current: Setting, seeds: Mapping[str, int]) -> Setting:
  """A Setting from its name in the config.

  Algorithmic names and the implementation names start from `current` (this process's
  backend, device count, flags, precision), with `seeds` as base seeds; implementation
  names vary no seed, so run r of each is comparable with run r of `control`.

  >>> here, seeds = Setting("current", device_count=8), {"init": 1, "data": 2, "augment": 3, "dropout": 4}
  >>> s = parse_setting("devices_2", here, seeds)
  >>> s.name, s.device_count, s.vary, s.init_seed
  ('devices_2', 2, (), 1)
  >>> parse_setting("fast_math", here, seeds).xla_flags
  ('--xla_cpu_enable_fast_math=true',)
  >>> parse_setting("mine=--xla_a=1 --xla_b=2", here, seeds).xla_flags
  ('--xla_a=1', '--xla_b=2')
  """
  if not isinstance(spec, str) or not spec:
    raise ValueError(f"settings entry {spec!r}; need a non-empty string, one of {SETTING_FORMS}")
  base = dataclasses.replace(
      current, name=spec, vary=(), init_seed=seeds["init"], data_seed=seeds["data"],
      augment_seed=seeds["augment"], dropout_seed=seeds["dropout"])
  if spec in ALGORITHMIC:
    return dataclasses.replace(base, vary=ALGORITHMIC[spec])
  if spec in PROCESS_SETTINGS:
    return dataclasses.replace(base, vary=ALGORITHMIC[PROCESS_SETTINGS[spec]])
  if spec in BACKEND_SETTINGS:
    preset_name, backend = BACKEND_SETTINGS[spec]
    return dataclasses.replace(
        preset(preset_name, backend=backend), name=spec,
        init_seed=seeds["init"], data_seed=seeds["data"], augment_seed=seeds["augment"],
        dropout_seed=seeds["dropout"])
  if "=" in spec and "--xla_" in spec:
    name, flags = spec.split("=", 1)
    if not name or "--" in name:
      raise ValueError(f"settings entry {spec!r}; custom flags need '<name>=--xla_...'")
    return dataclasses.replace(base, name=name,
                               xla_flags=base.xla_flags + tuple(shlex.split(flags)))
  if m := re.fullmatch(r"devices_(\d+)", spec):
    return dataclasses.replace(base, device_count=int(m.group(1)))
  if spec == "fast_math":
    return dataclasses.replace(
        base, xla_flags=base.xla_flags + ("--xla_cpu_enable_fast_math=true",))
  if m := re.fullmatch(r"opt_level_(\d+)", spec):
    return dataclasses.replace(base, xla_flags=base.xla_flags + (
        f"--xla_backend_optimization_level={m.group(1)}",))
  if m := re.fullmatch(r"precision_(\w+)", spec):
    return dataclasses.replace(base, matmul_precision=m.group(1))
  if m := re.fullmatch(r"prng_(\w+)", spec):
    return dataclasses.replace(base, prng_impl=m.group(1))
  if m := re.fullmatch(r"plan_([a-z_]+)", spec):
    return dataclasses.replace(base, plan=m.group(1))
  raise ValueError(f"settings entry {spec!r} is unknown; valid forms: {SETTING_FORMS}")


def base_seeds(seeds: Any) -> dict[str, int]:
  """The base seed of each algorithmic source from a training config's `seeds` section."""
  return {s: int(seeds[s]) for s in ALGORITHMIC_SOURCES}


def study_settings(names: Any, seeds: Mapping[str, int], current: Setting | None = None,
                   augment_names: tuple[str, ...] = ()) -> list[Setting]:
  """The study's settings, parsed and checked (names unique, augment on if asked for).

  `names` is `--config.study.settings`; errors name that flag.

  >>> seeds = {"init": 0, "data": 0, "augment": 0, "dropout": 0}
  >>> [s.name for s in study_settings(["control", "algo", "plan_step_loop"], seeds,
  ...                                 current=Setting("current"))]
  ['control', 'algo', 'plan_step_loop']
  >>> study_settings(["control", "control"], seeds, current=Setting("current"))
  Traceback (most recent call last):
  ...
  ValueError: --config.study.settings=('control', 'control') has duplicate names
  """
  current = current or current_setting()
  names = tuple(names)
  settings = [parse_setting(s, current, seeds) for s in names]
  parsed = [s.name for s in settings]
  if len(set(parsed)) != len(parsed):
    raise ValueError(f"--config.study.settings={names} has duplicate names")
  if any(n.endswith(MITIGATED_SUFFIX) for n in parsed):
    raise ValueError(f"--config.study.settings={names}: names ending in "
                     f"{MITIGATED_SUFFIX!r} are reserved for the mitigation runs")
  if "augment_only" in parsed and not augment_names:
    raise ValueError("--config.study.settings has 'augment_only' but --config.augment."
                     "names=() turns augmentation off, so it would equal 'control'; add "
                     "augmentations or drop the setting")
  return settings


def in_own_processes(setting: Setting) -> bool:
  """Settings that run one process per repeat even when this process could run them."""
  return setting.name.removesuffix(MITIGATED_SUFFIX) in PROCESS_SETTINGS


def is_implementation(setting: Setting) -> bool:
  """True for settings that vary no seed: they differ from `control` only in how they run."""
  return not setting.vary
