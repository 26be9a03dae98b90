"""Reindexing: ingest sources, chunk, embed what is new, and swap in a new generation.

Incremental by construction: every chunk's embedded text is hashed, and a vector whose text
was embedded by the previous generation (same model, same chunking) is copied, not recomputed.
A build never depends on the previous generation: when that is missing or unreadable, the build
starts from scratch with a warning.

What a build holds grows as little with the chunk count as the parts allow: chunks are kept as
offsets into their articles, vectors are embedded (or copied) a slice at a time straight into the
memory-mapped ``vectors.npy``, and BM25 is built one shard at a time (``rag.index.keyword``).
The articles are read as a stream and written to the build's store as they come; their texts
are read back from it when chunks are embedded and BM25 is built (BENCHMARKS.md, "Memory of a
reindex, 100k to 10M chunks").
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import shutil
import sqlite3
import time
from array import array
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Protocol, Sequence

import numpy as np

from rag.embed import Embedder, embed_documents, embedder_backend, interchangeable
from rag.errors import IndexProblem, SourceError
from rag.filelock import FileLock
from rag.index.dense import DenseSearcher, build_dense
from rag.index.ivf import build_ivf
from rag.index.keyword import KeywordSearcher
from rag.index.manifest import MANIFEST, Manifest, read_manifest, write_manifest
from rag.index.reuse import KnownVectors
from rag.index.space import disk_full, folder_bytes, is_disk_full
from rag.index.store import Store
from rag.ingest import IngestReport
from rag.ingest.chunking import Chunker, ChunkingSettings
from rag.ingest.web.refresh import RefreshReport
from rag.ingest.web.sources import has_url_sources, read_all
from rag.models import Article, Chunk, Problem, Quote
from rag.settings import Settings

QuoteExtractor = Callable[[Article], Sequence[Quote]]

# Fresh texts are embedded, and reused vectors copied, this many rows at a time, straight into the
# memory-mapped vectors.npy: a build holds 96 MiB of vectors at once rather than all of them (14.3
# GiB at 10M chunks of 384 dimensions).
VECTOR_SLICE = 65_536
# Articles chunked, and their chunk rows written to the store, at a time.
CHUNK_BATCH = 1_000


class EmbedChunks(Protocol):
    """How a reindex embeds the chunks it cannot reuse: ``embed_documents`` in this process (the
    default), or ``rag.index.distributed.RayEmbedding`` on a Ray cluster. Either returns one
    vector per text, in the order of ``texts``, from ``embedder``'s model and backend.

    A reindex hands it at most ``VECTOR_SLICE`` texts a call, or the ``slice_rows`` it has, if any
    (a call with a fixed cost, such as a Ray job's, wants more at a time)."""

    def __call__(self, embedder: Embedder, texts: Sequence[str], batch_size: int = 64,
                 progress: bool = False) -> np.ndarray: ...


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
    # The refresh round of the URL sources (feeds, pages); None when the index has none.
    fetched: RefreshReport | None = None

    def line(self) -> str:
        fetched = f"; {self.fetched.line()}" if self.fetched is not None else ""
        return (
            f"indexed {self.articles} articles into {self.index_dir}: {self.added} added, "
            f"{self.updated} updated, {self.removed} removed, {self.unchanged} unchanged, "
            f"{len(self.skipped) + len(self.duplicates)} skipped "
            f"({len(self.skipped)} unusable, {len(self.duplicates)} duplicates); "
            f"{self.chunks} chunks ({self.embedded} embedded, {self.reused} reused, "
            f"{self.index_kind} index) in {self.seconds:.1f}s{fetched}"
        )


@dataclass(frozen=True)
class PreviousBuild:
    """The generation a reindex replaces, read in full before the build starts: what changed is
    counted against its articles, and its vectors are copied for unchanged text when ``reuse``
    (same model, backend and chunking; ``embed_keys`` and ``vectors`` are empty otherwise)."""

    manifest: Manifest
    hashes: dict[str, tuple[str, str]]  # Store.article_hashes
    embed_keys: KnownVectors
    vectors: np.ndarray | None
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
    """Builds generations of one index folder. Only one reindex runs per folder at a time.

    ``embed_chunks`` embeds the chunks whose vectors cannot be reused (default
    ``embed_documents``: here, with ``embedder``); everything else, from reading to the swap, is
    the same wherever that runs.
    """

    def __init__(self, settings: Settings, embedder: Embedder, chunker: Chunker,
                 quote_extractor: QuoteExtractor | None = None,
                 embed_chunks: EmbedChunks | None = None) -> None:
        self.settings = settings.for_build({})  # the caller's choices, the defaults where it made none
        self.embedder = embedder
        self.chunker = chunker
        self.quote_extractor = quote_extractor
        self.embed_chunks: EmbedChunks = embed_chunks or embed_documents

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
            recorded = _recorded(index_dir)
            named = bool(sources)
            if not sources:
                # Taken from the manifest, which names them even when its generation is damaged or gone.
                sources = recorded.sources if recorded else ()
                if not sources and not has_url_sources(index_dir):
                    raise SourceError(
                        f"no sources given and none recorded in {index_dir}: "
                        "run 'rag reindex <folder-or-files>'"
                    )
            # URL sources are refreshed here, under the lock: one round per reindex.
            resolved, stream, report, fetched = read_all(sources, index_dir, self.settings.fetch, named=named)
            articles = _started(stream)
            if articles is None:  # the stream has been read to its end: the report says why
                reasons = "; ".join(f"{p.origin}: {p.reason}" for p in report.problems[:5])
                raise SourceError(
                    f"no usable articles in {', '.join(map(str, sources))}"
                    f"{' (' + reasons + ')' if reasons else ''}: nothing was changed; "
                    "add .txt, .md, .html, .json or .jsonl articles"
                )
            previous, unreadable = self._previous(index_dir, recorded, full)
            _remove_stale_builds(index_dir)
            build = index_dir / f".building-{_stamp()}"
            final = index_dir / build.name.replace(".building-", "gen-", 1)
            left = build  # where the new generation is, for cleaning up after a failure
            try:
                build.mkdir()
                manifest, summary = self._build(build, final.name, articles, report, previous, resolved,
                                                started, notes=[unreadable] if unreadable else [])
                summary = replace(summary, fetched=fetched)
                os.rename(build, final)
                left = final
                write_manifest(index_dir, manifest)
            except BaseException as exc:
                size = _discard(index_dir, left)
                if is_disk_full(exc):
                    old = folder_bytes(index_dir / recorded.generation) if recorded else 0
                    raise disk_full(index_dir, exc, size, old) from None
                raise
            _remove_old_generations(index_dir, keep={final.name, previous.manifest.generation if previous else ""})
            return summary

    def _previous(self, index_dir: Path, manifest: Manifest | None, full: bool
                  ) -> tuple[PreviousBuild | None, Problem | None]:
        """The generation this build replaces (None when there is none), and a warning when it
        cannot be read: the build then starts from scratch rather than fail."""
        if manifest is None:
            return None, None
        gen = index_dir / manifest.generation
        scratch = "this build started from scratch (every article embedded again)"
        if not gen.is_dir():
            return None, Problem(str(gen), f"previous generation is missing: {scratch}")
        reuse = not full and (
            manifest.model == self.embedder.name
            and interchangeable(manifest.backend, embedder_backend(self.embedder))
            and manifest.chunking == self.chunking_settings()
        )
        try:
            store = Store(gen / "store.sqlite", readonly=True)
            try:
                hashes = store.article_hashes()
                keys = KnownVectors(store.embed_keys() if reuse else ())
            finally:
                store.close()
            vectors = np.load(gen / "vectors.npy", mmap_mode="r") if reuse else None
            if vectors is not None and (vectors.ndim != 2 or keys.max_row() >= len(vectors)):
                raise ValueError(f"vectors.npy has shape {vectors.shape}, too few rows for the stored chunks")
        except (OSError, EOFError, ValueError, sqlite3.DatabaseError, IndexProblem) as exc:
            cause = exc.__cause__ or exc  # the store wraps SQLite's own error in IndexCorrupt
            return None, Problem(
                str(gen), f"previous generation is unreadable ({type(cause).__name__}: {cause}): {scratch}"
            )
        return PreviousBuild(manifest, hashes, keys, vectors, reuse=reuse), None

    def _build(self, build: Path, generation: str, articles: Iterable[Article], report: IngestReport,
               previous: PreviousBuild | None, sources: list[str], started: float,
               notes: list[Problem]) -> tuple[Manifest, ReindexSummary]:
        """Write the generation into ``build``; the manifest that will name it ``generation``.
        ``articles`` are read as the build goes, and fill ``report``. ``notes``: warnings about
        the build itself, reported before the sources' own."""
        store = Store(build / "store.sqlite")
        diff = _Diff(previous.hashes if previous else {})
        known = previous.embed_keys if previous and previous.reuse else KnownVectors()
        rows = _Rows(store)
        batch: list[Article] = []
        for article in articles:
            digest = content_hash(article)
            store.add_article(article, digest)
            if self.quote_extractor is not None:
                store.add_quotes(self.quote_extractor(article))
            diff.add(article, digest)
            batch.append(article)
            if len(batch) == CHUNK_BATCH:
                self._chunk(store, batch, rows, known)
                batch = []
        self._chunk(store, batch, rows, known)
        store.commit()
        kind = self._index_kind(len(rows))
        vectors, reused = self._vectors(build / "vectors.npy", rows, previous)
        dense, ivf_info = self._dense(build, generation, vectors, kind, previous)
        DenseSearcher(dense, vectors, kind).save(build / "dense.faiss")
        dimension = int(vectors.shape[1])
        del dense, vectors
        KeywordSearcher.write(build / "bm25", rows.texts(), self.settings.keyword_shard_rows)
        store.close()
        counts = diff.counts()

        seconds = time.perf_counter() - started
        manifest = Manifest(
            model=self.embedder.name, dimension=dimension,
            model_backend=embedder_backend(self.embedder), chunking=self.chunking_settings(),
            index_kind=kind, ann_threshold=self.settings.ann_threshold,
            ivf_threshold=self.settings.ivf_threshold, ivf=ivf_info,
            keyword_shard_rows=self.settings.keyword_shard_rows,
            articles=rows.articles, chunks=len(rows), sources=tuple(sources),
            built_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
            build_seconds=round(seconds, 2), generation=generation,
        )
        summary = ReindexSummary(
            index_dir=str(self.settings.index_dir), articles=rows.articles, chunks=len(rows),
            added=counts["added"], updated=counts["updated"], removed=counts["removed"],
            unchanged=counts["unchanged"], embedded=len(rows) - reused, reused=reused,
            seconds=seconds, skipped=report.problems, duplicates=report.duplicates,
            warnings=[*notes, *report.warnings], index_kind=kind,
        )
        return manifest, summary

    def _chunk(self, store: Store, batch: Sequence[Article], rows: _Rows, known: KnownVectors) -> None:
        """Chunk ``batch``, the articles last added to ``store``, and write their chunk rows to
        it; add the rows, as offsets, to ``rows``, each with the row of ``known`` (the previous
        generation's vectors) whose vector it reuses."""
        chunked: list[tuple[str, list[Chunk], list[str]]] = []  # per article: prefix, chunks, embed keys
        for article, chunks in zip(batch, self.chunker.chunk(batch)):
            texts = [self.chunker.embedding_text(article, chunk) for chunk in chunks]
            prefix = _prefix(texts[0], chunks[0]) if chunks else ""
            chunked.append((prefix, chunks, [_embed_key(text) for text in texts]))
        reuse = iter(known.rows_of([key for _, _, keys in chunked for key in keys]).tolist())
        written: list[tuple[int, Chunk, str]] = []
        for prefix, chunks, keys in chunked:
            for chunk, key in zip(chunks, keys):
                written.append((len(rows), chunk, key))
                rows.add(chunk, next(reuse))
            rows.next_article(prefix)
        store.add_chunks(written)

    def _vectors(self, path: Path, rows: _Rows, previous: PreviousBuild | None) -> tuple[np.ndarray, int]:
        """Write every row's vector into ``path`` (``vectors.npy``), embedding the fresh ones a
        slice at a time (``EmbedChunks``) and copying the reused ones ``VECTOR_SLICE`` rows at a
        time; the file, memory-mapped, and how many rows were reused."""
        reuse = rows.reuse_rows()
        fresh = np.flatnonzero(reuse < 0)
        reused = np.flatnonzero(reuse >= 0)
        step = int(getattr(self.embed_chunks, "slice_rows", VECTOR_SLICE))
        slices = [fresh[lo:lo + step] for lo in range(0, len(fresh), step)]
        # The first slice is embedded before the file is made: its vectors say the dimension.
        new = self._embed(rows, slices[0]) if slices else None
        old = previous.vectors if len(reused) and previous is not None else None
        dim = new.shape[1] if new is not None else old.shape[1] if old is not None else self.embedder.dimension
        vectors = _vector_file(path, len(rows), dim)
        for i, at in enumerate(slices):
            vectors[at] = new if i == 0 else self._embed(rows, at)
            new = None  # not held beside the next slice's
        for lo in range(0, len(reused), VECTOR_SLICE):
            at = reused[lo:lo + VECTOR_SLICE]
            assert old is not None
            vectors[at] = old[reuse[at]]
        vectors.flush()
        return vectors, len(reused)

    def _embed(self, rows: _Rows, at: np.ndarray) -> np.ndarray:
        return self.embed_chunks(self.embedder, rows.texts_of(at.tolist()),
                                 batch_size=self.settings.batch_size, progress=self.settings.progress)

    def _index_kind(self, n: int) -> str:
        if self.settings.index_type == "auto":
            if n >= self.settings.ivf_threshold:
                return "ivf"
            return "hnsw" if n >= self.settings.ann_threshold else "exact"
        return self.settings.index_type

    def _dense(self, build: Path, generation: str, vectors: np.ndarray, kind: str,
               previous: PreviousBuild | None) -> tuple[Any, dict[str, Any] | None]:
        """The FAISS index, and for ivf its manifest record. An ivf build reuses the previous
        generation's trained quantiser when its vectors are reused (same model and chunking)."""
        if kind != "ivf":
            return build_dense(vectors, kind), None
        prior, why = None, "first build"
        if previous is not None and not previous.reuse:
            why = "the previous generation's vectors were not reused (--full, or another model or chunking)"
        elif previous is not None and previous.manifest.ivf is None:
            why = f"the previous generation was {previous.manifest.index_kind}"
        elif previous is not None:
            prior = self.settings.index_dir / previous.manifest.generation
        index, info = build_ivf(build, vectors, generation, prior, previous.manifest.ivf if previous else None,
                                reason=why)
        return index, info.to_json()


class _Rows:
    """The chunk rows of a build, kept as offsets into their articles and the row each reuses (28
    bytes a chunk) rather than as texts (about 2 KB a chunk, twice: chunk and embedding text).
    The articles' texts are read back from the build's store when needed; an embedding text is
    its article's prefix (its title and a newline, as ``Chunker.embedding_text`` writes it), kept
    here, and the chunk."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.prefixes: list[str] = []  # one an article, in the order they were added
        self._article = array("i")
        self._start = array("q")
        self._end = array("q")
        self._reuse = array("q")

    def __len__(self) -> int:
        return len(self._article)

    @property
    def articles(self) -> int:
        return len(self.prefixes)

    def add(self, chunk: Chunk, reuse: int) -> None:
        """``chunk`` of the article being chunked; ``reuse``: the previous generation's row with
        its vector (-1: none)."""
        self._article.append(len(self.prefixes))
        self._start.append(chunk.start)
        self._end.append(chunk.end)
        self._reuse.append(reuse)

    def next_article(self, prefix: str) -> None:
        """The article being chunked is done; ``prefix`` starts its chunks' embedding texts."""
        self.prefixes.append(prefix)

    def reuse_rows(self) -> np.ndarray:
        """Per row, the previous generation's row whose vector it reuses, or -1."""
        return np.frombuffer(self._reuse, dtype=np.int64) if len(self) else np.empty(0, dtype=np.int64)

    def texts_of(self, rows: Sequence[int]) -> list[str]:
        """The embedding texts of ``rows``, their articles read back from the store."""
        texts = self.store.article_texts(sorted({self._article[r] for r in rows}))
        return [self._text(r, texts[self._article[r]]) for r in rows]

    def texts(self) -> Iterator[str]:
        """Every row's embedding text, in row order, reading the articles back one at a time."""
        articles = self.store.texts_in_order()
        at, text = -1, ""
        for row in range(len(self)):
            while at < self._article[row]:
                at, text = at + 1, next(articles)
            yield self._text(row, text)

    def _text(self, row: int, article_text: str) -> str:
        return self.prefixes[self._article[row]] + article_text[self._start[row]:self._end[row]]


def _prefix(text: str, chunk: Chunk) -> str:
    """What ``Chunker.embedding_text`` put before ``chunk`` in ``text``."""
    if not text.endswith(chunk.text):  # pragma: no cover - how Chunker.embedding_text is made
        raise ValueError(f"the embedding text of {chunk.id} does not end with the chunk")
    return text[:len(text) - len(chunk.text)]


def _started(stream: Iterator[Article]) -> Iterator[Article] | None:
    """``stream`` with its first article read, so that an empty one is known before a build
    starts; None when it has none."""
    first = next(stream, None)
    return None if first is None else _after(first, stream)


def _after(first: Article, rest: Iterator[Article]) -> Iterator[Article]:
    yield first
    del first  # not held while the rest is read (itertools.chain would hold it to the end)
    yield from rest


def _vector_file(path: Path, rows: int, dim: int) -> np.memmap:
    """``path`` made a ``rows`` x ``dim`` float32 ``.npy`` file and mapped for writing. Its blocks
    are allocated before anything is written, so that a full disk is an OSError (ENOSPC) here
    rather than a SIGBUS at a write into the map."""
    vectors = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(rows, dim))
    if not hasattr(os, "posix_fallocate"):  # macOS and Windows: a full disk shows at the write
        return vectors
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, os.fstat(fd).st_size)
    except OSError as exc:
        if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL):  # a filesystem without it
            raise
    finally:
        os.close(fd)
    return vectors


