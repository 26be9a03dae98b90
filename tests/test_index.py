"""Reindexing: manifest, incremental updates, atomic swaps, and what a broken index says."""

from __future__ import annotations

import gc
import hashlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import weakref
from pathlib import Path

import numpy as np
import pytest
from conftest import write_corpus

from rag import BadSetting, IndexCorrupt, IndexMismatch, IndexNotBuilt, Pipeline, Settings, SourceError
from rag.index.keyword import MMAP_BYTES, KeywordSearcher, shard_ranges
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
        "index": {"kind": "exact", "ann_threshold": 200_000, "ivf_threshold": 1_000_000,
                  "keyword_shard_rows": 1_000_000},
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


def test_a_reindex_that_does_not_say_keeps_the_chunking_and_shards_the_index_was_built_with(
        tmp_path, corpus, embedder):
    """As a bare `rag reindex` or the API's reindex: another chunking would embed every chunk
    again, which at 10M chunks takes days on a small machine."""
    def built_with() -> tuple[dict, dict]:
        data = json.loads((tmp_path / "index" / "manifest.json").read_text())
        return data["chunking"], data["index"]

    first = make(tmp_path, embedder, chunk_tokens=64, keyword_shard_rows=3, ann_threshold=5_000).reindex(
        [corpus], embed=hashed)
    assert first.chunks > 10  # smaller chunks than the default's 10
    recorded = built_with()
    pipeline = make(tmp_path, embedder)
    assert (pipeline.chunker().settings.max_tokens, pipeline.build_settings().keyword_shard_rows) == (64, 3)
    again = pipeline.reindex(embed=hashed)
    assert (again.chunks, again.embedded, again.reused) == (first.chunks, 0, first.chunks)
    assert built_with() == recorded
    assert recorded[1] == {"kind": "exact", "ann_threshold": 5_000, "ivf_threshold": 1_000_000,
                           "keyword_shard_rows": 3}

    told = make(tmp_path, embedder, chunk_tokens=200).reindex(embed=hashed)
    assert (told.chunks, told.embedded) == (10, 10)
    assert (built_with()[0]["max_tokens"], built_with()[1]["keyword_shard_rows"]) == (200, 3)


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
    assert [type(read_in.shards[0].scores[a]) for a in arrays] == [np.ndarray] * 3  # a small index
    assert [type(mapped.shards[0].scores[a]) for a in arrays] == [np.memmap] * 3
    for query in ("baby formula plant", "North Korea artillery shells", "Which city is the most expensive?"):
        rows, scores = mapped.search(query, 5)
        want_rows, want_scores = read_in.search(query, 5)
        assert len(rows) > 0
        assert (rows.tolist(), scores.tolist()) == (want_rows.tolist(), want_scores.tolist())


@pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="reads Linux's /proc/self/maps")
def test_closing_a_generation_unmaps_its_vectors_and_keyword_index(built, tmp_path, monkeypatch):
    """A server swaps generations for as long as it runs: a retired one must not keep its files
    mapped (at 10M chunks, 14 GiB of vectors and 9 GiB of BM25)."""
    index_dir = _copy_index(built, tmp_path)
    gen = index_dir / read_manifest(index_dir).generation
    monkeypatch.setattr(KeywordSearcher.load.__func__, "__defaults__", (0, None))  # map even a small one

    def mapped() -> set[str]:
        gc.collect()
        with open("/proc/self/maps") as maps:
            return {str(Path(line.split()[-1]).relative_to(gen)) for line in maps if str(gen) in line}

    index = load_index(index_dir)
    assert mapped() == {"vectors.npy", "bm25/data.csc.index.npy", "bm25/indices.csc.index.npy",
                        "bm25/indptr.csc.index.npy"}
    index.close()
    assert mapped() == set()


# --- keyword shards -------------------------------------------------------------------------

HEADLINES = [
    "Fed raises interest rates by three-quarters of a point to fight inflation",
    "Inflation in the euro zone hit a record as energy prices rose",
    "Abbott restarts baby formula production at its Michigan plant",
    "Hong Kong is the world's most expensive city for expatriates",
    "Powell says the Fed will bring inflation down, whatever inflation does to growth",
    "All ferries between the islands were cancelled as winds reached 90mph",
    "The baby formula shortage eases as imports arrive from Europe",
]
QUERIES = ("inflation", "Fed inflation", "baby formula", "expensive city ferries", "zebra")


