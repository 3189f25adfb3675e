"""Same-capacity sparse vs dense comparison and effective gradient flow (PAPERS.md §16).

Tessera, Hooker & Rosman (2021), "Keep the gradients flowing": a wide-sparse MLP and a
narrow-dense MLP with the same number of active weights in every layer
(`sparsity.same_capacity_pair`) are trained identically, as populations of several seeds,
across optimizer x activation x batch norm settings; accuracy and effective gradient flow
(EGF) are reported per setting, and how well EGF and the plain gradient norm correlate with
final accuracy across settings.

Formulations implemented (see the docstrings for the options):
  * EGF_p = (1/L) sum_l ||g_l ⊙ m_l||_p over the L kernels (`sparsity.effective_gradient_flow`,
    slide 22 of the authors' talk; no division by active weights unless
    `study.egf_normalize`). g is each member's minibatch gradient at that step; m are the
    masks held in the optimizer state of the `sparsity.masked` wrapper (None = dense).
  * The plain gradient norm is the foundation's `grad_norm` metric: the global L2 norm of the
    whole gradient (all parameters, pruned positions included). `grad_norm_masked` (the L2
    norm of the gradient the optimizer actually uses, pruned positions zeroed) is logged too.
  * EGF and gradient norms are logged per step through `StepConfig.grad_metrics_fn` and
    written to metrics.jsonl (population mean) every `train.steps // study.egf_evaluations`
    steps; a variant's EGF is the mean over those logged evaluations (11 by default, as in
    the paper).
  * Masks: uniformly random per layer with exactly the dense layer's weight count, drawn once
    per member from its init key and fixed through training (the paper's main study prunes
    randomly from scratch). Biases are dense in both networks and not counted as capacity.
  * Initialisation (`study.init_scaling`, [mem] in the paper): 'dense' (default) rescales
    the sparse kernels so that every active weight has the dense layer's initial
    distribution (LeCun normal with the dense fan-in), the paper's "same per-layer initial
    distribution"; 'none' keeps each network's own LeCun init; 'effective' uses the sparse
    layer's expected active fan-in (density x fan-in).
  * Sparse beats dense is tested as in the paper (H0: sparse <= dense): per setting a
    one-sided Welch t-test over members; across settings a one-sided Wilcoxon signed-rank
    test on the per-setting mean differences.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import warnings
from typing import Any, Callable, Mapping, Sequence

import jax
import ml_collections
import numpy as np
from absl import logging

from tradeoffs import environment
from tradeoffs import models as models_lib
from tradeoffs import sparsity
from tradeoffs import workdir as workdir_lib
from tradeoffs.report import records as records_lib
from tradeoffs.studies import common
from tradeoffs.train import experiment
from tradeoffs.train import mesh as mesh_lib
from tradeoffs.train import optimizers
from tradeoffs.train import predictions as predictions_lib
from tradeoffs.train import seeds as seeds_lib

STUDY = "sparse_vs_dense"
KINDS = ("sparse", "dense")
ANALYSIS_FILE = "analysis.json"
PARAMS_DIR = "params"
# Correlated with final top-1 across settings; the first two are the paper's EGF.
FLOW_METRICS = ("egf_1", "egf_2", "grad_norm", "grad_norm_masked")
_MASK_SALT = 0x6D61736B  # 'mask': member i's masks come from its init key folded with this.


@dataclasses.dataclass(frozen=True)
class Setting:
  """One training setting of the grid; a sparse and a dense population are trained in it."""
  optimizer: str
  activation: str
  batch_norm: bool

  @property
  def name(self) -> str:
    return f"{self.optimizer}-{self.activation}-{'bn' if self.batch_norm else 'nobn'}"

  def variant(self, kind: str) -> str:
    """'sparse-sgd-relu-bn'; a dense variant's name starts with 'dense' (report reference)."""
    return f"{kind}-{self.name}"


def settings(config: Any) -> list[Setting]:
  """The optimizer x activation x batch-norm grid, in config order."""
  s = config.study
  return [Setting(str(o), str(a), bool(b)) for o in s.optimizers for a in s.activations
          for b in s.batch_norm]


# --- initialisation -----------------------------------------------------------------------

def _scale_dense(fan_in_sparse: int, fan_in_dense: int, density: float) -> float:
  del density
  return math.sqrt(fan_in_sparse / fan_in_dense)


def _scale_none(fan_in_sparse: int, fan_in_dense: int, density: float) -> float:
  del fan_in_sparse, fan_in_dense, density
  return 1.0


def _scale_effective(fan_in_sparse: int, fan_in_dense: int, density: float) -> float:
  del fan_in_dense
  return math.sqrt(1.0 / density)


