"""Keyword retrieval: BM25 (bm25s) over stemmed, stopword-free tokens.

A large saved index is memory-mapped rather than read into memory (``MMAP_BYTES``): at 1M chunks
its arrays take 0.9 GiB, which a map leaves to the page cache, and warm searches take the same
time either way (BENCHMARKS.md, "BM25 at 1M and 10M chunks").

An index of more than ``Settings.keyword_shard_rows`` chunks is cut into shards, each one bm25s
index over a run of consecutive chunk rows, built and saved one at a time: building one index
peaks at about 7.9 GB per 1M chunks, so 10M chunks in one would need about 75 GB, and in shards of
1M need what one shard needs. A search scores every shard and merges their top ``k`` on score.
The price is that each shard has its own document frequencies and average length (IDF per
shard): 4 shards of 250k against one index of the same 1M chunks kept 0.971 of the top 10 (0.994
counting a row that ties the 10th score as equal), with the scores of rows both return 0.12%
apart at the median (BENCHMARKS.md, "BM25 at 1M and 10M chunks"). There the chunks were spread
over the shards at random; here a shard is a run of rows in the order the articles were read,
often by date, so a term of one period can have different IDFs in different shards, which was not
measured. Searching 10 shards of 1M took 62 ms at the median.

Layout of a generation's ``bm25/``: the bm25s files themselves when there is one shard (as
before shards existed), else ``shard-0000/``, ``shard-0001/``, ... one folder each; the
manifest's ``keyword_shard_rows`` and chunk count say which (:func:`shard_ranges`).
"""

from __future__ import annotations

from functools import lru_cache
from itertools import islice
from pathlib import Path
from typing import Any, Iterable, Sequence

import bm25s
import numpy as np

# Saved score arrays larger than this (about 300k chunks) are memory-mapped when loaded. At 1M
# chunks (874 MiB) a map loads in 0.3 s instead of 4.3 s and holds 83 MiB instead of 0.9 GiB, for
# the same warm search time (BENCHMARKS.md); below this, reading them in costs little memory and
# spares the first searches their page faults.
MMAP_BYTES = 256 * 2**20
# The folder of each shard of a sharded index, inside its ``bm25/``.
SHARD_FOLDER = "shard-{:04d}"
_END = object()


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


def shard_ranges(rows: int, shard_rows: int | None) -> list[tuple[int, int]]:
    """The chunk rows ``[start, end)`` of each shard of a keyword index over ``rows`` chunks: one
    shard unless there are more than ``shard_rows`` (None: an index from before shards existed).

    >>> shard_ranges(7, 3), shard_ranges(3, 3), shard_ranges(7, None)
    ([(0, 3), (3, 6), (6, 7)], [(0, 3)], [(0, 7)])
    """
    if shard_rows is None or rows <= shard_rows:
        return [(0, rows)]
    return [(lo, min(lo + shard_rows, rows)) for lo in range(0, rows, shard_rows)]


def _folders(path: Path, shards: int) -> list[Path]:
    return [path] if shards == 1 else [path / SHARD_FOLDER.format(i) for i in range(shards)]


