"""Following the news: feeds and article pages from a real HTTP server on 127.0.0.1, fetched
politely, refreshed round after round into a real index with the real model."""

from __future__ import annotations

from pathlib import Path

import pytest
from newsserver import Route, atom, page, rss, serve_site

from rag.ingest.web import FetchSettings
from rag.ingest.web.state import STATE_FILE, FetchState
from rag.ingest.web.urls import source_id
from rag.models import Article, Problem
from rag.pipeline import Pipeline
from rag.settings import Settings

# No delay between requests to the one local host; short timeouts for the slow-server cases.
FETCH = FetchSettings(host_delay=0.0, connect_timeout=2.0, read_timeout=0.5, total_timeout=5.0)
RSS = "application/rss+xml"
ATOM = "application/atom+xml"

FED = ["The Federal Reserve held its benchmark interest rate steady on Wednesday and signalled that three "
       "cuts could come later in the year as inflation cooled.",
       "Chair Jerome Powell told reporters that the committee wanted more confidence before it moved, "
       "and that the labour market remained strong."]
FLOODS = ["Heavy rain caused severe flooding across the north of the country on Tuesday, forcing thousands "
          "of people to leave their homes as rivers burst their banks.",
          "Emergency services said more than forty people had been rescued from cars and rooftops, and "
          "warned that more rain was expected overnight."]
CHIPS = ["The government announced a new plan on Monday to support domestic semiconductor factories with "
         "grants and tax credits worth billions over the next decade.",
         "Industry groups welcomed the plan but said that a shortage of skilled engineers would slow any "
         "expansion unless training programmes grew quickly too."]
ELECTION = ["Voters in the capital went to the polls on Sunday in a closely watched mayoral election that "
            "turned on housing costs, public transport and crime.",
            "Turnout was higher than at the last election, officials said, and results were expected early "
            "on Monday morning after the count."]


@pytest.fixture()
def site():
    yield from serve_site()


def make_pipeline(tmp_path: Path, embedder) -> Pipeline:
    return Pipeline(Settings(index_dir=tmp_path / "index", fetch=FETCH), embedder=embedder)


def publish(site, feed_path: str = "/news/rss.xml") -> None:
    """An RSS feed of two stories (one page rich in metadata, one bare) and an Atom feed of one."""
    base = site.url
    site.routes["/news/fed.html"] = Route(page("Fed holds rates steady", FED, canonical=f"{base}/news/fed.html",
                                               author="Jane Roe", date="2024-03-20", site_name="Example News"))
    site.routes["/news/floods.html"] = Route(page("Floods", FLOODS))
    site.routes[feed_path] = Route(rss("Example News", [
        {"title": "Fed holds rates steady", "link": f"{base}/news/fed.html", "guid": "fed-1",
         "pubDate": "Wed, 20 Mar 2024 18:00:00 GMT"},
        {"title": "Floods force thousands from their homes", "link": f"{base}/news/floods.html?utm_source=rss",
         "guid": "floods-1", "author": "news@example.org (John Doe)", "pubDate": "Tue, 19 Mar 2024 09:00:00 GMT"},
    ]), type=RSS, etag='"rss-1"')
    site.routes["/tech/atom.xml"] = Route(atom("Tech Desk", [
        {"title": "Chip plan", "link": f"{base}/tech/chips.html", "id": "urn:chips", "author": "Ann Lee",
         "updated": "2024-03-18T10:00:00Z"},
    ]), type=ATOM, last_modified="Mon, 18 Mar 2024 10:00:00 GMT")
    site.routes["/tech/chips.html"] = Route(page("Government unveils chip plan", CHIPS))


def stored(pipeline: Pipeline) -> dict[str, Article]:
    index = pipeline.index()
    (count,) = index.store._db.execute("SELECT count(*) FROM articles").fetchone()
    ids = [row[0] for row in index.store._db.execute("SELECT id FROM articles ORDER BY id")]
    assert len(ids) == count
    return {a.url: a for a in index.store.articles(ids).values()}


