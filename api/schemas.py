"""The web shapes of requests and responses, with the examples /docs shows.

Results leave the library as dataclasses and are turned into these shapes at the edge by
``rag.export`` (the same dicts ``rag search --json`` and ``rag ask --json`` print).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic_core import PydanticCustomError

from rag.pipeline import ANSWERERS, AnswererName
from rag.search.retrieve import MAX_K as LIBRARY_MAX_K
from rag.search.retrieve import MAX_QUERY_CHARS
from rag.settings import SEARCH_MODES, SearchMode
from rag.text.encoding import describe_surrogate, lone_surrogate

# Stricter than the library's limit, never looser: one web request shares the server with every
# other client, and the passages it asks for are each read by the answerer (or sent to the chat
# model) and returned in full, while a local ``rag search`` or ``rag eval`` costs only its user.
MAX_K = min(50, LIBRARY_MAX_K)
# One page of speakers or of one speaker's quotes: /speakers and /speakers/{id}/quotes share it.
MAX_LIMIT = 100
EXAMPLE_QUESTION = "What did Blinken say about China?"


def _question(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    return _name_query(value)


def _name_query(value: str) -> str:
    if len(value) > MAX_QUERY_CHARS:
        raise ValueError(f"at most {MAX_QUERY_CHARS} characters")
    # JSON may spell one half of a surrogate pair ("\ud800"); it is no character anyone can search.
    if (at := lone_surrogate(value)) is not None:
        raise ValueError(f"must be text: {describe_surrogate(value, at)}")
    return value


def _not_bool(value: Any) -> Any:
    # Lax pydantic reads JSON true as 1: a count sent as true is a mistake, not a request for one.
    if isinstance(value, bool):
        raise PydanticCustomError("int_type", "Input should be a valid integer")
    return value


Question = Annotated[str, AfterValidator(_question)]
K = Annotated[int, BeforeValidator(_not_bool), Field(ge=1, le=MAX_K)]
Limit = Annotated[int, Field(ge=1, le=MAX_LIMIT)]

# What a 422 says about a field, whatever pydantic's complaint was (the range, the type, ...).
FIELD_RULES = {
    "k": f"must be an integer between 1 and {MAX_K}",
    "mode": f"must be one of {', '.join(SEARCH_MODES)}",
    "stream": "must be true or false",
    "source": "must be a domain such as bbc.co.uk, a comma-separated list of them, or a JSON list",
    "since": "must be a date: use YYYY-MM-DD",
    "until": "must be a date: use YYYY-MM-DD",
    "as_of": "must be a date: use YYYY-MM-DD",
    "answerer": f"must be {' or '.join(ANSWERERS)}",
    "limit": f"must be an integer between 1 and {MAX_LIMIT}",
    "offset": "must be an integer, 0 or more",
}


class SearchQuery(BaseModel):
    """``GET /search`` parameters."""

    q: Question = Field(description="the question or keywords", examples=[EXAMPLE_QUESTION])
    k: K = Field(10, description=f"how many passages, 1-{MAX_K}", examples=[5])
    mode: SearchMode = Field("hybrid", description="hybrid (dense + BM25 fused), dense or keyword")
    since: str | None = Field(None, description="published on or after (YYYY-MM-DD)", examples=["2023-11-01"])
    until: str | None = Field(None, description="published on or before (YYYY-MM-DD)", examples=["2023-12-31"])
    source: list[str] | None = Field(None, description="only these sources (repeat it or comma-separate)",
                                     examples=[["bbc.co.uk"]])


class SpeakersQuery(BaseModel):
    """``GET /speakers`` parameters."""

    q: Annotated[str, AfterValidator(_name_query)] = Field(
        "", description="part of a name; empty: everyone", examples=["Blinken"])
    limit: Limit = Field(20, description=f"how many speakers, 1-{MAX_LIMIT}", examples=[5])


class QuotesQuery(BaseModel):
    """``GET /speakers/{id}/quotes`` parameters."""

    limit: Limit = Field(50, description=f"how many quotes, 1-{MAX_LIMIT}", examples=[10])
    offset: int = Field(0, ge=0, description="how many to skip: the next page starts at offset + limit",
                        examples=[0])


class AskRequest(BaseModel):
    """``POST /ask`` body."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"question": EXAMPLE_QUESTION, "k": 8},
        {"question": "Who won the election?", "since": "2023-01-01", "until": "2023-12-31",
         "source": "bbc.co.uk,reuters.com", "as_of": "2024-01-01", "stream": True},
    ]})

    question: Question = Field(description=f"at most {MAX_QUERY_CHARS} characters")
    k: K = Field(8, description=f"passages to answer from, 1-{MAX_K}")
    since: str | None = Field(None, description="published on or after (YYYY-MM-DD)")
    until: str | None = Field(None, description="published on or before (YYYY-MM-DD)")
    source: str | list[str] | None = Field(None, description="a source, a comma-separated list, or a list")
    as_of: str | None = Field(None, description="ask as of this date (YYYY-MM-DD, default today)")
    mode: SearchMode = "hybrid"
    stream: bool = Field(False, description="answer as server-sent events: passages, answer, citations, done")
    answerer: AnswererName = Field(
        "extractive", description="extractive (the articles' own sentences) or llm (written by the server's "
                                  "chat model, each sentence checked against the passages; 400 when none is "
                                  "configured)")


