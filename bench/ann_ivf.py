"""The compressed dense index (IVF + codes, re-scored on the float vectors) at 1M synthetic vectors.

Reproduces BENCHMARKS.md, "Search latency and ANN recall" > "The compressed index (ivf)"
(bench/results/ann_ivf-*.json). Three phases, each its own run:

    .venv/bin/python bench/ann_ivf.py sweep     # nlist x code x nprobe x re-score depth
    .venv/bin/python bench/ann_ivf.py library   # the shipped settings through rag.index.dense
    .venv/bin/python bench/ann_ivf.py drift     # recall when the data drifts from the training sample
    .venv/bin/python bench/ann_ivf.py stream --n 10000000   # the shipped settings, nothing held in RAM

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
- ``stream``: ``library`` for sizes whose floats do not fit in memory (10M x 384 is 15.4 GB). The
  vectors are generated 500k rows at a time (seeded per piece, so the first 1M rows equal the
  1M file) and written to bench-out/ivf/vectors-N.npy; the exact top 10 (unfiltered and under
  each ``--filter-shares`` row filter) comes from one chunked scan of that file, keeping the best
  10 per query across chunks; the index is built by the library's ``ivf.train`` and ``ivf.fill``
  on the memory-mapped file (a 100k-row training sample, then rows added 100k at a time: the
  build never holds the floats). A fresh process then evicts the file from the page cache
  (``posix_fadvise`` DONTNEED, this file only), loads the index as ``load_index`` does and times
  ``DenseSearcher.search`` cold (first touch of the re-scored rows) and warm (the same queries
  again), reports RSS, RssAnon and RssFile, and a small nprobe x re-score depth table. Every
  process aborts itself if its anonymous memory passes ``--max-anon-gb`` (default 12). A later
  run reuses the file, the ground truth and the built index (its record: stream-N/build.json)
  and only probes again.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import faiss  # noqa: E402
import numpy as np  # noqa: E402
from _common import SCRATCH, AnonGuard, Timer, environment, finish, log, status_mb, summary_ms, table  # noqa: E402
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


def filtered_search(searcher: Any, queries: np.ndarray, allowed: np.ndarray,
                    exact: np.ndarray) -> dict:
    """Recall@10 against ``exact`` and the latency of ``searcher`` under the row filter ``allowed``."""
    lat, got = [], []
    for q in queries:
        t0 = time.perf_counter()
        rows, _ = searcher.search(q, K, allowed)
        lat.append(time.perf_counter() - t0)
        got.append(rows)
        assert allowed[rows].all()
    return {"rows": int(allowed.sum()), "recall_at_10": round(recall(got, exact), 4), **summary_ms(lat)}


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
        out[f"filter_{share}"] = filtered_search(searcher, queries[:100], allowed, exact)
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


PIECE = 500_000  # rows generated and written at a time, seeded 2 + first row (as ``data`` writes them)


def _drop_cache(path: Path, offset: int = 0, length: int = 0) -> None:
    """Let the page cache drop this file's pages (only unmapped ones go): others share the machine."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.posix_fadvise(fd, offset, length, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def write_vectors(path: Path, n: int, mix: Mixture) -> float:
    """Rows 0..n-1 of the mixture written to ``path`` as .npy, ``PIECE`` rows at a time, each piece
    synced and dropped from the page cache behind it; returns the seconds taken."""
    partial = path.with_name(path.name + ".partial")
    with Timer() as tm:
        np.lib.format.open_memmap(partial, mode="w+", dtype=np.float32, shape=(n, DIM))._mmap.close()
        offset = np.load(partial, mmap_mode="r").offset
        with open(partial, "r+b") as f:
            for lo in range(0, n, PIECE):
                m = min(PIECE, n - lo)
                piece = mix.sample(m, seed=2 + lo)
                os.pwrite(f.fileno(), memoryview(piece).cast("B"), offset + lo * DIM * 4)
                os.fdatasync(f.fileno())
                os.posix_fadvise(f.fileno(), offset + lo * DIM * 4, m * DIM * 4, os.POSIX_FADV_DONTNEED)
                del piece
                if lo // PIECE % 4 == 0:
                    log(f"  wrote {lo + m:,} rows")
        partial.rename(path)
    return tm.seconds


