"""Keyword retrieval: BM25 (bm25s) over stemmed, stopword-free tokens.

A large saved index is memory-mapped rather than read into memory (``MMAP_BYTES``): at 1M chunks
its arrays take 0.9 GiB, which a map leaves to the page cache, and warm searches take the same
time either way (BENCHMARKS.md, "BM25 at 1M and 10M chunks").
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import bm25s
import numpy as np

# Saved score arrays larger than this (about 300k chunks) are memory-mapped when loaded. At 1M
# chunks (874 MiB) a map loads in 0.3 s instead of 4.3 s and holds 83 MiB instead of 0.9 GiB, for
# the same warm search time (BENCHMARKS.md); below this, reading them in costs little memory and
# spares the first searches their page faults.
MMAP_BYTES = 256 * 2**20


@lru_cache(maxsize=1)
def _stemmer() -> Any:
    import Stemmer

    return Stemmer.Stemmer("english")


def terms(text: str) -> list[str]:
    """Text as the keyword index sees it: lowercased, stopwords dropped, stemmed.

    A query must be cut into tokens exactly as :meth:`KeywordSearcher.build` cut the indexed
    texts, so this never changes without a new index format. The answerers compare words with
    :func:`rag.text.words.content_words`, which is free to change.

    >>> terms("What did Blinken say about China's policies?")
    ['what', 'did', 'blinken', 'say', 'about', 'china', 'polici']
    """
    tokens = bm25s.tokenize([text], stopwords="en", stemmer=_stemmer(), return_ids=False,
                            show_progress=False)
    return list(tokens[0])


class KeywordSearcher:
    """A BM25 index whose document ids are chunk rows."""

    def __init__(self, retriever: bm25s.BM25) -> None:
        self.retriever = retriever

    @classmethod
    def build(cls, texts: Sequence[str]) -> "KeywordSearcher":
        stem = _stemmer()
        tokens = bm25s.tokenize(list(texts), stopwords="en", stemmer=stem, show_progress=False)
        retriever = bm25s.BM25()
        retriever.index(tokens, show_progress=False)
        return cls(retriever)

    @classmethod
    def load(cls, path: Path, mmap_above: int = MMAP_BYTES) -> "KeywordSearcher":
        """The index saved in ``path``, memory-mapped when its score arrays (bm25s's
        ``*.csc.index.npy``) take more than ``mmap_above`` bytes.

        >>> KeywordSearcher.load(Path("index/gen-1/bm25"), mmap_above=0)  # doctest: +SKIP
        """
        size = sum(p.stat().st_size for p in path.glob("*.csc.index.npy"))
        return cls(bm25s.BM25.load(str(path), mmap=size > mmap_above, show_progress=False, verbosity=0))

    def save(self, path: Path) -> None:
        self.retriever.save(str(path), show_progress=False)

    def search(self, query: str, k: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` rows with a positive BM25 score, best first, among ``allowed`` rows."""
        wanted = [t for t in terms(query) if t in self.retriever.vocab_dict]
        if not wanted or k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        scores = self.retriever.get_scores(wanted)
        if allowed is not None:
            scores = np.where(allowed, scores, 0.0)
        k = min(k, int(np.count_nonzero(scores > 0)))
        if k == 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        top = np.argpartition(-scores, k - 1)[:k]
        top = top[np.argsort(-scores[top], kind="stable")]
        return top.astype(np.int64), scores[top].astype(np.float32)

    def term_presence(self, words: Sequence[str], rows: np.ndarray) -> np.ndarray:
        """Which of ``words`` (tokens as :func:`terms` makes them) each of ``rows`` contains:
        a bool matrix of ``len(rows)`` x ``len(words)``, read off the index without re-reading
        any text. A word the index has never seen is in no row."""
        present = np.zeros((len(rows), len(words)), dtype=bool)
        for j, word in enumerate(words):
            if word in self.retriever.vocab_dict:
                present[:, j] = self.retriever.get_scores([word])[rows] > 0
        return present
