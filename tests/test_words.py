"""The shared word lists and the answerers' word normaliser."""

from __future__ import annotations

from bm25s.stopwords import STOPWORDS_EN

from rag.index.keyword import terms
from rag.text.words import (ABBREVIATIONS, CLAIMLESS_WORDS, QUESTION_WORDS, STOP_WORDS, content_words,
                            stems)

SENTENCES = [
    "What did Blinken say about China's policies?",
    "Based on the passages, the Fed recently raised rates by 0.75 percentage points.",
    "\u201cWe are not done,\u201d said Chair Jerome Powell on Wednesday \u2014 rates rose 3%.",
    "S\u00e3o Paulo's mayor, Ricardo Nunes, told reporters: I'm running again!",
    "",
]


def test_the_answerers_read_words_as_the_keyword_index_does():
    # Their thresholds were calibrated on the index's tokens: the two agree until recalibrated.
    for sentence in SENTENCES:
        assert content_words(sentence) == terms(sentence)
    assert STOP_WORDS == frozenset(STOPWORDS_EN)


def test_word_lists_are_plain_words_compared_by_their_stems():
    assert content_words("According to the passage, what was recently reported?") == [
        "accord", "passag", "what", "recent", "report"]
    assert stems(QUESTION_WORDS) >= {"accord", "recent", "report", "week", "what"}
    assert stems(CLAIMLESS_WORDS) >= {"accord", "passag", "articl", "base", "recent"}
    assert all(w.isalpha() for w in QUESTION_WORDS | CLAIMLESS_WORDS)


def test_abbreviations_are_case_sensitive_for_the_sentence_splitter():
    assert {"Mr", "Jan", "vs", "Vs", "al"} <= ABBREVIATIONS
    assert not {"Al", "mr", "no"} & ABBREVIATIONS