def test_a_first_round_indexes_every_entry_with_its_metadata(site, tmp_path, embedder):
    publish(site)
    pipeline = make_pipeline(tmp_path, embedder)
    summary = pipeline.reindex([f"{site.url}/news/rss.xml", f"{site.url}/tech/atom.xml"])
    base = site.url.removeprefix("http://")
    assert summary.skipped == [] and summary.warnings == []
    assert (summary.articles, summary.added, summary.updated, summary.removed) == (3, 3, 0, 0)
    assert stored(pipeline) == {
        f"http://{base}/news/fed.html": Article(
            id=stored(pipeline)[f"http://{base}/news/fed.html"].id, title="Fed holds rates steady",
            text="\n".join(FED), url=f"http://{base}/news/fed.html", source="Example News",
            published_at="2024-03-20", author="Jane Roe", origin=f"{site.url}/news/fed.html"),
        # The page gives a bare title and nothing else: the feed's own fields fill in.
        f"http://{base}/news/floods.html": Article(
            id=stored(pipeline)[f"http://{base}/news/floods.html"].id, title="Floods",
            text="\n".join(FLOODS), url=f"http://{base}/news/floods.html", source="Example News",
            published_at="2024-03-19", author="John Doe",
            origin=f"{site.url}/news/floods.html?utm_source=rss"),
        f"http://{base}/tech/chips.html": Article(
            id=stored(pipeline)[f"http://{base}/tech/chips.html"].id, title="Government unveils chip plan",
            text="\n".join(CHIPS), url=f"http://{base}/tech/chips.html", source="Tech Desk",
            published_at="2024-03-18", author="Ann Lee", origin=f"{site.url}/tech/chips.html"),
    }
    assert summary.fetched is not None
    assert summary.fetched.line().startswith("fetched 2 URL sources in ")
    assert summary.fetched.line().endswith("(6 requests): 3 new, 0 updated, 0 unchanged articles; "
                                           "0 not modified, 0 failed")
    assert [(s.url, s.kind, s.status, s.articles, s.last_error, s.title) for s in pipeline.sources()] == [
        (f"{site.url}/news/rss.xml", "feed", "ok", 2, None, "Example News"),
        (f"{site.url}/tech/atom.xml", "feed", "ok", 1, None, "Tech Desk"),
    ]
    # Politely: robots.txt first, a clear User-Agent on every request.
    assert site.paths()[0] == "/robots.txt"
    assert {r.user_agent for r in site.log} == {FETCH.user_agent}
    assert pipeline.info().sources == (f"{site.url}/news/rss.xml", f"{site.url}/tech/atom.xml")


def test_a_second_round_asks_conditionally_gets_304s_and_embeds_nothing(site, tmp_path, embedder):
    publish(site)
    pipeline = make_pipeline(tmp_path, embedder)
    pipeline.reindex([f"{site.url}/news/rss.xml", f"{site.url}/tech/atom.xml"])
    site.log.clear()
    summary = pipeline.reindex()  # bare: the sources the manifest and the fetch state hold
    # robots.txt first, then both feeds at once (in either order).
    assert sorted((r.path, r.status, r.if_none_match, r.if_modified_since) for r in site.log) == [
        ("/news/rss.xml", 304, '"rss-1"', None),
        ("/robots.txt", 404, None, None),
        ("/tech/atom.xml", 304, None, "Mon, 18 Mar 2024 10:00:00 GMT"),
    ]
    assert site.paths()[0] == "/robots.txt"
    assert (summary.articles, summary.added, summary.updated, summary.removed, summary.unchanged) == (3, 0, 0, 0, 3)
    assert (summary.embedded, summary.skipped) == (0, [])
    assert [(s.status, s.new, s.unchanged) for s in summary.fetched.sources] == [("not modified", 0, 0)] * 2
    assert [s.status for s in pipeline.sources()] == ["not modified", "not modified"]