def found(searcher: KeywordSearcher, query: str, k: int = 5, allowed=None) -> tuple[list, list]:
    rows, scores = searcher.search(query, k, allowed)
    return rows.tolist(), scores.tolist()


def test_a_sharded_keyword_index_scores_each_shard_on_its_own_and_merges_them_on_score():
    sharded = KeywordSearcher.build(HEADLINES, shard_rows=3)
    assert [(start, shard.scores["num_docs"]) for start, shard in zip(sharded.starts.tolist(), sharded.shards)] == [
        (0, 3), (3, 3), (6, 1)]
    first, second = KeywordSearcher.build(HEADLINES[0:3]), KeywordSearcher.build(HEADLINES[3:6])
    # Row 4 scores as row 1 of an index of rows 3-5 alone: each shard has its own IDF.
    assert found(sharded, "inflation") == ([4, 1, 0], [found(second, "inflation")[1][0], *found(first, "inflation")[1]])
    assert found(sharded, "inflation", k=2)[0] == [4, 1]
    assert found(sharded, "inflation", allowed=np.arange(7) != 4) == found(first, "inflation")
    assert found(sharded, "inflation", allowed=np.zeros(7, dtype=bool)) == ([], [])
    assert found(sharded, "zebra") == ([], [])


def test_a_sharded_keyword_index_reads_term_presence_off_each_rows_own_shard():
    words, rows = ["inflat", "formula", "fed", "zebra"], np.array([6, 0, 4, 2, 5])
    present = KeywordSearcher.build(HEADLINES, shard_rows=3).term_presence(words, rows)
    assert present.tolist() == [
        [False, True, False, False],
        [True, False, True, False],
        [True, False, True, False],
        [False, True, False, False],
        [False, False, False, False],
    ]
    assert present.tolist() == KeywordSearcher.build(HEADLINES).term_presence(words, rows).tolist()


def test_a_sharded_keyword_index_is_written_one_shard_at_a_time_and_loads_back(tmp_path):
    folder = tmp_path / "bm25"
    assert KeywordSearcher.write(folder, iter(HEADLINES), shard_rows=3) == 7
    assert sorted(p.name for p in folder.iterdir()) == ["shard-0000", "shard-0001", "shard-0002"]
    in_memory = KeywordSearcher.build(HEADLINES, shard_rows=3)
    for mmap_above in (MMAP_BYTES, 0):
        loaded = KeywordSearcher.load(folder, mmap_above=mmap_above, ranges=shard_ranges(7, 3))
        assert type(loaded.shards[2].scores["data"]) is (np.ndarray if mmap_above else np.memmap)
        assert [found(loaded, q) for q in QUERIES] == [found(in_memory, q) for q in QUERIES]


def test_a_keyword_index_that_fits_one_shard_is_written_as_before_shards_existed(tmp_path):
    folder = tmp_path / "bm25"
    assert KeywordSearcher.write(folder, HEADLINES, shard_rows=7) == 7
    assert sorted(p.name for p in folder.iterdir()) == [
        "data.csc.index.npy", "indices.csc.index.npy", "indptr.csc.index.npy", "params.index.json",
        "vocab.index.json"]
    one = KeywordSearcher.build(HEADLINES)
    for loaded in (KeywordSearcher.load(folder), KeywordSearcher.load(folder, ranges=shard_ranges(7, 7))):
        assert [found(loaded, q) for q in QUERIES] == [found(one, q) for q in QUERIES]


def test_a_keyword_shard_size_below_one_says_what_to_pick(tmp_path):
    with pytest.raises(BadSetting) as err:
        Settings(index_dir=tmp_path, keyword_shard_rows=0)
    assert str(err.value) == (
        "keyword_shard_rows=0 must be at least 1: pick e.g. 1000000 (a BM25 shard of 1M chunks takes about 8 GB "
        "to build)"
    )


