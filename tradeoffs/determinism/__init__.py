"""Determinism: noise-source switches, run matrices, run-to-run metrics, hardware fairness.

Modules: `settings` (Setting, presets, subprocess environments, XLA flag probes),
`matrix` (run_matrix, load_runs), `metrics` (churn, std, per-class std and its shuffled-class
null, weight distance, flips, cost of determinism), `hardware` (group sensitivity, fairness
violation, per-group gradient norms, also at equal group size, and Hessian eigenvalues,
mitigation penalties). The common names are re-exported here.
"""

from __future__ import annotations

from tradeoffs.determinism.hardware import (
    EqualSizeComparison, boundary_alignment_penalty, equal_size_indices, excess_loss_bound,
    fairness_violation, gradient_norm_variance_penalty, group_sensitivity,
    per_example_cross_entropy, per_group_grad_norms, per_group_grad_norms_equal_size,
    per_group_mean, per_group_top_hessian_eigenvalue, top_hessian_eigenvalue)
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
    current_setting, implementation_context, needs_subprocess, preset, seeds_for_repeat,
    subprocess_env, validate_xla_flags)
