"""Determinism: noise-source switches, run matrices, run-to-run metrics, hardware fairness.

Modules: `settings` (Setting, presets, subprocess environments, XLA flag probes, and the
study's setting grammar `parse_setting`/`study_settings`), `matrix` (run_matrix, load_runs,
the subprocess command and environment), `metrics` (churn, std, per-class std and its
shuffled-class null, weight distance, flips, cost of determinism), `analysis` (a matrix's
runs measured, compared run r with run r, sensitivity Δ / ξ overall and per run),
`hardware` (group sensitivity, fairness violation, per-group gradient norms, also at equal
group size, and Hessian eigenvalues, mitigation penalties). The common names are
re-exported here. Nothing here trains or builds a model: the study that runs the matrix is
`tradeoffs.studies.determinism`.
"""

from __future__ import annotations

from tradeoffs.determinism.hardware import (
    EqualSizeComparison, boundary_alignment_penalty, equal_size_indices, excess_loss_bound,
    fairness_violation, gradient_norm_variance_penalty, group_column, group_sensitivity,
    penalty_fn, per_example_cross_entropy, per_group_grad_norms,
    per_group_grad_norms_equal_size, per_group_mean, per_group_top_hessian_eigenvalue,
    top_hessian_eigenvalue)
from tradeoffs.determinism.matrix import (
    RunFailedError, RunResult, Runs, load_final_params, load_predictions, load_runs,
    result_workdirs, run_matrix, step_times)
from tradeoffs.determinism.metrics import (
    PerClassStdNull, accuracy_per_run, bitwise_identical, churn, determinism_cost, flatten_runs,
    flip_counts, modal_predictions, pairwise_churn, pairwise_weight_distance,
    per_class_accuracy, per_class_accuracy_std, per_class_std_null, per_group_error_rate_std,
    per_group_error_rates, predicted_labels, summary, top1_std, unstable_examples,
    weight_distance)
from tradeoffs.determinism.settings import (
    ALGORITHMIC_SOURCES, BACKENDS, PRESETS, Setting, backend_available, config_overrides,
    current_setting, implementation_context, needs_subprocess, parse_setting, preset,
    seeds_for_repeat, study_settings, subprocess_env, validate_xla_flags)
