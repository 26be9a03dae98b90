"""Learned answer-sentence ranking: which of the shortlisted sentences holds the answer.

The hand-weighted score (similarity, word overlap, passage rank, a cue bonus, a novelty bonus)
knows nothing of what kind of thing a question asks for. This model sees those same signals and
the answer type: what the question asks for ("who", "how many", "when", "which company", ...)
against what the sentence names that the question does not (a person's name, a number, an
amount, a date, a place). It also sees where the sentence stands (its passage's rank, its place
in the article, the article's age on the as-of day) and how it compares with the other
candidates (gaps to the best similarity and overlap).

It is a LightGBM binary classifier: its output is the probability that a sentence contains the
gold answer. It orders the sentences and decides how many join the answer (``keep_ratio``, fitted
on the training questions and kept in the model's card). Whether to answer at all stays with the
hand-weighted relevance and its threshold, which the same training data re-calibrates to the
value already shipped. ``bench/train_sentence_ranker.py``
trains it on RealTime QA 2024-2025; BENCHMARKS.md reports it on RealTime QA 2022, which it
never saw. "What did X say?" questions keep the speaker-aware hand-weighted path.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from rag.booster import Booster
from rag.models import Hit
from rag.text.cues import answer_cue, question_words
from rag.text.dates import stored_day

SENTENCE_RANKER_FORMAT = 1
DEFAULT_SENTENCE_RANKER = Path(__file__).resolve().parent / "sentence_ranker"

# What a question asks for, read from its words; the first pattern that matches wins.
ANSWER_TYPES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("reason", re.compile(r"^\s*why\b|\bwhat (?:caused|led to)\b|\bfor what reason\b", re.I)),
    ("number", re.compile(r"\bhow (?:many|long|old|far|often|big)\b|\bwhat (?:number|percentage|share|age)\b", re.I)),
    ("amount", re.compile(r"\bhow much\b|\bwhat (?:amount|price|sum)\b|\bcost\b", re.I)),
    ("date", re.compile(r"^\s*when\b|\bwhat (?:year|day|date|month|time)\b|\bwhich (?:year|day|date|month)\b", re.I)),
    ("place", re.compile(r"^\s*where\b|\b(?:which|what) (?:country|countries|city|cities|state|states|nation|"
                         r"region|town|island|county|capital|continent)\b|\bin which\b", re.I)),
    ("organization", re.compile(r"\b(?:which|what) (?:company|companies|firm|brand|team|club|party|group|"
                                r"organi[sz]ation|agency|network|airline|retailer|bank|band|university|"
                                r"school|newspaper|outlet|carmaker|automaker|maker|platform|app|league)\b",
                                re.I)),
    ("person", re.compile(r"^\s*(?:who|whom|whose)\b|\b(?:which|what) (?:person|people|leader|player|actor|"
                          r"actress|singer|star|official|politician|president|minister|candidate|ceo|"
                          r"executive|founder|author|judge|senator|governor|rapper|athlete|coach)\b", re.I)),
    ("manner", re.compile(r"^\s*how\b", re.I)),
)
_TYPE_CODE = {name: n for n, (name, _) in enumerate(ANSWER_TYPES, start=1)}

SENTENCE_FEATURES: tuple[str, ...] = (
    "semantic",           # cosine similarity of sentence and question
    "semantic_gap",       # the best similarity among the candidates minus this one
    "lexical",            # share of the question's content words in the sentence
    "lexical_gap",        # the best share among the candidates minus this one
    "passage_rank_log",   # log of the rank of the passage the sentence stands in
    "answer_type",        # what the question asks for: 0 nothing read, else 1 + index in ANSWER_TYPES
    "cue_match",          # the sentence has the shape rag.text.cues expects for the question
    "type_match",         # the sentence names something new of the asked type (see _TYPE_MATCH)
    "novel_names",        # capitalised words the question lacks (up to 5)
    "novel_numbers",      # numbers the question lacks (up to 5)
    "has_amount",         # money or a large quantity ($5, £2bn, 3 million)
    "has_percent",
    "has_date",           # a year, a month or a weekday
    "is_quote",           # the sentence is quoted speech, with its speaker
    "sentence_in_passage",  # 0 for the passage's first sentence, 1 for the next, ...
    "passage_position_log",  # log(1 + the passage's position in its article)
    "length_log",         # log of the sentence's length in words
    "title_coverage",     # share of the question's content words in the article's title
    "article_candidates",  # how many candidates come from the same article
    "age_days_log",       # log(1 + days from publication to the as-of day); -1 when undated
)

_NAME = re.compile(r"\b[A-Z][\w'’&.-]*")
_NUMBER = re.compile(r"\b\d[\d,.]*\b")
_AMOUNT = re.compile(r"[$£€¥]\s?\d|\b\d[\d,.]*\s?(?:bn|m|k)\b|\b(?:million|billion|trillion|dollars|pounds|"
                     r"euros|cents)\b", re.I)
_PERCENT = re.compile(r"\d\s?%|\bper ?cent\b", re.I)
_DATE = re.compile(r"\b(?:1[89]\d\d|20\d\d|January|February|March|April|May|June|July|August|September|"
                   r"October|November|December|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday)\b")
_PLACE_HINT = re.compile(r"\b(?:in|at|from|to|near|across) (?:the )?[A-Z]")
_PERSON_HINT = re.compile(r"\b[A-Z][a-z]+ (?:[A-Z]\.? )?[A-Z][a-z'’-]+\b")
_ORG_HINT = re.compile(r"\b[A-Z][\w&.-]*(?: [A-Z][\w&.-]*)*(?: Inc| Corp| Ltd| Group| Party| FC| United|"
                       r"'s| Co\b)|\b[A-Z]{2,}\b")
_REASON_CUE = answer_cue("Why?") or re.compile(r"(?!)")
_CAPITALISED_STOPWORDS = frozenset(
    "the a an and but or if in on at to for of by with as it its this that these those he she they we i "
    "you his her their our my mr mrs ms dr sir lord lady there here when where what which who why how "
    "after before while during since until".split())


@dataclass
class SentenceCandidate:
    """A sentence of a retrieved passage, as the extractive answerer weighs it."""

    hit: Hit
    start: int
    end: int
    text: str
    speaker: str | None
    index_in_passage: int = 0
    relevance: float = 0.0
    novelty: float = 0.0
    score: float = 0.0
    learned: float = 0.0  # the learned ranker's probability, when it scored this sentence
    answer_bonus: float = 0.0  # what the answer cross-encoder added to ``score``


def answer_type(question: str) -> str | None:
    """What kind of thing ``question`` asks for, or None.

    >>> [answer_type(q) for q in ("Who won the election?", "Which company bought Twitter?",
    ...                            "How many people died?", "Where did the storm hit?", "What is AI?")]
    ['person', 'organization', 'number', 'place', None]
    """
    for name, pattern in ANSWER_TYPES:
        if pattern.search(question):
            return name
    return None


def sentence_features(question: str, candidates: Sequence[SentenceCandidate], semantic: Sequence[float],
                      lexical: Sequence[float], as_of: date | None,
                      terms: Callable[[str], list[str]]) -> np.ndarray:
    """One row of :data:`SENTENCE_FEATURES` per candidate, as float32."""
    if not candidates:
        return np.zeros((0, len(SENTENCE_FEATURES)), dtype=np.float32)
    kind = answer_type(question)
    cue = answer_cue(question)
    asked = question_words(question)
    wanted = set(terms(question))
    best_semantic, best_lexical = max(semantic), max(lexical)
    per_article = Counter(c.hit.article.id for c in candidates)
    titles: dict[str, float] = {}
    rows = []
    for c, sim, lex in zip(candidates, semantic, lexical):
        article = c.hit.article
        if article.id not in titles:
            titles[article.id] = len(wanted & set(terms(article.title))) / len(wanted) if wanted else 0.0
        names = _novel(_NAME, c.text, asked, skip=_CAPITALISED_STOPWORDS)
        numbers = _novel(_NUMBER, c.text, asked)
        day = stored_day(article.published_at)
        age = max((as_of - day).days, 0) if day and as_of else None
        rows.append((
            sim, best_semantic - sim, lex, best_lexical - lex,
            math.log(max(c.hit.rank, 1)),
            _TYPE_CODE[kind] if kind else 0,
            float(bool(cue and cue.search(c.text))),
            float(_type_match(kind, c.text, asked, names, numbers)),
            min(names, 5), min(numbers, 5),
            float(bool(_AMOUNT.search(c.text))),
            float(bool(_PERCENT.search(c.text))),
            float(bool(_DATE.search(c.text))),
            float(c.speaker is not None),
            c.index_in_passage,
            math.log1p(c.hit.chunk.position),
            math.log(max(len(c.text.split()), 1)),
            titles[article.id],
            per_article[article.id],
            math.log1p(age) if age is not None else -1.0,
        ))
    return np.asarray(rows, dtype=np.float32)


def _novel(pattern: re.Pattern[str], text: str, asked: set[str], skip: frozenset[str] = frozenset()) -> int:
    """How many distinct matches of ``pattern`` in ``text`` the question's words lack."""
    found = {m.group(0).rstrip(".,'’").casefold() for m in pattern.finditer(text)}
    return len({w for w in found if w and w not in asked and w not in skip})


