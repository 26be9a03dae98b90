"""The compressed dense index (IVF + codes, re-scored on the float vectors) at 1M synthetic vectors.

Reproduces BENCHMARKS.md, "Search latency and ANN recall" > "The compressed index (ivf)"
(bench/results/ann_ivf-*.json). Three phases, each its own run:

    .venv/bin/python bench/ann_ivf.py sweep     # nlist x code x nprobe x re-score depth
    .venv/bin/python bench/ann_ivf.py library   # the shipped settings through rag.index.dense
    .venv/bin/python bench/ann_ivf.py drift     # recall when the data drifts from the training sample

Options: [--n 1000000] [--queries 1000] [--latency-queries 200] [--clusters 2000] [--threads 2].

Data: bench/ann_recall.py's clustered Gaussian mixture (384-d, L2-normalised, 2,000 Zipf-sized
anisotropic clusters with a shared direction; its shape was checked there against real MiniLM
vectors). The base vectors are written once to bench-out/ivf/vectors-N.npy and searched, as the
library does, through ``np.load(mmap_mode="r")``. Ground truth: exact inner product
(``faiss.knn``). Recall@10 is against that exact top 10.

- ``sweep``: one coarse quantizer per nlist (spherical k-means on a 100k sample), shared by every
  code (SQ8, PQ32, PQ48, PQ96 with 8-bit codes); vectors assigned once per nlist and added
  pre-assigned. Recall from batch searches; latency from one query at a time on one thread
  (IVF search to the re-score depth, then the candidates' float rows from the memory-mapped file).
- ``library``: ``build_dense(vectors, "ivf")`` timed as training + adding, saved with
  ``DenseSearcher.save``; then a fresh process loads it with the memory-mapped floats and reports
  RSS (anonymous: what the index itself holds; file-backed: float pages the searches touched,
  which the page cache may drop) and ``DenseSearcher.search`` latency (1 thread, as shipped; and
  the raw FAISS call with 2 threads), unfiltered and under a 20% and a 2% row filter.
- ``drift``: the quantizer trained on a sample from only some of the clusters (older news),
  then every vector added without retraining: recall and the drift statistic the library checks.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import faiss  # noqa: E402
import numpy as np  # noqa: E402
from _common import SCRATCH, Timer, environment, finish, log, summary_ms, table  # noqa: E402
from ann_recall import DIM, K, Mixture  # noqa: E402
from faiss.contrib.ivf_tools import add_preassigned  # noqa: E402

OUT = SCRATCH / "ivf"
CODES = {"SQ8": None, "PQ32": 32, "PQ48": 48, "PQ96": 96}


def data(args: argparse.Namespace) -> tuple[np.ndarray, np.ndarray, np.ndarray, Mixture]:
    """Memory-mapped base vectors, queries and exact top-10 rows (cached in bench-out/ivf/)."""
    OUT.mkdir(parents=True, exist_ok=True)
    mix = Mixture(args.clusters, seed=1, spread=1.0, shared=0.5)
    path = OUT / f"vectors-{args.n}.npy"
    gt_path = OUT / f"gt-{args.n}-{args.queries}.npy"
    if not path.exists():
        with Timer() as tm:
            base = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(args.n, DIM))
            for lo in range(0, args.n, 500_000):
                m = min(500_000, args.n - lo)
                base[lo:lo + m] = mix.sample(m, seed=2 + lo)
            base.flush()
            del base
        log(f"wrote {path} in {tm.seconds:.0f}s")
    queries = mix.sample(args.queries, seed=3)
    base = np.load(path, mmap_mode="r")
    if not gt_path.exists():
        with Timer() as tm:
            _, gt = faiss.knn(queries, np.ascontiguousarray(base), K, metric=faiss.METRIC_INNER_PRODUCT)
        np.save(gt_path, gt)
        log(f"exact top {K} in {tm.seconds:.0f}s")
    return base, queries, np.load(gt_path), mix


def recall(found: np.ndarray, gt: np.ndarray) -> float:
    return float(np.mean([len(set(f[:K]) & set(g)) / K for f, g in zip(found, gt)]))


def rescored(base: np.ndarray, q: np.ndarray, cand: np.ndarray, k: int = K) -> np.ndarray:
    cand = np.sort(cand[cand >= 0])
    scores = base[cand] @ q
    return cand[np.argsort(-scores, kind="stable")[:k]]


def sweep(args: argparse.Namespace) -> None:
    base, queries, gt, _ = data(args)
    rng = np.random.default_rng(0)
    sample = np.ascontiguousarray(base[np.sort(rng.choice(len(base), 100_000, replace=False))])
    rows, records = [], []
    for nlist in args.nlists:
        with Timer() as tm:
            km = faiss.Kmeans(DIM, nlist, niter=20, seed=1, spherical=True)
            km.train(sample)
        train_s = tm.seconds
        quantizer = faiss.IndexFlatIP(DIM)
        quantizer.add(km.centroids)
        with Timer() as tm:
            assign = np.concatenate([quantizer.search(np.ascontiguousarray(base[lo:lo + 100_000]), 1)[1].ravel()
                                     for lo in range(0, len(base), 100_000)])
        assign_s = tm.seconds
        log(f"nlist {nlist}: k-means {train_s:.0f}s, assignment {assign_s:.0f}s")
        for code in args.codes:
            m = CODES[code]
            if m is None:
                index = faiss.IndexIVFScalarQuantizer(quantizer, DIM, nlist, faiss.ScalarQuantizer.QT_8bit,
                                                      faiss.METRIC_INNER_PRODUCT)
            else:
                index = faiss.IndexIVFPQ(quantizer, DIM, nlist, m, 8, faiss.METRIC_INNER_PRODUCT)
            with Timer() as tm:
                index.train(sample)
            code_train_s = tm.seconds
            with Timer() as tm:
                for lo in range(0, len(base), 100_000):
                    add_preassigned(index, np.ascontiguousarray(base[lo:lo + 100_000]), assign[lo:lo + 100_000])
            add_s = tm.seconds
            code_bytes = index.code_size
            for nprobe in args.nprobes:
                index.nprobe = nprobe
                _, found = index.search(queries, max(args.depths))
                rec = {"nlist": nlist, "code": code, "code_bytes": code_bytes, "nprobe": nprobe,
                       "kmeans_s": round(train_s, 1), "code_train_s": round(code_train_s, 1),
                       "assign_s": round(assign_s, 1), "add_s": round(add_s, 1),
                       "recall_codes_only": round(recall(found, gt), 4), "rescored": {}}
                for depth in args.depths:
                    top = np.stack([rescored(base, q, f[:depth]) for q, f in zip(queries, found)])
                    rec["rescored"][depth] = {"recall_at_10": round(recall(top, gt), 4)}
                depth = max(args.depths)
                faiss.omp_set_num_threads(1)
                lat, cpu = [], []
                for q in queries[:args.latency_queries]:
                    t0, c0 = time.perf_counter(), time.process_time()
                    _, f = index.search(q.reshape(1, -1), depth)
                    rescored(base, q, f[0])
                    lat.append(time.perf_counter() - t0)
                    cpu.append(time.process_time() - c0)
                faiss.omp_set_num_threads(args.threads)
                rec["latency_1_thread"] = summary_ms(lat)
                rec["cpu_ms_p50"] = summary_ms(cpu)["p50_ms"]
                records.append(rec)
                rows.append([nlist, code, code_bytes, nprobe, rec["recall_codes_only"],
                             *[rec["rescored"][d]["recall_at_10"] for d in args.depths],
                             rec["latency_1_thread"]["p50_ms"], rec["cpu_ms_p50"]])
                log(" ".join(str(x) for x in rows[-1]))
            del index
    print(f"\nIVF sweep on {args.n:,} clustered vectors, {args.queries} queries "
          f"(latency: {args.latency_queries} queries, 1 thread, re-score depth {max(args.depths)})\n")
    table(rows, ["nlist", "code", "bytes", "nprobe", "R@10 codes", *[f"R@10 re-scored {d}" for d in args.depths],
                 "p50 ms", "CPU p50 ms"])
    finish(f"ann_ivf-sweep-{args.n}", {"command": "bench/ann_ivf.py " + " ".join(sys.argv[1:]),
                                       "n": args.n, "queries": args.queries, "records": records,
                                       "environment": environment()})


def library(args: argparse.Namespace) -> None:
    from rag.index.dense import DenseSearcher, build_dense

    base, queries, gt, _ = data(args)
    folder = OUT / f"gen-{args.n}"
    folder.mkdir(exist_ok=True)
    vectors = np.ascontiguousarray(base)  # the build path holds the vectors in memory, as build.py does
    with Timer() as tm:
        index = build_dense(vectors, "ivf")
    build_s, build_cpu = tm.seconds, tm.cpu_seconds
    del vectors
    searcher = DenseSearcher(index, base, "ivf")
    searcher.save(folder / "dense.faiss")
    del index, searcher
    os.link(OUT / f"vectors-{args.n}.npy", folder / "vectors.npy") if not (folder / "vectors.npy").exists() else None
    log(f"build_dense(ivf): {build_s:.0f}s ({build_cpu:.0f} CPU-s)")
    probe = subprocess.run([sys.executable, __file__, "_probe", "--n", str(args.n), "--queries", str(args.queries),
                            "--latency-queries", str(args.latency_queries), "--clusters", str(args.clusters)],
                           capture_output=True, text=True, check=True)
    result = json.loads(probe.stdout.splitlines()[-1])
    result.update({"command": "bench/ann_ivf.py " + " ".join(sys.argv[1:]), "n": args.n,
                   "build_s": round(build_s, 1), "build_cpu_s": round(build_cpu, 1),
                   "disk_mb": {p.name: round(p.stat().st_size / 2**20, 1) for p in sorted(folder.iterdir())},
                   "environment": environment()})
    print(json.dumps({k: v for k, v in result.items() if k != "environment"}, indent=1))
    finish(f"ann_ivf-library-{args.n}", result)


def probe(args: argparse.Namespace) -> None:
    """Run in a fresh process: load the saved index as ``load_index`` does, then search."""
    from rag.index import ivf
    from rag.index.dense import DenseSearcher

    def rss() -> dict[str, float]:
        out = {}
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile"):
                out[key] = round(int(value.split()[0]) / 1024, 1)
        return out

    base, queries, gt, _ = data(args)
    folder = OUT / f"gen-{args.n}"
    before = rss()
    vectors = np.load(folder / "vectors.npy", mmap_mode="r")
    with Timer() as tm:
        searcher = DenseSearcher.load(folder / "dense.faiss", vectors, "ivf")
    loaded = rss()
    out: dict = {"load_s": round(tm.seconds, 2), "rss_mb": {"before_load": before, "after_load": loaded}}
    found = np.stack([searcher.search(q, K)[0] for q in queries])
    out["recall_at_10"] = round(recall(found, gt), 4)
    lat, cpu = [], []
    for q in queries[:args.latency_queries]:
        t0, c0 = time.perf_counter(), time.process_time()
        searcher.search(q, K)
        lat.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    out["latency_1_thread"] = summary_ms(lat)
    out["cpu_ms_p50"] = summary_ms(cpu)["p50_ms"]
    out["rss_mb"]["after_searches"] = rss()
    # The raw FAISS call with 2 OpenMP threads plus the same re-scoring, for the 2-thread figure.
    index = searcher.index
    faiss.omp_set_num_threads(2)
    lat2 = []
    for q in queries[:args.latency_queries]:
        t0 = time.perf_counter()
        _, f = index.search(q.reshape(1, -1), ivf.depth(K), params=faiss.SearchParametersIVF(nprobe=ivf.NPROBE))
        rescored(vectors, q, f[0])
        lat2.append(time.perf_counter() - t0)
    out["latency_2_threads_raw"] = summary_ms(lat2)
    rng = np.random.default_rng(5)
    for share in (0.2, 0.02):
        allowed = rng.random(len(vectors)) < share
        exact = [np.flatnonzero(allowed)[np.argsort(-(vectors[np.flatnonzero(allowed)] @ q))[:K]]
                 for q in queries[:100]]
        lat, got = [], []
        for q in queries[:100]:
            t0 = time.perf_counter()
            rows, _ = searcher.search(q, K, allowed)
            lat.append(time.perf_counter() - t0)
            got.append(rows)
            assert allowed[rows].all()
        out[f"filter_{share}"] = {"rows": int(allowed.sum()), "recall_at_10": round(recall(got, exact), 4),
                                  **summary_ms(lat)}
    print(json.dumps(out))


def drift(args: argparse.Namespace) -> None:
    """Train on a sample from a share of the clusters, add everything, compare recall and fit."""
    from rag.index import ivf
    from rag.index.dense import DenseSearcher

    base, queries, gt, mix = data(args)
    vectors = np.ascontiguousarray(base)
    centres = faiss.IndexFlatIP(DIM)
    centres.add(mix.centres)
    labels = centres.search(vectors, 1)[1].ravel()  # each vector's nearest cluster centre
    rows = []
    records = []
    for share in args.shares:
        keep = np.arange(len(mix.centres))[: max(1, int(share * len(mix.centres)))]
        pool = np.flatnonzero(np.isin(labels, keep))
        with Timer() as tm:
            trained = ivf.train(vectors[pool], generation="bench", sized_for=len(vectors))
        index = ivf.fill(trained.index, vectors)
        searcher = DenseSearcher(index, base, "ivf")
        found = np.stack([searcher.search(q, K)[0] for q in queries])
        fit_now = ivf.fit(trained.index, vectors)
        rec = {"train_share_of_clusters": share, "train_rows": int(min(len(pool), ivf.TRAIN_SAMPLE)),
               "train_s": round(tm.seconds, 1), "fit_at_training": trained.info.fit, "fit_of_all": fit_now,
               "recall_at_10": round(recall(found, gt), 4),
               "retrain_reason": ivf.retrain_reason(trained.info, fit_now, len(vectors))}
        records.append(rec)
        rows.append([share, rec["train_rows"], rec["fit_at_training"], fit_now, rec["recall_at_10"],
                     rec["retrain_reason"] or "-"])
        log(" ".join(map(str, rows[-1])))
    table(rows, ["clusters in sample", "sample rows", "fit at training", "fit of all", "R@10", "retrain?"])
    finish(f"ann_ivf-drift-{args.n}", {"command": "bench/ann_ivf.py " + " ".join(sys.argv[1:]), "n": args.n,
                                       "records": records, "environment": environment()})


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("phase", choices=["sweep", "library", "drift", "_probe"])
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--latency-queries", type=int, default=200)
    ap.add_argument("--clusters", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--nlists", type=int, nargs="*", default=[1024, 4096])
    ap.add_argument("--codes", nargs="*", default=list(CODES), choices=list(CODES))
    ap.add_argument("--nprobes", type=int, nargs="*", default=[8, 16, 32, 64])
    ap.add_argument("--depths", type=int, nargs="*", default=[50, 100, 200])
    ap.add_argument("--shares", type=float, nargs="*", default=[1.0, 0.5, 0.2])
    args = ap.parse_args()
    faiss.omp_set_num_threads(args.threads)
    {"sweep": sweep, "library": library, "drift": drift, "_probe": probe}[args.phase](args)


if __name__ == "__main__":
    main()
