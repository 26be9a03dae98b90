"""Throughput of ``rag serve --ray`` with 1 and 2 replicas, against the plain ``rag serve``.

Reproduces BENCHMARKS.md, "Serving on Ray" (bench/results/serve_ray.json):

    .venv/bin/python bench/serve_ray.py

Options: [--articles N] [--index DIR] [--clients N] [--seconds S] [--repeats N] [--replicas 1,2].

- Index: ``--articles`` BBC News articles (the corpus bench/load_api.py writes), indexed once with
  the real model into bench-out/serve-ray/index-N and reused; or ``--index DIR``.
- Servers, one at a time, each a subprocess on a free 127.0.0.1 port: the plain ``rag serve``, then
  ``rag serve --ray --replicas R`` for each R (a Ray started on this machine for the run, 1 CPU per
  replica; Serve's proxy in front).
- Clients: ``--clients`` closed-loop httpx clients in one asyncio loop in this process, as in
  load_api.py: ``/search?q=<title>&k=10``, then ``/ask {"question": "What happened: <title>?"}``,
  ``--seconds`` each, ``--repeats`` times; the figures are the medians over the repeats. Under Ray
  the ``X-Replica`` header counts how many requests each replica answered.

Output: a table on stdout and bench/results/serve_ray.json. Clients, proxy, replicas and other
people's jobs share the machine's cores: compare the rows with each other, not with other machines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx  # noqa: E402
from _common import ROOT, environment, finish, log, pct, send, table  # noqa: E402
from load_api import build, corpus  # noqa: E402

WORK = ROOT / "bench-out" / "serve-ray"  # git-ignored: the index, the servers' logs
RAY_ENV = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "disabled"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_server(index: Path, port: int, replicas: int | None, clients: int) -> tuple[subprocess.Popen, Path]:
    """``rag serve`` (``replicas`` None) or ``rag serve --ray --replicas R`` on ``port``, once it has
    printed its URL (under Ray: once every replica serves) and /health says the index is loaded."""
    name = "plain" if replicas is None else f"ray-{replicas}"
    logfile = WORK / f"{name}.log"
    env = {**os.environ, **RAY_ENV, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false",
           "RAG_ASK_QUEUE": str(clients)}  # every question waits its turn: this measures throughput, not 503s
    for var in ("RAY_ADDRESS", "RAG_API_KEY", "RAG_PROTECT_READS", "RAG_RETRIEVAL_ONLY", "RAG_REFRESH"):
        env.pop(var, None)
    command = [sys.executable, "-m", "api.cli", "serve", "--index", str(index), "--port", str(port)]
    if replicas is not None:
        command += ["--ray", "auto", "--replicas", str(replicas)]
    with open(logfile, "w") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"the server exited: see {logfile}")
        if "try: curl" in logfile.read_text(errors="replace"):
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).json()["index_loaded"]:
                    return proc, logfile
            except (httpx.HTTPError, ValueError):
                pass
        time.sleep(0.5)
    stop_server(proc)
    raise SystemExit(f"the server did not come up in 300 s: see {logfile}")


def stop_server(proc: subprocess.Popen) -> None:
    """Ctrl-C, as a person stops it (under Ray, the command then stops the Ray it started)."""
    proc.send_signal(2)
    try:
        proc.wait(90)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


async def phase(base: str, titles: list[str], clients: int, seconds: float, endpoint: str) -> dict[str, Any]:
    """``clients`` closed-loop clients on one endpoint for ``seconds``."""
    samples: list[tuple[float, int | str, str | None]] = []
    stop_at = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(i: int, http: httpx.AsyncClient) -> None:
        n = i
        while time.perf_counter() < stop_at:
            title = titles[n % len(titles)]
            n += clients
            t = time.perf_counter()
            try:
                r = await send(http, endpoint, title)
                status: int | str = r.status_code
                replica = r.headers.get("X-Replica")
            except httpx.HTTPError as exc:
                status, replica = type(exc).__name__, None
            samples.append((time.perf_counter() - t, status, replica))

    started = time.perf_counter()
    async with httpx.AsyncClient(base_url=base, timeout=120, limits=limits) as http:
        await asyncio.gather(*(client(i, http) for i in range(clients)))
    wall = time.perf_counter() - started
    ms = [s[0] * 1000 for s in samples]
    replicas = Counter(s[2] for s in samples if s[2] is not None)
    return {"requests": len(samples), "errors": sum(1 for s in samples if s[1] != 200),
            "rps": round(len(samples) / wall, 2), "p50_ms": round(pct(ms, 50), 1), "p95_ms": round(pct(ms, 95), 1),
            "by_replica": sorted(replicas.values(), reverse=True)}


def measure(base: str, titles: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Every endpoint ``--repeats`` times (after a short warm-up): each run, and their medians."""
    asyncio.run(phase(base, titles, 2, 3.0, "search"))
    asyncio.run(phase(base, titles, 2, 3.0, "ask"))
    out: dict[str, Any] = {}
    for endpoint in ("search", "ask"):
        runs = []
        for r in range(args.repeats):
            log(f"  /{endpoint}, run {r + 1} of {args.repeats}: {args.clients} clients for {args.seconds:.0f} s")
            runs.append(asyncio.run(phase(base, titles, args.clients, args.seconds, endpoint)))
        out[endpoint] = {"runs": runs, "median_rps": round(statistics.median(r["rps"] for r in runs), 2),
                         "median_p50_ms": round(statistics.median(r["p50_ms"] for r in runs), 1),
                         "errors": sum(r["errors"] for r in runs)}
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--articles", type=int, default=500)
    ap.add_argument("--index", type=Path, help="an existing index (default: build bench-out/serve-ray/index-N)")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--seconds", type=float, default=15.0)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--replicas", default="1,2", help="replica counts to measure under Ray (default 1,2)")
    args = ap.parse_args()

    sources, titles = corpus(args.articles)
    index = args.index
    if index is None:
        WORK.mkdir(parents=True, exist_ok=True)
        index = WORK / f"index-{args.articles}"
        build(sources, index)
    WORK.mkdir(parents=True, exist_ok=True)
    result: dict[str, Any] = {"environment": environment(), "index": str(index), "clients": args.clients,
                              "seconds": args.seconds, "repeats": args.repeats, "servers": {}}
    configs: list[int | None] = [None] + [int(r) for r in args.replicas.split(",")]
    for replicas in configs:
        name = "plain" if replicas is None else f"ray-{replicas}"
        port = free_port()
        log(f"{name}: starting ...")
        started = time.perf_counter()
        proc, _ = start_server(index, port, replicas, args.clients)
        base = f"http://127.0.0.1:{port}"
        health = httpx.get(f"{base}/health").json()
        result["health"] = health
        try:
            entry = {"start_s": round(time.perf_counter() - started, 1), **measure(base, titles, args)}
        finally:
            stop_server(proc)
        result["servers"][name] = entry

    rows = []
    for name, entry in result["servers"].items():
        for endpoint in ("search", "ask"):
            e = entry[endpoint]
            spread = "/".join(str(sum(r["by_replica"][i] for r in e["runs"] if len(r["by_replica"]) > i))
                              for i in range(max(len(r["by_replica"]) for r in e["runs"]))) or "-"
            rows.append([name, endpoint, e["median_rps"], e["median_p50_ms"], e["errors"], spread, entry["start_s"]])
    print(f"\n{args.clients} closed-loop clients, {args.seconds:.0f} s x {args.repeats} per endpoint (medians), "
          f"{health['articles']} articles ({health['chunks']} chunks), {os.cpu_count()} CPUs shared by all\n")
    table(rows, ["server", "endpoint", "req/s", "p50 ms", "errors", "by replica", "start s"])
    finish("serve_ray", result)
    errors = sum(r[4] for r in rows)
    if errors:
        print(f"\n{errors} errors: see bench/results/serve_ray.json", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
