"""Coded optimization: does encoding the data (or the gradients) beat stragglers?

m workers each hold a block of the (encoded) data; every iteration the master waits for
the k fastest and steps on what they return. Waiting for fewer workers makes an iteration
cheaper, redundancy (beta) keeps the step close to the full gradient. Time is simulated:
per iteration the k-th order statistic of the workers' delays plus compute proportional
to the rows a worker holds (`tradeoffs.coded`).

Formulations chosen:
  * one variant per (scheme, straggler model); a scheme is an encoding (uncoded,
    replication, gaussian, hadamard, paley) at redundancy beta waiting for k of m, or a
    gradient code (Tandon et al.) for s stragglers waiting for k >= m - s (and for more
    when the fastest k do not decode). Uncoded waiting for all m is the reference of its
    straggler model; uncoded at k < m ("ignore stragglers") is planned for every k used.
  * every variant runs once per seed in `study.seeds`: a seed fixes the delay draws
    (shared by every scheme of that straggler model) and the random encoding, so
    schemes are compared paired over seeds. The problem is fixed (`problem_seed`).
  * time to epsilon is the simulated time after which the relative suboptimality
    (f - f*)/f* STAYS <= epsilon (`coded.diagnostics.time_to_stay_below`), not the
    first dip; a seed that does not settle within the run counts as "not reached".
  * speed-up = T(wait for all) / T(scheme) per seed; reported as the mean with its 95%
    t interval over seeds, beside its order-statistics ceiling (E[T(m:m)] + compute) /
    (E[T(k:m)] + compute): the speed-up if the scheme needed no more iterations than
    waiting for all (closed form or Monte Carlo, `coded.stragglers.expected_kth_delay`),
    and beside ignoring stragglers at the same k.
  * error floor: mean relative suboptimality over the last quarter of the iterations,
    with its t interval over seeds.
  * verdicts: per straggler model one Holm family (`stats.family`) of paired t claims
    over seeds (`stats.compare(paired=True)`): each scheme's time to epsilon against
    waiting for all and against ignoring stragglers at its k, and its error floor
    against ignoring stragglers. Claims use the seeds on which both reached epsilon.
"""

from __future__ import annotations

import itertools
import math
import os
import zlib
from typing import Any, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from tradeoffs import stats
from tradeoffs import workdir as workdir_lib
from tradeoffs.coded import diagnostics
from tradeoffs.coded import encoding as encoding_lib
from tradeoffs.coded import gradient_coding as gc_lib
from tradeoffs.coded import optimize
from tradeoffs.coded import problems
from tradeoffs.coded import stragglers as stragglers_lib
from tradeoffs.report import figures
from tradeoffs.report import format as fmt
from tradeoffs.studies import base

NAME = "coded_optimization"
TITLE = "Coded optimization against stragglers"
LEDGER = False  # Schemes trade simulated time, not model size: no per-variant ledger.
TRACE_POINTS = 120  # Points of the seed-0 curve kept in a record for the figures.


def _fail(key: str, value: Any, allowed: str) -> None:
  raise ValueError(f"--config.study.{key}={value!r} is not allowed; allowed: {allowed}")


def _num(s: Any, key: str, *, low: float, integer: bool = False, low_open: bool = False,
         high: float = math.inf, high_open: bool = True) -> None:
  value = s[key] if "." not in key else s[key.split(".")[0]][key.split(".")[1]]
  ok = (not isinstance(value, bool) and isinstance(value, (int, float))
        and math.isfinite(value) and (not integer or float(value) == int(value)))
  ok = ok and (value > low if low_open else value >= low)
  ok = ok and (value < high if high_open else value <= high)
  if not ok:
    bounds = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
    _fail(key, value, f"{'an integer' if integer else 'a finite number'} in {bounds}")


def scheme_name(kind: str, beta: float, k: int) -> str:
  return f"{kind}_b{beta:g}_k{k}"


