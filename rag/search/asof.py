"""Asking as of a date: what a question may see, and which passages it prefers.

A question asked as of a day never sees later articles. Its own words narrow that further
(:mod:`rag.search.timeframe`): a named period ("in March 2023") is a hard filter, a relative one
("this week") re-ranks towards recent articles instead, because a hard 7-30 day window lost
answers that sit in older background articles (measured on RealTime QA, BENCHMARKS.md).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from typing import Sequence

import numpy as np

from rag.embed import Embedder
from rag.index.loaded import LoadedIndex
from rag.models import Hit
from rag.search.rerank import PassageRanker, rerank
from rag.search.retrieve import SearchFilter, search
from rag.search.timeframe import TimeFrame, time_frame
from rag.settings import SearchMode

# How many passages to rank before the date-aware re-rank cuts them to k.
RERANK_DEPTH = 30
# How much a passage inside a question's time window gains (x(1 + weight)); tuned on RealTime QA.
RECENCY_WEIGHT = 0.5


def as_of_filter(question: str, as_of: date, user: SearchFilter) -> tuple[SearchFilter, TimeFrame]:
    """The filter a question asked on ``as_of`` searches under, and its time frame.

    The user's own filter (dates, sources, rows) always holds. Undated articles pass only when
    neither the user nor the question named a period: an article of unknown date is not known to
    be from the future.
    """
    frame = time_frame(question, as_of)
    cutoff = min(d for d in (user.until, as_of, frame.until if frame.hard else None) if d)
    starts = [d for d in (user.since, frame.since if frame.hard else None) if d]
    explicit = bool(user.since or user.until or frame.hard)
    flt = SearchFilter(max(starts) if starts else None, cutoff, user.sources, undated=not explicit,
                       rows=user.rows)
    return flt, frame


def search_as_of(index: LoadedIndex, embedder: Embedder, question: str, k: int, as_of: date,
                 user: SearchFilter, mode: SearchMode = "hybrid",
                 ranker: PassageRanker | None = None) -> list[Hit]:
    """The top ``k`` passages for ``question`` as of ``as_of``: cutoff, time frame, then the
    learned ranker over a deep pool when one is given (hybrid mode), else the recency re-rank."""
    flt, frame = as_of_filter(question, as_of, user)
    if ranker is not None and mode == "hybrid":
        return rerank(index, embedder, ranker, question, k, as_of, flt, frame)
    hits = search(index, embedder, question, k=max(k, RERANK_DEPTH), mode=mode, flt=flt)
    if frame.prefer_recent:
        assert flt.until is not None  # the as-of day is always a cutoff
        hits = recency_boost(hits, frame.since, flt.until.isoformat(), RECENCY_WEIGHT)
    return hits[:k]


def recency_boost(hits: Sequence[Hit], since: date | None, until: str, weight: float) -> list[Hit]:
    """Re-rank ``hits`` towards articles published in (or near) the window ending ``until``.

    Inside the window an article gains ``weight`` (score x (1 + weight)); before it, the gain
    decays with a half-life of the window's own length (30 days when there is no window).
    """
    end = np.datetime64(until, "D")
    start = np.datetime64(since, "D") if since is not None else None
    half_life_days = float((end - start) / np.timedelta64(1, "D")) if start is not None else 30.0
    half_life_days = max(half_life_days, 1.0)
    rescored = []
    for hit in hits:
        boost = 0.0
        if hit.article.published_at:
            day = np.datetime64(hit.article.published_at[:10], "D")
            if start is not None and start <= day <= end:
                boost = 1.0
            else:
                gap = float(((start if start is not None else end) - day) / np.timedelta64(1, "D"))
                boost = float(0.5 ** (max(gap, 0.0) / half_life_days))
        rescored.append((hit.score * (1.0 + weight * boost), hit))
    rescored.sort(key=lambda item: -item[0])
    return [replace(hit, score=score, rank=i) for i, (score, hit) in enumerate(rescored, start=1)]
