"""A news site on 127.0.0.1 for the feed tests: the tests write its pages and feeds into
``site.routes`` and read back every request it got in ``site.log``. Nothing leaves loopback."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Iterator


@dataclass
class Route:
    """What one path answers. ``etag``/``last_modified`` make it answer conditional requests with
    304; ``size`` streams that many bytes of ``body`` repeated, without a Content-Length."""

    body: bytes = b""
    type: str = "text/html; charset=utf-8"
    status: int = 200
    etag: str | None = None
    last_modified: str | None = None
    delay: float = 0.0
    location: str | None = None
    size: int | None = None


@dataclass(frozen=True)
class Request:
    path: str
    status: int
    if_none_match: str | None
    if_modified_since: str | None
    user_agent: str | None


@dataclass
class Site:
    url: str
    routes: dict[str, Route] = field(default_factory=dict)
    log: list[Request] = field(default_factory=list)

    def paths(self, status: int | None = None) -> list[str]:
        """Paths requested (with that status), in order."""
        return [r.path for r in self.log if status is None or r.status == status]


def _handler(site: Site) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            route = site.routes.get(self.path.split("?")[0])
            inm, ims = self.headers.get("If-None-Match"), self.headers.get("If-Modified-Since")
            status = 404 if route is None else route.status
            if route is not None and status == 200 and (
                    (route.etag and inm == route.etag) or (route.last_modified and ims == route.last_modified)):
                status = 304
            site.log.append(Request(self.path, status, inm, ims, self.headers.get("User-Agent")))
            if route is not None and route.delay:
                time.sleep(route.delay)
            self.send_response(status)
            if route is not None and route.location:
                self.send_header("Location", route.location)
            if route is not None and route.etag:
                self.send_header("ETag", route.etag)
            if route is not None and route.last_modified:
                self.send_header("Last-Modified", route.last_modified)
            if status == 304:
                self.end_headers()
                return
            body = b"not found" if route is None else route.body
            self.send_header("Content-Type", "text/plain" if route is None else route.type)
            try:
                if route is not None and route.size is not None:
                    self.send_header("Connection", "close")
                    self.end_headers()
                    sent = 0
                    while sent < route.size:
                        self.wfile.write(body)
                        sent += len(body)
                    return
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)
            except (BrokenPipeError, ConnectionResetError):  # the client stopped reading, as it should
                self.close_connection = True

    return Handler


def serve_site() -> Iterator[Site]:
    """Run a site on a free 127.0.0.1 port until the generator is closed."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    server.daemon_threads = True
    site = Site(url=f"http://127.0.0.1:{server.server_address[1]}")
    server.RequestHandlerClass = _handler(site)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield site
    finally:
        server.shutdown()
        server.server_close()


def page(title: str, paragraphs: list[str], *, canonical: str | None = None, author: str | None = None,
         date: str | None = None, site_name: str | None = None) -> bytes:
    """An article page with the metadata asked for (and none of what is not)."""
    head = [f"<title>{title}</title>"]
    if canonical:
        head.append(f'<link rel="canonical" href="{canonical}">')
    if author:
        head.append(f'<meta name="author" content="{author}">')
    if date:
        head.append(f'<meta property="article:published_time" content="{date}">')
    if site_name:
        head.append(f'<meta property="og:site_name" content="{site_name}">')
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f"<!DOCTYPE html><html><head>{''.join(head)}</head><body><nav><a href='/'>Home</a></nav>"
            f"<article><h1>{title}</h1>{body}</article><footer>Contact us</footer></body></html>").encode()


def rss(title: str, items: list[dict[str, str]]) -> bytes:
    """An RSS 2.0 feed; each item's keys become its elements (``link``, ``title``, ``guid``...)."""
    entries = "".join("<item>" + "".join(f"<{k}>{v}</{k}>" for k, v in item.items()) + "</item>"
                      for item in items)
    return (f'<?xml version="1.0" encoding="UTF-8"?><rss version="2.0"><channel><title>{title}</title>'
            f"<link>http://example.org/</link><description>news</description>{entries}</channel></rss>").encode()


def atom(title: str, entries: list[dict[str, str]]) -> bytes:
    """An Atom feed; ``link`` becomes ``<link href=...>``, ``author`` an ``<author><name>``."""
    parts = []
    for e in entries:
        inner = "".join(
            f'<link href="{v}"/>' if k == "link" else f"<author><name>{v}</name></author>" if k == "author"
            else f"<{k}>{v}</{k}>" for k, v in e.items())
        parts.append(f"<entry>{inner}</entry>")
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>{title}</title><id>urn:feed</id><updated>2024-03-01T00:00:00Z</updated>"
            f"{''.join(parts)}</feed>").encode()
