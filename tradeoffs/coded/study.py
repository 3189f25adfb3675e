"""The coded-optimization study: sweep schemes, score them, write records and a report.

`validate_config` raises ValueError (naming the config key) before anything compiles;
`run_study(config, workdir, environment)` runs every (scheme, straggler model) pair of
the sweep, writes traces/, records.jsonl (study='coded_optimization', efficiency = time
to epsilon, marked simulated; accuracy = final suboptimality) and report.md with plots.
"""

from __future__ import annotations

import itertools
import math
import os
import re
import time
from typing import Any

from absl import logging
import jax
import jax.numpy as jnp
import numpy as np

from tradeoffs import workdir as workdir_lib
from tradeoffs.coded import diagnostics
from tradeoffs.coded import encoding as encoding_lib
from tradeoffs.coded import gradient_coding as gc_lib
from tradeoffs.coded import optimize
from tradeoffs.coded import problems
from tradeoffs.coded import stragglers as stragglers_lib
from tradeoffs.report import records as records_lib

STUDY = "coded_optimization"


def _scheme_list(config) -> list[dict[str, Any]]:
  """Valid (encoding, beta, k) combinations of the sweep, then the gradient codes."""
  m = config.num_workers
  schemes = []
  for kind, beta, k in itertools.product(config.sweep.encodings, config.sweep.betas,
                                         config.sweep.ks):
    if kind == "uncoded" and beta != 1:
      continue
    if kind != "uncoded" and beta == 1:
      continue  # beta = 1 for a code is the uncoded scheme again.
    if kind == "paley" and beta != 2:
      continue
    if kind == "replication" and (beta != int(beta) or m % int(beta)):
      continue
    schemes.append(dict(family="encoded", kind=kind, beta=float(beta), k=int(k),
                        name=f"{kind}/beta={beta:g}/k={k}"))
  s = config.gradient_coding.num_stragglers
  for code in config.gradient_coding.codes:
    schemes.append(dict(family="gradient_code", kind=code, beta=float(s + 1),
                        k=int(config.gradient_coding.k), name=f"gc_{code}/s={s}/k={config.gradient_coding.k}"))
  return schemes


def validate_config(config) -> list[dict[str, Any]]:
  """Checks every key the study reads; returns the scheme list."""
  m = config.num_workers
  if m < 1:
    raise ValueError(f"num_workers={m} is not allowed: need >= 1")
  if config.steps < 1:
    raise ValueError(f"steps={config.steps} is not allowed: need >= 1")
  if not (math.isfinite(config.epsilon) and config.epsilon > 0):
    raise ValueError(f"--config.epsilon={config.epsilon} is not allowed: it is the relative "
                     "suboptimality (f - f*)/f* to reach; allowed: a finite epsilon > 0")
  # gd/prox take step = step_scale / L; gradient descent on an L-smooth objective converges
  # only for step < 2/L (on a quadratic the error contracts by |1 - step * lambda| < 1 for
  # every eigenvalue lambda <= L). L-BFGS takes step = step_scale along a quasi-Newton
  # direction, for which step < 2 is the same condition on the curvature-scaled problem.
  if not 0 < config.step_scale < 2:
    unit = "a fixed step along the L-BFGS direction" if config.optimizer == "lbfgs" else \
        "step = step_scale / L, and gradient descent converges only for step < 2/L"
    raise ValueError(f"--config.step_scale={config.step_scale} is not allowed ({unit}); "
                     "allowed: 0 < step_scale < 2")
  if config.problem.loss not in problems.LOSSES:
    raise ValueError(f"problem.loss={config.problem.loss!r} is not known; valid: {list(problems.LOSSES)}")
  optimize.check_optimizer(config.optimizer)
  if config.problem.l1 > 0 and config.optimizer != "prox":
    raise ValueError(f"optimizer={config.optimizer!r} with problem.l1={config.problem.l1}: "
                     "an l1 term needs optimizer='prox'")
  for kind in config.sweep.encodings:
    if kind not in encoding_lib.ENCODINGS:
      raise ValueError(f"sweep.encodings contains {kind!r}; valid: {sorted(encoding_lib.ENCODINGS)}")
    if config.problem.loss != "least_squares" and kind not in optimize.ROW_SELECTING:
      raise ValueError(f"sweep.encodings contains {kind!r} with problem.loss="
                       f"{config.problem.loss!r}; allowed: {list(optimize.ROW_SELECTING)}")
  for beta in config.sweep.betas:
    if not beta >= 1:
      raise ValueError(f"sweep.betas contains beta={beta}; allowed: beta >= 1")
  for k in config.sweep.ks:
    if not 1 <= k <= m:
      raise ValueError(f"sweep.ks contains k={k} with num_workers={m}; allowed: 1 <= k <= {m}")
  for model in config.sweep.stragglers:
    if model not in stragglers_lib.STRAGGLER_MODELS:
      raise ValueError(f"sweep.stragglers contains {model!r}; valid: "
                       f"{sorted(stragglers_lib.STRAGGLER_MODELS)}")
    if model == "trace":
      params = config.straggler_params.trace
      try:
        stragglers_lib.load_trace(params.path, m, config.steps, wrap=params.wrap)
      except ValueError as e:
        raise ValueError(f"straggler_params.trace: {e}") from e
  gc = config.gradient_coding
  for code in gc.codes:
    if code not in gc_lib.GRADIENT_CODES:
      raise ValueError(f"gradient_coding.codes contains {code!r}; valid: {sorted(gc_lib.GRADIENT_CODES)}")
  if gc.codes:
    gc_lib.check_stragglers(m, gc.num_stragglers, "gradient_coding.num_stragglers")
    optimize.check_gradient_code_k(gc.k, m, gc.num_stragglers)
    if "fractional_repetition" in gc.codes and m % (gc.num_stragglers + 1):
      raise ValueError(f"gradient_coding.num_stragglers={gc.num_stragglers} with "
                       f"fractional_repetition needs (s+1) | num_workers={m}")
  if config.mesh_devices not in (0, -1) and (config.mesh_devices > jax.device_count()
                                             or m % config.mesh_devices):
    raise ValueError(f"mesh_devices={config.mesh_devices}: allowed 0, -1, or a divisor of "
                     f"num_workers={m} that is <= device_count={jax.device_count()}")
  if config.executor.name not in ("", "ray", "process_pool"):
    raise ValueError(f"executor.name={config.executor.name!r}; allowed: '', 'ray', 'process_pool'")
  schemes = _scheme_list(config)
  if not schemes:
    raise ValueError("sweep.encodings/betas/ks and gradient_coding.codes give no valid scheme")
  return schemes


