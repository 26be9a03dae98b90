"""The one object the shells build: it holds the embedder, chunker, index and answerer.

>>> pipeline = Pipeline(Settings(index_dir=Path("index")))   # loads nothing yet
>>> # pipeline.reindex(["seeds/"]); pipeline.search("What did Blinken say about China?")
"""

from __future__ import annotations

import threading
from datetime import date
from pathlib import Path
from typing import Any, Sequence

from .chunking import Chunker, ChunkingSettings
from .dates import parse_date
from .embedding import Embedder, SentenceTransformerEmbedder, canonical_model_name
from .errors import IndexNotBuilt
from .index import MANIFEST, LoadedIndex, load_index, read_manifest
from .indexer import Indexer, ReindexSummary
from .models import Article, Hit
from .retrieve import SearchFilter, search
from .settings import SearchMode, Settings


class Pipeline:
    """Reindex, search and answer over one index folder.

    Models load lazily on first use. The loaded index is swapped, not mutated, when a reindex
    (here or in another process) replaces the manifest, so concurrent searches always see one
    complete generation.
    """

    def __init__(self, settings: Settings, embedder: Embedder | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._chunker: Chunker | None = None
        self._index: LoadedIndex | None = None
        self._index_stamp: int | None = None
        self._lock = threading.Lock()

    # -- parts ------------------------------------------------------------------------------
    def embedder_for(self, model: str | None) -> Embedder:
        if self._embedder is None or (model and self._embedder.name != canonical_model_name(model)):
            self._embedder = SentenceTransformerEmbedder(model)
        return self._embedder

    @property
    def embedder(self) -> Embedder:
        return self.embedder_for(self.settings.model)

    def chunker(self) -> Chunker:
        if self._chunker is None:
            embedder = self.embedder
            tokenizer = getattr(embedder, "tokenizer")
            max_tokens = int(getattr(embedder, "max_tokens", 256))
            self._chunker = Chunker(tokenizer, ChunkingSettings(
                max_tokens=self.settings.chunk_tokens,
                overlap_sentences=self.settings.overlap_sentences,
                model_max_tokens=max_tokens,
            ))
        return self._chunker

    def index(self) -> LoadedIndex:
        """The current generation; reloaded when the manifest on disk has been replaced."""
        path = self.settings.index_dir / MANIFEST
        try:
            stamp = path.stat().st_mtime_ns
        except FileNotFoundError:
            read_manifest(self.settings.index_dir)  # raises the helpful IndexNotBuilt
            raise IndexNotBuilt(str(path))  # pragma: no cover - unreachable
        with self._lock:
            if self._index is None or stamp != self._index_stamp:
                expected = canonical_model_name(self.settings.model) if self.settings.model else None
                self._index = load_index(self.settings.index_dir, expected_model=expected)
                self._index_stamp = stamp
                # Search with the model the index was built with unless one was asked for.
                self.embedder_for(self._index.model)
            return self._index

    # -- verbs ------------------------------------------------------------------------------
    def reindex(self, sources: Sequence[str | Path] = (), full: bool = False) -> ReindexSummary:
        """Build or update the index from ``sources`` (default: the last reindex's sources)."""
        from .quotes import extract_quotes

        indexer = Indexer(self.settings, self.embedder, self.chunker(), quote_extractor=extract_quotes)
        return indexer.reindex(sources, full=full)

    def search(self, query: str, k: int = 10, mode: SearchMode = "hybrid",
               since: str | date | None = None, until: str | date | None = None,
               source: str | Sequence[str] | None = None) -> list[Hit]:
        """Retrieval only: the top ``k`` passages, best first."""
        flt = make_filter(since, until, source)
        index = self.index()
        return search(index, self.embedder, query, k=k, mode=mode, flt=flt)

    def article(self, article_id: str) -> Article | None:
        """The stored article, or None."""
        return self.index().store.article(article_id)

    def info(self) -> dict[str, Any]:
        """What is loaded: counts, model, build time (raises IndexNotBuilt when nothing is)."""
        index = self.index()
        manifest = index.manifest
        return {
            "index_dir": str(self.settings.index_dir),
            "articles": manifest["counts"]["articles"],
            "chunks": manifest["counts"]["chunks"],
            "model": manifest["model"]["name"],
            "dimension": manifest["model"]["dimension"],
            "index_kind": manifest["index"]["kind"],
            "built_at": manifest["built_at"],
            "sources": manifest["sources"],
        }


def make_filter(since: str | date | None, until: str | date | None,
                source: str | Sequence[str] | None) -> SearchFilter:
    """A checked SearchFilter from loose user input (ISO strings, one source or many)."""
    sources: tuple[str, ...]
    if source is None:
        sources = ()
    elif isinstance(source, str):
        sources = tuple(s for s in source.split(",") if s.strip())
    else:
        sources = tuple(source)
    return SearchFilter(parse_date(since, "since"), parse_date(until, "until"), sources)