# name -> (fan-in of the wide layer, fan-in of the narrow layer, density) -> factor applied to
# the wide network's LeCun-normal kernels (std 1/sqrt(fan_in_sparse)).
INIT_SCALINGS: dict[str, Callable[[int, int, float], float]] = {
    "dense": _scale_dense,
    "none": _scale_none,
    "effective": _scale_effective,
}


def init_factors(pair: Mapping[str, Any], input_dim: int, scaling: str) -> dict[str, float]:
  """Per-kernel multipliers for the sparse network's freshly initialised kernels."""
  if scaling not in INIT_SCALINGS:
    raise ValueError(f"--config.study.init_scaling={scaling!r} is unknown; choose from "
                     f"{sorted(INIT_SCALINGS)}")
  dense_in = [int(input_dim), *pair["dense_hidden"]]
  sparse_in = [int(input_dim), *pair["sparse_hidden"]]
  out = {}
  for l, name in enumerate(pair["layer_names"]):
    density = pair["sparse_active"][name] / pair["sparse_size"][name]
    out[name] = float(INIT_SCALINGS[scaling](sparse_in[l], dense_in[l], density))
  return out


def scaled_init_fn(factors: Mapping[str, float]) -> Callable[[Any, jax.Array], Any]:
  """`create_population` init_fn multiplying each named kernel by its factor."""

  def init_fn(params, key):
    del key

    def scale(path, leaf):
      return leaf * factors.get(sparsity.path_name(path), 1.0)

    return jax.tree_util.tree_map_with_path(scale, params)

  return init_fn


# --- masks and metrics -----------------------------------------------------------------------

def member_masks(init_keys: jax.Array, params: Any, layer_sparsity: Mapping[str, float],
                 nominal_sparsity: float) -> Any:
  """Random masks per member [M, ...] with exactly the per-layer kept counts of the pair."""
  return _member_masks(init_keys, params, tuple(sorted(layer_sparsity.items())),
                       float(nominal_sparsity))


@functools.partial(jax.jit, static_argnames=("layer_sparsity", "nominal_sparsity"))
def _member_masks(init_keys, params, layer_sparsity, nominal_sparsity):
  # Module-level jit with static sparsities: the sparse variants of every setting share one
  # compilation per parameter structure (mask selection is the costliest compile here).
  def one(raw_key, member_params):
    key = jax.random.fold_in(seeds_lib.wrap(raw_key), _MASK_SALT)
    return sparsity.random_masks(key, member_params, nominal_sparsity,
                                 distribution=dict(layer_sparsity))

  return jax.vmap(one)(init_keys, params)


def mask_state_fn(init_keys: jax.Array, layer_sparsity: Mapping[str, float],
                  nominal_sparsity: float) -> Callable[[Any], Any]:
  """`train_variant` state_fn: draws per-member masks, zeroes pruned weights, stores the
  masks in the `sparsity.masked` optimizer state (fixed from then on)."""

  def state_fn(state):
    masks = member_masks(init_keys, state.params, layer_sparsity, nominal_sparsity)
    new = state.replace(params=sparsity.apply_masks(state.params, masks),
                        opt_state=sparsity.replace_masks(state.opt_state, masks))
    # Keep the population's member sharding (the eager vmap may have placed them elsewhere).
    return jax.tree.map(lambda n, o: jax.device_put(n, o.sharding), new, state)

  return state_fn


def flow_metrics_fn(masked: bool, normalize: bool = False
                    ) -> Callable[[Any, Any, Any], dict[str, jax.Array]]:
  """`StepConfig.grad_metrics_fn`: EGF_1, EGF_2 and the masked gradient norm of one member.

  Args:
    masked: read the masks from the `sparsity.masked` optimizer state (else dense: no masks).
    normalize: divide each layer's EGF norm by its active weights (see gradient_flow.py).
  """

  def fn(params, grads, opt_state):
    del params
    masks = sparsity.get_masks(opt_state) if masked else None
    effective = grads if masks is None else sparsity.apply_masks(grads, masks)
    return {
        "egf_1": sparsity.effective_gradient_flow(grads, masks, p=1, normalize=normalize),
        "egf_2": sparsity.effective_gradient_flow(grads, masks, p=2, normalize=normalize),
        "grad_norm_masked": sparsity.gradient_norm(effective, 2),
    }

  return fn


def flow_summary(rows: Sequence[Mapping[str, Any]], variant: str) -> dict[str, Any]:
  """Mean of EGF and gradient norms over a variant's logged evaluations, and the traces.

  `rows` are metrics.jsonl rows; a step logged twice (a resumed run) keeps its last row.
  """
  by_step: dict[int, Mapping[str, Any]] = {}
  for row in rows:
    if f"{variant}/egf_2" in row:
      by_step[int(row["step"])] = row
  steps = sorted(by_step)
  trace: dict[str, Any] = {"steps": steps}
  means: dict[str, Any] = {}
  for metric in FLOW_METRICS:
    values = [float(by_step[s][f"{variant}/{metric}"]) for s in steps
              if f"{variant}/{metric}" in by_step[s]]
    trace[metric] = values
    means[metric] = float(np.mean(values)) if values else None
  return {"means": means, "trace": trace, "evaluations": len(steps)}


