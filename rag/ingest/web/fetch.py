"""Fetching URLs politely and within limits: one :class:`Fetcher` per refresh round.

Everything a site sends is untrusted, and every site deserves the same manners:

- a clear User-Agent, and robots.txt honoured (``urllib.robotparser``, fetched once per host a round);
- a per-host gate: at most ``host_concurrency`` requests to one host at a time, and their starts
  at least ``host_delay`` seconds apart;
- connect and read timeouts, a wall-clock limit per request (a server that drips one byte at a
  time never holds a round), a size limit read as a stream (the download stops there), at most
  ``max_redirects`` redirects, each checked again for its scheme and robots.txt, loops named;
- only http and https; a PDF, an image or other binary is refused from its headers, before its body.

A failure is a :class:`~rag.errors.FetchError` whose message says what happened and what to do;
the caller reports it for that source and goes on.
"""

from __future__ import annotations

import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Iterator
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpx

from rag.errors import FetchError
from rag.ingest.web.config import AGENT, FetchSettings
from rag.ingest.web.urls import SCHEMES, origin_of

ROBOTS_MAX_BYTES = 500_000
_BINARY = {
    "application/pdf": "a PDF", "application/zip": "a zip archive", "application/gzip": "a gzip archive",
    "application/octet-stream": "binary data", "application/msword": "a Word document",
}
_REDIRECTS = {301, 302, 303, 307, 308}


@dataclass(frozen=True)
class Fetched:
    """A response that was read: ``status`` is 200, or 304 when a conditional request found the
    resource unchanged (``body`` is then empty)."""

    url: str
    final_url: str
    status: int
    media_type: str  # "text/html", "application/rss+xml", ...; "" when the server sent none
    body: bytes
    etag: str | None = None
    last_modified: str | None = None
    requests: int = 1  # redirects included, robots.txt not


class HostGate:
    """At most ``concurrency`` requests per host at once, their starts ``delay`` seconds apart.

    >>> gate = HostGate(delay=0.0, concurrency=1)
    >>> with gate.slot("https://example.com"):
    ...     pass
    """

    def __init__(self, delay: float, concurrency: int) -> None:
        self.delay = delay
        self.concurrency = max(1, concurrency)
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._next: dict[str, float] = {}

    @contextmanager
    def slot(self, origin: str) -> Iterator[None]:
        with self._lock:
            sem = self._slots.setdefault(origin, threading.BoundedSemaphore(self.concurrency))
        with sem:
            with self._lock:
                now = time.monotonic()
                start = max(now, self._next.get(origin, now))
                self._next[origin] = start + self.delay
            if start > now:
                time.sleep(start - now)
            yield


