"""The HTTP API over a real socket: uvicorn on a free loopback port, httpx as the client, the real
model and a real index on disk; plus ``rag serve`` itself as a subprocess."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict
from typing import Iterator

import httpx
import pytest
import uvicorn
from conftest import free_port, stop_server, wait_until_serving
from test_api import DAMAGED, NO_INDEX, FakePipeline, sse

from api import ApiSettings, create_app
from rag import __version__
from rag.export import answer_to_dict, hit_to_dict, speaker_to_dict
from rag.pipeline import Pipeline
from rag.settings import Settings

# Real uvicorn servers on loopback ports, and `rag serve` as a process.
pytestmark = pytest.mark.slow

QUESTION = "What did Blinken say about China?"
AS_OF = "2024-01-01"
KEY = {"X-API-Key": "s3cret"}
NEW_ARTICLE = """---
title: Fed holds rates steady as inflation cools
date: 2023-12-13
source: apnews.com
---
The Federal Reserve held its benchmark rate steady on Wednesday and signalled three cuts in 2024.
Chair Jerome Powell said inflation had eased substantially without a big rise in unemployment.
"""


@contextmanager
def live(app) -> Iterator[httpx.Client]:
    """Serve ``app`` with uvicorn on a free 127.0.0.1 port, in a thread; yield a client for it."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
        time.sleep(0.01)
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


@pytest.fixture(scope="module")
def served(tmp_path_factory, embedder):
    """A server over its own index (the live reindex changes it), with an API key."""
    from conftest import write_corpus

    root = tmp_path_factory.mktemp("served")
    corpus = write_corpus(root / "news")
    pipeline = Pipeline(Settings(index_dir=root / "index"), embedder=embedder)
    pipeline.reindex([corpus])
    settings = ApiSettings(index_dir=root / "index", api_key="s3cret", sources=(str(corpus),))
    with live(create_app(settings, pipeline)) as client:
        yield client, pipeline, corpus


@pytest.fixture(scope="module")
def bare(tmp_path_factory, embedder):
    """A retrieval-only server with no index yet."""
    index = tmp_path_factory.mktemp("bare") / "index"
    pipeline = Pipeline(Settings(index_dir=index), embedder=embedder)
    with live(create_app(ApiSettings(index_dir=index, retrieval_only=True), pipeline)) as client:
        yield client, index


# -- every endpoint ---------------------------------------------------------------------------------
def test_health(served):
    client, pipeline, _ = served
    response = client.get("/health")
    info = pipeline.info()
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok", "version": __version__, "index_loaded": True, "articles": info.articles,
        "chunks": info.chunks, "model": info.model, "built_at": info.built_at,
        "retrieval_only": False, "problem": None}


def test_search(served):
    client, pipeline, _ = served
    response = client.get("/search", params={"q": "baby formula shortage", "k": 2, "mode": "dense"})
    assert response.status_code == 200
    assert response.json() == [hit_to_dict(h) for h in pipeline.search("baby formula shortage", k=2, mode="dense")]
    assert response.json()[0]["title"] == "Abbott restarts baby formula production at Michigan plant"


def test_ask_and_the_cited_article(served):
    client, pipeline, _ = served
    response = client.post("/ask", json={"question": QUESTION, "as_of": AS_OF})
    assert response.status_code == 200
    body = response.json()
    assert set(body.pop("timings")) == {"retrieve_ms", "compose_ms"}
    assert body == answer_to_dict(pipeline.ask(QUESTION, as_of=AS_OF))
    for citation in body["citations"]:
        article = client.get(f"/articles/{citation['article_id']}").json()
        assert article["text"][citation["start"]:citation["end"]] == citation["quote"]


