"""Reindexing: ingest sources, chunk, embed what is new, and swap in a new generation.

Incremental by construction: every chunk's embedded text is hashed, and a vector whose text
was embedded by the previous generation (same model, same chunking) is copied, not recomputed.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from rag.embed import Embedder, embed_documents, embedder_backend, interchangeable
from rag.errors import IndexProblem, SourceError
from rag.filelock import FileLock
from rag.index.dense import DenseSearcher, build_dense
from rag.index.keyword import KeywordSearcher
from rag.index.manifest import MANIFEST, Manifest, read_manifest, write_manifest
from rag.index.store import Store
from rag.ingest import IngestReport, read_sources
from rag.ingest.chunking import Chunker, ChunkingSettings
from rag.models import Article, Chunk, Problem, Quote
from rag.settings import Settings

QuoteExtractor = Callable[[Article], Sequence[Quote]]


@dataclass(frozen=True)
class ReindexSummary:
    """What a reindex did. ``line()`` is the one-line report the CLI prints."""

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
    skipped: list[Problem] = field(default_factory=list)
    duplicates: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    index_kind: str = "exact"

    def line(self) -> str:
        return (
            f"indexed {self.articles} articles into {self.index_dir}: {self.added} added, "
            f"{self.updated} updated, {self.removed} removed, {self.unchanged} unchanged, "
            f"{len(self.skipped) + len(self.duplicates)} skipped "
            f"({len(self.skipped)} unusable, {len(self.duplicates)} duplicates); "
            f"{self.chunks} chunks ({self.embedded} embedded, {self.reused} reused, "
            f"{self.index_kind} index) in {self.seconds:.1f}s"
        )


@dataclass(frozen=True)
class PreviousBuild:
    """The generation a reindex replaces: what changed is counted against its articles, and its
    vectors are copied for unchanged text when ``reuse`` (same model, backend and chunking)."""

    manifest: Manifest
    store: Store
    vectors: np.ndarray
    reuse: bool


def content_hash(article: Article) -> str:
    """Changes whenever anything stored about the article changes (text or metadata)."""
    payload = json.dumps(
        [article.title, article.text, article.url, article.source, article.published_at, article.author],
        ensure_ascii=False,
    )
    return hashlib.sha1(payload.encode("utf-8")).hexdigest()


def _embed_key(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


class Indexer:
    """Builds generations of one index folder. Only one reindex runs per folder at a time."""

    def __init__(self, settings: Settings, embedder: Embedder, chunker: Chunker,
                 quote_extractor: QuoteExtractor | None = None) -> None:
        self.settings = settings
        self.embedder = embedder
        self.chunker = chunker
        self.quote_extractor = quote_extractor

    def chunking_settings(self) -> dict[str, Any]:
        s: ChunkingSettings = self.chunker.settings
        return {"max_tokens": s.max_tokens, "overlap_sentences": s.overlap_sentences,
                "model_max_tokens": s.model_max_tokens, "title_max_tokens": s.title_max_tokens,
                "splitter": "rag.text.sentences/1", "title_in_embedding": True}

    def reindex(self, sources: Sequence[str | Path] = (), full: bool = False) -> ReindexSummary:
        """Mirror ``sources`` (or the ones the last reindex used) into a new generation."""
        started = time.perf_counter()
        index_dir = self.settings.index_dir
        index_dir.mkdir(parents=True, exist_ok=True)
        with _exclusive_lock(index_dir):
            previous = self._previous(index_dir, full)
            if not sources:
                sources = previous.manifest.sources if previous else ()
                if not sources:
                    raise SourceError(
                        f"no sources given and none recorded in {index_dir}: "
                        "run 'rag reindex <folder-or-files>'"
                    )
            resolved = [str(Path(s).resolve()) for s in sources]
            report = read_sources(resolved)
            if not report.articles:
                reasons = "; ".join(f"{p.origin}: {p.reason}" for p in report.problems[:5])
                raise SourceError(
                    f"no usable articles in {', '.join(map(str, sources))}"
                    f"{' (' + reasons + ')' if reasons else ''}: nothing was changed; "
                    "add .txt, .md, .html, .json or .jsonl articles"
                )
            _remove_stale_builds(index_dir)
            build = index_dir / f".building-{_stamp()}"
            build.mkdir()
            final = index_dir / build.name.replace(".building-", "gen-", 1)
            try:
                manifest, summary = self._build(build, final.name, report, previous, resolved, started)
                os.rename(build, final)
                write_manifest(index_dir, manifest)
            except BaseException:
                shutil.rmtree(build, ignore_errors=True)
                raise
            finally:
                if previous:
                    previous.store.close()
            _remove_old_generations(index_dir, keep={final.name, previous.manifest.generation if previous else ""})
            return summary

    def _previous(self, index_dir: Path, full: bool) -> PreviousBuild | None:
        """The generation to reuse vectors from, when it is compatible with this build."""
        try:
            manifest = read_manifest(index_dir)
        except IndexProblem:
            return None
        gen = index_dir / manifest.generation
        compatible = (
            manifest.model == self.embedder.name
            and interchangeable(manifest.backend, embedder_backend(self.embedder))
            and manifest.chunking == self.chunking_settings()
        )
        try:
            store = Store(gen / "store.sqlite", readonly=True)
            vectors = np.load(gen / "vectors.npy", mmap_mode="r")
        except Exception:  # a damaged previous generation is simply not reused
            return None
        return PreviousBuild(manifest, store, vectors, reuse=compatible and not full)

    def _build(self, build: Path, generation: str, report: IngestReport, previous: PreviousBuild | None,
               sources: list[str], started: float) -> tuple[Manifest, ReindexSummary]:
        """Write the generation into ``build``; the manifest that will name it ``generation``."""
        articles = report.articles
        hashes = [content_hash(a) for a in articles]
        old = previous.store.article_hashes() if previous else {}
        diff = _diff(articles, hashes, old)

        chunk_lists = self.chunker.chunk(articles)
        rows: list[tuple[int, Chunk, str]] = []
        texts: list[str] = []
        for article, chunks in zip(articles, chunk_lists):
            for chunk in chunks:
                text = self.chunker.embedding_text(article, chunk)
                rows.append((len(rows), chunk, _embed_key(text)))
                texts.append(text)

        vectors, reused = self._vectors(texts, [key for _, _, key in rows], previous)
        kind = self._index_kind(len(rows))

        store = Store(build / "store.sqlite")
        for article, digest in zip(articles, hashes):
            store.add_article(article, digest)
            if self.quote_extractor is not None:
                store.add_quotes(self.quote_extractor(article))
        store.add_chunks(rows)
        store.commit()
        store.close()
        np.save(build / "vectors.npy", vectors)
        DenseSearcher(build_dense(vectors, kind), vectors, kind).save(build / "dense.faiss")
        KeywordSearcher.build(texts).save(build / "bm25")

        seconds = time.perf_counter() - started
        manifest = Manifest(
            model=self.embedder.name, dimension=int(vectors.shape[1]),
            model_backend=embedder_backend(self.embedder), chunking=self.chunking_settings(),
            index_kind=kind, ann_threshold=self.settings.ann_threshold,
            articles=len(articles), chunks=len(rows), sources=tuple(sources),
            built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            build_seconds=round(seconds, 2), generation=generation,
        )
        summary = ReindexSummary(
            index_dir=str(self.settings.index_dir), articles=len(articles), chunks=len(rows),
            added=diff["added"], updated=diff["updated"], removed=diff["removed"],
            unchanged=diff["unchanged"], embedded=len(rows) - reused, reused=reused,
            seconds=seconds, skipped=report.problems, duplicates=report.duplicates,
            warnings=report.warnings, index_kind=kind,
        )
        return manifest, summary

    def _vectors(self, texts: list[str], keys: list[str], previous: PreviousBuild | None
                 ) -> tuple[np.ndarray, int]:
        known = previous.store.embed_keys() if previous and previous.reuse else {}
        fresh = [i for i, key in enumerate(keys) if key not in known]
        new = embed_documents(self.embedder, [texts[i] for i in fresh],
                              batch_size=self.settings.batch_size, progress=self.settings.progress)
        dim = new.shape[1] if len(fresh) else (previous.vectors.shape[1] if known else self.embedder.dimension)
        vectors = np.zeros((len(texts), dim), dtype=np.float32)
        if len(fresh):
            vectors[fresh] = new
        reuse_at = [i for i, key in enumerate(keys) if key in known]
        if reuse_at:
            vectors[reuse_at] = previous.vectors[[known[keys[i]] for i in reuse_at]]
        return vectors, len(reuse_at)

    def _index_kind(self, n: int) -> str:
        if self.settings.index_type == "auto":
            return "hnsw" if n >= self.settings.ann_threshold else "exact"
        return self.settings.index_type


def _diff(articles: list[Article], hashes: list[str], old: dict[str, tuple[str, str]]) -> dict[str, int]:
    """Added/updated/removed/unchanged against the previous generation.

    An article whose id changed but which comes from the same place (a text file whose
    content-derived id moved with an edit) counts as updated, not as one removal plus one addition.
    """
    new_ids = {a.id for a in articles}
    removed_origins = {origin for aid, (_, origin) in old.items() if aid not in new_ids}
    added = updated = unchanged = 0
    replaced = set()
    for article, digest in zip(articles, hashes):
        if article.id in old:
            if old[article.id][0] == digest:
                unchanged += 1
            else:
                updated += 1
        elif article.origin in removed_origins and article.origin not in replaced:
            updated += 1
            replaced.add(article.origin)
        else:
            added += 1
    removed = sum(1 for aid, (_, origin) in old.items() if aid not in new_ids and origin not in replaced)
    return {"added": added, "updated": updated, "removed": removed, "unchanged": unchanged}


def _stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


@contextmanager
def _exclusive_lock(index_dir: Path) -> Iterator[None]:
    """An advisory lock on ``index/.lock``: a second concurrent reindex fails fast."""
    lock = FileLock(index_dir / ".lock", blocking=False)
    try:
        lock.acquire()
    except BlockingIOError:
        raise IndexProblem(f"another reindex of {index_dir} is running: wait for it to finish") from None
    try:
        yield
    finally:
        lock.release()


def _remove_stale_builds(index_dir: Path) -> None:
    # Leftovers of a killed reindex; safe to delete because we hold the lock.
    for path in index_dir.glob(".building-*"):
        shutil.rmtree(path, ignore_errors=True)


def _remove_old_generations(index_dir: Path, keep: set[str]) -> None:
    # The previous generation is kept so that a server still reading it is not cut off.
    for path in index_dir.glob("gen-*"):
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)
    for tmp in index_dir.glob(f".{MANIFEST}.tmp-*"):
        tmp.unlink(missing_ok=True)
