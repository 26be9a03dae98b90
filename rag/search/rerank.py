"""Learned re-ranking: a deep pool of candidates from both retrievers, re-ordered by a model
trained on labelled news questions.

Fusion by rank (RRF) sees only where a passage ranked in each list. The ranker also sees both
scores and their gap to the best, how much of the question the passage and its title cover, how
old the article is on the day the question is asked, whether the passage has the shape of the
answer the question wants (a number for "how many", a name for "who"), how many names and
numbers it adds that the question does not have, and how strongly its article is retrieved as a
whole. It is a LightGBM lambdarank model: ``bench/train_ranker.py`` trains it on RealTime QA
2024-2025, and BENCHMARKS.md reports it on RealTime QA 2022, which it never saw.

A model is a folder of ``model.txt`` and ``card.json`` (:mod:`rag.booster`), checked against
:data:`FEATURES` on load.
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Sequence

import numpy as np

from rag.booster import Booster
from rag.embed import Embedder, embed_query
from rag.errors import ModelError
from rag.index.keyword import terms
from rag.index.loaded import LoadedIndex
from rag.models import Hit
from rag.search.retrieve import RRF_K, SearchFilter, allowed_rows, hits_for
from rag.search.timeframe import TimeFrame
from rag.text.cues import answer_cue, asks_reason_or_manner, novelty, question_words
from rag.text.dates import stored_day
from rag.text.words import QUESTION_WORDS, stems

# How deep each retriever's list goes into the pool. On RealTime QA 2024-2025, two thirds of the
# questions whose answer was in none of the fused top 20 had it further down one of the lists.
POOL_DEPTH = 100
RANKER_FORMAT = 1
# The model that ships with the package.
DEFAULT_RANKER = Path(__file__).resolve().parent / "ranker"

FEATURES: tuple[str, ...] = (
    "dense_score",        # cosine similarity to the question (0 when only BM25 found it)
    "dense_gap",          # best dense score in the pool minus this one
    "dense_rank_log",     # log(rank) in the dense list; log(depth + 1) when absent
    "keyword_score_rel",  # BM25 score / the pool's best (0 when only dense found it)
    "keyword_rank_log",   # log(rank) in the BM25 list; log(depth + 1) when absent
    "rrf",                # the fused score hybrid search ranks by
    "both_lists",         # found by both retrievers
    "coverage",           # share of the question's content words in the passage
    "title_coverage",     # share of them in the article's title
    "age_days_log",       # log(1 + days from publication to the as-of date); 0 when undated
    "undated",
    "in_window",          # published inside the window the question's words name ("this week")
    "wants_recent",       # the question says "this week", "recently", ...
    "cue_match",          # the passage has the shape of the wanted answer (see rag.text.cues)
    "has_cue",            # the question asks for a shape at all
    "novelty",            # names/numbers the question lacks (0, 0.5 or 1)
    "reason_question",    # a why/how question, answered by a cause, not a name
    "position_log",       # log(1 + the passage's position in its article)
    "article_passages",   # how many of the pool's passages come from the same article
    "article_best_dense",  # the best dense score among them
    "length_log",         # log of the passage's length in words
)

_QUESTION_STEMS = stems(QUESTION_WORDS)


@dataclass(frozen=True)
class Candidate:
    """A pooled passage with what each retriever said of it (None: not in that list)."""

    row: int
    hit: Hit
    dense: float | None
    dense_rank: int | None
    keyword: float | None
    keyword_rank: int | None


def candidate_pool(index: LoadedIndex, embedder: Embedder, question: str, flt: SearchFilter,
                   depth: int = POOL_DEPTH) -> list[Candidate]:
    """The union of the dense and BM25 top ``depth`` under ``flt``, in fused (RRF) order."""
    allowed = allowed_rows(index, flt)
    if allowed is not None and not allowed.any():
        return []
    d_rows, d_scores = index.dense.search(embed_query(embedder, question), depth, allowed)
    k_rows, k_scores = index.keyword.search(question, depth, allowed)
    dense = {int(r): (float(s), i) for i, (r, s) in enumerate(zip(d_rows, d_scores), start=1)}
    keyword = {int(r): (float(s), i) for i, (r, s) in enumerate(zip(k_rows, k_scores), start=1)}
    fused: dict[int, float] = defaultdict(float)
    for ranks in (dense, keyword):
        for row, (_, rank) in ranks.items():
            fused[row] += 1.0 / (RRF_K + rank)
    ranked = sorted(fused.items(), key=lambda item: (-item[1], item[0]))
    out = []
    for hit, (row, _) in zip(hits_for(index, ranked), ranked):
        d, k = dense.get(row), keyword.get(row)
        out.append(Candidate(row, hit, d[0] if d else None, d[1] if d else None,
                             k[0] if k else None, k[1] if k else None))
    return out


def features(index: LoadedIndex, question: str, as_of: date, frame: TimeFrame,
             pool: Sequence[Candidate], depth: int = POOL_DEPTH) -> np.ndarray:
    """One row of :data:`FEATURES` per candidate, as float32."""
    if not pool:
        return np.zeros((0, len(FEATURES)), dtype=np.float32)
    wanted = [t for t in dict.fromkeys(terms(question)) if t not in _QUESTION_STEMS]
    present = index.keyword.term_presence(wanted, np.asarray([c.row for c in pool], dtype=np.int64))
    coverage = present.mean(axis=1) if wanted else np.zeros(len(pool))
    wanted_set = set(wanted)
    title_cover: dict[str, float] = {}
    cue = answer_cue(question)
    asked = question_words(question)
    reason = asks_reason_or_manner(question)
    best_dense = max((c.dense for c in pool if c.dense is not None), default=0.0)
    best_keyword = max((c.keyword for c in pool if c.keyword is not None), default=0.0) or 1.0
    per_article: dict[str, list[float]] = defaultdict(list)
    for c in pool:
        per_article[c.hit.article.id].append(c.dense if c.dense is not None else 0.0)
    absent = math.log(depth + 1)
    rows = []
    for i, c in enumerate(pool):
        article = c.hit.article
        if article.id not in title_cover:
            title_cover[article.id] = (len(wanted_set & set(terms(article.title))) / len(wanted_set)
                                       if wanted_set else 0.0)
        day = stored_day(article.published_at)
        age = max((as_of - day).days, 0) if day else None
        in_window = bool(day and frame.since is not None and frame.since <= day <= frame.until)
        text = c.hit.chunk.text
        rows.append((
            c.dense or 0.0,
            best_dense - (c.dense or 0.0),
            math.log(c.dense_rank) if c.dense_rank else absent,
            (c.keyword or 0.0) / best_keyword,
            math.log(c.keyword_rank) if c.keyword_rank else absent,
            c.hit.score,  # the fused (RRF) score candidate_pool ranked by
            float(c.dense_rank is not None and c.keyword_rank is not None),
            float(coverage[i]),
            title_cover[article.id],
            math.log1p(age) if age is not None else 0.0,
            float(day is None),
            float(in_window),
            float(frame.prefer_recent),
            float(bool(cue and cue.search(text))),
            float(cue is not None),
            novelty(text, asked, terms),
            float(reason),
            math.log1p(c.hit.chunk.position),
            len(per_article[article.id]),
            max(per_article[article.id]),
            math.log(max(len(text.split()), 1)),
        ))
    return np.asarray(rows, dtype=np.float32)


class PassageRanker(Booster):
    """A trained model that scores pooled passages; higher is better."""

    @classmethod
    def load(cls, folder: Path | None = None) -> PassageRanker:  # type: ignore[override]
        """The model in ``folder`` (None: the one that ships); ModelError saying what is wrong
        when it cannot be used."""
        fix = "retrain it with 'python bench/train_ranker.py', or use --ranker fusion"
        model = Booster.load(folder or DEFAULT_RANKER, "passage ranker", RANKER_FORMAT, FEATURES, fix)
        depth = model.card.get("pool_depth", POOL_DEPTH)
        if type(depth) is not int or depth < 1:
            raise ModelError(f"the passage ranker in {model.folder} has pool_depth {depth!r}, not a whole "
                             f"number of passages: {fix}")
        return cls(model.booster, model.card, model.folder)

    @property
    def pool_depth(self) -> int:
        """How many passages of each retriever it was trained to re-rank."""
        return int(self.card.get("pool_depth", POOL_DEPTH))

    def score(self, matrix: np.ndarray) -> np.ndarray:
        """One score per row of :func:`features`."""
        return self.predict(matrix)


def rerank(index: LoadedIndex, embedder: Embedder, ranker: PassageRanker, question: str, k: int,
           as_of: date, flt: SearchFilter, frame: TimeFrame) -> list[Hit]:
    """The top ``k`` of the candidate pool by the ranker's score, ranked from 1. The pool is as
    deep as the one the ranker was trained on (its card's ``pool_depth``)."""
    depth = ranker.pool_depth
    pool = candidate_pool(index, embedder, question, flt, depth)
    scores = ranker.score(features(index, question, as_of, frame, pool, depth))
    order = sorted(range(len(pool)), key=lambda i: (-scores[i], i))[:k]
    return [replace(pool[i].hit, score=float(scores[i]), rank=n) for n, i in enumerate(order, start=1)]

