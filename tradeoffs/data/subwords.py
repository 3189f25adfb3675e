"""A small, deterministic byte-pair-encoding vocabulary (Sennrich et al. 2016), written here.

    vocab = subwords.train_bpe(train_sources + train_targets, num_merges=2000)
    ids = vocab.encode("In the beginning")      # [..., EOS]
    vocab.decode(ids) == "In the beginning"

Words are whitespace-separated; each is split into characters with an end-of-word marker on
the last one, so decoding restores the text up to collapsed whitespace (punctuation stays
attached, as sacrebleu's detokenized input expects). Training repeatedly merges the most
frequent adjacent pair, counted over word types weighted by frequency; ties go to the
lexicographically smallest pair, so the vocabulary is a function of the text alone.
Ids: 0 PAD, 1 BOS, 2 EOS, 3 UNK (a character unseen in training), then the training
characters (sorted), then one id per merge.
"""

from __future__ import annotations

import collections
import dataclasses
import functools
import hashlib
import json
from typing import Iterable, Sequence

import numpy as np

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<s>", "</s>", "<unk>")
END = "</w>"


def _word_symbols(word: str) -> tuple[str, ...]:
  return tuple(word[:-1]) + (word[-1] + END,)


def _word_counts(texts: Iterable[str]) -> collections.Counter:
  counts: collections.Counter = collections.Counter()
  for text in texts:
    counts.update(text.split())
  return counts


@dataclasses.dataclass(frozen=True)
class Vocabulary:
  symbols: tuple[str, ...]        # id -> symbol (specials first)
  merges: tuple[tuple[str, str], ...]

  def __post_init__(self):
    object.__setattr__(self, "_ids", {s: i for i, s in enumerate(self.symbols)})
    object.__setattr__(self, "_ranks", {m: r for r, m in enumerate(self.merges)})
    object.__setattr__(self, "_cache", {})

  def __len__(self) -> int:
    return len(self.symbols)

  @property
  def digest(self) -> str:
    """A short fingerprint: checkpoints record it, and a mismatch with the data is refused."""
    blob = json.dumps([self.symbols, self.merges]).encode()
    return hashlib.sha256(blob).hexdigest()[:16]

  def _segment(self, word: str) -> tuple[str, ...]:
    if word in self._cache:
      return self._cache[word]
    parts = list(_word_symbols(word))
    while len(parts) > 1:
      ranked = [(self._ranks.get((a, b), len(self._ranks)), i)
                for i, (a, b) in enumerate(zip(parts, parts[1:]))]
      rank, i = min(ranked)
      if rank == len(self._ranks):
        break
      parts[i:i + 2] = [parts[i] + parts[i + 1]]
    self._cache[word] = tuple(parts)
    return self._cache[word]

  def tokens(self, text: str) -> list[str]:
    return [p for word in text.split() for p in self._segment(word)]

  def encode(self, text: str, eos: bool = True) -> list[int]:
    ids = [self._ids.get(p, UNK) for p in self.tokens(text)]
    return ids + [EOS] if eos else ids

  def decode(self, ids: Sequence[int]) -> str:
    """Text of ids up to the first EOS; PAD and BOS are skipped, UNK shows as '<unk>'."""
    out = []
    for i in ids:
      i = int(i)
      if i == EOS:
        break
      if i in (PAD, BOS):
        continue
      out.append(self.symbols[i] if 0 <= i < len(self.symbols) else SPECIALS[UNK])
    return "".join(out).replace(END, " ").strip()

  def encode_batch(self, texts: Sequence[str], max_length: int) -> np.ndarray:
    """int32 [N, max_length]: each text's ids with EOS, PAD-filled.

    Raises:
      ValueError: a text encodes to more than `max_length` ids (names the first such).
    """
    out = np.zeros((len(texts), max_length), np.int32)
    for n, text in enumerate(texts):
      ids = self.encode(text)
      if len(ids) > max_length:
        raise ValueError(f"text {n} encodes to {len(ids)} tokens, more than the model's "
                         f"max_length {max_length}: {text[:60]!r}")
      out[n, :len(ids)] = ids
    return out


def train_bpe(texts: Iterable[str], num_merges: int) -> Vocabulary:
  """Learns up to `num_merges` merges from `texts` (fewer when no pair occurs twice)."""
  if isinstance(num_merges, bool) or not isinstance(num_merges, int) or num_merges < 0:
    raise ValueError(f"num_merges must be an int >= 0, got {num_merges!r}")
  counts = _word_counts(texts)
  words = [list(_word_symbols(w)) for w in counts]
  freqs = list(counts.values())
  alphabet = sorted({s for w in words for s in w})
  pairs: collections.Counter = collections.Counter()
  where: dict[tuple[str, str], set[int]] = collections.defaultdict(set)
  for n, (w, f) in enumerate(zip(words, freqs)):
    for pair in zip(w, w[1:]):
      pairs[pair] += f
      where[pair].add(n)
  merges = []
  for _ in range(num_merges):
    if not pairs:
      break
    best_count = max(pairs.values())
    if best_count < 2:
      break
    best = min(p for p, c in pairs.items() if c == best_count)
    merges.append(best)
    merged = best[0] + best[1]
    for n in sorted(where.pop(best, ())):
      w, f = words[n], freqs[n]
      for pair in zip(w, w[1:]):  # remove this word's old pairs
        pairs[pair] -= f
        if pairs[pair] <= 0:
          del pairs[pair]
      i, new = 0, []
      while i < len(w):
        if i + 1 < len(w) and (w[i], w[i + 1]) == best:
          new.append(merged)
          i += 2
        else:
          new.append(w[i])
          i += 1
      words[n] = new
      for pair in zip(new, new[1:]):
        pairs[pair] += f
        where[pair].add(n)
    pairs.pop(best, None)
  symbols = SPECIALS + tuple(alphabet) + tuple(a + b for a, b in merges)
  # A merge can recreate an existing symbol (e.g. 'a'+'b</w>' and 'ab'+'</w>' cannot, but
  # two merge paths to one string can): keep the first id of each symbol.
  symbols = tuple(dict.fromkeys(symbols))
  return Vocabulary(symbols=symbols, merges=tuple(merges))


def token_frequencies(vocab: Vocabulary, texts: Iterable[str]) -> np.ndarray:
  """Occurrences [len(vocab)] of each id in the encoded `texts` (EOS excluded)."""
  counts = np.zeros(len(vocab), np.int64)
  for text in texts:
    np.add.at(counts, vocab.encode(text, eos=False), 1)
  return counts


def frequency_buckets(source_ids: np.ndarray, frequencies: np.ndarray,
                      num_buckets: int) -> np.ndarray:
  """Bucket [N] in 0..num_buckets-1 of each sentence by the mean training frequency of its
  real source tokens (0 = rarest); quantile edges, so buckets are near-equal in size and
  partition the sentences.

  Raises:
    ValueError: num_buckets < 1.
  """
  if isinstance(num_buckets, bool) or not isinstance(num_buckets, int) or num_buckets < 1:
    raise ValueError(f"num_buckets must be an int >= 1, got {num_buckets!r}")
  source_ids = np.asarray(source_ids)
  real = (source_ids != PAD) & (source_ids != EOS) & (source_ids != BOS)
  mean = (np.where(real, frequencies[source_ids], 0).sum(1)
          / np.maximum(real.sum(1), 1))
  ranks = np.argsort(np.argsort(mean, kind="stable"), kind="stable")
  return (ranks * num_buckets // len(mean)).astype(np.int64)
