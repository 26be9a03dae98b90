"""Load test of the HTTP API: N concurrent clients against /search and /ask on loopback.

Reproduces BENCHMARKS.md, "API load" (bench/results/api_load.json; the defaults are the recorded
run's settings: --articles 500 --clients 20 --seconds 10):

    .venv/bin/python bench/load_api.py

Options: [--articles N] [--clients N] [--seconds S] [--max-requests N].

- Corpus: ``--articles`` BBC News articles (bbc-news/articles.jsonl.gz, every k-th so that all
  five categories are in), indexed once with the real model into bench-out/api-load/ and reused.
- Server: ``rag serve`` in a subprocess on a free 127.0.0.1 port (the real app, the real model,
  uvicorn's defaults: one worker process).
- Clients: one asyncio loop in this process, ``--clients`` httpx connections, each sending its next
  request as soon as the previous one is answered (closed loop). Queries are the indexed articles'
  titles: ``/search?q=<title>&k=10`` and ``/ask {"question": "What happened: <title>?"}``.
- Three phases of ``--seconds`` each: all clients on /search, all on /ask, then half and half.
  Each phase stops at ``--max-requests`` too. Any non-200 answer or transport error is an error;
  the script exits 1 if it sees one.

Output: a table on stdout and bench/results/api_load.json. The clients share the machine's cores
with the server, so these are lower bounds of what the server does alone.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from _common import BBC, ROOT, environment, finish, log, pct, send, table  # noqa: E402

WORK = ROOT / "bench-out" / "api-load"  # git-ignored: the corpus, the index, the server log


def corpus(n: int) -> tuple[Path, list[str]]:
    """The first ``n`` BBC articles taken evenly across the file, written once as JSON Lines."""
    folder = WORK
    folder.mkdir(parents=True, exist_ok=True)
    with gzip.open(BBC, "rt", encoding="utf-8") as fh:
        records = [json.loads(line) for line in fh]
    step = max(1, len(records) // n)
    chosen = records[::step][:n]
    path = folder / f"bbc-{n}" / "articles.jsonl"
    path.parent.mkdir(exist_ok=True)
    if not path.exists():
        path.write_text("".join(json.dumps(r) + "\n" for r in chosen), encoding="utf-8")
    return path.parent, [r["title"] for r in chosen]


def build(sources: Path, index: Path) -> None:
    if (index / "manifest.json").exists():
        log(f"reusing {index.relative_to(ROOT)}")
        return
    log(f"indexing {sources.relative_to(ROOT)} into {index.relative_to(ROOT)} ...")
    subprocess.run([sys.executable, "-m", "api.cli", "reindex", str(sources), "--index", str(index), "--quiet"],
                   check=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(index: Path, port: int, logfile: Path, ask_queue: int | None) -> subprocess.Popen:
    """``rag serve`` on ``port``, once healthy. ``ask_queue``: RAG_ASK_QUEUE (None: the server's
    default)."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    env.pop("RAG_ASK_QUEUE", None)
    if ask_queue is not None:
        env["RAG_ASK_QUEUE"] = str(ask_queue)
    for name in ("RAG_API_KEY", "RAG_PROTECT_READS", "RAG_RETRIEVAL_ONLY"):
        env.pop(name, None)
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--index", str(index), "--port", str(port)],
                            stdout=open(logfile, "w"), stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: see {logfile}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/health", timeout=2).json()["index_loaded"]:
                return proc
        except httpx.TransportError:
            pass
        time.sleep(0.25)
    proc.terminate()
    raise SystemExit(f"the server did not come up in 120 s: see {logfile}")


