"""Memory of a serving process across reindexes: RSS after each of N full reindexes, each run in
a new thread as the server's reindex jobs are, with ONNX Runtime's CPU memory arena on or off.

    .venv/bin/python bench/reindex_memory.py --index bench-out/api-load/soak/index --runs 4
    .venv/bin/python bench/reindex_memory.py --index bench-out/api-load/soak/index --runs 4 --no-arena

(the index is the one bench/soak.py builds). Prints the RSS in MB before and after each reindex.
"""

from __future__ import annotations

import argparse
import gc
import sys
import threading
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def rss_mb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) // 1024
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--index", type=Path, required=True)
    ap.add_argument("--runs", type=int, default=4)
    ap.add_argument("--no-arena", action="store_true", help="SessionOptions.enable_cpu_mem_arena = False")
    args = ap.parse_args()
    if args.no_arena:
        import onnxruntime as ort

        class NoArena(ort.SessionOptions):
            def __init__(self) -> None:
                super().__init__()
                self.enable_cpu_mem_arena = False

        ort.SessionOptions = NoArena  # type: ignore[misc]

    from rag.pipeline import Pipeline
    from rag.settings import Settings

    pipeline = Pipeline(Settings(index_dir=args.index))
    pipeline.ask("What happened to the economy?")
    sizes = [rss_mb()]
    for _ in range(args.runs):
        job = threading.Thread(target=lambda: pipeline.reindex([], full=True))
        job.start()
        job.join()
        pipeline.ask("What happened?")
        gc.collect()
        sizes.append(rss_mb())
    print(f"arena {'off' if args.no_arena else 'on'}: RSS MB before and after each reindex: {sizes}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
