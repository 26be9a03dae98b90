"""The learned passage ranker: its candidate pool, its features, loading, and the fallback."""

from __future__ import annotations

import json
import logging
import shutil
from datetime import date

import numpy as np
import pytest

from rag import ModelError, Pipeline, Settings
from rag.search.asof import as_of_filter
from rag.search.rerank import DEFAULT_RANKER, FEATURES, PassageRanker, candidate_pool, features
from rag.search.retrieve import SearchFilter, search

CITY = "Which city is the most expensive for expats this week?"
AS_OF = date(2022, 6, 10)


def pool_for(pipeline: Pipeline, question: str, as_of: date = AS_OF):
    flt, frame = as_of_filter(question, as_of, SearchFilter())
    index = pipeline.index()
    pool = candidate_pool(index, pipeline.query_embedder, question, flt)
    return pool, features(index, question, as_of, frame, pool)


def test_the_pool_is_both_retrievers_top_lists_in_fused_order(built):
    pipeline, _, _ = built
    pool, _ = pool_for(pipeline, CITY)
    flt, _ = as_of_filter(CITY, AS_OF, SearchFilter())
    dense, keyword = (search(pipeline.index(), pipeline.query_embedder, CITY, k=100, mode=mode, flt=flt)
                      for mode in ("dense", "keyword"))
    assert {c.hit.chunk.id for c in pool} == {h.chunk.id for h in dense} | {h.chunk.id for h in keyword}
    assert [c.hit.rank for c in pool] == list(range(1, len(pool) + 1))
    first = pool[0]
    assert first.hit.article.id == "reuters-2022-06-08-eca"
    assert (first.dense_rank, first.keyword_rank) == (1, 1)
    # Later articles than the as-of date never enter the pool (undated ones may).
    assert all(c.hit.article.published_at is None or c.hit.article.published_at <= "2022-06-10" for c in pool)


def test_features_describe_each_candidate(built):
    pipeline, _, _ = built
    pool, matrix = pool_for(pipeline, CITY)
    assert matrix.shape == (len(pool), len(FEATURES)) and matrix.dtype == np.float32
    row = dict(zip(FEATURES, matrix[0].tolist()))
    assert row["dense_gap"] == 0.0 and row["keyword_score_rel"] == 1.0 and row["both_lists"] == 1.0
    assert row["age_days_log"] == pytest.approx(np.log1p(2))  # published 2022-06-08, asked 2022-06-10
    assert (row["undated"], row["in_window"], row["wants_recent"]) == (0.0, 1.0, 1.0)
    assert (row["has_cue"], row["novelty"]) == (0.0, 1.0)  # it names places the question does not
    assert row["coverage"] == 1.0  # city, expens, expat: all in the passage
    fed = "How many points did the Fed raise its key rate by?"
    pool, matrix = pool_for(pipeline, fed, as_of=date(2022, 6, 20))
    top = dict(zip(FEATURES, matrix[0].tolist()))
    assert pool[0].hit.article.id == "ap-2022-06-15-fed"
    assert (top["has_cue"], top["cue_match"], top["wants_recent"], top["in_window"]) == (1.0, 1.0, 0.0, 0.0)
    undated = next(dict(zip(FEATURES, m.tolist())) for c, m in zip(pool, matrix) if not c.hit.article.published_at)
    assert (undated["undated"], undated["age_days_log"], undated["in_window"]) == (1.0, 0.0, 0.0)


def test_the_shipped_ranker_loads_and_its_card_names_these_features():
    ranker = PassageRanker.load()
    assert tuple(ranker.card["features"]) == FEATURES
    assert ranker.score(np.zeros((3, len(FEATURES)), dtype=np.float32)).shape == (3,)


