"""The HTTP API in-process (FastAPI's TestClient): the real model and index, plus small fakes for
the paths the real pipeline cannot be made to take on demand (a crash, a slow answer)."""

from __future__ import annotations

import json
import logging
import shutil
import threading
import time
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from conftest import damage_table, damaged_copy
from fastapi.testclient import TestClient

import api
from api import ApiSettings, create_app, get_pipeline
from rag import __version__
from rag.errors import BadSetting, SourceError
from rag.export import answer_to_dict, article_to_dict, hit_to_dict, speaker_to_dict
from rag.index.build import ReindexSummary
from rag.models import Answer, Citation, IndexInfo, Speaker
from rag.pipeline import Pipeline
from rag.settings import Settings

QUESTION = "What did Blinken say about China?"
AS_OF = "2024-01-01"
NO_INDEX = "no index: run `rag reindex <folder>`"
DAMAGED = "the index is damaged: rebuild it with `rag reindex --full`"


def client_for(app) -> TestClient:
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture(scope="module")
def client(built):
    pipeline, _, _ = built
    with client_for(create_app(ApiSettings(index_dir=pipeline.settings.index_dir), pipeline)) as c:
        yield c


def sse(text: str) -> list[tuple[str, Any]]:
    """Server-sent events as (event, decoded data) pairs, in order."""
    events = []
    for block in text.strip().split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines())
        events.append((fields["event"], json.loads(fields["data"])))
    return events


BLAIR = Speaker(id="tony-blair", name="Tony Blair", quotes=2)
BROWN = Speaker(id="gordon-brown", name="Gordon Brown", quotes=1)
BLAIR_SAID = [
    Citation(n=1, article_id="bbc-politics-12", title="Blair backs school reforms", source="bbc.co.uk",
             url=None, published_at=None, quote="\u201cEducation is the priority,\u201d Mr Blair said.",
             start=120, end=165, speaker="Tony Blair"),
    Citation(n=2, article_id="bbc-politics-40", title="Blair rules out a fourth term", source="bbc.co.uk",
             url=None, published_at=None, quote="Mr Blair said he would serve a full third term.",
             start=0, end=47, speaker="Tony Blair"),
]


@dataclass
class FakePipeline:
    """Stands in for Pipeline where a test needs it to block, fail or count calls."""

    gate: threading.Event | None = None
    gate_in: tuple[str, ...] | None = None  # the calls that wait for the gate; None: every one
    fail: BaseException | None = None
    fail_in: tuple[str, ...] = ("search", "retrieve", "compose", "article", "reindex", "speakers",
                                "speaker_quotes")
    calls: list[str] = field(default_factory=list)
    args: list[tuple[Any, ...]] = field(default_factory=list)

    def _enter(self, name: str) -> None:
        self.calls.append(name)
        if self.gate is not None and (self.gate_in is None or name in self.gate_in):
            assert self.gate.wait(10)
        if self.fail is not None and name in self.fail_in:
            raise self.fail

    def info(self) -> IndexInfo:
        return IndexInfo(index_dir="idx", articles=1, chunks=2, model="fake", dimension=384, backend="torch",
                         index_kind="exact", built_at="2024-01-01T00:00:00+00:00", sources=())

    def search(self, *args: Any, **kwargs: Any) -> list:
        self._enter("search")
        return []

    def retrieve(self, *args: Any, **kwargs: Any) -> tuple[list, date]:
        self._enter("retrieve")
        return [], date(2024, 1, 1)

    def compose(self, question: str, hits: list, as_of: date, answerer: str = "extractive") -> Answer:
        self._enter("compose")
        return Answer(question, "An answer.", False, as_of=as_of.isoformat())

    def article(self, article_id: str) -> None:
        self._enter("article")
        return None

    def speakers(self, query: str = "", limit: int = 20) -> list[Speaker]:
        self._enter("speakers")
        self.args.append(("speakers", query, limit))
        return [s for s in (BLAIR, BROWN) if query.lower() in s.name.lower()][:limit]

    def speaker_quotes(self, speaker_id: str, limit: int = 50, offset: int = 0) -> tuple[Speaker, list] | None:
        self._enter("speaker_quotes")
        self.args.append(("speaker_quotes", speaker_id, limit, offset))
        if speaker_id != BLAIR.id:
            return None
        return BLAIR, BLAIR_SAID[offset:offset + limit]

    def reindex(self, sources: Any = ()) -> ReindexSummary:
        self._enter("reindex")
        return ReindexSummary(index_dir="idx", articles=3, chunks=5, added=1, updated=0, removed=0,
                              unchanged=2, embedded=2, reused=3, seconds=0.5)


# -- the public surface -------------------------------------------------------------------------
def test_public_names():
    assert api.__all__ == ["ApiSettings", "PipelineDep", "create_app", "get_pipeline", "serve"]


