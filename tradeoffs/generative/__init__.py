"""Small generative priors of images that give bits per dimension (for input
simplification, Schirrmeister et al. 2022; PAPERS.md §11).

    flow = generative.RealNVP(dim=64, layers=4, hidden=64)
    params = flow.init(key, x_flat)["params"]
    bits = generative.bits_per_dim(flow, params, images, levels=17, key=key)   # [B]
"""

from tradeoffs.generative.flow import RealNVP
from tradeoffs.generative.flow import bits_per_dim
from tradeoffs.generative.flow import check_levels
from tradeoffs.generative.flow import fit
from tradeoffs.generative.flow import dequantized_bits_per_dim
from tradeoffs.generative.flow import logit_transform
from tradeoffs.generative.flow import standard_normal_log_prob
from tradeoffs.generative import condense
from tradeoffs.generative import simplify

__all__ = ["RealNVP", "bits_per_dim", "check_levels", "condense", "dequantized_bits_per_dim", "fit",
           "logit_transform", "simplify", "standard_normal_log_prob"]
