"""The extractive answerer: an answer made only of the retrieved articles' own sentences.

It cannot invent anything, because every sentence of the answer is a span of a stored article,
and it cites that span by offsets. Steps:

1. candidates: the sentences of the retrieved passages, with the speaker stored for each;
2. score: embedding similarity to the question, overlap of the question's content words, the
   passage's retrieval rank, and, for "What did X say ...?" questions, whether X said it (one
   person's words only, when X fits several people);
3. select: the best sentence, plus up to two more that score nearly as well, skipping near-copies
   (syndicated stories), which are cited together with the sentence they repeat instead;
4. abstain when even the best sentence is a poor match (threshold calibrated on data, see
   BENCHMARKS.md). "What did X say about Y?", answered from X's own quotes, is judged on X's
   sentences and the stories they stand in: X is quoted when one of X's sentences matches the
   question or stands in a passage close to Y (``topic``, :func:`rag.search.topic.closeness`),
   and X's sentences from such passages are preferred. A headline-like Y shares few words with
   the sentence that answers it, so the sentence's relevance alone declined half of the BBC
   speaker questions.
"""

from __future__ import annotations

import re
import unicodedata
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np

from rag.answer.citing import CitationNumbers, passage_sentences, quotes_by_article, speaker_at
from rag.answer.cross_encoder import SentenceCrossEncoder, pair_text
from rag.answer.sentence_rank import SentenceCandidate, SentenceRanker, sentence_features
from rag.embed import Embedder
from rag.models import Answer, Citation, Hit, Quote
from rag.text.cues import answer_cue, asks_reason_or_manner, novelty, question_words
from rag.text.dates import stored_day
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
    # "What did X say about Y?" (``topic`` given) with X's quotes among the passages is judged on
    # X's own sentences: it is answered when one of them is relevant (abstain_below) or stands in
    # a passage at least speaker_topic_min close to Y; else "No statement by X about this". X's
    # sentences also gain speaker_topic_weight times their passage's closeness, so X is quoted
    # from the story about Y. Both fitted on the calibration half of the BBC speaker questions
    # (bench/speaker_eval.py calibrate, BENCHMARKS.md "Who said what"). Questions without a
    # topic are decided as any other (abstain_below on the best-scored sentence).
    speaker_topic_min: float = 0.43
    speaker_topic_weight: float = 1.0
    # Only this many sentences, pre-ranked by word overlap, speaker and passage rank, are
    # embedded: embedding every sentence of every passage dominated the answer latency. On 150
    # RealTime QA questions 16 answers exactly as 32 did in 44% of the time; 12 loses accuracy
    # (bench/answer_sweep.py, BENCHMARKS.md).
    max_candidates: int = 16


