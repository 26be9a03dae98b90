"""One refresh round over every URL source in the fetch state.

A round fetches every source at once (the per-host gate keeps it polite), conditionally when it
has validators; then every article page it needs, also at once. What it learns is written to the
state as each response arrives, so a round that is interrupted keeps what it fetched:

- a feed that has not changed (304) costs one request; entries whose article could not be fetched
  yet are retried anyway, up to ``MAX_ATTEMPTS`` rounds;
- a new entry's page is fetched and extracted; an entry whose feed fields changed is fetched again
  (conditionally), and a page whose text changed is an update, its time of change recorded;
- one story under several URLs (tracking parameters, AMP, another site's copy) is stored once,
  by canonical URL and then by text;
- every failure is a ``Problem`` for that source or page, and the round goes on.

A feed's validators are stored only once all its entries were handled, so a round killed midway
fetches that feed again next time rather than miss an entry.
"""

from __future__ import annotations

import time
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from rag.errors import FetchError
from rag.ingest.web.config import FetchSettings
from rag.ingest.web.extract import Extracted, extract_article, text_hash
from rag.ingest.web.feeds import Feed, FeedEntry, is_feed, parse_feed
from rag.ingest.web.state import FetchState, SourceRecord
from rag.ingest.web.urls import canonical_url, looks_like_feed
from rag.models import Problem

if TYPE_CHECKING:
    import httpx

    from rag.ingest.web.fetch import Fetched, Fetcher

MAX_ATTEMPTS = 3  # rounds in which an entry's article is tried before it is given up
_FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
_PAGE_ACCEPT = "text/html, application/xhtml+xml;q=0.9, */*;q=0.1"

RoundStatus = Literal["ok", "not modified", "failed"]


@dataclass(frozen=True)
class SourceRound:
    """What one round did for one source: ``new``/``updated``/``unchanged`` articles, ``failed``
    entries, and ``error`` when the source itself failed."""

    id: str
    url: str
    status: RoundStatus
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    error: str | None = None


@dataclass(frozen=True)
class RefreshReport:
    """A whole round: every source's outcome, the requests it sent and how long it took."""

    sources: list[SourceRound] = field(default_factory=list)
    requests: int = 0
    seconds: float = 0.0

    def count(self, what: str) -> int:
        return sum(getattr(s, what) for s in self.sources)

    def line(self) -> str:
        """One line for the CLI.

        >>> RefreshReport([SourceRound("s1", "https://e.com/rss", "not modified")], 1, 0.04).line()
        'fetched 1 URL source in 0.0s (1 request): 0 new, 0 updated, 0 unchanged articles; 1 not modified, 0 failed'
        """
        n = len(self.sources)
        status = [s.status for s in self.sources]
        return (f"fetched {n} URL source{'' if n == 1 else 's'} in {self.seconds:.1f}s "
                f"({self.requests} request{'' if self.requests == 1 else 's'}): {self.count('new')} new, "
                f"{self.count('updated')} updated, {self.count('unchanged')} unchanged articles; "
                f"{status.count('not modified')} not modified, {status.count('failed')} failed")


@dataclass(frozen=True)
class RoundProblems:
    """The caveats of a round, in the shape an ``IngestReport`` keeps them."""

    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    duplicates: list[Problem] = field(default_factory=list)


@dataclass
class _Job:
    """An article page to fetch (or, for a page source, already fetched) for source ``sid``."""

    sid: str
    link: str
    entry: FeedEntry | None = None
    site: str | None = None
    fetched: Fetched | None = None  # a page source's own response, read in the first phase
    etag: str | None = None
    last_modified: str | None = None
    followers: list[tuple[str, FeedEntry]] = field(default_factory=list)  # other entries, same page


@dataclass
class _Tally:
    record: SourceRecord
    status: RoundStatus = "ok"
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    error: str | None = None
    feed: Fetched | None = None  # a feed's response, whose validators are stored at the end

    def result(self) -> SourceRound:
        return SourceRound(self.record.id, self.record.url, self.status, self.new, self.updated,
                           self.unchanged, self.failed, self.error)


