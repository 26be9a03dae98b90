"""The extractive answerer: an answer made only of the retrieved articles' own sentences.

It cannot invent anything, because every sentence of the answer is a span of a stored article,
and it cites that span by offsets. Steps:

1. candidates: the sentences of the retrieved passages, with the speaker stored for each;
2. score: embedding similarity to the question, overlap of the question's content words, the
   passage's retrieval rank, and, for "What did X say ...?" questions, whether X said it;
3. select: the best sentence, plus up to two more that score nearly as well, skipping near-copies
   (syndicated stories), which are cited together with the sentence they repeat instead;
4. abstain when even the best sentence is a poor match (threshold calibrated on data, see
   BENCHMARKS.md).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Callable, Sequence

from rag.answer.citing import CitationNumbers, passage_sentences, quotes_by_article, speaker_at
from rag.embed import Embedder
from rag.models import Answer, Citation, Hit, Quote
from rag.text.quotes import asked_speaker, same_person
from rag.text.words import QUESTION_WORDS, stems

ABSTAIN_TEXT = "The indexed news does not cover this question. The closest passages are listed below."

# Stemmed once here: a question's words arrive as stems (rag.text.words.content_words).
_QUESTION_WORDS = stems(QUESTION_WORDS)


@dataclass(frozen=True)
class AnswerSettings:
    """Knobs of the extractive answerer. Defaults are tuned on RealTime QA (BENCHMARKS.md)."""

    max_sentences: int = 3
    # A sentence joins the answer only if it scores at least this share of the best one.
    keep_ratio: float = 0.65
    # Abstain when the best sentence's relevance is below this (calibrated, see BENCHMARKS.md).
    # 0.40: on RealTime QA questions it keeps the answerable ones as 0.32 did (2% abstained) and
    # abstains on 77% of unanswerable ones instead of 46% (bench/calibrate_abstention.py).
    abstain_below: float = 0.40
    weight_semantic: float = 0.55
    weight_lexical: float = 0.30
    weight_rank: float = 0.15
    speaker_bonus: float = 0.25
    # A sentence shaped like the answer the question wants (a cause for "why", a number for
    # "how many", ...) gains this much.
    cue_bonus: float = 0.1
    # A sentence naming things the question does not (a name, a number) gains up to this much:
    # "Which band will reunite?" is answered by the sentence that names the band, not by the
    # one that repeats the question's words. On all 732 RealTime QA questions 0.1 lifts
    # accuracy 0.404 -> 0.422 (0.05: 0.411, 0.15: 0.421) and leaves abstentions alone,
    # because it is left out of the shortlist and of the decision to abstain.
    novelty_bonus: float = 0.1
    near_duplicate: float = 0.8
    min_words: int = 4
    max_words: int = 90
    # Only this many sentences, pre-ranked by word overlap, speaker and passage rank, are
    # embedded: embedding every sentence of every passage dominated the answer latency. On 150
    # RealTime QA questions 16 answers exactly as 32 did in 44% of the time; 12 loses accuracy
    # (bench/answer_sweep.py, BENCHMARKS.md).
    max_candidates: int = 16


@dataclass
class _Candidate:
    hit: Hit
    start: int
    end: int
    text: str
    speaker: str | None
    relevance: float = 0.0
    novelty: float = 0.0
    score: float = 0.0


class ExtractiveAnswerer:
    """Composes cited answers from retrieved passages; needs only an embedder."""

    def __init__(self, embedder: Embedder, terms: Callable[[str], list[str]],
                 settings: AnswerSettings = AnswerSettings()) -> None:
        self.embedder = embedder
        self.terms = terms
        self.settings = settings

    def answer(self, question: str, hits: Sequence[Hit], quotes: Sequence[Quote],
               as_of: str | None = None) -> Answer:
        """An Answer citing exact spans of ``hits``' articles, or an abstention."""
        candidates = self._candidates(hits, quotes)
        if not candidates:
            return Answer(question, ABSTAIN_TEXT, True, [], list(hits), as_of)
        candidates = self._score(question, candidates)
        best = max(candidates, key=lambda c: c.score)
        # Whether to answer at all is judged without the novelty bonus: naming things makes a
        # sentence a likelier answer, not a better match for the question.
        anchor = max(candidates, key=lambda c: c.score - c.novelty)
        if anchor.relevance < self.settings.abstain_below:
            return Answer(question, ABSTAIN_TEXT, True, [], list(hits), as_of)
        groups = self._select(candidates, best)
        text, citations = _compose(groups)
        return Answer(question, text, False, citations, list(hits), as_of)

    # -- steps ------------------------------------------------------------------------------
    def _candidates(self, hits: Sequence[Hit], quotes: Sequence[Quote]) -> list[_Candidate]:
        speakers = quotes_by_article(quotes)
        s = self.settings
        return [_Candidate(p.hit, p.start, p.end, p.text,
                           speaker_at(speakers.get(p.hit.article.id, ()), p.start, p.end))
                for p in passage_sentences(hits, s.min_words, s.max_words, distinct=True)
                if re.search(r"[a-z]", p.text)]

    def _score(self, question: str, candidates: list[_Candidate]) -> list[_Candidate]:
        """Score candidates in place; returns the ones that were scored (the pre-ranked top)."""
        s = self.settings
        wanted = {t for t in self.terms(question) if t not in _QUESTION_WORDS}
        asked = asked_speaker(question)
        by_asked = bool(asked) and any(same_person(asked or "", c.speaker) for c in candidates)
        cue = answer_cue(question)
        asked_words = {w.casefold() for w in _WORD.findall(question)}
        novelty_bonus = s.novelty_bonus if _REASON_OR_MANNER.search(question) is None else 0.0
        lexical: dict[int, float] = {}
        for c in candidates:
            overlap = len(wanted & set(self.terms(c.text))) / len(wanted) if wanted else 0.0
            lexical[id(c)] = overlap
            c.score = s.weight_lexical * overlap + s.weight_rank / c.hit.rank
            if by_asked:
                c.score += s.speaker_bonus if same_person(asked or "", c.speaker) else -s.speaker_bonus
        shortlist = sorted(candidates, key=lambda c: -c.score)[: s.max_candidates]
        vectors = self.embedder.embed_batch([question] + [c.text for c in shortlist])
        semantic = vectors[1:] @ vectors[0]
        for c, sim in zip(shortlist, semantic.tolist()):
            c.relevance = s.weight_semantic * sim + s.weight_lexical * lexical[id(c)]
            if cue is not None and cue.search(c.text):
                c.relevance += s.cue_bonus
            if novelty_bonus:
                c.novelty = novelty_bonus * novelty(c.text, asked_words, self.terms)
            c.score = c.relevance + s.weight_rank / c.hit.rank + c.novelty
            if by_asked:
                if same_person(asked or "", c.speaker):
                    c.score += s.speaker_bonus
                else:
                    # Someone else's words never answer "what did X say", and narrative lines
                    # only do when X said nothing relevant.
                    c.score -= 1.0 if c.speaker else s.speaker_bonus
        return shortlist

    def _select(self, candidates: list[_Candidate], best: _Candidate) -> list[list[_Candidate]]:
        s = self.settings
        ranked = sorted(candidates, key=lambda c: (-c.score, c.hit.rank, c.start))
        groups: list[list[_Candidate]] = []
        signatures: list[set[str]] = []
        for c in ranked:
            if c.score < best.score * s.keep_ratio or c.score <= 0:
                break
            sig = _signature(c.text)
            for group, other in zip(groups, signatures):
                if _jaccard(sig, other) >= s.near_duplicate:
                    if all(g.hit.article.id != c.hit.article.id for g in group):
                        group.append(c)
                    break
            else:
                if len(groups) < s.max_sentences:
                    groups.append([c])
                    signatures.append(sig)
        return groups