class Fetcher:
    """GETs URLs under :class:`FetchSettings`; safe to share between threads for one round.

    >>> with Fetcher(FetchSettings()) as fetcher:   # doctest: +SKIP
    ...     fetched = fetcher.get("https://example.com/feed.xml", etag='"abc"')
    """

    def __init__(self, settings: FetchSettings, transport: httpx.BaseTransport | None = None) -> None:
        self.settings = settings
        self.gate = HostGate(settings.host_delay, settings.host_concurrency)
        timeout = httpx.Timeout(settings.read_timeout, connect=settings.connect_timeout)
        self._client = httpx.Client(
            timeout=timeout, follow_redirects=False, transport=transport,
            headers={"User-Agent": settings.user_agent, "Accept-Encoding": "gzip, deflate"},
            limits=httpx.Limits(max_connections=settings.workers * 2),
        )
        self._robots: dict[str, RobotFileParser | FetchError] = {}
        self._robots_locks: dict[str, threading.Lock] = {}
        self._lock = threading.Lock()
        self.requests = 0  # every request sent this round, robots.txt included

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._client.close()

    def get(self, url: str, etag: str | None = None, last_modified: str | None = None,
            accept: str = "*/*") -> Fetched:
        """GET ``url`` (conditionally, when ``etag`` or ``last_modified`` is given), following
        redirects; FetchError when it cannot be used."""
        headers = {"Accept": accept}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        seen = [url]
        current = url
        for hop in range(self.settings.max_redirects + 1):
            self._check_allowed(current)
            status, media, body, response_headers, location = self._request(current, headers)
            if location is None:
                if status == 304 and hop == 0 and (etag or last_modified):
                    return Fetched(url, current, 304, media, b"", etag, last_modified, requests=hop + 1)
                return Fetched(url, current, status, media, body, response_headers.get("etag"),
                               response_headers.get("last-modified"), requests=hop + 1)
            target = urljoin(current, location)
            if target in seen:
                chain = " -> ".join([*seen[seen.index(target):], target])
                raise FetchError(f"redirect loop ({chain}): not followed; check the URL in a browser")
            seen.append(target)
            current = target
            # A redirect is a new resource: a validator for the old one means nothing there.
            headers.pop("If-None-Match", None)
            headers.pop("If-Modified-Since", None)
        raise FetchError(f"more than {self.settings.max_redirects} redirects ({' -> '.join(seen)}): "
                         "not followed; use the URL they end at")

    # -- one request ---------------------------------------------------------------------------
    def _check_allowed(self, url: str) -> None:
        try:
            parts = urlsplit(url)
        except ValueError as exc:
            raise FetchError(f"not a valid URL ({exc}): check it") from None
        if parts.scheme.lower() not in SCHEMES:
            raise FetchError(f"only http and https URLs are fetched, not {parts.scheme}: give a web address")
        if not parts.hostname:
            raise FetchError("the URL has no host name: give a full address such as https://example.com/feed.xml")
        robots = self._robots_for(origin_of(url))
        if not robots.can_fetch(AGENT, url):
            raise FetchError(f"robots.txt of {origin_of(url)} does not allow {AGENT} to fetch it: "
                             "not fetched; remove the source, or ask the site to allow it")

    def _request(self, url: str, headers: dict[str, str], limit: int | None = None
                 ) -> tuple[int, str, bytes, httpx.Headers, str | None]:
        """(status, media type, body, headers, redirect location or None) of one GET."""
        limit = limit or self.settings.max_bytes
        deadline = time.monotonic() + self.settings.total_timeout
        with self.gate.slot(origin_of(url)):
            with self._lock:
                self.requests += 1
            try:
                with self._client.stream("GET", url, headers=headers) as response:
                    status = response.status_code
                    media = response.headers.get("content-type", "").split(";")[0].strip().lower()
                    if status in _REDIRECTS:
                        location = response.headers.get("location")
                        if not location:
                            raise FetchError(f"HTTP {status} redirect without a Location header: "
                                             "the server is misconfigured; tried again next round")
                        return status, media, b"", response.headers, location
                    if status == 304:
                        return status, media, b"", response.headers, None
                    if status >= 400 or status < 200 or status == 204:
                        raise FetchError(_status_message(status, response.reason_phrase))
                    _refuse_binary(media)
                    declared = response.headers.get("content-length", "")
                    if declared.isdigit() and int(declared) > limit:
                        raise FetchError(_too_large(limit, f"{int(declared) / 1_000_000:.1f} MB declared"))
                    body = bytearray()
                    for piece in response.iter_bytes():
                        body += piece
                        if len(body) > limit:
                            raise FetchError(_too_large(limit, "stopped reading there"))
                        if time.monotonic() > deadline:
                            raise FetchError(f"took over {self.settings.total_timeout:g}s to download: "
                                             "cut off; tried again next round")
                    return status, media, bytes(body), response.headers, None
            except httpx.TimeoutException as exc:
                kind = "connecting" if isinstance(exc, httpx.ConnectTimeout) else "waiting for data"
                limit_s = (self.settings.connect_timeout if isinstance(exc, httpx.ConnectTimeout)
                           else self.settings.read_timeout)
                raise FetchError(f"timed out {kind} (after {limit_s:g}s): the site is slow or down; "
                                 "tried again next round") from None
            except httpx.TransportError as exc:
                raise FetchError(f"cannot connect ({type(exc).__name__}: {exc or 'no reason given'}): "
                                 "check the address; tried again next round") from None

    def _robots_for(self, origin: str) -> RobotFileParser:
        with self._lock:
            origin_lock = self._robots_locks.setdefault(origin, threading.Lock())
        with origin_lock:  # the first request to a host reads its robots.txt; the others wait for it
            known = self._robots.get(origin)
            if known is None:
                known = self._robots[origin] = self._read_robots(origin)
        if isinstance(known, FetchError):
            raise FetchError(str(known))
        return known

    def _read_robots(self, origin: str) -> RobotFileParser | FetchError:
        parser = RobotFileParser(origin + "/robots.txt")
        url = origin + "/robots.txt"
        try:
            for _ in range(self.settings.max_redirects + 1):
                status, _media, body, _h, location = self._request(url, {"Accept": "text/plain"},
                                                                   limit=ROBOTS_MAX_BYTES)
                if location is None:
                    break
                url = urljoin(url, location)
                if urlsplit(url).scheme not in SCHEMES:
                    break
        except FetchError as exc:
            text = str(exc)
            if text.startswith("HTTP 4"):  # no robots.txt (or not for us to see): everything is allowed
                parser.parse([])
                return parser
            if text.startswith("HTTP 5"):
                # RFC 9309: a robots.txt that cannot be read because of a server error means
                # nothing may be fetched until it can.
                return FetchError(f"robots.txt of {origin} answered {text.split(':')[0]}: the site is not "
                                  "fetched until it can be read; tried again next round")
            return FetchError(f"robots.txt of {origin} could not be read: {text}")
        parser.parse(body.decode("utf-8", "replace").splitlines())
        return parser


def _status_message(status: int, reason: str) -> str:
    what = f"HTTP {status}{' ' + reason if reason else ''}"
    if status in (404, 410):
        return f"{what}: the page is gone; check the URL or remove the source (its articles stay indexed)"
    if status in (401, 403):
        return f"{what}: the site refuses access; remove the source or ask the site"
    if status == 429:
        return f"{what}: the site asks for fewer requests; tried again next round"
    if status >= 500:
        return f"{what}: the site has a problem; tried again next round"
    return f"{what}: not a usable response; check the URL"


def _refuse_binary(media: str) -> None:
    kind = _BINARY.get(media)
    if kind is None and media.split("/")[0] in ("image", "audio", "video", "font"):
        kind = f"an {media.split('/')[0]}" if media.startswith(("image", "audio")) else f"a {media.split('/')[0]}"
    if kind is not None:
        raise FetchError(f"is {kind} ({media}), not a web page or feed: skipped")


def _too_large(limit: int, how: str) -> str:
    return (f"response is over the {limit / 1_000_000:g} MB limit ({how}): skipped; "
            "a news page is far smaller, so check the URL")
