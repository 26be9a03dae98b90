"""Embedding throughput (chunks/s) of each backend, side by side in one run, on real chunks.

Reproduces BENCHMARKS.md, "Embedding backends" > "Chunks per second, side by side"
(bench/results/embed_backends.json), and with ``--overlap`` the chunking-overlap figure under
"Reindex":

    .venv/bin/python bench/embed_backends.py --sample 600 --runs 3
    .venv/bin/python bench/embed_backends.py --sample 600 --runs 3 --overlap

Options: [--sample N] [--runs N] [--backends torch,onnx,onnx-int8] [--datasets bbc,rtqa]
[--batch-size 64] [--overlap-articles 300] [--cache-dir DIR].

1. Chunks: the real embedding texts of BBC News and RealTime QA 2022 (ingest with
   ``rag.ingest.read_sources``, ``Pipeline.chunker().chunk`` and ``embedding_text``, as a reindex
   does), then a fixed random sample of ``--sample`` chunks from each (seed 0). Ingest and
   chunking are timed too: they bound what overlapping them with embedding could save.
2. Throughput: every backend embeds the same sample with ``rag.embed.embed_documents``
   (length-sorted batches of ``--batch-size``), ``--runs`` times, the backends interleaved and
   their order rotated each run so that a change in the machine's load hits them all; medians
   and ratios to torch are reported, of chunks per wall second and of chunks per CPU-second of
   this process (steadier on a shared machine). Each model is loaded and warmed up first.
3. Agreement: cosine of each backend's vectors with torch's, per chunk (min, 1st percentile,
   mean), on the whole sample.
4. Overlap (``--overlap``): ingest + chunk + embed of ``--overlap-articles`` RealTime QA
   articles, serially and with chunking in a producer thread feeding length-sorted windows to
   the embedder, for the fastest backend.

Output: a table on stdout, bench/results/embed_backends.json.
"""

from __future__ import annotations

import argparse
import os
import queue
import random
import statistics
import sys
import threading
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BBC, RTQA_ARTICLES as RTQA, Timer, environment, finish, log, table  # noqa: E402

import numpy as np  # noqa: E402

from rag.embed import BACKENDS, SentenceTransformerEmbedder, embed_documents  # noqa: E402
from rag.ingest import read_sources  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.settings import Settings  # noqa: E402


def chunk_texts(pipeline: Pipeline, source: Path) -> tuple[list[str], dict[str, Any]]:
    with Timer() as ingest:
        articles = read_sources([str(source)]).articles
    chunker = pipeline.chunker()
    with Timer() as chunking:
        texts = [chunker.embedding_text(a, c) for a, cs in zip(articles, chunker.chunk(articles)) for c in cs]
    tokens = [len(ids) for ids in chunker.tokenizer(texts, add_special_tokens=True, verbose=False)["input_ids"]]
    return texts, {"articles": len(articles), "chunks": len(texts), "ingest_s": round(ingest.seconds, 2),
                   "chunking_s": round(chunking.seconds, 2),
                   "tokens_per_chunk_mean": round(float(np.mean(tokens)), 1),
                   "tokens_per_chunk_p50": int(np.median(tokens))}


def throughput(embedders: dict[str, Any], texts: list[str], runs: int, batch_size: int
               ) -> tuple[dict[str, list[float]], dict[str, list[float]], dict[str, np.ndarray], list[list[float]]]:
    rates: dict[str, list[float]] = {b: [] for b in embedders}
    # Chunks per CPU-second of this process: steadier than wall time when others load the machine.
    per_cpu: dict[str, list[float]] = {b: [] for b in embedders}
    vectors: dict[str, np.ndarray] = {}
    loads = []
    names = list(embedders)
    for run in range(runs):
        order = names[run % len(names):] + names[:run % len(names)]
        for backend in order:
            with Timer() as tm:
                out = embed_documents(embedders[backend], texts, batch_size=batch_size)
            rates[backend].append(len(texts) / tm.seconds)
            per_cpu[backend].append(len(texts) / tm.cpu_seconds)
            vectors.setdefault(backend, out)
            log(f"run {run + 1}/{runs} {backend:9s} {rates[backend][-1]:7.1f} chunks/s "
                f"(cpu {tm.cpu_seconds / tm.seconds:.2f} cores, load {os.getloadavg()[0]:.1f})")
        loads.append([round(x, 2) for x in os.getloadavg()])
    return rates, per_cpu, vectors, loads


