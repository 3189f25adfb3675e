"""Translation as pure functions over strings: corpus chrF and BLEU (sacrebleu, computed
locally), per-member and per-bucket scores, and the null floors of outputs that do not
translate.

    from tradeoffs.translation import metrics
    metrics.chrf(hypotheses, references)
    metrics.null_floors(sources, ood_sources, references, train_targets)

The models are `tradeoffs.models.transformer`; the data `tradeoffs.data.bible` and the
subwords `tradeoffs.data.subwords`.
"""

from tradeoffs.translation import metrics

__all__ = ["metrics"]
