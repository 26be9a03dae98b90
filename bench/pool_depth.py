"""How deep the answer sits in the candidate pool: the ceiling of any re-ranker of that pool.

Every question is asked as the pipeline asks it (as of its date, under its time frame). The pool
is the union of the dense and BM25 top ``--depth``, in fused (RRF) order, as the learned ranker
receives it. For each cut-off k the script reports the share of questions with a passage that
contains the gold answer among the pool's first k, and among the whole pool: what a perfect
re-ranker of a pool that deep could reach at recall@10.

    .venv/bin/python bench/pool_depth.py --index bench-out/rtqa22/idx-i8 \\
        --questions ../shared/datasets/realtimeqa-2022/questions.jsonl --depth 200
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from _common import finish, log  # noqa: E402

from rag.evaluate import contains, read_questions  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.search.asof import as_of_filter  # noqa: E402
from rag.search.rerank import candidate_pool  # noqa: E402
from rag.search.retrieve import SearchFilter  # noqa: E402
from rag.settings import Settings  # noqa: E402

CUTS = (1, 10, 20, 50, 100, 200, 400)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--depth", type=int, default=200, help="each retriever's top N in the pool")
    args = parser.parse_args(argv)

    pipeline = Pipeline(Settings(index_dir=args.index))
    index, embedder = pipeline.index(), pipeline.query_embedder
    questions, _ = read_questions(args.questions)
    first, sizes = [], []
    for n, q in enumerate(questions, start=1):
        flt, _ = as_of_filter(q.question, date.fromisoformat(q.date) if q.date else date.today(), SearchFilter())
        pool = candidate_pool(index, embedder, q.question, flt, depth=args.depth)
        sizes.append(len(pool))
        first.append(next((i for i, c in enumerate(pool) if contains(c.hit.chunk.text, q.answer)), None))
        if n % 200 == 0:
            log(f"{n}/{len(questions)} questions")
    found = np.asarray([np.inf if i is None else i for i in first])
    result = {
        "command": " ".join(sys.argv),
        "questions": len(questions),
        "depth": args.depth,
        "pool_size_median": float(np.median(sizes)),
        "answer_within_first": {str(k): round(float((found < k).mean()), 4) for k in CUTS},
        "answer_in_pool": round(float(np.isfinite(found).mean()), 4),
    }
    log(f"{result['answer_within_first']}, in the pool: {result['answer_in_pool']}")
    finish(f"pool_depth-{args.questions.parent.name}-{args.depth}", result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
