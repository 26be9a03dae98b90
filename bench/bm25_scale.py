"""BM25 (bm25s, through rag.index.keyword) at 1M and 10M chunks: build time, memory, query latency.

Reproduces BENCHMARKS.md, "Search latency and ANN recall" > "BM25 at 1M and 10M chunks"
(bench/results/bm25_scale.json):

    .venv/bin/python bench/bm25_scale.py                        # 1M, the shard comparison, 10M
    .venv/bin/python bench/bm25_scale.py --sizes 1000000        # 1M and the shard comparison only

Options: [--sizes 1000000 10000000] [--shard-rows 1000000] [--compare-rows 250000]
[--queries 200] [--max-anon-gb 12] [--skip-in-memory-above 10000000].

Chunks: real-looking text made from RealTime QA 2024-2025 (``articles.jsonl.gz``): its articles
cut into sentences by ``rag.text.sentences`` (sentences over 80 words, mostly unpunctuated
lists, dropped), then each chunk is the title of a random article, a newline (as
``Chunker.embedding_text`` writes it) and runs of consecutive sentences from random articles until
a target of 140-240 words drawn per chunk is reached: real vocabulary, real sentence and chunk
lengths (about 210 words a chunk), topics mixed within a chunk more than real chunks are. Chunk
``i`` is the same whatever the index or shard it is built in: chunks are drawn in blocks of
``BLOCK`` rows, each block from its own seed. Queries: ``--queries`` questions of the same
dataset's ``questions.jsonl``, in a fixed shuffle (seed 0), k=10.

Each build and each search probe runs in a process of its own, so that its peak memory is its
own, and every process stops itself if its anonymous memory passes ``--max-anon-gb``:

- build (chunk rows [start, end) into bench-out/bm25/rows-START-END/): the chunks' texts made in
  memory (not timed; the Indexer holds them too), then ``KeywordSearcher.build(texts).save(dir)``
  timed, with the process's peak RSS (VmHWM) and RSS after the build; disk use of the saved index;
- probe (one or more such indexes, as shards, rows offset by their start): the files evicted from
  the page cache (``posix_fadvise`` DONTNEED, these files only), loaded as ``load_index`` does
  (``KeywordSearcher.load``: in memory, or memory-mapped with ``mmap=True``), RSS / RssAnon
  (what the process holds) / RssFile (mapped index pages, the page cache's to drop) after loading
  and after the queries, then ``KeywordSearcher.search(question, 10)`` per shard, merged on score:
  every query once cold (first touch of the mapped pages) and once warm (again). The top 10
  of every query is kept to compare sharded with single indexes;
- interleaved (an index built as one): read in and memory-mapped in the same process, searched
  query by query in alternating order, so that the two meet the same machine load.

Sizes the memory guard cannot build as one index are built as shards of ``--shard-rows`` (whose
first shard is the 1M index itself) and searched together. What sharding changes (each shard has
its own IDF and average length) is measured at 1M: the single 1M index against the same chunks in
shards of ``--compare-rows``, as the overlap of their top 10s.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import pickle
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from _common import DATASETS, ROOT, SCRATCH, AnonGuard, Timer, environment, finish, log, status_mb, summary_ms, table  # noqa: E402

OUT = SCRATCH / "bm25"
ARTICLES = DATASETS / "realtimeqa-2024-2025" / "articles.jsonl.gz"
QUESTIONS = DATASETS / "realtimeqa-2024-2025" / "questions.jsonl"
BLOCK = 50_000  # chunks drawn from one seed
LONGEST_SENTENCE = 80  # words; longer "sentences" are unpunctuated lists and captions
TARGET_WORDS = (140, 241)


class Pool:
    """The sentences of every article, and the chunks drawn from them."""

    def __init__(self) -> None:
        cache = OUT / "sentences.pkl"
        if cache.exists():
            self.titles, self.sentences, self.starts, self.words = pickle.loads(cache.read_bytes())
            return
        from rag.text.sentences import split_sentences

        titles, sentences, starts, words = [], [], [0], []
        with gzip.open(ARTICLES, "rt", encoding="utf-8") as f:
            for line in f:
                article = json.loads(line)
                text = article["text"]
                cut = [text[s:e] for s, e in split_sentences(text)]
                cut = [s for s in cut if len(s.split()) <= LONGEST_SENTENCE]
                if len(cut) < 3:
                    continue
                titles.append((article.get("title") or "").strip())
                sentences.extend(cut)
                words.extend(len(s.split()) for s in cut)
                starts.append(len(sentences))
        self.titles, self.sentences = titles, sentences
        self.starts, self.words = np.asarray(starts), np.asarray(words, dtype=np.int32)
        OUT.mkdir(parents=True, exist_ok=True)
        cache.write_bytes(pickle.dumps((self.titles, self.sentences, self.starts, self.words)))

    def block(self, b: int) -> list[str]:
        """Chunks ``b * BLOCK`` up to ``(b + 1) * BLOCK``."""
        rng = np.random.default_rng([7, b])
        out = []
        articles = len(self.titles)
        for _ in range(BLOCK):
            target = int(rng.integers(*TARGET_WORDS))
            got, parts, title = 0, [], None
            while got < target:
                a = int(rng.integers(articles))
                s, end = int(rng.integers(self.starts[a], self.starts[a + 1])), int(self.starts[a + 1])
                title = self.titles[a] if title is None else title
                while s < end and got < target:
                    parts.append(self.sentences[s])
                    got += int(self.words[s])
                    s += 1
            out.append(f"{title}\n{' '.join(parts)}" if title else " ".join(parts))
        return out

    def chunks(self, start: int, end: int) -> list[str]:
        if start % BLOCK or end % BLOCK:
            raise SystemExit(f"chunk rows must be multiples of {BLOCK}: {start}-{end}")
        return [text for b in range(start // BLOCK, end // BLOCK) for text in self.block(b)]


def index_dir(start: int, end: int) -> Path:
    return OUT / f"rows-{start}-{end}"


def questions(n: int) -> list[str]:
    rows = [json.loads(line)["question"] for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line]
    order = np.random.default_rng(0).permutation(len(rows))
    return [rows[i] for i in order[:n]]


def _drop_cache(folder: Path) -> None:
    for path in folder.iterdir():
        fd = os.open(path, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)


def build(args: argparse.Namespace) -> None:
    """In its own process: one index over chunk rows [start, end)."""
    from rag.index.keyword import KeywordSearcher

    guard = AnonGuard(args.max_anon_gb * 1024)
    folder = index_dir(args.start, args.end)
    with Timer() as tm:
        texts = Pool().chunks(args.start, args.end)
    made = {"chunks": len(texts), "make_texts_s": round(tm.seconds, 1),
            "words_per_chunk_mean": round(float(np.mean([len(t.split()) for t in texts[:20_000]])), 1),
            "rss_mb_with_texts": status_mb()}
    log(f"made {len(texts):,} chunks in {tm.seconds:.0f}s: {made['rss_mb_with_texts']}")
    with Timer() as tm:
        searcher = KeywordSearcher.build(texts)
    built = status_mb()
    partial = folder.with_name(folder.name + ".partial")
    with Timer() as save_t:
        searcher.save(partial)
    scores = searcher.shards[0].scores
    out = {**made, "build_s": round(tm.seconds, 1), "build_cpu_s": round(tm.cpu_seconds, 1),
           "save_s": round(save_t.seconds, 1), "rss_mb_after_build": built,
           "peak_rss_mb": status_mb()["VmHWM"], "peak_anon_mb": guard.peak_mb,
           "nonzeros": len(scores["data"]), "vocabulary": len(searcher.shards[0].vocab_dict),
           "disk_mb": {p.name: round(p.stat().st_size / 2**20, 1) for p in sorted(partial.iterdir())}}
    out["disk_mb_total"] = round(sum(out["disk_mb"].values()), 1)
    (partial / "build.json").write_text(json.dumps(out, indent=1) + "\n")
    partial.rename(folder)
    print(json.dumps(out))


def _load(path: Path, mmap: bool):
    """``KeywordSearcher.load``, memory-mapped or read into memory whatever the index's size."""
    from rag.index.keyword import KeywordSearcher

    return KeywordSearcher.load(path, mmap_above=0 if mmap else sys.maxsize)


