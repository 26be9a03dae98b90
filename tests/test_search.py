"""Search: modes, filters, result shape, and what a bad query says."""

from __future__ import annotations

import pytest

from rag import BadDate, BadQuery, BadSetting

BLINKEN = "What did Blinken say about China?"


@pytest.mark.parametrize("mode", ["hybrid", "dense", "keyword"])
def test_each_mode_ranks_the_seed_article_first_for_the_seed_question(built, mode):
    pipeline, _, _ = built
    hits = pipeline.search(BLINKEN, k=3, mode=mode)
    assert hits[0].article.author == "Koo Chae Eun"
    assert [h.rank for h in hits] == [1, 2, 3]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_hits_carry_their_passage_and_article(built):
    pipeline, _, _ = built
    hit = pipeline.search("Abbott Sturgis plant bacteria", k=1, mode="keyword")[0]
    assert hit.article.id == "cnn-2022-06-05-abbott"
    assert (hit.article.source, hit.article.published_at, hit.article.author) == ("cnn.com", "2022-06-05", "Jen Christensen")
    assert hit.chunk.id == "cnn-2022-06-05-abbott#0"
    assert hit.article.text[hit.chunk.start:hit.chunk.end] == hit.chunk.text
    assert "dangerous bacteria" in hit.chunk.text


def test_source_filter_keeps_one_source_and_its_subdomains(built):
    pipeline, _, _ = built
    hits = pipeline.search("North Korea Russia arms", k=5, source="bbc.co.uk")
    assert hits and {h.article.source for h in hits} == {"bbc.co.uk"}
    assert pipeline.search("North Korea Russia arms", k=5, source="co.uk") == hits


def test_date_filter_leaves_out_undated_and_out_of_range_articles(built):
    pipeline, _, _ = built
    hits = pipeline.search("North Korea Russia arms", k=50, since="2023-11-01")
    assert {h.article.id for h in hits} == {h.article.id for h in hits if h.article.published_at >= "2023-11-01"}
    assert {h.article.title for h in hits} == {"North Korea sent Russia a million artillery shells, Seoul says"}
    cycle = pipeline.search("cycle lanes Main Street", k=50, until="2030-01-01")
    assert all(h.article.published_at for h in cycle)  # the undated council story never appears


def test_a_filtered_search_still_returns_k_when_k_match(built):
    pipeline, _, _ = built
    in_2022 = pipeline.search("Korea", k=50, mode="dense", since="2022-01-01", until="2022-12-31")
    available = len(in_2022)
    assert available >= 3
    for mode in ("hybrid", "dense"):
        hits = pipeline.search("North Korea Russia arms", k=3, mode=mode, since="2022-01-01", until="2022-12-31")
        assert len(hits) == 3
        assert all("2022-01-01" <= h.article.published_at <= "2022-12-31" for h in hits)


def test_a_filter_nothing_matches_returns_nothing(built):
    pipeline, _, _ = built
    assert pipeline.search("anything at all", source="nytimes.com") == []


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"query": "   "}, BadQuery, "the question is empty: ask something, e.g. 'What did Blinken say about China?'"),
        ({"query": "x" * 2001}, BadQuery, "the question is 2001 characters long: the limit is 2000"),
        ({"query": "q", "k": 0}, BadSetting, "k=0 is outside 1-100: ask for between 1 and 100 results"),
        ({"query": "q", "mode": "fuzzy"}, BadSetting, "mode 'fuzzy' is not one of hybrid, dense, keyword"),
        ({"query": "q", "since": "last week"}, BadDate, "since: 'last week' is not a date: use YYYY-MM-DD, e.g. 2023-11-09"),
        ({"query": "q", "until": "2023-02-30"}, BadDate, "until: '2023-02-30' is not a date: use YYYY-MM-DD, e.g. 2023-11-09"),
        ({"query": "q", "since": "2023-12-01", "until": "2023-11-01"}, BadDate,
         "since (2023-12-01) is after until (2023-11-01): swap them or widen the range"),
    ],
)
def test_bad_queries_say_what_is_wrong(built, kwargs, error, message):
    pipeline, _, _ = built
    with pytest.raises(error) as err:
        pipeline.search(**kwargs)
    assert str(err.value) == message