def refresh(state: FetchState, settings: FetchSettings, transport: httpx.BaseTransport | None = None
            ) -> tuple[RefreshReport, RoundProblems]:
    """Refresh every source in ``state`` once; what happened, and the problems to report.

    >>> # refresh(FetchState(Path("index/sources.sqlite")), FetchSettings())
    """
    from rag.ingest.web.fetch import Fetcher  # the HTTP client loads only when a round runs

    started = time.perf_counter()
    out = RoundProblems()
    tallies = {rec.id: _Tally(rec) for rec in state.sources()}
    fetcher = Fetcher(settings, transport)
    pool = ThreadPoolExecutor(max_workers=max(1, settings.workers), thread_name_prefix="fetch")
    clean = False
    try:
        first: dict[Future[Fetched], _Tally] = {}
        for tally in tallies.values():
            etag, modified = state.validators(tally.record.id)
            accept = _PAGE_ACCEPT if tally.record.kind == "page" else _FEED_ACCEPT
            first[pool.submit(fetcher.get, tally.record.url, etag, modified, accept)] = tally
        jobs: dict[str, _Job] = {}
        for future in as_completed(first):
            _source_done(state, first[future], future, jobs, settings, out)
        second = {pool.submit(_fetch_page, fetcher, job): job for job in jobs.values()}
        for future in as_completed(second):
            job = second[future]
            _page_done(state, tallies[job.sid], job, *future.result(), out, tallies)
        for tally in tallies.values():
            if tally.feed is not None and tally.status == "ok":
                state.fetched(tally.record.id, status="ok", etag=tally.feed.etag,
                              last_modified=tally.feed.last_modified, keep_validators=False)
        clean = True
    finally:
        # Interrupted: requests still in flight end with the process; none queued is started.
        pool.shutdown(wait=clean, cancel_futures=not clean)
        fetcher.close()
        state.commit()
    report = RefreshReport([t.result() for t in tallies.values()], fetcher.requests,
                           round(time.perf_counter() - started, 3))
    return report, out


# -- the first phase: sources ---------------------------------------------------------------
def _source_done(state: FetchState, tally: _Tally, future: Future[Fetched], jobs: dict[str, _Job],
                 settings: FetchSettings, out: RoundProblems) -> None:
    rec = tally.record
    try:
        fetched = future.result()
        if fetched.status == 304:
            tally.status = "not modified"
            state.fetched(rec.id, status="not modified")
            if rec.kind == "feed":
                _queue_pending(state, rec, jobs)
            return
        if is_feed(fetched.media_type, fetched.body):
            feed = parse_feed(fetched.body, fetched.final_url, fetched.media_type, settings.max_entries)
        elif rec.kind == "feed" or (rec.kind == "auto" and looks_like_feed(rec.url)):
            parse_feed(fetched.body, fetched.final_url, fetched.media_type)  # raises, saying why
            raise FetchError("not an RSS or Atom feed: check the feed's address")
        else:
            tally.feed = None
            state.fetched(rec.id, status="ok", kind="page")
            _queue(jobs, _Job(rec.id, rec.url, fetched=fetched, etag=fetched.etag,
                              last_modified=fetched.last_modified))
            return
    except FetchError as exc:
        tally.status, tally.error = "failed", str(exc)
        state.fetched(rec.id, status="failed", error=str(exc))
        out.problems.append(Problem(rec.url, str(exc)))
        return
    _feed_read(state, tally, fetched, feed, jobs, out)


def _feed_read(state: FetchState, tally: _Tally, fetched: Fetched, feed: Feed, jobs: dict[str, _Job],
               out: RoundProblems) -> None:
    rec = tally.record
    tally.feed = fetched
    # Validators wait for the end of the round: see the module docstring.
    state.fetched(rec.id, status="ok", kind="feed", title=feed.title)
    out.problems.extend(feed.problems)
    tally.failed += len(feed.problems)
    handled: set[str] = set()
    for entry in feed.entries:
        handled.add(entry.key)
        seen = state.entry(rec.id, entry.key)
        state.saw_entry(rec.id, entry.key, entry.link, entry.fingerprint)
        if seen is not None and seen[1] is not None and seen[0] == entry.fingerprint:
            state.link(rec.id, seen[1])
            tally.unchanged += 1
            continue
        if seen is not None and seen[1] is None and seen[2] >= MAX_ATTEMPTS and seen[0] == entry.fingerprint:
            continue  # given up on; a change in the feed's entry tries it again
        known = state.alias(canonical_url(entry.link))
        if seen is None and known is not None and state.article(known) is not None:
            # A story this index already has, under a link of another entry or feed.
            state.link(rec.id, known)
            state.entry_done(rec.id, entry.key, known)
            out.duplicates.append(Problem(entry.link, f"duplicate of {known}: stored once"))
            tally.unchanged += 1
            continue
        stored = state.article(known) if known else None
        _queue(jobs, _Job(rec.id, entry.link, entry=entry, site=feed.title,
                          etag=stored.etag if stored else None,
                          last_modified=stored.last_modified if stored else None))
    state.commit()
    _queue_pending(state, rec, jobs, handled)


