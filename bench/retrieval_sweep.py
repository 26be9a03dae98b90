"""Sweep fusion, recency and diversity settings offline on RealTime QA (retrieval only).

Dense and BM25 candidate lists are computed once per question (as-of cutoff applied), then
each variant re-ranks them in memory, so dozens of settings cost one pass over the questions.

    .venv/bin/python bench/retrieval_sweep.py --index /work/bench/rtqa --limit 300
"""

from __future__ import annotations

import argparse
import itertools
import json
from datetime import date
from pathlib import Path

import numpy as np

from rag import Pipeline, Settings
from rag.embed.embedder import embed_query
from rag.evaluate import contains, read_questions
from rag.search.retrieve import SearchFilter, allowed_rows

DEPTH = 100


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--index", required=True)
    ap.add_argument("--questions", default="../shared/datasets/realtimeqa-2022/questions.jsonl")
    ap.add_argument("--limit", type=int, default=300)
    ap.add_argument("--out", default="bench/results/retrieval_sweep.json")
    args = ap.parse_args()
    pipeline = Pipeline(Settings(index_dir=Path(args.index)))
    index = pipeline.index()
    questions, _ = read_questions(args.questions)
    questions = questions[: args.limit]
    rows_article = {}
    rows_sig: dict[int, frozenset] = {}
    cache = []
    for q in questions:
        as_of = date.fromisoformat(q.date)
        mask = allowed_rows(index, SearchFilter(None, as_of, (), undated=True))
        d_rows, d_scores = index.dense.search(embed_query(pipeline.embedder, q.question), DEPTH, mask)
        k_rows, k_scores = index.keyword.search(q.question, DEPTH, mask)
        union = sorted(set(d_rows.tolist()) | set(k_rows.tolist()))
        chunks = index.store.chunks_by_rows(union)
        good = {r for r in union if contains(chunks[r][0].text, q.answer)}
        for r in union:
            rows_article[r] = chunks[r][1]
            rows_sig[r] = frozenset(chunks[r][0].text.casefold().split())
        age = {r: (as_of.toordinal() - index.days[r] - 719163) if index.days[r] >= 0 else None for r in union}
        cache.append((d_rows.tolist(), k_rows.tolist(), good, age))

    def collapse(ranked: list[int], threshold: float) -> list[int]:
        kept: list[int] = []
        for r in ranked:
            sig = rows_sig[r]
            if all(len(sig & rows_sig[o]) / max(len(sig | rows_sig[o]), 1) < threshold for o in kept):
                kept.append(r)
            if len(kept) >= 20:
                break
        return kept

    def run(w_dense: float, rrf_k: int, weight: float, half_life: float, window: int, per_article: int,
            dedup: float = 0.0) -> dict:
        found = []
        for d_rows, k_rows, good, age in cache:
            score: dict[int, float] = {}
            for rank, r in enumerate(d_rows, 1):
                score[r] = score.get(r, 0) + w_dense / (rrf_k + rank)
            for rank, r in enumerate(k_rows, 1):
                score[r] = score.get(r, 0) + (2 - w_dense) / (rrf_k + rank)
            if weight:
                for r in score:
                    a = age[r]
                    if a is None:
                        boost = 0.0
                    elif a <= window:
                        boost = 1.0
                    else:
                        boost = 0.5 ** ((a - window) / half_life)
                    score[r] *= 1 + weight * boost
            ranked = sorted(score, key=lambda r: -score[r])
            if per_article:
                seen: dict[str, int] = {}
                kept = []
                for r in ranked:
                    a = rows_article[r]
                    if seen.get(a, 0) < per_article:
                        kept.append(r)
                        seen[a] = seen.get(a, 0) + 1
                ranked = kept
            if dedup:
                ranked = collapse(ranked, dedup)
            first = next((i for i, r in enumerate(ranked[:20], 1) if r in good), None)
            found.append(first)
        n = len(found)
        return {f"R@{k}": round(sum(1 for f in found if f and f <= k) / n, 3) for k in (1, 5, 10, 20)}

    results = []
    grid = itertools.product([0.6, 1.0], [60], [0.0, 0.5, 1.0], [7, 30], [7], [0], [0.0, 0.5, 0.7, 0.85])
    for w_dense, rrf_k, weight, half_life, window, per_article, dedup in grid:
        if weight == 0 and half_life != 7:
            continue
        r = run(w_dense, rrf_k, weight, half_life, window, per_article, dedup)
        r.update(w_dense=w_dense, weight=weight, half_life=half_life, window=window, per_article=per_article,
                 dedup=dedup)
        results.append(r)
        print(r, flush=True)
    for name, d, k in (("dense only", 2.0, 0), ("keyword only", 0.0, 0)):
        r = run(d, 60, 0, 7, 7, 0)
        r.update(variant=name)
        results.append(r)
        print(r)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
