"""Train the passage ranker (rag/search/rerank.py) on labelled RealTime QA questions.

Every question is asked as the pipeline asks it (as of its date, under its time frame). Its
candidate pool and features come from the library's own ``candidate_pool`` and ``features``,
and a passage is labelled relevant when it contains the gold answer (rag.evaluate.contains). The
last fifth of the training questions, by date, is held back for early stopping and is where the
validation figures in the card come from. The other year is never read here: report the model
on it with ``rag eval``.

    .venv/bin/rag reindex ../shared/datasets/realtimeqa-2024-2025/articles.jsonl.gz \\
        --index bench-out/rtqa24/idx-i8 --backend onnx-int8
    .venv/bin/python bench/train_ranker.py --index bench-out/rtqa24/idx-i8 \\
        --questions ../shared/datasets/realtimeqa-2024-2025/questions.jsonl --out rag/search/ranker

Features are cached in bench-out/ (keyed by index generation and questions file), so a second
run with other training parameters takes seconds.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag.evaluate import contains, read_questions  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.search.asof import as_of_filter  # noqa: E402
from rag.search.rerank import FEATURES, POOL_DEPTH, RANKER_FORMAT, candidate_pool, features  # noqa: E402
from rag.search.retrieve import SearchFilter  # noqa: E402
from rag.settings import Settings  # noqa: E402

PARAMS = {
    "objective": "lambdarank",
    "metric": "ndcg",
    "ndcg_eval_at": [1, 5, 10],
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.9,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "seed": 7,
    "num_threads": 2,
    "verbose": -1,
}


def build_features(index_dir: Path, questions_path: Path, limit: int | None,
                   depth: int = POOL_DEPTH) -> dict[str, np.ndarray]:
    """X, y, group sizes, question ids and dates for every question, cached on disk."""
    pipeline = Pipeline(Settings(index_dir=index_dir))
    index = pipeline.index()
    key = hashlib.sha1(f"{index.manifest.generation}|{questions_path.resolve()}|{limit}|{FEATURES}|"
                       f"{depth}".encode()).hexdigest()[:12]
    cache = ROOT / "bench-out" / f"ranker-features-{key}.npz"
    if cache.exists():
        return dict(np.load(cache, allow_pickle=False))
    questions, problems = read_questions(questions_path)
    if problems:
        print(f"skipped {len(problems)} bad question lines", file=sys.stderr)
    questions = questions[:limit] if limit else questions
    embedder = pipeline.query_embedder
    xs, ys, groups, ids, days = [], [], [], [], []
    started = time.perf_counter()
    for n, q in enumerate(questions, start=1):
        as_of = date.fromisoformat(q.date) if q.date else date.today()
        flt, frame = as_of_filter(q.question, as_of, SearchFilter())
        pool = candidate_pool(index, embedder, q.question, flt, depth)
        if not pool:
            continue
        xs.append(features(index, q.question, as_of, frame, pool, depth))
        ys.append(np.asarray([contains(c.hit.chunk.text, q.answer) for c in pool], dtype=np.int32))
        groups.append(len(pool))
        ids.append(q.id)
        days.append(as_of.isoformat())
        if n % 200 == 0:
            print(f"{n}/{len(questions)} questions, {time.perf_counter() - started:.0f}s", file=sys.stderr)
    data = {"x": np.concatenate(xs), "y": np.concatenate(ys), "group": np.asarray(groups),
            "ids": np.asarray(ids), "days": np.asarray(days)}
    cache.parent.mkdir(parents=True, exist_ok=True)
    np.savez(cache, **data)
    return data


def split_by_date(data: dict[str, np.ndarray], share: float) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks over questions: the earliest (1 - share) train, the latest ``share`` validate."""
    order = np.argsort(data["days"], kind="stable")
    cut = int(len(order) * (1 - share))
    train = np.zeros(len(order), dtype=bool)
    train[order[:cut]] = True
    return train, ~train


def rows_of(data: dict[str, np.ndarray], questions: np.ndarray) -> np.ndarray:
    """Row mask selecting the pooled passages of the chosen questions."""
    return np.repeat(questions, data["group"])


def recall_at(data: dict[str, np.ndarray], questions: np.ndarray, scores: np.ndarray | None,
              ks: tuple[int, ...] = (1, 5, 10, 20)) -> dict[str, float]:
    """Share of the chosen questions with a relevant passage in the top k, by ``scores`` (None:
    the pool's own fused order)."""
    starts = np.concatenate([[0], np.cumsum(data["group"])])
    hits = {k: 0 for k in ks}
    total = 0
    for q in np.flatnonzero(questions):
        lo, hi = starts[q], starts[q + 1]
        labels = data["y"][lo:hi]
        order = np.arange(hi - lo) if scores is None else np.argsort(-scores[lo:hi], kind="stable")
        for k in ks:
            hits[k] += bool(labels[order[:k]].any())
        total += 1
    return {f"recall@{k}": round(hits[k] / max(total, 1), 4) for k in ks}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--questions", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "rag" / "search" / "ranker")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--validation", type=float, default=0.2, help="latest share held back")
    parser.add_argument("--rounds", type=int, default=600)
    parser.add_argument("--pool-depth", type=int, default=POOL_DEPTH,
                        help=f"each retriever's top N in the pool (default {POOL_DEPTH}); the card records it")
    args = parser.parse_args(argv)

    import lightgbm

    data = build_features(args.index, args.questions, args.limit, args.pool_depth)
    train_q, valid_q = split_by_date(data, args.validation)
    tr, va = rows_of(data, train_q), rows_of(data, valid_q)
    train_set = lightgbm.Dataset(data["x"][tr], data["y"][tr], group=data["group"][train_q],
                                 feature_name=list(FEATURES))
    valid_set = lightgbm.Dataset(data["x"][va], data["y"][va], group=data["group"][valid_q],
                                 feature_name=list(FEATURES), reference=train_set)
    booster = lightgbm.train(PARAMS, train_set, num_boost_round=args.rounds, valid_sets=[valid_set],
                             callbacks=[lightgbm.early_stopping(60, verbose=False)])
    scores = booster.predict(data["x"], num_iteration=booster.best_iteration)
    validation = {"fusion": recall_at(data, valid_q, None), "learned": recall_at(data, valid_q, scores)}
    importance = dict(zip(FEATURES, booster.feature_importance("gain").round(1).tolist()))
    card = {
        "format": RANKER_FORMAT,
        "name": f"passage-ranker-{args.questions.parent.name}",
        "features": list(FEATURES),
        "pool_depth": args.pool_depth,
        "trained_on": {"questions": str(args.questions.relative_to(args.questions.anchor))
                       if args.questions.is_absolute() else str(args.questions),
                       "train_questions": int(train_q.sum()), "validation_questions": int(valid_q.sum()),
                       "validation_from": str(np.sort(data["days"][valid_q])[0]) if valid_q.any() else None},
        "params": PARAMS,
        "best_iteration": int(booster.best_iteration),
        "validation": validation,
        "gain": importance,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    booster.save_model(str(args.out / "model.txt"), num_iteration=booster.best_iteration)
    (args.out / "card.json").write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(json.dumps({"best_iteration": card["best_iteration"], "validation": validation}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