def _queue_pending(state: FetchState, rec: SourceRecord, jobs: dict[str, _Job], handled: set[str] = frozenset()
                   ) -> None:
    for key, link in state.pending_entries(rec.id, MAX_ATTEMPTS):
        if key in handled:  # listed in the feed just read: queued (or not) already
            continue
        entry = FeedEntry(key=key, link=link, title=None, authors=(), published=None, summary=None, fingerprint="")
        _queue(jobs, _Job(rec.id, link, entry=entry))


def _queue(jobs: dict[str, _Job], job: _Job) -> None:
    """Queue ``job``, unless the same page (by canonical URL) is queued already: then its entry
    waits for that page's result."""
    key = canonical_url(job.link)
    first = jobs.get(key)
    if first is None:
        jobs[key] = job
    elif job.entry is not None and not (first.sid == job.sid and first.entry and first.entry.key == job.entry.key):
        first.followers.append((job.sid, job.entry))


# -- the second phase: article pages --------------------------------------------------------
def _fetch_page(fetcher: Fetcher, job: _Job) -> tuple[Fetched | None, Extracted | None, FetchError | None]:
    """Runs in a worker: fetch (unless fetched already) and extract the page."""
    try:
        fetched = job.fetched or fetcher.get(job.link, job.etag, job.last_modified, _PAGE_ACCEPT)
        if fetched.status == 304:
            return fetched, None, None
        if is_feed(fetched.media_type, fetched.body):
            raise FetchError("is a feed, not an article page: add it as a source of its own to index its entries")
        return fetched, extract_article(fetched.body, fetched.final_url, job.entry, job.site), None
    except FetchError as exc:
        return None, None, exc


def _page_done(state: FetchState, tally: _Tally, job: _Job, fetched: Fetched | None,
               extracted: Extracted | None, error: FetchError | None, out: RoundProblems,
               tallies: dict[str, _Tally]) -> None:
    entries = ([(job.sid, job.entry)] if job.entry else []) + job.followers
    target: str | None = None
    outcome: Literal["new", "updated", "unchanged", "failed"] = "failed"
    if error is not None or fetched is None:
        out.problems.append(Problem(job.link, str(error)))
    elif extracted is None:  # 304: the page has not changed since it was stored
        target = state.alias(canonical_url(job.link)) or canonical_url(job.link)
        outcome = "unchanged"
    elif extracted.article is None:
        out.problems.extend(extracted.problems)
    else:
        out.warnings.extend(extracted.warnings)
        article, canonical = extracted.article, extracted.canonical
        digest = text_hash(article.text)
        stored = state.article(canonical)
        if stored is not None:
            outcome = "unchanged" if stored.text_hash == digest else "updated"
            target = canonical
        elif (twin := state.by_text(digest)) is not None:
            out.duplicates.append(Problem(job.link, f"same text as {twin}: stored once"))
            outcome, target = "unchanged", twin
        else:
            outcome, target = "new", canonical
        if target == canonical:
            if stored is not None and outcome == "unchanged" and stored.article == article:
                pass  # nothing new to write
            else:
                state.put_article(canonical, article, digest, fetched.etag, fetched.last_modified,
                                  changed=outcome == "updated")
        for url in {canonical_url(job.link), canonical_url(fetched.final_url), canonical}:
            state.add_alias(url, target)
    if job.entry is None:  # a page source: the source itself succeeded or failed
        if target is None:
            tally.status, tally.error = "failed", out.problems[-1].reason if out.problems else "no article"
            state.fetched(job.sid, status="failed", error=tally.error)
        elif fetched is not None and fetched.status == 200:
            state.fetched(job.sid, status="ok", etag=fetched.etag, last_modified=fetched.last_modified,
                          keep_validators=False)
    for n, (sid, entry) in enumerate(entries):
        if target is not None:
            state.link(sid, target)
        state.entry_done(sid, entry.key, target)
        counted = tallies[sid]
        if n > 0 and target is not None:
            out.duplicates.append(Problem(entry.link, f"duplicate of {target}: stored once"))
            counted.unchanged += 1
        else:
            setattr(counted, outcome, getattr(counted, outcome) + 1)
    if job.entry is None:
        if target is not None:
            state.link(job.sid, target)
        setattr(tally, outcome, getattr(tally, outcome) + 1)
    state.commit()

