"""Example selection for training (pure functions; see `prioritize`)."""

from tradeoffs.selection.prioritize import (HISTORY_SIZE, LossHistory, empty_history,
                                            loss_proportional, percentile_of_score, push,
                                            selective_backprop,
                                            selective_backprop_probability, uniform)

METHODS = ("uniform", "selective_backprop", "loss_proportional")


def check_beta(value, name: str = "beta") -> float:
  """β > 0 (finite), else a ValueError naming `name`."""
  ok = (not isinstance(value, bool) and isinstance(value, (int, float))
        and value == value and abs(value) != float("inf") and value > 0)
  if not ok:
    raise ValueError(f"{name}={value!r}: Selective Backprop's β must be a finite number > 0")
  return float(value)


__all__ = ["HISTORY_SIZE", "LossHistory", "METHODS", "check_beta", "empty_history",
           "loss_proportional", "percentile_of_score", "push", "selective_backprop",
           "selective_backprop_probability", "uniform"]
