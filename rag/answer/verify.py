"""Checking a written answer, sentence by sentence, against the passages it was written from.

A sentence is *supported* when one sentence of a passage says the same thing closely enough:

- ``lexical``: the share of the sentence's content words (stemmed, stopwords out) that the
  passage sentence contains, with the words that merely repeat the question counting half;
- ``semantic``: cosine similarity of the two sentences' embeddings (all-MiniLM-L6-v2);
- ``score = 0.5 * lexical + 0.5 * semantic``, at least ``threshold`` (0.7);
- and the facts must match: every number in the sentence (digits or words: "third", "two
  dozen") is in the passage sentence, and every name (a capitalised run: "Tokyo", "Minjee Lee")
  is in the passage and, at least in part, in the passage sentence or the article's title;
- a question, the question restated with its blank unfilled ("A pumpkin in which state ..."),
  and a sentence of fewer than two content words are never supported.

The threshold and weights were chosen on 88 hand-labelled (sentence, passage sentence) pairs
written by SmolLM2-135M for RealTime QA questions kept apart from the measured ones
(bench/results/llm_verifier_labels.json, ``bench/llm_eval.py calibrate``; BENCHMARKS.md).
The passages a sentence cites are tried first; when none supports it, every other passage is
tried, and the sentence is re-cited to the best one.

>>> claims = parse_claims("Hong Kong tops the ranking [2]. New York is second.[1]")
>>> [(c.text, c.markers) for c in claims]
[('Hong Kong tops the ranking.', (2,)), ('New York is second.', (1,))]
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from rag.answer.citing import PassageSentence, passage_sentences
from rag.embed import Embedder
from rag.models import Hit
from rag.text.sentences import split_sentences
from rag.text.words import CLAIMLESS_WORDS, SENTENCE_OPENERS, content_words, stems

__all__ = [
    "Claim",
    "Evidence",
    "Support",
    "Verdict",
    "Verifier",
    "VerifySettings",
    "echoes_question",
    "evidence_for",
    "parse_claims",
]

# "[1]", "[1, 3]", "[1][2]", "[Passage 2]", "[passage 1, 2]", "(Passage 3)" and "【1】".
_MARKER = re.compile(r"[\[\(\u3010]\s*(?:passages?\s*)?(\d{1,3}(?:\s*(?:,|and|&|-)\s*(?:passage\s*)?\d{1,3})*)"
                     r"\s*[\]\)\u3011]", re.I)
_ONLY_MARKERS = re.compile(rf"^(?:\s*(?:{_MARKER.pattern})[.,;:]?)+\s*$", re.I)
_LIST_LEAD = re.compile(r"^\s*(?:[-*\u2022]\s+|\d{1,2}[.)]\s+|#+\s+|answer:\s*)", re.I)
_NUMBER = re.compile(r"\d+(?:[.,]\d+)*")

# Stemmed once here: a claim's words arrive as stems (rag.text.words.content_words).
_FUNCTION = stems(CLAIMLESS_WORDS)


@dataclass(frozen=True)
class VerifySettings:
    """Knobs of the verifier; the defaults are calibrated in BENCHMARKS.md."""

    threshold: float = 0.7
    weight_semantic: float = 0.5
    # Question words in a sentence count this much: restating the question proves nothing.
    question_term_weight: float = 0.5
    # Sentences with fewer content words than this ("I'm sorry.", "Yes.") are never supported.
    min_terms: int = 2
    min_evidence_words: int = 3


@dataclass(frozen=True)
class Claim:
    """One sentence of a written answer: text without markers, and the passage numbers it cited."""

    text: str
    markers: tuple[int, ...] = ()


# A passage sentence a claim may rest on: the same walk the extractive answerer draws from.
Evidence = PassageSentence


@dataclass(frozen=True)
class Support:
    evidence: Evidence
    score: float
    lexical: float
    semantic: float
    numbers_ok: bool
    names_ok: bool = True

    @property
    def facts_ok(self) -> bool:
        return self.numbers_ok and self.names_ok


@dataclass(frozen=True)
class Verdict:
    """What the check found for one claim.

    ``support`` holds the passage sentences that back it (empty: unsupported); ``best`` is the
    closest passage sentence anywhere, supported or not; ``recited`` is true when the backing
    comes from a passage the claim did not cite.
    """

    claim: Claim
    support: tuple[Support, ...] = ()
    best: Support | None = None
    recited: bool = False

    @property
    def supported(self) -> bool:
        return bool(self.support)


def parse_claims(text: str) -> list[Claim]:
    """The sentences of a model's answer, each with the ``[n]`` markers that belong to it.

    A marker that trails a sentence's full stop ("... city. [1]"), or stands on its own, belongs
    to the sentence before it; list bullets and markdown emphasis are dropped.

    >>> [(c.text, c.markers) for c in parse_claims("- **Seoul** won [1, 3].\\n[2]")]
    [('Seoul won.', (1, 3, 2))]
    """
    text = text.replace("**", "").replace("__", "")
    pieces: list[tuple[str, list[int]]] = []
    for start, end in split_sentences(text):
        raw = text[start:end]
        found = _markers(raw)
        if _ONLY_MARKERS.match(raw):
            if pieces:
                pieces[-1][1].extend(found)
            continue
        lead = re.match(rf"^(?:\s*{_MARKER.pattern})+", raw, re.I)
        if lead and pieces and not pieces[-1][1]:
            # "... city. [1] New York is second.": the leading [1] closes the sentence before.
            lead_numbers = _markers(lead.group())
            pieces[-1][1].extend(lead_numbers)
            found = found[len(lead_numbers):]
        pieces.append((_clean(raw), found))
    claims = []
    for sentence, numbers in pieces:
        if sentence:
            claims.append(Claim(sentence, tuple(dict.fromkeys(numbers))))
    return claims


def _markers(text: str) -> list[int]:
    numbers: list[int] = []
    for m in _MARKER.finditer(text):
        for a, dash, b in re.findall(r"(\d+)(?:\s*(-)\s*(?:passage\s*)?(\d+))?", m.group(1), re.I):
            if dash and int(b) - int(a) < 10:
                numbers.extend(range(int(a), int(b) + 1))
            else:
                numbers.append(int(a))
    return numbers


def _clean(raw: str) -> str:
    """The sentence without markers, bullets or doubled spaces, ending in its punctuation."""
    sentence = _MARKER.sub(" ", raw)
    sentence = _LIST_LEAD.sub("", sentence)
    sentence = " ".join(sentence.split())
    sentence = re.sub(r"\s+([.,;:!?])", r"\1", sentence).strip(" ,;:")
    if not re.search(r"\w", sentence):
        return ""
    return sentence


def evidence_for(hits: Sequence[Hit], min_words: int = 3) -> list[Evidence]:
    """Every sentence of every passage, numbered by passage (1-based, in ``hits`` order).

    A sentence two passages share is evidence in both: a claim may cite either.
    """
    return list(passage_sentences(hits, min_words))


class Verifier:
    """Aligns each claim to its best-supporting passage sentence (lexical + embedding)."""

    def __init__(self, embedder: Embedder, terms: Callable[[str], list[str]] | None = None,
                 settings: VerifySettings = VerifySettings()) -> None:
        if terms is None:
            terms = content_words
        self.embedder = embedder
        self.terms = terms
        self.settings = settings

    def check(self, claims: Sequence[Claim], evidence: Sequence[Evidence], passages: int,
              question: str = "") -> list[Verdict]:
        """One Verdict per claim, in order. ``passages`` is how many were numbered for the model."""
        if not claims:
            return []
        if not evidence:
            return [Verdict(c) for c in claims]
        scores = self.score(claims, evidence, question)
        return [self._decide(c, row, passages) for c, row in zip(claims, scores)]

    def score(self, claims: Sequence[Claim], evidence: Sequence[Evidence],
              question: str = "") -> list[list[Support]]:
        """Every claim against every evidence sentence."""
        s = self.settings
        vectors = self.embedder.embed_batch([c.text for c in claims] + [e.text for e in evidence])
        semantic = vectors[: len(claims)] @ vectors[len(claims):].T
        asked = set(self.terms(question)) if question else set()
        evidence_terms = [set(self.terms(e.text)) for e in evidence]
        evidence_numbers = [_numbers(e.text) for e in evidence]
        passage_terms: dict[int, set[str]] = {}
        title_terms: dict[int, set[str]] = {}
        for e in evidence:
            if e.passage not in passage_terms:
                title_terms[e.passage] = set(self.terms(e.hit.article.title))
                passage_terms[e.passage] = title_terms[e.passage] | set(self.terms(e.hit.chunk.text))
        lowercase = set(re.findall(r"\b[a-z][a-z'\u2019-]*\b", " ".join(e.text for e in evidence)))
        rows: list[list[Support]] = []
        for i, claim in enumerate(claims):
            wanted = _content(self.terms(claim.text))
            weights = {t: (s.question_term_weight if t in asked else 1.0) for t in wanted}
            total = sum(weights.values())
            numbers = _numbers(claim.text)
            # A question asserts nothing, nor does the question restated with its blank unfilled.
            asks = claim.text.rstrip('"\u201d\')').endswith("?") or echoes_question(claim.text, question)
            names = [set(_content(self.terms(run))) for run in _name_runs(claim.text, lowercase)]
            names = [n for n in names if n]
            row = []
            for j, e in enumerate(evidence):
                if len(wanted) < s.min_terms or total == 0:
                    lexical = 0.0
                else:
                    lexical = sum(w for t, w in weights.items() if t in evidence_terms[j]) / total
                sim = float(np.clip(semantic[i, j], -1.0, 1.0))
                score = s.weight_semantic * sim + (1 - s.weight_semantic) * lexical
                if len(wanted) < s.min_terms or asks:
                    score = min(score, 0.0)
                # Every name must be in the passage, and in the sentence (at least partly: "Minjee
                # Lee won" is backed by "Lee won" in a passage that names Minjee Lee) or the title
                # (what the article is about: "The facility was shut" in a story titled "Abbott ...").
                names_ok = all(n <= passage_terms[e.passage]
                               and (n & evidence_terms[j] or n <= title_terms[e.passage]) for n in names)
                row.append(Support(e, round(score, 4), round(lexical, 4), round(sim, 4),
                                   numbers <= evidence_numbers[j], names_ok))
            rows.append(row)
        return rows

    def _decide(self, claim: Claim, row: list[Support], passages: int) -> Verdict:
        threshold = self.settings.threshold
        ok = [s for s in row if s.facts_ok and s.score >= threshold]
        best_any = max(row, key=_rank)
        cited = [n for n in claim.markers if 1 <= n <= passages]
        backing: list[Support] = []
        for n in cited:
            in_passage = [s for s in ok if s.evidence.passage == n]
            if in_passage:
                backing.append(max(in_passage, key=_rank))
        if backing:
            return Verdict(claim, tuple(backing), max(backing, key=_rank), recited=False)
        if ok:
            best = max(ok, key=_rank)
            return Verdict(claim, (best,), best, recited=True)
        return Verdict(claim, (), best_any, recited=False)


def _rank(s: Support) -> tuple[bool, float, int]:
    return (s.facts_ok, s.score, -s.evidence.passage)


_WH = re.compile(r"\b(?:what|which|who|whom|whose|where|when|why|how (?:much|many|long|old|far))\b", re.I)


def echoes_question(sentence: str, question: str) -> bool:
    """Whether ``sentence`` repeats the question's wh-word with a word next to it there.

    Small models often answer "Which state grew the pumpkin?" with "A pumpkin in which state
    set a record": the question again, blank unfilled, which passage words match very well.

    >>> echoes_question("A pumpkin in which state set a record.", "A pumpkin in which state set a record?")
    True
    >>> echoes_question("Hong Kong, which tops the list, is pricey.", "Which city is the priciest?")
    False
    """
    words = re.findall(r"[\w'\u2019]+", question.lower())
    text = " ".join(re.findall(r"[\w'\u2019]+", sentence.lower()))
    for m in _WH.finditer(" ".join(words)):
        before = " ".join(words).count(" ", 0, m.start())
        wh = m.group().split()
        after = before + len(wh)
        pairs = []
        if before > 0:
            pairs.append(" ".join([words[before - 1], *wh]))
        if after < len(words):
            pairs.append(" ".join([*wh, words[after]]))
        if any(re.search(rf"\b{re.escape(p)}\b", text) for p in pairs):
            return True
    return False


_CAPITALISED = re.compile(r"[A-Z][\w'\u2019.&-]*(?:\s+[A-Z][\w'\u2019.&-]*)*")


def _name_runs(sentence: str, lowercase: set[str]) -> list[str]:
    """Runs of capitalised words: names, places, organisations.

    A run that opens the sentence counts only when it is more than one word or its word never
    appears in lower case in the passages ("Tokyo fell" names Tokyo; "Rates rose" names nothing).

    >>> _name_runs("Tokyo fell while Hong Kong and the FDA rose.", {"fell"})
    ['Tokyo', 'Hong Kong', 'FDA']
    >>> _name_runs("Rates rose in Japan.", {"rates"})
    ['Japan']
    """
    runs = []
    for m in _CAPITALISED.finditer(sentence):
        run = m.group().rstrip(".")
        if m.start() == len(sentence) - len(sentence.lstrip(" \"'\u201c(")):
            words = run.split()
            word = re.sub(r"['\u2019]s$", "", words[0].lower())
            if len(words) == 1 and (word in lowercase or word in SENTENCE_OPENERS):
                continue
        runs.append(run)
    return runs


def _content(tokens: list[str]) -> list[str]:
    return list(dict.fromkeys(t for t in tokens if t not in _FUNCTION and not t.isdigit()))


def _numbers(text: str) -> set[str]:
    """The numbers a text states: digits (commas dropped, so "1,000" is "1000") and number words.

    >>> sorted(_numbers("For the third year, 1,000 people and two dozen cars"))
    ['1000', 'dozen', 'third', 'two']
    """
    found = {m.replace(",", "").rstrip(".") for m in _NUMBER.findall(text)}
    found.update(w for w in re.findall(r"[a-z]+", text.lower()) if w in _NUMBER_WORDS)
    return found


# "one" is left out: it is more often a pronoun ("one of the ...") than a count.
_NUMBER_WORDS = frozenset(
    "two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen sixteen "
    "seventeen eighteen nineteen twenty thirty forty fifty sixty seventy eighty ninety hundred "
    "thousand million billion trillion dozen half quarter first second third fourth fifth sixth "
    "seventh eighth ninth tenth".split()
)

