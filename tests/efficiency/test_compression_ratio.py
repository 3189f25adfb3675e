"""efficiency.compression_ratio on a hand-computed pytree."""

import numpy as np
import pytest

from tradeoffs import efficiency


def test_compression_ratio_hand_computed():
  params = {"kernel": np.array([[1.0, 0.0], [0.0, 2.0]]), "bias": np.array([1.0, 1.0])}
  # Dense: 6 entries x 32 bits; pruned zeros are free: 4 non-zeros x 32 bits.
  assert efficiency.compression_ratio(params) == pytest.approx(6 / 4)
  # int4 kernel stored densely (4 x 4 bits, zeros included) + bias 2 x 32 bits.
  bits = {"kernel": 4, "bias": None}
  assert efficiency.compression_ratio(params, bits) == pytest.approx(192 / (16 + 64))
