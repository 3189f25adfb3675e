"""The speech encoder: CTC loss and greedy decoding against hand-computed cases, the squeeze
round trip, the feature-length and parameter-count closed forms, and bad input."""

import math

import editdistance
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from tradeoffs import models
from tradeoffs.models import speech


def test_ctc_loss_matches_the_hand_computed_path_sums():
  # Two classes: digit 0 and the blank (1). Frame probabilities p(0) = 0.6, 0.3, 0.5.
  p0 = np.array([0.6, 0.3, 0.5])
  logits = jnp.log(jnp.stack([p0, 1 - p0], -1))[None]  # [1, 3, 2]
  # "0" in 3 frames: the alignments that collapse to "0" are 0bb, b0b, bb0, 00b, b00, 000
  # (0b0 collapses to "00").
  q = 1 - p0
  one = (p0[0] * q[1] * q[2] + q[0] * p0[1] * q[2] + q[0] * q[1] * p0[2]
         + p0[0] * p0[1] * q[2] + q[0] * p0[1] * p0[2] + p0[0] * p0[1] * p0[2])
  # "00" in 3 frames: the repeat needs a blank between, so 0b0 is the only path.
  two = p0[0] * q[1] * p0[2]
  loss = speech.ctc_loss(jnp.concatenate([logits, logits]),
                         jnp.array([[0, -1], [0, 0]]), blank=1)
  np.testing.assert_allclose(loss, [-math.log(one), -math.log(two)], rtol=1e-5)


def test_greedy_decoding_merges_repeats_and_drops_blanks():
  blank = 10
  frames = [[blank, 3, 3, blank, 3, 5, 5, blank], [7, 7, 7, 7, 7, 7, 7, 7],
            [blank] * 8]
  logits = jax.nn.one_hot(jnp.array(frames), 11) * 5.0
  labels, lengths = speech.greedy_ctc_decode(logits, blank)
  assert speech.strings(labels) == [(3, 3, 5), (7,), ()]
  np.testing.assert_array_equal(lengths, [3, 1, 0])
  assert np.all(np.asarray(labels)[0, 3:] == -1)


def test_edit_distance_agrees_with_the_editdistance_library():
  assert speech.edit_distance("123", "1243") == 1
  assert speech.edit_distance("", "12") == 2 and speech.edit_distance("12", "21") == 2
  rng = np.random.default_rng(0)
  for _ in range(50):
    a = list(rng.integers(0, 4, rng.integers(0, 7)))
    b = list(rng.integers(0, 4, rng.integers(0, 7)))
    assert speech.edit_distance(a, b) == editdistance.eval(a, b), (a, b)
  errors, lengths = speech.error_counts([[1, 2, -1], [3, -1, -1]], [[1, 2, 4], [5, 6, -1]])
  np.testing.assert_array_equal(errors, [1, 2])
  np.testing.assert_array_equal(lengths, [3, 2])


def test_feature_length_is_the_valid_conv_length():
  # 15,440 samples: (15440-10)//5+1 = 3087, then //2 stages: 1543, 771, 385, 192, 96, 48.
  assert speech.feature_length(15440) == 48
  assert speech.feature_length(16000) == 49
  assert speech.receptive_field() == 400  # wav2vec 2.0's 25 ms at 16 kHz
  for extractor in speech.EXTRACTORS:
    net = speech.FeatureExtractor(extractor, conv_channels=2)
    shapes = jax.eval_shape(lambda x: net.init_with_output(jax.random.key(0), x)[0],
                            jnp.zeros((1, 15440)))
    assert shapes.shape == (1, 48, 2 if extractor == "original" else 16)