# -- reads on the real index --------------------------------------------------------------------
def test_health_reports_the_loaded_index(client, built):
    pipeline, summary, _ = built
    response = client.get("/health")
    assert response.status_code == 200
    assert response.json() == {
        "status": "ok", "version": __version__, "index_loaded": True, "articles": summary.articles,
        "chunks": summary.chunks, "model": "sentence-transformers/all-MiniLM-L6-v2",
        "built_at": pipeline.info().built_at, "retrieval_only": False, "problem": None,
    }


def test_search_returns_what_rag_search_json_prints(client, built):
    pipeline, _, _ = built
    response = client.get("/search", params={"q": "North Korea Russia arms", "k": 3, "since": "2023-11-01",
                                             "source": "bbc.co.uk"})
    assert response.status_code == 200
    expected = pipeline.search("North Korea Russia arms", k=3, since="2023-11-01", source="bbc.co.uk")
    assert response.json() == [hit_to_dict(h) for h in expected]
    assert expected and {(h["source"], h["published_at"]) for h in response.json()} == {("bbc.co.uk", "2023-11-12")}


@pytest.mark.parametrize("params", [{"source": ["cnn.com", "apnews.com"]}, {"source": "cnn.com,apnews.com"}])
def test_search_takes_several_sources_repeated_or_comma_separated(client, built, params):
    pipeline, _, _ = built
    response = client.get("/search", params={"q": "inflation formula", "mode": "keyword", **params})
    expected = pipeline.search("inflation formula", mode="keyword", source=["cnn.com", "apnews.com"])
    assert response.json() == [hit_to_dict(h) for h in expected]
    assert {h["source"] for h in response.json()} == {"cnn.com", "apnews.com"}


@pytest.mark.parametrize("params, detail", [
    ({}, "q: is required"),
    ({"q": "   "}, "q: must not be empty"),
    ({"q": "x" * 2001}, "q: at most 2000 characters"),
    ({"q": "x", "k": 0}, "k: must be an integer between 1 and 50"),
    ({"q": "x", "k": 51}, "k: must be an integer between 1 and 50"),
    ({"q": "x", "k": "ten"}, "k: must be an integer between 1 and 50"),
    ({"q": "x", "mode": "fuzzy"}, "mode: must be one of hybrid, dense, keyword"),
])
def test_search_rejects_bad_parameters_naming_the_field(client, params, detail):
    response = client.get("/search", params=params)
    assert response.status_code == 422
    field, message = detail.split(": ", 1)
    assert response.json() == {"detail": detail, "errors": [{"field": field, "message": message}]}


@pytest.mark.parametrize("params, detail", [
    ({"since": "11/09/2023"}, "since: '11/09/2023' is not a date: use YYYY-MM-DD, e.g. 2023-11-09"),
    ({"until": "soon"}, "until: 'soon' is not a date: use YYYY-MM-DD, e.g. 2023-11-09"),
    ({"since": "2024-01-01", "until": "2023-01-01"},
     "since (2024-01-01) is after until (2023-01-01): swap them or widen the range"),
])
def test_search_rejects_bad_dates(client, params, detail):
    response = client.get("/search", params={"q": "x", **params})
    assert (response.status_code, response.json()) == (422, {"detail": detail})


def test_article_holds_the_text_citations_point_into(client, built):
    pipeline, _, _ = built
    answer = client.post("/ask", json={"question": QUESTION, "as_of": AS_OF}).json()
    citation = answer["citations"][0]
    response = client.get(f"/articles/{citation['article_id']}")
    assert response.status_code == 200
    stored = article_to_dict(pipeline.article(citation["article_id"]))
    del stored["origin"]  # a path on the server: not the client's business
    assert response.json() == stored
    assert response.json()["text"][citation["start"]:citation["end"]] == citation["quote"]


def test_unknown_article_is_404(client):
    response = client.get("/articles/nope")
    assert (response.status_code, response.json()) == (
        404, {"detail": "no article 'nope' in the index: ids come from /search or /ask"})


# -- answers --------------------------------------------------------------------------------------
def test_ask_returns_what_rag_ask_json_prints_plus_timings(client, built):
    pipeline, _, _ = built
    response = client.post("/ask", json={"question": QUESTION, "as_of": AS_OF, "k": 5})
    assert response.status_code == 200
    body = response.json()
    timings = body.pop("timings")
    assert body == answer_to_dict(pipeline.ask(QUESTION, k=5, as_of=AS_OF))
    assert not body["abstained"] and body["citations"]
    assert set(timings) == {"retrieve_ms", "compose_ms"}
    assert all(isinstance(v, float) and v >= 0 for v in timings.values())


