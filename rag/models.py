"""The typed results that flow through the pipeline.

Everything the library returns is one of these frozen dataclasses; the API and the CLI
convert them to JSON at the edge with :func:`dataclasses.asdict` or their own schemas.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Article:
    """One news article as stored. ``text`` is the reference that all offsets point into.

    >>> Article(id="a1", title="Blinken visits Seoul", text="Blinken said ...").published_at is None
    True
    """

    id: str
    title: str
    text: str
    url: str | None = None
    source: str | None = None
    published_at: str | None = None  # ISO date, YYYY-MM-DD
    author: str | None = None
    origin: str = ""  # where it was read from: "path" or "path:line"


@dataclass(frozen=True)
class Problem:
    """An input that was skipped (or read with a caveat), and why.

    ``origin`` is the path, with ``:line`` for JSON Lines records.
    """

    origin: str
    reason: str


@dataclass(frozen=True)
class Chunk:
    """A passage of an article: ``article.text[start:end] == text``."""

    id: str  # "<article_id>#<position>"
    article_id: str
    position: int
    start: int
    end: int
    text: str


@dataclass(frozen=True)
class Hit:
    """A retrieved chunk with its score and the article it belongs to."""

    chunk: Chunk
    score: float
    article: Article
    rank: int = 0


@dataclass(frozen=True)
class Quote:
    """A statement found in an article, with the person it is attributed to (or None)."""

    article_id: str
    start: int
    end: int
    text: str
    speaker: str | None
    kind: str  # "direct" (quotation marks), "reported" (X said that ...), "continued" (He added ...), "none"


@dataclass(frozen=True)
class Speaker:
    """A person quoted in the indexed news, with every name variant of them merged.

    ``id`` is a readable slug of the name ("tony-blair"), stable across rebuilds of the same
    corpus; ``quotes`` is how many stored statements are attributed to them.

    >>> Speaker(id="tony-blair", name="Tony Blair", quotes=3).name
    'Tony Blair'
    """

    id: str
    name: str
    quotes: int


@dataclass(frozen=True)
class Citation:
    """One numbered source of an answer: ``quote`` is ``article.text[start:end]`` exactly."""

    n: int
    article_id: str
    title: str
    source: str | None
    url: str | None
    published_at: str | None
    quote: str
    start: int
    end: int
    speaker: str | None = None
    # False only for an LLM sentence that no passage supports, kept because the LLM answerer
    # was told to flag such sentences rather than drop them; ``quote`` is then the closest one.
    supported: bool = True

    @classmethod
    def quoting(cls, n: int, article: Article, start: int, end: int, speaker: str | None = None,
                supported: bool = True) -> "Citation":
        """Citation ``n`` of ``article.text[start:end]``: the quote is cut from the article itself,
        so it always matches its offsets."""
        return cls(n=n, article_id=article.id, title=article.title, source=article.source,
                   url=article.url, published_at=article.published_at,
                   quote=article.text[start:end], start=start, end=end, speaker=speaker,
                   supported=supported)


@dataclass(frozen=True)
class SentenceCheck:
    """What verification did to one sentence an LLM wrote.

    ``action``: "kept" (its own citation supports it), "recited" (another passage does; the
    marker was missing or wrong), "flagged" (nothing does; kept with ``supported: false``) or
    "dropped" (nothing does; removed). ``cited`` holds the passage numbers the LLM wrote,
    ``passage`` the passage of the best-supporting sentence, ``citation`` the answer's marker.
    """

    text: str
    cited: list[int]
    action: Literal["kept", "recited", "flagged", "dropped"]
    citation: int | None
    support: float
    passage: int | None = None


@dataclass(frozen=True)
class Answer:
    """A composed answer. When ``abstained`` is true, ``text`` says the news does not cover it."""

    question: str
    text: str
    abstained: bool
    citations: list[Citation] = field(default_factory=list)
    passages: list[Hit] = field(default_factory=list)
    as_of: str | None = None
    warnings: list[str] = field(default_factory=list)
    # Who wrote ``text``: "extractive", or "llm" (then ``sentences`` reports each check).
    answerer: Literal["extractive", "llm"] = "extractive"
    sentences: list[SentenceCheck] = field(default_factory=list)
    # For "What did X say ...?": the quoted people X may be, most quoted first (empty otherwise).
    speakers: list[Speaker] = field(default_factory=list)


@dataclass(frozen=True)
class IndexInfo:
    """What ``Pipeline.info()`` reports about the loaded index: its size and what built it."""

    index_dir: str
    articles: int
    chunks: int
    model: str
    dimension: int
    backend: str  # the embedding backend its vectors came from: torch, onnx or onnx-int8
    index_kind: str  # "exact", "hnsw" or "ivf"
    built_at: str  # ISO time, UTC
    sources: tuple[str, ...]  # the folders and files it was built from
