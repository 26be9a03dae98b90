"""The answer cross-encoder: loading, its errors and fallback, and the sentence it prefers."""

from __future__ import annotations

import json
import logging
import shutil

import pytest

from rag import Article, Chunk, Hit, ModelError, Pipeline, Settings
from rag.answer.cross_encoder import DEFAULT_CROSS_ENCODER, MODEL_FILE, SentenceCrossEncoder, pair_text
from rag.answer.extractive import ExtractiveAnswerer
from rag.text.words import content_words

FIX = "retrain it with 'python bench/train_cross_encoder.py', or turn it off (Settings.cross_encoder=False)"


def _hit(article: Article, rank: int) -> Hit:
    return Hit(Chunk(f"{article.id}#0", article.id, 0, 0, len(article.text), article.text), 1.0 / rank, article, rank)


@pytest.fixture(scope="module")
def shipped() -> SentenceCrossEncoder:
    return SentenceCrossEncoder.load()


def test_the_shipped_cross_encoder_loads_with_its_fitted_weight(shipped):
    assert shipped.folder == DEFAULT_CROSS_ENCODER
    assert shipped.card["format"] == 1 and shipped.weight > 0 and shipped.max_length == 128
    assert shipped.card["trained_on"]["questions"].endswith("realtimeqa-2024-2025/questions.jsonl")


def test_it_scores_the_sentence_that_answers_above_one_that_repeats_the_question(shipped):
    question = "Which band announced a reunion tour this week?"
    scores = shipped.score(question, [
        pair_text("Britpop giants return", "Oasis announced a reunion tour of the UK and Ireland next summer."),
        pair_text("Britpop giants return", "Which band announced a reunion tour this week was the talk of the radio."),
    ])
    assert scores.shape == (2,) and 0 < scores[1] < scores[0] < 1
    assert shipped.score(question, []).shape == (0,)


def test_a_card_without_a_weight_is_refused(tmp_path):
    shutil.copytree(DEFAULT_CROSS_ENCODER, tmp_path / "old")
    (tmp_path / "old" / "card.json").write_text(json.dumps({"format": 1, "max_length": 128}))
    with pytest.raises(ModelError) as caught:
        SentenceCrossEncoder.load(tmp_path / "old")
    assert str(caught.value) == (f"the answer cross-encoder in {tmp_path / 'old'} has a card this version cannot "
                                 f"use (format 1, expected 1 with a weight and a max_length): {FIX}")


def test_a_folder_without_a_card_is_refused(tmp_path):
    with pytest.raises(ModelError) as caught:
        SentenceCrossEncoder.load(tmp_path)
    assert str(caught.value).startswith(f"the answer cross-encoder in {tmp_path} has no readable card.json (")
    assert str(caught.value).endswith(f"): {FIX}")


def test_a_damaged_shipped_cross_encoder_is_logged_and_the_hand_weights_answer(tmp_path, built, monkeypatch, caplog):
    pipeline, _, _ = built
    shutil.copytree(DEFAULT_CROSS_ENCODER, tmp_path / "damaged")
    (tmp_path / "damaged" / MODEL_FILE).write_bytes(b"not a model")
    monkeypatch.setattr("rag.answer.cross_encoder.DEFAULT_CROSS_ENCODER", tmp_path / "damaged")
    asked = Pipeline(Settings(index_dir=pipeline.settings.index_dir, cross_encoder=True), embedder=pipeline.embedder)
    with caplog.at_level(logging.WARNING, logger="rag.pipeline"):
        assert asked.answerer().cross_encoder is None
    [record] = caplog.records
    assert record.getMessage().startswith(f"the answer cross-encoder model {tmp_path / 'damaged' / MODEL_FILE} "
                                          "cannot be loaded (")
    assert record.getMessage().endswith(f"): {FIX}; scoring answer sentences without it")
    assert not asked.ask("How did the town council vote on the cycle lanes?").abstained


def test_with_it_the_answer_cites_the_sentence_that_names_the_band_the_hand_weights_leave_out(embedder, shipped):
    text = ("Fans have waited years to hear which band would announce a reunion tour this week. Oasis will "
            "play 14 stadium dates across the UK and Ireland next summer, the band said on Tuesday. Tickets "
            "go on sale on Saturday.")
    article = Article(id="oasis-2024-08-27", title="Britpop giants return", text=text, published_at="2024-08-27",
                      source="Reuters")
    question, hits = "Which band announced a reunion tour this week?", [_hit(article, 1)]
    echo = "Fans have waited years to hear which band would announce a reunion tour this week."
    named = "Oasis will play 14 stadium dates across the UK and Ireland next summer, the band said on Tuesday."
    hand = ExtractiveAnswerer(embedder, content_words).answer(question, hits, [], as_of="2024-08-28")
    crossed = ExtractiveAnswerer(embedder, content_words, cross_encoder=shipped).answer(question, hits, [],
                                                                                       as_of="2024-08-28")
    assert [c.quote for c in hand.citations] == [echo]
    assert [c.quote for c in crossed.citations] == [echo, named]
    assert crossed.text == f"{echo} [1] {named} [2]"
    for c in crossed.citations:
        assert text[c.start:c.end] == c.quote


def test_it_is_off_unless_asked(built):
    pipeline, _, _ = built
    assert pipeline.settings.cross_encoder is False and pipeline.answerer().cross_encoder is None
    asked = Pipeline(Settings(index_dir=pipeline.settings.index_dir, cross_encoder=True), embedder=pipeline.embedder)
    assert isinstance(asked.answerer().cross_encoder, SentenceCrossEncoder)
    answer = asked.ask("How did the town council vote on the cycle lanes?")
    assert not answer.abstained and answer.citations
    for c in answer.citations:
        assert asked.index().store.article(c.article_id).text[c.start:c.end] == c.quote
