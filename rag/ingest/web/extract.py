"""An article page into an :class:`~rag.models.Article`: main text and metadata by trafilatura,
the feed's own fields where the page gives little.

The article's id comes from its canonical URL, so a page whose text changes keeps its id and
counts as an update. A page names its own canonical URL (``<link rel="canonical">``, ``og:url``);
that is believed only on the page's own host, so no page can claim another site's story.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from rag.ingest.readers import _make_article, _normalise, _same_title
from rag.ingest.web.feeds import FeedEntry
from rag.ingest.web.urls import SCHEMES, canonical_url
from rag.models import Article, Problem

# Fewer words than this is a cookie wall, a paywall teaser or a page of links, not an article.
MIN_WORDS = 25


@dataclass(frozen=True)
class Extracted:
    """What one page gave: the article (None when it gave none), why not, and caveats."""

    article: Article | None
    canonical: str
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)


def text_hash(text: str) -> str:
    """What two copies of one story share however they are spaced or cased: the deduplication key.

    >>> text_hash("Prices  rose.") == text_hash("prices rose.")
    True
    """
    return hashlib.sha1(_normalise(text).encode("utf-8")).hexdigest()


def extract_article(body: bytes, url: str, entry: FeedEntry | None = None, site: str | None = None) -> Extracted:
    """The article on the page ``body`` fetched from ``url`` (after redirects), with ``entry``'s
    title, authors and date where the page has none, and ``site`` (the feed's title) as its source
    when the page names no site.

    >>> page = b"<html><head><title>T</title></head><body><article><p>" + b"Word " * 40 + b"</p></article></body></html>"
    >>> extract_article(page, "https://example.com/a?utm_source=x").article.url
    'https://example.com/a'
    """
    import trafilatura  # imported here: it pulls in lxml and friends

    doc = trafilatura.bare_extraction(body, url=url, with_metadata=True, include_comments=False)
    meta: dict[str, Any] = {}
    if doc is not None:
        meta = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    canonical = _canonical(url, meta.get("url"))
    text = (meta.get("text") or "").strip()
    title = meta.get("title") or (entry.title if entry else None)
    lines = text.splitlines(keepends=True)
    if title and lines and _same_title(lines[0], title):  # trafilatura repeats the headline
        text = "".join(lines[1:]).strip()
    words = len(text.split())
    if words < MIN_WORDS:
        found = f"only {words} word{'' if words == 1 else 's'}" if words else "nothing"
        return Extracted(None, canonical, [Problem(url, f"no article text found on the page ({found}): "
                                                        "skipped; it may need JavaScript or a login")])
    sitename = meta.get("sitename")
    if sitename and sitename == (urlsplit(url).netloc or None):
        sitename = None  # trafilatura's stand-in when the page names no site: the host, port and all
    problems: list[Problem] = []
    warnings: list[Problem] = []
    article: Article | None = None
    for kind, item in _make_article(
        url, text, title=title, url=canonical, source=sitename or site or None,
        published=meta.get("date") or (entry.published if entry else None),
        author=meta.get("author") or (list(entry.authors) if entry and entry.authors else None),
        id_="w" + hashlib.sha1(canonical.encode("utf-8")).hexdigest()[:16],
    ):
        if kind == "article":
            assert isinstance(item, Article)
            article = item
        else:
            assert isinstance(item, Problem)
            (warnings if kind == "warning" else problems).append(item)
    return Extracted(article, canonical, problems, warnings)


def _canonical(url: str, claimed: Any) -> str:
    own = canonical_url(url)
    if not isinstance(claimed, str) or not claimed.strip():
        return own
    try:
        parts = urlsplit(claimed.strip())
    except ValueError:
        return own
    host = (parts.hostname or "").removeprefix("www.")
    if parts.scheme not in SCHEMES or host != (urlsplit(url).hostname or "").removeprefix("www."):
        return own
    return canonical_url(claimed)