def active_per_layer(params: Any, layer_names: Sequence[str]) -> dict[str, list[int]]:
  """Non-zero weights of each named kernel, per member (leading member axis)."""
  counts = jax.vmap(lambda p: sparsity.summarize_sparsity(p)["layers"])(params)
  return {name: np.asarray(counts[name]["nonzero"]).astype(int).tolist() for name in layer_names}


# --- configuration --------------------------------------------------------------------------

def _fail(key: str, value: Any, allowed: str) -> None:
  raise ValueError(f"--config.{key}={value!r} is invalid; allowed: {allowed}")


def validate_config(config: Any, device_count: int | None = None) -> None:
  """Checks the study section and every derived training config before anything compiles."""
  s = config.study
  if config.model.name != "mlp":
    _fail("model.name", config.model.name, "'mlp' (same-capacity pairs are MLPs)")
  hidden = s.dense_hidden
  if (isinstance(hidden, (str, bytes)) or not isinstance(hidden, Sequence) or not hidden
      or any(isinstance(h, bool) or not isinstance(h, int) or h < 1 for h in hidden)):
    _fail("study.dense_hidden", hidden, "a non-empty tuple of positive ints")
  value = s.sparsity
  if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
    _fail("study.sparsity", value, "a number in [0, 1)")
  for key, allowed in (("optimizers", optimizers.OPTIMIZERS),
                       ("activations", tuple(models_lib.activation_names()))):
    values = s[key]
    if isinstance(values, str) or not values:
      _fail(f"study.{key}", values, f"a non-empty tuple of {list(allowed)}")
    for v in values:
      if v not in allowed:
        raise ValueError(f"--config.study.{key} contains {v!r}; valid: {list(allowed)}")
  if isinstance(s.batch_norm, (str, bool)) or not s.batch_norm or any(
      not isinstance(b, bool) for b in s.batch_norm):
    _fail("study.batch_norm", s.batch_norm, "a non-empty tuple of bools, e.g. (False, True)")
  for name in s.optimizers:
    if name not in s.learning_rates:
      raise ValueError(f"--config.study.learning_rates has no entry for optimizer {name!r}; "
                       f"it has {sorted(s.learning_rates.keys())}")
    if not float(s.learning_rates[name]) > 0:
      _fail(f"study.learning_rates.{name}", s.learning_rates[name], "a number > 0")
  if s.init_scaling not in INIT_SCALINGS:
    _fail("study.init_scaling", s.init_scaling, str(sorted(INIT_SCALINGS)))
  if isinstance(s.egf_evaluations, bool) or int(s.egf_evaluations) < 1:
    _fail("study.egf_evaluations", s.egf_evaluations, "an int >= 1")
  if int(config.train.steps) < int(s.egf_evaluations):
    raise ValueError(f"--config.train.steps={config.train.steps} must be >= "
                     f"--config.study.egf_evaluations={s.egf_evaluations}")
  if int(s.latency_repeats) < 0:
    _fail("study.latency_repeats", s.latency_repeats, "an int >= 0 (0 skips timing)")
  sparsity.same_capacity_pair(tuple(hidden), float(value), 1, 1)
  for setting in settings(config)[:1]:  # The grid differs only in names checked above.
    experiment.validate(training_config(config, setting, tuple(hidden)), device_count)


