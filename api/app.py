"""The HTTP API: a thin shell that builds one Pipeline at start-up and calls it per route.

>>> from api import ApiSettings, create_app
>>> app = create_app(ApiSettings())   # loads nothing until the server starts (lifespan)
"""

from __future__ import annotations

import json
import logging
import secrets
import time
from contextlib import asynccontextmanager
from dataclasses import asdict
from functools import partial
from pathlib import Path
from typing import Annotated, Any, AsyncIterator, Awaitable, Callable, Iterator, Sequence, TypeVar

import anyio
from fastapi import APIRouter, Depends, FastAPI, HTTPException, Query, Request, Response, Security
from fastapi import Path as PathParam
from fastapi.concurrency import run_in_threadpool
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, StreamingResponse
from fastapi.security import APIKeyHeader
from fastapi.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

from rag import __version__
from rag.errors import IndexProblem
from rag.export import answer_to_dict, article_to_dict, citation_to_dict, hit_to_dict, speaker_to_dict
from rag.models import Answer, Hit
from rag.pipeline import Pipeline
from rag.settings import Settings

from . import errors
from .jobs import JobRunning, Refresher, ReindexJobs
from .schemas import (
    SSE_EXAMPLE,
    ArticleOut,
    AskRequest,
    AskResponse,
    ErrorOut,
    Health,
    JobOut,
    Passage,
    QuotesQuery,
    SearchQuery,
    SourceIn,
    SourceOut,
    SpeakerOut,
    SpeakerQuotes,
    SpeakersQuery,
)
from .settings import ApiSettings

log = logging.getLogger("api")
T = TypeVar("T")
COMPOSE_SLOTS = 2
LLM_SLOTS = 4
RETRY_AFTER_S = 2

DESCRIPTION = """Ask questions of the news and get answers whose every citation points at the exact
words of a stored article (`GET /articles/{id}`, `text[start:end]`).

`/reindex`, `POST /sources` and `DELETE /sources/{id}` need the `X-API-Key` header when the server
has an API key (`RAG_API_KEY`)."""


# -- dependencies ---------------------------------------------------------------------------
def get_pipeline(request: Request) -> Pipeline:
    return request.app.state.pipeline  # type: ignore[no-any-return]


def get_settings(request: Request) -> ApiSettings:
    return request.app.state.settings  # type: ignore[no-any-return]


PipelineDep = Annotated[Pipeline, Depends(get_pipeline)]
SettingsDep = Annotated[ApiSettings, Depends(get_settings)]
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False,
                        description="the server's API key (RAG_API_KEY)")


def require_key(settings: SettingsDep, key: Annotated[str | None, Security(_api_key)]) -> None:
    """401 without the key, 403 with a wrong one; open when no key is configured."""
    if settings.api_key is None:
        return
    if not key:
        raise HTTPException(401, "missing API key: send it in the X-API-Key header")
    if not secrets.compare_digest(key.encode(), settings.api_key.encode()):
        raise HTTPException(403, "wrong API key: check the X-API-Key header")


def require_key_for_reads(settings: SettingsDep, key: Annotated[str | None, Security(_api_key)]) -> None:
    if settings.protect_reads:
        require_key(settings, key)


# -- answer slots -----------------------------------------------------------------------------
class AnswerQueue:
    """The answer slots of one kind (``limiter``) and a bounded line in front of them.

    A question holds its place from the moment /ask takes it until its answer is sent (streamed
    ones to the last event); once ``slots + queue`` are in, the next is turned away at once with
    503 and Retry-After, rather than left to wait behind everyone else for ever longer.
    """

    def __init__(self, slots: int, queue: int) -> None:
        self.limiter = anyio.CapacityLimiter(slots)
        self.queue = queue
        self.capacity = slots + queue
        self.admitted = 0  # only ever changed on the event loop: no lock

    def enter(self) -> None:
        if self.admitted >= self.capacity:
            waiting = f"{self.queue} more {'is' if self.queue == 1 else 'are'} waiting"
            raise HTTPException(503, f"the server is busy: every answer slot is taken and {waiting}; "
                                     f"ask again in {RETRY_AFTER_S} seconds",
                                headers={"Retry-After": str(RETRY_AFTER_S)})
        self.admitted += 1

    def leave(self) -> None:
        self.admitted -= 1


