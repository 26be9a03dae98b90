"""Search latency (p50/p95) per mode, with and without a date filter, and memory, at ~10k and
~100k chunks of real news text; plus HNSW at ~100k and its recall@10 against exact search.

Reproduces BENCHMARKS.md, "Search latency and ANN recall" > "Search latency and memory at 10k
and 100k chunks" (bench/results/search_latency.json; the defaults are the recorded run's
settings: --sizes 10000 100000 --queries 200 --hnsw-at 100000 --noise 0.4 --torch-threads 1
--faiss-threads 1 --default-queries 40):

    .venv/bin/python bench/search_latency.py

How the corpora are made (reduced-cost path, see BENCHMARKS.md):
- Base: the BBC News articles (bbc-news/articles.jsonl.gz, 2,088 after dedup), chunked with the
  project's own chunker (``Pipeline.chunker()``, default settings) and embedded once with the real
  model (all-MiniLM-L6-v2); the vectors are cached in bench-out/search/.
- Larger corpora: the base articles plus numbered copies. Copy c of an article gets a distinct id,
  the title suffix " [c]" and one extra closing sentence "Archive reference NNNNNN." so that
  every chunk's text differs. Copies are added article by article until the estimated chunk count
  reaches the size asked for.
- BBC has no dates: every article and copy gets a date between 2004-01-01 and 2005-12-31 drawn
  from a hash of its id, so that a date filter has something to select.
- The index is built by the real ``rag.index.build.Indexer`` (via ``Pipeline.reindex``: ingest,
  chunking, SQLite store, FAISS, BM25) with a stand-in embedder that returns precomputed real
  vectors: an original chunk gets its own real vector; a copy's chunk gets the real vector of the
  same body text (title and reference sentence stripped) plus Gaussian noise of norm ``--noise``
  (re-normalised; default 0.4, i.e. cosine ~0.93 to the original), seeded by the text, so no two
  chunks share a vector. A copy chunk whose body matches no original chunk (the extra sentence
  spilled into a chunk of its own) is embedded for real.
- Searching uses the real model: every timed search embeds its query with all-MiniLM-L6-v2.

Each index is measured in its own subprocess (``--worker DIR``) so that RSS figures are clean.
Query embedding runs with ``--torch-threads`` (default 1; see BENCHMARKS.md for why) in the timed
searches; torch's default thread count is measured on the side.
Queries: ``--queries`` questions of RealTime QA (questions.jsonl), spread over the file, k=10.
Output: tables on stdout, bench/results/search_latency.json.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import re
import shutil
import subprocess
import sys
import time
from datetime import date, timedelta
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (BBC, SEARCH_SCRATCH as CACHE, ROOT, RTQA_QUESTIONS, Timer, environment, finish, log,  # noqa: E402
                     rss_mb, summary_ms, table)

import numpy as np  # noqa: E402

SINCE, UNTIL = "2005-01-01", "2005-03-31"  # the date filter used: about 12% of a 2004-2005 corpus
DATE_START, DATE_DAYS = date(2004, 1, 1), 731
MARK_RE = re.compile(r"\s*Archive reference \d+\.\s*$")
MODES = ("hybrid", "dense", "keyword")
K = 10
WARMUP = 20
SIDE_QUERIES = 50


def questions(n: int) -> list[str]:
    qs = [json.loads(line)["question"] for line in RTQA_QUESTIONS.read_text(encoding="utf-8").splitlines()
          if line.strip()]
    step = max(1, len(qs) // n)
    return qs[::step][:n]


def fake_date(article_id: str) -> str:
    h = int(hashlib.sha1(article_id.encode()).hexdigest()[:8], 16)
    return (DATE_START + timedelta(days=h % DATE_DAYS)).isoformat()


# -- the stand-in embedder ------------------------------------------------------------------
class PrecomputedEmbedder:
    """Returns precomputed real vectors (see the module docstring); same name as the real model."""

    def __init__(self, real: Any, full: dict[str, np.ndarray], body: dict[str, np.ndarray],
                 noise: float) -> None:
        self.real = real
        self.name = real.name
        self.dimension = real.dimension
        self.tokenizer = real.tokenizer
        self.max_tokens = real.max_tokens
        self.full, self.body, self.noise = full, body, noise
        self.exact = self.perturbed = self.embedded_for_real = 0

    def embed_batch(self, texts: Sequence[str]) -> np.ndarray:
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        missing = []
        for i, text in enumerate(texts):
            if text in self.full:
                out[i] = self.full[text]
                self.exact += 1
                continue
            base = self.body.get(MARK_RE.sub("", text.partition("\n")[2]))
            if base is None:
                missing.append(i)
                continue
            seed = int(hashlib.sha1(text.encode("utf-8")).hexdigest()[:16], 16)
            g = np.random.default_rng(seed).standard_normal(self.dimension).astype(np.float32)
            v = base + self.noise * g / np.linalg.norm(g)
            out[i] = v / np.linalg.norm(v)
            self.perturbed += 1
        if missing:
            out[missing] = self.real.embed_batch([texts[i] for i in missing])
            self.embedded_for_real += len(missing)
        return out


def base_vectors(real: Any) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray], list, dict[str, int]]:
    """Real vectors of every original BBC chunk, keyed by embedding text and by body text."""
    from rag.embed import embed_documents
    from rag.ingest import read_sources
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    articles = read_sources([str(BBC)]).articles
    # The library's own chunker at default settings, as a reindex builds it (and as
    # bench/reindex_throughput.py does, so the cached vectors are shared).
    chunker = Pipeline(Settings(), embedder=real).chunker()
    lists = chunker.chunk(articles)
    texts = [chunker.embedding_text(a, c) for a, cs in zip(articles, lists) for c in cs]
    per_article = {a.id: len(cs) for a, cs in zip(articles, lists)}
    digest = hashlib.sha1("\x00".join(texts).encode("utf-8")).hexdigest()[:16]
    cache = CACHE / f"bbc-vectors-{digest}.npy"
    if cache.exists():
        vectors = np.load(cache)
        log(f"base vectors: {len(texts)} chunks, loaded from {cache.relative_to(ROOT)}")
    else:
        log(f"base vectors: embedding {len(texts)} BBC chunks with the real model ...")
        with Timer() as tm:
            vectors = embed_documents(real, texts, batch_size=64)
        log(f"embedded in {tm.seconds:.0f}s")
        CACHE.mkdir(parents=True, exist_ok=True)
        np.save(cache, vectors)
    full = dict(zip(texts, vectors))
    body = {t.partition("\n")[2]: v for t, v in zip(texts, vectors)}
    return full, body, articles, per_article


def write_corpus(articles: list, per_article: dict[str, int], target: int, path: Path) -> dict[str, int]:
    """Originals plus numbered copies up to about ``target`` chunks, as dated JSON Lines."""
    est = 0
    records = []
    def rec(a: Any, aid: str, title: str, text: str) -> dict:
        return {"id": aid, "title": title, "text": text, "source": a.source, "published_at": fake_date(aid)}
    for a in articles:
        records.append(rec(a, a.id, a.title, a.text))
        est += per_article[a.id]
    copy = 0
    while est < target:
        for a in articles:
            if est >= target:
                break
            copy += 1
            records.append(rec(a, f"{a.id}~{copy}", f"{a.title} [{copy}]",
                               f"{a.text}\n\nArchive reference {copy:06d}."))
            est += per_article[a.id]
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    return {"articles": len(records), "copies": copy, "estimated_chunks": est}


def build(real: Any, full: dict, body: dict, corpus: Path, index_dir: Path, kind: str, noise: float
          ) -> dict[str, Any]:
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    shutil.rmtree(index_dir, ignore_errors=True)
    fake = PrecomputedEmbedder(real, full, body, noise)
    pipeline = Pipeline(Settings(index_dir=index_dir, index_type=kind), embedder=fake)
    with Timer() as tm:
        summary = pipeline.reindex([corpus], full=True)
    disk = sum(p.stat().st_size for p in index_dir.rglob("*") if p.is_file())
    info = {"index_dir": str(index_dir.relative_to(ROOT)), "kind": summary.index_kind,
            "articles": summary.articles, "chunks": summary.chunks, "build_s": round(tm.seconds, 1),
            "vectors_exact_real": fake.exact, "vectors_perturbed_copies": fake.perturbed,
            "vectors_embedded_for_real": fake.embedded_for_real, "disk_mb": round(disk / 2**20, 1)}
    log(f"built {info}")
    return info


# -- the worker: one index, one process -----------------------------------------------------
def _timed_pass(pipeline: Any, qs: list[str], configs: list[tuple[str, bool]], top: dict | None
                ) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Each query through every configuration (interleaved, so background noise hits them alike)."""
    wall: dict[str, list[float]] = {f"{m}{'+date' if f else ''}": [] for m, f in configs}
    cpu: dict[str, list[float]] = {name: [] for name in wall}
    for q in qs:
        for mode, filtered in configs:
            name = f"{mode}{'+date' if filtered else ''}"
            c0, t0 = time.process_time(), time.perf_counter()
            hits = pipeline.search(q, K, mode, *((SINCE, UNTIL) if filtered else (None, None)))
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
            if top is not None and name in top:
                top[name].append([h.chunk.id for h in hits])
    return wall, cpu


