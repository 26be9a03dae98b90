"""Re-rank cached dense and BM25 candidates of every RealTime QA question in many ways (recall only).

    .venv/bin/python bench/retrieval_variants.py --index bench-out/rtqa/idx-f32

Per question, the dense and BM25 top 300 (as-of cutoff applied) are computed once; each variant
then re-ranks them in memory and is scored by answer recall@k (gold string in the passage text).
Variants: fusion depth and k, list weights, article-level scores, per-article caps, a boost for
an article's first passage, pseudo-relevance feedback (Rocchio) and counting the title as part
of the passage. The harness fuses the top 50 of each list, where ``Pipeline.ask`` fuses the
top 90 and applies hard month filters, so its baseline reads a little higher than `rag eval`.

Output: a table, and bench/results/retrieval_variants.json.
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path
from typing import Callable

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RTQA_QUESTIONS, environment, finish, log, table  # noqa: E402

from rag import Pipeline, Settings  # noqa: E402
from rag.embed.embedder import embed_query  # noqa: E402
from rag.evaluate import read_questions  # noqa: E402
from rag.index.loaded import read_manifest  # noqa: E402
from rag.search.retrieve import SearchFilter, allowed_rows  # noqa: E402
from rag.search.timeframe import time_frame  # noqa: E402

DEPTH = 300
Ranker = Callable[[dict], list[int]]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--backend", default="torch", help="query embedder backend (default torch)")
    args = ap.parse_args()

    pipeline = Pipeline(Settings(index_dir=args.index, backend=args.backend))
    index = pipeline.index()
    generation = args.index / read_manifest(args.index)["generation"]
    db = sqlite3.connect(f"file:{generation / 'store.sqlite'}?mode=ro", uri=True)
    texts = dict(db.execute("SELECT id, text FROM articles"))
    titles = dict(db.execute("SELECT id, title FROM articles"))
    published = {a: p for a, p in db.execute("SELECT id, published_at FROM articles")}
    chunk: dict[int, tuple[str, str, int]] = {
        row: (texts[aid][start:end], aid, position)
        for row, aid, start, end, position in db.execute("SELECT row, article_id, start, end, position FROM chunks")}
    vectors = np.load(generation / "vectors.npy").astype(np.float32)
    day_of_row = np.array([date.fromisoformat(published[chunk[r][1]][:10]).toordinal()
                           if published[chunk[r][1]] else -1 for r in range(len(vectors))])

    questions, _ = read_questions(RTQA_QUESTIONS)
    log(f"caching candidates of {len(questions)} questions")
    cache = []
    for q in questions:
        as_of = date.fromisoformat(q.date)
        mask = allowed_rows(index, SearchFilter(None, as_of, (), undated=True))
        qv = embed_query(pipeline.embedder, q.question)
        d_rows, _ = index.dense.search(qv, DEPTH, mask)
        k_rows, _ = index.keyword.search(q.question, DEPTH, mask)
        cache.append({"q": q, "as_of": as_of, "qv": qv, "frame": time_frame(q.question, as_of),
                      "d": [int(r) for r in d_rows], "k": [int(r) for r in k_rows]})

    def recency(scores: dict[int, float], c: dict, weight: float = 0.5) -> dict[int, float]:
        """The shipped re-rank (rag.search.asof.recency_boost), on row scores."""
        frame = c["frame"]
        if not frame.prefer_recent:
            return scores
        half_life = max((frame.until - frame.since).days, 1) if frame.since else 30.0
        out = {}
        for row, score in scores.items():
            boost = 0.0
            if published[chunk[row][1]]:
                day = date.fromisoformat(published[chunk[row][1]][:10])
                if frame.since and frame.since <= day <= frame.until:
                    boost = 1.0
                else:
                    boost = 0.5 ** (max(((frame.since or frame.until) - day).days, 0) / half_life)
            out[row] = score * (1 + weight * boost)
        return out

    def rrf(lists: list[list[int]], depth: int = 50, k: int = 60, weights: tuple[float, ...] = (1.0, 1.0)
            ) -> dict[int, float]:
        scores: dict[int, float] = defaultdict(float)
        for weight, ranking in zip(weights, lists):
            for rank, row in enumerate(ranking[:depth], 1):
                scores[row] += weight / (k + rank)
        return scores

    def ranked(scores: dict[int, float]) -> list[int]:
        return sorted(scores, key=lambda r: (-scores[r], r))

    def fused(c: dict, depth: int = 50, k: int = 60, weights: tuple[float, ...] = (1.0, 1.0),
              keep: int = 30, dense: list[int] | None = None) -> dict[int, float]:
        scores = rrf([dense if dense is not None else c["d"], c["k"]], depth, k, weights)
        return recency(dict(sorted(scores.items(), key=lambda x: (-x[1], x[0]))[:keep]), c)

    def shipped(c: dict) -> list[int]:
        return ranked(fused(c))

    def article_score(beta: float, how: str) -> Ranker:
        def rank(c: dict) -> list[int]:
            scores = recency(rrf([c["d"], c["k"]], 100), c)
            per_article: dict[str, list[float]] = defaultdict(list)
            for row, score in scores.items():
                per_article[chunk[row][1]].append(score)
            agg = {a: (max(v) if how == "max" else sum(v)) for a, v in per_article.items()}
            return ranked({r: s + beta * agg[chunk[r][1]] for r, s in scores.items()})
        return rank

    def capped(per_article: int) -> Ranker:
        def rank(c: dict) -> list[int]:
            seen: dict[str, int] = defaultdict(int)
            out = []
            for row in ranked(fused(c, depth=100, keep=100)):
                if seen[chunk[row][1]] < per_article:
                    out.append(row)
                    seen[chunk[row][1]] += 1
            return out
        return rank

    def lede(boost: float) -> Ranker:
        def rank(c: dict) -> list[int]:
            scores = rrf([c["d"], c["k"]], 50)
            top = dict(sorted(scores.items(), key=lambda x: (-x[1], x[0]))[:30])
            top = {r: s * (1 + boost * (chunk[r][2] == 0)) for r, s in top.items()}
            return ranked(recency(top, c))
        return rank

    def feedback(beta: float, n: int, source: str) -> Ranker:
        def rank(c: dict) -> list[int]:
            q = c["qv"] + beta * vectors[c[source][:n]].mean(axis=0)
            sims = vectors @ (q / np.linalg.norm(q))
            sims[day_of_row > c["as_of"].toordinal()] = -9.0
            return ranked(fused(c, dense=[int(r) for r in np.argsort(-sims)[:50]]))
        return rank

    variants: list[tuple[str, Ranker, bool]] = [
        ("shipped: RRF of the top 50 of each, recency re-rank", shipped, False),
        ("RRF over the top 100", lambda c: ranked(recency(rrf([c["d"], c["k"]], 100), c)), False),
        ("RRF over the top 300", lambda c: ranked(recency(rrf([c["d"], c["k"]], 300), c)), False),
        *[(f"RRF k = {k}", (lambda c, k=k: ranked(fused(c, depth=100, k=k, keep=100))), False) for k in (10, 30, 100)],
        ("keyword 1.2, dense 0.8", lambda c: ranked(fused(c, depth=100, weights=(0.8, 1.2))), False),
        ("keyword 0.8, dense 1.2", lambda c: ranked(fused(c, depth=100, weights=(1.2, 0.8))), False),
        *[(f"article score (max) x{b}", article_score(b, "max"), False) for b in (0.5, 1.0, 2.0)],
        ("article score (sum) x0.5", article_score(0.5, "sum"), False),
        *[(f"at most {n} passages per article", capped(n), False) for n in (1, 2, 3)],
        *[(f"first passage x{1 + b}", lede(b), False) for b in (0.1, 0.25, 0.5)],
        *[(f"dense feedback from the {src} top {n}, beta {b}", feedback(b, n, src[0]), False)
          for src in ("dense", "keyword") for b in (0.5, 1.0) for n in (3, 5)],
        ("title counted as part of the passage", shipped, True),
    ]
    rows, results = [], []
    for name, rank, with_title in variants:
        found = []
        for c in cache:
            gold = c["q"].answer.casefold()
            first = None
            for i, row in enumerate(rank(c)[:20], 1):
                text, aid, _ = chunk[row]
                if gold in ((titles[aid] + "\n" + text) if with_title else text).casefold():
                    first = i
                    break
            found.append(first)
        recall = {k: round(sum(1 for f in found if f and f <= k) / len(found), 3) for k in (1, 5, 10, 20)}
        results.append({"variant": name, "recall_at": recall})
        rows.append([name, recall[1], recall[5], recall[10], recall[20]])
        log(f"{name}: {recall}")
    table(rows, ["variant", "R@1", "R@5", "R@10", "R@20"])
    finish("retrieval_variants", {"index": str(args.index), "questions": len(cache),
                                  "environment": environment(), "variants": results})


if __name__ == "__main__":
    main()