def _schemes(s: Any) -> list[dict[str, Any]]:
  """Reference and ignore-stragglers (uncoded) first, then the encoded sweep, then the
  gradient codes; duplicates dropped."""
  m, gc = int(s.num_workers), s.gradient_coding
  ks = sorted({int(k) for k in s.sweep.ks} | ({int(gc.k)} if gc.codes else set()))
  out = [dict(family="encoded", kind="uncoded", beta=1.0, k=k) for k in [m] + [
      k for k in sorted(ks, reverse=True) if k < m]]
  for kind, beta, k in itertools.product(s.sweep.encodings, s.sweep.betas, s.sweep.ks):
    beta, k = float(beta), int(k)
    if (kind == "uncoded") != (beta == 1) or (kind == "paley" and beta != 2):
      continue  # beta = 1 for a code is uncoded again; Paley frames have beta = 2.
    if kind == "replication" and (beta != int(beta) or m % int(beta)):
      continue
    out.append(dict(family="encoded", kind=kind, beta=beta, k=k))
  for code in gc.codes:
    out.append(dict(family="gradient_code", kind=code, beta=float(gc.num_stragglers + 1),
                    k=int(gc.k), name=f"gc_{code}_s{gc.num_stragglers}_k{gc.k}"))
  seen, unique = set(), []
  for scheme in out:
    scheme.setdefault("name", scheme_name(scheme["kind"], scheme["beta"], scheme["k"]))
    if scheme["name"] not in seen:
      seen.add(scheme["name"])
      unique.append(scheme)
  return unique


def validate(config: Any) -> list[dict[str, Any]]:
  """Every knob the study reads (before anything compiles); returns the schemes."""
  if "study" not in config:
    raise ValueError("config has no 'study' section; use "
                     "experiments/configs/coded_optimization.py")
  s = config.study
  seeds = tuple(s.seeds) if isinstance(s.seeds, (list, tuple)) else (s.seeds,)
  if (len(seeds) < 2 or len(set(seeds)) != len(seeds)
      or not all(isinstance(x, int) and not isinstance(x, bool) and x >= 0 for x in seeds)):
    _fail("seeds", s.seeds, "at least 2 distinct integers >= 0 (8 or more for the report's "
          "intervals), e.g. (0, 1, 2, 3, 4, 5, 6, 7)")
  _num(s, "problem_seed", low=0, integer=True)
  _num(s, "num_workers", low=1, integer=True)
  _num(s, "steps", low=1, integer=True)
  _num(s, "epsilon", low=0, low_open=True)
  # gd/prox take step = step_scale / L, and gradient descent on an L-smooth objective
  # converges only for step < 2/L; for L-BFGS, step_scale < 2 along its direction.
  _num(s, "step_scale", low=0, low_open=True, high=2)
  _num(s, "memory", low=1, integer=True)
  _num(s, "compute_seconds_per_row", low=0)
  p = s.problem
  if p.loss not in problems.LOSSES:
    _fail("problem.loss", p.loss, str(list(problems.LOSSES)))
  for key in ("num_examples", "dim"):
    _num(s, f"problem.{key}", low=1, integer=True)
  for key in ("noise", "l2", "l1"):
    _num(s, f"problem.{key}", low=0)
  _num(s, "problem.condition_number", low=1)
  if s.optimizer not in optimize.OPTIMIZERS:
    _fail("optimizer", s.optimizer, str(list(optimize.OPTIMIZERS)))
  if p.l1 > 0 and s.optimizer != "prox":
    _fail("optimizer", s.optimizer, f"'prox' when problem.l1={p.l1} > 0")
  m = int(s.num_workers)
  for kind in s.sweep.encodings:
    if kind not in encoding_lib.ENCODINGS:
      _fail("sweep.encodings", tuple(s.sweep.encodings), str(sorted(encoding_lib.ENCODINGS)))
    if p.loss != "least_squares" and kind not in optimize.ROW_SELECTING:
      _fail("sweep.encodings", tuple(s.sweep.encodings),
            f"with problem.loss={p.loss!r} only {list(optimize.ROW_SELECTING)}")
  if any(not beta >= 1 for beta in s.sweep.betas):
    _fail("sweep.betas", tuple(s.sweep.betas), "redundancies beta >= 1")
  if not s.sweep.ks or any(not (isinstance(k, int) and 1 <= k <= m) for k in s.sweep.ks):
    _fail("sweep.ks", tuple(s.sweep.ks), f"integers 1 <= k <= num_workers={m}")
  if not s.sweep.stragglers:
    _fail("sweep.stragglers", (), str(sorted(stragglers_lib.STRAGGLER_MODELS)))
  for model in s.sweep.stragglers:
    if model not in stragglers_lib.STRAGGLER_MODELS:
      _fail("sweep.stragglers", tuple(s.sweep.stragglers),
            str(sorted(stragglers_lib.STRAGGLER_MODELS)))
    if model not in s.straggler_params:
      _fail("sweep.stragglers", tuple(s.sweep.stragglers),
            f"models with parameters under study.straggler_params ({model!r} has none)")
    if model == "trace":
      try:
        stragglers_lib.load_trace(s.straggler_params.trace.path, m, int(s.steps),
                                  wrap=s.straggler_params.trace.wrap)
      except ValueError as e:
        raise ValueError(f"--config.study.straggler_params.trace: {e}") from None
  gc = s.gradient_coding
  for code in gc.codes:
    if code not in gc_lib.GRADIENT_CODES:
      _fail("gradient_coding.codes", tuple(gc.codes), str(sorted(gc_lib.GRADIENT_CODES)))
  if gc.codes:
    gc_lib.check_stragglers(m, gc.num_stragglers, "--config.study.gradient_coding.num_stragglers")
    optimize.check_gradient_code_k(gc.k, m, gc.num_stragglers, "--config.study.gradient_coding.k")
    if "fractional_repetition" in gc.codes and m % (gc.num_stragglers + 1):
      _fail("gradient_coding.num_stragglers", gc.num_stragglers,
            f"with fractional_repetition, s + 1 dividing num_workers={m}")
  _num(s, "diagnostics.rip_n", low=2, integer=True)
  _num(s, "diagnostics.rip_sets", low=1, integer=True)
  _num(s, "diagnostics.ceiling_samples", low=1000, integer=True)
  if s.mesh_devices not in (0, -1) and (s.mesh_devices > jax.device_count()
                                        or m % s.mesh_devices or s.mesh_devices < 0):
    _fail("mesh_devices", s.mesh_devices, f"0, -1, or a divisor of num_workers={m} that is "
          f"<= device_count={jax.device_count()}")
  schemes = _schemes(s)
  e = s.executor
  if e.name not in ("", "ray", "process_pool"):
    _fail("executor.name", e.name, "'', 'ray' or 'process_pool'")
  if e.name:
    names = [x["name"] for x in schemes]
    for name in e.schemes:
      if name not in names:
        _fail("executor.schemes", tuple(e.schemes), f"planned scheme names {names}")
    _num(s, "executor.steps", low=1, integer=True)
    _num(s, "executor.time_scale", low=0, low_open=True)
  return schemes