_PASSAGE = {
    "rank": 1, "score": 0.032522, "article_id": "cbccaf622a61dd328", "chunk_id": "cbccaf622a61dd328#1",
    "title": "There is an anticipation of increased U.S.-South Korea collaboration to halt military…",
    "url": None, "source": None, "published_at": None,
    "text": "Secretary Blinken emphasized that \u201cChina must play a constructive role ...\u201d",
    "start": 812, "end": 1630}
_CITATION = {
    "n": 1, "article_id": "cbccaf622a61dd328", "title": _PASSAGE["title"], "source": None, "url": None,
    "published_at": None, "quote": "Secretary Blinken emphasized that \u201cChina must play a constructive role "
    "by exerting such influence to deter North Korea from irresponsible and dangerous behavior.\u201d",
    "start": 1105, "end": 1262, "speaker": "Blinken"}


class Passage(BaseModel):
    """One retrieved passage, as ``rag search --json`` prints it."""

    # extra="allow" everywhere rag.export's shapes pass through: a field the library adds
    # reaches clients unchanged, so the API keeps returning exactly what the CLI prints.
    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [_PASSAGE]})

    rank: int
    score: float
    article_id: str
    chunk_id: str
    title: str
    url: str | None
    source: str | None
    published_at: str | None
    text: str
    start: int = Field(description="offset of the passage in the article's text")
    end: int


class CitationOut(BaseModel):
    """``quote`` is exactly ``article.text[start:end]`` of ``GET /articles/{article_id}``."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [_CITATION]})

    n: int
    article_id: str
    title: str
    source: str | None
    url: str | None
    published_at: str | None
    quote: str
    start: int
    end: int
    speaker: str | None
    supported: bool = Field(True, description="false only for an LLM sentence no passage supports, kept "
                                              "because the server flags rather than drops them")


_SPEAKER = {"id": "antony-blinken", "name": "Antony Blinken", "quotes": 4}


class SpeakerOut(BaseModel):
    """A person (or a body, such as "the company") quotes are attributed to."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [_SPEAKER]})

    id: str = Field(description="for GET /speakers/{id}/quotes")
    name: str = Field(description="as citations' `speaker` gives it")
    quotes: int = Field(description="how many of their quotes the index holds")


class SpeakerQuotes(BaseModel):
    """A speaker and a page of their quotes, each cited like an answer's citations."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"speaker": _SPEAKER, "quotes": [_CITATION]}]})

    speaker: SpeakerOut
    quotes: list[CitationOut] = Field(description="numbered from offset + 1; `quote` is "
                                                   "`article.text[start:end]` of GET /articles/{article_id}")


class SentenceOut(BaseModel):
    """What verification did to one sentence the LLM wrote (``"answerer": "llm"`` only)."""

    text: str
    cited: list[int] = Field(description="the passage numbers the LLM cited")
    action: Literal["kept", "recited", "flagged", "dropped"]
    citation: int | None = Field(description="the answer's marker for it; null when dropped")
    support: float = Field(description="how well the best passage sentence supports it (0.7 or more: supported)")
    passage: int | None


class Timings(BaseModel):
    retrieve_ms: float
    compose_ms: float


class AskResponse(BaseModel):
    """``rag ask --json`` plus timings."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "question": EXAMPLE_QUESTION, "answer": f"{_CITATION['quote']} [1]", "abstained": False,
        "as_of": "2024-01-05", "citations": [_CITATION], "passages": [_PASSAGE], "warnings": [],
        "speakers": [_SPEAKER], "timings": {"retrieve_ms": 41.2, "compose_ms": 18.5}}]})

    question: str
    answer: str
    abstained: bool
    as_of: str | None
    citations: list[CitationOut]
    passages: list[Passage]
    warnings: list[str]
    answerer: Literal["extractive", "llm"] = Field(
        "extractive", description="who wrote the answer: extractive when asked, or when the LLM failed (see warnings)")
    sentences: list[SentenceOut] = Field(default_factory=list)
    speakers: list[SpeakerOut] = Field(default_factory=list, description='whom a "What did X say" '
                                       "question's name matched: their ids lead to GET /speakers/{id}/quotes")
    timings: Timings