def synthetic_problem(config, key) -> problems.Problem:
  """Gaussian features, a random w_true, and Gaussian noise (labels for logistic)."""
  p = config.problem
  kx, kw, ke = jax.random.split(key, 3)
  x = jax.random.normal(kx, (p.num_examples, p.dim))
  w_true = jax.random.normal(kw, (p.dim,))
  if p.loss == "least_squares":
    y = x @ w_true + p.noise * jax.random.normal(ke, (p.num_examples,))
  else:
    y = (jax.random.uniform(ke, (p.num_examples,)) < jax.nn.sigmoid(x @ w_true)).astype(jnp.float32)
  return problems.make_problem(x, y, loss=p.loss, l2=p.l2, l1=p.l1)


def _safe(name: str) -> str:
  return re.sub(r"[^A-Za-z0-9_.=-]+", "_", name)


def _rip_epsilon(scheme, config, key) -> float | None:
  if scheme["family"] != "encoded":
    return None
  n = config.diagnostics.rip_n
  if scheme["kind"] == "paley":
    n = encoding_lib.paley_size_at_least(n)
  s = encoding_lib.encoding_matrix(scheme["kind"], n, scheme["beta"], key)
  spec = diagnostics.block_rip_spectrum(s, config.num_workers, scheme["k"], key,
                                        config.diagnostics.rip_sets)
  return float(spec["epsilon"])