def filter_masks(n: int, shares: list[float]) -> dict[str, np.ndarray]:
    """The allowed rows of each filter share, drawn the same way in every process."""
    rng = np.random.default_rng(5)
    return {str(share): rng.random(n) < share for share in shares}


def exact_chunked(path: Path, queries: np.ndarray, masks: dict[str, np.ndarray],
                  rows: int = 250_000) -> dict[str, np.ndarray]:
    """Exact top K rows of each query, unfiltered ("all") and within each mask, from one pass
    over the file in blocks of ``rows`` read (not mapped, so their pages can be dropped behind),
    keeping each query's best K across blocks."""
    base = np.load(path, mmap_mode="r")
    n, offset = base.shape[0], base.offset
    del base
    nq = len(queries)
    best = {name: (np.full((nq, K), -np.inf, dtype=np.float32), np.full((nq, K), -1, dtype=np.int64))
            for name in ["all", *masks]}
    buf = np.empty((rows, DIM), dtype=np.float32)
    with open(path, "rb") as f:
        for lo in range(0, n, rows):
            m = min(rows, n - lo)
            block = buf[:m]
            f.seek(offset + lo * DIM * 4)
            if f.readinto(memoryview(block).cast("B")) != m * DIM * 4:
                raise RuntimeError(f"{path} is shorter than its header says")
            os.posix_fadvise(f.fileno(), offset + lo * DIM * 4, m * DIM * 4, os.POSIX_FADV_DONTNEED)
            for name, (old_scores, old_ids) in best.items():
                keep = None if name == "all" else np.flatnonzero(masks[name][lo:lo + m])
                sub = block if keep is None else block[keep]
                if len(sub) == 0:
                    continue
                scores, ids = faiss.knn(queries, sub, min(K, len(sub)), metric=faiss.METRIC_INNER_PRODUCT)
                ids = lo + (ids if keep is None else keep[ids])
                all_scores = np.concatenate([old_scores, scores], axis=1)
                all_ids = np.concatenate([old_ids, ids], axis=1)
                top = np.argsort(-all_scores, axis=1, kind="stable")[:, :K]
                best[name] = (np.take_along_axis(all_scores, top, 1), np.take_along_axis(all_ids, top, 1))
            if lo // rows % 8 == 0:
                log(f"  exact scan: {lo + m:,} rows")
    return {name: ids for name, (_, ids) in best.items()}


def _stream_paths(args: argparse.Namespace) -> tuple[Path, Path, Path]:
    return (OUT / f"vectors-{args.n}.npy", OUT / f"gt-stream-{args.n}-{args.queries}.npz",
            OUT / f"stream-{args.n}")


def build_stream(args: argparse.Namespace, path: Path, folder: Path, guard: AnonGuard) -> dict:
    """Train and fill the index by the library's ivf functions on the memory-mapped file; save it."""
    from rag.index import ivf
    from rag.index.dense import DenseSearcher

    base = np.load(path, mmap_mode="r")
    folder.mkdir(exist_ok=True)
    mem_before = status_mb()
    with Timer() as train_t:
        trained = ivf.train(base, generation="bench")
    faiss.write_index(trained.index, str(folder / ivf.TRAINED))
    log(f"ivf.train: {train_t.seconds:.0f}s ({train_t.cpu_seconds:.0f} CPU-s), {trained.info}")
    with Timer() as add_t:
        index = ivf.fill(trained.index, base)
    log(f"ivf.fill: {add_t.seconds:.0f}s ({add_t.cpu_seconds:.0f} CPU-s)")
    DenseSearcher(index, base, "ivf").save(folder / "dense.faiss")
    build = {"train_s": round(train_t.seconds, 1), "train_cpu_s": round(train_t.cpu_seconds, 1),
             "add_s": round(add_t.seconds, 1), "add_cpu_s": round(add_t.cpu_seconds, 1),
             "build_s": round(train_t.seconds + add_t.seconds, 1),
             "ivf_info": trained.info.to_json(), "rss_mb_before": mem_before,
             "rss_mb_after": status_mb(), "peak_anon_mb": guard.peak_mb}
    del index, trained, base
    if not (folder / "vectors.npy").exists():
        os.link(path, folder / "vectors.npy")
    return {"build": build}