class ArticleOut(BaseModel):
    """A stored article; citation and passage offsets point into ``text``."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "cbccaf622a61dd328", "title": _PASSAGE["title"], "text": "Secretary of State Antony Blinken ...",
        "url": None, "source": None, "published_at": None, "author": "Koo Chae Eun"}]})

    id: str
    title: str
    text: str
    url: str | None
    source: str | None
    published_at: str | None
    author: str | None


class Health(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "status": "ok", "version": "0.1.0", "index_loaded": True, "articles": 6, "chunks": 9,
        "model": "sentence-transformers/all-MiniLM-L6-v2", "built_at": "2024-01-05T10:00:00+00:00",
        "retrieval_only": False, "problem": None}]})

    status: Literal["ok", "no index", "damaged", "mismatched"] = Field(
        description="ok; no index yet; damaged (rebuild it); or built with another model, backend "
                    "or format than the server's")
    version: str
    index_loaded: bool
    articles: int | None
    chunks: int | None
    model: str | None
    built_at: str | None
    retrieval_only: bool
    problem: str | None = Field(description="why no index is loaded, when none is, and what to do (the "
                                            "details are in the server's log)")


class ProblemOut(BaseModel):
    origin: str
    reason: str


class SummaryOut(BaseModel):
    index_dir: str
    articles: int
    chunks: int
    added: int
    updated: int
    removed: int
    unchanged: int
    embedded: int
    reused: int
    seconds: float
    skipped: list[ProblemOut]
    duplicates: list[ProblemOut]
    warnings: list[ProblemOut]
    index_kind: str
    line: str


class JobOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "3f2a9c1e", "state": "running", "sources": ["/srv/news"],
        "started_at": "2024-01-05T10:00:00+00:00", "finished_at": None, "elapsed_s": 1.2,
        "summary": None, "error": None}]})

    id: str
    state: Literal["queued", "running", "done", "failed"]
    sources: list[str] = Field(description="what it rebuilds from; empty: the index's recorded sources")
    started_at: str
    finished_at: str | None
    elapsed_s: float
    summary: SummaryOut | None
    error: str | None


class ErrorOut(BaseModel):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"detail": "k: must be an integer between 1 and 50",
         "errors": [{"field": "k", "message": "must be an integer between 1 and 50"}]},
        {"detail": "no index: run `rag reindex <folder>`"},
        {"detail": "internal error", "request_id": "5f0c2d9e8a7b4c1d"}]})

    detail: str
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


SSE_EXAMPLE = (
    'event: passages\ndata: [{"rank": 1, "score": 0.032, "article_id": "29be5645", ...}]\n\n'
    'event: answer\ndata: {"text": "Blinken said ... [1]"}\n\n'
    'event: citations\ndata: [{"n": 1, "article_id": "29be5645", "quote": "...", "start": 120, "end": 245, ...}]\n\n'
    'event: done\ndata: {"question": "...", "abstained": false, "as_of": "2024-01-05", "warnings": [], '
    '"speakers": [{"id": "antony-blinken", "name": "Antony Blinken", "quotes": 4}], '
    '"timings": {"retrieve_ms": 41.2, "compose_ms": 18.5}}\n\n'
    ': with "answerer": "llm", the model\'s tokens first (an unverified draft), then the verified answer:\n'
    'event: answer\ndata: {"delta": "Blinken"}\n\n'
    'event: answer\ndata: {"text": "Blinken said ... [1]"}\n\n'
    'event: citations\ndata: [...]\n\n'
    'event: sentences\ndata: {"answerer": "llm", "sentences": [{"text": "...", "action": "kept", ...}]}\n\n'
    'event: done\ndata: {...}\n\n'
)


class SourceOut(BaseModel):
    """A URL source (a feed or an article page) and how its fetching goes."""

    model_config = ConfigDict(json_schema_extra={"examples": [{
        "id": "s6904f1c428", "url": "https://example.com/feed.xml", "kind": "feed", "listed_in": None,
        "added_at": "2024-01-05T10:00:00+00:00", "title": "Example News",
        "last_fetch": "2024-01-05T10:15:00+00:00", "last_ok": "2024-01-05T10:15:00+00:00",
        "status": "not modified", "last_error": None, "articles": 42}]})

    id: str
    url: str
    kind: Literal["feed", "page", "auto"] = Field(description="auto: not fetched successfully yet")
    listed_in: str | None = Field(description="the list file that names it (remove it there), or null")
    added_at: str
    title: str | None
    last_fetch: str | None
    last_ok: str | None
    status: Literal["new", "ok", "not modified", "failed"]
    last_error: str | None
    articles: int = Field(description="articles of this source in the fetch state (indexed by the last reindex)")


class SourceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"url": "https://example.com/feed.xml"}]})

    url: Annotated[str, Field(min_length=1, max_length=2000, description="an RSS or Atom feed's http(s) address")]
