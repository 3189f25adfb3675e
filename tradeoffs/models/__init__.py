"""Flax Linen models behind a string-keyed registry.

    net = models.get("resnet20", num_classes=10, width_multiplier=0.5)
    variables = models.init(net, jax.random.key(0), (1, 32, 32, 3))
    logits = net.apply(variables, images, train=False)
    logits, updates = net.apply(variables, images, train=True, rngs={"dropout": key},
                                mutable=["batch_stats"])

Every model takes images [B, H, W, C], returns float32 logits [B, num_classes], has `dtype`
(computation dtype) and `width_multiplier` (scales every hidden width, rounded, at least 1).
BatchNorm uses the `batch_stats` collection (momentum 0.9, epsilon 1e-5) and running averages
when train=False; dropout draws from the `dropout` rng only when train=True.
"""

from tradeoffs.models.layers import activation_names, register_activation, scale_width
from tradeoffs.models.registry import accepted_kwargs, get, names, register
# Importing the model modules registers them.
from tradeoffs.models.contrastive import EncoderNet
from tradeoffs.models.resnet import CifarResNet, ImageNetResNet
from tradeoffs.models.simple import CNN, MLP
from tradeoffs.models.speech import SpeechCTC
from tradeoffs.models.transformer import EncoderStack, Seq2SeqTransformer, TransformerEncoder
from tradeoffs.models.multitask import MultiTaskMLP
from tradeoffs.models.utils import abstract_init, describe, init, param_count
from tradeoffs.models.wide_resnet import WideResNet
from tradeoffs.models.widths import (FAMILIES, WIDTH_FIELDS, Family, base_width, count_params,
                                     division_info, division_names, family, model_facts,
                                     width_keyword)

__all__ = [
    "CNN", "CifarResNet", "EncoderNet", "ImageNetResNet", "MLP", "MultiTaskMLP", "WideResNet",
    "abstract_init",
    "accepted_kwargs", "activation_names", "describe", "get", "init", "names", "param_count",
    "register", "register_activation", "scale_width", "WIDTH_FIELDS", "base_width",
    "width_keyword", "FAMILIES", "Family", "count_params", "division_info", "division_names",
    "family", "model_facts", "EncoderStack", "Seq2SeqTransformer", "TransformerEncoder",
]