class _Diff:
    """Counts added/updated/removed/unchanged against the previous generation's articles
    (``Store.article_hashes``) as the new ones come.

    An article whose id changed but which comes from the same place (a text file whose
    content-derived id moved with an edit) counts as updated, not as one removal plus one addition.
    """

    def __init__(self, old: dict[str, tuple[str, str]]) -> None:
        self.old = old
        self.seen: set[str] = set()  # the ids of old articles met again
        self.fresh: list[str] = []  # origins of the articles not in ``old`` (kept only when it has any)
        self.added = self.updated = self.unchanged = 0

    def add(self, article: Article, digest: str) -> None:
        known = self.old.get(article.id)
        if known is not None:
            self.seen.add(article.id)
            self.unchanged += known[0] == digest
            self.updated += known[0] != digest
        elif self.old:  # only then can it be an edited file's new id
            self.fresh.append(article.origin)
        else:
            self.added += 1

    def counts(self) -> dict[str, int]:
        gone = [origin for aid, (_, origin) in self.old.items() if aid not in self.seen]
        removed_origins = set(gone)
        replaced: set[str] = set()
        added, updated = self.added, self.updated
        for origin in self.fresh:
            if origin in removed_origins and origin not in replaced:
                updated += 1
                replaced.add(origin)
            else:
                added += 1
        removed = sum(1 for origin in gone if origin not in replaced)
        return {"added": added, "updated": updated, "removed": removed, "unchanged": self.unchanged}


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


def _recorded(index_dir: Path) -> Manifest | None:
    """The current manifest, or None when there is none that this version can read."""
    try:
        return read_manifest(index_dir)
    except IndexProblem:
        return None


def _discard(index_dir: Path, path: Path) -> int:
    """Remove what a failed build left at ``path``, unless the manifest already names it (the
    failure came after the swap); return how many bytes it held."""
    size = folder_bytes(path)
    recorded = _recorded(index_dir)
    if recorded is None or recorded.generation != path.name:
        shutil.rmtree(path, ignore_errors=True)
    return size


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