class AnswerStream(StreamingResponse):
    """Server-sent events that give their place in the answer queue back once the last one is
    sent, or the client has gone."""

    def __init__(self, events: AsyncIterator[str], leave: Callable[[], None]) -> None:
        super().__init__(events, media_type="text/event-stream",
                         headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})
        self._leave = leave

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._leave()


# -- lifespan ---------------------------------------------------------------------------------
def load(pipeline: Pipeline, answers: bool = True) -> None:
    """Open the index (if there is one) and load and warm the embedders, once, at start-up."""
    try:
        pipeline.index()
    except IndexProblem as exc:  # the server still starts: /health says why, /search answers 503
        log.warning("serving without an index: %s", exc)
    pipeline.query_embedder.embed_batch(["warm up"])
    if answers:
        pipeline.scorer.embed_batch(["warm up"])
        pipeline.ranker()


def build_pipeline(settings: ApiSettings) -> Pipeline:
    """The pipeline ``settings`` describe, loaded and warmed; a model that cannot load raises
    its RagError here, before any request is served."""
    ranking = {"ranker": settings.ranker} if settings.ranker else {}
    pipeline = Pipeline(Settings(index_dir=settings.index_dir, model=settings.model,
                                 backend=settings.backend, cache_dir=settings.cache_dir,  # type: ignore[arg-type]
                                 scorer_backend=settings.scorer_backend,  # type: ignore[arg-type]
                                 ranker_path=settings.ranker_path, **ranking),  # type: ignore[arg-type]
                        llm=settings.llm)
    load(pipeline, answers=not settings.retrieval_only)
    return pipeline


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    if app.state.pipeline is None:
        app.state.pipeline = await run_in_threadpool(build_pipeline, app.state.settings)
    # /health gets threads of its own, so it answers while every worker thread is busy answering.
    app.state.health_limiter = anyio.CapacityLimiter(2)
    # Composing an answer embeds every sentence of its passages, seconds of CPU on a small
    # machine; more of them at once would only queue on the embedder and starve /search.
    queue = app.state.settings.ask_queue
    app.state.answer_queue = AnswerQueue(COMPOSE_SLOTS, queue)
    # LLM answers mostly wait on the chat server (up to its timeout, with retries): they get
    # slots of their own, so a slow model never holds up extractive answers.
    app.state.llm_queue = AnswerQueue(LLM_SLOTS, queue)
    # The last index problem /health logged: it may be polled every second.
    app.state.health_logged = None
    settings: ApiSettings = app.state.settings
    refresher = None
    if settings.refresh_s:
        refresher = Refresher(app.state.jobs, app.state.pipeline, settings.sources, settings.refresh_s)
        refresher.start()
    try:
        yield
    finally:
        if refresher is not None:
            refresher.stop()


# -- routes -----------------------------------------------------------------------------------
probe = APIRouter()  # always open, for load balancers and uptime checks
reads = APIRouter(dependencies=[Depends(require_key_for_reads)])
answers = APIRouter(dependencies=[Depends(require_key_for_reads)])
admin = APIRouter(dependencies=[Depends(require_key)])
ERRORS: dict[int | str, dict[str, Any]] = {
    422: {"model": ErrorOut, "description": "invalid input; `detail` names the field and what it allows"},
    503: {"model": ErrorOut, "description": "no index, or a damaged or mismatched one"},
}
ASK_ERRORS: dict[int | str, dict[str, Any]] = {**ERRORS, 503: {
    "model": ErrorOut, "description": "no index, a damaged or mismatched one, or the server is busy (every "
                                      "answer slot taken and the queue full: see Retry-After)"}}


