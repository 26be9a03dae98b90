"""The compressed (ivf) dense index: near-exact top 10, filters, training once, and the manifest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import faiss
import numpy as np
import pytest

from rag import Pipeline, Settings
from rag.index import ivf
from rag.index.dense import DenseSearcher, build_dense

DIM = 32


def _clustered(n: int, seed: int, clusters: range = range(40)) -> np.ndarray:
    """Unit vectors around some of 40 fixed centres, as sentence embeddings cluster by topic."""
    centres = np.random.default_rng(99).standard_normal((40, DIM)).astype(np.float32)
    rng = np.random.default_rng(seed)
    x = centres[rng.choice(np.asarray(clusters), n)] + 0.6 * rng.standard_normal((n, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def searchers() -> tuple[np.ndarray, DenseSearcher, DenseSearcher]:
    vectors = _clustered(4000, seed=1)
    return (vectors, DenseSearcher(build_dense(vectors, "exact"), vectors, "exact"),
            DenseSearcher(build_dense(vectors, "ivf"), vectors, "ivf"))


def _recall(got: DenseSearcher, want: DenseSearcher, queries: np.ndarray, allowed: np.ndarray | None = None) -> float:
    return float(np.mean([len(set(got.search(q, 10, allowed)[0]) & set(want.search(q, 10, allowed)[0])) / 10
                          for q in queries]))


def test_the_top_10_matches_exact_search(searchers):
    vectors, exact, compressed = searchers
    assert _recall(compressed, exact, _clustered(100, seed=2)) >= 0.98


def test_candidates_are_rescored_on_the_float_vectors(searchers):
    vectors, exact, compressed = searchers
    query = _clustered(1, seed=3)[0]
    rows, scores = compressed.search(query, 5)
    assert np.allclose(scores, vectors[rows] @ query, atol=1e-6)
    assert list(scores) == sorted(scores, reverse=True)


def test_an_ivf_index_round_trips_through_save_and_load(searchers, tmp_path):
    vectors, _, compressed = searchers
    compressed.save(tmp_path / "dense.faiss")
    np.save(tmp_path / "vectors.npy", vectors)
    loaded = DenseSearcher.load(tmp_path / "dense.faiss", np.load(tmp_path / "vectors.npy", mmap_mode="r"), "ivf")
    for query in _clustered(10, seed=4):
        assert loaded.search(query, 10)[0].tolist() == compressed.search(query, 10)[0].tolist()


def test_a_selective_filter_gives_the_exact_top_k(searchers):
    vectors, exact, compressed = searchers
    allowed = np.zeros(len(vectors), dtype=bool)
    allowed[::10] = True
    for query in _clustered(20, seed=5):
        rows, scores = compressed.search(query, 10, allowed)
        want_rows, want_scores = exact.search(query, 10, allowed)
        assert rows.tolist() == want_rows.tolist()
        assert np.allclose(scores, want_scores, atol=1e-5)


def test_a_broad_filter_is_searched_in_the_lists_and_keeps_to_the_allowed_rows(searchers):
    vectors, exact, shared = searchers
    compressed = DenseSearcher(shared.index, vectors, "ivf")
    compressed.exact_filtered_rows = 0  # as if the index were large: the IDSelector path
    allowed = np.random.default_rng(6).random(len(vectors)) < 0.5
    queries = _clustered(50, seed=7)
    for query in queries:
        assert allowed[compressed.search(query, 10, allowed)[0]].all()
    assert _recall(compressed, exact, queries, allowed) >= 0.98


def test_a_filter_with_fewer_rows_than_k_returns_them_all(searchers):
    vectors, _, compressed = searchers
    allowed = np.zeros(len(vectors), dtype=bool)
    allowed[[3, 77, 3000]] = True
    assert sorted(compressed.search(vectors[77], 10, allowed)[0].tolist()) == [3, 77, 3000]


def test_an_incremental_build_adds_to_the_previous_trained_index(tmp_path):
    first, second = tmp_path / "gen-1", tmp_path / "gen-2"
    first.mkdir(), second.mkdir()
    old = _clustered(3000, seed=8)
    index, info = ivf.build_ivf(first, old, "gen-1")
    assert (info.trained_in, info.reason, index.ntotal) == ("gen-1", "first build", 3000)
    more = np.concatenate([old, _clustered(1000, seed=9)])
    index, again = ivf.build_ivf(second, more, "gen-2", first, info.to_json())
    assert again == info  # the same training record: nothing was trained
    assert index.ntotal == 4000
    assert (second / ivf.TRAINED).read_bytes() == (first / ivf.TRAINED).read_bytes()


def test_vectors_that_drifted_from_the_training_sample_are_trained_again(tmp_path):
    first, second = tmp_path / "gen-1", tmp_path / "gen-2"
    first.mkdir(), second.mkdir()
    _, info = ivf.build_ivf(first, _clustered(3000, seed=10, clusters=range(0, 10)), "gen-1")
    drifted = _clustered(3000, seed=11, clusters=range(20, 40))
    _, again = ivf.build_ivf(second, drifted, "gen-2", first, info.to_json())
    assert again.trained_in == "gen-2"
    assert again.reason.startswith("the vectors drifted from the training sample (mean cosine to the nearest centroid ")


def test_an_index_that_grew_past_its_lists_is_trained_again():
    info = ivf.IvfInfo(nlist=64, code="PQ32x8", sized_for=5000, trained_rows=5000, trained_in="gen-1",
                       fit=0.7, reason="first build")
    assert ivf.retrain_reason(info, 0.7, 19_999) is None
    assert ivf.retrain_reason(info, 0.7, 20_000) == "the index grew from 5000 rows at training to 20000"


def test_an_unreadable_trained_index_is_replaced(tmp_path):
    first, second = tmp_path / "gen-1", tmp_path / "gen-2"
    first.mkdir(), second.mkdir()
    vectors = _clustered(2000, seed=12)
    _, info = ivf.build_ivf(first, vectors, "gen-1")
    (first / ivf.TRAINED).write_bytes(b"not faiss")
    index, again = ivf.build_ivf(second, vectors, "gen-2", first, info.to_json())
    assert (again.trained_in, index.ntotal) == ("gen-2", 2000)
    assert again.reason.startswith("the previous trained index could not be read (RuntimeError: ")


def test_size_chooses_the_index_type(tmp_path):
    from rag.index.build import Indexer

    settings = Settings(index_dir=tmp_path, ann_threshold=100, ivf_threshold=1000)
    indexer = Indexer(settings, embedder=None, chunker=None)  # type: ignore[arg-type]
    assert [indexer._index_kind(n) for n in (99, 100, 999, 1000)] == ["exact", "hnsw", "hnsw", "ivf"]


def _manifest(index_dir: Path) -> dict:
    return json.loads((index_dir / "manifest.json").read_text())


def test_an_ivf_reindex_records_its_training_and_reuses_it(tmp_path, corpus, embedder):
    pipeline = Pipeline(Settings(index_dir=tmp_path / "index", index_type="ivf"), embedder=embedder)
    summary = pipeline.reindex([corpus])
    manifest = _manifest(tmp_path / "index")
    first = manifest["generation"]
    assert summary.index_kind == "ivf"
    assert manifest["index"] == {
        "kind": "ivf", "ann_threshold": 200_000, "ivf_threshold": 1_000_000, "keyword_shard_rows": 1_000_000,
        "ivf": {"nlist": 1, "code": f"PQ96x{int(np.log2(summary.chunks))}", "sized_for": summary.chunks,
                "trained_rows": summary.chunks, "trained_in": first, "fit": manifest["index"]["ivf"]["fit"],
                "reason": "first build"},
    }
    assert sorted(p.name for p in (tmp_path / "index" / first).iterdir()) == [
        "bm25", "dense.faiss", "ivf.trained.faiss", "store.sqlite", "vectors.npy"]
    hit = pipeline.search("Which city is the most expensive for expatriates?", k=1, mode="dense")[0]
    assert hit.article.id == "reuters-2022-06-08-eca"
    hits = pipeline.search("North Korea artillery shells", k=3, mode="dense", source="bbc.co.uk")
    assert {h.article.source for h in hits} == {"bbc.co.uk"}

    (corpus / "extra.txt").write_text(
        "Harbour strike ends\n\nDock workers in Rotterdam ended a three-day strike on Friday after a pay deal.\n")
    again = pipeline.reindex()
    manifest = _manifest(tmp_path / "index")
    assert (again.embedded, manifest["index"]["ivf"]["trained_in"]) == (1, first)
    assert pipeline.search("Rotterdam dock strike", k=1, mode="dense")[0].article.title == "Harbour strike ends"


def test_a_full_reindex_trains_again(tmp_path, corpus, embedder):
    pipeline = Pipeline(Settings(index_dir=tmp_path / "index", index_type="ivf"), embedder=embedder)
    pipeline.reindex([corpus])
    pipeline.reindex(full=True)
    manifest = _manifest(tmp_path / "index")
    assert manifest["index"]["ivf"]["trained_in"] == manifest["generation"]
    assert manifest["index"]["ivf"]["reason"] == (
        "the previous generation's vectors were not reused (--full, or another model or chunking)")


@pytest.mark.slow
def test_rag_reindex_index_type_ivf_end_to_end(tmp_path, corpus):
    index = tmp_path / "index"
    done = subprocess.run([sys.executable, "-m", "api.cli", "reindex", str(corpus), "--index", str(index),
                           "--index-type", "ivf", "--quiet"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"indexed 6 articles into {index}: 6 added, ")
    assert ", ivf index) in " in done.stdout
    assert _manifest(index)["index"]["kind"] == "ivf"
    found = subprocess.run([sys.executable, "-m", "api.cli", "search", "baby formula plant", "--mode", "dense",
                            "--since", "2022-06-01", "--k", "1", "--json", "--index", str(index)],
                           capture_output=True, text=True, timeout=300)
    assert found.returncode == 0, found.stderr
    assert [h["article_id"] for h in json.loads(found.stdout)] == ["cnn-2022-06-05-abbott"]


def test_faiss_threads_are_left_as_found(searchers):
    vectors, _, compressed = searchers
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(2)
    try:
        compressed.search(vectors[0], 5)
        assert faiss.omp_get_max_threads() == 2
    finally:
        faiss.omp_set_num_threads(before)