def variant_name(scheme: Mapping[str, Any], model: str) -> str:
  return f"{scheme['name']}_{model}"


def plan(config: Any) -> list[base.Variant]:
  """Per straggler model: waiting for all (the reference), ignoring stragglers, the
  encoded schemes, the gradient codes."""
  schemes = validate(config)
  s = config.study
  out = []
  for model in s.sweep.stragglers:
    reference = variant_name(schemes[0], model)
    for scheme in schemes:
      name = variant_name(scheme, model)
      knobs = {"scheme": scheme["name"], "family": scheme["family"], "kind": scheme["kind"],
               "beta": scheme["beta"], "k": scheme["k"], "straggler": model,
               "straggler_params": s.straggler_params[model].to_dict(),
               "seeds": list(s.seeds), "epsilon": float(s.epsilon)}
      out.append(base.Variant(name, scheme["family"], knobs,
                              None if name == reference else reference))
  return out


# ---------------------------------------------------------------------------------------
# Producing one variant: the simulation over seeds.


def _stable(name: str) -> int:
  return zlib.crc32(name.encode()) & 0x7FFFFFFF


def _setup(ctx: Any) -> dict[str, Any]:
  """The problem, its optimum, the step size and the mesh (once per run)."""
  if "setup" not in ctx.cache:
    s = ctx.config.study
    p = s.problem
    problem = problems.synthetic_problem(
        jax.random.key(int(s.problem_seed)), num_examples=int(p.num_examples),
        dim=int(p.dim), loss=p.loss, noise=float(p.noise), l2=float(p.l2), l1=float(p.l1),
        condition_number=float(p.condition_number))
    mesh = None
    if s.mesh_devices:
      mesh = optimize.make_mesh(jax.device_count() if s.mesh_devices == -1
                                else int(s.mesh_devices))
    ctx.cache["setup"] = dict(
        problem=problem, w_star=problems.optimum(problem), mesh=mesh,
        step_size=optimize.default_step_size(problem, s.optimizer, float(s.step_scale)))
  return ctx.cache["setup"]