def test_ask_streaming_over_the_socket(served):
    client, pipeline, _ = served
    with client.stream("POST", "/ask", json={"question": QUESTION, "as_of": AS_OF, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        text = "".join(response.iter_text())
    names = [name for name, _ in sse(text)]
    events = dict(sse(text))
    expected = answer_to_dict(pipeline.ask(QUESTION, as_of=AS_OF))
    assert names == ["passages", "answer", "citations", "done"]
    assert (events["passages"], events["answer"], events["citations"]) == (
        expected["passages"], {"text": expected["answer"]}, expected["citations"])
    assert events["done"]["abstained"] is False


def test_speakers_and_their_quotes(served):
    client, pipeline, _ = served
    response = client.get("/speakers", params={"q": "Powell"})
    found = pipeline.speakers("Powell")
    assert response.status_code == 200
    assert response.json() == [speaker_to_dict(s) for s in found]
    assert [s["name"] for s in response.json()] == ["Jerome Powell"]

    response = client.get(f"/speakers/{found[0].id}/quotes", params={"limit": 10})
    speaker, quotes = pipeline.speaker_quotes(found[0].id, limit=10)
    assert response.status_code == 200
    assert response.json() == {"speaker": speaker_to_dict(speaker), "quotes": [asdict(q) for q in quotes]}
    assert quotes and all(q.speaker == "Jerome Powell" for q in quotes)
    for quote in response.json()["quotes"]:
        text = client.get(f"/articles/{quote['article_id']}").json()["text"]
        assert text[quote["start"]:quote["end"]] == quote["quote"]


# -- every error path ---------------------------------------------------------------------------
@pytest.mark.parametrize("method, path, kwargs, status, body", [
    ("GET", "/search", {"params": {"q": " "}}, 422,
     {"detail": "q: must not be empty", "errors": [{"field": "q", "message": "must not be empty"}]}),
    ("GET", "/search", {"params": {"q": "x", "k": 99}}, 422,
     {"detail": "k: must be an integer between 1 and 50",
      "errors": [{"field": "k", "message": "must be an integer between 1 and 50"}]}),
    ("POST", "/ask", {"json": {"question": "x" * 2001}}, 422,
     {"detail": "question: at most 2000 characters",
      "errors": [{"field": "question", "message": "at most 2000 characters"}]}),
    ("POST", "/ask", {"json": {"question": "q", "since": "last week"}}, 422,
     {"detail": "since: 'last week' is not a date: use YYYY-MM-DD, e.g. 2023-11-09"}),
    ("POST", "/ask", {"json": {"question": "q", "since": "2023-02-01", "until": "2023-01-01"}}, 422,
     {"detail": "since (2023-02-01) is after until (2023-01-01): swap them or widen the range"}),
    ("GET", "/articles/missing", {}, 404,
     {"detail": "no article 'missing' in the index: ids come from /search or /ask"}),
    ("GET", "/speakers", {"params": {"limit": 0}}, 422,
     {"detail": "limit: must be an integer between 1 and 100",
      "errors": [{"field": "limit", "message": "must be an integer between 1 and 100"}]}),
    ("GET", "/speakers/nobody/quotes", {"params": {"offset": -5}}, 422,
     {"detail": "offset: must be an integer, 0 or more",
      "errors": [{"field": "offset", "message": "must be an integer, 0 or more"}]}),
    ("GET", "/speakers/nobody/quotes", {}, 404,
     {"detail": "no speaker 'nobody' in the index: ids come from /speakers?q=<name>"}),
    ("POST", "/reindex", {}, 401, {"detail": "missing API key: send it in the X-API-Key header"}),
    ("POST", "/reindex", {"headers": {"X-API-Key": "nope"}}, 403,
     {"detail": "wrong API key: check the X-API-Key header"}),
    ("GET", "/reindex/0000", {"headers": KEY}, 404,
     {"detail": "no reindex job '0000': POST /reindex returns the id"}),
    ("POST", "/ask", {"content": b"{" + b" " * 70_000 + b"}", "headers": {"Content-Type": "application/json"}},
     413, {"detail": "request body too large: the limit is 65536 bytes (64 KiB)"}),
    ("POST", "/ask", {"content": (b" " * 8192 for _ in range(9)), "headers": {"Content-Type": "application/json"}},
     413, {"detail": "request body too large: the limit is 65536 bytes (64 KiB)"}),
])
def test_errors_over_the_socket(served, method, path, kwargs, status, body):
    client, _, _ = served
    response = client.request(method, path, **kwargs)
    assert (response.status_code, response.json()) == (status, body)
    assert len(response.headers["X-Request-ID"]) == 16


def test_no_index_then_a_damaged_one_then_retrieval_only_ask(bare):
    client, index = bare
    message = f"no index in {index}: run 'rag reindex <folder> --index {index}' first"
    response = client.get("/search", params={"q": "x"})
    assert (response.status_code, response.json()) == (503, {"detail": NO_INDEX, "message": message})
    assert client.get("/health").json()["problem"] == NO_INDEX

    index.mkdir(parents=True, exist_ok=True)
    (index / "manifest.json").write_text('{"format_version": 1}')
    response = client.get("/search", params={"q": "x"})
    assert response.status_code == 503
    assert response.json()["detail"].startswith(f"index in {index} is damaged (")
    assert {k: v for k, v in client.get("/health").json().items() if k in ("status", "problem")} == {
        "status": "damaged", "problem": DAMAGED}

    response = client.post("/ask", json={"question": QUESTION})
    assert (response.status_code, response.json()) == (
        404, {"detail": "this server is retrieval-only: /ask is off; use GET /search?q=... for passages"})


def test_unexpected_errors_give_the_client_only_a_request_id(caplog):
    with live(create_app(ApiSettings(), FakePipeline(fail=KeyError("internal")))) as client, \
            caplog.at_level(logging.ERROR, logger="api"):
        response = client.post("/ask", json={"question": "x"})
    rid = response.headers["X-Request-ID"]
    assert (response.status_code, response.json()) == (500, {"detail": "internal error", "request_id": rid})
    assert [r.getMessage() for r in caplog.records if r.name == "api"] == [f"request {rid} failed: POST /ask"]


# -- concurrency ----------------------------------------------------------------------------------
def test_live_reindex_swaps_in_the_new_index_without_a_failed_request(served):
    client, pipeline, corpus = served
    (corpus / "fed-december.md").write_text(NEW_ARTICLE, encoding="utf-8")
    statuses: list[tuple[str, int]] = []
    stop = threading.Event()

    def hammer(kind: str) -> None:
        with httpx.Client(base_url=client.base_url, timeout=30) as c:
            while not stop.is_set():
                if kind == "search":
                    r = c.get("/search", params={"q": "Fed interest rates inflation", "k": 3})
                else:
                    r = c.post("/ask", json={"question": "What did Powell say about inflation?", "as_of": "2024-01-01"})
                statuses.append((kind, r.status_code))

    workers = [threading.Thread(target=hammer, args=(kind,)) for kind in ("search", "ask", "search")]
    for w in workers:
        w.start()
    def wait_for(n: int) -> None:
        deadline = time.monotonic() + 30
        while len(statuses) < n and time.monotonic() < deadline:
            time.sleep(0.02)

    try:
        wait_for(3)  # requests before the reindex ...
        started = client.post("/reindex", headers=KEY)
        assert started.status_code == 202
        job_id = started.json()["id"]
        for _ in range(600):
            job = client.get(f"/reindex/{job_id}", headers=KEY).json()
            if job["state"] in ("done", "failed"):
                break
            time.sleep(0.05)
        wait_for(len(statuses) + 6)  # ... and after the swap
    finally:
        stop.set()
        for w in workers:
            w.join(30)
    assert job["state"] == "done", job
    assert (job["summary"]["articles"], job["summary"]["added"], job["error"]) == (7, 1, None)
    assert len(statuses) >= 9 and {kind for kind, _ in statuses} == {"search", "ask"}
    assert [s for s in statuses if s[1] != 200] == []
    titles = [h["title"] for h in client.get("/search", params={"q": "Fed holds rates steady"}).json()]
    assert "Fed holds rates steady as inflation cools" in titles
    assert client.get("/health").json()["articles"] == 7


def test_health_stays_prompt_while_answers_are_computed(served):
    client, _, _ = served
    stop = threading.Event()

    def ask() -> int:
        n = 0
        with httpx.Client(base_url=client.base_url, timeout=30) as c:
            while not stop.is_set():
                assert c.post("/ask", json={"question": QUESTION, "k": 20}).status_code == 200
                n += 1
        return n

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(ask) for _ in range(4)]
        time.sleep(0.3)
        worst = 0.0
        for _ in range(10):
            t = time.perf_counter()
            assert client.get("/health").status_code == 200
            worst = max(worst, time.perf_counter() - t)
            time.sleep(0.05)
        stop.set()
        answered = sum(f.result() for f in futures)
    assert answered >= 4
    assert worst < 1.0, f"/health took {worst:.2f}s while answers were computed"


def test_a_full_answer_queue_answers_503_with_retry_after_over_the_socket():
    fake = FakePipeline(gate=threading.Event(), gate_in=("compose",))
    with live(create_app(ApiSettings(ask_queue=0), fake)) as client:
        def ask() -> httpx.Response:
            with httpx.Client(base_url=client.base_url, timeout=30) as c:
                return c.post("/ask", json={"question": "q"})

        with ThreadPoolExecutor(2) as pool:
            answering = [pool.submit(ask) for _ in range(2)]
            deadline = time.monotonic() + 30
            while fake.calls.count("compose") < 2:
                assert time.monotonic() < deadline, f"only {fake.calls} so far"
                time.sleep(0.01)
            busy = client.post("/ask", json={"question": "q"})
            fake.gate.set()
            codes = [f.result().status_code for f in answering]
    assert (busy.status_code, busy.json(), busy.headers["Retry-After"]) == (503, {
        "detail": "the server is busy: every answer slot is taken and 0 more are waiting; ask again in 2 seconds"},
        "2")
    assert codes == [200, 200]


def test_twenty_concurrent_clients_see_no_errors(served):
    """A bounded smoke of the load test (bench/load_api.py runs 20 clients for 10 s)."""
    client, _, _ = served

    def run(n: int) -> list[int]:
        with httpx.Client(base_url=client.base_url, timeout=60) as c:
            if n % 2:
                return [c.get("/search", params={"q": "Hong Kong expensive city", "k": 5}).status_code
                        for _ in range(3)]
            return [c.post("/ask", json={"question": "Why was the Abbott plant shut?", "k": 3}).status_code
                    for _ in range(2)]

    with ThreadPoolExecutor(20) as pool:
        codes = [code for codes in pool.map(run, range(20)) for code in codes]
    assert codes == [200] * 50


# -- rag serve -----------------------------------------------------------------------------------
def test_rag_serve_prints_the_url_and_serves(built):
    pipeline, _, _ = built
    port = free_port()
    env = {**os.environ, "RAG_RETRIEVAL_ONLY": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "serve", "--index", str(pipeline.settings.index_dir),
                             "--port", str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        lines = [proc.stdout.readline().rstrip("\n") for _ in range(2)]
        url = f"http://127.0.0.1:{port}"
        assert lines == [f"serving on {url} (API docs: {url}/docs)",
                         f"try: curl -s '{url}/search?q=What+did+Blinken+say+about+China%3F&k=3'"]
        health = wait_until_serving(proc, url, timeout=120)
        assert health.json()["index_loaded"] is True and health.json()["retrieval_only"] is True
        assert httpx.post(f"{url}/ask", json={"question": QUESTION}).status_code == 404
        speakers = httpx.get(f"{url}/speakers", params={"q": "Blinken"})
        assert (speakers.status_code, speakers.json()) == (200, [speaker_to_dict(s) for s in pipeline.speakers("Blinken")])
    finally:
        stop_server(proc)
