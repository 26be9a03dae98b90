"""POST /ask with "answerer": the choice, its errors, and the fallback when the LLM is down."""

from __future__ import annotations


import pytest
from fastapi.testclient import TestClient

from api import ApiSettings, create_app
from conftest import free_port
from rag.export import answer_to_dict
from rag.answer.llm import LLMConfig
from rag.pipeline import Pipeline

QUESTION = "Why was the Abbott baby formula plant closed?"
AS_OF = "2022-06-10"


@pytest.fixture(scope="module")
def plain(built):
    """A server with no LLM configured."""
    pipeline, _, _ = built
    with TestClient(create_app(ApiSettings(index_dir=pipeline.settings.index_dir), pipeline),
                    raise_server_exceptions=False) as client:
        yield client


@pytest.fixture(scope="module")
def down(built, embedder):
    """A server whose LLM is configured but not running."""
    pipeline, _, _ = built
    config = LLMConfig(f"http://127.0.0.1:{free_port()}", "tiny")
    settings = ApiSettings(index_dir=pipeline.settings.index_dir, llm=config)
    with TestClient(create_app(settings, Pipeline(pipeline.settings, embedder=embedder, llm=config)),
                    raise_server_exceptions=False) as client:
        yield client


def test_the_default_answerer_is_extractive(plain, built):
    pipeline, _, _ = built
    body = plain.post("/ask", json={"question": QUESTION, "as_of": AS_OF}).json()
    body.pop("timings")
    assert body == answer_to_dict(pipeline.ask(QUESTION, as_of=AS_OF))
    assert (body["answerer"], body["sentences"]) == ("extractive", [])
    assert all(c["supported"] for c in body["citations"])


@pytest.mark.parametrize("stream", [False, True])
def test_llm_without_a_configured_llm_is_a_400(plain, stream):
    response = plain.post("/ask", json={"question": QUESTION, "answerer": "llm", "stream": stream})
    assert response.status_code == 400
    assert response.json() == {"detail": (
        "no LLM is configured for the 'llm' answerer: pass --llm-base-url and --llm-model, or set "
        "RAG_LLM_BASE_URL and RAG_LLM_MODEL (library: Pipeline(..., llm=LLMConfig(base_url, model)))")}


def test_an_unknown_answerer_is_a_422_naming_the_field(plain):
    response = plain.post("/ask", json={"question": QUESTION, "answerer": "gpt"})
    assert response.status_code == 422
    assert response.json()["detail"] == "answerer: must be extractive or llm"


def test_an_unreachable_llm_gives_the_extractive_answer_and_a_warning(down, built):
    pipeline, _, _ = built
    response = down.post("/ask", json={"question": QUESTION, "as_of": AS_OF, "answerer": "llm"})
    assert response.status_code == 200
    body = response.json()
    assert (body["answerer"], body["answer"]) == ("extractive", pipeline.ask(QUESTION, as_of=AS_OF).text)
    assert body["warnings"][0].endswith("start the server or fix the base URL; showing the extractive answer instead")


def test_an_unreachable_llm_streams_the_extractive_answer_and_a_warning(down, built):
    from test_api import sse

    pipeline, _, _ = built
    with down.stream("POST", "/ask", json={"question": QUESTION, "as_of": AS_OF, "answerer": "llm",
                                           "stream": True}) as response:
        assert response.status_code == 200
        events = sse(response.read().decode())
    assert [name for name, _ in events] == ["passages", "answer", "citations", "sentences", "done"]
    assert events[1][1] == {"text": pipeline.ask(QUESTION, as_of=AS_OF).text}
    assert events[3][1] == {"answerer": "extractive", "sentences": []}
    assert events[4][1]["warnings"][0].endswith("showing the extractive answer instead")


def test_rag_llm_variables_configure_the_server():
    settings = ApiSettings.from_env({"RAG_LLM_BASE_URL": "http://127.0.0.1:8080", "RAG_LLM_MODEL": "smollm2",
                                     "RAG_LLM_API_KEY": "sk-1"})
    assert settings.llm == LLMConfig("http://127.0.0.1:8080", "smollm2", api_key="sk-1")
    assert ApiSettings.from_env({}).llm is None