def _delays(s: Any, model: str, seed: int, steps: int) -> jax.Array:
  """The delays of one seed: the same for every scheme of that straggler model."""
  key = jax.random.fold_in(jax.random.key(int(seed)), _stable(model))
  return stragglers_lib.sample_delays(model, key, steps, int(s.num_workers),
                                      **s.straggler_params[model].to_dict())


def _encoding_key(scheme: Mapping[str, Any], seed: int) -> jax.Array:
  return jax.random.fold_in(jax.random.fold_in(jax.random.key(int(seed)), 1),
                            _stable(scheme["name"]))


def _cached_data(ctx: Any, problem, scheme, seed: int) -> optimize.WorkerData:
  """A scheme's worker data for one seed, encoded once per run (not per straggler model)."""
  key = ("data", scheme["name"], int(seed))
  if key not in ctx.cache:
    ctx.cache[key] = _worker_data(problem, scheme, ctx.config.study,
                                  _encoding_key(scheme, seed))
  return ctx.cache[key]


def _worker_data(problem, scheme, s, key) -> optimize.WorkerData:
  if scheme["family"] == "encoded":
    return optimize.encode_problem(problem, scheme["kind"], scheme["beta"],
                                   int(s.num_workers), key)
  return optimize.gradient_code_problem(problem, scheme["kind"], int(s.num_workers),
                                        int(s.gradient_coding.num_stragglers), key)


def _expected_kth(ctx: Any, model: str, k: int) -> float:
  s = ctx.config.study
  key = ("kth", model, k)
  if key not in ctx.cache:
    ctx.cache[key] = stragglers_lib.expected_kth_delay(
        model, k, int(s.num_workers), key=jax.random.key(_stable(model)),
        samples=int(s.diagnostics.ceiling_samples), num_iterations=int(s.steps),
        **s.straggler_params[model].to_dict())
  return ctx.cache[key]


def _downsample(values: np.ndarray) -> list[int]:
  n = len(values)
  if n <= TRACE_POINTS:
    return list(range(n))
  return sorted(set(np.unique(np.geomspace(1, n, TRACE_POINTS).astype(int) - 1).tolist())
                | {0, n - 1})


