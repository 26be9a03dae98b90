"""The index manifest: which generation folder is current, and what built it.

``index/manifest.json`` holds, as sorted, indented JSON::

    {"format_version": 1, "generation": "gen-...",
     "model": {"name": "...", "dimension": 384, "backend": "torch"},
     "chunking": {"max_tokens": 200, ...},
     "index": {"kind": "exact", "ann_threshold": 200000, "ivf_threshold": 1000000,
               "keyword_shard_rows": 1000000},
     "counts": {"articles": 6, "chunks": 9}, "sources": ["/news"],
     "built_at": "2024-01-05T10:00:00+00:00", "build_seconds": 1.2}

An ``ivf`` index also records how its quantiser was trained, under ``index.ivf``
(``rag.index.ivf.IvfInfo``: nlist, code, the rows it was sized for, the generation that trained
it and why). Readers check the format version first, so a manifest from a later rag is refused
before its other fields are trusted. Adding the ``ivf`` kind kept version 1: the fields it adds are
optional, and a manifest without them (every one written before) reads as before. So is
``index.keyword_shard_rows``, the most chunks one keyword shard holds (``rag.index.keyword``): a
manifest without it names a keyword index of one piece, which is what every build before it wrote.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.errors import IndexCorrupt, IndexMismatch, IndexNotBuilt

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
# Manifests written before embedding backends were recorded hold torch vectors: torch was all there was.
LEGACY_BACKEND = "torch"


@dataclass(frozen=True)
class Manifest:
    """What one build recorded about itself; ``to_json``/``from_json`` give the file's exact shape.

    >>> m = Manifest(model="all-MiniLM-L6-v2", dimension=384, model_backend=None, chunking={},
    ...              index_kind="exact", ann_threshold=200_000, articles=6, chunks=9, sources=("news",),
    ...              built_at="2024-01-05T10:00:00+00:00", build_seconds=1.2, generation="gen-1")
    >>> m.backend, Manifest.from_json(m.to_json()) == m
    ('torch', True)
    """

    model: str
    dimension: int
    # As recorded: None in a manifest from before backends were recorded (``backend`` resolves it).
    model_backend: str | None
    # Kept as the dict the chunker records, and compared whole: any difference, even a key a later
    # version adds, means the old vectors were cut differently and are not reused.
    chunking: dict[str, Any]
    index_kind: str
    ann_threshold: int
    articles: int
    chunks: int
    sources: tuple[str, ...]
    built_at: str
    build_seconds: float
    generation: str
    # None in a manifest from before the ivf kind existed.
    ivf_threshold: int | None = None
    # ``IvfInfo.to_json()`` of an ivf index; None for the other kinds.
    ivf: dict[str, Any] | None = None
    # The shard size of the keyword index; None in a manifest from before keyword shards (one piece).
    keyword_shard_rows: int | None = None
    format_version: int = FORMAT_VERSION

    @property
    def backend(self) -> str:
        """The embedding backend the vectors came from."""
        return self.model_backend if self.model_backend is not None else LEGACY_BACKEND

    def build_choices(self) -> dict[str, int | None]:
        """What this index was built with, named as ``Settings``'s build choices (None where an
        older manifest does not say), for ``Settings.for_build``."""
        chunking = self.chunking
        return {"chunk_tokens": chunking.get("max_tokens"), "overlap_sentences": chunking.get("overlap_sentences"),
                "ann_threshold": self.ann_threshold, "ivf_threshold": self.ivf_threshold,
                "keyword_shard_rows": self.keyword_shard_rows}

    def to_json(self) -> dict[str, Any]:
        """The manifest as ``manifest.json`` holds it."""
        model: dict[str, Any] = {"name": self.model, "dimension": self.dimension}
        if self.model_backend is not None:
            model["backend"] = self.model_backend
        index: dict[str, Any] = {"kind": self.index_kind, "ann_threshold": self.ann_threshold}
        if self.ivf_threshold is not None:
            index["ivf_threshold"] = self.ivf_threshold
        if self.ivf is not None:
            index["ivf"] = dict(self.ivf)
        if self.keyword_shard_rows is not None:
            index["keyword_shard_rows"] = self.keyword_shard_rows
        return {
            "format_version": self.format_version,
            "model": model,
            "chunking": dict(self.chunking),
            "index": index,
            "counts": {"articles": self.articles, "chunks": self.chunks},
            "sources": list(self.sources),
            "built_at": self.built_at,
            "build_seconds": self.build_seconds,
            "generation": self.generation,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        """The manifest ``to_json`` wrote; KeyError, TypeError or ValueError when a field is missing
        or of the wrong kind."""
        model, index, counts = data["model"], data["index"], data["counts"]
        backend = model.get("backend")
        ivf_threshold, ivf = index.get("ivf_threshold"), index.get("ivf")
        shard_rows = index.get("keyword_shard_rows")
        return cls(
            model=str(model["name"]),
            dimension=int(model["dimension"]),
            model_backend=None if backend is None else str(backend),
            chunking=dict(data["chunking"]),
            index_kind=str(index["kind"]),
            ann_threshold=int(index["ann_threshold"]),
            articles=int(counts["articles"]),
            chunks=int(counts["chunks"]),
            sources=tuple(str(s) for s in data["sources"]),
            built_at=str(data["built_at"]),
            build_seconds=float(data["build_seconds"]),
            generation=str(data["generation"]),
            ivf_threshold=None if ivf_threshold is None else int(ivf_threshold),
            ivf=None if ivf is None else dict(ivf),
            keyword_shard_rows=None if shard_rows is None else int(shard_rows),
            format_version=int(data["format_version"]),
        )


def reindex_hint(index_dir: Path) -> str:
    """How to build the index in ``index_dir``, for error messages.

    >>> reindex_hint(Path("index"))
    "run 'rag reindex <folder> --index index'"
    """
    return f"run 'rag reindex <folder> --index {index_dir}'"


def read_manifest(index_dir: Path) -> Manifest:
    """The manifest of ``index_dir``; IndexNotBuilt when there is none, IndexMismatch for another
    format version, IndexCorrupt when it cannot be read."""
    path = index_dir / MANIFEST
    if not path.exists():
        raise IndexNotBuilt(f"no index in {index_dir}: {reindex_hint(index_dir)} first")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        version = data["format_version"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise IndexCorrupt(
            f"index manifest {path} is unreadable ({exc}): rebuild it with "
            f"'rag reindex <folder> --full --index {index_dir}'"
        ) from None
    if version != FORMAT_VERSION:
        raise IndexMismatch(
            f"index in {index_dir} has format version {version}, this version of rag reads "
            f"{FORMAT_VERSION}: rebuild it with 'rag reindex --full --index {index_dir}'"
        )
    try:
        return Manifest.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise IndexCorrupt(
            f"index in {index_dir} is damaged ({type(exc).__name__}: {exc}): "
            f"rebuild it with 'rag reindex --full --index {index_dir}'"
        ) from None


def write_manifest(index_dir: Path, manifest: Manifest) -> None:
    """Replace the manifest atomically: readers see the old one or the new one, never half."""
    tmp = index_dir / f".{MANIFEST}.tmp-{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(manifest.to_json(), fh, indent=2, sort_keys=True)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, index_dir / MANIFEST)
    dir_fd = os.open(index_dir, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)
