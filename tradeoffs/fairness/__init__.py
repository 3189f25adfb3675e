"""Per-group and per-class metrics, fairness gaps, bootstrap intervals, fairness losses.

Pure functions of labels, predictions and group ids (jnp arrays); fairlearn-style names.
"""

from tradeoffs.fairness import disparity
from tradeoffs.fairness.bootstrap import Interval
from tradeoffs.fairness.bootstrap import bootstrap_ci
from tradeoffs.fairness.groups import Intersection
from tradeoffs.fairness.groups import as_group_ids
from tradeoffs.fairness.groups import intersect
from tradeoffs.fairness.losses import abs_correlation
from tradeoffs.fairness.losses import fpr_gap
from tradeoffs.fairness.losses import mmd_squared
from tradeoffs.fairness.losses import threshold_at_positive_rate
from tradeoffs.fairness.metrics import METRICS
from tradeoffs.fairness.metrics import RateMetric
from tradeoffs.fairness.metrics import accuracy
from tradeoffs.fairness.metrics import as_mapping
from tradeoffs.fairness.metrics import balanced_accuracy
from tradeoffs.fairness.metrics import by_group
from tradeoffs.fairness.metrics import count
from tradeoffs.fairness.metrics import demographic_parity_difference
from tradeoffs.fairness.metrics import demographic_parity_ratio
from tradeoffs.fairness.metrics import difference
from tradeoffs.fairness.metrics import difference_of
from tradeoffs.fairness.metrics import equal_opportunity_difference
from tradeoffs.fairness.metrics import equalized_odds_difference
from tradeoffs.fairness.metrics import equalized_odds_ratio
from tradeoffs.fairness.metrics import false_negative_rate
from tradeoffs.fairness.metrics import false_positive_rate
from tradeoffs.fairness.metrics import fnr
from tradeoffs.fairness.metrics import fpr
from tradeoffs.fairness.metrics import get_metric
from tradeoffs.fairness.metrics import per_class_accuracy
from tradeoffs.fairness.metrics import ratio
from tradeoffs.fairness.metrics import ratio_of
from tradeoffs.fairness.metrics import register_metric
from tradeoffs.fairness.metrics import selection_rate
from tradeoffs.fairness.metrics import summary
from tradeoffs.fairness.metrics import tnr
from tradeoffs.fairness.metrics import tpr
from tradeoffs.fairness.metrics import true_negative_rate
from tradeoffs.fairness.metrics import true_positive_rate
from tradeoffs.fairness.metrics import worst_class_accuracy
from tradeoffs.fairness.metrics import worst_group_accuracy