@probe.get("/health", response_model=Health, summary="is an index loaded, and what is in it")
async def health(request: Request, pipeline: PipelineDep, settings: SettingsDep) -> dict[str, Any]:
    base = {"version": __version__, "retrieval_only": settings.retrieval_only}
    try:
        info = await anyio.to_thread.run_sync(pipeline.info, limiter=request.app.state.health_limiter)
    except IndexProblem as exc:
        # /health is open even when reads need the key: the client gets what to do, the log the rest.
        if request.app.state.health_logged != str(exc):
            request.app.state.health_logged = str(exc)
            log.warning("/health: no index is served: %s", exc)
        status, problem = errors.index_problem(exc)
        return {**base, "status": status, "index_loaded": False, "articles": None, "chunks": None,
                "model": None, "built_at": None, "problem": problem}
    return {**base, "status": "ok", "index_loaded": True, "articles": info.articles,
            "chunks": info.chunks, "model": info.model, "built_at": info.built_at, "problem": None}


@reads.get("/search", response_model=list[Passage], responses=ERRORS,
           summary="retrieval only: ranked passages, as `rag search --json`")
async def search(params: Annotated[SearchQuery, Query()], pipeline: PipelineDep) -> list[dict[str, Any]]:
    hits = await run_in_threadpool(pipeline.search, params.q, k=params.k, mode=params.mode,
                                   since=params.since, until=params.until, source=_sources(params.source))
    return [hit_to_dict(h) for h in hits]


@reads.get("/articles/{article_id:path}", response_model=ArticleOut,
           responses={404: {"model": ErrorOut, "description": "no such article"}, **ERRORS},
           summary="a stored article: citation offsets point into its text")
async def article(article_id: Annotated[str, PathParam(examples=["cbccaf622a61dd328"])],
                  pipeline: PipelineDep) -> dict[str, Any]:
    found = await run_in_threadpool(pipeline.article, article_id)
    if found is None:
        raise HTTPException(404, f"no article {article_id!r} in the index: ids come from /search or /ask")
    return article_to_dict(found)


@reads.get("/speakers", response_model=list[SpeakerOut], responses=ERRORS,
           summary="who said what: the speakers whose name matches, most quotes first")
async def speakers(params: Annotated[SpeakersQuery, Query()], pipeline: PipelineDep) -> list[dict[str, Any]]:
    found = await run_in_threadpool(pipeline.speakers, params.q, limit=params.limit)
    return [speaker_to_dict(s) for s in found]


@reads.get("/speakers/{speaker_id}/quotes", response_model=SpeakerQuotes,
           responses={404: {"model": ErrorOut, "description": "no such speaker"}, **ERRORS},
           summary="a page of one speaker's quotes, each cited like an answer's citations")
async def speaker_quotes(speaker_id: Annotated[str, PathParam(examples=["antony-blinken"])],
                         params: Annotated[QuotesQuery, Query()], pipeline: PipelineDep) -> dict[str, Any]:
    found = await run_in_threadpool(pipeline.speaker_quotes, speaker_id, limit=params.limit, offset=params.offset)
    if found is None:
        raise HTTPException(404, f"no speaker {speaker_id!r} in the index: ids come from /speakers?q=<name>")
    speaker, quotes = found
    return {"speaker": speaker_to_dict(speaker), "quotes": [citation_to_dict(c) for c in quotes]}


@answers.post("/ask", response_model=AskResponse, responses={
    200: {"content": {"text/event-stream": {"example": SSE_EXAMPLE}},
          "description": 'the answer; with `"stream": true`, server-sent events'}, **ASK_ERRORS},
    summary="a short answer with every sentence cited, as `rag ask --json` plus timings")
async def ask(body: AskRequest, request: Request, pipeline: PipelineDep) -> Any:
    queue: AnswerQueue = request.app.state.llm_queue if body.answerer == "llm" else request.app.state.answer_queue
    queue.enter()  # 503 when the line is full: before any work is spent on the question
    streaming = False
    try:
        (hits, as_of), retrieve_ms = await run_in_threadpool(
            _timed, pipeline.retrieve, body.question, body.k, body.as_of, body.since, body.until,
            _sources(body.source), body.mode)
        if body.answerer == "llm":
            pipeline.llm_answerer()  # no LLM configured: 400 now, before any event is sent
        compose = partial(anyio.to_thread.run_sync, _timed, pipeline.compose, body.question, hits, as_of,
                          body.answerer, limiter=queue.limiter)
        if body.stream:
            rid = errors.request_id(request)
            if body.answerer == "llm":
                tokens = pipeline.compose_stream(body.question, hits, as_of, "llm")
                events = _llm_events(tokens, queue.limiter, hits, retrieve_ms, rid)
            else:
                events = _answer_events(compose, hits, retrieve_ms, rid)
            response, streaming = AnswerStream(events, queue.leave), True
            return response
        answer, compose_ms = await compose()
        return {**answer_to_dict(answer), "timings": {"retrieve_ms": retrieve_ms, "compose_ms": compose_ms}}
    finally:
        if not streaming:  # a stream leaves when its last event is sent
            queue.leave()


