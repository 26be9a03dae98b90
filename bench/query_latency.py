"""Search and `rag ask` latency on a real, built index, one query at a time, as the CLI runs them.

Queries are RealTime QA questions (a fixed shuffle, seed 0). Each mode runs every query once
after 20 warm-up queries; `ask` is `Pipeline.ask` with the question's date as the as-of date
(retrieval, time frame, re-rank and the extractive answer), model load excluded, once per
answer-sentence scorer in ``--scorers`` (``search``: the search embedder), side by side. Threads are the
library's own (one for a single query, see rag/index/dense.py and rag/embed/runtimes.py). Also reports the
query embedding alone, and the process's CPU milliseconds per search (steadier than wall time on
a shared machine). Output: a table, and bench/results/query_latency-<index>-<backend or default>.json.

Reproduces BENCHMARKS.md, "Search latency and ANN recall" > "Search and `rag ask` latency on
RealTime QA" (and the headline search and `rag ask` figures). The indexes are built as
BENCHMARKS.md's "Setup" says; idx-torch is the float32 index relabelled as a torch one (copy it,
then set the backend in its manifest to "torch": the vectors are the same):

    cp -r bench-out/rtqa/idx-f32 bench-out/rtqa/idx-torch   # then "backend": "torch" in its manifest
    .venv/bin/python bench/query_latency.py --index bench-out/rtqa/idx-torch --scorers onnx-int8,search
    .venv/bin/python bench/query_latency.py --index bench-out/rtqa/idx-torch --backend torch --scorers onnx-int8
    .venv/bin/python bench/query_latency.py --index bench-out/rtqa/idx-f32 --backend torch
    # per backend (recorded as query_latency-idx-f32.json and -idx-i8.json, when the answer's
    # sentences were scored by the search embedder):
    .venv/bin/python bench/query_latency.py --index bench-out/rtqa/idx-f32 --scorers search
    .venv/bin/python bench/query_latency.py --index bench-out/rtqa/idx-i8 --scorers search

The learned passage ranker against rank fusion, on the RealTime QA 2022 int8 index:

    .venv/bin/python bench/query_latency.py --index bench-out/rtqa22/idx-i8 --scorers onnx-int8 --ranker learned
    .venv/bin/python bench/query_latency.py --index bench-out/rtqa22/idx-i8 --scorers onnx-int8 --ranker fusion

The answer cross-encoder, timed against the same pipeline without it, question by question in
turn (so that both see the same load):

    .venv/bin/python bench/query_latency.py --index bench-out/rtqa22/idx-i8 --scorers onnx-int8 --cross-encoder both

Options: [--queries 200] [--asks 100] [--backend B] [--scorers a,b] [--ranker learned|fusion]
[--cross-encoder on|off|both].
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import RTQA_QUESTIONS, environment, finish, log, pct, rss_mb, table  # noqa: E402

from rag import Pipeline, Settings  # noqa: E402
from rag.embed import embed_query, embedder_backend  # noqa: E402
from rag.evaluate import read_questions  # noqa: E402


def timed(fn, items) -> tuple[list[float], list[float]]:
    wall, cpu = [], []
    for item in items:
        t, c = time.perf_counter(), time.process_time()
        fn(item)
        wall.append((time.perf_counter() - t) * 1000)
        cpu.append((time.process_time() - c) * 1000)
    return wall, cpu


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--asks", type=int, default=100)
    ap.add_argument("--backend", help="search embedder backend (default: the index's)")
    ap.add_argument("--ranker", choices=("learned", "fusion"),
                    help="how an answer's passages are ordered (default: the library's)")
    ap.add_argument("--scorers", default="onnx-int8,search",
                    help="answer-sentence scorer backends to time ask with (search: the search embedder)")
    ap.add_argument("--cross-encoder", choices=("on", "off", "both"),
                    help="answer with the answer cross-encoder, without it, or time both in turn "
                         "(default: the library's setting)")
    args = ap.parse_args()
    scorers = args.scorers.split(",")
    crossed = {"on": [True], "off": [False], "both": [False, True], None: [None]}[args.cross_encoder]

    questions, _ = read_questions(RTQA_QUESTIONS)
    random.Random(0).shuffle(questions)

    def make(scorer: str, cross: bool | None) -> Pipeline:
        ranking = {"ranker": args.ranker} if args.ranker else {}
        if cross is not None:
            ranking["cross_encoder"] = cross
        return Pipeline(Settings(index_dir=args.index, backend=args.backend,
                                 scorer_backend=None if scorer == "search" else scorer, **ranking))

    pipelines = {f"{scorer}{'' if cross is None else ', cross-encoder ' + ('on' if cross else 'off')}":
                 make(scorer, cross) for scorer in scorers for cross in crossed}
    scorers = list(pipelines)
    pipeline = pipelines[scorers[0]]
    info = pipeline.info()
    backend = embedder_backend(pipeline.query_embedder)
    log(f"{info.chunks} chunks ({info.backend} vectors), queries embedded by {backend}, "
        f"{info.index_kind} index")
    warm = [q.question for q in questions[-20:]]
    for q in warm:
        for p in pipelines.values():
            p.search(q, k=10)
            p.ask(q, as_of="2022-12-31")
    texts = [q.question for q in questions[: args.queries]]
    rows, result = [], {"index": str(args.index), "chunks": info.chunks, "backend": backend,
                        "index_backend": info.backend,
                        "index_kind": info.index_kind, "environment": environment(), "latency_ms": {}}

    def record(name: str, wall: list[float], cpu: list[float]) -> None:
        stats = {"p50": round(pct(wall, 50), 2), "p95": round(pct(wall, 95), 2),
                 "cpu_p50": round(pct(cpu, 50), 2), "n": len(wall)}
        result["latency_ms"][name] = stats
        rows.append([name, stats["n"], stats["p50"], stats["p95"], stats["cpu_p50"]])
        log(f"{name}: {stats}")

    record("query embedding", *timed(lambda q: embed_query(pipeline.query_embedder, q), texts))
    for mode in ("hybrid", "dense", "keyword"):
        record(f"search {mode}", *timed(lambda q, m=mode: pipeline.search(q, k=10, mode=m), texts))
    record("search hybrid + date", *timed(
        lambda q: pipeline.search(q, k=10, since="2022-09-01", until="2022-10-31"), texts))
    asks = questions[: args.asks]
    # In turn, question by question: each pipeline answers a question before the next one is asked.
    times = {name: ([], []) for name in pipelines}
    for q in asks:
        for name, p in pipelines.items():
            wall, cpu = timed(lambda q, p=p: p.ask(q.question, as_of=q.date), [q])
            times[name][0].extend(wall)
            times[name][1].extend(cpu)
    for name, (wall, cpu) in times.items():
        record(f"ask (extractive, {name} scorer)", wall, cpu)
    result["rss"] = rss_mb()
    table(rows, ["what", "n", "p50 ms", "p95 ms", "CPU ms p50"])
    ranker = f"-{args.ranker}" if args.ranker else ""
    cross = f"-cross-encoder-{args.cross_encoder}" if args.cross_encoder else ""
    finish(f"query_latency-{args.index.name}-{args.backend or 'default'}{ranker}{cross}", result)


if __name__ == "__main__":
    main()
