"""Soak test of the HTTP API: mixed /search and /ask traffic for a long while, with a live
reindex every few minutes; errors, latency and the server's memory over time.

    .venv/bin/python bench/soak.py --minutes 30 --reindex-every 300      # the issue's soak
    .venv/bin/python bench/soak.py --minutes 10 --reindex-every 120      # the recorded run

- Corpus and server as bench/load_api.py (BBC News, the real model, ``rag serve`` on loopback,
  one process), here with the server's own answer queue (``RAG_ASK_QUEUE``, default 16), so
  that a full queue answers 503 + Retry-After: those are counted apart from errors.
- ``--clients`` closed-loop clients, half on /search and half on /ask.
- Every ``--reindex-every`` seconds, ``--grow`` more BBC articles are appended to the corpus
  file and ``POST /reindex`` runs an incremental reindex of it while the traffic goes on.
- Every ``--window`` seconds: requests, errors, shed (503), p50/p95 per endpoint, and the
  server's resident memory (VmRSS of its process).

Output: a table on stdout and bench/results/soak.json. Exit status 1 if any error (a transport
error or a status other than 200 and the 503 of a full queue) was seen.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from _common import BBC, environment, finish, log, pct, send, table  # noqa: E402
from load_api import WORK, build, free_port, start_server  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--minutes", type=float, default=30.0)
    ap.add_argument("--reindex-every", type=float, default=300.0, help="seconds")
    ap.add_argument("--window", type=float, default=30.0, help="seconds per reported window")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--articles", type=int, default=500, help="in the corpus at the start")
    ap.add_argument("--grow", type=int, default=50, help="articles added before each reindex")
    args = ap.parse_args()

    with gzip.open(BBC, "rt", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    folder = WORK / "soak"
    folder.mkdir(parents=True, exist_ok=True)
    corpus = folder / "corpus" / "articles.jsonl"
    corpus.parent.mkdir(exist_ok=True)
    corpus.write_text("".join(json.dumps(r) + "\n" for r in records[: args.articles]), encoding="utf-8")
    index = folder / "index"
    if index.exists():
        import shutil

        shutil.rmtree(index)
    build(corpus.parent, index)
    titles = [r["title"] for r in records[: args.articles]]
    port = free_port()
    proc = start_server(index, port, folder / "server.log", ask_queue=None)
    base = f"http://127.0.0.1:{port}"
    result = asyncio.run(soak(base, proc.pid, titles, records, corpus, args))
    proc.terminate()
    proc.wait(30)
    result["environment"] = environment()
    rows = [[w["t_s"], w["requests"], w["errors"], w["shed"], w["search_p50_ms"], w["search_p95_ms"],
             w["ask_p50_ms"], w["ask_p95_ms"], w["rss_mb"], w["reindexing"]] for w in result["windows"]]
    table(rows, ["t s", "requests", "errors", "503 shed", "search p50", "search p95", "ask p50", "ask p95",
                 "server RSS MB", "reindexing"])
    finish("soak", result)
    return 1 if result["errors"] else 0


async def soak(base: str, pid: int, titles: list[str], records: list[dict[str, Any]], corpus: Path,
               args: argparse.Namespace) -> dict[str, Any]:
    samples: list[tuple[float, str, float, int | str]] = []
    started = time.perf_counter()
    stop_at = started + args.minutes * 60
    reindexing = {"on": False}
    reindexes: list[dict[str, Any]] = []
    limits = httpx.Limits(max_connections=args.clients + 2)

    async def client(i: int, http: httpx.AsyncClient) -> None:
        endpoint = "search" if i % 2 == 0 else "ask"
        n = i
        while time.perf_counter() < stop_at:
            title = titles[n % len(titles)]
            n += args.clients
            t = time.perf_counter()
            try:
                r = await send(http, endpoint, title)
                status: int | str = r.status_code
                if status == 503 and "Retry-After" in r.headers:
                    await asyncio.sleep(float(r.headers["Retry-After"]))
            except httpx.HTTPError as exc:
                status = type(exc).__name__
            samples.append((t - started, endpoint, time.perf_counter() - t, status))

    async def reindexer(http: httpx.AsyncClient) -> None:
        added = args.articles
        while True:
            await asyncio.sleep(args.reindex_every)
            if time.perf_counter() + 30 > stop_at:
                return
            more = records[added: added + args.grow]
            added += len(more)
            with corpus.open("a", encoding="utf-8") as fh:
                fh.write("".join(json.dumps(r) + "\n" for r in more))
            titles.extend(r["title"] for r in more)
            t0 = time.perf_counter()
            reindexing["on"] = True
            job = (await http.post("/reindex")).json()
            while job.get("state") in ("queued", "running"):
                await asyncio.sleep(1)
                job = (await http.get(f"/reindex/{job['id']}")).json()
            reindexing["on"] = False
            reindexes.append({"at_s": round(t0 - started, 1), "took_s": round(time.perf_counter() - t0, 1),
                              "state": job.get("state"), "added_articles": len(more)})
            log(f"reindex {len(reindexes)}: {job.get('state')} in {reindexes[-1]['took_s']} s")

    windows: list[dict[str, Any]] = []

    async def sampler() -> None:
        seen = 0
        while time.perf_counter() < stop_at:
            await asyncio.sleep(args.window)
            now = samples[seen:]
            seen += len(now)
            windows.append(window(now, round(time.perf_counter() - started), rss_mb(pid), reindexing["on"]))

    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:
        await asyncio.gather(*(client(i, http) for i in range(args.clients)), reindexer(http), sampler())
    return {"minutes": args.minutes, "clients": args.clients, "reindex_every_s": args.reindex_every,
            "requests": len(samples), "errors": sum(1 for s in samples if s[3] not in (200, 503)),
            "shed": sum(1 for s in samples if s[3] == 503),
            "error_kinds": sorted({str(s[3]) for s in samples if s[3] not in (200, 503)}),
            "reindexes": reindexes, "windows": windows}


def window(samples: list[tuple[float, str, float, int | str]], t: float, rss: float, reindexing: bool
           ) -> dict[str, Any]:
    out: dict[str, Any] = {"t_s": t, "requests": len(samples),
                           "errors": sum(1 for s in samples if s[3] not in (200, 503)),
                           "shed": sum(1 for s in samples if s[3] == 503), "rss_mb": rss, "reindexing": reindexing}
    for endpoint in ("search", "ask"):
        ms = [s[2] * 1000 for s in samples if s[1] == endpoint and s[3] == 200]
        out[f"{endpoint}_p50_ms"] = round(pct(ms, 50), 1) if ms else None
        out[f"{endpoint}_p95_ms"] = round(pct(ms, 95), 1) if ms else None
    return out


if __name__ == "__main__":
    sys.exit(main())