def test_a_new_entry_is_indexed_in_the_next_round(site, tmp_path, embedder):
    publish(site)
    pipeline = make_pipeline(tmp_path, embedder)
    pipeline.reindex([f"{site.url}/news/rss.xml"])
    site.routes["/news/vote.html"] = Route(page("City votes for a mayor", ELECTION))
    feed = site.routes["/news/rss.xml"]
    feed.body = feed.body.replace(b"<item>", f"<item><title>Vote</title><link>{site.url}/news/vote.html</link>"
                                             "<guid>vote-1</guid></item><item>".encode(), 1)
    feed.etag = '"rss-2"'
    site.log.clear()
    summary = pipeline.reindex()
    assert site.paths() == ["/robots.txt", "/news/rss.xml", "/news/vote.html"]
    assert (summary.articles, summary.added, summary.unchanged) == (3, 1, 2)
    assert summary.embedded == 1
    assert pipeline.search("mayoral election turnout", k=1)[0].article.title == "City votes for a mayor"


def test_an_updated_page_is_re_embedded_and_its_change_recorded(site, tmp_path, embedder):
    publish(site)
    pipeline = make_pipeline(tmp_path, embedder)
    pipeline.reindex([f"{site.url}/news/rss.xml"])
    fed = [FED[0], "Update: the central bank later said two members had voted for an immediate cut."]
    site.routes["/news/fed.html"].body = page("Fed holds rates steady", fed, canonical=f"{site.url}/news/fed.html",
                                             author="Jane Roe", date="2024-03-20", site_name="Example News")
    feed = site.routes["/news/rss.xml"]
    feed.body = feed.body.replace(b"<guid>fed-1</guid>", b"<guid>fed-1</guid><description>updated</description>")
    feed.etag = '"rss-2"'
    summary = pipeline.reindex()
    assert (summary.added, summary.updated, summary.unchanged, summary.embedded) == (0, 1, 1, 1)
    assert stored(pipeline)[f"{site.url}/news/fed.html"].text == "\n".join(fed)
    with FetchState(tmp_path / "index" / STATE_FILE) as state:
        assert state.changed_at(f"{site.url}/news/fed.html") is not None
        assert state.changed_at(f"{site.url}/news/floods.html") is None


def test_one_story_under_several_urls_is_stored_once(site, tmp_path, embedder):
    base = site.url
    site.routes["/a/fed.html"] = Route(page("Fed holds rates steady", FED, canonical=f"{base}/a/fed.html"))
    site.routes["/a/fed.html/amp"] = Route(page("Fed holds rates steady", FED, canonical=f"{base}/a/fed.html"))
    site.routes["/partner/fed-copy.html"] = Route(page("Fed holds rates steady", FED))
    site.routes["/rss.xml"] = Route(rss("Wire", [
        {"title": "Fed", "link": f"{base}/a/fed.html?utm_source=rss&amp;utm_medium=feed", "guid": "1"},
        {"title": "Fed (AMP)", "link": f"{base}/a/fed.html/amp", "guid": "2"},
    ]), type=RSS)
    site.routes["/partner/rss.xml"] = Route(rss("Partner", [
        {"title": "Fed (syndicated)", "link": f"{base}/partner/fed-copy.html", "guid": "p1"},
        {"title": "Fed again", "link": f"{base}/a/fed.html", "guid": "p2"},
    ]), type=RSS)
    pipeline = make_pipeline(tmp_path, embedder)
    summary = pipeline.reindex([f"{base}/rss.xml"])
    assert summary.articles == 1 and list(stored(pipeline)) == [f"{base}/a/fed.html"]
    assert summary.duplicates == [Problem(f"{base}/a/fed.html/amp", f"duplicate of {base}/a/fed.html: stored once")]
    assert [p for p in site.paths() if p.startswith("/a/")] == ["/a/fed.html?utm_source=rss&utm_medium=feed"]
    summary = pipeline.reindex([f"{base}/rss.xml", f"{base}/partner/rss.xml"])
    assert summary.articles == 1 and summary.embedded == 0
    assert sorted(summary.duplicates, key=lambda p: p.origin) == [
        Problem(f"{base}/a/fed.html", f"duplicate of {base}/a/fed.html: stored once"),
        Problem(f"{base}/partner/fed-copy.html", f"same text as {base}/a/fed.html: stored once"),
    ]
    assert [s.articles for s in pipeline.sources()] == [1, 1]


