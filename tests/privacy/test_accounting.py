"""ε of DP-SGD from dp-accounting's RDP accountant, against TF-Privacy's published MNIST
setting, with the RDP → (ε, δ) conversion pinned."""

import math

import pytest

from tradeoffs import privacy
from tradeoffs.privacy import accounting

# TF-Privacy's MNIST DP-SGD tutorial: 60,000 examples, batch 256, σ = 1.12, 60 epochs,
# δ = 1e-5; TF-Privacy computes steps = ceil(epochs · N / batch).
MNIST = dict(noise_multiplier=1.12, sample_rate=256 / 60000,
             steps=math.ceil(60 * 60000 / 256), delta=1e-5)


def test_tf_privacy_orders_are_pinned():
  orders = accounting.ORDERS
  assert len(orders) == 99 + 52 and orders[0] == pytest.approx(1.1)
  assert orders[98] == pytest.approx(10.9) and orders[99] == 12 and orders[-1] == 63


def test_mnist_epsilon_classic_conversion_is_tf_privacys_published_2_92():
  eps = privacy.dp_sgd_epsilon(**MNIST, conversion="classic")
  assert eps == pytest.approx(2.92, abs=0.005)  # 2.9223


def test_mnist_epsilon_default_conversion_is_dp_accountings_2_52():
  assert accounting.DEFAULT_CONVERSION == "improved"
  eps = privacy.dp_sgd_epsilon(**MNIST)
  assert eps == pytest.approx(2.52, abs=0.005)  # 2.5187
  # The same as dp-accounting's own accountant end to end (its default orders too).
  import dp_accounting
  from dp_accounting import rdp
  event = dp_accounting.SelfComposedDpEvent(dp_accounting.PoissonSampledDpEvent(
      MNIST["sample_rate"], dp_accounting.GaussianDpEvent(MNIST["noise_multiplier"])),
      MNIST["steps"])
  own = rdp.RdpAccountant(list(accounting.ORDERS))
  own.compose(event)
  assert eps == pytest.approx(own.get_epsilon(MNIST["delta"]), rel=1e-12)


def test_classic_is_never_below_improved_and_more_noise_is_more_private():
  values = [privacy.dp_sgd_epsilon(s, 0.01, 1000, 1e-5) for s in (0.8, 1.0, 2.0, 4.0)]
  assert values == sorted(values, reverse=True)
  for s in (0.8, 1.0, 2.0):
    assert privacy.dp_sgd_epsilon(s, 0.01, 1000, 1e-5, conversion="classic") >= \
        privacy.dp_sgd_epsilon(s, 0.01, 1000, 1e-5)
  assert privacy.dp_sgd_epsilon(1.0, 0.01, 2000, 1e-5) > privacy.dp_sgd_epsilon(
      1.0, 0.01, 1000, 1e-5)


def test_edge_cases():
  assert privacy.dp_sgd_epsilon(0.0, 0.1, 10, 1e-5) == math.inf  # Clipping only.
  assert privacy.dp_sgd_epsilon(1.0, 0.1, 0, 1e-5) == 0.0


@pytest.mark.parametrize("args,match", [
    ((-0.1, 0.1, 10, 1e-5), r"noise_multiplier=-0.1 must be a finite number >= 0"),
    ((1.0, 0.0, 10, 1e-5), r"sample_rate=0.0 must be a number in \(0, 1\]"),
    ((1.0, 1.5, 10, 1e-5), r"sample_rate=1.5 must be"),
    ((1.0, 0.1, -1, 1e-5), r"steps=-1 must be an integer >= 0"),
    ((1.0, 0.1, 10, 1.0), r"delta=1.0 must be a number in \(0, 1\)"),
    ((1.0, 0.1, 10, 0.0), r"delta=0.0 must be"),
])
def test_bad_arguments(args, match):
  with pytest.raises(ValueError, match=match):
    privacy.dp_sgd_epsilon(*args)
  with pytest.raises(ValueError, match="conversion='tight' is unknown"):
    privacy.dp_sgd_epsilon(1.0, 0.1, 10, 1e-5, conversion="tight")