def test_ask_streams_passages_then_answer_then_citations_then_done(client, built):
    pipeline, _, _ = built
    with client.stream("POST", "/ask", json={"question": QUESTION, "as_of": AS_OF, "stream": True}) as response:
        assert response.status_code == 200
        assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
        events = sse(response.read().decode())
    expected = answer_to_dict(pipeline.ask(QUESTION, as_of=AS_OF))
    assert [name for name, _ in events] == ["passages", "answer", "citations", "done"]
    assert events[0][1] == expected["passages"]
    assert events[1][1] == {"text": expected["answer"]}
    assert events[2][1] == expected["citations"]
    done = events[3][1]
    assert set(done.pop("timings")) == {"retrieve_ms", "compose_ms"}
    assert done == {"question": QUESTION, "abstained": False, "as_of": AS_OF, "warnings": [],
                    "speakers": expected["speakers"]}


ASK_FIELDS = "question, k, since, until, source, as_of, mode, stream, answerer"


@pytest.mark.parametrize("body, detail", [
    ({"question": ""}, "question: must not be empty"),
    ({"question": " \n\t "}, "question: must not be empty"),
    ({"question": "x" * 2001}, "question: at most 2000 characters"),
    ({"k": 5}, "question: is required"),
    ({"question": "q", "k": 0}, "k: must be an integer between 1 and 50"),
    ({"question": "q", "k": 51}, "k: must be an integer between 1 and 50"),
    ({"question": "q", "mode": "semantic"}, "mode: must be one of hybrid, dense, keyword"),
    ({"question": "q", "stream": "maybe"}, "stream: must be true or false"),
    ({"question": "q", "qestion": "typo"}, f"qestion: is not a field: use {ASK_FIELDS}"),
    (["q"], 'body: must be a JSON object, e.g. {"question": "What did Blinken say about China?"}'),
])
def test_ask_rejects_bad_bodies_naming_the_field(client, body, detail):
    response = client.post("/ask", json=body)
    assert response.status_code == 422
    field, message = detail.split(": ", 1)
    assert response.json() == {"detail": detail, "errors": [{"field": field, "message": message}]}