class KeywordSearcher:
    """A BM25 index whose document ids are chunk rows: one bm25s index, or shards (bm25s indexes
    over consecutive rows, ``starts[i]`` the first row of ``shards[i]``) searched together."""

    def __init__(self, shards: Sequence[bm25s.BM25], starts: Sequence[int] = (0,)) -> None:
        self.shards = list(shards)
        self.starts = np.asarray(starts, dtype=np.int64)

    @classmethod
    def build(cls, texts: Sequence[str], shard_rows: int | None = None) -> "KeywordSearcher":
        """An index over ``texts`` (row ``i`` is ``texts[i]``), in memory; in shards of
        ``shard_rows`` when there are more. :meth:`write` builds one shard at a time instead."""
        ranges = shard_ranges(len(texts), shard_rows)
        return cls([_bm25(texts[lo:hi]) for lo, hi in ranges], [lo for lo, _ in ranges])

    @classmethod
    def write(cls, path: Path, texts: Iterable[str], shard_rows: int) -> int:
        """Build and save the index over ``texts`` into ``path`` shard by shard, holding one
        shard's texts and tokens at a time (the layout of :func:`shard_ranges`); the rows written.

        >>> KeywordSearcher.write(Path("gen/bm25"), texts, shard_rows=1_000_000)  # doctest: +SKIP
        2500000
        """
        it = iter(texts)
        batch = list(islice(it, shard_rows))
        following = next(it, _END)
        if following is _END:
            cls.build(batch).save(path)
            return len(batch)
        rows = shard = 0
        while True:
            cls.build(batch).save(path / SHARD_FOLDER.format(shard))
            rows += len(batch)
            shard += 1
            batch = []  # this shard's texts go before the next one's are read
            if following is _END:
                return rows
            batch = [following, *islice(it, shard_rows - 1)]
            following = next(it, _END)

    @classmethod
    def load(cls, path: Path, mmap_above: int = MMAP_BYTES,
             ranges: Sequence[tuple[int, int]] | None = None) -> "KeywordSearcher":
        """The index saved in ``path``, memory-mapped when its score arrays (bm25s's
        ``*.csc.index.npy``, of all shards together) take more than ``mmap_above`` bytes.

        ``ranges``: the chunk rows of each shard (:func:`shard_ranges` of the manifest's count and
        shard size), checked against what each holds; None reads one index of any size.

        >>> KeywordSearcher.load(Path("index/gen-1/bm25"), mmap_above=0)  # doctest: +SKIP
        """
        folders = _folders(path, len(ranges) if ranges else 1)
        size = sum(p.stat().st_size for folder in folders for p in folder.glob("*.csc.index.npy"))
        shards = [bm25s.BM25.load(str(folder), mmap=size > mmap_above, show_progress=False, verbosity=0)
                  for folder in folders]
        for folder, shard, (lo, hi) in zip(folders, shards, ranges or ()):
            if shard.scores["num_docs"] != hi - lo:
                raise ValueError(f"keyword index {folder} holds {shard.scores['num_docs']} chunks, "
                                 f"not the {hi - lo} of rows {lo}-{hi}")
        return cls(shards, [lo for lo, _ in ranges] if ranges else [0])

    def save(self, path: Path) -> None:
        for folder, shard in zip(_folders(path, len(self.shards)), self.shards):
            shard.save(str(folder), show_progress=False)

    def search(self, query: str, k: int, allowed: np.ndarray | None = None
               ) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` rows with a positive BM25 score, best first, among ``allowed`` rows. Shards
        are merged on score, a tie going to the lower row."""
        tokens = terms(query)
        found = [_top(shard, tokens, k, None if allowed is None else allowed[lo:lo + shard.scores["num_docs"]])
                 for lo, shard in zip(self.starts.tolist(), self.shards)]
        if len(found) == 1:
            return found[0]
        rows = np.concatenate([r + lo for lo, (r, _) in zip(self.starts, found)])
        scores = np.concatenate([s for _, s in found])
        top = np.lexsort((rows, -scores))[:max(k, 0)]
        return rows[top], scores[top]

    def term_presence(self, words: Sequence[str], rows: np.ndarray) -> np.ndarray:
        """Which of ``words`` (tokens as :func:`terms` makes them) each of ``rows`` contains:
        a bool matrix of ``len(rows)`` x ``len(words)``, read off the index without re-reading
        any text. A word the index (or the row's shard) has never seen is in no row."""
        rows = np.asarray(rows, dtype=np.int64)
        present = np.zeros((len(rows), len(words)), dtype=bool)
        shard_of = np.searchsorted(self.starts, rows, side="right") - 1
        for s, shard in enumerate(self.shards):
            at = np.flatnonzero(shard_of == s)
            if not len(at):
                continue
            local = rows[at] - self.starts[s]
            for j, word in enumerate(words):
                if word in shard.vocab_dict:
                    present[at, j] = shard.get_scores([word])[local] > 0
        return present


def _bm25(texts: Sequence[str]) -> bm25s.BM25:
    tokens = bm25s.tokenize(list(texts), stopwords="en", stemmer=_stemmer(), show_progress=False)
    retriever = bm25s.BM25()
    retriever.index(tokens, show_progress=False)
    return retriever


def _top(retriever: bm25s.BM25, tokens: list[str], k: int, allowed: np.ndarray | None
         ) -> tuple[np.ndarray, np.ndarray]:
    """Top ``k`` rows of one bm25s index (its own row numbers) for the query ``tokens``."""
    wanted = [t for t in tokens if t in retriever.vocab_dict]
    if not wanted or k <= 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    scores = retriever.get_scores(wanted)
    if allowed is not None:
        scores = np.where(allowed, scores, 0.0)
    k = min(k, int(np.count_nonzero(scores > 0)))
    if k == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
    top = np.argpartition(-scores, k - 1)[:k]
    top = top[np.argsort(-scores[top], kind="stable")]
    return top.astype(np.int64), scores[top].astype(np.float32)