def test_robots_txt_is_honoured(site, tmp_path, embedder):
    publish(site)
    site.routes["/robots.txt"] = Route(b"User-agent: *\nDisallow: /private/\n\nUser-agent: newsrag\n"
                                       b"Disallow: /tech/\n", type="text/plain")
    site.routes["/private/x.html"] = Route(page("Secret", FLOODS))
    pipeline = make_pipeline(tmp_path, embedder)
    summary = pipeline.reindex([f"{site.url}/news/rss.xml", f"{site.url}/tech/atom.xml"])
    refused = f"robots.txt of {site.url} does not allow newsrag to fetch it: not fetched; remove the source, " \
              "or ask the site to allow it"
    assert summary.skipped == [Problem(f"{site.url}/tech/atom.xml", refused)]
    assert not any(p.startswith("/tech/") for p in site.paths())
    assert summary.articles == 2


def publish_failures(site) -> list[str]:
    """Sources that fail in every way a round must survive, beside one good feed; their URLs."""
    base = site.url
    broken_xml = b'<?xml version="1.0"?><rss version="2.0"><channel><title>x</title><item><title>a</item></channel></rss>'
    site.routes.update({
        "/gone.xml": Route(status=404),
        "/slow.xml": Route(rss("Slow", []), type=RSS, delay=1.5),
        "/html.xml": Route(b'<!DOCTYPE html><html><head><link rel="alternate" type="application/rss+xml" '
                           b'href="/real/rss.xml"></head><body>Home</body></html>'),
        "/broken.xml": Route(broken_xml, type=RSS),
        "/loop.xml": Route(status=302, location="/loop2.xml"),
        "/loop2.xml": Route(status=302, location=f"{base}/loop.xml"),
        "/files/report.pdf": Route(b"%PDF-1.7 ...", type="application/pdf"),
        "/img/photo.jpg": Route(b"\xff\xd8\xff\xe0", type="image/jpeg"),
        "/huge.html": Route(b"<p>" + b"word " * 2000 + b"</p>", size=20_000_000),
        "/empty.html": Route(b"<html><body><div>Subscribe to read</div></body></html>"),
        "/private/a.html": Route(page("Private", ELECTION)),
        "/robots.txt": Route(b"User-agent: *\nDisallow: /private/\n", type="text/plain"),
        "/mixed.xml": Route(rss("Mixed", [
            {"title": "No link here", "guid": "nolink", "description": "an entry without a link"},
            {"title": "A PDF", "link": f"{base}/files/report.pdf"},
            {"title": "A photo", "link": f"{base}/img/photo.jpg"},
            {"title": "Huge", "link": f"{base}/huge.html"},
            {"title": "Paywalled", "link": f"{base}/empty.html"},
            {"title": "Private", "link": f"{base}/private/a.html"},
            {"title": "Floods", "link": f"{base}/news/floods.html"},
        ]), type=RSS),
    })
    return [f"{base}{p}" for p in ("/gone.xml", "/slow.xml", "/html.xml", "/broken.xml", "/loop.xml", "/mixed.xml")]