def test_ask_rejects_text_that_is_not_json(client):
    response = client.post("/ask", content=b'{"question": ', headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["detail"] == "body: is not valid JSON (Expecting value)"


NOT_TEXT = "must be text: character 8 is a lone surrogate (U+D800)"


@pytest.mark.parametrize("content, detail", [
    # JSON can spell half a surrogate pair; so can bytes that are not UTF-8 (CESU-8's ED A0 80).
    (json.dumps({"question": "profit \ud800"}).encode(), f"question: {NOT_TEXT}"),
    (b'{"question": "profit \xed\xa0\x80"}', f"question: {NOT_TEXT}"),
    (b'{"question": "profit \xff"}', "body: is not valid JSON (not UTF-8: byte 0xff at position 21)"),
    (b'{"question": "q", "k": true}', "k: must be an integer between 1 and 50"),
    (b'{"question": "q", "k": false}', "k: must be an integer between 1 and 50"),
    (b"[" * 30_000, "body: is not valid JSON that can be read (nested too deeply)"),
], ids=["surrogate-escape", "surrogate-bytes", "not-utf8", "k-true", "k-false", "nested"])
def test_ask_refuses_hostile_bodies_with_the_usual_422(content, detail):
    fake = FakePipeline()
    with client_for(create_app(ApiSettings(), fake)) as c:
        response = c.post("/ask", content=content, headers={"Content-Type": "application/json"})
    field, message = detail.split(": ", 1)
    assert (response.status_code, response.json()) == (
        422, {"detail": detail, "errors": [{"field": field, "message": message}]})
    assert fake.calls == []


@pytest.mark.parametrize("body, detail", [
    ({"since": "yesterday"}, "since: 'yesterday' is not a date: use YYYY-MM-DD, e.g. 2023-11-09"),
    ({"as_of": "2024/01/01"}, "as_of: '2024/01/01' is not a date: use YYYY-MM-DD, e.g. 2023-11-09"),
    ({"since": "2023-12-01", "until": "2023-11-01"},
     "since (2023-12-01) is after until (2023-11-01): swap them or widen the range"),
])
def test_ask_rejects_bad_dates(client, body, detail):
    response = client.post("/ask", json={"question": QUESTION, **body})
    assert (response.status_code, response.json()) == (422, {"detail": detail})


# -- who said what ---------------------------------------------------------------------------------
def test_speakers_lists_the_matching_speakers_with_their_quote_counts():
    fake = FakePipeline()
    with client_for(create_app(ApiSettings(), fake)) as c:
        everyone = c.get("/speakers")
        found = c.get("/speakers", params={"q": "blair", "limit": 5})
    assert (everyone.status_code, everyone.json()) == (200, [
        {"id": "tony-blair", "name": "Tony Blair", "quotes": 2},
        {"id": "gordon-brown", "name": "Gordon Brown", "quotes": 1}])
    assert (found.status_code, found.json()) == (200, [{"id": "tony-blair", "name": "Tony Blair", "quotes": 2}])
    assert fake.args == [("speakers", "", 20), ("speakers", "blair", 5)]


def test_speaker_quotes_gives_the_speaker_and_a_page_of_cited_quotes():
    fake = FakePipeline()
    with client_for(create_app(ApiSettings(), fake)) as c:
        first = c.get("/speakers/tony-blair/quotes")
        second = c.get("/speakers/tony-blair/quotes", params={"limit": 1, "offset": 1})
    speaker = {"id": "tony-blair", "name": "Tony Blair", "quotes": 2}
    assert (first.status_code, first.json()) == (200, {"speaker": speaker, "quotes": [
        {"n": 1, "article_id": "bbc-politics-12", "title": "Blair backs school reforms", "source": "bbc.co.uk",
         "url": None, "published_at": None, "quote": "\u201cEducation is the priority,\u201d Mr Blair said.",
         "start": 120, "end": 165, "speaker": "Tony Blair", "supported": True},
        {"n": 2, "article_id": "bbc-politics-40", "title": "Blair rules out a fourth term", "source": "bbc.co.uk",
         "url": None, "published_at": None, "quote": "Mr Blair said he would serve a full third term.",
         "start": 0, "end": 47, "speaker": "Tony Blair", "supported": True}]})
    assert second.json() == {"speaker": speaker, "quotes": [first.json()["quotes"][1]]}
    assert fake.args == [("speaker_quotes", "tony-blair", 50, 0), ("speaker_quotes", "tony-blair", 1, 1)]


def test_an_unknown_speaker_is_404_saying_where_ids_come_from():
    with client_for(create_app(ApiSettings(), FakePipeline())) as c:
        response = c.get("/speakers/nobody/quotes")
    assert (response.status_code, response.json()) == (
        404, {"detail": "no speaker 'nobody' in the index: ids come from /speakers?q=<name>"})


@pytest.mark.parametrize("path, params, detail", [
    ("/speakers", {"limit": 0}, "limit: must be an integer between 1 and 100"),
    ("/speakers", {"limit": 101}, "limit: must be an integer between 1 and 100"),
    ("/speakers", {"limit": "all"}, "limit: must be an integer between 1 and 100"),
    ("/speakers", {"q": "x" * 2001}, "q: at most 2000 characters"),
    ("/speakers/tony-blair/quotes", {"limit": 0}, "limit: must be an integer between 1 and 100"),
    ("/speakers/tony-blair/quotes", {"limit": 500}, "limit: must be an integer between 1 and 100"),
    ("/speakers/tony-blair/quotes", {"offset": -1}, "offset: must be an integer, 0 or more"),
    ("/speakers/tony-blair/quotes", {"offset": "next"}, "offset: must be an integer, 0 or more"),
])
def test_speaker_parameters_are_checked_naming_the_field(path, params, detail):
    fake = FakePipeline()
    with client_for(create_app(ApiSettings(), fake)) as c:
        response = c.get(path, params=params)
    field, message = detail.split(": ", 1)
    assert (response.status_code, response.json()) == (
        422, {"detail": detail, "errors": [{"field": field, "message": message}]})
    assert fake.calls == []


def test_speakers_and_their_quotes_on_the_real_index(client, built):
    pipeline, _, _ = built
    response = client.get("/speakers", params={"q": "Blinken"})
    found = pipeline.speakers("Blinken")
    assert response.status_code == 200
    assert response.json() == [speaker_to_dict(s) for s in found]
    assert [s.name for s in found] == ["Antony Blinken"]

    response = client.get(f"/speakers/{found[0].id}/quotes")
    speaker, quotes = pipeline.speaker_quotes(found[0].id)
    assert response.status_code == 200
    assert response.json() == {"speaker": speaker_to_dict(speaker), "quotes": [asdict(q) for q in quotes]}
    assert speaker == found[0] and len(quotes) == speaker.quotes >= 2
    assert [q["n"] for q in response.json()["quotes"]] == list(range(1, len(quotes) + 1))
    for quote in response.json()["quotes"]:
        assert quote["speaker"] == "Antony Blinken"
        text = client.get(f"/articles/{quote['article_id']}").json()["text"]
        assert text[quote["start"]:quote["end"]] == quote["quote"]

    page = client.get(f"/speakers/{found[0].id}/quotes", params={"limit": 1, "offset": 1}).json()
    assert page == {"speaker": speaker_to_dict(speaker), "quotes": [{**asdict(quotes[1]), "n": 2}]}


def test_ask_names_the_speakers_the_question_asks_about(client, built):
    pipeline, _, _ = built
    body = client.post("/ask", json={"question": QUESTION, "as_of": AS_OF}).json()
    assert body["speakers"] == [speaker_to_dict(s) for s in pipeline.speakers("Antony Blinken")]
    assert body["speakers"][0]["name"] == "Antony Blinken"


# -- no index, a damaged index ------------------------------------------------------------------
def unhealthy(status: str, problem: str) -> dict[str, Any]:
    return {"status": status, "version": __version__, "index_loaded": False, "articles": None, "chunks": None,
            "model": None, "built_at": None, "retrieval_only": False, "problem": problem}


def test_no_index_is_503_with_the_command_to_run(tmp_path, embedder, caplog):
    index = tmp_path / "index"
    pipeline = Pipeline(Settings(index_dir=index), embedder=embedder)
    with client_for(create_app(ApiSettings(index_dir=index), pipeline)) as c, \
            caplog.at_level(logging.WARNING, logger="api"):
        message = f"no index in {index}: run 'rag reindex <folder> --index {index}' first"
        for response in (c.get("/search", params={"q": "x"}), c.post("/ask", json={"question": "x"}),
                         c.get("/articles/a1"), c.get("/speakers"), c.get("/speakers/tony-blair/quotes")):
            assert (response.status_code, response.json()) == (503, {"detail": NO_INDEX, "message": message})
        for _ in range(2):  # polled: logged once
            assert c.get("/health").json() == unhealthy("no index", NO_INDEX)
    assert [r.getMessage() for r in caplog.records if r.name == "api"] == [
        f"/health: no index is served: {message}"]


def test_an_index_damaged_only_in_its_quotes_is_503_for_every_read_and_health_says_damaged(built, tmp_path):
    pipeline, _, _ = built
    index = damaged_copy(pipeline.settings.index_dir, tmp_path / "index")
    detail = (f"index in {index} is damaged (store.sqlite: database disk image is malformed): rebuild it with "
              f"'rag reindex --full --index {index}'")
    served = Pipeline(Settings(index_dir=index), embedder=pipeline.embedder)
    with client_for(create_app(ApiSettings(index_dir=index), served)) as c:
        assert c.get("/health").json() == unhealthy("damaged", DAMAGED)
        for response in (c.get("/search", params={"q": "x"}), c.post("/ask", json={"question": QUESTION}),
                         c.post("/ask", json={"question": QUESTION, "stream": True}), c.get("/articles/a1"),
                         c.get("/speakers"), c.get("/speakers/tony-blair/quotes")):
            assert (response.status_code, response.json()) == (503, {"detail": detail})


def test_damage_met_while_answering_is_503_in_band_and_then_everywhere(built, tmp_path):
    pipeline, _, _ = built
    index = tmp_path / "index"
    shutil.copytree(pipeline.settings.index_dir, index)
    detail = (f"index in {index} is damaged (store.sqlite: database disk image is malformed): rebuild it with "
              f"'rag reindex --full --index {index}'")
    served = Pipeline(Settings(index_dir=index), embedder=pipeline.embedder)
    with client_for(create_app(ApiSettings(index_dir=index), served)) as c:
        assert c.get("/health").json()["status"] == "ok"
        damage_table(index, "quotes")  # under the running server
        question = {"question": "Why was the Abbott plant closed?", "as_of": "2022-06-10"}
        response = c.post("/ask", json={**question, "stream": True})
        events = sse(response.text)
        assert (response.status_code, [name for name, _ in events]) == (200, ["passages", "error"])
        assert events[1][1] == {"detail": detail, "status": 503}
        assert c.get("/health").json() == unhealthy("damaged", DAMAGED)
        for response in (c.post("/ask", json=question), c.get("/search", params={"q": "Abbott"})):
            assert (response.status_code, response.json()) == (503, {"detail": detail})


def test_health_gives_a_short_reason_and_the_log_the_paths_and_internals(built, tmp_path, caplog):
    pipeline, _, _ = built
    index = tmp_path / "index"
    shutil.copytree(pipeline.settings.index_dir, index)
    (index / pipeline.index().manifest.generation / "dense.faiss").write_bytes(b"\0" * 64)
    settings = ApiSettings(index_dir=index, api_key="s3cret", protect_reads=True)
    served = Pipeline(Settings(index_dir=index), embedder=pipeline.embedder)
    with client_for(create_app(settings, served)) as c, caplog.at_level(logging.WARNING, logger="api"):
        response = c.get("/health")
    assert (response.status_code, response.json()) == (200, unhealthy("damaged", DAMAGED))
    [logged] = [r.getMessage() for r in caplog.records if r.name == "api"]
    assert logged.startswith(f"/health: no index is served: index in {index} is damaged (RuntimeError: ")
    assert "faiss" in logged and logged.endswith(f": rebuild it with 'rag reindex --full --index {index}'")


@pytest.mark.parametrize("manifest, detail", [
    ("{not json", "index manifest {path} is unreadable (Expecting property name enclosed in double quotes: "
                  "line 1 column 2 (char 1)): rebuild it with 'rag reindex <folder> --full --index {index}'"),
    ('{"format_version": 99}', "index in {index} has format version 99, this version of rag reads 1: "
                               "rebuild it with 'rag reindex --full --index {index}'"),
])
def test_damaged_or_mismatched_index_is_503_saying_what_is_wrong(tmp_path, embedder, manifest, detail):
    index = tmp_path / "index"
    index.mkdir()
    (index / "manifest.json").write_text(manifest)
    pipeline = Pipeline(Settings(index_dir=index), embedder=embedder)
    with client_for(create_app(ApiSettings(index_dir=index), pipeline)) as c:
        response = c.get("/search", params={"q": "x"})
    expected = detail.format(path=index / "manifest.json", index=index)
    assert (response.status_code, response.json()) == (503, {"detail": expected})


# -- unexpected errors, request ids ----------------------------------------------------------------
def test_unexpected_error_is_500_with_a_request_id_and_the_traceback_only_in_the_log(caplog):
    app = create_app(ApiSettings(), FakePipeline())
    app.dependency_overrides[get_pipeline] = lambda: FakePipeline(fail=RuntimeError("secret detail"))
    with client_for(app) as c, caplog.at_level(logging.ERROR, logger="api"):
        response = c.get("/search", params={"q": "x"})
    rid = response.headers["X-Request-ID"]
    assert (response.status_code, response.json()) == (500, {"detail": "internal error", "request_id": rid})
    assert "secret" not in response.text and "Traceback" not in response.text
    [record] = [r for r in caplog.records if r.name == "api"]
    assert record.getMessage() == f"request {rid} failed: GET /search"
    assert record.exc_info and str(record.exc_info[1]) == "secret detail"


def test_a_failure_after_the_stream_started_is_reported_in_band(caplog):
    fake = FakePipeline(fail=RuntimeError("secret detail"), fail_in=("compose",))
    with client_for(create_app(ApiSettings(), fake)) as c, caplog.at_level(logging.ERROR, logger="api"):
        response = c.post("/ask", json={"question": "q", "stream": True})
    rid = response.headers["X-Request-ID"]
    assert response.status_code == 200
    assert sse(response.text) == [
        ("passages", []), ("error", {"detail": "internal error", "request_id": rid, "status": 500})]
    assert [r.getMessage() for r in caplog.records if r.name == "api"] == [
        f"request {rid} failed: POST /ask (streaming)"]


def test_every_response_carries_its_own_request_id(client):
    ids = {client.get(path).headers["X-Request-ID"] for path in ("/health", "/health", "/articles/x", "/nowhere")}
    assert len(ids) == 4 and all(len(i) == 16 for i in ids)


def test_bodies_over_64_kib_are_refused(client):
    detail = {"detail": "request body too large: the limit is 65536 bytes (64 KiB)"}
    big = json.dumps({"question": "x" * 70_000}).encode()
    response = client.post("/ask", content=big, headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (413, detail)

    def chunks():  # no Content-Length: the bytes are counted as they arrive
        for _ in range(17):
            yield b" " * 4096
    response = client.post("/ask", content=chunks(), headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()) == (413, detail)


# -- keys, CORS, retrieval-only -------------------------------------------------------------------
def test_reindex_needs_the_api_key_and_reads_stay_open():
    fake = FakePipeline()
    with client_for(create_app(ApiSettings(api_key="s3cret"), fake)) as c:
        assert (c.post("/reindex").status_code, c.post("/reindex").json()) == (
            401, {"detail": "missing API key: send it in the X-API-Key header"})
        wrong = c.post("/reindex", headers={"X-API-Key": "guess"})
        assert (wrong.status_code, wrong.json()) == (403, {"detail": "wrong API key: check the X-API-Key header"})
        assert c.get("/reindex/abc").status_code == 401
        assert c.get("/search", params={"q": "x"}).status_code == 200
        assert c.post("/reindex", headers={"X-API-Key": "s3cret"}).status_code == 202


def test_protected_reads_need_the_key_but_health_does_not():
    with client_for(create_app(ApiSettings(api_key="s3cret", protect_reads=True), FakePipeline())) as c:
        assert c.get("/search", params={"q": "x"}).status_code == 401
        assert c.post("/ask", json={"question": "x"}).status_code == 401
        assert c.get("/articles/a").status_code == 401
        assert c.get("/speakers").status_code == 401
        assert c.get("/speakers/tony-blair/quotes").status_code == 401
        assert c.get("/search", params={"q": "x"}, headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/speakers", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/speakers/tony-blair/quotes", headers={"X-API-Key": "s3cret"}).status_code == 200
        assert c.get("/health").status_code == 200


def test_cors_is_off_unless_configured():
    preflight = {"Origin": "https://news.example", "Access-Control-Request-Method": "GET"}
    with client_for(create_app(ApiSettings(), FakePipeline())) as c:
        assert "access-control-allow-origin" not in c.get("/health", headers={"Origin": "https://news.example"}).headers
        assert c.options("/search", headers=preflight).status_code == 405
    with client_for(create_app(ApiSettings(cors_origins=("https://news.example",)), FakePipeline())) as c:
        response = c.options("/search", headers=preflight)
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "https://news.example"


def test_retrieval_only_serves_search_and_speakers_and_turns_ask_away():
    fake = FakePipeline()
    with client_for(create_app(ApiSettings(retrieval_only=True), fake)) as c:
        response = c.post("/ask", json={"question": QUESTION})
        assert (response.status_code, response.json()) == (404, {
            "detail": "this server is retrieval-only: /ask is off; use GET /search?q=... for passages"})
        assert c.get("/search", params={"q": "x"}).status_code == 200
        assert c.get("/speakers", params={"q": "blair"}).status_code == 200
        assert c.get("/speakers/tony-blair/quotes").status_code == 200
        assert c.get("/health").json()["retrieval_only"] is True
        assert "/ask" not in c.get("/openapi.json").json()["paths"]
    assert fake.calls == ["search", "speakers", "speaker_quotes"]


# -- reindex jobs ---------------------------------------------------------------------------------
def poll(c: TestClient, job_id: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    for _ in range(200):
        job = c.get(f"/reindex/{job_id}", headers=headers).json()
        if job["state"] in ("done", "failed"):
            return job
        time.sleep(0.05)
    raise AssertionError(f"job {job_id} did not finish")


def test_reindex_runs_in_the_background_one_job_at_a_time():
    fake = FakePipeline(gate=threading.Event())
    with client_for(create_app(ApiSettings(sources=("news/",)), fake)) as c:
        started = c.post("/reindex")
        job = started.json()
        assert started.status_code == 202 and started.headers["Location"] == f"/reindex/{job['id']}"
        assert job["state"] in ("queued", "running") and job["sources"] == ["news/"]
        busy = c.post("/reindex")
        assert (busy.status_code, busy.json()) == (
            409, {"detail": f"reindex {job['id']} is still running: poll GET /reindex/{job['id']}"})
        fake.gate.set()
        done = poll(c, job["id"])
        assert done["state"] == "done" and done["error"] is None and done["finished_at"]
        assert done["summary"] == {
            "index_dir": "idx", "articles": 3, "chunks": 5, "added": 1, "updated": 0, "removed": 0,
            "unchanged": 2, "embedded": 2, "reused": 3, "seconds": 0.5, "skipped": [], "duplicates": [],
            "warnings": [], "index_kind": "exact",
            "line": "indexed 3 articles into idx: 1 added, 0 updated, 0 removed, 2 unchanged, 0 skipped "
                    "(0 unusable, 0 duplicates); 5 chunks (2 embedded, 3 reused, exact index) in 0.5s"}
        assert c.post("/reindex").status_code == 202  # free again


def test_a_failed_reindex_reports_why():
    fake = FakePipeline(fail=SourceError("no usable articles in news/: add .txt files"))
    with client_for(create_app(ApiSettings(), fake)) as c:
        job = poll(c, c.post("/reindex").json()["id"])
        assert (job["state"], job["error"], job["summary"]) == (
            "failed", "no usable articles in news/: add .txt files", None)
        missing = c.get("/reindex/feedbeef")
        assert (missing.status_code, missing.json()) == (
            404, {"detail": "no reindex job 'feedbeef': POST /reindex returns the id"})


# -- the event loop stays free ------------------------------------------------------------------
def test_health_answers_while_searches_are_still_running():
    fake = FakePipeline(gate=threading.Event())
    with client_for(create_app(ApiSettings(), fake)) as c:
        searches = [threading.Thread(target=c.get, args=("/search",), kwargs={"params": {"q": "x"}})
                    for _ in range(4)]
        for t in searches:
            t.start()
        deadline = time.monotonic() + 30
        while fake.calls.count("search") < 4:
            assert time.monotonic() < deadline, f"only {fake.calls.count('search')} of 4 searches started"
            time.sleep(0.01)
        started = time.perf_counter()
        assert c.get("/health").status_code == 200
        assert time.perf_counter() - started < 1.0
        assert not fake.gate.is_set()  # all four searches were still blocked
        fake.gate.set()
        for t in searches:
            t.join(5)


# -- answers under load -----------------------------------------------------------------------
BUSY = "the server is busy: every answer slot is taken and 1 more is waiting; ask again in 2 seconds"


@pytest.mark.parametrize("stream", [False, True], ids=["json", "streamed"])
def test_ask_turns_questions_away_with_503_once_the_answer_queue_is_full(stream):
    fake = FakePipeline(gate=threading.Event(), gate_in=("compose",))
    body = {"question": "q", "stream": stream}
    with client_for(create_app(ApiSettings(ask_queue=1), fake)) as c:
        answered: list[Any] = []
        in_line = [threading.Thread(target=lambda: answered.append(c.post("/ask", json=body))) for _ in range(3)]
        for t in in_line:
            t.start()
        deadline = time.monotonic() + 30
        while fake.calls.count("compose") < 2 or fake.calls.count("retrieve") < 3:  # two slots taken, one waits
            assert time.monotonic() < deadline, f"only {fake.calls} so far"
            time.sleep(0.01)
        turned_away = c.post("/ask", json=body)
        assert (turned_away.status_code, turned_away.json()) == (503, {"detail": BUSY})
        assert turned_away.headers["Retry-After"] == "2"
        assert fake.calls.count("retrieve") == 3  # no work was spent on it

        fake.gate.set()
        for t in in_line:
            t.join(10)
        assert [r.status_code for r in answered] == [200] * 3
        if stream:
            assert [[name for name, _ in sse(r.text)] for r in answered] == [["passages", "answer", "citations",
                                                                            "done"]] * 3
        assert c.post("/ask", json=body).status_code == 200  # every place was given back
        assert c.app.state.answer_queue.admitted == 0


# -- docs ---------------------------------------------------------------------------------------
def test_docs_show_an_example_for_every_endpoint(client):
    assert client.get("/docs").status_code == 200
    spec = client.get("/openapi.json").json()
    schemas = spec["components"]["schemas"]
    operations = [(path, op) for path, ops in spec["paths"].items() for op in ops.values()]
    assert sorted(p for p, _ in operations) == sorted(
        ["/health", "/search", "/articles/{article_id}", "/speakers", "/speakers/{speaker_id}/quotes", "/ask",
         "/reindex", "/reindex/{job_id}", "/sources", "/sources", "/sources/{source_id}"])
    for path, op in operations:
        text = json.dumps(op)
        refs = [ref.rsplit("/", 1)[1] for ref in text.split('"$ref": "')[1:] for ref in [ref.split('"')[0]]]
        text += "".join(json.dumps(schemas[name]) for name in refs)
        assert '"example' in text, path


# -- settings from the environment ----------------------------------------------------------------
def test_settings_from_env():
    settings = ApiSettings.from_env({
        "RAG_INDEX": "/srv/index", "RAG_MODEL": "m", "RAG_RETRIEVAL_ONLY": "yes", "RAG_API_KEY": "k",
        "RAG_PROTECT_READS": "1", "RAG_CORS_ORIGINS": "https://a.example, http://b.example",
        "RAG_SOURCES": "news/, wire/", "RAG_ASK_QUEUE": "4", "OTHER": "ignored"})
    assert settings == ApiSettings(index_dir=Path("/srv/index"), model="m", retrieval_only=True, api_key="k",
                                   protect_reads=True, cors_origins=("https://a.example", "http://b.example"),
                                   sources=("news/", "wire/"), ask_queue=4)
    assert ApiSettings.from_env({}) == ApiSettings()


@pytest.mark.parametrize("env, message", [
    ({"RAG_RETRIEVAL_ONLY": "maybe"},
     "RAG_RETRIEVAL_ONLY='maybe' is not a yes/no value: use 1/0, true/false, yes/no or on/off"),
    ({"RAG_CORS_ORIGINS": "example.org"},
     "RAG_CORS_ORIGINS has 'example.org': list origins such as https://example.org (comma-separated), or *"),
    ({"RAG_PROTECT_READS": "on"},
     "RAG_PROTECT_READS is on but RAG_API_KEY is not set: set a key or turn PROTECT_READS off"),
    ({"RAG_ASK_QUEUE": "lots"}, "RAG_ASK_QUEUE='lots' is not a whole number: use 0 or more (default 16)"),
    ({"RAG_ASK_QUEUE": "-1"}, "RAG_ASK_QUEUE='-1' is not a whole number: use 0 or more (default 16)"),
])
def test_bad_settings_name_the_variable(env, message):
    with pytest.raises(BadSetting) as caught:
        ApiSettings.from_env(env)
    assert str(caught.value) == message


def test_rag_serve_stops_on_a_bad_setting(monkeypatch, capsys, tmp_path):
    from api.cli import main

    monkeypatch.setenv("RAG_RETRIEVAL_ONLY", "maybe")
    assert main(["serve", "--index", str(tmp_path)]) == 1
    assert capsys.readouterr().err == (
        "error: RAG_RETRIEVAL_ONLY='maybe' is not a yes/no value: use 1/0, true/false, yes/no or on/off\n")