def probe(args: argparse.Namespace) -> None:
    """In its own process: load ``--shards`` (start-end pairs) and search them all per query."""
    guard = AnonGuard(args.max_anon_gb * 1024)
    shards = [tuple(int(x) for x in s.split("-")) for s in args.shards]
    qs = questions(args.queries)
    for start, end in shards:
        _drop_cache(index_dir(start, end))
    out: dict = {"shards": args.shards, "mmap": bool(args.mmap), "rss_mb": {"before_load": status_mb()}}
    with Timer() as tm:
        searchers = [(start, _load(index_dir(start, end), bool(args.mmap))) for start, end in shards]
    out["load_s"] = round(tm.seconds, 2)
    out["rss_mb"]["after_load"] = status_mb()
    log(f"loaded {len(shards)} shard(s) (mmap={bool(args.mmap)}) in {tm.seconds:.1f}s: {out['rss_mb']['after_load']}")

    def search(q: str) -> tuple[np.ndarray, np.ndarray]:
        rows, scores = [], []
        for start, s in searchers:
            r, sc = s.search(q, 10)
            rows.append(r + start)
            scores.append(sc)
        rows_all, scores_all = np.concatenate(rows), np.concatenate(scores)
        top = np.lexsort((rows_all, -scores_all))[:10]
        return rows_all[top], scores_all[top]

    hits = np.full((len(qs), 10), -1, dtype=np.int64)
    hit_scores = np.zeros((len(qs), 10), dtype=np.float32)
    for name in ("cold", "warm"):
        lat, cpu = [], []
        for i, q in enumerate(qs):
            t0, c0 = time.perf_counter(), time.process_time()
            rows, scores = search(q)
            lat.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            hits[i, :len(rows)], hit_scores[i, :len(rows)] = rows, scores
        out[f"latency_{name}"] = {**summary_ms(lat), "cpu_ms_p50": summary_ms(cpu)["p50_ms"]}
        out["rss_mb"][f"after_{name}_queries"] = status_mb()
        log(f"{name}: {out[f'latency_{name}']}, {out['rss_mb'][f'after_{name}_queries']}")
    out["peak_anon_mb"] = guard.peak_mb
    np.savez(args.hits, rows=hits, scores=hit_scores)
    print(json.dumps(out))


