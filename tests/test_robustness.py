"""Hostile input and damaged state, in the library: text that is not text, a store damaged on
disk, and the generation a reindex replaced (closed once no call is using it)."""

from __future__ import annotations

import os
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest
from conftest import damage_table, damaged_copy, write_corpus

from rag.errors import BadQuery, IndexCorrupt
from rag.index.loaded import load_index
from rag.index.store import Store
from rag.pipeline import Pipeline
from rag.settings import Settings

QUESTION = "What did Blinken say about China?"
AS_OF = "2024-01-01"
NEW_ARTICLE = """---
title: Fed holds rates steady as inflation cools
date: 2023-12-13
source: apnews.com
---
The Federal Reserve held its benchmark rate steady on Wednesday and signalled three cuts in 2024.
"""


def damaged(index: Path) -> str:
    return (f"index in {index} is damaged (store.sqlite: database disk image is malformed): rebuild it with "
            f"'rag reindex --full --index {index}'")


# -- text that is not text --------------------------------------------------------------------
@pytest.mark.parametrize("call, message", [
    (lambda p: p.search("profit \udcff"),
     "the query is not text: character 8 is a lone surrogate (U+DCFF: the byte 0xff, which is not UTF-8): "
     "send it as UTF-8"),
    (lambda p: p.ask("profit \ud800"),
     "the question is not text: character 8 is a lone surrogate (U+D800): send it as UTF-8"),
    (lambda p: p.retrieve("\udc80"),
     "the question is not text: character 1 is a lone surrogate (U+DC80: the byte 0x80, which is not UTF-8): "
     "send it as UTF-8"),
    (lambda p: p.speakers("Bl\ud800inken"),
     "the name is not text: character 3 is a lone surrogate (U+D800): send it as UTF-8"),
], ids=["search", "ask", "retrieve", "speakers"])
def test_a_lone_surrogate_is_a_bad_query_not_a_tokenizer_crash(built, call, message):
    pipeline, _, _ = built
    with pytest.raises(BadQuery) as caught:
        call(pipeline)
    assert str(caught.value) == message


# -- a damaged store --------------------------------------------------------------------------
def test_a_store_damaged_only_in_its_quotes_does_not_load(built, tmp_path):
    pipeline, _, _ = built
    index = damaged_copy(pipeline.settings.index_dir, tmp_path / "index")
    with pytest.raises(IndexCorrupt) as caught:
        load_index(index)
    assert str(caught.value) == damaged(index)


def test_a_store_read_that_meets_damage_raises_index_corrupt_and_remembers_it(built, tmp_path):
    pipeline, _, _ = built
    index = damaged_copy(pipeline.settings.index_dir, tmp_path / "index")
    generation = pipeline.index().manifest.generation
    store = Store(index / generation / "store.sqlite", readonly=True)  # opened unchecked
    article_id = pipeline.search("Blinken China")[0].article.id
    assert store.article(article_id) == pipeline.article(article_id)  # the articles are sound
    with pytest.raises(IndexCorrupt) as caught:
        store.quotes_for([article_id])
    assert str(caught.value) == damaged(index)
    assert isinstance(caught.value.__cause__, sqlite3.DatabaseError)
    assert store.damage is caught.value
    store.close()


def test_damage_found_while_serving_stops_the_generation_until_a_reindex(embedder, tmp_path):
    corpus = write_corpus(tmp_path / "news")
    pipeline = Pipeline(Settings(index_dir=tmp_path / "index"), embedder=embedder)
    pipeline.reindex([corpus])
    assert pipeline.search("Abbott formula")  # loaded and checked while sound
    damage_table(tmp_path / "index", "quotes")
    with pytest.raises(IndexCorrupt) as caught:
        pipeline.ask(QUESTION, as_of=AS_OF)
    assert str(caught.value) == damaged(tmp_path / "index")
    for call in (pipeline.info, lambda: pipeline.search("Abbott formula")):  # /health and the rest
        with pytest.raises(IndexCorrupt) as again:
            call()
        assert again.value is caught.value

    pipeline.reindex([corpus], full=True)
    assert pipeline.ask(QUESTION, as_of=AS_OF).citations


# -- the generation a reindex replaced --------------------------------------------------------
class HeldEmbedder:
    """The real embedder, made to wait at each query until ``go`` is set: a search in flight."""

    backend = "torch"

    def __init__(self, real) -> None:
        self.real, self.name, self.dimension = real, real.name, real.dimension
        self.waiting, self.go = threading.Event(), threading.Event()

    def embed_batch(self, texts):
        self.waiting.set()
        assert self.go.wait(30)
        return self.real.embed_batch(texts)


def open_files_under(folder: Path) -> list[str]:
    """The files under ``folder`` this process holds open (Linux: /proc/self/fd)."""
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(f"{folder}/"):
            found.append(Path(target).name)
    return sorted(found)


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to list open files")
def test_a_replaced_generation_closes_once_the_last_call_using_it_returns(embedder, tmp_path):
    corpus = write_corpus(tmp_path / "news")
    builder = Pipeline(Settings(index_dir=tmp_path / "index"), embedder=embedder)  # as `rag reindex` would
    builder.reindex([corpus])
    held = HeldEmbedder(embedder)
    server = Pipeline(Settings(index_dir=tmp_path / "index", backend="torch"), embedder=held)
    held.go.set()
    server.search("Abbott formula")
    old = server.index()
    old_folder = tmp_path / "index" / old.manifest.generation
    assert open_files_under(old_folder) == ["store.sqlite", "vectors.npy"]

    held.go.clear()
    held.waiting.clear()
    in_flight: list = []
    search = threading.Thread(target=lambda: in_flight.append(server.search("Abbott formula", k=3)))
    search.start()
    assert held.waiting.wait(30)  # the search holds the old generation
    (corpus / "fed.md").write_text(NEW_ARTICLE, encoding="utf-8")
    builder.reindex([corpus])
    assert server.info().articles == 7  # swapped in the new generation ...
    assert not old.closed and open_files_under(old_folder) == ["store.sqlite", "vectors.npy"]  # ... not yet closed

    held.go.set()
    search.join(30)
    assert [h.article.title for h in in_flight[0]][:1] == ["Abbott restarts baby formula production at Michigan plant"]
    assert old.closed and open_files_under(old_folder) == []
    with pytest.raises(sqlite3.ProgrammingError):
        old.store.counts()
    assert server.search("Fed holds rates steady", k=1)[0].article.title == "Fed holds rates steady as inflation cools"


def test_a_generation_nobody_uses_closes_at_the_swap(embedder, tmp_path):
    corpus = write_corpus(tmp_path / "news")
    pipeline = Pipeline(Settings(index_dir=tmp_path / "index"), embedder=embedder)
    pipeline.reindex([corpus])
    old = pipeline.index()
    (corpus / "fed.md").write_text(NEW_ARTICLE, encoding="utf-8")
    pipeline.reindex([corpus])
    new = pipeline.index()
    assert (old.closed, new.closed) == (True, False)
    assert np.asarray(old.vectors).shape == (0, old.manifest.dimension)  # the memory map let go
