"""The one place where errors become HTTP responses, and the request id that ties them to the log.

    RagError            InputError 422; IndexNotBuilt, IndexCorrupt, IndexMismatch, ModelError 503;
                        SourceError, AnswererError 400
    validation error    422 {"detail": "k: must be an integer between 1 and 50", "errors": [...]}
                        (a body that is not UTF-8 too: FastAPI would answer 400)
    HTTPException       its own status and detail (401, 403, 404, 409, 413, 503 busy)
    anything else       500 {"detail": "internal error", "request_id": ...}, traceback logged only

/health, open to anyone, says what is wrong with the index in a short reason of its own
(``index_problem``); the message with paths and library internals goes to the log.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers, MutableHeaders
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from rag.errors import IndexCorrupt, IndexMismatch, IndexNotBuilt, IndexProblem, InputError, ModelError, RagError

from .schemas import FIELD_RULES, AskRequest

log = logging.getLogger("api")

NO_INDEX = "no index: run `rag reindex <folder>`"
DAMAGED = "the index is damaged: rebuild it with `rag reindex --full`"
MISMATCHED = ("the index was built with another model, backend or format than this server uses: rebuild it "
              "with `rag reindex --full`, or serve it with the settings it was built with")
REQUEST_ID = "X-Request-ID"
_LOCATIONS = {"body", "query", "path", "header"}
_TYPE_MESSAGES = {
    "missing": "is required",
    "string_type": "must be a string",
    "int_parsing": "must be an integer",
    "int_type": "must be an integer",
    "bool_parsing": "must be true or false",
    "bool_type": "must be true or false",
    "extra_forbidden": "is not a field: use " + ", ".join(AskRequest.model_fields),
    "model_attributes_type": 'must be a JSON object, e.g. {"question": "What did Blinken say about China?"}',
    "dict_type": 'must be a JSON object, e.g. {"question": "What did Blinken say about China?"}',
    "string_unicode": "must be text: it holds a lone surrogate",
}


def request_id(request: Request) -> str:
    return str(getattr(request.state, "request_id", "-"))


def rag_error(exc: RagError) -> tuple[int, dict[str, Any]]:
    """Status and body for an error the library raised on purpose."""
    if isinstance(exc, IndexNotBuilt):
        return 503, {"detail": NO_INDEX, "message": str(exc)}
    if isinstance(exc, (IndexProblem, ModelError)):
        return 503, {"detail": str(exc)}
    if isinstance(exc, InputError):
        return 422, {"detail": str(exc)}
    return 400, {"detail": str(exc)}  # SourceError, AnswererError: the request cannot be served


def index_problem(exc: IndexProblem) -> tuple[str, str]:
    """/health's ``status`` and ``problem`` for an index that cannot be served: what to do, and
    nothing of the server's paths or the libraries' internals that ``str(exc)`` holds."""
    if isinstance(exc, IndexCorrupt):
        return "damaged", DAMAGED
    if isinstance(exc, IndexMismatch):
        return "mismatched", MISMATCHED
    return "no index", NO_INDEX


def unreadable_body(cause: BaseException | None) -> str | None:
    """Why FastAPI could not read a JSON body it answered 400 for, in the words of a 422; None
    when the cause is not the body's bytes."""
    if isinstance(cause, UnicodeDecodeError):
        return (f"is not valid JSON (not UTF-8: byte 0x{cause.object[cause.start]:02x} "
                f"at position {cause.start})")
    if isinstance(cause, RecursionError):
        return "is not valid JSON that can be read (nested too deeply)"
    return None


def unexpected(exc: BaseException, rid: str, what: str) -> tuple[int, dict[str, Any]]:
    """Log the traceback under the request id; the client gets the id and nothing else."""
    log.error("request %s failed: %s", rid, what, exc_info=exc)
    return 500, {"detail": "internal error", "request_id": rid}


def translate(exc: BaseException, rid: str, what: str) -> tuple[int, dict[str, Any]]:
    """Status and body for any exception: used by the handlers and, in-band, by streamed answers."""
    if isinstance(exc, RagError):
        return rag_error(exc)
    return unexpected(exc, rid, what)


def describe(error: dict[str, Any]) -> dict[str, str]:
    """One pydantic error as ``{"field", "message"}`` a person can act on."""
    loc = [str(part) for part in error.get("loc", ()) if part not in _LOCATIONS]
    field = loc[0] if loc and error["type"] != "json_invalid" else "body"
    kind = error["type"]
    if kind == "value_error":
        message = str(error.get("ctx", {}).get("error", error["msg"]))
    elif kind == "json_invalid":
        message = f"is not valid JSON ({error.get('ctx', {}).get('error', 'decode error')})"
    elif field in FIELD_RULES and kind != "missing":
        message = FIELD_RULES[field]
    else:
        message = _TYPE_MESSAGES.get(kind, str(error["msg"]))
    return {"field": field, "message": message}


def install(app: FastAPI, max_body_bytes: int) -> None:
    """Register the handlers and the request-id and body-size middleware on ``app``."""

    async def on_rag_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RagError)
        status, body = rag_error(exc)
        return JSONResponse(body, status_code=status)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        errors: list[dict[str, str]] = []
        for error in exc.errors():
            item = describe(error)
            if item not in errors:
                errors.append(item)
        return invalid(errors)

    async def on_http_error(request: Request, exc: Exception) -> Any:
        assert isinstance(exc, StarletteHTTPException)
        # FastAPI answers 400 "There was an error parsing the body" when the bytes are not UTF-8:
        # it is invalid input like any other, so it gets the 422 every other one gets.
        why = unreadable_body(exc.__cause__) if exc.status_code == 400 else None
        if why is not None:
            return invalid([{"field": "body", "message": why}])
        return await http_exception_handler(request, exc)

    async def on_unexpected(request: Request, exc: Exception) -> JSONResponse:
        rid = request_id(request)
        status, body = unexpected(exc, rid, f"{request.method} {request.url.path}")
        return JSONResponse(body, status_code=status, headers={REQUEST_ID: rid})

    app.add_exception_handler(RagError, on_rag_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http_error)
    app.add_exception_handler(Exception, on_unexpected)
    app.add_middleware(RequestContextMiddleware, max_body_bytes=max_body_bytes)


def invalid(errors: list[dict[str, str]]) -> JSONResponse:
    """The 422 of invalid input: every problem as ``{"field", "message"}``, and all in ``detail``."""
    detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
    return JSONResponse({"detail": detail, "errors": errors}, status_code=422)


def too_large(limit: int) -> str:
    return f"request body too large: the limit is {limit} bytes ({limit // 1024} KiB)"


class RequestContextMiddleware:
    """Give every request an id (``request.state.request_id``, echoed in ``X-Request-ID``) and
    refuse bodies over ``max_body_bytes`` with 413, by Content-Length or by counting the bytes."""

    def __init__(self, app: ASGIApp, max_body_bytes: int) -> None:
        self.app = app
        self.limit = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        rid = uuid.uuid4().hex[:16]
        scope.setdefault("state", {})["request_id"] = rid

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                MutableHeaders(scope=message).append(REQUEST_ID, rid)
            await send(message)

        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.limit:
            response = JSONResponse({"detail": too_large(self.limit)}, status_code=413)
            await response(scope, receive, send_with_id)
            return
        received = 0

        async def receive_counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    # Raised inside the route's body read, so the usual HTTPException handler answers.
                    raise HTTPException(413, too_large(self.limit))
            return message

        await self.app(scope, receive_counted, send_with_id)