def stream(args: argparse.Namespace) -> None:
    """Generate, scan, build and save without holding the floats; then probe in a fresh process."""
    guard = AnonGuard(args.max_anon_gb * 1024)
    OUT.mkdir(parents=True, exist_ok=True)
    env = environment()
    mix = Mixture(args.clusters, seed=1, spread=1.0, shared=0.5)
    path, gt_path, folder = _stream_paths(args)
    result: dict = {"command": "bench/ann_ivf.py " + " ".join(sys.argv[1:]), "n": args.n,
                    "queries": args.queries, "filter_shares": args.filter_shares}
    if not path.exists():
        result["write_s"] = round(write_vectors(path, args.n, mix), 1)
        log(f"wrote {path} in {result['write_s']:.0f}s")
    queries = mix.sample(args.queries, seed=3)
    if not gt_path.exists():
        with Timer() as tm:
            gt = exact_chunked(path, queries, filter_masks(args.n, args.filter_shares))
        np.savez(gt_path, **gt)
        result["exact_scan_s"] = round(tm.seconds, 1)
        log(f"exact top {K} of {args.queries} queries (and under {len(args.filter_shares)} filters) "
            f"in {tm.seconds:.0f}s")
    if (folder / "build.json").exists():  # built by an earlier run: probe it again
        result.update(json.loads((folder / "build.json").read_text()), build_reused=True)
    else:
        result.update(build_stream(args, path, folder, guard))
        (folder / "build.json").write_text(json.dumps(
            {k: result[k] for k in ("write_s", "exact_scan_s", "build") if k in result}, indent=1) + "\n")
    _drop_cache(path)
    probe = subprocess.run([sys.executable, __file__, "_stream_probe", "--n", str(args.n),
                            "--queries", str(args.queries), "--latency-queries", str(args.latency_queries),
                            "--clusters", str(args.clusters), "--max-anon-gb", str(args.max_anon_gb),
                            "--filter-shares", *map(str, args.filter_shares)],
                           capture_output=True, text=True, check=False)
    sys.stderr.write(probe.stderr)
    if probe.returncode:
        raise SystemExit(f"the probe failed with exit status {probe.returncode}")
    result["search"] = json.loads(probe.stdout.splitlines()[-1])
    result["disk_mb"] = {p.name: round(p.stat().st_size / 2**20, 1) for p in sorted(folder.iterdir())
                         if p.suffix != ".json"}
    result["environment"] = env
    _drop_cache(path)
    print(json.dumps({k: v for k, v in result.items() if k != "environment"}, indent=1))
    finish(f"ann_ivf-stream-{args.n}", result)


