"""Shared helpers for the benchmark scripts in bench/: paths, timing, memory, environment, output.

Measures nothing itself. Paths are derived from the repository root, never from the machine:

- ``RESULTS``: bench/results/, where each script writes its JSON (the record BENCHMARKS.md cites);
- ``SCRATCH``: bench-out/ (git-ignored): built indexes, cached vectors, drafts; delete it freely;
- ``DATASETS``: ``../shared/datasets`` beside the repository, or ``$RAG_BENCH_DATASETS``:

    RAG_BENCH_DATASETS=/elsewhere/datasets .venv/bin/python bench/query_latency.py --index ...
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"
SCRATCH = ROOT / "bench-out"  # git-ignored scratch space (cached vectors, built indexes)
SEARCH_SCRATCH = SCRATCH / "search"  # what search_latency, ann_recall and reindex_throughput keep
DATASETS = Path(os.environ.get("RAG_BENCH_DATASETS") or ROOT.parent / "shared" / "datasets")
BBC = DATASETS / "bbc-news" / "articles.jsonl.gz"
RTQA_ARTICLES = DATASETS / "realtimeqa-2022" / "articles.jsonl.gz"
RTQA_QUESTIONS = DATASETS / "realtimeqa-2022" / "questions.jsonl"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def rss_mb() -> dict[str, float]:
    """Current and peak resident set size of this process, in MiB (from /proc/self/status)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            out["rss_mb" if key == "VmRSS" else "peak_rss_mb"] = round(int(value.split()[0]) / 1024, 1)
    return out


def status_mb() -> dict[str, float]:
    """VmRSS, RssAnon (what the process itself holds), RssFile (mapped file pages, the page
    cache's to drop) and VmHWM (peak VmRSS, file pages included) of this process, in MiB."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
            out[key] = round(int(value.split()[0]) / 1024, 1)
    return out


class AnonGuard:
    """Ends this process when its anonymous memory passes ``limit_mb``, and keeps the peak seen.

    The machine is shared and has no swap. Only anonymous memory is guarded: the pages of a
    memory-mapped file are the page cache's and reclaimable, and an address-space limit
    (``ulimit -v``) would refuse the 15 GB map itself."""

    def __init__(self, limit_mb: float, every_s: float = 0.2) -> None:
        self.limit_mb = limit_mb
        self.peak_mb = 0.0
        self._every = every_s
        threading.Thread(target=self._watch, daemon=True).start()

    def _watch(self) -> None:
        while True:
            anon = status_mb()["RssAnon"]
            self.peak_mb = max(self.peak_mb, anon)
            if anon > self.limit_mb:
                log(f"RssAnon {anon:.0f} MiB is over the {self.limit_mb:.0f} MiB guard: stopping")
                os._exit(3)
            time.sleep(self._every)


async def send(http: Any, endpoint: str, title: str) -> Any:
    """One request of the API load scripts: ``GET /search`` for ``title`` (k=10), or ``POST /ask``
    with a question made from it (k=8). ``http``: an ``httpx.AsyncClient`` on the server's URL."""
    if endpoint == "search":
        return await http.get("/search", params={"q": title, "k": 10})
    return await http.post("/ask", json={"question": f"What happened: {title}?", "k": 8})


def pct(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values, dtype=np.float64), q)) if len(values) else float("nan")


def summary_ms(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"p50_ms": round(pct(ms, 50), 2), "p95_ms": round(pct(ms, 95), 2),
            "mean_ms": round(float(np.mean(ms)), 2) if ms else float("nan"), "n": len(ms)}


def busy_processes(exclude_pid: int | None = None) -> list[str]:
    """Other processes using noticeable CPU right now (the machine is shared)."""
    try:
        out = subprocess.run(["ps", "-eo", "pid,pcpu,rss,args", "--sort=-pcpu"], capture_output=True,
                             text=True, timeout=10).stdout.splitlines()[1:]
    except Exception:
        return []
    busy = []
    mine = {os.getpid(), exclude_pid}
    for line in out[:15]:
        parts = line.split(None, 3)
        if len(parts) < 4 or int(parts[0]) in mine or "ps -eo" in parts[3]:
            continue
        if float(parts[1]) >= 20.0:
            busy.append(f"pid {parts[0]} {parts[1]}% cpu, {int(parts[2]) // 1024} MiB: {parts[3][:160]}")
    return busy


def environment() -> dict[str, Any]:
    import faiss
    import torch

    def git(*args: str) -> str:
        try:
            return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                                  timeout=10).stdout.strip()
        except Exception:
            return ""

    return {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "faiss": faiss.__version__,
        "git_commit": git("rev-parse", "--short", "HEAD"),
        "git_dirty_files": len(git("status", "--porcelain").splitlines()),
        "loadavg_at_start": list(os.getloadavg()),
        "other_busy_processes_at_start": busy_processes(),
    }


def finish(name: str, result: dict[str, Any]) -> Path:
    """Add end-of-run load figures and write bench/results/NAME.json."""
    result.setdefault("environment", {})["loadavg_at_end"] = list(os.getloadavg())
    result["environment"]["other_busy_processes_at_end"] = busy_processes()
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(result, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    print(f"\nwrote {path.relative_to(ROOT)}")
    return path


def table(rows: list[list[Any]], header: list[str]) -> None:
    cells = [[str(c) for c in header]] + [[f"{c:.2f}" if isinstance(c, float) else str(c) for c in r]
                                          for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(header))]
    for n, r in enumerate(cells):
        print("  ".join(c.rjust(w) if i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
        if n == 0:
            print("  ".join("-" * w for w in widths))


class Timer:
    """Wall seconds, and this process's CPU seconds (user + system, all threads)."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.cpu_seconds = 0.0

    def __enter__(self) -> "Timer":
        self._t = time.perf_counter()
        self._c = time.process_time()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._t
        self.cpu_seconds = time.process_time() - self._c


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)
