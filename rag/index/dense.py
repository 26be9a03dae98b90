"""Dense retrieval in FAISS over L2-normalised vectors (inner product = cosine).

Exact search (``IndexFlatIP``) by default; HNSW when the index is large or when asked. Filters
are pushed into FAISS with an ``IDSelectorBitmap`` so a filtered search still finds k matches;
HNSW loses recall under a selective filter (0.80 at recall@10 when a date range keeps 12% of 100k
rows, BENCHMARKS.md), so a filter that keeps few rows is scored exactly instead, which is cheap
precisely because the filter is selective.

One query is searched on the calling thread alone: FAISS's OpenMP threads only spin against each
other for a single query on a small shared machine (48 ms instead of 9 ms for an exact scan of
100k rows, BENCHMARKS.md). ``omp_set_num_threads`` is per thread, so a reindex building HNSW in
another thread keeps its threads.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import faiss
import numpy as np

IndexKind = Literal["exact", "hnsw"]

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
# 128 gave recall@10 0.939 at 1M clustered vectors, 256 gives 0.969 for +0.3 ms (BENCHMARKS.md).
HNSW_EF_SEARCH = 256
# A filter that keeps at most this many rows is scored exactly rather than through HNSW.
EXACT_FILTERED_ROWS = 50_000


def build_dense(vectors: np.ndarray, kind: IndexKind) -> faiss.Index:
    """A FAISS index over ``vectors`` (rows must be L2-normalised)."""
    dim = vectors.shape[1]
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        index.hnsw.efSearch = HNSW_EF_SEARCH
    else:
        index = faiss.IndexFlatIP(dim)
    if len(vectors):
        index.add(np.ascontiguousarray(vectors, dtype=np.float32))
    return index


class DenseSearcher:
    """Searches one FAISS index; ``vectors`` are the same rows, used for exact fallbacks."""

    def __init__(self, index: faiss.Index, vectors: np.ndarray, kind: IndexKind) -> None:
        self.index = index
        self.vectors = vectors
        self.kind = kind

    @classmethod
    def load(cls, path: Path, vectors: np.ndarray, kind: IndexKind) -> "DenseSearcher":
        return cls(faiss.read_index(str(path)), vectors, kind)

    def save(self, path: Path) -> None:
        faiss.write_index(self.index, str(path))

    def search(self, query: np.ndarray, k: int, allowed: np.ndarray | None = None,
               ef_search: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """Top ``k`` rows and scores, best first, among rows where ``allowed`` is true."""
        n = self.index.ntotal
        allowed_n = n if allowed is None else int(allowed.sum())
        k = min(k, allowed_n)
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        q = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        if self.kind == "hnsw" and allowed is not None and allowed_n <= EXACT_FILTERED_ROWS:
            return self._exact_subset(q[0], k, np.flatnonzero(allowed))
        params = None
        bits = None
        if allowed is not None:
            bits = np.packbits(allowed, bitorder="little")
            selector = faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits))
            params = (faiss.SearchParametersHNSW(sel=selector, efSearch=max(ef_search or HNSW_EF_SEARCH, k))
                      if self.kind == "hnsw" else faiss.SearchParameters(sel=selector))
        elif self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(efSearch=max(ef_search or HNSW_EF_SEARCH, k))
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            scores, rows = self.index.search(q, k, params=params)
        finally:
            faiss.omp_set_num_threads(threads)
        keep = rows[0] >= 0
        rows, scores = rows[0][keep], scores[0][keep]
        if allowed is not None and len(rows) < k:
            return self._exact_subset(q[0], k, np.flatnonzero(allowed))
        return rows, scores

    def _exact_subset(self, q: np.ndarray, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = self.vectors[rows] @ q
        top = np.argsort(-scores, kind="stable")[:k]
        return rows[top].astype(np.int64), scores[top].astype(np.float32)