def stream_probe(args: argparse.Namespace) -> None:
    """In a fresh process: the float file out of the page cache, the index loaded as
    ``load_index`` does, then cold and warm searches, recall, filters and a small sweep."""
    from rag.index import ivf
    from rag.index.dense import DenseSearcher

    guard = AnonGuard(args.max_anon_gb * 1024)
    _, gt_path, folder = _stream_paths(args)
    queries = Mixture(args.clusters, seed=1, spread=1.0, shared=0.5).sample(args.queries, seed=3)
    gt = np.load(gt_path)
    lq = queries[:args.latency_queries]
    _drop_cache(folder / "vectors.npy")
    out: dict = {"rss_mb": {"before_load": status_mb()}}
    vectors = np.load(folder / "vectors.npy", mmap_mode="r")
    with Timer() as tm:
        searcher = DenseSearcher.load(folder / "dense.faiss", vectors, "ivf")
    out["load_s"] = round(tm.seconds, 2)
    out["rss_mb"]["after_load"] = status_mb()

    def timed(qs: np.ndarray) -> tuple[list[float], list[float]]:
        lat, cpu = [], []
        for q in qs:
            t0, c0 = time.perf_counter(), time.process_time()
            searcher.search(q, K)
            lat.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        return lat, cpu

    lat, cpu = timed(lq)
    out["latency_cold"] = {**summary_ms(lat), "cpu_ms_p50": summary_ms(cpu)["p50_ms"]}
    out["rss_mb"]["after_cold_searches"] = status_mb()
    found = [searcher.search(q, K)[0] for q in queries]
    out["recall_at_10"] = round(recall(found, gt["all"]), 4)
    lat, cpu = timed(lq)
    out["latency_warm"] = {**summary_ms(lat), "cpu_ms_p50": summary_ms(cpu)["p50_ms"]}
    out["rss_mb"]["after_searches"] = status_mb()
    log(f"recall@10 {out['recall_at_10']}, cold p50 {out['latency_cold']['p50_ms']} ms, "
        f"warm p50 {out['latency_warm']['p50_ms']} ms, {out['rss_mb']['after_searches']}")
    index = searcher.index
    faiss.omp_set_num_threads(2)
    lat2 = []
    for q in lq:
        t0 = time.perf_counter()
        _, f = index.search(q.reshape(1, -1), ivf.depth(K), params=faiss.SearchParametersIVF(nprobe=ivf.NPROBE))
        rescored(vectors, q, f[0])
        lat2.append(time.perf_counter() - t0)
    out["latency_2_threads_raw"] = summary_ms(lat2)
    # nprobe x re-score depth, raw FAISS + the same re-scoring: recall on every query, latency
    # (1 thread, warm) at each depth on the latency queries.
    out["sweep"] = []
    depths = (100, 200, 500)
    for nprobe in (16, 32, 64):
        params = faiss.SearchParametersIVF(nprobe=nprobe)
        _, cand = index.search(queries, max(depths), params=params)
        rec = {"nprobe": nprobe}
        faiss.omp_set_num_threads(1)
        for d in depths:
            top = [rescored(vectors, q, c[:d]) for q, c in zip(queries, cand)]
            lat = []
            for q in lq:
                t0 = time.perf_counter()
                _, f = index.search(q.reshape(1, -1), d, params=params)
                rescored(vectors, q, f[0])
                lat.append(time.perf_counter() - t0)
            rec[str(d)] = {"recall_at_10": round(recall(top, gt["all"]), 4), "p50_ms": summary_ms(lat)["p50_ms"]}
        faiss.omp_set_num_threads(2)
        out["sweep"].append(rec)
        log(f"sweep {rec}")
    faiss.omp_set_num_threads(1)
    for share, allowed in filter_masks(len(vectors), args.filter_shares).items():
        out[f"filter_{share}"] = filtered_search(searcher, queries[:100], allowed, gt[share][:100])
        log(f"filter {share}: {out[f'filter_{share}']}")
    out["rss_mb"]["at_end"] = status_mb()
    out["peak_anon_mb"] = guard.peak_mb
    print(json.dumps(out))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("phase", choices=["sweep", "library", "drift", "stream", "_probe", "_stream_probe"])
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
    ap.add_argument("--filter-shares", type=float, nargs="*", default=[0.2, 0.02, 0.002])
    ap.add_argument("--max-anon-gb", type=float, default=12.0)
    args = ap.parse_args()
    faiss.omp_set_num_threads(args.threads)
    {"sweep": sweep, "library": library, "drift": drift, "stream": stream, "_probe": probe,
     "_stream_probe": stream_probe}[args.phase](args)


if __name__ == "__main__":
    main()