def produce(ctx: Any, variant: base.Variant) -> base.Outcome:
  s = ctx.config.study
  setup = _setup(ctx)
  problem, m = setup["problem"], int(s.num_workers)
  scheme = next(x for x in _schemes(s) if x["name"] == variant.knobs["scheme"])
  model, eps = variant.knobs["straggler"], float(s.epsilon)
  per_seed: dict[str, list[Any]] = {k: [] for k in (
      "seed", "time_to_epsilon", "first_dip", "iterations_to_epsilon", "error_floor",
      "final_relative", "final_suboptimality", "seconds_per_iteration", "workers_waited")}
  traces, data = {}, None
  for seed in s.seeds:
    data = _cached_data(ctx, problem, scheme, seed)
    delays = _delays(s, model, seed, int(s.steps))
    trace = optimize.run(problem, data, delays, scheme["k"], optimizer=s.optimizer,
                         step_size=setup["step_size"], memory=int(s.memory),
                         compute_seconds_per_row=float(s.compute_seconds_per_row),
                         mesh=setup["mesh"], w_star=setup["w_star"])
    rel = diagnostics.relative_suboptimality(trace.suboptimality, trace.optimum_value)
    settle = diagnostics.settling_index(rel, eps)
    _, waited = optimize.responder_masks(data, delays, scheme["k"])
    for name, value in (("seed", int(seed)),
                        ("time_to_epsilon", diagnostics.time_to_stay_below(trace.time, rel, eps)),
                        ("first_dip", diagnostics.time_to_epsilon(trace.time, rel, eps)),
                        ("iterations_to_epsilon", settle),
                        ("error_floor", diagnostics.error_floor(rel)),
                        ("final_relative", float(rel[-1])),
                        ("final_suboptimality", float(trace.suboptimality[-1])),
                        ("seconds_per_iteration", float(trace.time[-1] / int(s.steps))),
                        ("workers_waited", float(np.mean(waited)))):
      per_seed[name].append(value)
    traces[int(seed)] = dict(time=trace.time, relative=rel)
  if workdir_lib.is_writer():  # Every seed's full curve, for whoever wants more than the report.
    workdir_lib.write_json(os.path.join(ctx.workdir, "traces", variant.name + ".json"),
                           {str(k): v for k, v in traces.items()})
  first = traces[int(s.seeds[0])]
  keep = _downsample(first["relative"])
  reached = [t for t in per_seed["time_to_epsilon"] if math.isfinite(t)]
  compute = float(s.compute_seconds_per_row)
  reference_rows = -(-problem.num_examples // m)
  ceiling_num = _expected_kth(ctx, model, m) + compute * reference_rows
  ceiling_den = _expected_kth(ctx, model, scheme["k"]) + compute * data.rows_per_worker
  rip = None
  if scheme["family"] == "encoded" and scheme["kind"] != "uncoded":
    rip = diagnostics.block_rip_epsilon(scheme["kind"], int(s.diagnostics.rip_n),
                                        scheme["beta"], m, scheme["k"],
                                        jax.random.key(_stable(scheme["name"])),
                                        int(s.diagnostics.rip_sets))
  efficiency = dict(
      time_to_epsilon_s=float(np.mean(reached)) if len(reached) == len(s.seeds) else None,
      epsilon=eps, time_simulated=True,
      seconds_per_iteration=float(np.mean(per_seed["seconds_per_iteration"])),
      redundancy=float(data.beta), rows_per_worker=int(data.rows_per_worker),
      workers_waited_for=int(scheme["k"]),
      mean_workers_waited=float(np.mean(per_seed["workers_waited"])), num_workers=m)
  study_fields = dict(
      scheme=scheme["name"], family=scheme["family"], encoding=scheme["kind"],
      beta=scheme["beta"], k=scheme["k"], straggler=model, optimizer=s.optimizer,
      per_seed=per_seed, seeds_reached=len(reached),
      ceiling=dict(expected_kth_delay=_expected_kth(ctx, model, scheme["k"]),
                   expected_all_delay=_expected_kth(ctx, model, m),
                   speedup=ceiling_num / ceiling_den if ceiling_den > 0 else None),
      trace=dict(seed=int(s.seeds[0]), iteration=keep,
                 time=[float(first["time"][i]) for i in keep],
                 relative=[float(first["relative"][i]) for i in keep]))
  if s.executor.name and scheme["name"] in s.executor.schemes \
      and model == s.sweep.stragglers[0]:
    study_fields["real"] = _run_executor(s, setup, scheme)
    efficiency["real_wall_time_s"] = study_fields["real"]["wall_time"][-1]
    efficiency["real_executor"] = s.executor.name
  return base.Outcome(
      members=len(s.seeds), efficiency=efficiency,
      accuracy=dict(final_suboptimality=float(np.mean(per_seed["final_suboptimality"])),
                    final_relative_suboptimality=float(np.mean(per_seed["final_relative"])),
                    error_floor_relative=float(np.mean(per_seed["error_floor"]))),
      hidden_costs=dict(storage_overhead=float(data.beta), block_rip_epsilon=rip),
      study_fields=study_fields)


def _run_executor(s: Any, setup: Mapping[str, Any], scheme: Mapping[str, Any]
                  ) -> dict[str, Any]:
  """The scheme on real workers (Ray or a process pool) with the first seed's delays."""
  from tradeoffs.coded import executors  # pylint: disable=g-import-not-at-top
  problem, seed = setup["problem"], int(s.seeds[0])
  data = _worker_data(problem, scheme, s, _encoding_key(scheme, seed))
  delays = _delays(s, s.sweep.stragglers[0], seed, int(s.executor.steps))
  out = executors.get_executor(s.executor.name)(
      problem, data, np.asarray(delays), scheme["k"], optimizer=s.optimizer,
      step_size=setup["step_size"], time_scale=float(s.executor.time_scale))
  f_star = float(problems.objective(problem, setup["w_star"]))
  values = [float(problems.objective(problem, jnp.asarray(w, jnp.float32)))
            for w in out["weights"]]
  return dict(executor=s.executor.name, steps=int(s.executor.steps),
              time_scale=float(s.executor.time_scale),
              wall_time=[float(t) for t in out["wall_time"]],
              relative=[(v - f_star) / abs(f_star) for v in values])


# ---------------------------------------------------------------------------------------
# The report.


def _sf(record: Mapping[str, Any]) -> Mapping[str, Any]:
  return record.get("study_fields") or {}


def _values(record: Mapping[str, Any], key: str) -> dict[int, float]:
  """seed -> value (finite values only) of one per-seed quantity."""
  per_seed = _sf(record).get("per_seed") or {}
  return {int(s): float(v) for s, v in zip(per_seed.get("seed", []), per_seed.get(key, []))
          if v is not None and math.isfinite(float(v))}


def paired(a: Mapping[str, Any], b: Mapping[str, Any], key: str
           ) -> tuple[list[int], np.ndarray, np.ndarray]:
  """(seeds, a's values, b's values) on the seeds where both have a finite value."""
  va, vb = _values(a, key), _values(b, key)
  seeds = sorted(set(va) & set(vb))
  return seeds, np.array([va[x] for x in seeds]), np.array([vb[x] for x in seeds])


def speedup(scheme: Mapping[str, Any], reference: Mapping[str, Any]
            ) -> tuple[float, float, float, int]:
  """(mean, low, high, n) of T(reference) / T(scheme) over seeds where both reached."""
  seeds, t_scheme, t_ref = paired(scheme, reference, "time_to_epsilon")
  if not seeds:
    return float("nan"), float("nan"), float("nan"), 0
  mean, low, high = stats.t_interval(t_ref / t_scheme)
  return mean, low, high, len(seeds)


def _ignore_for(record, by_name, model):
  k, m = _sf(record).get("k"), (record.get("efficiency") or {}).get("num_workers")
  if k is None or k == m:
    return None
  return by_name.get(variant_name({"name": scheme_name("uncoded", 1.0, int(k))}, model))


def claims(records: Sequence[Mapping[str, Any]], reference: Mapping[str, Any],
           model: str) -> list[stats.Comparison]:
  """One Holm family for a straggler model (see the module docstring)."""
  by_name = {r["variant"]: r for r in records}
  out = []
  for record in records:
    if record is reference:
      continue
    name = _sf(record).get("scheme", record["variant"])
    ignore = _ignore_for(record, by_name, model)
    pairs = [(reference, "time_to_epsilon", "time to ε vs waiting for all")]
    if ignore is not None and ignore is not record:
      pairs += [(ignore, "time_to_epsilon", "time to ε vs ignoring stragglers"),
                (ignore, "error_floor", "error floor vs ignoring stragglers")]
    elif ignore is record:
      pairs.append((reference, "error_floor", "error floor vs waiting for all"))
    for other, key, what in pairs:
      _, a, b = paired(record, other, key)
      if len(a) >= 2:
        out.append(stats.compare(a, b, paired=True, claim=f"{name}: {what}"))
  return stats.family(out)


def _mean_cell(values: Sequence[float], digits: int = 3) -> str:
  values = [v for v in values if v is not None and math.isfinite(v)]
  if not values:
    return "never"
  mean, low, high = stats.t_interval(values)
  if not math.isfinite(low):
    return fmt.number(mean, digits)
  return f"{fmt.number(mean, digits)} [{fmt.number(low, digits)}, {fmt.number(high, digits)}]"


def _speedup_cell(sp: tuple[float, float, float, int]) -> str:
  mean, low, high, n = sp
  if not n:
    return "–"
  if not math.isfinite(low):
    return f"{mean:.2f}×"
  return f"{mean:.2f}× [{low:.2f}, {high:.2f}]"


def _table(records, reference, by_name, model) -> tuple[str, list[str], list[list[str]]]:
  headers = ["Scheme", "β", "k", "s/iter", "Iterations to ε", "Time to ε (s)", "Reached",
             "Speed-up vs all [95% CI]", "Ceiling", "Ignore stragglers (same k)",
             "Error floor [95% CI]", "First dip (s)", "Block-RIP ε"]
  rows = []
  for r in records:
    sf, e = _sf(r), r["efficiency"]
    ignore = _ignore_for(r, by_name, model)
    n = len((sf.get("per_seed") or {}).get("seed", []))
    rows.append([
        sf.get("scheme", r["variant"]), fmt.number(e.get("redundancy")), str(sf.get("k")),
        fmt.number(e.get("seconds_per_iteration")),
        _mean_cell(list(_values(r, "iterations_to_epsilon").values())),
        _mean_cell(list(_values(r, "time_to_epsilon").values())),
        f"{sf.get('seeds_reached', 0)}/{n}",
        "1 (reference)" if r is reference else _speedup_cell(speedup(r, reference)),
        f"{(sf.get('ceiling') or {}).get('speedup') or float('nan'):.2f}×",
        "–" if ignore is None or ignore is r else _speedup_cell(speedup(ignore, reference)),
        _mean_cell(list(_values(r, "error_floor").values())),
        _mean_cell(list(_values(r, "first_dip").values())),
        fmt.number((r.get("hidden_costs") or {}).get("block_rip_epsilon"))])
  return ("table", headers, rows)


def verdict_table(comparisons: Sequence[stats.Comparison]) -> tuple[str, list, list]:
  headers = ["Claim", "Δ (scheme − other)", "95% CI", "n seeds", "p", "Holm p", "Verdict"]
  rows = [[c.claim, fmt.number(c.estimate), f"[{fmt.number(c.low)}, {fmt.number(c.high)}]",
           str(c.n_a), fmt.p(c.p), fmt.p(c.p_holm), c.verdict] for c in comparisons]
  return ("table", headers, rows)


def _plot_model(records, reference, epsilon, model):
  """Left: relative suboptimality against simulated time (first seed); right: speed-up
  over waiting for all with its interval, the ceiling and ignoring stragglers."""
  fig, (left, right) = figures.new(2, width=12.0, height=max(4.0, 0.28 * len(records) + 1))
  for i, r in enumerate(records):
    tr = _sf(r).get("trace") or {}
    if tr:
      style = dict(color="k", lw=2) if r is reference else dict(color=figures.color(i), lw=1)
      left.semilogy(tr["time"], np.maximum(np.asarray(tr["relative"], float), 1e-12),
                    label=_sf(r).get("scheme", r["variant"]), **style)
  left.axhline(epsilon, color="0.5", lw=0.8, ls="--")
  left.set_xlabel("simulated time (s)")
  left.set_ylabel("(f − f*) / f*  (↓ better)")
  left.set_title(f"{model}: seed {(_sf(reference).get('trace') or {}).get('seed', 0)}")
  left.legend(fontsize=6, ncol=2)
  others = [r for r in records if r is not reference]
  for y, r in enumerate(others):
    mean, low, high, n = speedup(r, reference)
    if n:
      right.errorbar(mean, y, xerr=[[mean - low], [high - mean]] if math.isfinite(low)
                     else None, fmt="o", color=figures.color(0))
    ceiling = (_sf(r).get("ceiling") or {}).get("speedup")
    if ceiling:
      right.plot(ceiling, y, "|", color="k", markersize=12)
    ignore = _ignore_for(r, {x["variant"]: x for x in records}, model)
    if ignore is not None and ignore is not r and speedup(ignore, reference)[3]:
      right.plot(speedup(ignore, reference)[0], y, "x", color=figures.color(3))
  right.set_yticks(range(len(others)))
  right.set_yticklabels([_sf(r).get("scheme", r["variant"]) for r in others], fontsize=8)
  right.axvline(1.0, color="0.5", lw=0.8)
  right.set_xlabel("speed-up to ε vs waiting for all (↑ better); | ceiling, × ignoring "
                   "stragglers")
  right.set_title("mean and 95% CI over seeds")
  return fig


def _plot_floors(records, k, model):
  pts = {}
  for r in records:
    sf = _sf(r)
    if sf.get("family") == "encoded" and sf.get("k") == k and sf.get("straggler") == model:
      vals = list(_values(r, "error_floor").values())
      if len(vals) >= 2:
        pts.setdefault(sf["encoding"], []).append((r["efficiency"]["redundancy"],
                                                   stats.t_interval(vals)))
  if not pts:
    return None
  fig, (ax,) = figures.new(1)
  for i, (kind, values) in enumerate(sorted(pts.items())):
    values.sort(key=lambda p: p[0])
    x = [p[0] for p in values]
    mean = np.array([p[1][0] for p in values])
    err = np.array([[p[1][0] - p[1][1], p[1][2] - p[1][0]] for p in values]).T
    ax.errorbar(x, np.maximum(mean, 1e-12), yerr=err, fmt="o-", label=kind,
                color=figures.color(i), capsize=3)
  ax.set_yscale("log")
  ax.set_xlabel("redundancy β")
  ax.set_ylabel("error floor (f − f*) / f*  (↓ better)")
  ax.set_title(f"k = {k}, {model}")
  ax.legend()
  return fig


def sections(records: Sequence[Mapping[str, Any]], config: Any) -> list[tuple[Any, ...]]:
  s = config.study
  records = [r for r in records if r.get("study") == NAME]
  eps = float(s.epsilon)
  n_seeds = len(tuple(s.seeds))
  blocks: list[tuple[Any, ...]] = [
      ("h2", "Setup"),
      ("p", f"m = {s.num_workers} workers, {s.steps} {s.optimizer} iterations at step "
            f"{s.step_scale:g}/L, {s.problem.loss} (n = {s.problem.num_examples}, d = "
            f"{s.problem.dim}, l2 = {s.problem.l2:g}, Gram condition number "
            f"{s.problem.condition_number:g}). Time is simulated: per iteration the k-th "
            "order statistic of the worker delays plus compute "
            f"({s.compute_seconds_per_row:g} s per row held). Every scheme runs on "
            f"{n_seeds} seeds; a seed fixes the delay draws (shared by all schemes of a "
            "straggler model) and the random encoding. Time to ε is the simulated time "
            f"after which (f − f*)/f* stays ≤ ε = {eps:g}; 'first dip' is when it first "
            "touches ε. Speed-ups are T(wait for all)/T(scheme) per seed, mean with 95% t "
            "interval; the ceiling is (E[T(m:m)] + compute)/(E[T(k:m)] + compute), the "
            "speed-up at equal iteration counts (a ratio of expectations: the mean of "
            "per-seed ratios can exceed it, most under heavy-tailed delays). Error floor: "
            "mean over the last quarter of the iterations.")]
  if n_seeds < 8:
    blocks.append(("p", f"Only {n_seeds} seeds: the intervals are wide and t intervals on "
                        "skewed ratios are optimistic at small n; use 8 or more."))
  for model in s.sweep.stragglers:
    group = [r for r in records if _sf(r).get("straggler") == model]
    reference = next((r for r in group if r.get("source") is None), None)
    if reference is None:
      continue
    by_name = {r["variant"]: r for r in group}
    blocks += [("h2", f"Straggler model: {model}"),
               ("p", f"Parameters {group[0]['knobs'].get('straggler_params')}; the reference "
                     f"is {_sf(reference).get('scheme')} (uncoded, waiting for all).")]
    blocks.append(("figure", f"coded_{model}.png", _plot_model(group, reference, eps, model),
                   f"Left: relative suboptimality against simulated time for the first seed "
                   f"under {model} delays (dashed: ε). Right: speed-up to ε over waiting for "
                   "all, mean and 95% interval over seeds, with the order-statistics "
                   "ceiling as a bar and ignoring stragglers at the same k as a cross."))
    blocks.append(_table(group, reference, by_name, model))
    family = claims(group, reference, model)
    if family:
      counts = {v: sum(c.verdict == v for c in family) for v in stats.VERDICTS}
      blocks += [("h3", f"Verdicts ({model})"),
                 ("p", f"{len(family)} claims in one family, paired t over the seeds on "
                       "which both sides reached ε, Holm-corrected; Δ is the scheme minus "
                       "the other (seconds for time to ε, relative suboptimality for the "
                       f"floor): {counts[stats.LOWER]} lower, {counts[stats.HIGHER]} "
                       f"higher, {counts[stats.NO_DIFFERENCE]} no detectable difference."),
                 verdict_table(family)]
  k_min, model = min(int(k) for k in s.sweep.ks), s.sweep.stragglers[0]
  floors = _plot_floors(records, k_min, model)
  if floors is not None:
    blocks += [("h2", "Error floor against redundancy"),
               ("figure", "error_floor_vs_beta.png", floors,
                f"Error floor against redundancy β for the encodings waiting for k = "
                f"{k_min} of {s.num_workers} under {model} delays, mean and 95% interval "
                "over seeds.")]
  real = [r for r in records if _sf(r).get("real")]
  if real:
    rows = [[_sf(r)["scheme"], _sf(r)["real"]["executor"], str(_sf(r)["real"]["steps"]),
             fmt.number(_sf(r)["real"]["wall_time"][-1]),
             fmt.number(_sf(r)["real"]["relative"][-1])] for r in real]
    blocks += [("h2", "Real executor"),
               ("p", "The scheme on real workers with the first seed's delays injected "
                     "(scaled by time_scale); one run, no interval."),
               ("table", ["Scheme", "Executor", "Steps", "Wall time (s)",
                          "Final (f − f*)/f*"], rows)]
  return blocks
