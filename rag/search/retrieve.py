"""Search over a loaded index: dense, keyword, or both fused by reciprocal rank.

Filters are turned into a boolean mask over chunk rows *before* ranking, so a filtered search
returns k results whenever k matching passages exist, instead of filtering a short list after.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Sequence

import numpy as np

from rag.embed import Embedder, embed_query
from rag.errors import BadQuery, BadSetting
from rag.index.loaded import LoadedIndex
from rag.models import Hit
from rag.settings import SEARCH_MODES, SearchMode
from rag.text.dates import check_range, parse_date

RRF_K = 60
MAX_QUERY_CHARS = 2000
MAX_K = 100


@dataclass(frozen=True)
class SearchFilter:
    """Publication date range (inclusive), sources and chunk rows; an empty filter allows everything.

    ``rows``, when set, keeps only those chunk rows (e.g. the passages that hold one speaker's
    quotes, :mod:`rag.search.speakers`); the other conditions still apply to them.
    """

    since: date | None = None
    until: date | None = None
    sources: tuple[str, ...] = ()
    # Undated articles fail any date filter, except the implicit as-of cutoff of a question:
    # an article of unknown date is not known to be from the future.
    undated: bool = False
    rows: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        check_range(self.since, self.until)

    @property
    def empty(self) -> bool:
        return self.since is None and self.until is None and not self.sources and self.rows is None


def make_filter(since: str | date | None, until: str | date | None,
                source: str | Sequence[str] | None) -> SearchFilter:
    """A checked SearchFilter from loose user input (ISO strings, one source or many)."""
    sources: tuple[str, ...]
    if source is None:
        sources = ()
    elif isinstance(source, str):
        sources = tuple(s for s in source.split(",") if s.strip())
    else:
        sources = tuple(source)
    return SearchFilter(parse_date(since, "since"), parse_date(until, "until"), sources)


def allowed_rows(index: LoadedIndex, flt: SearchFilter) -> np.ndarray | None:
    """A boolean mask of chunk rows that pass the filter, or None for no filter.

    Articles without a date are left out of any date-filtered search. A source matches its
    own domain and subdomains: ``bbc.co.uk`` matches ``news.bbc.co.uk``.
    """
    if flt.empty:
        return None
    if flt.rows is not None:
        mask = np.zeros(index.size, dtype=bool)
        mask[np.asarray(flt.rows, dtype=np.int64)] = True
    else:
        mask = np.ones(index.size, dtype=bool)
    if flt.since or flt.until:
        epoch = date(1970, 1, 1)
        dated = index.days >= 0
        in_range = dated.copy()
        if flt.since:
            in_range &= index.days >= (flt.since - epoch).days
        if flt.until:
            in_range &= index.days <= (flt.until - epoch).days
        mask &= in_range | ~dated if flt.undated else in_range
    if flt.sources:
        wanted = [s.strip().lower().removeprefix("www.") for s in flt.sources if s.strip()]
        codes = [code for code, name in enumerate(index.source_names)
                 if any(name == w or name.endswith("." + w) for w in wanted)]
        mask &= np.isin(index.source_codes, np.asarray(codes, dtype=np.int32))
    return mask


def check_query(query: str, k: int, mode: str) -> str:
    """The stripped query, or a BadQuery/BadSetting that says what is allowed."""
    if not isinstance(query, str) or not query.strip():
        raise BadQuery("the question is empty: ask something, e.g. 'What did Blinken say about China?'")
    if len(query) > MAX_QUERY_CHARS:
        raise BadQuery(f"the question is {len(query)} characters long: the limit is {MAX_QUERY_CHARS}")
    if not 1 <= k <= MAX_K:
        raise BadSetting(f"k={k} is outside 1-{MAX_K}: ask for between 1 and {MAX_K} results")
    if mode not in SEARCH_MODES:
        raise BadSetting(f"mode {mode!r} is not one of {', '.join(SEARCH_MODES)}")
    return query.strip()


def search(index: LoadedIndex, embedder: Embedder, query: str, k: int = 10,
           mode: SearchMode = "hybrid", flt: SearchFilter = SearchFilter()) -> list[Hit]:
    """The top ``k`` passages for ``query``, best first."""
    query = check_query(query, k, mode)
    allowed = allowed_rows(index, flt)
    if allowed is not None and not allowed.any():
        return []
    depth = max(50, 3 * k) if mode == "hybrid" else k
    ranked: list[tuple[int, float]]
    if mode == "keyword":
        rows, scores = index.keyword.search(query, k, allowed)
        ranked = list(zip(rows.tolist(), scores.tolist()))
    elif mode == "dense":
        rows, scores = index.dense.search(embed_query(embedder, query), k, allowed)
        ranked = list(zip(rows.tolist(), scores.tolist()))
    else:
        d_rows, _ = index.dense.search(embed_query(embedder, query), depth, allowed)
        k_rows, _ = index.keyword.search(query, depth, allowed)
        ranked = reciprocal_rank_fusion([d_rows.tolist(), k_rows.tolist()])[:k]
    return hits_for(index, ranked)


def reciprocal_rank_fusion(rankings: list[list[int]], k: int = RRF_K) -> list[tuple[int, float]]:
    """Fuse ranked lists: score(d) = sum over lists of 1 / (k + rank).

    >>> reciprocal_rank_fusion([[1, 2], [2, 3]])[0][0]
    2
    """
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, row in enumerate(ranking, start=1):
            scores[row] = scores.get(row, 0.0) + 1.0 / (k + rank)
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))


def hits_for(index: LoadedIndex, ranked: list[tuple[int, float]]) -> list[Hit]:
    """Hits for ``(row, score)`` pairs, ranked in the order given."""
    chunks = index.store.chunks_by_rows([row for row, _ in ranked])
    articles = index.store.articles(sorted({aid for _, aid in chunks.values()}))
    return [
        Hit(chunk=chunks[row][0], score=float(score), article=articles[chunks[row][1]], rank=rank)
        for rank, (row, score) in enumerate(ranked, start=1)
    ]
