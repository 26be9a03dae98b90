"""How the HTTP API is configured: one frozen dataclass, read from ``RAG_`` variables by the shell.

>>> ApiSettings().index_dir
PosixPath('index')
>>> ApiSettings.from_env({"RAG_RETRIEVAL_ONLY": "yes"}).retrieval_only
True
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

from rag.answer.llm import LLMConfig, llm_config_from_env
from rag.embed import DEFAULT_SCORER_BACKEND
from rag.errors import BadSetting
from rag.ingest.web.config import parse_interval
from rag.settings import RANKERS, parse_backend, parse_scorer_backend

PREFIX = "RAG_"
MAX_BODY_BYTES = 64 * 1024
# How many questions may wait for an answer slot (two extractive, four LLM) before /ask turns
# more away with 503: at the BENCHMARKS.md "API load" pace (1.5 s a composition on a busy
# 2-CPU box) the last in line of 16 waits about 12 s, where an unbounded queue grew with every client.
ASK_QUEUE = 16
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}


@dataclass(frozen=True)
class ApiSettings:
    """Everything ``create_app`` needs; the library's own settings are built from it."""

    index_dir: Path = Path("index")
    # None: the model the index was built with (or the packaged one when there is no index).
    model: str | None = None
    # Serve /search, /health and /articles only; /ask answers 404 and nothing for answering loads.
    retrieval_only: bool = False
    # When set, POST /reindex needs it in the X-API-Key header (and the read endpoints too
    # when ``protect_reads``).
    api_key: str | None = None
    protect_reads: bool = False
    # Origins allowed by CORS; empty means CORS is off.
    cors_origins: tuple[str, ...] = ()
    # What POST /reindex rebuilds from; empty means the sources recorded in the index manifest.
    sources: tuple[str, ...] = field(default=())
    max_body_bytes: int = MAX_BODY_BYTES
    # Embedding backend (torch, onnx, onnx-int8); None: the index's own. ONNX files are cached
    # in ``cache_dir`` (None: ~/.cache/newsrag).
    backend: str | None = None
    cache_dir: Path | None = None
    # What embeds answer sentences (rag.Settings.scorer_backend); None: the search embedder.
    scorer_backend: str | None = DEFAULT_SCORER_BACKEND
    # How an answer's passages are ordered (rag.Settings.ranker); None: the library's default.
    ranker: str | None = None
    ranker_path: Path | None = None
    # The chat model behind ``"answerer": "llm"`` on POST /ask; None: that answerer answers 400.
    llm: LLMConfig | None = None
    # Questions that may wait for an answer slot of their kind; /ask answers 503 to the next one.
    ask_queue: int = ASK_QUEUE
    # Seconds between refresh rounds of the URL sources (each a reindex job); None: no rounds.
    refresh_s: float | None = None

    def __post_init__(self) -> None:
        if self.ask_queue < 0:
            raise BadSetting(f"{PREFIX}ASK_QUEUE={self.ask_queue} is negative: set how many questions may "
                             f"wait for an answer, 0 or more (default {ASK_QUEUE})")
        if self.protect_reads and not self.api_key:
            raise BadSetting(f"{PREFIX}PROTECT_READS is on but {PREFIX}API_KEY is not set: set a key "
                             "or turn PROTECT_READS off")
        if self.api_key is not None and not self.api_key.strip():
            raise BadSetting(f"{PREFIX}API_KEY is empty: set a non-empty key or unset it")

    def replace(self, **changes: object) -> ApiSettings:
        """A copy with ``changes`` applied (and checked again)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> ApiSettings:
        """Read ``RAG_INDEX``, ``RAG_MODEL``, ``RAG_RETRIEVAL_ONLY``, ``RAG_API_KEY``,
        ``RAG_PROTECT_READS``, ``RAG_CORS_ORIGINS`` and ``RAG_SOURCES`` (comma lists for the last two),
        ``RAG_BACKEND``, ``RAG_SCORER_BACKEND`` (``search``: the search embedder), ``RAG_CACHE_DIR``,
        ``RAG_RANKER`` and ``RAG_RANKER_PATH``, ``RAG_ASK_QUEUE``, ``RAG_REFRESH`` (15m, 1h), and the LLM answerer's
        ``RAG_LLM_*`` (see rag.answer.llm).

        A bad value raises BadSetting naming the variable and what it expects.
        """
        def get(name: str) -> str | None:
            value = environ.get(PREFIX + name)
            return value.strip() if value is not None else None

        return cls(
            index_dir=Path(get("INDEX") or "index"),
            model=get("MODEL") or None,
            retrieval_only=_flag(get("RETRIEVAL_ONLY"), "RETRIEVAL_ONLY"),
            api_key=get("API_KEY") or None,
            protect_reads=_flag(get("PROTECT_READS"), "PROTECT_READS"),
            cors_origins=_origins(get("CORS_ORIGINS")),
            sources=_list(get("SOURCES")),
            backend=_backend(get("BACKEND")),
            cache_dir=Path(cache) if (cache := get("CACHE_DIR")) else None,
            scorer_backend=_scorer_backend(get("SCORER_BACKEND")),
            ranker=_ranker(get("RANKER")),
            ranker_path=Path(path) if (path := get("RANKER_PATH")) else None,
            llm=llm_config_from_env(environ, prefix=PREFIX),
            ask_queue=_count(get("ASK_QUEUE"), "ASK_QUEUE", ASK_QUEUE),
            refresh_s=parse_interval(refresh, f"{PREFIX}REFRESH") if (refresh := get("REFRESH")) else None,
        )


def _backend(value: str | None) -> str | None:
    return parse_backend(value, f"{PREFIX}BACKEND") if value else None


def _ranker(value: str | None) -> str | None:
    if value and value not in RANKERS:
        raise BadSetting(f"{PREFIX}RANKER={value!r} is not one of {', '.join(RANKERS)}")
    return value or None


def _scorer_backend(value: str | None) -> str | None:
    return parse_scorer_backend(value, f"{PREFIX}SCORER_BACKEND") if value else DEFAULT_SCORER_BACKEND


def _flag(value: str | None, name: str) -> bool:
    if value is None or value.lower() in _FALSE:
        return False
    if value.lower() in _TRUE:
        return True
    raise BadSetting(f"{PREFIX}{name}={value!r} is not a yes/no value: use 1/0, true/false, yes/no or on/off")


def _count(value: str | None, name: str, default: int) -> int:
    if not value:
        return default
    if not (value.isascii() and value.isdigit()):
        raise BadSetting(f"{PREFIX}{name}={value!r} is not a whole number: use 0 or more (default {default})")
    return int(value)


def _list(value: str | None) -> tuple[str, ...]:
    return tuple(part.strip() for part in (value or "").split(",") if part.strip())


def _origins(value: str | None) -> tuple[str, ...]:
    origins = _list(value)
    for origin in origins:
        if origin != "*" and not origin.startswith(("http://", "https://")):
            raise BadSetting(f"{PREFIX}CORS_ORIGINS has {origin!r}: list origins such as "
                             "https://example.org (comma-separated), or *")
    return origins