def worker(index_dir: Path, n_queries: int, out: Path, torch_threads: int, faiss_threads: int,
           default_queries: int) -> None:
    import faiss
    import torch

    from rag.embed import embed_query
    from rag.pipeline import Pipeline
    from rag.search.retrieve import make_filter
    from rag.search.retrieve import allowed_rows
    from rag.settings import Settings

    mem: dict[str, Any] = {"start": rss_mb()}
    pipeline = Pipeline(Settings(index_dir=index_dir))
    emb = pipeline.embedder
    emb.embed_batch(["load the model"])
    mem["model_loaded"] = rss_mb()
    with Timer() as tm:
        index = pipeline.index()
    mem["index_loaded"] = rss_mb()
    load_s = tm.seconds
    qs = questions(n_queries)
    flt = make_filter(SINCE, UNTIL, None)
    mask = allowed_rows(index, flt)
    selectivity = float(mask.mean()) if mask is not None else 1.0
    configs = [(m, f) for m in MODES for f in (False, True)]
    threads = {"defaults": {"torch": torch.get_num_threads(), "faiss": faiss.omp_get_max_threads()}}

    # Pass 1: the library as shipped (torch's and FAISS's default thread counts), fewer queries.
    for q in qs[:5]:
        for mode, filtered in configs:
            pipeline.search(q, K, mode, *((SINCE, UNTIL) if filtered else (None, None)))
    d_wall, d_cpu = _timed_pass(pipeline, qs[:default_queries], configs, None)

    # Pass 2: one thread each (or as asked), all queries, with components timed on their own.
    if torch_threads:
        torch.set_num_threads(torch_threads)
    if faiss_threads:
        faiss.omp_set_num_threads(faiss_threads)
    threads["timed"] = {"torch": torch.get_num_threads(), "faiss": faiss.omp_get_max_threads()}
    for q in qs[:WARMUP]:  # warm-up: model, FAISS, BM25, SQLite page cache
        for mode, filtered in configs:
            pipeline.search(q, K, mode, *((SINCE, UNTIL) if filtered else (None, None)))
    top: dict[str, list[list[str]]] = {"dense": [], "dense+date": [], "hybrid": [], "hybrid+date": []}
    wall, cpu = _timed_pass(pipeline, qs, configs, top)
    parts: dict[str, list[float]] = {"query_embedding": [], "faiss_dense": [], "faiss_dense+date": [],
                                     "bm25": [], "bm25+date": [], "filter_mask": []}
    vecs = []
    for q in qs:
        t0 = time.perf_counter()
        vec = embed_query(emb, q)
        parts["query_embedding"].append(time.perf_counter() - t0)
        vecs.append(vec)
        t0 = time.perf_counter()
        m = allowed_rows(index, flt)
        parts["filter_mask"].append(time.perf_counter() - t0)
        for suffix, allowed in (("", None), ("+date", m)):
            t0 = time.perf_counter()
            index.dense.search(vec, 50, allowed)
            parts["faiss_dense" + suffix].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            index.keyword.search(q, 50, allowed)
            parts["bm25" + suffix].append(time.perf_counter() - t0)
    mem["after_searches"] = rss_mb()

    sweep = None
    if index.dense.kind == "hnsw":  # efSearch sweep against exact scores of the same vectors
        allv = np.asarray(index.vectors, dtype=np.float32)
        sweep = {}
        for ef in (64, 128, 256, 512):
            rec, lat = [], []
            for vec in vecs:
                exact = set(np.argsort(-(allv @ vec), kind="stable")[:K].tolist())
                t0 = time.perf_counter()
                rows, _ = index.dense.search(vec, K, None, ef_search=ef)
                lat.append(time.perf_counter() - t0)
                rec.append(len(exact & set(rows.tolist())) / K)
            sweep[ef] = {"recall_at_10": round(float(np.mean(rec)), 4), **summary_ms(lat)}
        del allv

    out.write_text(json.dumps({
        "index_dir": str(index_dir), "kind": index.manifest.index_kind, "chunks": index.size,
        "queries": len(qs), "k": K, "warmup_queries": WARMUP, "index_load_s": round(load_s, 2),
        "date_filter": {"since": SINCE, "until": UNTIL, "fraction_of_chunks": round(selectivity, 4)},
        "threads": threads,
        "latency": {name: summary_ms(v) for name, v in wall.items()},
        "cpu_per_search": {name: summary_ms(v) for name, v in cpu.items()},
        "latency_library_defaults": {name: summary_ms(v) for name, v in d_wall.items()},
        "cpu_per_search_library_defaults": {name: summary_ms(v) for name, v in d_cpu.items()},
        "parts_note": "components timed on their own, one thread; faiss/bm25 at depth 50 as in hybrid",
        "parts": {name: summary_ms(v) for name, v in parts.items()},
        "hnsw_ef_sweep_dense_k10": sweep,
        "memory_mb": mem, "top10": top,
    }))


