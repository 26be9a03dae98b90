"""The learned answer-sentence ranker: answer types, features, loading, fallback, and its choice."""

from __future__ import annotations

import json
import logging
import math
import shutil
from datetime import date

import numpy as np
import pytest

from rag import Article, Chunk, Hit, ModelError, Pipeline, Settings
from rag.answer.extractive import ExtractiveAnswerer
from rag.answer.sentence_rank import (
    DEFAULT_SENTENCE_RANKER,
    SENTENCE_FEATURES,
    SentenceCandidate,
    SentenceRanker,
    answer_type,
    sentence_features,
)
from rag.text.words import content_words


@pytest.mark.parametrize("question, expected", [
    ("Who won the French presidential election?", "person"),
    ("Whose paintings were stolen from the museum?", "person"),
    ("Which player scored the winning goal?", "person"),
    ("Which company agreed to buy Twitter this week?", "organization"),
    ("What party won the most seats?", "organization"),
    ("Which country will host the next climate summit?", "place"),
    ("Where did the earthquake strike?", "place"),
    ("In which city did the protests begin?", "place"),
    ("When will the new iPhone go on sale?", "date"),
    ("What year did the company go public?", "date"),
    ("How many people were killed in the floods?", "number"),
    ("What percentage of voters backed the measure?", "number"),
    ("How much did the painting sell for?", "amount"),
    ("Why did the central bank raise rates?", "reason"),
    ("How did the team celebrate the title?", "manner"),
    ("What is the name of the new variant?", None),
])
def test_the_answer_type_is_read_from_the_question(question, expected):
    assert answer_type(question) == expected


def _hit(article: Article, rank: int, position: int = 0) -> Hit:
    return Hit(Chunk(f"{article.id}#{position}", article.id, position, 0, len(article.text), article.text),
               1.0 / rank, article, rank)


def test_features_describe_each_sentence_against_the_question_and_the_others():
    named_text = "Maria Lopez said the storm cost $2 million in May 2024."
    echo_text = "Who said what about the storm is not yet clear."
    article = Article(id="a", title="Storm hits coast", text=f"{echo_text} {named_text}", published_at="2024-05-01")
    hit = _hit(article, rank=2, position=3)
    named = SentenceCandidate(hit, 48, 103, named_text, "Maria Lopez", 1)
    echo = SentenceCandidate(hit, 0, 47, echo_text, None, 0)
    matrix = sentence_features("Who said the storm was costly?", [named, echo], [0.5, 0.7], [0.5, 1.0],
                               date(2024, 5, 11), content_words)
    assert matrix.shape == (2, len(SENTENCE_FEATURES)) and matrix.dtype == np.float32
    row = dict(zip(SENTENCE_FEATURES, matrix[0].tolist()))
    assert row == pytest.approx({
        "semantic": 0.5, "semantic_gap": 0.2, "lexical": 0.5, "lexical_gap": 0.5,
        "passage_rank_log": math.log(2), "answer_type": 7.0,  # person
        "cue_match": 1.0, "type_match": 1.0, "novel_names": 3.0,  # Maria, Lopez, May
        "novel_numbers": 2.0, "has_amount": 1.0, "has_percent": 0.0, "has_date": 1.0, "is_quote": 1.0,
        "sentence_in_passage": 1.0, "passage_position_log": math.log(4), "length_log": math.log(11),
        "title_coverage": 0.25, "article_candidates": 2.0, "age_days_log": math.log(11)})
    echoed = dict(zip(SENTENCE_FEATURES, matrix[1].tolist()))
    assert (echoed["type_match"], echoed["novel_names"], echoed["semantic_gap"], echoed["is_quote"]) == (0, 0, 0, 0)


