"""RSS and Atom feeds, parsed with feedparser into :class:`FeedEntry` records.

A feed is refused whole when it is not one: an HTML page (the message names the feed the page
links to, when it does), malformed XML, or XML that is neither RSS nor Atom. An entry without a
link is refused alone.
"""

from __future__ import annotations

import hashlib
import json
import re
import xml.sax
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

from rag.errors import FetchError
from rag.models import Problem

_HTML_TYPES = ("text/html", "application/xhtml+xml")
_FEED_LINK = re.compile(
    rb"""<link\b[^>]*type=["']application/(?:rss|atom)\+xml["'][^>]*>""", re.I)
_HREF = re.compile(rb"""href=["']([^"']+)["']""", re.I)


@dataclass(frozen=True)
class FeedEntry:
    """One item of a feed. ``key`` identifies it across rounds (its guid, else its link);
    ``fingerprint`` changes when the feed changes what it says about it (an update)."""

    key: str
    link: str
    title: str | None
    authors: tuple[str, ...]
    published: str | None  # as the feed wrote it
    summary: str | None
    fingerprint: str


@dataclass(frozen=True)
class Feed:
    """A parsed feed: its title, its usable entries (newest first, as listed) and the entries it
    refused (no link)."""

    title: str | None
    entries: list[FeedEntry]
    problems: list[Problem]


def is_html(media: str, body: bytes) -> bool:
    """Whether a response is an HTML page, by its media type or, without one, its first bytes.

    >>> is_html("", b"  <!DOCTYPE html><html>"), is_html("application/rss+xml", b"<rss>")
    (True, False)
    """
    if media in _HTML_TYPES:
        return True
    head = body[:512].lstrip().lower()
    return not media and head.startswith((b"<!doctype html", b"<html"))


def is_feed(media: str, body: bytes) -> bool:
    """Whether a response reads as a feed: an XML media type or an ``<rss``/``<feed``/``<rdf`` root.

    >>> is_feed("text/xml", b"<?xml version='1.0'?><rss>"), is_feed("text/html", b"<html>")
    (True, False)
    """
    if is_html(media, body):
        return False
    if media.endswith("xml") or media.endswith("+xml"):
        return True
    head = body[:1024].lstrip().lower()
    return head.startswith(b"<?xml") or re.match(rb"<(?:rss|feed|rdf:rdf)\b", head) is not None


def parse_feed(body: bytes, url: str, media: str, max_entries: int = 200) -> Feed:
    """The feed in ``body`` (fetched from ``url``); FetchError when it is not a usable feed.

    >>> rss = b"<rss version='2.0'><channel><title>T</title><item><title>A</title>"
    >>> rss += b"<link>https://example.com/a</link></item></channel></rss>"
    >>> [e.link for e in parse_feed(rss, "https://example.com/rss.xml", "application/rss+xml").entries]
    ['https://example.com/a']
    """
    import feedparser  # imported here: only URL sources need it

    if is_html(media, body):
        found = _FEED_LINK.search(body[:200_000])
        href = _HREF.search(found.group(0)) if found else None
        hint = (f"; the page links to a feed at {urljoin(url, href.group(1).decode('utf-8', 'replace'))}"
                if href else "")
        raise FetchError(f"is an HTML page ({media or 'text/html'}), not an RSS or Atom feed: "
                         f"give the feed's own address{hint}")
    # No base URL given: feedparser would resolve a guid such as "item-7" into a link that was
    # never published. Links are resolved here, guids only taken when they are whole URLs.
    parsed = feedparser.parse(body, response_headers={"content-type": media or "application/xml"})
    problem = parsed.get("bozo_exception")
    if isinstance(problem, xml.sax.SAXException):
        raise FetchError(f"malformed XML ({_sax_message(problem)}): the feed was skipped; "
                         "the publisher has to fix it, it is tried again next round")
    if not parsed.get("version") and not parsed.entries:
        raise FetchError(f"not an RSS or Atom feed ({media or 'no content type'}): check the feed's address")
    entries: list[FeedEntry] = []
    problems: list[Problem] = []
    for n, raw in enumerate(parsed.entries[:max_entries], start=1):
        link = _link(raw, url)
        title = _text(raw.get("title"))
        if link is None:
            label = f"entry {n}" + (f" ({title!r})" if title else "")
            problems.append(Problem(url, f"{label} has no link: skipped; only entries that link to "
                                         "their article are indexed"))
            continue
        entries.append(FeedEntry(
            key=_text(raw.get("id")) or link, link=link, title=title,
            authors=_authors(raw), published=_date(raw), summary=_text(raw.get("summary")),
            fingerprint=_fingerprint(raw),
        ))
    return Feed(title=_text(parsed.feed.get("title")), entries=entries, problems=problems)


def _link(raw: Any, base: str) -> str | None:
    link = None if raw.get("guidislink") else raw.get("link")
    if not link:
        for item in raw.get("links", ()):
            if item.get("rel", "alternate") == "alternate" and item.get("href"):
                link = item["href"]
                break
    if not link:
        guid = raw.get("id") or ""
        link = guid if guid.startswith(("http://", "https://")) else None
    return urljoin(base, link.strip()) if link else None


def _text(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    return " ".join(value.split()) or None


def _authors(raw: Any) -> tuple[str, ...]:
    names = [_text(a.get("name")) for a in raw.get("authors", ()) if isinstance(a, dict)]
    found = tuple(n for n in names if n)
    return found or ((author,) if (author := _text(raw.get("author"))) else ())


def _date(raw: Any) -> str | None:
    # As written, not feedparser's UTC struct: the calendar day of a late-evening story would move.
    for field in ("published", "updated", "created"):
        if value := _text(dict.get(raw, field)):
            return value
    return None


def _fingerprint(raw: Any) -> str:
    # dict.get: feedparser's own get() maps a missing "updated" to "published", with a warning.
    payload = [dict.get(raw, k) for k in ("title", "link", "updated", "published", "summary")]
    return hashlib.sha1(json.dumps(payload, default=str).encode("utf-8")).hexdigest()


def _sax_message(exc: xml.sax.SAXException) -> str:
    if isinstance(exc, xml.sax.SAXParseException):
        return f"line {exc.getLineNumber()}, column {exc.getColumnNumber()}: {exc.getMessage()}"
    return str(exc)
