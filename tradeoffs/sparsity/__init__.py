"""Sparsity: masks as pytrees, distributions, schedules, an optax wrapper, EGF, SC-SDC.

Pure functions over pytrees; no Flax. Masks are boolean pytrees shaped like the params, with
all-True masks on leaves that are not prunable.
"""

from tradeoffs.sparsity.capacity import same_capacity_pair
from tradeoffs.sparsity.distributions import erk
from tradeoffs.sparsity.distributions import layer_sparsities
from tradeoffs.sparsity.distributions import register_distribution
from tradeoffs.sparsity.distributions import uniform
from tradeoffs.sparsity.gradient_flow import effective_gradient_flow
from tradeoffs.sparsity.gradient_flow import gradient_norm
from tradeoffs.sparsity.masks import apply_masks
from tradeoffs.sparsity.masks import channel_masks
from tradeoffs.sparsity.masks import default_filter
from tradeoffs.sparsity.masks import magnitude_masks
from tradeoffs.sparsity.masks import nm_masks
from tradeoffs.sparsity.masks import path_name
from tradeoffs.sparsity.masks import prunable_names
from tradeoffs.sparsity.masks import random_masks
from tradeoffs.sparsity.masks import score_masks
from tradeoffs.sparsity.masks import summarize_sparsity
from tradeoffs.sparsity.population import measured_sparsity
from tradeoffs.sparsity.population import population_masks
from tradeoffs.sparsity.population import prune_population
from tradeoffs.sparsity.schedules import Schedule
from tradeoffs.sparsity.schedules import fixed
from tradeoffs.sparsity.schedules import gradual
from tradeoffs.sparsity.schedules import one_shot
from tradeoffs.sparsity.structured import UnitLayer
from tradeoffs.sparsity.structured import apply_unit_masks
from tradeoffs.sparsity.structured import kept_count
from tradeoffs.sparsity.structured import kept_units
from tradeoffs.sparsity.structured import prune_units_population
from tradeoffs.sparsity.structured import slice_units
from tradeoffs.sparsity.structured import unit_masks
from tradeoffs.sparsity.structured import unit_scores
from tradeoffs.sparsity.wrapper import MaskedState
from tradeoffs.sparsity.wrapper import get_masks
from tradeoffs.sparsity.wrapper import masked
from tradeoffs.sparsity.wrapper import replace_masks

apply = apply_masks  # DESIGN.md's Colab sketch spells it sparsity.apply.