@pytest.mark.parametrize("squeeze", [1, 2, 4])
def test_squeeze_then_upsample_preserves_the_sequence_length(squeeze):
  x = jax.random.normal(jax.random.key(0), (2, 48, 16))
  sq = speech.Squeeze(squeeze, kernel=5, groups=4)
  squeezed, variables = sq.init_with_output(jax.random.key(1), x)
  assert squeezed.shape == (2, 48 // squeeze, 16)
  up = speech.Upsample(squeeze)
  out, _ = up.init_with_output(jax.random.key(2), squeezed)
  assert out.shape == x.shape
  if squeeze > 1:  # The pooled residual is the mean of each window.
    zero = jax.tree.map(jnp.zeros_like, variables)
    np.testing.assert_allclose(sq.apply(zero, x), x.reshape(2, -1, squeeze, 16).mean(2),
                               atol=1e-6)
  net = models.get("speech_ctc", num_classes=11, conv_channels=2, d_model=16, num_heads=2,
                   num_layers=1, ffn_dim=16, squeeze=squeeze, pos_conv_groups=4)
  logits = jax.eval_shape(lambda w: net.init_with_output(jax.random.key(0), w)[0],
                          jnp.zeros((3, 15440)))
  assert logits.shape == (3, 48, 11)


def test_a_squeeze_that_does_not_divide_the_feature_length_is_refused():
  net = models.get("speech_ctc", num_classes=11, conv_channels=2, d_model=16, num_heads=2,
                   num_layers=1, ffn_dim=16, squeeze=2, pos_conv_groups=4)
  with pytest.raises(ValueError, match="squeeze factor 2 does not divide the feature length "
                                       "49 frames"):
    net.init(jax.random.key(0), jnp.zeros((1, 16000)))


@pytest.mark.parametrize("extractor,squeeze,pointwise", [("original", 1, 1),
                                                         ("compact", 4, 1),
                                                         ("compact", 2, 2)])
def test_parameter_counts_in_closed_form(extractor, squeeze, pointwise):
  kwargs = dict(extractor=extractor, conv_channels=4, compact_pointwise=pointwise,
                d_model=32, num_layers=2, ffn_dim=64, squeeze=squeeze, pos_conv_kernel=7,
                pos_conv_groups=8)
  net = models.get("speech_ctc", num_classes=11, num_heads=4, **kwargs)
  variables = models.abstract_init(net, (1, 15440))
  counted = sum(int(np.prod(x.shape)) for x in jax.tree.leaves(variables["params"]))
  assert counted == speech.param_count_formula(num_classes=11, **kwargs)
  # The compact extractor's pointwise convs: l·(2c)² + ... exist only there.
  has_pointwise = any("pointwise" in k for k in variables["params"]["extractor"])
  assert has_pointwise == (extractor == "compact")
  assert models.count_params("speech_ctc", dict(num_heads=4, **kwargs), num_classes=11,
                             input_shape=(15440,)) == counted


def test_bad_hyperparameters_are_refused():
  with pytest.raises(ValueError, match="extractor must be one of"):
    models.get("speech_ctc", num_classes=11, extractor="tiny")
  with pytest.raises(ValueError, match="pos_conv_groups"):
    models.get("speech_ctc", num_classes=11, d_model=36, num_heads=4, pos_conv_groups=8)
  with pytest.raises(ValueError, match="waveforms must be"):
    net = models.get("speech_ctc", num_classes=11)
    net.init(jax.random.key(0), jnp.zeros((1, 8, 8, 3)))


def test_the_trainer_ctc_loss_and_its_exact_match_accuracy():
  from tradeoffs.train import losses
  blank = 10
  frames = [[blank, 3, 3, blank, 3, 5, 5, blank], [7, 7, blank, 2, 2, 2, 2, 2],
            [1, 2, 3, 4, 5, blank, blank, blank]]
  logits = jax.nn.one_hot(jnp.array(frames), 11) * 5.0
  labels = jnp.array([[3, 3, 5, -1], [7, 1, -1, -1], [1, 2, 3, 4]])
  assert losses.get("ctc") is losses.ctc
  # Right, wrong digit, one digit too many (1 2 3 4 5 against 1 2 3 4).
  assert float(losses.accuracy_for(losses.ctc)(logits, labels)) == pytest.approx(1 / 3)
  np.testing.assert_allclose(losses.ctc(logits, labels),
                             speech.ctc_loss(logits, labels, blank=10))