def agreement(vectors: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    if "torch" not in vectors:
        return {}
    out = {}
    for backend, v in vectors.items():
        cos = (v * vectors["torch"]).sum(axis=1)
        out[backend] = {"min": round(float(cos.min()), 5), "p1": round(float(np.percentile(cos, 1)), 5),
                        "mean": round(float(cos.mean()), 5)}
    return out


def overlap(pipeline: Pipeline, embedder: Any, source: Path, n_articles: int, batch_size: int,
            window: int = 1024) -> dict[str, float]:
    """Serial ingest -> chunk -> embed versus chunking in a producer thread."""
    articles = read_sources([str(source)]).articles[:n_articles]
    chunker = pipeline.chunker()

    def serial() -> int:
        texts = [chunker.embedding_text(a, c) for a, cs in zip(articles, chunker.chunk(articles)) for c in cs]
        embed_documents(embedder, texts, batch_size=batch_size)
        return len(texts)

    def pipelined() -> int:
        q: queue.Queue[list[str] | None] = queue.Queue(maxsize=4)

        def produce() -> None:
            for lo in range(0, len(articles), 32):
                part = articles[lo:lo + 32]
                q.put([chunker.embedding_text(a, c) for a, cs in zip(part, chunker.chunk(part)) for c in cs])
            q.put(None)

        thread = threading.Thread(target=produce, daemon=True)
        thread.start()
        pending: list[str] = []
        done = 0
        while True:
            item = q.get()
            if item is not None:
                pending += item
            if len(pending) >= window or (item is None and pending):
                embed_documents(embedder, pending, batch_size=batch_size)
                done += len(pending)
                pending = []
            if item is None:
                break
        thread.join()
        return done

    result: dict[str, list[float]] = {"serial_s": [], "overlapped_s": []}
    for _ in range(2):
        for key, fn in (("serial_s", serial), ("overlapped_s", pipelined)):
            with Timer() as tm:
                n = fn()
            result[key].append(tm.seconds)
            log(f"overlap {key}: {n} chunks in {tm.seconds:.1f}s")
    return {"articles": len(articles), "chunks": n, **{k: round(statistics.median(v), 2) for k, v in result.items()}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backends", default=",".join(BACKENDS))
    ap.add_argument("--sample", type=int, default=1500, help="chunks per dataset (default 1500)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument("--datasets", default="bbc,rtqa")
    ap.add_argument("--overlap", action="store_true")
    ap.add_argument("--overlap-articles", type=int, default=300)
    ap.add_argument("--cache-dir", type=Path, default=None, help="ONNX cache (default ~/.cache/newsrag)")
    args = ap.parse_args()
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]

    env = environment()
    embedders: dict[str, Any] = {}
    loads: dict[str, float] = {}
    for backend in backends:
        with Timer() as tm:
            embedders[backend] = SentenceTransformerEmbedder(backend=backend, cache_dir=args.cache_dir)  # type: ignore[arg-type]
            embedders[backend].embed_batch(["warm up"] * 8)
        loads[backend] = round(tm.seconds, 2)
        log(f"loaded {backend} in {tm.seconds:.1f}s")
    pipeline = Pipeline(Settings(), embedder=embedders[backends[0]])

    sources = {"bbc": BBC, "rtqa": RTQA}
    result: dict[str, Any] = {"environment": env, "batch_size": args.batch_size, "runs": args.runs,
                              "load_seconds": loads, "datasets": {}}
    rows = []
    for name in [d.strip() for d in args.datasets.split(",") if d.strip()]:
        texts, info = chunk_texts(pipeline, sources[name])
        sample = texts if args.sample >= len(texts) else random.Random(0).sample(texts, args.sample)
        info["sample"] = len(sample)
        log(f"{name}: {info}")
        rates, per_cpu, vectors, run_loads = throughput(embedders, sample, args.runs, args.batch_size)
        medians = {b: statistics.median(r) for b, r in rates.items()}
        cpu_medians = {b: statistics.median(r) for b, r in per_cpu.items()}
        base, cpu_base = medians.get("torch"), cpu_medians.get("torch")
        cos = agreement(vectors)
        result["datasets"][name] = {
            **info, "loadavg_after_each_run": run_loads,
            "chunks_per_s": {b: {"median": round(m, 1), "runs": [round(x, 1) for x in rates[b]],
                                 "x_torch": round(m / base, 2) if base else None} for b, m in medians.items()},
            "chunks_per_cpu_s": {b: {"median": round(m, 1), "runs": [round(x, 1) for x in per_cpu[b]],
                                     "x_torch": round(m / cpu_base, 2) if cpu_base else None}
                                 for b, m in cpu_medians.items()},
            "cosine_to_torch": cos,
        }
        for b, m in medians.items():
            c = cos.get(b, {})
            cm = cpu_medians[b]
            rows.append([name, b, len(sample), m, f"{m / base:.2f}x" if base else "-",
                         " ".join(f"{x:.1f}" for x in rates[b]), cm, f"{cm / cpu_base:.2f}x" if cpu_base else "-",
                         c.get("min", "-"), c.get("mean", "-")])
    if args.overlap:
        fastest = max(result["datasets"][next(iter(result["datasets"]))]["chunks_per_s"].items(),
                      key=lambda kv: kv[1]["median"])[0]
        result["overlap"] = {"backend": fastest, **overlap(pipeline, embedders[fastest], RTQA,
                                                           args.overlap_articles, args.batch_size)}
    print()
    table(rows, ["data", "backend", "chunks", "median chunks/s", "vs torch", "runs", "chunks/cpu-s",
                 "vs torch", "cos min", "cos mean"])
    if args.overlap:
        print("\noverlap:", result["overlap"])
    finish("embed_backends", result)


if __name__ == "__main__":
    main()
