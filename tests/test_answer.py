"""rag ask: cited, attributed, time-aware and honest answers, on the real model and index."""

from __future__ import annotations

import re

import pytest

from datetime import date

from rag import Answer, Article, BadDate, BadQuery, Chunk, Hit
from rag.answer.extractive import ABSTAIN_TEXT
from rag.search.asof import recency_boost
from rag.search.timeframe import time_frame

BLINKEN = "What did Blinken say about China?"


def assert_verifiable(answer: Answer, pipeline) -> None:
    """Every citation quotes its stored article exactly, and markers are numbered in order."""
    for citation in answer.citations:
        article = pipeline.article(citation.article_id)
        assert article.text[citation.start:citation.end] == citation.quote
        assert (citation.title, citation.source, citation.url, citation.published_at) == (
            article.title, article.source, article.url, article.published_at)
    markers = [int(n) for n in re.findall(r"\[(\d+)\]", answer.text)]
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    first_seen = list(dict.fromkeys(markers))
    assert first_seen == [c.n for c in answer.citations]


def test_blinken_answer_leads_with_his_china_statement(built):
    pipeline, _, _ = built
    answer = pipeline.ask(BLINKEN, as_of="2023-11-20")
    assert not answer.abstained
    assert_verifiable(answer, pipeline)
    first = answer.citations[0]
    assert first.quote.startswith("Secretary Blinken emphasized that \u201cChina must play a constructive role")
    assert first.speaker == "Antony Blinken"
    assert answer.text.startswith("Secretary Blinken emphasized that \u201cChina must play a constructive role")


def test_park_jins_words_are_never_presented_as_blinkens(built):
    pipeline, _, _ = built
    answer = pipeline.ask(BLINKEN, as_of="2023-11-20")
    assert all("I don\u2019t think China would be pleased" not in c.quote for c in answer.citations)
    assert {c.speaker for c in answer.citations} <= {"Antony Blinken", None}


def test_every_answer_sentence_is_cited(built):
    pipeline, _, _ = built
    answer = pipeline.ask("Why was the Abbott baby formula plant closed?", as_of="2022-06-10")
    assert not answer.abstained
    assert_verifiable(answer, pipeline)
    sentences = [s for s in re.split(r"(?<=\])\s+", answer.text) if s]
    assert all(re.search(r"\[\d+\]$", s) for s in sentences)
    assert "dangerous bacteria" in answer.text
    assert len(answer.citations) <= 3


def test_a_question_the_news_does_not_cover_abstains(built):
    pipeline, _, _ = built
    answer = pipeline.ask("What is the capital of France?", as_of="2023-11-20")
    assert (answer.abstained, answer.text, answer.citations) == (True, ABSTAIN_TEXT, [])
    assert answer.passages  # the closest passages are still offered


def test_articles_after_the_as_of_date_are_not_used(built):
    pipeline, _, _ = built
    answer = pipeline.ask("How many artillery shells did North Korea send to Russia?", as_of="2023-11-01")
    assert all(h.article.published_at is None or h.article.published_at <= "2023-11-01" for h in answer.passages)
    later = pipeline.ask("How many artillery shells did North Korea send to Russia?", as_of="2023-11-13")
    assert later.citations[0].source == "bbc.co.uk"
    assert "a million artillery shells" in later.text


def test_an_explicit_month_narrows_to_that_month(built):
    pipeline, _, _ = built
    answer = pipeline.ask("What happened with interest rates in June 2022?", as_of="2023-01-01")
    assert {h.article.published_at[:7] for h in answer.passages} == {"2022-06"}


def test_this_week_prefers_the_weeks_articles_without_dropping_older_ones():
    def hit(day: str | None, score: float) -> Hit:
        article = Article(id=f"a-{day}", title="t", text="x", published_at=day)
        return Hit(Chunk(f"a-{day}#0", article.id, 0, 0, 1, "x"), score, article, 0)

    hits = [hit("2022-05-01", 1.0), hit(None, 1.0), hit("2022-06-06", 1.0), hit("2022-06-14", 0.95)]
    frame = time_frame("What did the Fed announce this week?", date(2022, 6, 16))
    ranked = recency_boost(hits, frame.since, "2022-06-16", weight=0.5)
    assert [(h.rank, h.article.published_at, round(h.score, 3)) for h in ranked] == [
        (1, "2022-06-14", 1.425),  # inside the week: x1.5
        (2, "2022-06-06", 1.371),  # three days before it: half-life of one week
        (3, "2022-05-01", 1.011),  # five weeks before: almost no gain, but still there
        (4, None, 1.0),            # undated: no gain
    ]


def test_ask_rejects_bad_input(built):
    pipeline, _, _ = built
    with pytest.raises(BadQuery):
        pipeline.ask("  ")
    with pytest.raises(BadDate) as err:
        pipeline.ask(BLINKEN, as_of="yesterday")
    assert str(err.value) == "as_of: 'yesterday' is not a date: use YYYY-MM-DD, e.g. 2023-11-09"


def test_an_answer_names_what_the_question_asks_for_not_just_its_echo(embedder):
    from dataclasses import replace

    from rag.answer.extractive import AnswerSettings, ExtractiveAnswerer
    from rag.text.cues import novelty
    from rag.index.keyword import terms

    text = ("Blink-182 is reuniting with Tom DeLonge for a world tour next year. "
            "The band announced this week that it is dropping a new single and will go on a reunion tour.")
    article = Article(id="ap-blink", title="Pop-punk reunion", text=text, source="apnews.com",
                      published_at="2022-10-11")
    hits = [Hit(Chunk("ap-blink#0", article.id, 0, 0, len(text), text), 1.0, article, 1)]
    question = "Which band announced this week it is dropping a new single and will reunite for a tour?"

    answer = ExtractiveAnswerer(embedder, terms).answer(question, hits, [])
    assert answer.text == (
        "The band announced this week that it is dropping a new single and will go on a reunion tour. [1] "
        "Blink-182 is reuniting with Tom DeLonge for a world tour next year. [2]")
    echo_only = ExtractiveAnswerer(embedder, terms, replace(AnswerSettings(), novelty_bonus=0.0))
    assert "Blink-182" not in echo_only.answer(question, hits, []).text
    asked = {w.casefold() for w in question.replace("?", "").split()}
    assert novelty("Blink-182 is reuniting with Tom DeLonge.", asked, terms) == 1.0
    assert novelty("The band will go on a reunion tour.", asked, terms) == 0.0


def test_according_to_a_source_nobody_is_quoted_as_is_an_ordinary_question(built):
    pipeline, _, _ = built
    answer = pipeline.ask("According to Reuters, which city is the most expensive for expats?", as_of="2022-06-10")
    assert (answer.abstained, answer.speakers) == (False, [])
    assert answer.citations[0].quote.startswith("Hong Kong has been ranked the world's most expensive city")
    assert_verifiable(answer, pipeline)
    # A quoted person named that way is still held to their own words.
    held = pipeline.ask("According to Blinken, what must China do?", as_of="2023-11-20")
    assert [s.name for s in held.speakers] == ["Antony Blinken"]
    assert held.citations[0].speaker == "Antony Blinken"
