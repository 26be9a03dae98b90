"""The generative answerer: the chat model writes, the verifier decides what stands.

Each sentence the model wrote is kept, re-cited, flagged or dropped by
:mod:`rag.answer.verify`; when nothing stands, or the server fails, the answer is the
extractive one with a ``warnings`` entry saying why.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Iterator, Sequence

from rag.answer.citing import CitationNumbers, quotes_by_article, speaker_at
from rag.answer.extractive import ExtractiveAnswerer
from rag.answer.llm.client import LLMClient
from rag.answer.llm.config import LLMConfig, OnUnsupported
from rag.answer.llm.prompt import build_messages
from rag.answer.verify import Evidence, Verdict, Verifier, evidence_for, parse_claims
from rag.embed import Embedder
from rag.errors import LLMUnavailable
from rag.models import Answer, Citation, Hit, Quote, SentenceCheck

__all__ = ["LLMAnswerer"]


class LLMAnswerer:
    """Cited answers written by a chat model and checked against the passages.

    Produces the same :class:`~rag.models.Answer` as the extractive answerer, plus
    ``answer.sentences``: what verification did to each sentence the model wrote.
    """

    def __init__(self, client: LLMClient, embedder: Embedder, extractive_fallback: ExtractiveAnswerer,
                 verifier: Verifier | None = None) -> None:
        self.client = client
        self.embedder = embedder
        self.fallback = extractive_fallback
        self.verifier = verifier or Verifier(embedder)

    @property
    def config(self) -> LLMConfig:
        return self.client.config

    def answer(self, question: str, hits: Sequence[Hit], quotes: Sequence[Quote],
               as_of: str | None = None, speaker: str | None = None) -> Answer:
        """The verified answer, or the extractive one (with a warning) when the LLM fails.

        ``speaker``: the person a "What did X say ...?" question asks about, for the fallback.
        """
        shown = list(hits[: self.config.max_passages])
        if not shown:
            return self.fallback.answer(question, hits, quotes, as_of, speaker)
        try:
            draft = self.client.complete(build_messages(question, shown, as_of))
        except LLMUnavailable as exc:
            return self._fall_back(question, hits, quotes, as_of, str(exc), speaker=speaker)
        return self.finish(question, hits, quotes, as_of, draft, speaker)

    def stream(self, question: str, hits: Sequence[Hit], quotes: Sequence[Quote],
               as_of: str | None = None, speaker: str | None = None) -> Iterator[str | Answer]:
        """The model's text deltas as they arrive (a draft), then the verified Answer, last.

        The draft is unverified; only the final Answer's text and citations count.
        """
        shown = list(hits[: self.config.max_passages])
        if not shown:
            yield self.fallback.answer(question, hits, quotes, as_of, speaker)
            return
        parts: list[str] = []
        try:
            for delta in self.client.stream(build_messages(question, shown, as_of)):
                parts.append(delta)
                yield delta
        except LLMUnavailable as exc:
            yield self._fall_back(question, hits, quotes, as_of, str(exc), speaker=speaker)
            return
        yield self.finish(question, hits, quotes, as_of, "".join(parts), speaker)

    def finish(self, question: str, hits: Sequence[Hit], quotes: Sequence[Quote], as_of: str | None,
               draft: str, speaker: str | None = None) -> Answer:
        """Verify ``draft`` (the model's text) against the passages it was shown and cite it."""
        shown = list(hits[: self.config.max_passages])
        claims = parse_claims(draft)
        evidence = evidence_for(shown)
        verdicts = self.verifier.check(claims, evidence, len(shown), question)
        if not any(v.supported for v in verdicts):
            why = ("the LLM's answer had no sentence the passages support" if claims
                   else "the LLM's answer had no sentences")
            if self.config.on_unsupported == "drop" or not claims:
                return self._fall_back(question, hits, quotes, as_of, why, verdicts, speaker)
        text, citations, checks = _compose(verdicts, quotes, self.config.on_unsupported)
        if not text:  # flag mode, and no passage sentence was close enough to flag against
            return self._fall_back(question, hits, quotes, as_of,
                                   "the LLM's answer had no sentence the passages support", verdicts, speaker)
        warnings = [] if any(v.supported for v in verdicts) else [
            "no sentence of the LLM's answer is supported by the passages: all are flagged"]
        return Answer(question, text, False, citations, list(hits), as_of, warnings, answerer="llm",
                      sentences=checks)

    def _fall_back(self, question: str, hits: Sequence[Hit], quotes: Sequence[Quote], as_of: str | None,
                   why: str, verdicts: Sequence[Verdict] = (), speaker: str | None = None) -> Answer:
        answer = self.fallback.answer(question, hits, quotes, as_of, speaker)
        checks = [_check(v, None, "dropped") for v in verdicts]
        return replace(answer, warnings=[*answer.warnings, f"{why}; showing the extractive answer instead"],
                       sentences=checks)


def _check(v: Verdict, n: int | None, action: str) -> SentenceCheck:
    return SentenceCheck(text=v.claim.text, cited=list(v.claim.markers), action=action,  # type: ignore[arg-type]
                         citation=n, support=round(v.best.score, 4) if v.best else 0.0,
                         passage=v.best.evidence.passage if v.best else None)


def _compose(verdicts: Sequence[Verdict], quotes: Sequence[Quote],
             on_unsupported: OnUnsupported) -> tuple[str, list[Citation], list[SentenceCheck]]:
    """Answer text with citation markers, the citations (numbered in order of first use), the report.

    A span backing one sentence and flagged against another is cited twice: once as
    supported, once not.
    """
    by_article = quotes_by_article(quotes)
    numbers = CitationNumbers()
    parts: list[str] = []
    checks: list[SentenceCheck] = []

    def cite(e: Evidence, supported: bool) -> int:
        a = e.hit.article
        return numbers.cite(a, e.start, e.end, speaker_at(by_article.get(a.id, ()), e.start, e.end), supported)

    for v in verdicts:
        if v.supported:
            assert v.best is not None
            ns = [cite(s.evidence, True) for s in v.support]
            action = "kept" if v.recited is False else "recited"
        elif on_unsupported == "flag" and v.best is not None:
            ns = [cite(v.best.evidence, False)]
            action = "flagged"
        else:
            checks.append(_check(v, None, "dropped"))
            continue
        parts.append(v.claim.text + " " + "".join(f"[{n}]" for n in ns))
        checks.append(_check(v, ns[0], action))
    return " ".join(parts), numbers.citations, checks
