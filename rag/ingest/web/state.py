"""The fetch state of an index's URL sources: ``<index>/sources.sqlite``.

Why a file of its own beside the generations, and not a table in ``gen-*/store.sqlite``: a
generation is rebuilt from scratch and replaced by every reindex (and deleted two reindexes
later), while validators (ETag, Last-Modified), the entries already seen and the articles
already fetched must outlive every one of them, and a reindex that dies before its swap. So the
state is one SQLite file in the index folder, in WAL mode, committed after every response it
learns from: a round that is killed keeps everything it fetched, and the next round builds the
index from it.

It holds:

- ``sources``: every URL source (a feed, an article page, or not yet known), its validators,
  last fetch, last success, status and last error;
- ``entries``: every feed entry seen, with the article it gave (NULL until one is fetched);
- ``articles``: every fetched article (the ``Article`` as JSON) by canonical URL, with its text
  hash, its own validators, and when it was first seen and last changed;
- ``aliases``: every URL met for an article (feed links, redirects, AMP, tracking variants);
- ``links``: which source lists which article. An article is indexed while a source links it:
  a source that fails keeps its links, so a dead feed never takes its articles out of the index.

>>> state = FetchState(Path("index/sources.sqlite"))   # doctest: +SKIP
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator, Literal, Sequence

from rag.ingest.web.urls import source_id
from rag.models import Article

STATE_FILE = "sources.sqlite"
FORMAT_VERSION = 1
SourceKind = Literal["feed", "page", "auto"]
SourceStatus = Literal["new", "ok", "not modified", "failed"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS sources (
    id TEXT PRIMARY KEY,
    url TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,               -- feed | page | auto (not fetched successfully yet)
    listed_in TEXT,                   -- the list file that names it; NULL: named itself
    added_at TEXT NOT NULL,
    etag TEXT,
    last_modified TEXT,
    title TEXT,
    last_fetch TEXT,
    last_ok TEXT,
    status TEXT NOT NULL DEFAULT 'new',
    last_error TEXT
);
CREATE TABLE IF NOT EXISTS entries (
    source_id TEXT NOT NULL,
    key TEXT NOT NULL,
    link TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    article TEXT,                     -- canonical URL of its article; NULL until fetched
    attempts INTEGER NOT NULL DEFAULT 0,
    first_seen TEXT NOT NULL,
    PRIMARY KEY (source_id, key)
);
CREATE TABLE IF NOT EXISTS articles (
    url TEXT PRIMARY KEY,             -- canonical URL
    text_hash TEXT NOT NULL,
    record TEXT NOT NULL,             -- the Article, as JSON
    etag TEXT,
    last_modified TEXT,
    fetched_at TEXT NOT NULL,
    first_seen TEXT NOT NULL,
    changed_at TEXT                   -- when its text last changed; NULL: never since first seen
);
CREATE INDEX IF NOT EXISTS articles_hash ON articles(text_hash);
CREATE TABLE IF NOT EXISTS aliases (url TEXT PRIMARY KEY, article TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS links (
    source_id TEXT NOT NULL,
    article TEXT NOT NULL,
    PRIMARY KEY (source_id, article)
);
"""


@dataclass(frozen=True)
class SourceRecord:
    """One URL source as ``GET /sources`` shows it."""

    id: str
    url: str
    kind: SourceKind
    listed_in: str | None
    added_at: str
    title: str | None
    last_fetch: str | None
    last_ok: str | None
    status: SourceStatus
    last_error: str | None
    articles: int


@dataclass(frozen=True)
class StoredArticle:
    """A fetched article and what a conditional re-fetch of it needs."""

    article: Article
    text_hash: str
    etag: str | None
    last_modified: str | None