async def phase(base: str, titles: list[str], clients: int, seconds: float, max_requests: int,
                endpoints: list[str]) -> dict[str, Any]:
    """Closed-loop clients for ``seconds``; client i always uses ``endpoints[i % len(endpoints)]``."""
    samples: list[tuple[str, float, int | str, dict[str, Any] | None]] = []
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(i: int, http: httpx.AsyncClient) -> None:
        endpoint = endpoints[i % len(endpoints)]
        n = i
        while time.perf_counter() < stop_at and len(samples) < max_requests:
            title = titles[n % len(titles)]
            n += clients
            t = time.perf_counter()
            try:
                r = await send(http, endpoint, title)
                status: int | str = r.status_code
                timings = r.json().get("timings") if endpoint == "ask" and r.status_code == 200 else None
            except httpx.HTTPError as exc:
                status, timings = type(exc).__name__, None
            samples.append((endpoint, time.perf_counter() - t, status, timings))

    cpu0 = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=60, limits=limits) as http:
        await asyncio.gather(*(client(i, http) for i in range(clients)))
    wall = time.perf_counter() - started
    cpu1 = resource.getrusage(resource.RUSAGE_SELF)
    out: dict[str, Any] = {"clients": clients, "wall_s": round(wall, 2),
                           "client_cpu_s": round(cpu1.ru_utime + cpu1.ru_stime - cpu0.ru_utime - cpu0.ru_stime, 2)}
    for endpoint in sorted(set(endpoints)) + (["all"] if len(set(endpoints)) > 1 else []):
        mine = [s for s in samples if endpoint in ("all", s[0])]
        ms = [s[1] * 1000 for s in mine]
        if not ms:
            continue
        errors = [s[2] for s in mine if s[2] != 200]
        row = {"requests": len(mine), "errors": len(errors), "error_kinds": sorted({str(e) for e in errors}),
               "rps": round(len(mine) / wall, 1), "p50_ms": round(pct(ms, 50), 1),
               "p95_ms": round(pct(ms, 95), 1), "p99_ms": round(pct(ms, 99), 1), "max_ms": round(max(ms), 1)}
        served = [s[3] for s in mine if s[3]]
        if served:
            row["server_retrieve_ms_p50"] = round(pct([t["retrieve_ms"] for t in served], 50), 1)
            row["server_compose_ms_p50"] = round(pct([t["compose_ms"] for t in served], 50), 1)
        out[endpoint] = row
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=500)
    ap.add_argument("--clients", type=int, default=20)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--max-requests", type=int, default=20_000, help="per phase")
    args = ap.parse_args()

    sources, titles = corpus(args.articles)
    index = WORK / f"index-{args.articles}"
    build(sources, index)
    port = free_port()
    # Every client's question waits for an answer slot, as in the recorded run: this measures
    # queueing, not the 503s a full RAG_ASK_QUEUE gives (bench/soak.py and tests/test_api.py do).
    proc = start_server(index, port, WORK / "server.log", ask_queue=args.clients)
    base = f"http://127.0.0.1:{port}"
    result: dict[str, Any] = {"environment": environment(), "articles": args.articles,
                              "health": httpx.get(f"{base}/health").json(), "phases": {}}
    try:
        log("warming up ...")
        asyncio.run(phase(base, titles, 2, 2.0, 40, ["search", "ask"]))
        for name, endpoints in (("search", ["search"]), ("ask", ["ask"]), ("mixed", ["search", "ask"])):
            log(f"phase {name}: {args.clients} clients for {args.seconds:.0f} s ...")
            result["phases"][name] = asyncio.run(
                phase(base, titles, args.clients, args.seconds, args.max_requests, endpoints))
    finally:
        proc.terminate()
        proc.wait(30)

    rows = []
    for name, ph in result["phases"].items():
        for endpoint in ("search", "ask", "all"):
            if endpoint in ph:
                r = ph[endpoint]
                rows.append([name, endpoint, r["requests"], r["errors"], r["rps"], r["p50_ms"], r["p95_ms"],
                             r["p99_ms"], r["max_ms"]])
    print(f"\n{args.clients} concurrent clients, {args.seconds:.0f} s per phase, {args.articles} BBC articles "
          f"({result['health']['chunks']} chunks), {os.cpu_count()} CPUs shared by server and clients\n")
    table(rows, ["phase", "endpoint", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"])
    finish("api_load", result)
    errors = sum(r[3] for r in rows if r[1] != "all")
    if errors:
        print(f"\n{errors} errors: see bench/results/api_load.json", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
