"""Reindexing: manifest, incremental updates, atomic swaps, and what a broken index says."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from rag import IndexCorrupt, IndexMismatch, IndexNotBuilt, Pipeline, Settings, SourceError
from rag.index.keyword import KeywordSearcher
from rag.index.loaded import load_index
from rag.index.manifest import read_manifest, write_manifest
from rag.models import IndexInfo


def make(tmp_path: Path, embedder, **settings) -> Pipeline:
    return Pipeline(Settings(index_dir=tmp_path / "index", **settings), embedder=embedder)


def test_reindex_writes_a_manifest_that_describes_the_build(built):
    pipeline, summary, corpus = built
    manifest = json.loads((pipeline.settings.index_dir / "manifest.json").read_text())
    generation = pipeline.settings.index_dir / manifest.pop("generation")
    assert sorted(p.name for p in generation.iterdir()) == ["bm25", "dense.faiss", "store.sqlite", "vectors.npy"]
    assert isinstance(manifest.pop("built_at"), str) and isinstance(manifest.pop("build_seconds"), float)
    assert manifest == {
        "format_version": 1,
        "model": {"name": "sentence-transformers/all-MiniLM-L6-v2", "dimension": 384, "backend": "torch"},
        "chunking": {"max_tokens": 200, "overlap_sentences": 1, "model_max_tokens": 256,
                     "title_max_tokens": 32, "splitter": "rag.text.sentences/1", "title_in_embedding": True},
        "index": {"kind": "exact", "ann_threshold": 200_000, "ivf_threshold": 1_000_000},
        "counts": {"articles": 6, "chunks": summary.chunks},
        "sources": [str(corpus)],
    }


def test_info_describes_the_loaded_index(built):
    pipeline, summary, corpus = built
    info = pipeline.info()
    assert info == IndexInfo(
        index_dir=str(pipeline.settings.index_dir), articles=6, chunks=summary.chunks,
        model="sentence-transformers/all-MiniLM-L6-v2", dimension=384, backend="torch", index_kind="exact",
        built_at=info.built_at, sources=(str(corpus),))


def test_first_reindex_adds_every_article(built):
    _, summary, _ = built
    assert (summary.articles, summary.added, summary.updated, summary.removed, summary.unchanged) == (6, 6, 0, 0, 0)
    assert summary.embedded == summary.chunks > 6 and summary.reused == 0
    assert summary.skipped == [] and summary.duplicates == []
    assert summary.line().startswith(
        f"indexed 6 articles into {summary.index_dir}: 6 added, 0 updated, 0 removed, 0 unchanged, "
        f"0 skipped (0 unusable, 0 duplicates); {summary.chunks} chunks ({summary.chunks} embedded, 0 reused, exact index) in "
    )


def test_every_stored_chunk_points_into_its_article(built):
    pipeline, summary, _ = built
    index = pipeline.index()
    chunks = index.store.chunks_by_rows(list(range(summary.chunks)))
    assert len(chunks) == summary.chunks
    for chunk, article_id in chunks.values():
        article = index.store.article(article_id)
        assert article.text[chunk.start:chunk.end] == chunk.text


def test_incremental_reindex_embeds_only_what_changed(tmp_path, corpus, embedder):
    pipeline = make(tmp_path, embedder)
    first = pipeline.reindex([corpus])

    again = pipeline.reindex()  # a bare reindex reuses the recorded sources
    assert (again.added, again.updated, again.removed, again.unchanged, again.embedded) == (0, 0, 0, 6, 0)
    assert again.reused == first.chunks

    local = corpus / "local.txt"
    local.write_text(local.read_text() + "The council will publish the final route in May.\n")
    (corpus / "bbc-arms.md").unlink()
    (corpus / "extra.txt").write_text(
        "Storm closes ferry routes\n\nAll ferries between the islands were cancelled on Friday as winds reached 90mph.\n"
    )
    changed = pipeline.reindex()
    assert (changed.added, changed.updated, changed.removed, changed.unchanged) == (1, 1, 1, 4)
    assert 0 < changed.embedded < changed.chunks

    hits = pipeline.search("artillery shells sent to Russia", k=10)
    assert all(h.article.title != "North Korea sent Russia a million artillery shells, Seoul says" for h in hits)
    assert pipeline.search("ferries cancelled winds", k=1, mode="keyword")[0].article.title == "Storm closes ferry routes"

    full = pipeline.reindex(full=True)
    assert (full.embedded, full.reused) == (full.chunks, 0)


def test_reindexed_vectors_equal_fresh_ones(tmp_path, corpus, embedder):
    pipeline = make(tmp_path, embedder)
    pipeline.reindex([corpus])
    pipeline.reindex()
    reused = np.array(pipeline.index().vectors)
    pipeline.reindex(full=True)
    np.testing.assert_allclose(np.array(pipeline.index().vectors), reused, atol=1e-5)


def test_reindex_keeps_only_current_and_previous_generation(tmp_path, corpus, embedder):
    pipeline = make(tmp_path, embedder)
    for _ in range(3):
        pipeline.reindex([corpus])
    assert len(list((tmp_path / "index").glob("gen-*"))) == 2


def test_a_folder_with_nothing_usable_changes_nothing(tmp_path, corpus, embedder):
    pipeline = make(tmp_path, embedder)
    pipeline.reindex([corpus])
    before = (tmp_path / "index" / "manifest.json").read_text()
    junk = tmp_path / "junk"
    junk.mkdir()
    (junk / "empty.txt").write_text("")
    with pytest.raises(SourceError) as err:
        pipeline.reindex([junk])
    assert str(err.value) == (
        f"no usable articles in {junk} ({junk / 'empty.txt'}: file is empty): nothing was changed; "
        "add .txt, .md, .html, .json or .jsonl articles"
    )
    assert (tmp_path / "index" / "manifest.json").read_text() == before


def test_bare_reindex_without_history_says_what_to_do(tmp_path, embedder):
    with pytest.raises(SourceError) as err:
        make(tmp_path, embedder).reindex()
    assert str(err.value) == (
        f"no sources given and none recorded in {tmp_path / 'index'}: run 'rag reindex <folder-or-files>'"
    )


def test_missing_index_says_to_reindex(tmp_path, embedder):
    with pytest.raises(IndexNotBuilt) as err:
        make(tmp_path, embedder).search("anything")
    assert str(err.value) == (
        f"no index in {tmp_path / 'index'}: run 'rag reindex <folder> --index {tmp_path / 'index'}' first"
    )


def _copy_index(built, tmp_path: Path) -> Path:
    pipeline, _, _ = built
    target = tmp_path / "index"
    shutil.copytree(pipeline.settings.index_dir, target)
    return target


def test_corrupt_manifest_is_reported(built, tmp_path):
    index_dir = _copy_index(built, tmp_path)
    (index_dir / "manifest.json").write_text("{not json")
    with pytest.raises(IndexCorrupt) as err:
        load_index(index_dir)
    assert str(err.value) == (
        f"index manifest {index_dir / 'manifest.json'} is unreadable (Expecting property name enclosed in "
        f"double quotes: line 1 column 2 (char 1)): rebuild it with 'rag reindex <folder> --full --index {index_dir}'"
    )


def test_missing_files_are_reported_as_damage(built, tmp_path):
    index_dir = _copy_index(built, tmp_path)
    generation = json.loads((index_dir / "manifest.json").read_text())["generation"]
    (index_dir / generation / "dense.faiss").unlink()
    with pytest.raises(IndexCorrupt) as err:
        load_index(index_dir)
    message = str(err.value)
    assert message.startswith(f"index in {index_dir} is damaged (RuntimeError: ")
    assert message.endswith(f"rebuild it with 'rag reindex --full --index {index_dir}'")


def test_a_damaged_index_is_read_once_per_manifest_not_per_request(built, tmp_path, embedder, monkeypatch):
    import rag.pipeline

    index_dir = _copy_index(built, tmp_path)
    generation = json.loads((index_dir / "manifest.json").read_text())["generation"]
    (index_dir / generation / "dense.faiss").unlink()
    loads = []
    monkeypatch.setattr(rag.pipeline, "load_index", lambda *a, **kw: loads.append(a) or load_index(*a, **kw))
    pipeline = Pipeline(Settings(index_dir=index_dir), embedder=embedder)
    for _ in range(3):
        with pytest.raises(IndexCorrupt):
            pipeline.search("baby formula")
    assert len(loads) == 1
    # A reindex writes a new manifest, and the next request loads it.
    pipeline.reindex(full=True)
    assert pipeline.search("baby formula", k=1)[0].article.id == "cnn-2022-06-05-abbott"
    assert len(loads) == 2


def test_index_from_another_model_is_refused(built, tmp_path):
    index_dir = _copy_index(built, tmp_path)
    with pytest.raises(IndexMismatch) as err:
        load_index(index_dir, expected_model="intfloat/e5-small-v2")
    assert str(err.value) == (
        f"index in {index_dir} was built with model 'sentence-transformers/all-MiniLM-L6-v2', not "
        f"'intfloat/e5-small-v2': rebuild it with 'rag reindex --full --index {index_dir}', "
        "or search with the model it was built with"
    )


def test_index_with_other_dimension_is_refused(built, tmp_path):
    index_dir = _copy_index(built, tmp_path)
    manifest = json.loads((index_dir / "manifest.json").read_text())
    manifest["model"]["dimension"] = 768
    (index_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatch) as err:
        load_index(index_dir)
    assert str(err.value) == (
        f"index in {index_dir} holds 384-dimensional vectors but its manifest says 768: "
        f"rebuild it with 'rag reindex --full --index {index_dir}'"
    )


def test_newer_format_is_refused(built, tmp_path):
    index_dir = _copy_index(built, tmp_path)
    manifest = json.loads((index_dir / "manifest.json").read_text())
    manifest["format_version"] = 99
    (index_dir / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(IndexMismatch) as err:
        load_index(index_dir)
    assert str(err.value) == (
        f"index in {index_dir} has format version 99, this version of rag reads 1: "
        f"rebuild it with 'rag reindex --full --index {index_dir}'"
    )


def test_a_manifest_is_written_back_byte_for_byte_and_one_without_a_backend_means_torch(built, tmp_path):
    index_dir = _copy_index(built, tmp_path)
    path = index_dir / "manifest.json"
    written = path.read_text()
    write_manifest(index_dir, read_manifest(index_dir))
    assert path.read_text() == written
    older = json.loads(written)
    del older["model"]["backend"]
    path.write_text(json.dumps(older))
    manifest = read_manifest(index_dir)
    assert (manifest.model_backend, manifest.backend, manifest.to_json()) == (None, "torch", older)


def test_a_manifest_missing_fields_is_damage(built, tmp_path):
    index_dir = _copy_index(built, tmp_path)
    (index_dir / "manifest.json").write_text('{"format_version": 1}')
    with pytest.raises(IndexCorrupt) as err:
        load_index(index_dir)
    assert str(err.value) == (
        f"index in {index_dir} is damaged (KeyError: 'model'): rebuild it with 'rag reindex --full --index {index_dir}'"
    )


def test_hnsw_index_finds_what_exact_search_finds(tmp_path, corpus, embedder):
    pipeline = make(tmp_path, embedder, index_type="hnsw")
    summary = pipeline.reindex([corpus])
    assert summary.index_kind == "hnsw"
    assert pipeline.index().manifest.index_kind == "hnsw"
    hit = pipeline.search("Which city is the most expensive for expatriates?", k=1, mode="dense")[0]
    assert hit.article.id == "reuters-2022-06-08-eca"


def test_a_large_keyword_index_is_memory_mapped_and_finds_the_same(built):
    pipeline, _, _ = built
    folder = pipeline.settings.index_dir / read_manifest(pipeline.settings.index_dir).generation / "bm25"
    read_in, mapped = KeywordSearcher.load(folder), KeywordSearcher.load(folder, mmap_above=0)
    arrays = ("data", "indices", "indptr")
    assert [type(read_in.retriever.scores[a]) for a in arrays] == [np.ndarray] * 3  # a small index
    assert [type(mapped.retriever.scores[a]) for a in arrays] == [np.memmap] * 3
    for query in ("baby formula plant", "North Korea artillery shells", "Which city is the most expensive?"):
        rows, scores = mapped.search(query, 5)
        want_rows, want_scores = read_in.search(query, 5)
        assert len(rows) > 0
        assert (rows.tolist(), scores.tolist()) == (want_rows.tolist(), want_scores.tolist())


@pytest.mark.slow
def test_killing_a_reindex_halfway_leaves_the_previous_index_usable(tmp_path, corpus, embedder):
    index_dir = tmp_path / "index"
    pipeline = make(tmp_path, embedder)
    pipeline.reindex([corpus])
    before = [h.chunk.id for h in pipeline.search("baby formula plant", k=3)]

    big = tmp_path / "big"
    big.mkdir()
    with open(big / "many.jsonl", "w") as fh:
        for i in range(3000):
            text = f"Report {i}: the harbour authority counted {i * 7} ships in port this week. " * 12
            fh.write(json.dumps({"id": f"r{i}", "title": f"Harbour report {i}", "text": text}) + "\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "api.cli", "reindex", str(big), "--index", str(index_dir), "--quiet"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while not list(index_dir.glob(".building-*/")) and time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    time.sleep(1.0)  # let it get into embedding
    assert proc.poll() is None, "the reindex finished before it could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    survivor = Pipeline(Settings(index_dir=index_dir), embedder=embedder)
    assert [h.chunk.id for h in survivor.search("baby formula plant", k=3)] == before
    assert survivor.info().articles == 6
    # The next reindex clears the half-built generation and succeeds.
    assert survivor.reindex([corpus]).unchanged == 6
    assert not list(index_dir.glob(".building-*"))