async def _answer_events(compose: Callable[[], Awaitable[tuple[Answer, float]]], hits: list[Hit],
                         retrieve_ms: float, rid: str) -> AsyncIterator[str]:
    yield _event("passages", [hit_to_dict(h) for h in hits])
    try:
        answer, compose_ms = await compose()
    except Exception as exc:  # the 200 is already sent: report in-band, translated the usual way
        status, body = errors.translate(exc, rid, "POST /ask (streaming)")
        yield _event("error", {**body, "status": status})
        return
    timings = {"retrieve_ms": retrieve_ms, "compose_ms": compose_ms}
    data = answer_to_dict(answer)
    yield _event("answer", {"text": data["answer"]})
    yield _event("citations", data["citations"])
    yield _event("done", _done(data, timings))


async def _llm_events(stream: Iterator[str | Answer], limiter: anyio.CapacityLimiter, hits: list[Hit],
                      retrieve_ms: float, rid: str) -> AsyncIterator[str]:
    """The LLM's tokens as ``answer`` events with a ``delta`` (an unverified draft), then the
    verified answer, its citations, what verification did to each sentence, and done."""
    yield _event("passages", [hit_to_dict(h) for h in hits])
    started = time.perf_counter()
    answer: Answer | None = None
    try:
        while (item := await anyio.to_thread.run_sync(next, stream, None, limiter=limiter)) is not None:
            if isinstance(item, str):
                yield _event("answer", {"delta": item})
            else:
                answer = item
        if answer is None:
            raise RuntimeError("the LLM answerer's stream ended without an answer")
    except Exception as exc:  # the 200 is already sent: report in-band, translated the usual way
        status, body = errors.translate(exc, rid, "POST /ask (streaming, llm)")
        yield _event("error", {**body, "status": status})
        return
    finally:
        # A client that goes away mid-answer must not leave the chat server's stream open.
        close = getattr(stream, "close", None)
        if close is not None:
            with anyio.CancelScope(shield=True):  # also when the request is being cancelled
                await anyio.to_thread.run_sync(close)
    timings = {"retrieve_ms": retrieve_ms, "compose_ms": round((time.perf_counter() - started) * 1000, 1)}
    data = answer_to_dict(answer)
    yield _event("answer", {"text": data["answer"]})
    yield _event("citations", data["citations"])
    yield _event("sentences", {"answerer": data["answerer"], "sentences": data["sentences"]})
    yield _event("done", _done(data, timings))


ask_off = APIRouter()


@ask_off.post("/ask", include_in_schema=False)
async def ask_disabled() -> None:
    raise HTTPException(404, "this server is retrieval-only: /ask is off; use GET /search?q=... for passages")


@admin.post("/reindex", status_code=202, response_model=JobOut,
            responses={401: {"model": ErrorOut}, 403: {"model": ErrorOut},
                       409: {"model": ErrorOut, "description": "a reindex is already running"}},
            summary="rebuild from the configured sources in the background")
async def reindex(request: Request, response: Response, pipeline: PipelineDep,
                  settings: SettingsDep) -> dict[str, Any]:
    jobs: ReindexJobs = request.app.state.jobs
    try:
        job = jobs.start(pipeline, settings.sources)
    except JobRunning as running:
        raise HTTPException(409, f"reindex {running} is still running: poll GET /reindex/{running}") from None
    response.headers["Location"] = f"/reindex/{job.id}"
    return job.public()


@admin.get("/reindex/{job_id}", response_model=JobOut,
           responses={404: {"model": ErrorOut, "description": "no such job"}},
           summary="progress and, when done, the summary of a reindex")
