"""Fast/slow model selection by expected benefit against cost (Ghosh et al., IROS 2021).

    from tradeoffs import cascades
    gain = cascades.gain(fast_cal_logits, slow_cal_logits, cal_labels)   # ℓ_fast − ℓ_slow
    edges, means = cascades.fit_binned(cascades.features(fast_cal_logits)["confidence"], gain)
    g_hat = cascades.predict_binned(edges, means, cascades.features(fast_logits)["confidence"])
    invoke = cascades.policy(g_hat, delta_cost=0.2, alpha=1.0, beta=0.5)  # α·ĝ > β·Δc
    logits = cascades.combine(fast_logits, slow_logits, invoke)

Pure numpy functions over arrays; see `tradeoffs.cascades.policy` for the formulation.
"""

from tradeoffs.cascades.policy import ESTIMATORS
from tradeoffs.cascades.policy import FEATURES
from tradeoffs.cascades.policy import LOSSES
from tradeoffs.cascades.policy import check_calibration
from tradeoffs.cascades.policy import check_costs
from tradeoffs.cascades.policy import check_grid
from tradeoffs.cascades.policy import combine
from tradeoffs.cascades.policy import cost_loss_curve
from tradeoffs.cascades.policy import estimate_gain
from tradeoffs.cascades.policy import expected_cost
from tradeoffs.cascades.policy import feature_matrix
from tradeoffs.cascades.policy import features
from tradeoffs.cascades.policy import fit_binned
from tradeoffs.cascades.policy import fit_regression
from tradeoffs.cascades.policy import gain
from tradeoffs.cascades.policy import invoke_at_rate
from tradeoffs.cascades.policy import loss
from tradeoffs.cascades.policy import policy
from tradeoffs.cascades.policy import predict_binned
from tradeoffs.cascades.policy import predict_regression
from tradeoffs.cascades.policy import random_at_rate
from tradeoffs.cascades.policy import summary