def now() -> str:
    """The time as the state records it: UTC, ISO 8601, to the second."""
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class FetchState:
    """``<index>/sources.sqlite``, opened (and created) at ``path``. One connection, used by one
    thread at a time; several processes may open the file at once (WAL, busy timeout)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(path, timeout=30, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._db.execute("INSERT OR IGNORE INTO meta VALUES ('format_version', ?)", (str(FORMAT_VERSION),))
        self._db.commit()

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> FetchState:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def commit(self) -> None:
        self._db.commit()

    # -- sources ---------------------------------------------------------------------------
    def add_source(self, url: str, kind: SourceKind = "auto", listed_in: str | None = None) -> bool:
        """Register ``url`` (no-op when it is already known); True when it was new."""
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO sources (id, url, kind, listed_in, added_at) VALUES (?,?,?,?,?)",
            (source_id(url), url, kind, listed_in, now()))
        if not cursor.rowcount and listed_in is not None:
            self._db.execute("UPDATE sources SET listed_in = ? WHERE url = ?", (listed_in, url))
        self._db.commit()
        return cursor.rowcount == 1

    def remove_source(self, sid: str) -> bool:
        """Forget a source, its entries and its links; articles no other source links are dropped
        (the next reindex takes them out of the index). False when there is no such source."""
        cursor = self._db.execute("DELETE FROM sources WHERE id = ?", (sid,))
        self._db.execute("DELETE FROM entries WHERE source_id = ?", (sid,))
        self._db.execute("DELETE FROM links WHERE source_id = ?", (sid,))
        self._db.execute("DELETE FROM articles WHERE url NOT IN (SELECT article FROM links)")
        self._db.execute("DELETE FROM aliases WHERE article NOT IN (SELECT url FROM articles)")
        self._db.commit()
        return cursor.rowcount == 1

    def keep_only(self, urls: Sequence[str]) -> None:
        """Forget every source but ``urls`` (a reindex that names its sources mirrors them)."""
        wanted = set(urls)
        for sid, url in self._db.execute("SELECT id, url FROM sources").fetchall():
            if url not in wanted:
                self.remove_source(sid)

    def sources(self) -> list[SourceRecord]:
        """Every source, in the order they were added, with how many articles each links."""
        rows = self._db.execute(
            "SELECT s.id, s.url, s.kind, s.listed_in, s.added_at, s.title, s.last_fetch, s.last_ok, s.status, "
            "s.last_error, (SELECT count(*) FROM links l WHERE l.source_id = s.id) "
            "FROM sources s ORDER BY s.added_at, s.rowid").fetchall()
        return [SourceRecord(*row) for row in rows]

    def source(self, sid: str) -> SourceRecord | None:
        return next((s for s in self.sources() if s.id == sid), None)

    def validators(self, sid: str) -> tuple[str | None, str | None]:
        row = self._db.execute("SELECT etag, last_modified FROM sources WHERE id = ?", (sid,)).fetchone()
        return (row[0], row[1]) if row else (None, None)

    def fetched(self, sid: str, *, status: SourceStatus, error: str | None = None, kind: SourceKind | None = None,
                etag: str | None = None, last_modified: str | None = None, title: str | None = None,
                keep_validators: bool = True) -> None:
        """Record a fetch of source ``sid``: a failure keeps the validators, so the next round
        still asks conditionally; a success stores the new ones (``keep_validators=False``)."""
        at = now()
        self._db.execute(
            "UPDATE sources SET last_fetch = ?, status = ?, last_error = ?, kind = coalesce(?, kind), "
            "title = coalesce(?, title), last_ok = CASE WHEN ? = 'failed' THEN last_ok ELSE ? END "
            "WHERE id = ?", (at, status, error, kind, title, status, at, sid))
        if not keep_validators:
            self._db.execute("UPDATE sources SET etag = ?, last_modified = ? WHERE id = ?",
                             (etag, last_modified, sid))
        self._db.commit()

    # -- entries ---------------------------------------------------------------------------
    def entry(self, sid: str, key: str) -> tuple[str, str | None, int] | None:
        """``(fingerprint, article, attempts)`` of a seen entry, or None."""
        return self._db.execute("SELECT fingerprint, article, attempts FROM entries WHERE source_id = ? AND key = ?",
                                (sid, key)).fetchone()

    def pending_entries(self, sid: str, max_attempts: int) -> list[tuple[str, str]]:
        """``(key, link)`` of entries whose article was never fetched, tried fewer than
        ``max_attempts`` times: retried even when the feed itself has not changed."""
        return self._db.execute("SELECT key, link FROM entries WHERE source_id = ? AND article IS NULL "
                                "AND attempts < ? ORDER BY first_seen", (sid, max_attempts)).fetchall()

    def saw_entry(self, sid: str, key: str, link: str, fingerprint: str) -> None:
        self._db.execute(
            "INSERT INTO entries (source_id, key, link, fingerprint, first_seen) VALUES (?,?,?,?,?) "
            "ON CONFLICT (source_id, key) DO UPDATE SET link = excluded.link, fingerprint = excluded.fingerprint",
            (sid, key, link, fingerprint, now()))

    def entry_done(self, sid: str, key: str, article: str | None) -> None:
        """Record an attempt at an entry's article: its canonical URL, or None when it failed."""
        self._db.execute("UPDATE entries SET attempts = attempts + 1, article = coalesce(?, article) "
                         "WHERE source_id = ? AND key = ?", (article, sid, key))
        self._db.commit()

    # -- articles --------------------------------------------------------------------------
    def alias(self, url: str) -> str | None:
        """The canonical URL of the article ``url`` (already canonicalised) led to, if any."""
        row = self._db.execute("SELECT article FROM aliases WHERE url = ?", (url,)).fetchone()
        return row[0] if row else None

    def add_alias(self, url: str, article: str) -> None:
        self._db.execute("INSERT OR REPLACE INTO aliases VALUES (?, ?)", (url, article))

    def article(self, url: str) -> StoredArticle | None:
        row = self._db.execute("SELECT record, text_hash, etag, last_modified FROM articles WHERE url = ?",
                               (url,)).fetchone()
        return StoredArticle(Article(**json.loads(row[0])), row[1], row[2], row[3]) if row else None

    def by_text(self, text_hash: str) -> str | None:
        """The canonical URL of an article with this text, if one is stored (syndicated copies)."""
        row = self._db.execute("SELECT url FROM articles WHERE text_hash = ? LIMIT 1", (text_hash,)).fetchone()
        return row[0] if row else None

    def put_article(self, url: str, article: Article, text_hash: str, etag: str | None,
                    last_modified: str | None, changed: bool) -> None:
        at = now()
        self._db.execute(
            "INSERT INTO articles (url, text_hash, record, etag, last_modified, fetched_at, first_seen) "
            "VALUES (?,?,?,?,?,?,?) ON CONFLICT (url) DO UPDATE SET text_hash = excluded.text_hash, "
            "record = excluded.record, etag = excluded.etag, last_modified = excluded.last_modified, "
            "fetched_at = excluded.fetched_at, changed_at = CASE WHEN ? THEN excluded.fetched_at ELSE changed_at END",
            (url, text_hash, json.dumps(asdict(article), ensure_ascii=False), etag, last_modified, at, at, changed))

    def link(self, sid: str, article: str) -> None:
        self._db.execute("INSERT OR IGNORE INTO links VALUES (?, ?)", (sid, article))

    def changed_at(self, url: str) -> str | None:
        row = self._db.execute("SELECT changed_at FROM articles WHERE url = ?", (url,)).fetchone()
        return row[0] if row else None

    def linked_articles(self, sids: Sequence[str]) -> Iterator[Article]:
        """Every article linked by one of ``sids``, once, oldest first."""
        marks = ",".join("?" * len(sids))
        for (record,) in self._db.execute(
                f"SELECT a.record FROM articles a WHERE a.url IN (SELECT article FROM links WHERE source_id IN "
                f"({marks})) ORDER BY a.first_seen, a.url", list(sids)):
            yield Article(**json.loads(record))
