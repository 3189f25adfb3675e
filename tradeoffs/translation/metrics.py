"""Translation scores (sacrebleu, computed locally) and their null floors."""

from __future__ import annotations

import collections
from typing import Any, Sequence

import numpy as np
import sacrebleu


def chrf(hypotheses: Sequence[str], references: Sequence[str]) -> float:
  return float(sacrebleu.corpus_chrf(list(hypotheses), [list(references)]).score)


def bleu(hypotheses: Sequence[str], references: Sequence[str]) -> float:
  return float(sacrebleu.corpus_bleu(list(hypotheses), [list(references)]).score)


def score(hypotheses: Sequence[Sequence[str]], ood: Sequence[Sequence[str]],
          refs: Sequence[str], buckets: np.ndarray, num_buckets: int) -> dict[str, Any]:
  """Per-member chrF/BLEU (in-domain, out-of-domain) and chrF per frequency bucket."""
  out: dict[str, Any] = {"chrf": [], "bleu": [], "ood_chrf": [], "ood_bleu": [],
                         "bucket_chrf": []}
  for hyp, hyp_ood in zip(hypotheses, ood):
    out["chrf"].append(chrf(hyp, refs))
    out["bleu"].append(bleu(hyp, refs))
    out["ood_chrf"].append(chrf(hyp_ood, refs))
    out["ood_bleu"].append(bleu(hyp_ood, refs))
    out["bucket_chrf"].append([chrf([hyp[i] for i in np.flatnonzero(buckets == b)],
                                    [refs[i] for i in np.flatnonzero(buckets == b)])
                               for b in range(num_buckets)])
  return out


def null_floors(sources: Sequence[str], ood_sources: Sequence[str], refs: Sequence[str],
                train_targets: Sequence[str]) -> dict[str, Any]:
  """chrF of outputs that do not translate: each source copied (in-domain, out-of-domain)
  and the most frequent training target (ties: the first seen) for every sentence."""
  mode = collections.Counter(train_targets).most_common(1)[0][0]
  return {"copy_source_chrf": chrf(sources, refs),
          "copy_source_ood_chrf": chrf(ood_sources, refs),
          "most_frequent_target_chrf": chrf([mode] * len(refs), refs),
          "most_frequent_target": mode}

