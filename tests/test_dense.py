"""FAISS dense search: exact and HNSW agree, filters are honoured, threads are left as found."""

from __future__ import annotations

import faiss
import numpy as np

from rag.index.dense import DenseSearcher, build_dense


def _vectors(n: int, dim: int = 32, seed: int = 0) -> np.ndarray:
    v = np.random.default_rng(seed).standard_normal((n, dim)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_a_selective_filter_on_hnsw_gives_the_exact_top_k():
    vectors = _vectors(3000)
    exact = DenseSearcher(build_dense(vectors, "exact"), vectors, "exact")
    hnsw = DenseSearcher(build_dense(vectors, "hnsw"), vectors, "hnsw")
    allowed = np.zeros(len(vectors), dtype=bool)
    allowed[::10] = True  # 10% of the rows, as a date range would keep
    for query in _vectors(20, seed=1):
        rows, scores = hnsw.search(query, 10, allowed)
        want_rows, want_scores = exact.search(query, 10, allowed)
        assert rows.tolist() == want_rows.tolist()
        assert np.allclose(scores, want_scores, atol=1e-5)
        assert allowed[rows].all()


def test_unfiltered_hnsw_finds_the_true_neighbours():
    vectors = _vectors(3000)
    exact = DenseSearcher(build_dense(vectors, "exact"), vectors, "exact")
    hnsw = DenseSearcher(build_dense(vectors, "hnsw"), vectors, "hnsw")
    queries = _vectors(50, seed=2)
    recall = np.mean([len(set(hnsw.search(q, 10)[0]) & set(exact.search(q, 10)[0])) / 10 for q in queries])
    assert recall >= 0.95


def test_a_search_leaves_the_callers_faiss_threads_as_they_were():
    vectors = _vectors(500)
    searcher = DenseSearcher(build_dense(vectors, "exact"), vectors, "exact")
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        searcher.search(vectors[0], 5)
        assert faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads(before)
