"""Reindex throughput, local against Ray: what distributing the embedding costs on one machine.

Reproduces BENCHMARKS.md, "Reindex" > "On a Ray cluster" (bench/results/reindex_ray.json):

    .venv/bin/python bench/reindex_ray.py --articles 100 --runs local-int8,ray-1-node,ray-2-nodes --repeat 2
    .venv/bin/python bench/reindex_ray.py --articles 100 --name reindex_ray-single   # all four, once

Options: [--articles N] [--source PATH] [--runs local-int8,ray-1-node,ray-2-nodes,local-torch]
[--repeat N] [--name NAME].

The first ``--articles`` records of RealTime QA 2024-2025 (under the datasets folder, see
bench/_common.py) are written to bench-out/ray/, then each run is a full reindex of them into a
fresh index folder with ``Pipeline.reindex``:

- ``local-int8``: in this process, with the default backend (onnx-int8);
- ``local-torch``: the same with ``backend="torch"``;
- ``ray-1-node``: ``RayEmbedding`` on a one-node cluster of 2 CPUs (this machine's cores);
- ``ray-2-nodes``: on a head with no CPUs and two worker nodes of 1 CPU each.

Ray clusters (``ray.cluster_utils.Cluster``, loopback only) are started before their run's
timing: a cluster outlives many reindexes. Each run's time includes what every job pays: Ray
actors start and load the model. Reported per run: wall seconds, chunks/s, the embedding call's
seconds, the seconds before its first vector came back (for Ray: connecting and starting the
actors) and chunks/s after that (the steady rate), and the serial rest: reading, chunking,
quotes, writing the generation and swapping it in, which stays in one process wherever the
embedding runs. "Steady" is the rate after the first vectors came back, coarse for Ray, whose
vectors come back a block (256 chunks) at a time. With ``--repeat N`` the runs go round N times,
their order rotated each round (the machine is shared, and its load drifts); medians are
reported. The model is loaded in this process before any timing.
Output: a table on stdout, bench/results/NAME.json (default reindex_ray).
"""

from __future__ import annotations

import argparse
import gzip
import os
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Any

# Loopback clusters, no auth token, no usage report; read once, when Ray is first imported.
os.environ.update({"RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0", "RAY_AUTH_MODE": "disabled",
                   "RAY_USAGE_STATS_ENABLED": "0"})
sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import DATASETS, SCRATCH, Timer, environment, finish, log, table  # noqa: E402

import rag.index.distributed as distributed  # noqa: E402
from rag.ingest import read_sources  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.settings import Settings  # noqa: E402

RTQA24 = DATASETS / "realtimeqa-2024-2025" / "articles.jsonl.gz"
RUNS = ("local-int8", "ray-1-node", "ray-2-nodes", "local-torch")
MiB = 2**20


def sample(source: Path, n: int) -> Path:
    """The first ``n`` records of ``source``, as a gzipped JSON Lines file in bench-out/ray/."""
    out = SCRATCH / "ray" / f"{source.name.split('.')[0]}-first{n}.jsonl.gz"
    out.parent.mkdir(parents=True, exist_ok=True)
    with gzip.open(source, "rt", encoding="utf-8") as src, gzip.open(out, "wt", encoding="utf-8") as dst:
        for i, line in enumerate(src):
            if i >= n:
                break
            dst.write(line)
    return out


