"""Reindex throughput (chunks/s) on a real corpus, with the time split by stage.

Reproduces BENCHMARKS.md, "Reindex" > "Reindex throughput on BBC News, by stage"
(bench/results/reindex_throughput.json; the source defaults to BBC News under the datasets
folder, see bench/_common.py):

    .venv/bin/python bench/reindex_throughput.py --runs 2 --incremental-runs 3

Options: [--source PATH] [--runs N] [--incremental-runs N].

1. Stage split: the steps of ``Indexer._build`` called one by one and timed (ingest with
   ``rag.ingest.read_sources``, chunking with ``Pipeline.chunker().chunk`` plus the embedding
   texts, embedding with ``rag.embed.embed_documents``, index writing: SQLite store, vectors,
   FAISS, BM25).
2. End to end: ``Pipeline.reindex([source], full=True)`` into a fresh temporary index folder
   (``--full`` semantics), ``--runs`` times; medians reported.
3. Incremental: a second ``Pipeline.reindex([source])`` of the same source into the last of those
   folders; every vector should be reused.

The embedding model is loaded (and warmed up) once before any timing; its load time is reported
separately. The stage split also caches the real BBC vectors in bench-out/search/, where
bench/search_latency.py and bench/ann_recall.py look for them. Output: a table on stdout,
bench/results/reindex_throughput.json.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import BBC, SEARCH_SCRATCH as CACHE, Timer, environment, finish, log, rss_mb, table  # noqa: E402

from rag.index.dense import DenseSearcher, build_dense  # noqa: E402
from rag.embed import SentenceTransformerEmbedder, embed_documents  # noqa: E402
from rag.index.build import _embed_key, content_hash  # noqa: E402
from rag.ingest import read_sources  # noqa: E402
from rag.index.keyword import KeywordSearcher  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.text.quotes import extract_quotes  # noqa: E402
from rag.settings import Settings  # noqa: E402
from rag.index.store import Store  # noqa: E402

import numpy as np  # noqa: E402


def stage_split(pipeline: Pipeline, source: Path, work: Path) -> dict:
    """Each stage of a full build, timed on its own (mirrors rag.index.build.Indexer._build)."""
    t: dict[str, float] = {}
    with Timer() as tm:
        report = read_sources([str(source.resolve())])
    t["ingest"] = tm.seconds
    articles = report.articles
    with Timer() as tm:
        hashes = [content_hash(a) for a in articles]
    t["content_hash"] = tm.seconds
    chunker = pipeline.chunker()
    with Timer() as tm:
        chunk_lists = chunker.chunk(articles)
    t["chunking"] = tm.seconds
    with Timer() as tm:
        rows, texts = [], []
        for article, chunks in zip(articles, chunk_lists):
            for chunk in chunks:
                text = chunker.embedding_text(article, chunk)
                rows.append((len(rows), chunk, _embed_key(text)))
                texts.append(text)
    t["embedding_texts"] = tm.seconds
    with Timer() as tm:
        vectors = embed_documents(pipeline.embedder, texts, batch_size=pipeline.settings.batch_size)
    t["embedding"] = tm.seconds
    embed_cpu = tm.cpu_seconds
    # bench/search_latency.py reuses these real vectors (same chunker settings, same texts).
    import hashlib
    digest = hashlib.sha1("\x00".join(texts).encode("utf-8")).hexdigest()[:16]
    CACHE.mkdir(parents=True, exist_ok=True)
    np.save(CACHE / f"bbc-vectors-{digest}.npy", vectors)
    work.mkdir(parents=True, exist_ok=True)
    with Timer() as tm_store:
        store = Store(work / "store.sqlite")
        quote_s = 0.0
        for article, digest in zip(articles, hashes):
            store.add_article(article, digest)
            q0 = time.perf_counter()
            quotes = extract_quotes(article)
            quote_s += time.perf_counter() - q0
            store.add_quotes(quotes)
        store.add_chunks(rows)
        store.commit()
        store.close()
    t["write_store_sqlite"] = tm_store.seconds - quote_s
    t["quote_extraction"] = quote_s
    with Timer() as tm:
        np.save(work / "vectors.npy", vectors)
    t["write_vectors_npy"] = tm.seconds
    with Timer() as tm:
        DenseSearcher(build_dense(vectors, "exact"), vectors, "exact").save(work / "dense.faiss")
    t["build_write_faiss_exact"] = tm.seconds
    with Timer() as tm:
        KeywordSearcher.build(texts).save(work / "bm25")
    t["build_write_bm25"] = tm.seconds
    groups = {
        "ingest": t["ingest"],
        "chunking": t["content_hash"] + t["chunking"] + t["embedding_texts"],
        "embedding": t["embedding"],
        "index_writing": (t["write_store_sqlite"] + t["quote_extraction"] + t["write_vectors_npy"]
                          + t["build_write_faiss_exact"] + t["build_write_bm25"]),
    }
    total = sum(groups.values())
    return {
        "articles": len(articles), "duplicates_dropped": len(report.duplicates),
        "problems": len(report.problems), "chunks": len(rows),
        "mean_embed_text_chars": round(float(np.mean([len(x) for x in texts])), 1),
        "seconds": {k: round(v, 3) for k, v in t.items()},
        "groups_seconds": {k: round(v, 3) for k, v in groups.items()},
        "groups_share": {k: round(v / total, 4) for k, v in groups.items()},
        "total_seconds": round(total, 3),
        "chunks_per_s": round(len(rows) / total, 1),
        "embedding_chunks_per_s": round(len(rows) / t["embedding"], 1),
        "embedding_cpu_s": round(embed_cpu, 1),
        "embedding_cpu_utilisation": round(embed_cpu / t["embedding"], 2),
        "embedding_chunks_per_cpu_s": round(len(rows) / embed_cpu, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", type=Path, default=BBC)
    ap.add_argument("--runs", type=int, default=3, help="end-to-end full reindexes (median reported)")
    ap.add_argument("--incremental-runs", type=int, default=3)
    args = ap.parse_args()
    env = environment()
    log(f"load avg {env['loadavg_at_start']}; busy: {env['other_busy_processes_at_start']}")

    embedder = SentenceTransformerEmbedder()
    with Timer() as tm:
        embedder._load()
        embedder.embed_batch(["warm-up sentence one.", "warm-up two"] * 8)
    model_load = tm.seconds
    tmp = Path(tempfile.mkdtemp(prefix="rag-bench-reindex-"))
    try:
        log("stage split ...")
        split = stage_split(Pipeline(Settings(index_dir=tmp / "split"), embedder=embedder), args.source,
                            tmp / "split-gen")
        log(f"stage split: {split['groups_seconds']}")
        full_runs = []
        for i in range(args.runs):
            index_dir = tmp / f"full-{i}"
            pipeline = Pipeline(Settings(index_dir=index_dir), embedder=embedder)
            pipeline.chunker()  # built from the already loaded model, outside the timing
            with Timer() as tm:
                summary = pipeline.reindex([args.source], full=True)
            full_runs.append({"wall_s": round(tm.seconds, 3), "summary_seconds": round(summary.seconds, 3),
                              "cpu_s": round(tm.cpu_seconds, 1),
                              "cpu_utilisation": round(tm.cpu_seconds / tm.seconds, 2),
                              "chunks": summary.chunks, "articles": summary.articles,
                              "embedded": summary.embedded, "reused": summary.reused,
                              "chunks_per_s": round(summary.chunks / tm.seconds, 1)})
            log(f"full run {i}: {full_runs[-1]}")
            if i < args.runs - 1:
                shutil.rmtree(index_dir, ignore_errors=True)
        inc_runs = []
        for i in range(args.incremental_runs):
            with Timer() as tm:
                summary = pipeline.reindex([args.source])
            inc_runs.append({"wall_s": round(tm.seconds, 3), "cpu_s": round(tm.cpu_seconds, 2),
                             "chunks": summary.chunks,
                             "embedded": summary.embedded, "reused": summary.reused,
                             "unchanged": summary.unchanged})
            log(f"incremental run {i}: {inc_runs[-1]}")
        mem = rss_mb()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    med = lambda xs: round(statistics.median(xs), 3)  # noqa: E731
    full_wall = med([r["wall_s"] for r in full_runs])
    chunks = full_runs[0]["chunks"]
    result = {
        "command": "bench/reindex_throughput.py " + " ".join(sys.argv[1:]),
        "source": str(args.source),
        "model_load_and_warmup_s": round(model_load, 2),
        "end_to_end_full": {"runs": full_runs, "median_wall_s": full_wall, "chunks": chunks,
                            "articles": full_runs[0]["articles"],
                            "median_chunks_per_s": round(chunks / full_wall, 1),
                            "median_cpu_s": med([r["cpu_s"] for r in full_runs]),
                            "median_chunks_per_cpu_s": round(chunks / med([r["cpu_s"] for r in full_runs]), 1),
                            "note": "cpu_s = this process's CPU time (all threads); the machine has 2 "
                                    "cores shared with other jobs, so cpu_utilisation < 2 shows contention"},
        "incremental": {"runs": inc_runs, "median_wall_s": med([r["wall_s"] for r in inc_runs]),
                        "all_vectors_reused": all(r["reused"] == r["chunks"] and r["embedded"] == 0
                                                  for r in inc_runs)},
        "stage_split": split,
        "memory": mem,
        "environment": env,
    }
    g = split["groups_seconds"]
    print(f"\nreindex of {args.source.name}: {full_runs[0]['articles']} articles, {chunks} chunks "
          f"(model load + warm-up {model_load:.1f}s, not included)\n")
    table([
        ["end-to-end full (median of %d)" % len(full_runs), full_wall, round(chunks / full_wall, 1),
         f"{result['end_to_end_full']['median_cpu_s']:.0f} CPU-s, "
         f"{result['end_to_end_full']['median_chunks_per_cpu_s']} chunks/CPU-s"],
        ["incremental, same source (median of %d)" % len(inc_runs), result["incremental"]["median_wall_s"],
         round(chunks / result["incremental"]["median_wall_s"], 1),
         f"reused {inc_runs[0]['reused']}/{chunks}"],
        ["stage split, total", split["total_seconds"], split["chunks_per_s"], "100%"],
        *[[f"  {k}", v, "", f"{split['groups_share'][k]:.1%}"] for k, v in g.items()],
        ["  embedding, per CPU-second", "", split["embedding_chunks_per_cpu_s"],
         f"CPU use {split['embedding_cpu_utilisation']:.2f} of 2 cores"],
    ], ["what", "seconds", "chunks/s", "note"])
    finish("reindex_throughput", result)


if __name__ == "__main__":
    main()
