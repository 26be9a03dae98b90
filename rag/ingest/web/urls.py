"""URLs as sources: telling them from paths, and one canonical form per story.

The same story reaches a reader under many URLs: with tracking parameters (``utm_source``,
``fbclid``), as an AMP page, with or without ``www.`` or a trailing slash. Deduplication and the
fetch state key everything by :func:`canonical_url`, so each of those is one article.
"""

from __future__ import annotations

import hashlib
import re
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

SCHEMES = ("http", "https")
# Query parameters that say who sent the reader, never which page they read.
_TRACKING = re.compile(
    r"^(?:utm_\w+|fbclid|gclid|dclid|msclkid|mc_cid|mc_eid|igshid|yclid|_ga|_hsenc|_hsmi|"
    r"ref|ref_src|ref_url|cmpid|icid|ocid|smid|s_cid|at_medium|at_campaign|guccounter|amp|outputType)$",
    re.I,
)
_AMP_PATH = re.compile(r"(?:/amp/?$|\.amp(?=\.html?$|$)|^/amp(?=/))", re.I)
_DEFAULT_PORTS = {"http": 80, "https": 443}


def is_url(source: str) -> bool:
    """Whether a source names a URL rather than a path (any scheme: ``file://`` is refused
    later, with a message, rather than read as a file called ``file:``).

    >>> is_url("https://www.bbc.co.uk/news/rss.xml"), is_url("seeds/"), is_url("C:/news")
    (True, False, False)
    """
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]+://", source) is not None


def canonical_url(url: str) -> str:
    """The form two links to the same page share: lower-case scheme and host, no ``www.``, no
    default port, fragment, tracking parameters or AMP marker, sorted query, no trailing slash.

    >>> canonical_url("HTTPS://www.Example.com:443/news/story/amp/?utm_source=rss&id=7#top")
    'https://example.com/news/story?id=7'
    >>> canonical_url("https://example.com/amp/news/story.amp.html")
    'https://example.com/news/story.html'
    """
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:  # an unclosed IPv6 bracket, a port that is not a number: keep it as written
        return url.strip()
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").removeprefix("www.")
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    path = _AMP_PATH.sub("", parts.path) or "/"
    path = path.rstrip("/") or ""
    query = urlencode(sorted((k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True)
                             if not _TRACKING.match(k)))
    return urlunsplit((scheme, host, path, query, ""))


def source_id(url: str) -> str:
    """A short stable id for a URL source, as ``GET /sources`` and ``DELETE /sources/{id}`` use.

    >>> source_id("https://example.com/feed.xml")
    's6904f1c428'
    """
    return "s" + hashlib.sha1(url.strip().encode("utf-8")).hexdigest()[:10]


def looks_like_feed(url: str) -> bool:
    """Whether a URL names a feed by its path (``.xml``, ``.rss``, ``/feed``, ``/rss``...): such a
    source that answers with an HTML page is reported, rather than indexed as an article.

    >>> looks_like_feed("https://example.com/world/rss.xml"), looks_like_feed("https://example.com/a/1.html")
    (True, False)
    """
    try:
        path = urlsplit(url).path.lower()
    except ValueError:
        return False
    return bool(re.search(r"(?:\.(?:xml|rss|atom|rdf)$|(?:^|/)(?:feeds?|rss|atom)(?:/|$|\.))", path))


def origin_of(url: str) -> str:
    """``scheme://host[:port]`` of a URL: what robots.txt and the politeness gate are kept per.

    >>> origin_of("https://example.com:8443/a/b?c=1")
    'https://example.com:8443'
    """
    parts = urlsplit(url)
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}"