def test_a_ranker_folder_of_your_own_that_cannot_be_used_is_an_error(tmp_path, built):
    pipeline, _, _ = built
    settings = Settings(index_dir=pipeline.settings.index_dir, ranker="learned", ranker_path=tmp_path / "nope")
    with pytest.raises(ModelError) as missing:
        Pipeline(settings, embedder=pipeline.embedder).ask(CITY, as_of=AS_OF)
    assert str(missing.value).startswith(f"the passage ranker in {tmp_path / 'nope'} has no readable card.json (")
    assert str(missing.value).endswith("): retrain it with 'python bench/train_ranker.py', or use --ranker fusion")

    other = tmp_path / "other"
    shutil.copytree(DEFAULT_RANKER, other)
    card = json.loads((other / "card.json").read_text())
    (other / "card.json").write_text(json.dumps({**card, "features": card["features"][:-1]}))
    with pytest.raises(ModelError, match="was trained on other features"):
        PassageRanker.load(other)


def test_a_damaged_shipped_ranker_falls_back_to_fusion_with_a_warning(tmp_path, built, monkeypatch, caplog):
    pipeline, _, _ = built
    monkeypatch.setattr("rag.search.rerank.DEFAULT_RANKER", tmp_path)
    learned = Pipeline(Settings(index_dir=pipeline.settings.index_dir, ranker="learned"), embedder=pipeline.embedder)
    fusion = Pipeline(Settings(index_dir=pipeline.settings.index_dir, ranker="fusion"), embedder=pipeline.embedder)
    with caplog.at_level(logging.WARNING, logger="rag.pipeline"):
        hits, _ = learned.retrieve(CITY, as_of=AS_OF)
    assert [h.chunk.id for h in hits] == [h.chunk.id for h in fusion.retrieve(CITY, as_of=AS_OF)[0]]
    assert [r.getMessage() for r in caplog.records] == [
        f"the passage ranker in {tmp_path} has no readable card.json ([Errno 2] No such file or directory: "
        f"'{tmp_path / 'card.json'}'): retrain it with 'python bench/train_ranker.py', or use --ranker fusion; "
        "ranking by fusion instead"]


def test_the_learned_ranker_orders_the_answers_passages(built):
    pipeline, _, _ = built
    learned = Pipeline(Settings(index_dir=pipeline.settings.index_dir, ranker="learned"), embedder=pipeline.embedder)
    hits, _ = learned.retrieve(CITY, k=5, as_of=AS_OF)
    assert [h.rank for h in hits] == [1, 2, 3, 4, 5]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].article.id == "reuters-2022-06-08-eca"
    answer = learned.ask(CITY, as_of=AS_OF)
    assert not answer.abstained and "Hong Kong" in answer.citations[0].quote
    for c in answer.citations:
        article = learned.article(c.article_id)
        assert article is not None and article.text[c.start:c.end] == c.quote


def test_a_ranker_pools_as_deep_as_its_card_says_it_was_trained(tmp_path, built):
    """A model trained on each retriever's top 2 re-ranks a pool of at most 2 + 2 passages."""
    pipeline, _, _ = built
    shallow = tmp_path / "shallow"
    shutil.copytree(DEFAULT_RANKER, shallow)
    card = json.loads((shallow / "card.json").read_text())
    (shallow / "card.json").write_text(json.dumps({**card, "pool_depth": 2}))
    assert (PassageRanker.load().pool_depth, PassageRanker.load(shallow).pool_depth) == (card["pool_depth"], 2)
    settings = Settings(index_dir=pipeline.settings.index_dir, ranker="learned", ranker_path=shallow)
    hits, _ = Pipeline(settings, embedder=pipeline.embedder).retrieve(CITY, k=10, as_of=AS_OF)
    deep_pool, _ = pool_for(pipeline, CITY)
    assert 2 <= len(hits) <= 4 < len(deep_pool)
    assert {h.chunk.id for h in hits} == {c.hit.chunk.id for c in candidate_pool(
        pipeline.index(), pipeline.query_embedder, CITY, as_of_filter(CITY, AS_OF, SearchFilter())[0], depth=2)}

    (shallow / "card.json").write_text(json.dumps({**card, "pool_depth": "deep"}))
    with pytest.raises(ModelError) as caught:
        PassageRanker.load(shallow)
    assert str(caught.value) == (f"the passage ranker in {shallow} has pool_depth 'deep', not a whole number of "
                                 "passages: retrain it with 'python bench/train_ranker.py', or use --ranker fusion")
