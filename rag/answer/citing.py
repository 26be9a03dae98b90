"""What every answerer shares: the passages' sentences, who said each, and citation numbers.

An answer cites spans of articles. Both answerers draw those spans from the same walk over
the retrieved passages (:func:`passage_sentences`), credit a span to the person quoted there
(:func:`speaker_at`), and number their citations in order of first use (:class:`CitationNumbers`).

>>> from rag.models import Article, Chunk, Hit
>>> a = Article(id="a", title="T", text="Rain fell on Monday. It stopped.")
>>> hit = Hit(Chunk("a#0", "a", 0, 0, 32, a.text), 1.0, a, 1)
>>> [(s.passage, s.text) for s in passage_sentences([hit], min_words=3)]
[(1, 'Rain fell on Monday.')]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator, Sequence

from rag.models import Article, Citation, Hit, Quote
from rag.text.sentences import split_sentences

__all__ = ["CitationNumbers", "PassageSentence", "passage_sentences", "quotes_by_article", "speaker_at"]


@dataclass(frozen=True)
class PassageSentence:
    """One sentence of passage ``passage`` (1-based): ``hit.article.text[start:end] == text``."""

    passage: int
    hit: Hit
    start: int
    end: int
    text: str


def passage_sentences(hits: Sequence[Hit], min_words: int, max_words: int | None = None,
                      distinct: bool = False) -> Iterator[PassageSentence]:
    """The sentences of each hit's chunk, in ``hits`` order, of ``min_words`` to ``max_words`` words.

    With ``distinct``, a sentence is walked once however many hits hold it: the first one wins,
    and a span already seen is skipped before its length is looked at.

    >>> from rag.models import Article, Chunk, Hit
    >>> a = Article(id="a", title="T", text="One two three. Four five six seven.")
    >>> hits = [Hit(Chunk("a#0", "a", 0, 0, 35, a.text), 1.0, a, 1)] * 2
    >>> [(s.passage, s.start) for s in passage_sentences(hits, 3, max_words=3)]
    [(1, 0), (2, 0)]
    >>> [(s.passage, s.start) for s in passage_sentences(hits, 3, distinct=True)]
    [(1, 0), (1, 15)]
    """
    seen: set[tuple[str, int]] = set()
    for n, hit in enumerate(hits, start=1):
        text = hit.article.text
        for start, end in split_sentences(text, hit.chunk.start, hit.chunk.end):
            if distinct:
                key = (hit.article.id, start)
                if key in seen:
                    continue
                seen.add(key)
            sentence = text[start:end]
            words = len(sentence.split())
            if words < min_words or (max_words is not None and words > max_words):
                continue
            yield PassageSentence(n, hit, start, end, sentence)


def quotes_by_article(quotes: Sequence[Quote]) -> dict[str, list[Quote]]:
    """The stored quotes grouped by article id, in their given order.

    >>> q = Quote("a", 0, 9, "It rains.", "Lee", "direct")
    >>> quotes_by_article([q])
    {'a': [Quote(article_id='a', start=0, end=9, text='It rains.', speaker='Lee', kind='direct')]}
    """
    grouped: dict[str, list[Quote]] = {}
    for quote in quotes:
        grouped.setdefault(quote.article_id, []).append(quote)
    return grouped


def speaker_at(quotes: Sequence[Quote], start: int, end: int) -> str | None:
    """Who said the span ``start:end``: the speaker of the quote holding its middle, if any.

    >>> speaker_at([Quote("a", 10, 40, "...", "Lee", "direct")], 12, 30)
    'Lee'
    >>> speaker_at([Quote("a", 10, 40, "...", "Lee", "direct")], 0, 12) is None
    True
    """
    middle = (start + end) // 2
    for quote in quotes:
        if quote.start <= middle < quote.end:
            return quote.speaker
    return None


class CitationNumbers:
    """An answer's citations, numbered from 1 in order of first use.

    Citing a span again gives back its number; a span cited as supported and as unsupported
    gets two numbers, since the two citations say different things.

    >>> a = Article(id="a", title="T", text="Rain fell. It stopped.")
    >>> numbers = CitationNumbers()
    >>> [numbers.cite(a, 11, 22), numbers.cite(a, 0, 10), numbers.cite(a, 11, 22)]
    [1, 2, 1]
    >>> [c.quote for c in numbers.citations]
    ['It stopped.', 'Rain fell.']
    """

    def __init__(self) -> None:
        self.citations: list[Citation] = []
        self._numbers: dict[tuple[str, int, int, bool], int] = {}

    def cite(self, article: Article, start: int, end: int, speaker: str | None = None,
             supported: bool = True) -> int:
        """The number of the citation of ``article.text[start:end]``, new if it is not cited yet."""
        key = (article.id, start, end, supported)
        if key not in self._numbers:
            self._numbers[key] = len(self.citations) + 1
            self.citations.append(Citation.quoting(self._numbers[key], article, start, end, speaker, supported))
        return self._numbers[key]