class ExtractiveAnswerer:
    """Composes cited answers from retrieved passages; needs only an embedder."""

    def __init__(self, embedder: Embedder, terms: Callable[[str], list[str]],
                 settings: AnswerSettings = AnswerSettings(), ranker: SentenceRanker | None = None,
                 cross_encoder: SentenceCrossEncoder | None = None) -> None:
        self.embedder = embedder
        self.terms = terms
        self.settings = settings
        # The learned sentence ranker scores every question but "What did X say?"; None: the
        # hand-weighted score for all.
        self.ranker = ranker
        # Adds its weighted probability to the hand-weighted score of every question but "What
        # did X say?" (whose answer is whatever X said).
        self.cross_encoder = cross_encoder

    def answer(self, question: str, hits: Sequence[Hit], quotes: Sequence[Quote],
               as_of: str | None = None, speaker: str | None = None,
               topic: Sequence[float] | None = None) -> Answer:
        """An Answer citing exact spans of ``hits``' articles, or an abstention.

        ``speaker``: for "What did X say ...?", the person X is, by full name, when the caller
        has resolved it ("Ann Taylor" for "Taylor"); default: the name the question gives.
        ``topic``: for "What did X say about Y?", how close each of ``hits`` is to Y, in
        ``hits`` order (:func:`rag.search.topic.closeness`); None: decide on relevance alone.
        """
        candidates = self._candidates(hits, quotes)
        if not candidates:
            return Answer(question, ABSTAIN_TEXT, True, [], list(hits), as_of)
        closeness = {h.chunk.id: t for h, t in zip(hits, topic)} if topic is not None else None
        candidates, learned = self._score(question, candidates, speaker, closeness, as_of)
        theirs = self._theirs(question, candidates, speaker)
        if closeness is not None and theirs:
            # "What did X say about Y?" with X quoted here: only X's words may answer, so it is
            # judged on them: one of X's sentences matches the question, or stands in a story
            # about Y.
            relevant = max(c.relevance for c in theirs) >= self.settings.abstain_below
            on_topic = max(closeness.get(c.hit.chunk.id, 0.0) for c in theirs) >= self.settings.speaker_topic_min
            if not (relevant or on_topic):
                return Answer(question, ABSTAIN_TEXT, True, [], list(hits), as_of)
        else:
            # Whether to answer at all is judged without the novelty and cross-encoder bonuses:
            # they tell which sentence is the likelier answer, not whether the news covers the
            # question (the threshold was calibrated without them).
            anchor = max(candidates, key=lambda c: c.score - c.novelty - c.answer_bonus)
            if anchor.relevance < self.settings.abstain_below:
                return Answer(question, ABSTAIN_TEXT, True, [], list(hits), as_of)
        keep_ratio, min_relevance = self.settings.keep_ratio, None
        if learned:
            # The model chooses the sentences; whether to answer was decided above, as without
            # it (its probability tells an answer from its neighbours, not news about the
            # question from news about something else: bench/train_sentence_ranker.py). Its
            # probabilities are low and close together, so a share of the best one alone would
            # let sentences about something else in: each must also be relevant itself.
            assert self.ranker is not None
            for c in candidates:
                c.score = c.learned
            keep_ratio, min_relevance = self.ranker.keep_ratio, self.settings.abstain_below
        best = max(candidates, key=lambda c: c.score)
        groups = self._select(candidates, best, keep_ratio, min_relevance)
        text, citations = _compose(groups)
        return Answer(question, text, False, citations, list(hits), as_of)

    # -- steps ------------------------------------------------------------------------------
    def _candidates(self, hits: Sequence[Hit], quotes: Sequence[Quote]) -> list[SentenceCandidate]:
        speakers = quotes_by_article(quotes)
        s = self.settings
        out: list[SentenceCandidate] = []
        seen_in: Counter[int] = Counter()
        for p in passage_sentences(hits, s.min_words, s.max_words, distinct=True):
            if re.search(r"[a-z]", p.text):
                out.append(SentenceCandidate(p.hit, p.start, p.end, p.text,
                                             speaker_at(speakers.get(p.hit.article.id, ()), p.start, p.end),
                                             index_in_passage=seen_in[p.passage]))
                seen_in[p.passage] += 1
        return out

    def features(self, question: str, hits: Sequence[Hit], quotes: Sequence[Quote],
                 as_of: str | None = None) -> tuple[list[SentenceCandidate], np.ndarray]:
        """The shortlisted sentences and their :data:`SENTENCE_FEATURES` rows, as the learned
        sentence ranker sees them (for training it: ``bench/train_sentence_ranker.py``)."""
        candidates = self._candidates(hits, quotes)
        if not candidates:
            return [], sentence_features(question, [], [], [], None, self.terms)
        shortlist, semantic, lexical = self._shortlist(question, candidates)
        return shortlist, sentence_features(question, shortlist, semantic, lexical, stored_day(as_of), self.terms)

    def _shortlist(self, question: str, candidates: list[SentenceCandidate], speaker: str | None = None,
                   on_topic: dict[int, float] | None = None) -> tuple[list[SentenceCandidate], list[float], list[float]]:
        """The candidates worth embedding, pre-ranked by word overlap, passage rank, speaker and
        topic; with each one's similarity to the question and word overlap."""
        s = self.settings
        wanted = {t for t in self.terms(question) if t not in _QUESTION_WORDS}
        on_topic = on_topic or {}
        lexical: dict[int, float] = {}
        for c in candidates:
            overlap = len(wanted & set(self.terms(c.text))) / len(wanted) if wanted else 0.0
            lexical[id(c)] = overlap
            c.score = s.weight_lexical * overlap + s.weight_rank / c.hit.rank + on_topic.get(id(c), 0.0)
            if speaker is not None:
                c.score += s.speaker_bonus if same_person(speaker, c.speaker) else -s.speaker_bonus
        # The learned ranker is trained on a shortlist of its own size (its card says which).
        size = self.ranker.max_candidates if self.ranker is not None else s.max_candidates
        shortlist = sorted(candidates, key=lambda c: -c.score)[:size]
        vectors = self.embedder.embed_batch([question] + [c.text for c in shortlist])
        semantic = (vectors[1:] @ vectors[0]).tolist()
        return shortlist, semantic, [lexical[id(c)] for c in shortlist]

    def _score(self, question: str, candidates: list[SentenceCandidate], speaker: str | None = None,
               closeness: dict[str, float] | None = None,
               as_of: str | None = None) -> tuple[list[SentenceCandidate], bool]:
        """Score candidates in place; returns the ones that were scored (the pre-ranked top),
        and whether the learned ranker scored them too (``learned``, a probability).

        ``closeness``: by chunk id, how close each passage is to the question's topic.
        """
        s = self.settings
        asked = speaker or asked_speaker(question)
        by_asked = bool(asked) and any(same_person(asked or "", c.speaker) for c in candidates)
        # X's sentences from the stories about Y first (speaker questions with a topic only).
        on_topic: dict[int, float] = {}
        if by_asked and closeness is not None:
            on_topic = {id(c): s.speaker_topic_weight * closeness.get(c.hit.chunk.id, 0.0)
                        for c in candidates if same_person(asked or "", c.speaker)}
        shortlist, semantic, lexical = self._shortlist(question, candidates, asked if by_asked else None, on_topic)
        cue = answer_cue(question)
        for c, sim, overlap in zip(shortlist, semantic, lexical):
            c.relevance = s.weight_semantic * sim + s.weight_lexical * overlap
            if cue is not None and cue.search(c.text):
                c.relevance += s.cue_bonus
        asked_words = question_words(question)
        novelty_bonus = s.novelty_bonus if not asks_reason_or_manner(question) else 0.0
        for c in shortlist:
            if novelty_bonus:
                c.novelty = novelty_bonus * novelty(c.text, asked_words, self.terms)
            c.score = c.relevance + s.weight_rank / c.hit.rank + c.novelty + on_topic.get(id(c), 0.0)
            if by_asked:
                if same_person(asked or "", c.speaker):
                    c.score += s.speaker_bonus
                else:
                    # Someone else's words never answer "what did X say", and narrative lines
                    # only do when X said nothing relevant.
                    c.score -= 1.0 if c.speaker else s.speaker_bonus
        if by_asked:
            # One person's words per answer: when the name fits several people quoted here
            # ("Taylor": Ann Taylor and Roger Taylor), the best-scoring one's speaker is X.
            theirs = [c for c in shortlist if same_person(asked or "", c.speaker)]
            lead = max(theirs, key=lambda c: c.score, default=None)
            for c in theirs:
                if lead is not None and not same_person(lead.speaker or "", c.speaker):
                    c.score -= 1.0
        elif self.ranker is not None:
            matrix = sentence_features(question, shortlist, semantic, lexical, stored_day(as_of), self.terms)
            for c, p in zip(shortlist, self.ranker.predict(matrix).tolist()):
                c.learned = p
            return shortlist, True
        elif self.cross_encoder is not None:
            probabilities = self.cross_encoder.score(question, [pair_text(c.hit.article.title, c.text)
                                                                for c in shortlist])
            for c, p in zip(shortlist, probabilities.tolist()):
                c.answer_bonus = self.cross_encoder.weight * p
                c.score += c.answer_bonus
        return shortlist, False

    def _theirs(self, question: str, candidates: list[SentenceCandidate], speaker: str | None) -> list[SentenceCandidate]:
        """The scored sentences of the one person the answer may quote for "What did X say?"
        (the best-scoring of those X may be); empty for other questions or when X said none."""
        asked = speaker or asked_speaker(question)
        if not asked:
            return []
        theirs = [c for c in candidates if same_person(asked, c.speaker)]
        if not theirs:
            return []
        lead = max(theirs, key=lambda c: c.score)
        return [c for c in theirs if same_person(lead.speaker or "", c.speaker)]

    def _select(self, candidates: list[SentenceCandidate], best: SentenceCandidate, keep_ratio: float,
                min_relevance: float | None = None) -> list[list[SentenceCandidate]]:
        """The answer's sentences, grouped with their near-copies. ``min_relevance``: a sentence
        after the first must also be at least this relevant itself."""
        s = self.settings
        ranked = sorted(candidates, key=lambda c: (-c.score, c.hit.rank, c.start))
        groups: list[list[SentenceCandidate]] = []
        signatures: list[set[str]] = []
        for c in ranked:
            if c.score < best.score * keep_ratio or c.score <= 0:
                break
            if min_relevance is not None and groups and c.relevance < min_relevance:
                continue
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




def _signature(text: str) -> set[str]:
    norm = unicodedata.normalize("NFKC", text).casefold()
    return set(re.findall(r"\w+", norm))


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def _compose(groups: list[list[SentenceCandidate]]) -> tuple[str, list[Citation]]:
    """Answer text, one sentence per group cited to every member, and the citations."""
    numbers = CitationNumbers()
    parts: list[str] = []
    for group in groups:
        markers = "".join(f"[{numbers.cite(c.hit.article, c.start, c.end, c.speaker)}]" for c in group)
        parts.append(" ".join(group[0].text.split()) + " " + markers)
    return " ".join(parts), numbers.citations