class TimedEmbedding:
    """Wraps an ``EmbedChunks`` and records how long the call took, and when its first vector
    came back (through the progress bar, which both the local and the Ray path update)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.first_vector_s: float | None = None

    def __call__(self, embedder: Any, texts: Any, batch_size: int = 64, progress: bool = False) -> Any:
        started = time.perf_counter()
        timed = self

        class Bar:
            def update(self, n: int) -> None:
                if timed.first_vector_s is None:
                    timed.first_vector_s = time.perf_counter() - started

            def close(self) -> None:
                pass

        import rag.embed.protocol as protocol

        saved = (protocol.progress_bar, distributed.progress_bar)
        protocol.progress_bar = distributed.progress_bar = lambda total, enabled: Bar()  # type: ignore[assignment]
        try:
            return self.inner(embedder, texts, batch_size=batch_size, progress=progress)
        finally:
            protocol.progress_bar, distributed.progress_bar = saved
            self.seconds = time.perf_counter() - started


def start_cluster(name: str) -> Any:
    import ray
    from ray.cluster_utils import Cluster

    node = {"object_store_memory": 200 * MiB}
    if name == "ray-1-node":
        cluster = Cluster(initialize_head=True, head_node_args={**node, "num_cpus": 2, "include_dashboard": False})
    else:
        cluster = Cluster(initialize_head=True, head_node_args={**node, "num_cpus": 0, "include_dashboard": False})
        for _ in range(2):
            cluster.add_node(**node, num_cpus=1)
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, logging_level="warning")
    return cluster


def run(name: str, source: Path, work: Path) -> dict[str, Any]:
    from rag.embed import embed_documents

    index_dir = work / name
    shutil.rmtree(index_dir, ignore_errors=True)
    backend = "torch" if name == "local-torch" else "onnx-int8"
    pipeline = Pipeline(Settings(index_dir=index_dir, backend=backend))  # type: ignore[arg-type]
    pipeline.chunker()  # the model loads here, outside the timing
    pipeline.embedder.embed_batch(["warm up"])
    cluster = start_cluster(name) if name.startswith("ray") else None
    try:
        embed = TimedEmbedding(distributed.RayEmbedding() if cluster is not None else embed_documents)
        with Timer() as tm:
            summary = pipeline.reindex([source], full=True, embed=embed)
    finally:
        if cluster is not None:
            import ray

            ray.shutdown()
            cluster.shutdown()
    first = embed.first_vector_s or 0.0
    steady = embed.seconds - first
    return {
        "run": name, "backend": backend, "chunks": summary.chunks, "articles": summary.articles,
        "wall_s": round(tm.seconds, 2), "chunks_per_s": round(summary.chunks / tm.seconds, 1),
        "embed_s": round(embed.seconds, 2), "first_vector_s": round(first, 2),
        "steady_chunks_per_s": round(summary.chunks / steady, 1) if steady > 0 else None,
        "serial_s": round(tm.seconds - embed.seconds, 2),
        "driver_cpu_s": round(tm.cpu_seconds, 1),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--articles", type=int, default=120)
    ap.add_argument("--source", type=Path, default=RTQA24)
    ap.add_argument("--runs", default=",".join(RUNS))
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--name", default="reindex_ray", help="bench/results/NAME.json")
    args = ap.parse_args()
    names = [r for r in args.runs.split(",") if r]
    unknown = sorted(set(names) - set(RUNS))
    if unknown:
        ap.error(f"unknown runs {unknown}: pick from {','.join(RUNS)}")
    env = environment()
    log(f"load avg {env['loadavg_at_start']}; busy: {env['other_busy_processes_at_start']}")
    source = sample(args.source, args.articles)
    work = SCRATCH / "ray" / "indexes"
    work.mkdir(parents=True, exist_ok=True)

    # Reading and chunking alone, for the serial part's split (the model is loaded once here).
    chunker = Pipeline(Settings(index_dir=work / "split")).chunker()
    with Timer() as tm:
        articles = read_sources([str(source)]).articles
        texts = [chunker.embedding_text(a, c) for a, cs in zip(articles, chunker.chunk(articles)) for c in cs]
    read_chunk_s = tm.seconds

    every = []
    for round_ in range(args.repeat):
        for name in names[round_ % len(names):] + names[:round_ % len(names)]:
            log(f"{name} (round {round_ + 1}) ...")
            every.append({**run(name, source, work), "round": round_ + 1})
            log(f"{name}: {every[-1]}")
    shutil.rmtree(work, ignore_errors=True)

    results = []
    for name in names:
        mine = [r for r in every if r["run"] == name]
        results.append({k: (statistics.median(r[k] for r in mine) if isinstance(v, (int, float)) and v is not None
                            and k != "round" and all(r[k] is not None for r in mine) else v)
                        for k, v in mine[0].items() if k != "round"})
        results[-1]["rounds"] = len(mine)
    local = next((r for r in results if r["run"] == "local-int8"), None)
    for r in results:
        r["vs_local_int8"] = round(r["chunks_per_s"] / local["chunks_per_s"], 3) if local else None
        r["write_and_swap_s"] = round(max(0.0, r["serial_s"] - read_chunk_s), 2)
    result = {
        "command": "bench/reindex_ray.py " + " ".join(sys.argv[1:]),
        "source": str(args.source), "articles": args.articles, "chunks": len(texts),
        "read_and_chunk_s": round(read_chunk_s, 2),
        "runs": results,
        "every_run": every,
        "environment": env,
    }
    print(f"\nfull reindex of the first {args.articles} RealTime QA 2024-2025 articles: {len(texts)} chunks "
          f"(reading and chunking alone {read_chunk_s:.1f}s)\n")
    table([[r["run"], r["wall_s"], r["chunks_per_s"], r["vs_local_int8"], r["first_vector_s"],
            r["steady_chunks_per_s"], r["serial_s"]] for r in results],
          ["run", "wall s", "chunks/s", "vs local int8", "first vector s", "steady chunks/s", "serial s"])
    finish(args.name, result)


if __name__ == "__main__":
    main()