def _type_match(kind: str | None, text: str, asked: set[str], names: int, numbers: int) -> bool:
    """Whether ``text`` names something new of the kind the question asks for."""
    if kind == "person":
        return any(not set(m.group(0).casefold().split()) <= asked for m in _PERSON_HINT.finditer(text))
    if kind == "organization":
        return any(m.group(0).casefold() not in asked for m in _ORG_HINT.finditer(text))
    if kind == "place":
        return names > 0 and _PLACE_HINT.search(text) is not None
    if kind == "number":
        return numbers > 0 or bool(re.search(r"\b(?:one|two|three|four|five|six|seven|eight|nine|ten|dozens?|"
                                             r"hundreds?|thousands?|millions?)\b", text, re.I))
    if kind == "amount":
        return _AMOUNT.search(text) is not None
    if kind == "date":
        return _DATE.search(text) is not None
    if kind == "reason":
        return _REASON_CUE.search(text) is not None
    return names > 0 or numbers > 0


class SentenceRanker(Booster):
    """A trained model that gives each candidate sentence the probability it holds the answer,
    with the two settings fitted beside it on the training questions (read from the card)."""

    @classmethod
    def load(cls, folder: Path | None = None) -> SentenceRanker:  # type: ignore[override]
        """The model in ``folder`` (None: the one that ships); ModelError saying what is wrong."""
        model = Booster.load(folder or DEFAULT_SENTENCE_RANKER, "sentence ranker", SENTENCE_RANKER_FORMAT,
                             SENTENCE_FEATURES, "retrain it with 'python bench/train_sentence_ranker.py', "
                             "or use --ranker fusion")
        return cls(model.booster, model.card, model.folder)

    @property
    def max_candidates(self) -> int:
        """How many sentences the answerer embeds and this model scores (as in training)."""
        return int(self.card["max_candidates"])

    @property
    def keep_ratio(self) -> float:
        """A sentence joins the answer at this share of the best one's probability."""
        return float(self.card["keep_ratio"])