def run_worker(index_dir: Path, args: argparse.Namespace) -> dict[str, Any]:
    out = CACHE / f"worker-{index_dir.name}.json"
    cmd = [sys.executable, __file__, "--worker", str(index_dir), "--queries", str(args.queries),
           "--worker-out", str(out), "--torch-threads", str(args.torch_threads),
           "--faiss-threads", str(args.faiss_threads), "--default-queries", str(args.default_queries)]
    log(f"measuring {index_dir.name} ...")
    subprocess.run(cmd, check=True, cwd=ROOT)
    return json.loads(out.read_text())


def recall(approx: list[list[str]], exact: list[list[str]]) -> float:
    vals = [len(set(a) & set(e)) / len(e) for a, e in zip(approx, exact) if e]
    return round(float(np.mean(vals)), 4) if vals else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--hnsw-at", type=int, nargs="*", default=[100_000])
    ap.add_argument("--noise", type=float, default=0.4)
    ap.add_argument("--torch-threads", type=int, default=1,
                    help="torch threads for query embedding in the main timed pass (0: torch's default)")
    ap.add_argument("--faiss-threads", type=int, default=1,
                    help="FAISS OpenMP threads in the main timed pass (0: FAISS's default)")
    ap.add_argument("--default-queries", type=int, default=40,
                    help="queries timed first with the library's default thread counts")
    ap.add_argument("--rebuild", action="store_true", help="rebuild indexes cached in bench-out/search")
    ap.add_argument("--worker", type=Path, help=argparse.SUPPRESS)
    ap.add_argument("--worker-out", type=Path, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker:
        worker(args.worker, args.queries, args.worker_out, args.torch_threads, args.faiss_threads,
               args.default_queries)
        return

    from rag.embed import SentenceTransformerEmbedder

    env = environment()
    log(f"load avg {env['loadavg_at_start']}; busy: {env['other_busy_processes_at_start']}")
    CACHE.mkdir(parents=True, exist_ok=True)
    real = SentenceTransformerEmbedder()
    full, body, articles, per_article = base_vectors(real)
    n_chunks = sum(per_article.values())
    log(f"BBC at default settings: {len(articles)} articles, {n_chunks} chunks "
        f"({len(full)} distinct embedding texts)")
    results: dict[str, Any] = {
        "command": "bench/search_latency.py " + " ".join(sys.argv[1:]),
        "method": __doc__[__doc__.index("How the corpora are made"):].strip(),
        "noise_norm": args.noise, "bbc_base": {"articles": len(articles), "chunks": n_chunks, "distinct_texts": len(full)},
        "torch_threads_for_timed_searches": args.torch_threads or "torch default",
        "runs": [], "environment": env,
    }
    for size in args.sizes:
        corpus = CACHE / f"corpus-{size}.jsonl.gz"
        made = write_corpus(articles, per_article, size, corpus)  # cheap; needed only to build
        kinds = ["exact"] + (["hnsw"] if size in args.hnsw_at else [])
        measured = {}
        for kind in kinds:
            idx = CACHE / f"idx-{size}-{kind}"
            marker = CACHE / f"idx-{size}-{kind}.build.json"
            if (not args.rebuild and marker.exists() and (idx / "manifest.json").exists()
                    and json.loads(marker.read_text()).get("noise") == args.noise):
                info = json.loads(marker.read_text())
                log(f"reusing {idx.name} (built earlier; --rebuild to build again)")
            else:
                info = build(real, full, body, corpus, idx, kind, args.noise)
                info["corpus"] = made
                info["noise"] = args.noise
                marker.write_text(json.dumps(info))
            w = run_worker(CACHE / f"idx-{size}-{kind}", args)
            measured[kind] = w
            run = {"target_chunks": size, "build": info,
                   **{k: v for k, v in w.items() if k != "top10"}}
            if kind == "hnsw":
                ex = measured["exact"]["top10"]
                run["recall_at_10_vs_exact"] = {name: recall(w["top10"][name], ex[name]) for name in ex}
            results["runs"].append(run)
        corpus.unlink(missing_ok=True)

    print("\nlatency per search, k=10, query embedding included (ms)")
    rows = []
    for r in results["runs"]:
        for name, st in r["latency"].items():
            d = r["latency_library_defaults"][name]
            rows.append([f"{r['chunks']:,}", r["kind"], name, st["p50_ms"], st["p95_ms"],
                         r["cpu_per_search"][name]["p50_ms"], d["p50_ms"], d["p95_ms"]])
    table(rows, ["chunks", "index", "mode", "p50 1-thr", "p95 1-thr", "CPU p50 1-thr",
                 "p50 defaults", "p95 defaults"])
    print()
    rows = []
    for r in results["runs"]:
        p = r["parts"]
        m = r["memory_mb"]
        rows.append([f"{r['chunks']:,}", r["kind"], p["query_embedding"]["p50_ms"], p["faiss_dense"]["p50_ms"],
                     p["bm25"]["p50_ms"], m["model_loaded"]["rss_mb"], m["after_searches"]["rss_mb"],
                     round(m["after_searches"]["rss_mb"] - m["model_loaded"]["rss_mb"], 1),
                     r["build"]["build_s"], r["build"]["disk_mb"]])
    table(rows, ["chunks", "index", "q-embed p50", "faiss@50 p50", "bm25@50 p50", "RSS model MiB",
                 "RSS end MiB", "index MiB", "build s", "disk MiB"])
    for r in results["runs"]:
        if r.get("recall_at_10_vs_exact"):
            print(f"\nHNSW at {r['chunks']:,} chunks: top-10 agreement with the exact index "
                  + ", ".join(f"{k} {v:.3f}" for k, v in r["recall_at_10_vs_exact"].items()))
            print("efSearch sweep (dense, k=10): " + ", ".join(
                f"ef={ef}: recall {v['recall_at_10']:.3f}, p50 {v['p50_ms']:.2f} ms"
                for ef, v in r["hnsw_ef_sweep_dense_k10"].items()))
    finish("search_latency", results)


if __name__ == "__main__":
    main()
