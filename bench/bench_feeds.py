"""Articles per minute through fetch, extract and index, against a news site on 127.0.0.1; and the
cost of a round in which nothing changed.

    .venv/bin/python bench/bench_feeds.py --feeds 4 --per-feed 50

The site is the test suite's (tests/newsserver.py): RSS feeds with ETags, article pages of about
350 words with full metadata. Politeness delay 0 (one local host); everything else is the default.
Prints the figures BENCHMARKS.md quotes, and what each round spent in fetching (requests,
extraction) against embedding and building.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from newsserver import Route, page, rss, serve_site  # noqa: E402

from rag.ingest.web import FetchSettings  # noqa: E402
from rag.pipeline import Pipeline  # noqa: E402
from rag.settings import Settings  # noqa: E402

WORDS = ("government minister said report economy inflation election court police city council rain "
         "flood market bank rates company shares energy prices school hospital workers strike talks "
         "president deal border trade climate summit vote parliament budget tax housing transport").split()


def paragraphs(rng: random.Random, n: int = 5, words: int = 70) -> list[str]:
    return [" ".join(rng.choice(WORDS) for _ in range(words)).capitalize() + "." for _ in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--feeds", type=int, default=4)
    ap.add_argument("--per-feed", type=int, default=50)
    args = ap.parse_args()
    rng = random.Random(7)
    gen = serve_site()
    site = next(gen)
    feeds = []
    for f in range(args.feeds):
        items = []
        for i in range(args.per_feed):
            path = f"/desk{f}/story{i}.html"
            site.routes[path] = Route(page(f"Story {f}-{i}", paragraphs(rng), canonical=f"{site.url}{path}",
                                           author="A. Writer", date="2024-03-01", site_name="Bench News"))
            items.append({"title": f"Story {f}-{i}", "link": f"{site.url}{path}", "guid": f"{f}-{i}"})
        site.routes[f"/desk{f}/rss.xml"] = Route(rss(f"Desk {f}", items), type="application/rss+xml",
                                                 etag=f'"desk{f}"')
        feeds.append(f"{site.url}/desk{f}/rss.xml")
    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Pipeline(Settings(index_dir=Path(tmp) / "index", fetch=FetchSettings(host_delay=0.0)))
        pipeline.embedder.embed_batch(["warm up"])  # the model loads outside the measured rounds
        for label in ("first round (everything new)", "second round (nothing changed)"):
            site.log.clear()
            started = time.perf_counter()
            summary = pipeline.reindex(feeds if label.startswith("first") else ())
            total = time.perf_counter() - started
            fetched = summary.fetched
            assert fetched is not None
            print(f"{label}: {summary.articles} articles, {fetched.requests} requests, {total:.2f}s in all: "
                  f"fetch+extract {fetched.seconds:.2f}s, embed+build {total - fetched.seconds:.2f}s "
                  f"({summary.embedded} chunks embedded)")
            if label.startswith("first"):
                print(f"  {summary.articles / total * 60:.0f} articles/minute through fetch, extract and index "
                      f"({summary.articles / fetched.seconds * 60:.0f}/minute for fetch and extract alone)")
    gen.close()


if __name__ == "__main__":
    main()