_CUES: list[tuple[re.Pattern[str], re.Pattern[str]]] = [
    (re.compile(r"^\s*why\b|\bwhat (?:caused|led to)\b|\bfor what reason\b", re.I),
     re.compile(r"\b(?:because|due to|after|following|amid|as a result|caused by|over|since|so that|in order to)\b", re.I)),
    (re.compile(r"\bhow (?:many|much|long|old|far)\b|\bwhat (?:percentage|share|number|amount)\b", re.I),
     re.compile(r"\d|\b(?:one|two|three|four|five|six|seven|eight|nine|ten|dozen|hundred|thousand|million|billion|trillion)\b", re.I)),
    (re.compile(r"^\s*when\b|\bwhat (?:year|day|date|month)\b", re.I),
     re.compile(r"\b(?:(?:19|20)\d\d|January|February|March|April|May|June|July|August|September|October|November|December|Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday|yesterday|today)\b")),
    (re.compile(r"^\s*(?:who|whom)\b|\bwhich (?:person|leader|company|country|team)\b", re.I),
     re.compile(r"\b[A-Z][a-z]+ [A-Z][a-z]+\b")),
]


def answer_cue(question: str) -> re.Pattern[str] | None:
    """A pattern that sentences answering this kind of question tend to match, if any.

    >>> answer_cue("Why was the plant closed?").search("It shut after bacteria were found") is not None
    True
    """
    for asks, answers in _CUES:
        if asks.search(question):
            return answers
    return None


# Questions answered by a reason (the "why" cue's questions) or a manner, not by a name or a
# number: no novelty bonus.
_REASON_OR_MANNER = re.compile(_CUES[0][0].pattern + r"|^\s*how\b(?!\s+(?:many|much|long|old|far|often|big))",
                               re.I)
_WORD = re.compile(r"[\w'’-]+")
_NAME_OR_NUMBER = re.compile(r"\b(?:[A-Z][\w'’-]*|\d[\d,.]*%?)")


def novelty(sentence: str, asked_words: set[str], terms: Callable[[str], list[str]]) -> float:
    """0, 0.5 or 1: how many names or numbers (up to two) ``sentence`` has that the question,
    given as its casefolded words, does not; capitalised stopwords ("The") do not count.

    >>> novelty("Blink-182 is coming to a city near you.", {"which", "band", "will", "tour"}, str.split)
    0.5
    """
    found = set()
    for m in _NAME_OR_NUMBER.finditer(sentence):
        word = m.group(0).rstrip(".,")
        key = word.casefold()
        if key and key not in asked_words and (word[0].isdigit() or terms(word)):
            found.add(key)
            if len(found) == 2:
                return 1.0
    return len(found) / 2


def _signature(text: str) -> set[str]:
    norm = unicodedata.normalize("NFKC", text).casefold()
    return set(re.findall(r"\w+", norm))


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def _compose(groups: list[list[_Candidate]]) -> tuple[str, list[Citation]]:
    """Answer text, one sentence per group cited to every member, and the citations."""
    numbers = CitationNumbers()
    parts: list[str] = []
    for group in groups:
        markers = "".join(f"[{numbers.cite(c.hit.article, c.start, c.end, c.speaker)}]" for c in group)
        parts.append(" ".join(group[0].text.split()) + " " + markers)
    return " ".join(parts), numbers.citations
