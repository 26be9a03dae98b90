"""rag.answer.verify: crafted answers (supported, mis-cited, uncited, invented) on the real embedder."""

from __future__ import annotations

import pytest

import rag.answer.verify
from conftest import AP_FED, CNN_FORMULA, REUTERS_CITY
from rag.index.keyword import terms
from rag.models import Article, Chunk, Hit
from rag.answer.verify import Claim, Verifier, VerifySettings, evidence_for, parse_claims


def _hit(record: dict, rank: int) -> Hit:
    article = Article(id=record["id"], title=record["title"], text=record["text"], url=record["url"],
                      source=record["source"], published_at=record["published_at"])
    return Hit(Chunk(f"{article.id}#0", article.id, 0, 0, len(article.text), article.text), 1.0 / rank,
               article, rank)


# Passage [1] is the Abbott plant, [2] the ECA ranking, [3] the Fed.
HITS = [_hit(CNN_FORMULA, 1), _hit(REUTERS_CITY, 2), _hit(AP_FED, 3)]
BACTERIA = ("The facility was shut down for months after an FDA inspection found dangerous bacteria "
            "in several areas of the plant.")
HONG_KONG = ("Hong Kong has been ranked the world's most expensive city for expatriates for the third year "
             "in a row, according to a survey by ECA International published on Wednesday.")
FED = ("The Federal Reserve raised its benchmark interest rate by three-quarters of a point on Wednesday, "
       "its largest hike since 1994.")


@pytest.fixture(scope="module")
def verifier(embedder):
    return Verifier(embedder, terms)


def check(verifier, text: str, question: str = ""):
    return verifier.check(parse_claims(text), evidence_for(HITS), len(HITS), question)


def summary(verdicts):
    """(sentence, cited, supported, re-cited, passage of the supporting sentence, its text)."""
    return [(v.claim.text, v.claim.markers, v.supported, v.recited,
             v.support[0].evidence.passage if v.support else None,
             v.support[0].evidence.text if v.support else None) for v in verdicts]


def test_a_supported_sentence_keeps_its_citation_and_gains_the_quote(verifier):
    verdicts = check(verifier, "Abbott's plant was shut down for months after an FDA inspection found "
                               "dangerous bacteria [1].", "Why was the formula plant closed?")
    assert summary(verdicts) == [(
        "Abbott's plant was shut down for months after an FDA inspection found dangerous bacteria.",
        (1,), True, False, 1, BACTERIA)]
    evidence = verdicts[0].support[0].evidence
    assert evidence.hit.article.text[evidence.start:evidence.end] == BACTERIA


def test_a_mis_cited_sentence_is_re_cited_to_the_passage_that_supports_it(verifier):
    verdicts = check(verifier, "Hong Kong is the world's most expensive city for expatriates for the third "
                               "year in a row [1].")
    assert summary(verdicts) == [(
        "Hong Kong is the world's most expensive city for expatriates for the third year in a row.",
        (1,), True, True, 2, HONG_KONG)]


def test_an_uncited_sentence_is_cited_to_the_passage_that_supports_it(verifier):
    verdicts = check(verifier, "The Federal Reserve raised its benchmark rate by three-quarters of a point.")
    assert summary(verdicts) == [(
        "The Federal Reserve raised its benchmark rate by three-quarters of a point.", (), True, True, 3, FED)]


@pytest.mark.parametrize("invented", [
    "Abbott agreed to pay the FDA a fine of 50 million dollars [1].",       # nothing like it anywhere
    "Hong Kong topped the ranking for the fifth year in a row [2].",          # the wrong number
    "Tokyo was ranked the world's most expensive city for expatriates [2].",  # the wrong city
    "Did the Fed raise rates by three-quarters of a point?",                  # a question asserts nothing
    "Yes [3].",                                                               # says nothing
])
def test_an_invented_sentence_is_not_supported(verifier, invented):
    [verdict] = check(verifier, invented)
    assert (verdict.supported, verdict.support) == (False, ())
    assert verdict.best is not None  # the closest sentence, for a flagged citation


def test_each_sentence_is_judged_on_its_own(verifier):
    text = ("Hong Kong is the most expensive city for expatriates for the third year in a row [2]. "
            "Abbott agreed to pay the FDA a fine of 50 million dollars [1]. "
            "The Fed raised its benchmark interest rate by three-quarters of a point [1].")
    assert [(v.supported, v.recited, v.support[0].evidence.passage if v.support else None)
            for v in check(verifier, text)] == [(True, False, 2), (False, False, None), (True, True, 3)]


def test_a_sentence_citing_two_passages_keeps_only_the_one_that_supports_it(verifier):
    [verdict] = check(verifier, "The Federal Reserve raised its benchmark interest rate by three-quarters "
                                "of a point, its largest hike since 1994 [2][3].")
    assert [s.evidence.passage for s in verdict.support] == [3]
    assert not verdict.recited


def test_markers_are_found_in_the_forms_models_write_them():
    text = ("- **Hong Kong** is first [1, 3]. New York is second.[2]\n[4]\n"
            "Geneva is third (Passage 2). Tokyo fell [passage 1-2]. [3] Rates rose.")
    assert [(c.text, c.markers) for c in parse_claims(text)] == [
        ("Hong Kong is first.", (1, 3)),
        ("New York is second.", (2, 4)),
        ("Geneva is third.", (2,)),
        ("Tokyo fell.", (1, 2)),
        ("Rates rose.", (3,)),  # a leading marker opens its sentence when the one before has its own
    ]


def test_empty_or_marker_only_text_has_no_claims():
    assert parse_claims("") == []
    assert parse_claims("[1] [2]") == []
    assert parse_claims("  \n ") == []


def test_evidence_offsets_point_into_the_article():
    evidence = evidence_for(HITS)
    assert {e.passage for e in evidence} == {1, 2, 3}
    assert all(e.hit.article.text[e.start:e.end] == e.text for e in evidence)


def test_no_evidence_means_no_support(verifier):
    assert verifier.check([Claim("Rates rose sharply in June.", (1,))], [], 0) == [
        rag.answer.verify.Verdict(Claim("Rates rose sharply in June.", (1,)))]


def test_the_settings_are_the_calibrated_ones():
    assert VerifySettings() == VerifySettings(threshold=0.7, weight_semantic=0.5, question_term_weight=0.5,
                                              min_terms=2, min_evidence_words=3)


def test_public_names():
    assert rag.answer.verify.__all__ == ["Claim", "Evidence", "Support", "Verdict", "Verifier", "VerifySettings",
                                  "echoes_question", "evidence_for", "parse_claims"]