def test_every_failure_is_reported_for_its_source_and_the_round_completes(site, tmp_path, embedder):
    publish(site)
    failing = publish_failures(site)
    base = site.url
    pipeline = make_pipeline(tmp_path, embedder)
    summary = pipeline.reindex([f"{base}/news/rss.xml", *failing, "file:///etc/passwd"])
    assert summary.articles == 2  # the good feed's two stories, the floods page once
    assert sorted(summary.skipped, key=lambda p: p.origin) == sorted([
        Problem("file:///etc/passwd", "only http and https URLs are fetched, not file: give a web address"),
        Problem(f"{base}/gone.xml", "HTTP 404 Not Found: the page is gone; check the URL or remove the source "
                                    "(its articles stay indexed)"),
        Problem(f"{base}/slow.xml", "timed out waiting for data (after 0.5s): the site is slow or down; "
                                    "tried again next round"),
        Problem(f"{base}/html.xml", "is an HTML page (text/html), not an RSS or Atom feed: give the feed's own "
                                    f"address; the page links to a feed at {base}/real/rss.xml"),
        Problem(f"{base}/broken.xml", "malformed XML (line 1, column 98: mismatched tag): the feed was skipped; "
                                      "the publisher has to fix it, it is tried again next round"),
        Problem(f"{base}/loop.xml", f"redirect loop ({base}/loop.xml -> {base}/loop2.xml -> {base}/loop.xml): "
                                    "not followed; check the URL in a browser"),
        Problem(f"{base}/mixed.xml", "entry 1 ('No link here') has no link: skipped; only entries that link to "
                                     "their article are indexed"),
        Problem(f"{base}/files/report.pdf", "is a PDF (application/pdf), not a web page or feed: skipped"),
        Problem(f"{base}/img/photo.jpg", "is an image (image/jpeg), not a web page or feed: skipped"),
        Problem(f"{base}/huge.html", "response is over the 5 MB limit (stopped reading there): skipped; "
                                     "a news page is far smaller, so check the URL"),
        Problem(f"{base}/empty.html", "no article text found on the page (only 3 words): skipped; it may need "
                                      "JavaScript or a login"),
        Problem(f"{base}/private/a.html", f"robots.txt of {base} does not allow newsrag to fetch it: not fetched; "
                                          "remove the source, or ask the site to allow it"),
    ], key=lambda p: p.origin)
    # Both feeds list the floods story (once with tracking parameters): whichever comes second is the duplicate.
    assert [p.reason for p in summary.duplicates] == [f"duplicate of {base}/news/floods.html: stored once"]
    assert "/private/a.html" not in site.paths()
    by_url = {s.url: (s.status, s.articles, s.last_error is not None) for s in pipeline.sources()}
    assert by_url == {f"{base}/news/rss.xml": ("ok", 2, False), f"{base}/mixed.xml": ("ok", 1, False),
                      "file:///etc/passwd": ("failed", 0, True),
                      **{url: ("failed", 0, True) for url in failing[:-1]}}


def test_a_dead_source_keeps_its_articles_and_says_why(site, tmp_path, embedder):
    publish(site)
    pipeline = make_pipeline(tmp_path, embedder)
    pipeline.reindex([f"{site.url}/news/rss.xml"])
    del site.routes["/news/rss.xml"]
    summary = pipeline.reindex()
    assert (summary.articles, summary.removed, summary.embedded) == (2, 0, 0)
    gone = "HTTP 404 Not Found: the page is gone; check the URL or remove the source (its articles stay indexed)"
    assert summary.skipped == [Problem(f"{site.url}/news/rss.xml", gone)]
    [source] = pipeline.sources()
    assert (source.id, source.status, source.articles, source.last_error) == (
        source_id(f"{site.url}/news/rss.xml"), "failed", 2, gone)
    assert source.last_ok is not None and source.last_fetch >= source.last_ok


