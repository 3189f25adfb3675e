"""Extracts verse-aligned English–Spanish pairs from Debian's SWORD Bible modules.

    apt-get install -y sword-text-web sword-text-sparv sword-text-kjv
    pip install pysword
    python make_bible_en_es.py [--sword /usr/share/sword] [--out bible_en_es.tsv.gz]

A prepare-time tool only: loading the vendored file needs neither pysword nor SWORD.
Text: OSIS markup is read raw (`clean=False`); each <note>...</note> (translators' footnotes)
becomes a space, every other tag is dropped, whitespace collapses (pysword's own cleaning
removes notes without a space and glues the neighbouring words).

Rows (tab-separated, gzip, sorted by canonical verse order): book, chapter, verse, split,
web (World English Bible, the source), rv1909 (Reina-Valera 1909, the target), kjv (King
James Version, the out-of-domain source of the same verse). Kept: verses non-empty in all
three with at most MAX_SOURCE_WORDS words in the WEB text. Split by verse: the first byte
of sha256("book.chapter.verse") picks test (< 13), valid (< 26), else train (~5%/5%/90%).
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import re

MAX_SOURCE_WORDS = 40
MODULES = {"web": "engWEB2015eb", "rv1909": "spaRV1909eb", "kjv": "engKJV2006eb"}
_NOTE = re.compile(r"<note\b.*?</note>", re.S)
_TAG = re.compile(r"<[^>]*>")
_SPACE = re.compile(r"\s+")


def clean(osis: str) -> str:
  """OSIS verse markup -> plain text: notes become a space, tags vanish."""
  text = _NOTE.sub(" ", osis)
  text = _TAG.sub("", text)
  return _SPACE.sub(" ", text).strip()


def split_of(book: str, chapter: int, verse: int) -> str:
  first = hashlib.sha256(f"{book}.{chapter}.{verse}".encode()).digest()[0]
  return "test" if first < 13 else "valid" if first < 26 else "train"


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--sword", default="/usr/share/sword")
  parser.add_argument("--out", default="bible_en_es.tsv.gz")
  args = parser.parse_args()
  from pysword.modules import SwordModules  # prepare-time dependency only
  modules = SwordModules(args.sword)
  modules.parse_modules()
  bibles = {k: modules.get_bible_from_module(v) for k, v in MODULES.items()}
  structure = bibles["kjv"].get_structure()  # protocanon: the books all three share
  rows, total = [], 0
  for testament in structure.get_books().values():
    for book in testament:
      for chapter in range(1, book.num_chapters + 1):
        for verse in range(1, book.chapter_lengths[chapter - 1] + 1):
          texts = {}
          for key, bible in bibles.items():
            try:
              texts[key] = clean(bible.get(books=[book.osis_name], chapters=[chapter],
                                           verses=[verse], clean=False))
            except (IndexError, KeyError, ValueError):
              texts[key] = ""
          if not all(texts.values()):
            continue
          total += 1
          if len(texts["web"].split()) > MAX_SOURCE_WORDS:
            continue
          rows.append("\t".join([book.osis_name, str(chapter), str(verse),
                                 split_of(book.osis_name, chapter, verse),
                                 texts["web"], texts["rv1909"], texts["kjv"]]))
  with gzip.GzipFile(args.out, "wb", mtime=0) as f:  # mtime=0: byte-identical reruns
    f.write(("\n".join(rows) + "\n").encode("utf-8"))
  print(f"{total} aligned verses, {len(rows)} with <= {MAX_SOURCE_WORDS} source words "
        f"-> {args.out}")


if __name__ == "__main__":
  main()
