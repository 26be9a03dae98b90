"""Embedding backends: torch, ONNX and int8 ONNX give the same kind of vectors, from a cache the
project owns, and an index never mixes vectors that differ."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from rag import BadSetting, IndexMismatch, Pipeline, Settings
from api.cli import main
from rag.embed import (DEFAULT_MODEL, SentenceTransformerEmbedder, export_onnx, interchangeable,
                       onnx_cache_folder, resolve_model_path)

from conftest import write_corpus

# Exports and quantises ONNX models (once per cache), and runs each backend.
pytestmark = pytest.mark.slow

NEWS = [
    "North Korea has sent more than a million artillery shells to Russia for its war in Ukraine.",
    "The Federal Reserve raised its benchmark interest rate by three-quarters of a point on Wednesday.",
    "Abbott has restarted production at its Sturgis, Michigan, baby formula plant.",
    "Hong Kong has been ranked the world's most expensive city for expatriates for the third year in a row.",
    "The town council voted 7-2 on Tuesday night to build protected cycle lanes along Main Street.",
    "What did Blinken say about China?",
    "Fed rate hike",
]
# Measured on these sentences: onnx 0.99999+ everywhere; int8 0.98 to 0.995 (0.993 mean over
# 2,000 news chunks, see BENCHMARKS.md).
ONNX_MIN_COSINE = 0.9999
INT8_MIN_COSINE = 0.97
INT8_MEAN_COSINE = 0.985


def _files(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in sorted(folder.iterdir())}


@pytest.fixture(scope="session")
def onnx_cache(tmp_path_factory) -> Path:
    """A cache folder with both ONNX exports, made once per session."""
    package = Path(resolve_model_path(None))
    before = _files(package)
    cache = tmp_path_factory.mktemp("cache")
    export_onnx(None, "onnx-int8", cache)
    assert _files(package) == before  # nothing is ever written next to the packaged weights
    return cache


@pytest.fixture(scope="session")
def backends(embedder, onnx_cache) -> dict[str, SentenceTransformerEmbedder]:
    return {"torch": embedder,
            "onnx": SentenceTransformerEmbedder(backend="onnx", cache_dir=onnx_cache),
            "onnx-int8": SentenceTransformerEmbedder(backend="onnx-int8", cache_dir=onnx_cache)}


@pytest.mark.parametrize("backend", ["torch", "onnx", "onnx-int8"])
def test_every_backend_gives_normalised_384_dimensional_vectors(backends, backend):
    model = backends[backend]
    vectors = model.embed_batch(NEWS)
    assert (model.name, model.backend, model.dimension, model.max_tokens) == (DEFAULT_MODEL, backend, 384, 256)
    assert vectors.shape == (len(NEWS), 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)


def test_onnx_vectors_equal_torch_and_int8_ones_are_close(backends):
    reference = backends["torch"].embed_batch(NEWS)
    onnx = (backends["onnx"].embed_batch(NEWS) * reference).sum(axis=1)
    int8 = (backends["onnx-int8"].embed_batch(NEWS) * reference).sum(axis=1)
    assert onnx.min() >= ONNX_MIN_COSINE, onnx
    assert int8.min() >= INT8_MIN_COSINE and int8.mean() >= INT8_MEAN_COSINE, int8


def test_batching_changes_onnx_vectors_not_at_all_and_int8_ones_a_little(backends):
    def alone_and_batched(model):
        return np.stack([model.embed_batch([text])[0] for text in NEWS]), model.embed_batch(NEWS)

    alone, batched = alone_and_batched(backends["onnx"])
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    # int8 activations are scaled per batch, so a text's vector depends a little on its batch.
    alone, batched = alone_and_batched(backends["onnx-int8"])
    assert (alone * batched).sum(axis=1).min() >= INT8_MIN_COSINE


@pytest.mark.slow
def test_an_export_leaves_the_processs_logging_as_it_found_it(tmp_path):
    """ONNX Runtime's quantiser logs through the root logger, which would otherwise get a stderr
    handler of its own, and every library's debug notes (bm25s's during a reindex) with it."""
    code = ("import logging, sys; from pathlib import Path; from rag.embed import export_onnx; "
            "export_onnx(None, 'onnx-int8', Path(sys.argv[1])); print(logging.getLogger().handlers)")
    done = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True,
                          timeout=300, check=False, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert (done.returncode, done.stdout) == (0, "[]\n"), done.stderr


def test_the_cache_is_reused_not_exported_again(onnx_cache, backends):
    folder = onnx_cache_folder(None, onnx_cache)
    assert folder == onnx_cache / "onnx" / "all-MiniLM-L6-v2"
    before = _files(folder)
    assert {"model.onnx", "model-int8.onnx", "export.json"} <= set(before)
    fresh = SentenceTransformerEmbedder(backend="onnx-int8", cache_dir=onnx_cache)
    np.testing.assert_allclose(fresh.embed_batch(NEWS[:2]), backends["onnx-int8"].embed_batch(NEWS[:2]), atol=1e-6)
    assert export_onnx(None, "onnx", onnx_cache) == folder / "model.onnx"
    assert _files(folder) == before


def test_a_half_written_cache_is_not_trusted(tmp_path, backends):
    folder = onnx_cache_folder(None, tmp_path)
    folder.mkdir(parents=True)
    # What a crash mid-export leaves: a truncated model, no export.json, a temporary file.
    (folder / "model.onnx").write_bytes(b"\x08\x07truncated")
    (folder / "model.onnx.tmp-123-abcdef").write_bytes(b"partial")
    model = SentenceTransformerEmbedder(backend="onnx", cache_dir=tmp_path)
    np.testing.assert_allclose(model.embed_batch(NEWS[:1]), backends["onnx"].embed_batch(NEWS[:1]), atol=1e-6)
    assert sorted(_files(folder)) == [".lock", "export.json", "model.onnx"]


def test_the_manifest_records_the_backend_and_search_uses_it(tmp_path, backends, onnx_cache):
    corpus = write_corpus(tmp_path / "news")
    settings = Settings(index_dir=tmp_path / "index", backend="onnx-int8", cache_dir=onnx_cache)
    Pipeline(settings, embedder=backends["onnx-int8"]).reindex([corpus])
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    assert manifest["model"] == {"name": DEFAULT_MODEL, "dimension": 384, "backend": "onnx-int8"}

    searcher = Pipeline(Settings(index_dir=tmp_path / "index", cache_dir=onnx_cache))
    hits = searcher.search("North Korea artillery shells for Russia", k=1)
    assert searcher.embedder.backend == "onnx-int8"  # type: ignore[attr-defined]
    assert hits[0].article.title == "North Korea sent Russia a million artillery shells, Seoul says"
    assert searcher.info().backend == "onnx-int8"


def test_searching_with_a_backend_whose_vectors_differ_is_refused(tmp_path, backends, onnx_cache):
    corpus = write_corpus(tmp_path / "news")
    index_dir = tmp_path / "index"
    Pipeline(Settings(index_dir=index_dir, backend="onnx-int8"), embedder=backends["onnx-int8"]).reindex([corpus])
    with pytest.raises(IndexMismatch) as err:
        Pipeline(Settings(index_dir=index_dir, backend="torch")).search("Fed rates")
    assert str(err.value) == (
        f"index in {index_dir} was built with the 'onnx-int8' embedding backend, whose vectors do not mix "
        f"with 'torch' ones: rebuild it with 'rag reindex --full --backend torch --index {index_dir}', "
        "or search with --backend onnx-int8 (or leave --backend unset)"
    )


def test_onnx_reuses_torch_vectors_but_int8_embeds_afresh(tmp_path, backends, onnx_cache):
    corpus = write_corpus(tmp_path / "news")
    index_dir = tmp_path / "index"

    def reindex(backend: str):
        settings = Settings(index_dir=index_dir, backend=backend, cache_dir=onnx_cache)  # type: ignore[arg-type]
        return Pipeline(settings, embedder=backends[backend]).reindex([corpus])

    first = reindex("torch")
    onnx = reindex("onnx")
    assert (onnx.embedded, onnx.reused) == (0, first.chunks)
    int8 = reindex("onnx-int8")
    assert (int8.embedded, int8.reused) == (first.chunks, 0)
    back = reindex("torch")
    assert (back.embedded, back.reused) == (first.chunks, 0)


def test_an_index_from_before_backends_counts_as_torch(tmp_path, embedder):
    corpus = write_corpus(tmp_path / "news")
    index_dir = tmp_path / "index"
    Pipeline(Settings(index_dir=index_dir), embedder=embedder).reindex([corpus])
    path = index_dir / "manifest.json"
    manifest = json.loads(path.read_text())
    del manifest["model"]["backend"]
    path.write_text(json.dumps(manifest))
    pipeline = Pipeline(Settings(index_dir=index_dir), embedder=embedder)
    assert pipeline.info().backend == "torch"
    summary = pipeline.reindex()
    assert (summary.embedded, summary.reused) == (0, summary.chunks)


def test_cli_reindex_backend_and_refused_search(tmp_path, onnx_cache, capsys):
    corpus = write_corpus(tmp_path / "news")
    index = str(tmp_path / "index")
    env = {**os.environ, "RAG_CACHE_DIR": str(onnx_cache)}
    done = subprocess.run([sys.executable, "-m", "api.cli", "reindex", str(corpus), "--index", index,
                           "--backend", "onnx-int8", "--quiet"], capture_output=True, text=True, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"indexed 6 articles into {index}: 6 added")
    assert json.loads(Path(index, "manifest.json").read_text())["model"]["backend"] == "onnx-int8"

    assert main(["search", "Fed rates", "--index", index, "--backend", "torch"]) == 1
    assert capsys.readouterr().err.startswith(
        f"error: index in {index} was built with the 'onnx-int8' embedding backend, whose vectors do not mix")


def test_a_bad_backend_is_named(monkeypatch, tmp_path, capsys):
    with pytest.raises(BadSetting) as err:
        Settings(backend="tensorflow")  # type: ignore[arg-type]
    assert str(err.value) == "embedding backend 'tensorflow' is not one of torch, onnx, onnx-int8"
    monkeypatch.setenv("RAG_BACKEND", "int8")
    assert main(["search", "q", "--index", str(tmp_path)]) == 1
    assert capsys.readouterr().err == "error: RAG_BACKEND='int8' is not one of torch, onnx, onnx-int8\n"


def test_only_float32_backends_share_an_index():
    assert interchangeable("torch", "onnx") and interchangeable("onnx", "torch")
    assert not interchangeable("torch", "onnx-int8") and not interchangeable("onnx", "onnx-int8")


# -- the answer-sentence scorer -------------------------------------------------------------
QUESTIONS = [("What did Blinken say about China?", "2023-11-20"),
             ("Why was the Abbott baby formula plant closed?", "2022-06-10"),
             ("Which city was ranked the world's most expensive?", "2022-06-10"),
             ("What is the capital of France?", "2023-11-20")]


def test_answers_are_scored_on_int8_and_match_float32_ones(tmp_path, embedder, onnx_cache):
    corpus = write_corpus(tmp_path / "news")
    index_dir = tmp_path / "index"
    pipeline = Pipeline(Settings(index_dir=index_dir, cache_dir=onnx_cache), embedder=embedder)
    pipeline.reindex([corpus])
    float32 = Pipeline(Settings(index_dir=index_dir, scorer_backend=None), embedder=embedder)
    assert pipeline.info().backend == "torch"
    assert pipeline.scorer.backend == "onnx-int8" and pipeline.answerer().embedder is pipeline.scorer
    assert float32.scorer is embedder

    answers = [pipeline.ask(q, as_of=day) for q, day in QUESTIONS]
    assert [(a.text, a.citations, a.abstained) for a in answers] == [
        (a.text, a.citations, a.abstained) for a in (float32.ask(q, as_of=day) for q, day in QUESTIONS)]
    assert [a.abstained for a in answers] == [False, False, False, True]
    assert answers[0].citations[0].quote.startswith(
        "Secretary Blinken emphasized that \u201cChina must play a constructive role")


def test_a_model_int8_cannot_run_is_scored_by_the_search_embedder(tmp_path, caplog):
    class Fake:
        name, dimension, backend = "not-a-model-folder", 2, "torch"

        def embed_batch(self, texts):
            return np.tile(np.array([[0.6, 0.8]], dtype=np.float32), (len(texts), 1))

    fake = Fake()
    pipeline = Pipeline(Settings(index_dir=tmp_path / "index", cache_dir=tmp_path / "cache"), embedder=fake)
    with caplog.at_level("WARNING", logger="rag.pipeline"):
        assert pipeline.scorer is fake
        assert pipeline.scorer is fake  # decided once, warned once
    assert caplog.messages == [
        "answer sentences are scored with the search embedder: cannot export 'not-a-model-folder' "
        "to ONNX: it is not a local model folder. Pass one, or leave the model unset to use the "
        "packaged all-MiniLM-L6-v2"]


def test_a_bad_scorer_backend_is_named(monkeypatch, built, capsys):
    from api import ApiSettings

    with pytest.raises(BadSetting) as err:
        Settings(scorer_backend="int4")  # type: ignore[arg-type]
    assert str(err.value) == "embedding backend 'int4' is not one of torch, onnx, onnx-int8"
    assert ApiSettings().scorer_backend == "onnx-int8"
    assert ApiSettings.from_env({"RAG_SCORER_BACKEND": "search"}).scorer_backend is None
    with pytest.raises(BadSetting) as err:
        ApiSettings.from_env({"RAG_SCORER_BACKEND": "fast"})
    assert str(err.value) == "RAG_SCORER_BACKEND='fast' is not one of torch, onnx, onnx-int8, search"
    pipeline, _, _ = built
    monkeypatch.setenv("RAG_SCORER_BACKEND", "fast")
    assert main(["ask", "Fed rates", "--index", str(pipeline.settings.index_dir)]) == 1
    assert capsys.readouterr().err == "error: RAG_SCORER_BACKEND='fast' is not one of torch, onnx, onnx-int8, search\n"


def test_a_torch_index_is_searched_with_onnx_queries_and_identical_results(tmp_path, embedder, onnx_cache):
    corpus = write_corpus(tmp_path / "news")
    index_dir = tmp_path / "index"
    pipeline = Pipeline(Settings(index_dir=index_dir, cache_dir=onnx_cache), embedder=embedder)
    pipeline.reindex([corpus])
    asked_torch = Pipeline(Settings(index_dir=index_dir, backend="torch", cache_dir=onnx_cache), embedder=embedder)
    assert pipeline.info().backend == "torch"
    assert pipeline.query_embedder.backend == "onnx"
    assert asked_torch.query_embedder is embedder  # an explicit backend is what searches

    def ranked(p: Pipeline, mode: str) -> list[list[tuple[str, float]]]:
        return [[(h.chunk.id, round(h.score, 4)) for h in p.search(q, k=5, mode=mode)] for q, _ in QUESTIONS]

    for mode in ("dense", "hybrid"):
        assert ranked(pipeline, mode) == ranked(asked_torch, mode)
    # Building still uses the index's own backend: the manifest keeps saying torch.
    summary = pipeline.reindex([corpus], full=True)
    assert (summary.embedded, pipeline.info().backend) == (summary.chunks, "torch")