def interleaved(args: argparse.Namespace) -> None:
    """In its own process: one index both read in and memory-mapped, the two searched query by
    query in alternating order (three passes after a warming one), so both meet the same load."""
    guard = AnonGuard(args.max_anon_gb * 1024)
    folder = index_dir(args.start, args.end)
    qs = questions(args.queries)
    both = {"in_memory": _load(folder, False), "mmap": _load(folder, True)}
    for q in qs:
        both["mmap"].search(q, 10)
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in both}
    same = 0
    for rep in range(3):
        for i, q in enumerate(qs):
            names = list(both) if (i + rep) % 2 else list(both)[::-1]
            found = {}
            for name in names:
                t0, c0 = time.perf_counter(), time.process_time()
                found[name] = both[name].search(q, 10)[0].tolist()
                times[name].append((time.perf_counter() - t0, time.process_time() - c0))
            same += found["in_memory"] == found["mmap"]
    out = {name: {**summary_ms([w for w, _ in t]), "cpu_ms_p50": summary_ms([c for _, c in t])["p50_ms"]}
           for name, t in times.items()}
    out.update({"identical_results": same, "searches": 3 * len(qs), "peak_anon_mb": guard.peak_mb})
    print(json.dumps(out))


def _run(args: argparse.Namespace, phase: str, *extra: str) -> dict:
    cmd = [sys.executable, __file__, phase, "--max-anon-gb", str(args.max_anon_gb), *extra]
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    sys.stderr.write(done.stderr)
    if done.returncode:
        raise SystemExit(f"{phase} {' '.join(extra)} failed with exit status {done.returncode}")
    return json.loads(done.stdout.splitlines()[-1])


