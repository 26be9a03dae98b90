"""The on-disk index: a manifest that names one complete generation folder.

Layout of ``index/``::

    manifest.json          format version, model, dimension, chunking, counts, sources, generation
    gen-<time>-<id>/       one complete build
        store.sqlite       articles, chunks (offsets), quotes
        vectors.npy        float32 embeddings, one row per chunk
        dense.faiss        FAISS index over those rows
        ivf.trained.faiss  (ivf only) the trained, empty index the next reindex adds to
        bm25/              bm25s keyword index over the same rows (in shard-NNNN/ folders
                           when it has more than the manifest's keyword_shard_rows)

A reindex writes a new generation beside the old one and then replaces ``manifest.json``
atomically (write, fsync, rename). Until that rename the old manifest names the old, untouched
generation, so killing a reindex at any point leaves the previous index loadable.

A process that serves the index keeps the generation it loaded open while calls use it: the
pipeline leases it per call (``acquire``/``release``) and ``retire``s it once a reindex replaces
it, and the last lease to end closes its files.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.errors import IndexCorrupt, IndexMismatch, IndexProblem
from rag.index.dense import DenseSearcher
from rag.index.keyword import KeywordSearcher, shard_ranges
from rag.index.manifest import Manifest, read_manifest
from rag.index.store import Store
from rag.text.dates import day_number


@dataclass
class LoadedIndex:
    """One generation, opened for searching. Filter columns are held in memory per chunk row."""

    index_dir: Path
    manifest: Manifest
    store: Store
    vectors: np.ndarray
    dense: DenseSearcher
    keyword: KeywordSearcher
    days: np.ndarray  # int32 days since epoch per chunk row, -1 when the article has no date
    source_codes: np.ndarray  # int32 index into ``source_names`` per chunk row, -1 when unknown
    source_names: list[str]
    _users: int = field(default=0, init=False, repr=False)
    _retired: bool = field(default=False, init=False, repr=False)
    _closed: bool = field(default=False, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    @property
    def model(self) -> str:
        return self.manifest.model

    @property
    def size(self) -> int:
        return int(self.vectors.shape[0])

    @property
    def damage(self) -> IndexCorrupt | None:
        """What a read found broken in this generation's store since it was opened, if anything."""
        return self.store.damage

    @property
    def closed(self) -> bool:
        return self._closed

    def acquire(self) -> None:
        """One more call is using this generation: it stays open until the matching ``release``."""
        with self._lock:
            if self._closed:  # a caller bug: a retired generation is never handed out again
                raise RuntimeError(f"generation {self.manifest.generation} is already closed")
            self._users += 1

    def release(self) -> None:
        with self._lock:
            self._users -= 1
            last = self._retired and self._users == 0
        if last:
            self.close()

    def retire(self) -> None:
        """Nothing new will use this generation: close it now, or when its last user releases it."""
        with self._lock:
            self._retired = True
            idle = self._users == 0
        if idle:
            self.close()

    def close(self) -> None:
        """Close the store and let go of the memory-mapped vectors and keyword index, whose files
        close as soon as no array cut from them is left (searches copy what they read)."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self.store.close()
        self.vectors = self.dense.vectors = np.empty((0, self.manifest.dimension), dtype=self.vectors.dtype)
        self.keyword = KeywordSearcher([], [])


def load_index(index_dir: Path, expected_model: str | None = None) -> LoadedIndex:
    """Open the generation the manifest names, after checking the model it was built with."""
    manifest = read_manifest(index_dir)
    built_with = manifest.model
    if expected_model is not None and expected_model != built_with:
        raise IndexMismatch(
            f"index in {index_dir} was built with model {built_with!r}, not {expected_model!r}: "
            f"rebuild it with 'rag reindex --full --index {index_dir}', or search with the model "
            "it was built with"
        )
    gen = index_dir / manifest.generation
    hint = f"rebuild it with 'rag reindex --full --index {index_dir}'"
    try:
        vectors = np.load(gen / "vectors.npy", mmap_mode="r")
        dim = manifest.dimension
        if vectors.ndim != 2 or (len(vectors) and vectors.shape[1] != dim):
            raise IndexMismatch(
                f"index in {index_dir} holds {vectors.shape[-1]}-dimensional vectors but its "
                f"manifest says {dim}: {hint}"
            )
        store = Store(gen / "store.sqlite", readonly=True)
        try:
            # Every page of the store, so that damage anywhere (say, only in the quotes an answer
            # reads) stops the load rather than a later request. About a tenth of a load: 5, 40
            # and 115 ms on stores of 9, 67 and 187 MB (BBC, RealTime QA 2022, 2024; warm cache).
            store.check()
            dense = DenseSearcher.load(gen / "dense.faiss", vectors, manifest.index_kind)
            keyword = KeywordSearcher.load(
                gen / "bm25", ranges=shard_ranges(manifest.chunks, manifest.keyword_shard_rows))
            rows, days, codes, names = _filter_columns(store)
        except BaseException:
            store.close()
            raise
    except IndexProblem:
        raise
    except Exception as exc:  # numpy, faiss, sqlite and bm25s each raise their own types
        raise IndexCorrupt(f"index in {index_dir} is damaged ({type(exc).__name__}: {exc}): {hint}") from None
    if not (rows == len(vectors) == dense.index.ntotal):
        store.close()
        raise IndexCorrupt(
            f"index in {index_dir} is inconsistent ({rows} chunks, {len(vectors)} vectors, "
            f"{dense.index.ntotal} in FAISS): {hint}"
        )
    return LoadedIndex(index_dir, manifest, store, vectors, dense, keyword, days, codes, names)


def _filter_columns(store: Store) -> tuple[int, np.ndarray, np.ndarray, list[str]]:
    days: list[int] = []
    codes: list[int] = []
    names: dict[str, int] = {}
    for _row, published_at, source in store.chunk_metadata():
        days.append(day_number(published_at))
        if source:
            codes.append(names.setdefault(source.lower(), len(names)))
        else:
            codes.append(-1)
    return len(days), np.asarray(days, dtype=np.int32), np.asarray(codes, dtype=np.int32), list(names)