def run_study(config, workdir: str, environment: dict[str, Any]) -> list[dict[str, Any]]:
  schemes = validate_config(config)
  root = jax.random.key(config.seed)
  problem = synthetic_problem(config, jax.random.fold_in(root, 0))
  w_star = problems.optimum(problem)
  mesh = None
  if config.mesh_devices:
    mesh = optimize.make_mesh(jax.device_count() if config.mesh_devices == -1
                              else config.mesh_devices)
  step_size = optimize.default_step_size(problem, config.optimizer, config.step_scale)
  m = config.num_workers
  results = []
  total = len(schemes) * len(config.sweep.stragglers)
  started = time.time()
  for index, (model, scheme) in enumerate(itertools.product(config.sweep.stragglers, schemes)):
    model_key = jax.random.fold_in(root, 1 + list(config.sweep.stragglers).index(model))
    delays = stragglers_lib.sample_delays(model, model_key, config.steps, m,
                                          **config.straggler_params[model].to_dict())
    scheme_key = jax.random.fold_in(root, 1000 + schemes.index(scheme))
    data = _worker_data(problem, scheme, config, scheme_key)
    trace = optimize.run(problem, data, delays, scheme["k"], optimizer=config.optimizer,
                         step_size=step_size, memory=config.memory,
                         compute_seconds_per_row=config.compute_seconds_per_row, mesh=mesh,
                         w_star=w_star)
    rel = diagnostics.relative_suboptimality(trace.suboptimality, trace.optimum_value)
    variant = f"{scheme['name']}/{model}"
    result = dict(
        variant=variant, straggler=model, **scheme, effective_beta=data.beta,
        rows_per_worker=data.rows_per_worker,
        time_to_epsilon=diagnostics.time_to_epsilon(trace.time, rel, config.epsilon),
        seconds_per_iteration=float(trace.time[-1] / config.steps),
        final_suboptimality=float(trace.suboptimality[-1]), final_relative=float(rel[-1]),
        error_floor=diagnostics.error_floor(rel), optimum_value=trace.optimum_value,
        rip_epsilon=_rip_epsilon(scheme, config, scheme_key), time=trace.time, relative=rel)
    results.append(result)
    if workdir_lib.is_writer():
      workdir_lib.write_json(os.path.join(workdir, "traces", _safe(variant) + ".json"),
                             dict(variant=variant, time=trace.time, relative_suboptimality=rel,
                                  suboptimality=trace.suboptimality, objective=trace.objective))
    elapsed = time.time() - started
    rate = (index + 1) / max(elapsed, 1e-9)
    logging.info("scheme %d/%d %s: %d iterations, final rel. subopt %.3g, %.2f schemes/s, "
                 "ETA %.0fs", index + 1, total, variant, config.steps, rel[-1], rate,
                 (total - index - 1) / rate)
  if config.executor.name:
    _run_executor(config, problem, schemes, results, root, w_star, step_size)
  records = [_record(r, config, environment) for r in results]
  records_lib.append_records(workdir, records)
  if workdir_lib.is_writer():
    write_report(workdir, results, config)
  return results


def _worker_data(problem, scheme, config, key) -> optimize.WorkerData:
  """What the m workers hold for `scheme`: encoded blocks or gradient-code partitions."""
  if scheme["family"] == "encoded":
    return optimize.encode_problem(problem, scheme["kind"], scheme["beta"], config.num_workers,
                                   key)
  return optimize.gradient_code_problem(problem, scheme["kind"], config.num_workers,
                                        config.gradient_coding.num_stragglers, key)


def _run_executor(config, problem, schemes, results, root, w_star, step_size) -> None:
  from tradeoffs.coded import executors  # pylint: disable=g-import-not-at-top
  run_fn = executors.get_executor(config.executor.name)
  by_name = {s["name"]: s for s in schemes}
  f_star = float(problems.objective(problem, w_star))
  for name in config.executor.schemes:
    if name not in by_name:
      raise ValueError(f"executor.schemes contains {name!r}; valid: {sorted(by_name)}")
    scheme = by_name[name]
    model = config.sweep.stragglers[0]
    delays = stragglers_lib.sample_delays(
        model, jax.random.fold_in(root, 1), config.executor.steps, config.num_workers,
        **config.straggler_params[model].to_dict())
    data = _worker_data(problem, scheme, config,
                        jax.random.fold_in(root, 1000 + schemes.index(scheme)))
    out = run_fn(problem, data, np.asarray(delays), scheme["k"], optimizer=config.optimizer,
                 step_size=step_size, time_scale=config.executor.time_scale)
    values = np.asarray([float(problems.objective(problem, jnp.asarray(w, jnp.float32)))
                         for w in out["weights"]])
    for r in results:
      if r["variant"] == f"{name}/{model}":
        r["real"] = dict(executor=config.executor.name, steps=config.executor.steps,
                         time_scale=config.executor.time_scale, wall_time=out["wall_time"],
                         relative=(values - f_star) / abs(f_star))