async def reindex_job(job_id: Annotated[str, PathParam(examples=["3f2a9c1e"])], request: Request) -> dict[str, Any]:
    job = request.app.state.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, f"no reindex job {job_id!r}: POST /reindex returns the id")
    return job.public()  # type: ignore[no-any-return]


@reads.get("/sources", response_model=list[SourceOut], responses=ERRORS,
           summary="the URL sources (feeds, pages): last fetch, status, article count, last error")
async def sources(pipeline: PipelineDep) -> list[dict[str, Any]]:
    return [asdict(s) for s in await run_in_threadpool(pipeline.sources)]


@admin.post("/sources", status_code=201, response_model=SourceOut,
            responses={200: {"model": SourceOut, "description": "already a source"}, 401: {"model": ErrorOut},
                       403: {"model": ErrorOut}, 422: ERRORS[422]},
            summary="follow a feed: the next reindex (POST /reindex, or a --refresh round) fetches it")
async def add_source(body: SourceIn, response: Response, pipeline: PipelineDep) -> dict[str, Any]:
    record, added = await run_in_threadpool(pipeline.add_source, body.url)
    response.status_code = 201 if added else 200
    response.headers["Location"] = f"/sources/{record.id}"
    return asdict(record)


@admin.delete("/sources/{source_id}", response_model=SourceOut,
              responses={404: {"model": ErrorOut, "description": "no such source"}, 401: {"model": ErrorOut},
                         403: {"model": ErrorOut}, 422: ERRORS[422]},
              summary="stop following a source: the next reindex takes out the articles only it had")
async def remove_source(source_id: Annotated[str, PathParam(examples=["s6904f1c428"])],
                        pipeline: PipelineDep) -> dict[str, Any]:
    record = await run_in_threadpool(pipeline.remove_source, source_id)
    if record is None:
        raise HTTPException(404, f"no source {source_id!r}: ids come from GET /sources")
    return asdict(record)


# -- the web page ---------------------------------------------------------------------------
STATIC = Path(__file__).parent / "static"
# The page loads nothing but its own files and talks only to this server.
PAGE_CSP = ("default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; "
            "base-uri 'none'; form-action 'self'; frame-ancestors 'none'")


@probe.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return FileResponse(STATIC / "index.html", headers={"Content-Security-Policy": PAGE_CSP})


# -- helpers ----------------------------------------------------------------------------------
def _sources(source: str | Sequence[str] | None) -> str | None:
    if source is None or isinstance(source, str):
        return source
    return ",".join(source)


def _timed(fn: Callable[..., T], *args: Any) -> tuple[T, float]:
    """``fn(*args)`` and the milliseconds it ran (in its worker thread, not queued for one)."""
    started = time.perf_counter()
    result = fn(*args)
    return result, round((time.perf_counter() - started) * 1000, 1)


def _done(data: dict[str, Any], timings: dict[str, float]) -> dict[str, Any]:
    """A streamed answer's last event: what /ask's JSON holds besides the text, citations and passages."""
    return {"question": data["question"], "abstained": data["abstained"], "as_of": data["as_of"],
            "warnings": data["warnings"], "speakers": data["speakers"], "timings": timings}


def _event(name: str, data: Any) -> str:
    return f"event: {name}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


# -- the app ----------------------------------------------------------------------------------
def create_app(settings: ApiSettings, pipeline: Pipeline | None = None) -> FastAPI:
    """The FastAPI app. Pass ``pipeline`` to serve an already-loaded one (tests do)."""
    app = FastAPI(title="newsrag", version=__version__, description=DESCRIPTION, lifespan=lifespan)
    app.state.settings = settings
    app.state.pipeline = pipeline
    app.state.jobs = ReindexJobs()
    app.include_router(probe)
    app.include_router(reads)
    app.include_router(ask_off if settings.retrieval_only else answers)
    app.include_router(admin)
    app.mount("/static", StaticFiles(directory=STATIC), name="static")
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST", "DELETE"], allow_headers=["Content-Type", "X-API-Key"],
                           expose_headers=[errors.REQUEST_ID, "Retry-After"])
    errors.install(app, settings.max_body_bytes)
    return app