def ensure_built(args: argparse.Namespace, start: int, end: int) -> dict:
    folder = index_dir(start, end)
    if not (folder / "build.json").exists():
        log(f"building rows {start:,}-{end:,}")
        _run(args, "_build", "--start", str(start), "--end", str(end))
    record = json.loads((folder / "build.json").read_text())
    log(f"rows {start:,}-{end:,}: build {record['build_s']}s, peak RSS {record['peak_rss_mb']} MiB")
    return record


def run_probe(args: argparse.Namespace, ranges: list[tuple[int, int]], mmap: bool, tag: str) -> dict:
    hits = OUT / f"hits-{tag}-{'mmap' if mmap else 'ram'}.npz"
    rec = _run(args, "_probe", "--queries", str(args.queries), "--mmap", str(int(mmap)), "--hits", str(hits),
               "--shards", *[f"{s}-{e}" for s, e in ranges])
    rec["hits_file"] = str(hits.relative_to(ROOT))
    return rec


def overlap(a_file: str, b_file: str) -> dict:
    """How far the top 10s of two runs agree (b against a). A row of a's top 10 that b lacks but
    that scores the same as a's 10th is a tie broken the other way (the chunks recombine sentences,
    so equal scores are common), counted apart from real differences."""
    a, b = np.load(ROOT / a_file), np.load(ROOT / b_file)
    plain, tie_aware, change = [], [], []
    same_top1 = same_set = 0
    for ra, sa, rb, sb in zip(a["rows"], a["scores"], b["rows"], b["scores"]):
        keep = ra >= 0
        ra, sa = ra[keep], sa[keep]
        if not len(ra):
            continue
        theirs = dict(zip(rb[rb >= 0].tolist(), sb[rb >= 0].tolist()))
        missing = [s for r, s in zip(ra.tolist(), sa.tolist()) if r not in theirs]
        tied = sum(bool(np.isclose(s, sa[-1], rtol=1e-6)) for s in missing)
        plain.append(1 - len(missing) / len(ra))
        tie_aware.append(1 - (len(missing) - tied) / len(ra))
        change += [abs(theirs[r] - s) / s for r, s in zip(ra.tolist(), sa.tolist()) if r in theirs]
        same_set += not missing
        same_top1 += int(ra[0] == rb[0])
    return {"overlap_at_10": round(float(np.mean(plain)), 4),
            "overlap_at_10_ties_as_equal": round(float(np.mean(tie_aware)), 4), "queries": len(plain),
            "identical_top_10": same_set, "same_top_1": same_top1, "min_overlap": round(float(np.min(plain)), 2),
            "score_change_of_shared_rows": {"median": round(float(np.median(change)), 4),
                                            "p95": round(float(np.percentile(change, 95)), 4),
                                            "max": round(float(np.max(change)), 4)}}