@pytest.fixture(scope="module")
def sharded(tmp_path_factory, embedder):
    """A real index over the corpus whose keyword index is cut into shards of 3 chunks."""
    root = tmp_path_factory.mktemp("sharded")
    corpus = write_corpus(root / "news")
    pipeline = Pipeline(Settings(index_dir=root / "index", keyword_shard_rows=3), embedder=embedder)
    return pipeline, pipeline.reindex([corpus])


def test_a_reindex_in_small_keyword_shards_finds_and_cites_what_one_index_does(sharded, built):
    pipeline, summary = sharded
    index_dir = pipeline.settings.index_dir
    manifest = read_manifest(index_dir)
    assert json.loads((index_dir / "manifest.json").read_text())["index"] == {
        "kind": "exact", "ann_threshold": 200_000, "ivf_threshold": 1_000_000, "keyword_shard_rows": 3}
    assert summary.chunks == 10
    assert sorted(p.name for p in (index_dir / manifest.generation / "bm25").iterdir()) == [
        "shard-0000", "shard-0001", "shard-0002", "shard-0003"]
    one, _, _ = built
    for query in ("baby formula plant", "North Korea artillery shells", "most expensive city for expatriates",
                  "cycle lanes Main Street", "inflation rates"):
        assert [h.chunk.id for h in pipeline.search(query, k=1, mode="keyword")] == [
            h.chunk.id for h in one.search(query, k=1, mode="keyword")]
    hits = pipeline.search("inflation rates", k=3, mode="keyword", source="apnews.com")
    assert [h.article.id for h in hits] == ["ap-2022-06-15-fed"]
    question = "Why was the Abbott baby formula plant closed?"
    answer, unsharded = pipeline.ask(question, as_of="2022-06-10"), one.ask(question, as_of="2022-06-10")
    assert (answer.text, answer.citations) == (unsharded.text, unsharded.citations)
    assert (answer.abstained, {c.article_id for c in answer.citations}) == (False, {"cnn-2022-06-05-abbott"})
    for citation in answer.citations:
        assert pipeline.article(citation.article_id).text[citation.start:citation.end] == citation.quote


def test_a_missing_or_mismatched_keyword_shard_is_reported_as_damage(sharded, tmp_path):
    pipeline, _ = sharded
    index_dir = tmp_path / "index"
    shutil.copytree(pipeline.settings.index_dir, index_dir)
    bm25 = index_dir / read_manifest(index_dir).generation / "bm25"
    hint = f"rebuild it with 'rag reindex --full --index {index_dir}'"
    shutil.rmtree(bm25 / "shard-0001")
    with pytest.raises(IndexCorrupt) as err:
        load_index(index_dir)
    assert str(err.value) == (
        f"index in {index_dir} is damaged (FileNotFoundError: [Errno 2] No such file or directory: "
        f"'{bm25 / 'shard-0001' / 'params.index.json'}'): {hint}"
    )
    shutil.copytree(bm25 / "shard-0000", bm25 / "shard-0001")
    shutil.rmtree(bm25 / "shard-0003")
    shutil.copytree(bm25 / "shard-0000", bm25 / "shard-0003")
    with pytest.raises(IndexCorrupt) as err:
        load_index(index_dir)
    assert str(err.value) == (
        f"index in {index_dir} is damaged (ValueError: keyword index {bm25 / 'shard-0003'} holds 3 chunks, "
        f"not the 1 of rows 9-10): {hint}"
    )


def test_an_index_from_before_keyword_shards_loads_its_keyword_index_as_one(built, tmp_path):
    index_dir = _copy_index(built, tmp_path)
    manifest = json.loads((index_dir / "manifest.json").read_text())
    del manifest["index"]["keyword_shard_rows"]
    (index_dir / "manifest.json").write_text(json.dumps(manifest))
    index = load_index(index_dir)
    assert (index.manifest.keyword_shard_rows, len(index.keyword.shards)) == (None, 1)
    pipeline, _, _ = built
    current = pipeline.index()
    for query in ("baby formula plant", "North Korea artillery shells"):
        assert found(index.keyword, query) == found(current.keyword, query)