def training_config(config: Any, setting: Setting, hidden: Sequence[int]
                    ) -> ml_collections.ConfigDict:
  """The training config of one variant: the study config with model and optimizer set."""
  c = ml_collections.ConfigDict(config.to_dict())
  del c["study"]
  c.model.kwargs = ml_collections.ConfigDict(dict(
      hidden=tuple(int(h) for h in hidden), activation=setting.activation,
      batch_norm=setting.batch_norm))
  c.optimizer.name = setting.optimizer
  c.optimizer.learning_rate = float(config.study.learning_rates[setting.optimizer])
  steps = int(c.train.steps)
  # Logged metrics are the EGF evaluations; test accuracy only at the end.
  c.train.log_every = max(1, steps // int(config.study.egf_evaluations))
  c.train.eval_every = max(steps, 1)
  return c


def capacity_pair(config: Any, input_dim: int, num_classes: int) -> dict[str, Any]:
  return sparsity.same_capacity_pair(tuple(config.study.dense_hidden),
                                     float(config.study.sparsity), input_dim, num_classes)


# --- statistics ------------------------------------------------------------------------------

def _finite(values) -> bool:
  return all(v is not None and np.isfinite(v) for v in values)


def correlation(xs: Sequence[float], ys: Sequence[float]) -> dict[str, Any]:
  """Pearson and Spearman correlation with two-sided p-values (scipy.stats); None where
  undefined (fewer than 3 points or a constant input)."""
  from scipy import stats  # pylint: disable=g-import-not-at-top
  pairs = [(float(x), float(y)) for x, y in zip(xs, ys) if _finite([x, y])]
  out = {"n": len(pairs), "pearson_r": None, "pearson_p": None, "spearman_rho": None,
         "spearman_p": None}
  if len(pairs) < 3:
    return out
  x, y = np.array(pairs).T
  if np.ptp(x) == 0 or np.ptp(y) == 0:
    return out
  with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    pearson = stats.pearsonr(x, y)
    spearman = stats.spearmanr(x, y)
  for key, value in (("pearson_r", pearson.statistic), ("pearson_p", pearson.pvalue),
                     ("spearman_rho", spearman.statistic), ("spearman_p", spearman.pvalue)):
    out[key] = float(value) if np.isfinite(value) else None
  return out


def _strength(c: Mapping[str, Any]) -> tuple[float, float]:
  """(|Spearman|, |Pearson|): how well a metric correlates, the second breaking ties."""
  rho, r = c.get("spearman_rho"), c.get("pearson_r")
  return (abs(rho) if rho is not None else -1.0, abs(r) if r is not None else -1.0)


def correlations(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
  """How each flow metric correlates with final top-1 across variants: over all variants and
  over the sparse ones only (the paper's claim is about sparse networks)."""
  subsets = {"all": list(records), "sparse": [r for r in records if r.get("kind") == "sparse"]}
  out: dict[str, Any] = {}
  for subset, rs in subsets.items():
    top1 = [r["accuracy"]["top1"] for r in rs]
    table = {m: correlation([r["hidden_costs"].get(m) for r in rs], top1)
             for m in FLOW_METRICS}
    best_egf = max(("egf_1", "egf_2"), key=lambda m: _strength(table[m]))
    egf, plain = table[best_egf], table["grad_norm"]
    table["better"] = table["basis"] = None
    if egf["spearman_rho"] is not None and plain["spearman_rho"] is not None:
      # Ranked by |Spearman rho|; a tie (equal rankings) is broken by |Pearson r|.
      key = "spearman_rho"
      if abs(abs(egf[key]) - abs(plain[key])) < 1e-9:
        key = "pearson_r"
      table["basis"] = key
      table["better"] = best_egf if abs(egf[key]) > abs(plain[key]) else "grad_norm"
    table["best_egf"] = best_egf
    out[subset] = table
  return out


def compare_pairs(records: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
  """Sparse vs dense per setting (one-sided Welch t-test over members, H0: sparse <= dense)
  and across settings (one-sided Wilcoxon signed-rank on the per-setting mean differences)."""
  from scipy import stats  # pylint: disable=g-import-not-at-top
  by = {(r["setting"]["name"], r["kind"]): r for r in records}
  names = []
  for r in records:
    if r["setting"]["name"] not in names:
      names.append(r["setting"]["name"])
  rows = []
  for name in names:
    sparse, dense = by.get((name, "sparse")), by.get((name, "dense"))
    if sparse is None or dense is None:
      continue
    a = np.asarray(sparse["accuracy"]["per_member_top1"], float)
    b = np.asarray(dense["accuracy"]["per_member_top1"], float)
    p = None
    if len(a) > 1 and len(b) > 1 and (a.std() > 0 or b.std() > 0):
      with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        p = float(stats.ttest_ind(a, b, equal_var=False, alternative="greater").pvalue)
    elif len(a) and len(b) and a.std() == 0 and b.std() == 0:
      p = 0.0 if a.mean() > b.mean() else 1.0  # No spread: the ordering is certain.
    rows.append({"setting": name, "sparse_top1": float(a.mean()), "dense_top1": float(b.mean()),
                 "sparse_std": float(a.std()), "dense_std": float(b.std()),
                 "difference": float(a.mean() - b.mean()), "p_sparse_better": p,
                 "sparse_egf_2": sparse["hidden_costs"].get("egf_2"),
                 "dense_egf_2": dense["hidden_costs"].get("egf_2"),
                 "sparse_egf_1": sparse["hidden_costs"].get("egf_1"),
                 "dense_egf_1": dense["hidden_costs"].get("egf_1"),
                 "sparse_grad_norm": sparse["hidden_costs"].get("grad_norm"),
                 "dense_grad_norm": dense["hidden_costs"].get("grad_norm"),
                 "members": int(min(len(a), len(b)))})
  diffs = np.array([r["difference"] for r in rows])
  overall_p = None
  if len(diffs) >= 2 and np.any(diffs != 0):
    with warnings.catch_warnings():
      warnings.simplefilter("ignore")
      overall_p = float(stats.wilcoxon(diffs, alternative="greater").pvalue)
  wins = int(np.sum(diffs > 0))
  significant = sum(1 for r in rows if r["p_sparse_better"] is not None
                    and r["p_sparse_better"] < 0.05)
  if not rows:
    verdict = "no complete sparse/dense pair was trained"
  elif overall_p is not None and overall_p < 0.05:
    verdict = "yes"
  elif len(rows) == 1 and significant == 1:
    verdict = "yes"
  elif wins > len(rows) / 2:
    verdict = "not significantly"
  else:
    verdict = "no"
  return {"settings": rows, "wins": wins, "n": len(rows), "significant": significant,
          "mean_difference": float(diffs.mean()) if len(diffs) else None,
          "wilcoxon_p": overall_p, "verdict": verdict}


# --- the study -------------------------------------------------------------------------------

def _seeds(config: Any) -> dict[str, list[int]]:
  return seeds_lib.describe(seeds_lib.Seeds.from_config(config.seeds),
                            int(config.population.members))


def train_and_record(config: Any, workdir: str, setting: Setting, kind: str, *, dataset: Any,
                     pair: Mapping[str, Any], writer: workdir_lib.MetricWriter,
                     env: Mapping[str, Any]) -> dict[str, Any] | None:
  """Trains one variant's population, saves predictions and params, returns its record
  (None when preempted)."""
  variant = setting.variant(kind)
  s = config.study
  hidden = pair["sparse_hidden"] if kind == "sparse" else pair["dense_hidden"]
  cfg = training_config(config, setting, hidden)
  steps = int(cfg.train.steps)
  members = int(cfg.population.members)
  tx = init_fn = state_fn = None
  if kind == "sparse":
    # Fixed masks (no schedule): pruned weights and their gradients stay exactly zero.
    tx = sparsity.masked(optimizers.make_optimizer(cfg.optimizer, steps))
    init_fn = scaled_init_fn(init_factors(pair, int(np.prod(dataset.input_shape)),
                                          s.init_scaling))
    init_keys = seeds_lib.Seeds.from_config(cfg.seeds).member_keys(members)["init"]
    state_fn = mask_state_fn(init_keys, pair["layer_sparsity"], float(s.sparsity))
  step_overrides = {"grad_metrics_fn": flow_metrics_fn(kind == "sparse",
                                                       bool(s.egf_normalize))}
  logging.info("[%s] training %d members, hidden %s, %d steps", variant, members, hidden, steps)
  state, mesh, seconds, preempted = common.train_variant(
      cfg, workdir, variant, dataset=dataset, writer=writer, tx=tx,
      step_overrides=step_overrides, init_fn=init_fn, state_fn=state_fn)
  if preempted:
    return None
  test = dataset.test
  logits, _ = experiment.evaluate(state, test, mesh, int(cfg.eval.batch_size))
  common.save_variant_predictions(workdir, variant, logits, test)
  params = jax.device_get(state.params)
  if workdir_lib.is_writer():
    os.makedirs(os.path.join(workdir, PARAMS_DIR), exist_ok=True)
  predictions_lib.save_params(workdir, params, name=os.path.join(PARAMS_DIR, f"{variant}.npz"))
  accuracy = common.accuracy_summary(logits, test.labels, test.groups, test.group_names)
  repeats = int(s.latency_repeats)
  efficiency = common.measure_member(state, test.images[:int(cfg.train.batch_size)],
                                     repeats=max(repeats, 1), time_it=repeats > 0)
  flow = flow_summary(workdir_lib.read_jsonl(os.path.join(workdir, "metrics.jsonl")), variant)
  active = active_per_layer(params, pair["layer_names"])
  logging.info("[%s] top-1 %.4f +- %.4f, EGF_2 %s, grad norm %s, %.1f s", variant,
               accuracy["top1"], accuracy["top1_std"], flow["means"]["egf_2"],
               flow["means"]["grad_norm"], seconds)
  return records_lib.make_record(
      study=STUDY, variant=variant, efficiency=efficiency, accuracy=accuracy,
      hidden_costs=flow["means"], members=members, config=config, environment=env,
      kind=kind, setting={**dataclasses.asdict(setting), "name": setting.name},
      hidden=list(hidden), active_per_layer=active,
      expected_active_per_layer=dict(pair["dense_active"]), flow_trace=flow["trace"],
      egf_evaluations=flow["evaluations"], egf_normalize=bool(s.egf_normalize),
      init_scaling=str(s.init_scaling), sparsity=float(s.sparsity) if kind == "sparse" else 0.0,
      layer_sparsity=dict(pair["layer_sparsity"]) if kind == "sparse" else {},
      seeds=_seeds(cfg), steps=steps, seconds=seconds)


def run(config: Any, workdir: str) -> list[dict[str, Any]] | None:
  """Runs the study into `workdir` (resumable); returns its records, None when preempted."""
  validate_config(config)
  members = int(config.population.members)
  mesh = mesh_lib.make_mesh(members, int(config.mesh.get("member_shards", 0) or 0) or None)
  env = environment.capture(mesh)
  env["seeds"] = _seeds(config)
  workdir_lib.prepare(workdir, config, env)
  dataset = experiment.load_dataset(config)
  pair = capacity_pair(config, int(np.prod(dataset.input_shape)), dataset.num_classes)
  logging.info("same-capacity pair: dense hidden %s vs sparse hidden %s, active weights per "
               "layer %s", pair["dense_hidden"], pair["sparse_hidden"], pair["dense_active"])
  done = common.recorded_variants(workdir)
  grid = settings(config)
  writer = workdir_lib.MetricWriter(workdir)
  try:
    for i, setting in enumerate(grid):
      for kind in KINDS:
        variant = setting.variant(kind)
        if variant in done:
          logging.info("[%s] already recorded; skipping", variant)
          continue
        logging.info("setting %d/%d: %s", i + 1, len(grid), variant)
        record = train_and_record(config, workdir, setting, kind, dataset=dataset, pair=pair,
                                  writer=writer, env=env)
        if record is None:
          return None
        records_lib.append_records(workdir, record)
  finally:
    writer.close()
  wanted = {s.variant(k) for s in grid for k in KINDS}
  records = [r for r in workdir_lib.read_jsonl(os.path.join(workdir, records_lib.RECORDS_FILE))
             if r.get("study") == STUDY and r.get("variant") in wanted]
  write_outputs(workdir, records, config, pair)
  return records


# --- report ----------------------------------------------------------------------------------

def analyze(records: Sequence[Mapping[str, Any]], pair: Mapping[str, Any] | None = None
            ) -> dict[str, Any]:
  return {"comparison": compare_pairs(records), "correlations": correlations(records),
          "pair": dict(pair) if pair is not None else None}


def _fmt(value: Any, digits: int = 3) -> str:
  if value is None or (isinstance(value, float) and not np.isfinite(value)):
    return "–"
  return f"{value:.{digits}g}"


def _pct(value: Any) -> str:
  return "–" if value is None else f"{100 * value:.2f}"


def _pyplot():
  import matplotlib  # pylint: disable=g-import-not-at-top
  matplotlib.use("Agg")
  from matplotlib import pyplot as plt  # pylint: disable=g-import-not-at-top
  return plt


def _save_figure(fig, workdir: str, name: str) -> str:
  fig.tight_layout()
  path = os.path.join(workdir, name)
  fig.savefig(path, dpi=110)
  _pyplot().close(fig)
  return path


def plot_accuracy(workdir: str, comparison: Mapping[str, Any],
                  records: Sequence[Mapping[str, Any]]) -> str | None:
  """Top-1 of sparse and dense per setting: bars are population means, dots are members."""
  rows = comparison["settings"]
  if not rows:
    return None
  plt = _pyplot()
  by = {(r["setting"]["name"], r["kind"]): r for r in records}
  fig, ax = plt.subplots(figsize=(max(5.0, 1.3 * len(rows)), 3.8))
  x = np.arange(len(rows))
  for offset, kind, color in ((-0.2, "sparse", "tab:orange"), (0.2, "dense", "tab:blue")):
    means = [r[f"{kind}_top1"] for r in rows]
    stds = [r[f"{kind}_std"] for r in rows]
    ax.bar(x + offset, means, 0.38, yerr=stds, color=color, alpha=0.7, label=kind, capsize=2)
    for i, row in enumerate(rows):
      members = by[(row["setting"], kind)]["accuracy"]["per_member_top1"]
      ax.scatter(np.full(len(members), i + offset), members, s=8, color="k", zorder=3)
  lows = [min(min(by[(r["setting"], k)]["accuracy"]["per_member_top1"]) for k in KINDS)
          for r in rows]
  ax.set_ylim(max(0.0, min(lows) - 0.05), 1.0)
  ax.set_xticks(x, [r["setting"] for r in rows], rotation=30, ha="right", fontsize=8)
  ax.set_ylabel("test top-1")
  ax.set_title("Same capacity: wide-sparse vs narrow-dense")
  ax.legend(fontsize=8)
  return _save_figure(fig, workdir, "accuracy_sparse_vs_dense.png")


def plot_flow_vs_accuracy(workdir: str, records: Sequence[Mapping[str, Any]],
                          table: Mapping[str, Any]) -> str | None:
  """EGF_1, EGF_2 and the plain gradient norm against final top-1, one point per variant."""
  if not records:
    return None
  plt = _pyplot()
  metrics = ("egf_1", "egf_2", "grad_norm")
  fig, axs = plt.subplots(1, len(metrics), figsize=(4.2 * len(metrics), 3.6), squeeze=False)
  for ax, metric in zip(axs[0], metrics):
    for kind, marker, color in (("sparse", "o", "tab:orange"), ("dense", "s", "tab:blue")):
      rs = [r for r in records if r.get("kind") == kind
            and r["hidden_costs"].get(metric) is not None]
      ax.scatter([r["hidden_costs"][metric] for r in rs], [r["accuracy"]["top1"] for r in rs],
                 marker=marker, color=color, label=kind)
      for r in rs:
        ax.annotate(r["setting"]["name"], (r["hidden_costs"][metric], r["accuracy"]["top1"]),
                    fontsize=5, alpha=0.7)
    c = table.get(metric, {})
    ax.set_title(f"{metric}: Pearson {_fmt(c.get('pearson_r'), 2)}, "
                 f"Spearman {_fmt(c.get('spearman_rho'), 2)}", fontsize=9)
    ax.set_xlabel(f"{metric} (mean over training)")
    ax.set_ylabel("test top-1")
    ax.legend(fontsize=7)
  return _save_figure(fig, workdir, "egf_vs_accuracy.png")


def plot_flow_traces(workdir: str, records: Sequence[Mapping[str, Any]]) -> str | None:
  """EGF_2 at each logged evaluation through training, per variant."""
  if not records:
    return None
  plt = _pyplot()
  fig, ax = plt.subplots(figsize=(6.0, 3.8))
  for r in records:
    trace = r.get("flow_trace") or {}
    ax.plot(trace.get("steps", []), trace.get("egf_2", []),
            linestyle="-" if r.get("kind") == "sparse" else "--", marker=".",
            label=r["variant"])
  ax.set_yscale("log")
  ax.set_xlabel("step")
  ax.set_ylabel("EGF_2 (population mean)")
  ax.legend(fontsize=5, ncol=2)
  return _save_figure(fig, workdir, "egf_traces.png")


def render_study_section(analysis: Mapping[str, Any], records: Sequence[Mapping[str, Any]],
                         config: Any, figures: Mapping[str, str | None]) -> str:
  """Markdown: the verdict in plain words, the per-setting table, the correlations."""
  comp, corr, pair = analysis["comparison"], analysis["correlations"], analysis["pair"] or {}
  s = config.study
  seeds = _seeds(config)
  members = int(config.population.members)
  lines = ["# Sparse vs dense at equal capacity, and effective gradient flow", ""]
  if pair:
    lines += [f"Wide-sparse MLP (hidden {pair['sparse_hidden']}, random masks fixed from "
              f"init, nominal sparsity {s.sparsity}) vs narrow-dense MLP (hidden "
              f"{pair['dense_hidden']}), with equal active weights in every layer: "
              + ", ".join(f"`{n}` {pair['dense_active'][n]}" for n in pair["layer_names"])
              + f". Dataset `{config.dataset.name}`, {config.train.steps} steps, batch "
              f"{config.train.batch_size}, populations of {members} members (init seeds "
              f"{seeds['init']}, data seeds {seeds['data']}; member i of the sparse and the "
              f"dense population share seeds). Sparse init scaling: `{s.init_scaling}`.", ""]
  verdict = comp["verdict"]
  n, wins = comp["n"], comp["wins"]
  statement = {
      "yes": "**Yes: sparse beat dense at equal capacity here.**",
      "not significantly": "**Not significantly: sparse was ahead in most settings, but the "
                           "advantage is not statistically significant.**",
      "no": "**No: sparse did not beat dense at equal capacity here.**",
  }.get(verdict, f"**{verdict}.**")
  lines += ["## Did sparse beat dense?", "",
            f"{statement} Sparse had the higher mean top-1 in {wins} of {n} settings "
            f"(mean difference {_pct(comp['mean_difference'])} percentage points); the "
            f"one-sided Welch t-test over members (H0: sparse <= dense) rejects at 0.05 in "
            f"{comp['significant']} of {n} settings; one-sided Wilcoxon signed-rank across "
            f"settings p = {_fmt(comp['wilcoxon_p'])}.", "",
            "| Setting | Sparse top-1 % | Dense top-1 % | Sparse - dense (pp) | p (sparse > dense) "
            "| EGF_1 sparse / dense | EGF_2 sparse / dense | Grad norm sparse / dense |",
            "|---|---|---|---|---|---|---|---|"]
  for r in comp["settings"]:
    lines.append(
        f"| {r['setting']} | {_pct(r['sparse_top1'])} ± {_pct(r['sparse_std'])} | "
        f"{_pct(r['dense_top1'])} ± {_pct(r['dense_std'])} | {_pct(r['difference'])} | "
        f"{_fmt(r['p_sparse_better'])} | {_fmt(r['sparse_egf_1'])} / {_fmt(r['dense_egf_1'])} | "
        f"{_fmt(r['sparse_egf_2'])} / {_fmt(r['dense_egf_2'])} | "
        f"{_fmt(r['sparse_grad_norm'])} / {_fmt(r['dense_grad_norm'])} |")
  lines.append("")
  if figures.get("accuracy"):
    lines += [f"![accuracy]({os.path.basename(figures['accuracy'])})", ""]
  evaluations = sorted({r.get("egf_evaluations") for r in records if r.get("egf_evaluations")})
  lines += ["## Does EGF predict accuracy better than the gradient norm?", "",
            "EGF_p = (1/L) Σ_l ||g_l ⊙ m_l||_p over the L kernels (g: a member's minibatch "
            "gradient, m: its masks; "
            + ("each layer divided by its active weights" if s.egf_normalize
               else "no division by the number of active weights")
            + f"), averaged over {', '.join(map(str, evaluations)) or '–'} evaluations spread "
            "through training and over members. Gradient norm: global L2 norm of the whole "
            "gradient (all parameters); masked gradient norm: the same with pruned positions "
            "zeroed. Correlation with final top-1 across variants (two-sided p-values):", "",
            "| Variants | Metric | n | Pearson r | p | Spearman ρ | p |",
            "|---|---|---|---|---|---|---|"]
  for subset, table in corr.items():
    for metric in FLOW_METRICS:
      c = table[metric]
      lines.append(f"| {subset} | {metric} | {c['n']} | {_fmt(c['pearson_r'])} | "
                   f"{_fmt(c['pearson_p'])} | {_fmt(c['spearman_rho'])} | "
                   f"{_fmt(c['spearman_p'])} |")
  lines.append("")
  for subset, table in corr.items():
    better = table["better"]
    if better is None:
      lines.append(f"- {subset} variants: too few points (or constant values) to compare.")
      continue
    best = table["best_egf"]
    basis = ("|Spearman ρ|" if table["basis"] == "spearman_rho" else
             "|Pearson r|, as the Spearman rankings tie")
    lines.append(
        f"- {subset} variants: **{'EGF' if better != 'grad_norm' else 'the plain gradient norm'}"
        f" correlates better here**, by {basis} ({best}: ρ = "
        f"{_fmt(table[best]['spearman_rho'])}, r = {_fmt(table[best]['pearson_r'])}; "
        f"grad_norm: ρ = {_fmt(table['grad_norm']['spearman_rho'])}, r = "
        f"{_fmt(table['grad_norm']['pearson_r'])}). A negative sign means variants with more "
        "gradient flow ended less accurate.")
  lines.append("")
  for key in ("flow", "traces"):
    if figures.get(key):
      lines += [f"![{key}]({os.path.basename(figures[key])})", ""]
  lines += ["Masks do not make dense hardware faster: the wide-sparse network executes its full "
            "dense FLOPs (see the table below: FLOPs and latency vs non-zero params).", ""]
  return "\n".join(lines)


def write_outputs(workdir: str, records: Sequence[Mapping[str, Any]], config: Any,
                  pair: Mapping[str, Any] | None = None) -> dict[str, Any]:
  """analysis.json, the study plots, and report.md (study section + the generic report)."""
  from tradeoffs import report as report_lib  # pylint: disable=g-import-not-at-top
  records = list(records)
  analysis = analyze(records, pair)
  if not workdir_lib.is_writer() or not records:
    return analysis
  workdir_lib.write_json(os.path.join(workdir, ANALYSIS_FILE), analysis)
  figures = {"accuracy": plot_accuracy(workdir, analysis["comparison"], records),
             "flow": plot_flow_vs_accuracy(workdir, records, analysis["correlations"]["all"]),
             "traces": plot_flow_traces(workdir, records)}
  dense = [r["variant"] for r in records if r.get("kind") == "dense"]
  timed = any(r["efficiency"].get("latency_ms") is not None for r in records)
  report_lib.write_report(
      workdir, records, title="Sparse vs dense: the generic trade-off sheet",
      axes=["efficiency.nonzero_params", "efficiency.flops"]
      + (["efficiency.latency_ms"] if timed else []),
      metrics=["accuracy.top1", "accuracy.worst_class", "hidden_costs.egf_2"],
      reference=dense[0] if dense else None)
  with open(os.path.join(workdir, "report.md")) as f:
    generic = f.read()
  text = render_study_section(analysis, records, config, figures)
  workdir_lib.atomic_write_text(os.path.join(workdir, "report.md"), text + "\n" + generic)
  analysis["figures"] = figures
  return analysis