# -- the sources endpoints ------------------------------------------------------------------
def test_the_sources_endpoints_list_add_and_remove_behind_the_key(site, tmp_path, embedder):
    from fastapi.testclient import TestClient

    from api import ApiSettings, create_app

    publish(site)
    pipeline = make_pipeline(tmp_path, embedder)
    pipeline.reindex([f"{site.url}/news/rss.xml"])
    app = create_app(ApiSettings(index_dir=tmp_path / "index", api_key="s3cret"), pipeline)
    feed = f"{site.url}/tech/atom.xml"
    with TestClient(app) as client:
        assert client.post("/sources", json={"url": feed}).json() == {
            "detail": "missing API key: send it in the X-API-Key header"}
        assert client.post("/sources", json={"url": feed}, headers={"X-API-Key": "nope"}).status_code == 403
        added = client.post("/sources", json={"url": feed}, headers={"X-API-Key": "s3cret"})
        assert (added.status_code, added.headers["Location"]) == (201, f"/sources/{source_id(feed)}")
        assert added.json() | {"added_at": None} == {
            "id": source_id(feed), "url": feed, "kind": "feed", "listed_in": None, "added_at": None,
            "title": None, "last_fetch": None, "last_ok": None, "status": "new", "last_error": None, "articles": 0}
        assert client.post("/sources", json={"url": feed}, headers={"X-API-Key": "s3cret"}).status_code == 200
        bad = client.post("/sources", json={"url": "file:///etc/passwd"}, headers={"X-API-Key": "s3cret"})
        assert (bad.status_code, bad.json()) == (422, {
            "detail": "'file:///etc/passwd' is not an http(s) URL: give a feed's address, such as "
                      "https://example.com/rss.xml"})

        pipeline.reindex()  # a bare reindex (POST /reindex, a --refresh round) fetches the new feed
        listed = client.get("/sources")  # reads are open unless RAG_PROTECT_READS
        assert [(s["url"], s["status"], s["articles"], s["title"]) for s in listed.json()] == [
            (f"{site.url}/news/rss.xml", "not modified", 2, "Example News"), (feed, "ok", 1, "Tech Desk")]
        assert pipeline.info().articles == 3

        gone = f"/sources/{source_id(feed)}"
        assert client.delete(gone).status_code == 401
        assert client.delete(gone, headers={"X-API-Key": "s3cret"}).json()["url"] == feed
        assert client.delete(gone, headers={"X-API-Key": "s3cret"}).json() == {
            "detail": f"no source '{source_id(feed)}': ids come from GET /sources"}
        assert pipeline.reindex().removed == 1
        assert [s["url"] for s in client.get("/sources").json()] == [f"{site.url}/news/rss.xml"]


def test_a_list_file_names_url_sources(site, tmp_path, embedder):
    publish(site)
    listing = tmp_path / "feeds.txt"
    listing.write_text(f"# what we follow\n{site.url}/news/rss.xml\n\n{site.url}/tech/atom.xml  # tech desk\n")
    pipeline = make_pipeline(tmp_path, embedder)
    assert pipeline.reindex([listing]).articles == 3
    assert pipeline.info().sources == (str(listing.resolve()),)
    listing.write_text(f"{site.url}/news/rss.xml\n")
    summary = pipeline.reindex()
    assert (summary.articles, summary.removed) == (2, 1)
    [source] = pipeline.sources()
    assert (source.url, source.listed_in) == (f"{site.url}/news/rss.xml", str(listing.resolve()))


# -- rag watch ------------------------------------------------------------------------------
@pytest.mark.slow
def test_rag_watch_refreshes_round_after_round_and_stops_cleanly_on_ctrl_c(site, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    publish(site)
    index = tmp_path / "index"
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    rag = [sys.executable, "-m", "api.cli"]
    subprocess.run([*rag, "reindex", f"{site.url}/news/rss.xml", "--index", str(index), "--quiet"],
                   check=True, env=env, capture_output=True)
    proc = subprocess.Popen([*rag, "watch", "--every", "1s", "--index", str(index)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    deadline = time.monotonic() + 120
    while len(lines) < 2 and time.monotonic() < deadline:
        lines.append(proc.stdout.readline())
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert [line.split(": indexed ")[0] for line in lines] == ["round 1", "round 2"]
    assert all("0 embedded" in line and "1 not modified, 0 failed" in line for line in lines)
    assert err.strip().splitlines()[-1].startswith(("stopped after 2 rounds", "stopped after 3 rounds",
                                                    "stopped during round 3"))
    assert "not modified" in out or out == ""