def test_the_shipped_sentence_ranker_loads_with_its_fitted_settings():
    ranker = SentenceRanker.load()
    assert tuple(ranker.card["features"]) == SENTENCE_FEATURES
    assert 0.0 < ranker.keep_ratio <= 1.0 and ranker.max_candidates == 16
    probabilities = ranker.predict(np.zeros((3, len(SENTENCE_FEATURES)), dtype=np.float32))
    assert probabilities.shape == (3,) and ((probabilities >= 0) & (probabilities <= 1)).all()


def test_a_sentence_ranker_trained_on_other_features_is_refused(tmp_path):
    other = tmp_path / "other"
    shutil.copytree(DEFAULT_SENTENCE_RANKER, other)
    card = json.loads((other / "card.json").read_text())
    (other / "card.json").write_text(json.dumps({**card, "features": card["features"][:-1]}))
    with pytest.raises(ModelError) as refused:
        SentenceRanker.load(other)
    assert str(refused.value) == (
        f"the sentence ranker in {other} was trained on other features (format 1): retrain it with "
        "'python bench/train_sentence_ranker.py', or use --ranker fusion")


def test_a_damaged_shipped_sentence_ranker_falls_back_to_the_hand_weights(tmp_path, built, monkeypatch, caplog):
    pipeline, _, _ = built
    shutil.copytree(DEFAULT_SENTENCE_RANKER, tmp_path / "damaged")
    (tmp_path / "damaged" / "model.txt").write_text("not a model")
    monkeypatch.setattr("rag.answer.sentence_rank.DEFAULT_SENTENCE_RANKER", tmp_path / "damaged")
    learned = Pipeline(Settings(index_dir=pipeline.settings.index_dir, sentence_ranker=True), embedder=pipeline.embedder)
    with caplog.at_level(logging.WARNING, logger="rag.pipeline"):
        assert learned.answerer().ranker is None
    [record] = caplog.records
    assert record.getMessage().startswith(f"the sentence ranker model {tmp_path / 'damaged' / 'model.txt'} "
                                          "cannot be loaded (")
    assert record.getMessage().endswith("): retrain it with 'python bench/train_sentence_ranker.py', or use "
                                        "--ranker fusion; scoring answer sentences by hand-set weights")
    fusion = Pipeline(Settings(index_dir=pipeline.settings.index_dir, ranker="fusion", sentence_ranker=True),
                      embedder=pipeline.embedder)
    assert fusion.answerer().ranker is None


def test_answer_sentences_are_chosen_by_the_hand_set_weights_unless_asked(built):
    pipeline, _, _ = built
    assert pipeline.settings.sentence_ranker is False and pipeline.answerer().ranker is None
    asked = Pipeline(Settings(index_dir=pipeline.settings.index_dir, sentence_ranker=True), embedder=pipeline.embedder)
    assert isinstance(asked.answerer().ranker, SentenceRanker)


def test_the_ranker_answers_with_the_sentence_that_names_who_over_one_that_repeats_the_question(embedder):
    text = ("Who will lead the European Commission's new climate taskforce is the question Brussels has "
            "asked for weeks. Ursula Hartmann, a former Danish energy minister, will lead the taskforce, "
            "officials said on Monday. The taskforce meets for the first time in June.")
    article = Article(id="eu-2024-03-04", title="EU names head of climate taskforce", text=text,
                      published_at="2024-03-04", source="Reuters")
    question = "Who will lead the European Commission's new climate taskforce?"
    hits = [_hit(article, rank=1)]
    learned = ExtractiveAnswerer(embedder, content_words, ranker=SentenceRanker.load())
    answer = learned.answer(question, hits, [], as_of="2024-03-05")
    assert not answer.abstained
    assert answer.citations[0].quote == ("Ursula Hartmann, a former Danish energy minister, will lead the "
                                         "taskforce, officials said on Monday.")
    for c in answer.citations:
        assert text[c.start:c.end] == c.quote
    shortlist, matrix = learned.features(question, hits, [], as_of="2024-03-05")
    probability = dict(zip((c.text[:5] for c in shortlist), learned.ranker.predict(matrix).tolist()))
    assert probability["Ursul"] > probability["Who w"]
