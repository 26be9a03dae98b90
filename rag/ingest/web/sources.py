"""A reindex's sources when some are URLs: which to read from disk, which to fetch, what the
manifest records, and the articles of both together.

A source is a folder, a file, a URL (a feed or an article page), or a text file that lists URLs,
one a line (``#`` starts a comment). The URL sources live in the fetch state
(``<index>/sources.sqlite``), which is what a bare ``rag reindex`` refreshes: a reindex that
names its sources makes the state mirror them; ``POST /sources`` and ``DELETE /sources/{id}``
change it between reindexes. A list file is read again by every reindex, so editing it is how
its URLs are added and removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Sequence
from urllib.parse import urlsplit

from rag.errors import BadSource
from rag.ingest import IngestReport
from rag.ingest.readers import Deduplicator, stream_sources
from rag.ingest.web.config import FetchSettings
from rag.ingest.web.refresh import RefreshReport, RoundProblems
from rag.ingest.web.state import STATE_FILE, FetchState, SourceRecord
from rag.ingest.web.urls import SCHEMES, is_url, looks_like_feed, source_id
from rag.models import Article

MAX_LIST_BYTES = 1_000_000


@dataclass(frozen=True)
class SourcePlan:
    """``paths`` to read, ``urls`` to fetch (each with the list file that names it, or None),
    and the ``lists`` read."""

    paths: list[str] = field(default_factory=list)
    urls: list[tuple[str, str | None]] = field(default_factory=list)
    lists: list[str] = field(default_factory=list)


def url_list(path: Path) -> list[str] | None:
    """The URLs a text file lists, one a line; None when it is not such a list (an article, say).

    >>> url_list(Path("seeds/000_29be564519ffc8c1.txt")) is None
    True
    """
    try:
        if not path.is_file() or path.stat().st_size > MAX_LIST_BYTES:
            return None
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    urls = []
    for line in lines:
        text = line.strip()
        if text and not text.startswith("#"):
            urls.append(text.split(" #", 1)[0].strip())
    return urls if urls and all(is_url(u) for u in urls) else None


def plan_sources(sources: Sequence[str | Path]) -> SourcePlan:
    """Sort ``sources`` into paths, URLs and list files (read now).

    >>> plan_sources(["https://example.com/rss.xml", "seeds/"]).urls
    [('https://example.com/rss.xml', None)]
    """
    plan = SourcePlan()
    for source in sources:
        text = str(source)
        if is_url(text):
            plan.urls.append((text.strip(), None))
            continue
        path = Path(text).resolve()
        listed = url_list(path)
        if listed is None:
            plan.paths.append(str(path))
        else:
            plan.lists.append(str(path))
            plan.urls.extend((u, str(path)) for u in listed)
    return plan


def has_url_sources(index_dir: Path) -> bool:
    """Whether the index folder has URL sources registered (a bare reindex then has work)."""
    path = index_dir / STATE_FILE
    if not path.exists():
        return False
    with FetchState(path) as state:
        return bool(state.sources())


def list_sources(index_dir: Path) -> list[SourceRecord]:
    """The URL sources of the index in ``index_dir``, in the order they were added ([] when none)."""
    path = index_dir / STATE_FILE
    if not path.exists():
        return []
    with FetchState(path) as state:
        return state.sources()


def add_source(index_dir: Path, url: str) -> tuple[SourceRecord, bool]:
    """Register the feed at ``url``, which the next reindex fetches; the source, and whether it
    is new. BadSource when ``url`` is not an http(s) URL.

    >>> # add_source(Path("index"), "https://www.bbc.co.uk/news/rss.xml")
    """
    url = url.strip()
    try:
        parts = urlsplit(url)
        usable = parts.scheme.lower() in SCHEMES and bool(parts.hostname)
    except ValueError:
        usable = False
    if not usable:
        raise BadSource(f"{url!r} is not an http(s) URL: give a feed's address, such as "
                        "https://example.com/rss.xml")
    with FetchState(index_dir / STATE_FILE) as state:
        added = state.add_source(url, "feed")
        record = state.source(source_id(url))
    assert record is not None
    return record, added


def remove_source(index_dir: Path, sid: str) -> SourceRecord | None:
    """Forget source ``sid``; the next reindex takes out the articles no other source has. The
    removed source, or None when there is none with that id. BadSource when a list file names it
    (the next reindex would only add it again)."""
    path = index_dir / STATE_FILE
    if not path.exists():
        return None
    with FetchState(path) as state:
        record = state.source(sid)
        if record is None:
            return None
        if record.listed_in is not None:
            raise BadSource(f"{record.url} is listed in {record.listed_in}: remove it from that file, "
                            "then reindex")
        state.remove_source(sid)
    return record


def read_all(sources: Sequence[str | Path], index_dir: Path, settings: FetchSettings, named: bool
             ) -> tuple[list[str], Iterator[Article], IngestReport, RefreshReport | None]:
    """Read the paths and refresh the URL sources among ``sources``: what the manifest records,
    every article as it is read (the local ones first, then the fetched ones, each story once),
    the report they fill as they are read (complete once they are all read), and the round's
    report (None when the index has no URL sources).

    ``named``: the caller named ``sources`` (the state then mirrors their URLs); otherwise they
    are the manifest's, and the state's own URL sources are refreshed, new ones included.
    """
    plan = plan_sources(sources)
    path = index_dir / STATE_FILE
    report = IngestReport()
    if not plan.urls and not plan.lists and not path.exists():
        return plan.paths, stream_sources(plan.paths, report), report, None
    from rag.ingest.web.refresh import refresh  # loads the HTTP client and parsers

    with FetchState(path) as state:
        fresh = not state.sources()
        if named:
            state.keep_only([url for url, _ in plan.urls])
        for url, listed_in in plan.urls:
            if named or fresh or listed_in is not None:
                state.add_source(url, "feed" if looks_like_feed(url) else "auto", listed_in)
        for listed in plan.lists:
            # A URL taken out of its list file is a source no more.
            still = {url for url, where in plan.urls if where == listed}
            for record in state.sources():
                if record.listed_in == listed and record.url not in still:
                    state.remove_source(record.id)
        records = state.sources()
        round_report, round_problems = refresh(state, settings) if records else (RefreshReport(), None)
        web = list(state.linked_articles([r.id for r in records]))
        recorded = plan.paths + plan.lists + [r.url for r in state.sources() if r.listed_in is None]
    return recorded, _with_fetched(plan.paths, web, report, round_problems), report, round_report


def _with_fetched(paths: list[str], web: list[Article], report: IngestReport,
                  round_problems: RoundProblems | None) -> Iterator[Article]:
    """The articles of ``paths``, then the fetched ones that none of them already holds."""
    seen = Deduplicator()
    yield from stream_sources(paths, report, seen)
    for article in web:
        verdict = seen.check(article)
        if verdict is None:
            yield article
        elif verdict[0] == "duplicate":
            report.duplicates.append(verdict[1])
        # A fetched story under an id already read is the same story: left out quietly.
    if round_problems is not None:
        report.problems.extend(round_problems.problems)
        report.warnings.extend(round_problems.warnings)
        report.duplicates.extend(round_problems.duplicates)
