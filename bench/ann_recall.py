"""Recall@10 and latency of the project's FAISS HNSW index at up to 1M synthetic 384-d vectors.

Reproduces BENCHMARKS.md, "Search latency and ANN recall" > "ANN recall at 1M vectors"
(bench/results/ann_recall.json; the defaults are the recorded run's settings):

    .venv/bin/python bench/ann_recall.py

Options: [--n 1000000] [--queries 1000] [--clusters 2000] [--spread 1.0] [--shared 0.5]
[--batch 50000] [--budget-min 20] [--threads 2].

Data: NOT uniform random. A clustered Gaussian mixture in 384 dimensions, L2-normalised:
``--clusters`` centres (Gaussian directions plus a shared component, as sentence embeddings have
one, so random pairs have cosine ~0.1 rather than 0), cluster sizes drawn from a Zipf-like law,
and within-cluster noise with a decaying (power-law) variance spectrum, i.e. anisotropic, lower
intrinsic dimension than isotropic noise. Queries (``--queries``) are drawn from the same
mixture, independently of the base vectors. Summary statistics (cosine to the nearest neighbour,
cosine of random pairs) are printed next to those of real all-MiniLM-L6-v2 vectors of BBC chunks
when bench/search_latency.py or bench/reindex_throughput.py has cached them in bench-out/search/.

Index: the library's own ``build_dense(vectors, "hnsw")`` (rag/index/dense.py: IndexHNSWFlat, inner
product, M=32, efConstruction=80), built from the first batch and then grown with ``index.add`` in
batches of ``--batch`` vectors, with recall measured at checkpoints on the way. If the build would
not finish within ``--budget-min`` minutes in all, adding stops early, and the table says at what
size; the time per batch is recorded so the full build time can be extrapolated.
Ground truth: exact inner product (``IndexFlatIP``) over the same rows. Threads: 2
(``faiss.omp_set_num_threads(2)``). Latency: one query at a time, as the project searches, with
2 threads and again with 1. efSearch is swept over 64, 128 and 256 whatever the shipped default is.
Output: table on stdout, bench/results/ann_recall.json.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import SEARCH_SCRATCH as CACHE, Timer, environment, finish, log, rss_mb, summary_ms, table  # noqa: E402

import faiss  # noqa: E402
import numpy as np  # noqa: E402

from rag.index.dense import HNSW_EF_CONSTRUCTION, HNSW_M, build_dense  # noqa: E402

DIM = 384
EF_SEARCH = (64, 128, 256)
K = 10


class Mixture:
    def __init__(self, clusters: int, seed: int, spread: float, shared: float) -> None:
        rng = np.random.default_rng(seed)
        common = rng.standard_normal(DIM)
        common /= np.linalg.norm(common)
        centres = rng.standard_normal((clusters, DIM))
        centres /= np.linalg.norm(centres, axis=1, keepdims=True)
        centres = centres + shared * common
        self.centres = (centres / np.linalg.norm(centres, axis=1, keepdims=True)).astype(np.float32)
        w = 1.0 / np.arange(1, clusters + 1) ** 0.7
        self.weights = rng.permutation(w / w.sum())
        spectrum = 1.0 / np.arange(1, DIM + 1) ** 0.8  # decaying variance per (random) direction
        self.scale = (np.sqrt(spectrum / spectrum.sum()) * spread).astype(np.float32)
        q, _ = np.linalg.qr(rng.standard_normal((DIM, DIM)))
        self.rotation = q.astype(np.float32)

    def sample(self, n: int, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        out = np.empty((n, DIM), dtype=np.float32)
        for lo in range(0, n, 100_000):
            m = min(100_000, n - lo)
            labels = rng.choice(len(self.centres), size=m, p=self.weights)
            noise = rng.standard_normal((m, DIM), dtype=np.float32) * self.scale
            x = self.centres[labels] + noise @ self.rotation
            out[lo:lo + m] = x / np.linalg.norm(x, axis=1, keepdims=True)
        return out


def shape_stats(base: np.ndarray, queries: np.ndarray, nn_scores: np.ndarray) -> dict[str, float]:
    rng = np.random.default_rng(7)
    a = base[rng.integers(0, len(base), 5000)]
    b = base[rng.integers(0, len(base), 5000)]
    return {"random_pair_cos_mean": round(float(np.mean(np.sum(a * b, axis=1))), 3),
            "nn1_cos_mean": round(float(np.mean(nn_scores[:, 0])), 3),
            "nn10_cos_mean": round(float(np.mean(nn_scores[:, K - 1])), 3)}


def real_stats() -> dict[str, float] | None:
    """The same statistics on real MiniLM vectors of BBC chunks (query = a held-out chunk)."""
    cached = sorted(CACHE.glob("bbc-vectors-*.npy"))
    if not cached:
        return None
    v = np.load(cached[0]).astype(np.float32)
    rng = np.random.default_rng(3)
    qi = rng.choice(len(v), size=min(500, len(v) // 5), replace=False)
    rest = np.setdiff1d(np.arange(len(v)), qi)
    flat = faiss.IndexFlatIP(DIM)
    flat.add(v[rest])
    scores, _ = flat.search(v[qi], K)
    stats = shape_stats(v[rest], v[qi], scores)
    stats["vectors"] = int(len(v))
    stats["note"] = ("neighbours within one article (overlapping chunks) inflate nn1 for real data; "
                     "a 2,088-article corpus is also far smaller than 1M")
    return stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--clusters", type=int, default=2000)
    ap.add_argument("--spread", type=float, default=1.0, help="norm of within-cluster noise")
    ap.add_argument("--shared", type=float, default=0.5, help="weight of the shared direction")
    ap.add_argument("--batch", type=int, default=50_000)
    ap.add_argument("--checkpoints", type=int, nargs="*", default=[100_000, 250_000, 500_000])
    ap.add_argument("--budget-min", type=float, default=20.0)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    started = time.perf_counter()
    faiss.omp_set_num_threads(args.threads)
    env = environment()
    env["faiss_threads"] = args.threads
    log(f"load avg {env['loadavg_at_start']}; busy: {env['other_busy_processes_at_start']}")

    mix = Mixture(args.clusters, seed=1, spread=args.spread, shared=args.shared)
    with Timer() as tm:
        base = mix.sample(args.n, seed=2)
        queries = mix.sample(args.queries, seed=3)
    gen_s = tm.seconds
    log(f"generated {args.n:,} + {args.queries} vectors in {gen_s:.0f}s")
    mem0 = rss_mb()

    def evaluate(index: faiss.Index, n: int) -> dict:
        flat = faiss.IndexFlatIP(DIM)
        flat.add(base[:n])
        with Timer() as tm:
            gt_scores, gt = flat.search(queries, K)
        exact_lat, exact_lat1 = [], []
        for q in queries[:50]:
            t0 = time.perf_counter()
            flat.search(q.reshape(1, -1), K)
            exact_lat.append(time.perf_counter() - t0)
        faiss.omp_set_num_threads(1)
        for q in queries[:50]:
            t0 = time.perf_counter()
            flat.search(q.reshape(1, -1), K)
            exact_lat1.append(time.perf_counter() - t0)
        faiss.omp_set_num_threads(args.threads)
        del flat
        out = {"n": n, "exact_batch_search_s": round(tm.seconds, 2), "exact_latency": summary_ms(exact_lat),
               "exact_latency_1_thread": summary_ms(exact_lat1),
               "data_stats": shape_stats(base[:n], queries, gt_scores), "ef": {}}
        for ef in EF_SEARCH:
            params = faiss.SearchParametersHNSW(efSearch=ef)
            lat, hits = [], np.empty((len(queries), K), dtype=np.int64)
            for i, q in enumerate(queries):
                t0 = time.perf_counter()
                _, rows = index.search(q.reshape(1, -1), K, params=params)
                lat.append(time.perf_counter() - t0)
                hits[i] = rows[0]
            rec = np.mean([len(set(hits[i]) & set(gt[i])) / K for i in range(len(queries))])
            faiss.omp_set_num_threads(1)
            lat1 = []
            for q in queries:
                t0 = time.perf_counter()
                index.search(q.reshape(1, -1), K, params=params)
                lat1.append(time.perf_counter() - t0)
            faiss.omp_set_num_threads(args.threads)
            out["ef"][ef] = {"recall_at_10": round(float(rec), 4), **summary_ms(lat),
                             "p50_ms_1_thread": summary_ms(lat1)["p50_ms"]}
        log(f"n={n:,}: " + ", ".join(f"ef={ef}: recall {v['recall_at_10']:.3f} p50 {v['p50_ms']:.2f} ms"
                                     for ef, v in out["ef"].items()))
        return out

    # Build: build_dense on the first batch, then grow with add(), timing each batch.
    batch_times: list[tuple[int, float]] = []
    checkpoints = []
    eval_reserve = 90.0  # seconds kept for one evaluation at the end (grows with n, checked below)
    budget = args.budget_min * 60
    with Timer() as tm:
        index = build_dense(base[:args.batch], "hnsw")
    batch_times.append((args.batch, tm.seconds))
    n = args.batch
    stopped_early = None
    while n < args.n:
        if n in args.checkpoints:
            checkpoints.append(evaluate(index, n))
        elapsed = time.perf_counter() - started
        per_vec = batch_times[-1][1] / args.batch
        nxt = min(args.batch, args.n - n)
        reserve = eval_reserve + (checkpoints[-1]["exact_batch_search_s"] * 4 if checkpoints else 0)
        if elapsed + per_vec * nxt * 1.1 + reserve > budget:
            stopped_early = {"at": n, "elapsed_s": round(elapsed, 1),
                             "reason": f"next batch would end past the {args.budget_min:g}-minute budget"}
            log(f"stopping the build at {n:,}: {stopped_early['reason']}")
            break
        with Timer() as tm:
            index.add(base[n:n + nxt])
        n += nxt
        batch_times.append((n, tm.seconds))
        log(f"added up to {n:,}: {tm.seconds:.1f}s for this batch ({nxt / tm.seconds:,.0f} vectors/s), "
            f"load {np.round(np_load(), 1).tolist()}")
    build_s = sum(t for _, t in batch_times)
    mem_built = rss_mb()
    final = evaluate(index, n)
    mem_end = rss_mb()

    # Extrapolate: HNSW insertion cost grows roughly with log(n); use the last batches' rate.
    tail = batch_times[-3:]
    rate = sum(args.batch for _ in tail) / sum(t for _, t in tail)
    projected = build_s + (args.n - n) / rate if n < args.n else build_s
    raw_bytes = n * DIM * 4
    result = {
        "command": "bench/ann_recall.py " + " ".join(sys.argv[1:]),
        "data": {"kind": "clustered Gaussian mixture, L2-normalised (not uniform random)",
                 "n_requested": args.n, "queries": args.queries, "clusters": args.clusters,
                 "spread": args.spread, "shared": args.shared, "generate_s": round(gen_s, 1),
                 "real_minilm_bbc_stats": real_stats()},
        "index": {"builder": "rag.index.dense.build_dense(first batch, 'hnsw') + index.add(batches)",
                  "M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION, "threads": args.threads},
        "built_n": n, "stopped_early": stopped_early,
        "build_s": round(build_s, 1), "build_vectors_per_s": round(n / build_s, 1),
        "projected_full_build_s": round(projected, 0),
        "batch_seconds": [[m, round(t, 2)] for m, t in batch_times],
        "memory_mb": {"after_generating_data": mem0, "after_build": mem_built, "end": mem_end,
                      "hnsw_index_rss_delta_mb": round(mem_built["rss_mb"] - mem0["rss_mb"], 1),
                      "raw_vectors_mb": round(raw_bytes / 2**20, 1),
                      "hnsw_links_estimate_mb": round(n * HNSW_M * 2 * 4 * 1.05 / 2**20, 1)},
        "checkpoints": checkpoints, "final": final,
        "total_runtime_s": round(time.perf_counter() - started, 1),
        "environment": env,
    }
    print(f"\nHNSW (M={HNSW_M}, efConstruction={HNSW_EF_CONSTRUCTION}) on {n:,} clustered synthetic "
          f"384-d vectors, {args.queries} queries, {args.threads} threads; build {build_s:.0f}s "
          f"({n / build_s:,.0f} vectors/s){'' if n == args.n else f', stopped early: projected {projected:.0f}s for {args.n:,}'}\n")
    rows = []
    for cp in checkpoints + [final]:
        for ef, v in cp["ef"].items():
            rows.append([f"{cp['n']:,}", ef, f"{v['recall_at_10']:.3f}", v["p50_ms"], v["p95_ms"],
                         v["p50_ms_1_thread"], cp["exact_latency"]["p50_ms"],
                         cp["exact_latency_1_thread"]["p50_ms"]])
    table(rows, ["vectors", "efSearch", "recall@10", "p50 ms", "p95 ms", "p50 ms 1-thr", "exact p50 ms",
                 "exact p50 1-thr"])
    print(f"\nRSS after build {mem_built['rss_mb']:.0f} MiB (index adds "
          f"{result['memory_mb']['hnsw_index_rss_delta_mb']:.0f} MiB over the raw data's process)")
    finish("ann_recall", result)


def np_load() -> np.ndarray:
    import os
    return np.asarray(os.getloadavg())


if __name__ == "__main__":
    main()