# --- vectors ----------------------------------------------------------------------------------

def hashed(embedder, texts, batch_size=64, progress=False) -> np.ndarray:
    """An ``EmbedChunks`` whose vector for a text is made from the text's hash alone, the same in
    whatever batch or slice it comes."""
    rows = [np.random.default_rng(list(hashlib.sha256(t.encode()).digest()[:8])).standard_normal(384)
            for t in texts]
    out = np.asarray(rows, dtype=np.float32).reshape(len(texts), 384)
    return out / np.linalg.norm(out, axis=1, keepdims=True)


class Slices:
    """An ``EmbedChunks`` that takes ``slice_rows`` texts a call, embeds them with :func:`hashed`
    and notes how many each call had."""

    def __init__(self, slice_rows: int) -> None:
        self.slice_rows = slice_rows
        self.calls: list[int] = []

    def __call__(self, embedder, texts, batch_size=64, progress=False) -> np.ndarray:
        self.calls.append(len(texts))
        return hashed(embedder, texts)


def test_vectors_are_embedded_a_slice_at_a_time_and_reused_ones_make_the_same_file(tmp_path, corpus, embedder):
    embed = Slices(4)
    pipeline = make(tmp_path, embedder)
    first = pipeline.reindex([corpus], embed=embed)
    assert (first.chunks, embed.calls) == (10, [4, 4, 2])
    (corpus / "extra.txt").write_text(
        "Storm closes ferry routes\n\nAll ferries between the islands were cancelled on Friday as winds reached 90mph.\n"
    )
    embed.calls.clear()
    again = pipeline.reindex(embed=embed)
    assert (again.chunks, again.embedded, again.reused, embed.calls) == (11, 1, 10, [1])
    vectors = pipeline.settings.index_dir / read_manifest(pipeline.settings.index_dir).generation / "vectors.npy"
    reused = vectors.read_bytes()
    full = pipeline.reindex(full=True, embed=embed)
    assert (full.embedded, full.reused) == (11, 0)
    assert (pipeline.settings.index_dir / read_manifest(pipeline.settings.index_dir).generation / "vectors.npy"
            ).read_bytes() == reused
    assert np.load(vectors).shape == (11, 384)


def test_a_reindex_reads_its_articles_as_a_stream_and_keeps_none_it_has_chunked(tmp_path, corpus, embedder,
                                                                                  monkeypatch):
    """At 10M chunks the articles' texts alone would outgrow memory, so a build writes each one to
    its store as it is read, chunks them a batch at a time, and reads the texts back from the store
    to embed them and to build BM25."""
    import rag.index.build as build

    whole = make(tmp_path / "whole", embedder)
    whole.reindex([corpus], embed=hashed)
    monkeypatch.setattr(build, "CHUNK_BATCH", 2)
    alive: list[int] = []  # before each article is handed over: how many earlier ones are still held
    read_all = build.read_all

    def watched(*args, **kwargs):
        resolved, stream, report, fetched = read_all(*args, **kwargs)

        def counted():
            earlier: list[weakref.ref] = []
            for article in stream:
                gc.collect()
                alive.append(sum(ref() is not None for ref in earlier))
                earlier.append(weakref.ref(article))
                yield article
        return resolved, counted(), report, fetched

    monkeypatch.setattr(build, "read_all", watched)
    batched = make(tmp_path / "batched", embedder)
    summary = batched.reindex([corpus], embed=Slices(3))
    assert (summary.articles, summary.chunks, alive) == (6, 10, [0, 1, 1, 1, 1, 1])

    def generation(pipeline: Pipeline) -> Path:
        return pipeline.settings.index_dir / read_manifest(pipeline.settings.index_dir).generation

    assert (generation(batched) / "vectors.npy").read_bytes() == (generation(whole) / "vectors.npy").read_bytes()
    for query in ("baby formula plant", "North Korea artillery shells", "cycle lanes Main Street"):
        for mode in ("keyword", "dense"):
            assert [(h.chunk.id, h.chunk.text) for h in batched.search(query, k=3, mode=mode)] == [
                (h.chunk.id, h.chunk.text) for h in whole.search(query, k=3, mode=mode)]


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
