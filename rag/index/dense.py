"""Dense retrieval in FAISS over L2-normalised vectors (inner product = cosine).

Exact search (``IndexFlatIP``) by default; HNSW when the index is large or when asked, and IVF
with product-quantised codes (:mod:`rag.index.ivf`) when it is larger still, its top candidates
re-scored on the float vectors. Filters are pushed into FAISS with an ``IDSelectorBitmap`` so a
filtered search still finds k matches; HNSW loses recall under a selective filter (0.80 at
recall@10 when a date range keeps 12% of 100k rows, BENCHMARKS.md), and IVF would probe lists with
few allowed rows, so for either a filter that keeps few rows is scored exactly instead, which is
cheap precisely because the filter is selective.

One query is searched on the calling thread alone: FAISS's OpenMP threads only spin against each
other for a single query on a small shared machine (48 ms instead of 9 ms for an exact scan of
100k rows, BENCHMARKS.md). ``omp_set_num_threads`` is per thread, so a reindex building HNSW in
another thread keeps its threads.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal

import faiss
import numpy as np

from rag.index import ivf

IndexKind = Literal["exact", "hnsw", "ivf"]

HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
# 128 gave recall@10 0.939 at 1M clustered vectors, 256 gives 0.969 for +0.3 ms (BENCHMARKS.md).
HNSW_EF_SEARCH = 256
# A filter that keeps at most this many rows is scored exactly rather than through HNSW or IVF.
EXACT_FILTERED_ROWS = 50_000


def build_dense(vectors: np.ndarray, kind: IndexKind) -> faiss.Index:
    """A FAISS index over ``vectors`` (rows must be L2-normalised). An ``ivf`` one is trained on
    them here; a reindex reuses a trained one instead (``ivf.build_ivf``)."""
    dim = vectors.shape[1]
    if kind == "ivf":
        return ivf.fill(ivf.train(vectors, generation="").index, vectors)
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
    """Searches one FAISS index; ``vectors`` are the same rows, used for exact fallbacks and to
    re-score an ivf index's candidates. A filter that keeps at most ``exact_filtered_rows`` rows
    is scored exactly on an approximate index."""

    exact_filtered_rows = EXACT_FILTERED_ROWS

    def __init__(self, index: faiss.Index, vectors: np.ndarray, kind: IndexKind) -> None:
        self.index = index
        self.vectors = vectors
        self.kind = kind
        self._nlist = faiss.extract_index_ivf(index).nlist if kind == "ivf" else 0
        self._nprobe = min(ivf.NPROBE, self._nlist)
        if kind == "ivf":
            self.exact_filtered_rows = ivf.EXACT_FILTERED_ROWS

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
        if self.kind != "exact" and allowed is not None and allowed_n <= self.exact_filtered_rows:
            return self._exact_subset(q[0], k, np.flatnonzero(allowed))
        # IVF's codes only shortlist: the top ``depth`` are re-scored on the float vectors below.
        fetch = min(ivf.depth(k), n) if self.kind == "ivf" else k
        bits = None if allowed is None else np.packbits(allowed, bitorder="little")
        selector = None if bits is None else faiss.IDSelectorBitmap(n, faiss.swig_ptr(bits))
        if self.kind == "hnsw":
            params = faiss.SearchParametersHNSW(sel=selector, efSearch=max(ef_search or HNSW_EF_SEARCH, k))
        elif self.kind == "ivf":
            # A filter leaves fewer allowed rows per list: probe proportionally more lists, so about
            # as many allowed rows are scored as unfiltered (0.81 -> 0.96 recall@10 at 2%, BENCHMARKS.md).
            nprobe = min(self._nlist, math.ceil(self._nprobe * n / allowed_n))
            params = faiss.SearchParametersIVF(sel=selector, nprobe=nprobe)
        else:
            params = None if selector is None else faiss.SearchParameters(sel=selector)
        threads = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            scores, rows = self.index.search(q, fetch, params=params)
        finally:
            faiss.omp_set_num_threads(threads)
        keep = rows[0] >= 0
        rows, scores = rows[0][keep], scores[0][keep]
        if allowed is not None and len(rows) < k:
            return self._exact_subset(q[0], k, np.flatnonzero(allowed))
        if self.kind == "ivf":
            return self._exact_subset(q[0], k, np.sort(rows))
        return rows, scores

    def _exact_subset(self, q: np.ndarray, k: int, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        scores = self.vectors[rows] @ q
        top = np.argsort(-scores, kind="stable")[:k]
        return rows[top].astype(np.int64), scores[top].astype(np.float32)