def main_run(args: argparse.Namespace) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    result: dict = {"command": "bench/bm25_scale.py " + " ".join(sys.argv[1:]), "queries": args.queries,
                    "block": BLOCK, "shard_rows": args.shard_rows, "environment": environment(), "sizes": {}}
    with Timer() as tm:
        Pool()
    log(f"sentence pool ready in {tm.seconds:.0f}s")
    rows = []
    for n in args.sizes:
        ranges = [(lo, min(lo + args.shard_rows, n)) for lo in range(0, n, args.shard_rows)]
        rec: dict = {"chunks": n, "shards": len(ranges), "builds": [ensure_built(args, s, e) for s, e in ranges]}
        rec["build_s_total"] = round(sum(b["build_s"] for b in rec["builds"]), 1)
        rec["build_cpu_s_total"] = round(sum(b["build_cpu_s"] for b in rec["builds"]), 1)
        rec["peak_rss_mb_max"] = max(b["peak_rss_mb"] for b in rec["builds"])
        rec["disk_mb_total"] = round(sum(b["disk_mb_total"] for b in rec["builds"]), 1)
        for mmap in (False, True):
            if not mmap and n > args.skip_in_memory_above:
                continue
            rec["mmap" if mmap else "in_memory"] = run_probe(args, ranges, mmap, f"{n}")
        if len(ranges) == 1:
            rec["interleaved"] = _run(args, "_interleaved", "--start", "0", "--end", str(n),
                                      "--queries", str(args.queries))
            log(f"interleaved at {n:,}: {rec['interleaved']}")
        result["sizes"][str(n)] = rec
        for mode in ("in_memory", "mmap"):
            if mode in rec:
                p = rec[mode]
                rows.append([f"{n:,}", len(ranges), mode, rec["build_s_total"], rec["peak_rss_mb_max"],
                             p["rss_mb"]["after_load"]["VmRSS"], p["rss_mb"]["after_warm_queries"]["RssAnon"],
                             p["rss_mb"]["after_warm_queries"]["RssFile"], p["latency_cold"]["p50_ms"],
                             p["latency_warm"]["p50_ms"], p["latency_warm"]["p95_ms"], rec["disk_mb_total"]])
        finish("bm25_scale", result)  # after every size, so a later failure keeps what was measured
    if args.compare_rows and args.sizes and args.sizes[0] % args.compare_rows == 0:
        n = args.sizes[0]
        ranges = [(lo, lo + args.compare_rows) for lo in range(0, n, args.compare_rows)]
        builds = [ensure_built(args, s, e) for s, e in ranges]
        probe_rec = run_probe(args, ranges, True, f"{n}-in-{len(ranges)}")
        single = result["sizes"][str(n)].get("mmap") or result["sizes"][str(n)]["in_memory"]
        result["idf_per_shard"] = {"chunks": n, "shards": len(ranges), "shard_rows": args.compare_rows,
                                   "builds": builds, "probe": probe_rec,
                                   "against_one_index": overlap(single["hits_file"], probe_rec["hits_file"])}
        log(f"{len(ranges)} shards against one index at {n:,}: {result['idf_per_shard']['against_one_index']}")
    print(f"\nBM25 (bm25s) over synthetic RealTime QA chunks, {args.queries} questions, k=10\n")
    table(rows, ["chunks", "shards", "load", "build s", "build peak MiB", "RSS after load", "RssAnon",
                 "RssFile", "cold p50 ms", "warm p50 ms", "warm p95 ms", "disk MiB"])
    finish("bm25_scale", result)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("phase", nargs="?", default="run", choices=["run", "_build", "_probe", "_interleaved"])
    ap.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 10_000_000])
    ap.add_argument("--shard-rows", type=int, default=1_000_000)
    ap.add_argument("--compare-rows", type=int, default=250_000)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--max-anon-gb", type=float, default=12.0)
    ap.add_argument("--skip-in-memory-above", type=int, default=10_000_000)
    ap.add_argument("--start", type=int)
    ap.add_argument("--end", type=int)
    ap.add_argument("--mmap", type=int, default=0)
    ap.add_argument("--shards", nargs="*", default=[])
    ap.add_argument("--hits", type=Path)
    args = ap.parse_args()
    {"run": main_run, "_build": build, "_probe": probe, "_interleaved": interleaved}[args.phase](args)


if __name__ == "__main__":
    main()