def _record(r, config, environment):
  efficiency = dict(time_to_epsilon_s=r["time_to_epsilon"], epsilon=config.epsilon,
                    seconds_per_iteration=r["seconds_per_iteration"], time_simulated=True,
                    redundancy=r["effective_beta"], rows_per_worker=r["rows_per_worker"],
                    workers_waited_for=r["k"], num_workers=config.num_workers)
  if "real" in r:
    efficiency["real_wall_time_s"] = float(r["real"]["wall_time"][-1])
    efficiency["real_executor"] = r["real"]["executor"]
  return records_lib.make_record(
      study=STUDY, variant=r["variant"], efficiency=efficiency,
      accuracy=dict(final_suboptimality=r["final_suboptimality"],
                    final_relative_suboptimality=r["final_relative"],
                    error_floor_relative=r["error_floor"]),
      hidden_costs=dict(storage_overhead=r["effective_beta"], block_rip_epsilon=r["rip_epsilon"]),
      members=1, config=config, environment=environment, scheme=r["name"],
      encoding=r["kind"], family=r["family"], beta=r["beta"], k=r["k"],
      straggler=r["straggler"], optimizer=config.optimizer)


def _fmt(x: float | None, digits: int = 3) -> str:
  if x is None:
    return "-"
  if isinstance(x, float) and math.isinf(x):
    return "never"
  return f"{x:.{digits}g}"


def write_report(workdir: str, results: list[dict[str, Any]], config) -> None:
  """report.md with suboptimality-vs-time plots, a time-to-epsilon table and floors vs beta."""
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  lines = ["# Coded optimization against stragglers\n",
           f"m = {config.num_workers} workers, {config.steps} {config.optimizer} iterations, "
           f"{config.problem.loss} (n = {config.problem.num_examples}, d = {config.problem.dim},"
           f" l2 = {config.problem.l2}), seed {config.seed}. Time is **simulated**: per "
           "iteration the k-th order statistic of the worker delays plus compute "
           f"({config.compute_seconds_per_row:g} s per row held).\n"]
  for model in config.sweep.stragglers:
    rows = [r for r in results if r["straggler"] == model]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for r in rows:
      ax.semilogy(r["time"], np.maximum(r["relative"], 1e-12), label=r["name"])
      if "real" in r:
        ax.semilogy(np.asarray(r["real"]["wall_time"]) / r["real"]["time_scale"],
                    np.maximum(r["real"]["relative"], 1e-12), "k--",
                    label=f"{r['name']} ({r['real']['executor']}, real / time_scale)")
    ax.axhline(config.epsilon, color="gray", lw=0.5)
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("(f - f*) / f*")
    ax.set_title(f"straggler model: {model}")
    ax.legend(fontsize=6)
    fig.tight_layout()
    png = f"suboptimality_{_safe(model)}.png"
    fig.savefig(os.path.join(workdir, png), dpi=100)
    plt.close(fig)
    lines.append(f"## Straggler model `{model}`\n\n![suboptimality]({png})\n")
    lines.append(f"| scheme | beta | k | s/iter | time to eps={config.epsilon:g} | final rel. "
                 "subopt | error floor | block-RIP eps |")
    lines.append("|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: r["time_to_epsilon"]):
      lines.append(f"| {r['name']} | {r['effective_beta']:.3g} | {r['k']} | "
                   f"{_fmt(r['seconds_per_iteration'])} | {_fmt(r['time_to_epsilon'])} | "
                   f"{_fmt(r['final_relative'])} | {_fmt(r['error_floor'])} | "
                   f"{_fmt(r['rip_epsilon'])} |")
    lines.append("")
  k_min = min(config.sweep.ks)
  model = config.sweep.stragglers[0]
  fig, ax = plt.subplots(figsize=(6, 4))
  for kind in config.sweep.encodings:
    pts = sorted((r["effective_beta"], r["error_floor"]) for r in results
                 if r["family"] == "encoded" and r["straggler"] == model and r["k"] == k_min
                 and (r["kind"] == kind or (r["kind"] == "uncoded")))
    pts = [p for p in pts if p[0] == 1.0 or any(
        r["kind"] == kind and r["effective_beta"] == p[0] for r in results)]
    if pts:
      ax.semilogy([p[0] for p in pts], [max(p[1], 1e-12) for p in pts], "o-", label=kind)
  ax.set_xlabel("redundancy beta")
  ax.set_ylabel("error floor (f - f*) / f*")
  ax.set_title(f"error floor against beta, k = {k_min} of {config.num_workers}, {model}")
  ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(os.path.join(workdir, "error_floor_vs_beta.png"), dpi=100)
  plt.close(fig)
  lines.append(f"## Error floor against beta (k = {k_min}, {model})\n\n"
               "![error floor](error_floor_vs_beta.png)\n")
  workdir_lib.atomic_write_text(os.path.join(workdir, "report.md"), "\n".join(lines) + "\n")
