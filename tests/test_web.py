"""The web page at ``/`` in a real browser: headless Chromium (Debian's ``chromium``, driven by
Playwright) against the real server on a loopback port, with the real model and a real index.

Screenshots of the answer view land in ``artifacts/``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright
from test_api_server import live

from api import ApiSettings, create_app
from rag import __version__
from rag.export import answer_to_dict, hit_to_dict
from rag.pipeline import Pipeline
from rag.settings import Settings

pytestmark = [pytest.mark.browser, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
QUESTION = "What did Blinken say about China?"
AS_OF = "2024-01-01"
WAIT_MS = 30_000

EVIL = {
    "id": "evil-phishing",
    "url": "javascript:window.__pwned=4",
    "title": 'Council warns of <img src=x onerror="window.__pwned=2"> phishing emails',
    "text": (
        "The town council warned residents about phishing emails on Monday. "
        "One email hid <script>window.__pwned = 1</script> in its body, the council said. "
        "Another carried <img src=x onerror=\"window.__pwned=3\"> to run code when opened \U0001F642. "
        "Officials said residents should never open attachments from unknown senders."
    ),
    "published_at": "2023-05-02",
    "source": "evil.example",
    "authors": ["<b>Mallory</b>"],
}


# -- servers and the browser ------------------------------------------------------------------------
@pytest.fixture(scope="module")
def site(built) -> Iterator[tuple[str, Pipeline]]:
    pipeline, _, _ = built
    with live(create_app(ApiSettings(index_dir=pipeline.settings.index_dir), pipeline)) as client:
        yield str(client.base_url).rstrip("/"), pipeline


@pytest.fixture(scope="module")
def evil(tmp_path_factory, embedder) -> Iterator[tuple[str, Pipeline]]:
    """A server over one article full of markup that must show as text."""
    root = tmp_path_factory.mktemp("evil")
    (root / "news").mkdir()
    (root / "news" / "evil.jsonl").write_text(json.dumps(EVIL) + "\n", encoding="utf-8")
    pipeline = Pipeline(Settings(index_dir=root / "index"), embedder=embedder)
    pipeline.reindex([root / "news"])
    with live(create_app(ApiSettings(index_dir=root / "index"), pipeline)) as client:
        yield str(client.base_url).rstrip("/"), pipeline


@pytest.fixture(scope="module")
def bare(tmp_path_factory, embedder) -> Iterator[tuple[str, Path]]:
    """A retrieval-only server with no index."""
    index = tmp_path_factory.mktemp("bare") / "index"
    pipeline = Pipeline(Settings(index_dir=index), embedder=embedder)
    with live(create_app(ApiSettings(index_dir=index, retrieval_only=True), pipeline)) as client:
        yield str(client.base_url).rstrip("/"), index


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: run 'make browser' as root, or install Debian's chromium "
                    "(apt-get install -y chromium)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield browser
        browser.close()


def open_page(browser: Browser, base: str, width: int = 1280, height: int = 900) -> tuple[Page, list[str], list[str]]:
    """A fresh tab on ``base``, recording every URL it requests and every uncaught script error."""
    page = browser.new_page(viewport={"width": width, "height": height})
    page.set_default_timeout(WAIT_MS)
    requests: list[str] = []
    errors: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(base + "/")
    return page, requests, errors


@pytest.fixture()
def tab(browser, site) -> Iterator[Page]:
    """The page on the main server; afterwards, it made no request elsewhere and threw nothing."""
    base, _ = site
    page, requests, errors = open_page(browser, base)
    yield page
    page.close()
    assert [u for u in requests if not u.startswith(base + "/")] == []
    assert errors == []


def ask(page: Page, question: str, as_of: str = AS_OF) -> None:
    page.fill("#q", question)
    page.fill("#as-of", as_of)
    page.press("#q", "Enter")
    expect(page.locator("#progress")).to_contain_text(f"Answered as of {as_of} in ", timeout=WAIT_MS)


def shot(page: Page, name: str, full_page: bool = False) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / name), full_page=full_page)


# -- asking -----------------------------------------------------------------------------------------
def test_the_page_is_served_with_its_own_files_only(site):
    import httpx

    base, _ = site
    page = httpx.get(base + "/")
    assert page.status_code == 200 and page.headers["content-type"] == "text/html; charset=utf-8"
    assert page.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self';")
    for asset in ("/static/app.js", "/static/app.css", "/static/favicon.svg"):
        assert f'"{asset}"' in page.text and httpx.get(base + asset).status_code == 200


def test_ask_the_seed_question_and_see_the_cited_answer(tab, site):
    _, pipeline = site
    expected = answer_to_dict(pipeline.ask(QUESTION, as_of=AS_OF))
    info = pipeline.info()
    expect(tab.locator("#status")).to_have_text(
        f"{info.articles} articles, {info.chunks} passages indexed · v{__version__}")
    ask(tab, QUESTION)

    assert expected["abstained"] is False and expected["citations"]
    expect(tab.locator("#answer-heading")).to_have_text("Answer")
    assert tab.inner_text("#answer-text") == expected["answer"]
    assert tab.locator("#answer-text a.cite").all_inner_texts() == [f"[{c['n']}]" for c in expected["citations"]]
    assert tab.locator("#citations blockquote").all_inner_texts() == [c["quote"] for c in expected["citations"]]
    expect(tab.locator("#passages-heading")).to_have_text("Passages the answer draws on")
    assert tab.locator("#passage-list .passage-title").all_inner_texts() == [p["title"] for p in expected["passages"]]
    expect(tab.locator("#message")).to_be_hidden()


def test_a_citation_opens_the_article_at_the_highlighted_quote(tab, site):
    base, pipeline = site
    expected = answer_to_dict(pipeline.ask(QUESTION, as_of=AS_OF))
    ask(tab, QUESTION)
    for citation in expected["citations"]:
        tab.click(f"#answer-text a.cite[data-n='{citation['n']}']")
        expect(tab.locator("#article mark")).to_have_text(citation["quote"])
        expect(tab.locator("#article mark")).to_be_in_viewport()
        expect(tab.locator("#article-title")).to_have_text(pipeline.article(citation["article_id"]).title)
        if citation["n"] == 1:
            shot(tab, "answer-view.png")
    assert tab.locator("#article mark").count() == 1

    # By keyboard: Enter on a marker opens the article; Escape closes it and returns to the marker.
    marker = tab.locator("#answer-text a.cite").first
    tab.keyboard.press("Escape")
    expect(tab.locator("#article")).to_be_hidden()
    marker.focus()
    tab.keyboard.press("Enter")
    expect(tab.locator("#article")).to_be_focused()
    expect(tab.locator("#article mark")).to_have_text(expected["citations"][0]["quote"])
    tab.keyboard.press("Escape")
    expect(tab.locator("#article")).to_be_hidden()
    expect(marker).to_be_focused()


def test_the_article_shows_title_source_date_and_url(tab, site):
    _, pipeline = site
    question = "Why was the Abbott plant shut?"
    citation = answer_to_dict(pipeline.ask(question, as_of=AS_OF))["citations"][0]
    article = pipeline.article(citation["article_id"])
    ask(tab, question)
    tab.click("#answer-text a.cite[data-n='1']")
    expect(tab.locator("#article mark")).to_have_text(citation["quote"])
    expect(tab.locator("#article-title")).to_have_text("Abbott restarts baby formula production at Michigan plant")
    expect(tab.locator("#article-meta")).to_have_text(f"cnn.com · 2022-06-05 · by {article.author}")
    link = tab.locator("#article-link a")
    expect(link).to_have_text(CNN_URL)
    expect(link).to_have_attribute("href", CNN_URL)


CNN_URL = "https://edition.cnn.com/2022/06/05/health/abbott-sturgis-restart/index.html"


def test_a_said_by_chip_lists_the_speakers_quotes_each_opening_its_article(tab, site):
    _, pipeline = site
    expected = answer_to_dict(pipeline.ask(QUESTION, as_of=AS_OF))
    [speaker] = [s for s in pipeline.speakers("Antony Blinken") if s.name == "Antony Blinken"]
    _, quotes = pipeline.speaker_quotes(speaker.id, limit=100)
    cited = {(c["article_id"], c["start"], c["end"]): c["n"] for c in expected["citations"]}
    others = [q for q in quotes if (q.article_id, q.start, q.end) not in cited]
    assert {c["speaker"] for c in expected["citations"]} == {"Antony Blinken"} and others
    ask(tab, QUESTION)

    chips = tab.locator("#citations button.chip")
    expect(chips).to_have_count(len(expected["citations"]))
    assert chips.all_inner_texts() == ["said by Antony Blinken"] * len(expected["citations"])
    chip = chips.nth(1)
    chip.click()
    view = tab.locator("#speaker")
    expect(view).to_be_focused()
    expect(tab.locator("#speaker-title")).to_have_text("Quotes by Antony Blinken")
    expect(tab.locator("#speaker-meta")).to_have_text(f"{speaker.quotes} quotes in the index")
    assert tab.locator("#speaker-quotes .quote-link").all_inner_texts() == [q.quote for q in quotes]
    title = expected["citations"][0]["title"]
    assert tab.locator("#speaker-quotes .meta").all_inner_texts() == [
        f"{title} · unknown source · undated" + (f" · cited above as [{cited[key]}]" if key in cited else "")
        for q in quotes for key in [(q.article_id, q.start, q.end)]]
    shot(tab, "speaker-view.png")

    # A quote opens its article at the highlighted words; Escape closes the article, then the quotes.
    link = tab.locator("#speaker-quotes .quote-link").nth(quotes.index(others[0]))
    link.click()
    expect(tab.locator("#article mark")).to_have_text(others[0].quote)
    expect(tab.locator("#article mark")).to_be_in_viewport()
    tab.keyboard.press("Escape")
    expect(tab.locator("#article")).to_be_hidden()
    expect(view).to_be_visible()
    expect(link).to_be_focused()
    tab.keyboard.press("Escape")
    expect(view).to_be_hidden()
    expect(chip).to_be_focused()

    # By keyboard, and closed with its button.
    tab.keyboard.press("Enter")
    expect(view).to_be_focused()
    tab.click("#close-speaker")
    expect(view).to_be_hidden()
    expect(chip).to_be_focused()


def test_a_source_that_is_no_person_stays_plain_text(tab, site):
    _, pipeline = site
    question = "How long would the shells last Russia?"
    names = [c["speaker"] for c in answer_to_dict(pipeline.ask(question, as_of=AS_OF))["citations"]]
    assert names and all(n and pipeline.speakers(n) == [] for n in names)  # "an NIS official", ...
    looked_up: list[str] = []
    tab.on("response", lambda r: looked_up.append(r.url) if "/speakers?" in r.url else None)
    ask(tab, question)
    for _ in range(200):
        if len(looked_up) == len(set(names)):
            break
        tab.wait_for_timeout(50)
    assert len(looked_up) == len(set(names))
    tab.wait_for_timeout(200)  # the replies are in; let the page act on them
    assert tab.locator("#citations p.speaker").all_inner_texts() == [f"said by {n}" for n in names]
    assert tab.locator("#citations button.chip").count() == 0


def test_an_abstained_answer_is_shown_as_such_with_the_closest_passages(tab, site):
    _, pipeline = site
    question = "What is the capital of Mongolia?"
    expected = answer_to_dict(pipeline.ask(question, as_of=AS_OF))
    assert expected["abstained"] is True
    ask(tab, question)
    expect(tab.locator("#answer-heading")).to_have_text("No answer: the indexed news does not cover this")
    expect(tab.locator("#answer")).to_have_class("answer abstained")
    assert tab.inner_text("#answer-text") == expected["answer"]
    assert tab.locator("#answer a.cite").count() == 0
    expect(tab.locator("#sources-heading")).to_be_hidden()
    expect(tab.locator("#passages-heading")).to_have_text("Closest passages")
    assert tab.locator("#passage-list .passage-title").all_inner_texts() == [p["title"] for p in expected["passages"]]
    shot(tab, "abstained-view.png")


def test_passages_only_shows_the_search_results_with_scores(tab, site):
    _, pipeline = site
    question = "North Korea artillery shells"
    hits = [hit_to_dict(h) for h in pipeline.search(question, k=10)]
    tab.focus("#passages-only")
    tab.keyboard.press("Space")
    expect(tab.locator("#go")).to_have_text("Search")
    expect(tab.locator("#as-of-field")).to_be_hidden()
    tab.fill("#q", question)
    tab.press("#q", "Enter")
    expect(tab.locator("#passage-list li")).to_have_count(len(hits))
    assert tab.locator(".passage-head").all_inner_texts() == [
        f"#{h['rank']}\n{h['title']}\nscore {h['score']:.4f}" for h in hits]
    expect(tab.locator("#answer")).to_be_hidden()
    expect(tab.locator("#passages-heading")).to_have_text("Passages")

    tab.click("#passage-list .passage-title >> nth=0")
    expect(tab.locator("#article mark")).to_have_text(hits[0]["text"])
    shot(tab, "passages-view.png")


@pytest.mark.parametrize("passages_only", [False, True])
def test_an_empty_question_shows_the_validation_message(tab, passages_only):
    if passages_only:
        tab.check("#passages-only")
    tab.fill("#q", "   ")
    tab.click("#go")
    expect(tab.locator("#message")).to_have_text("Please fix the question or filters (422): Question: must not be empty")
    expect(tab.locator("#q")).to_have_attribute("aria-invalid", "true")
    expect(tab.locator("#q")).to_be_focused()


# -- errors -----------------------------------------------------------------------------------------
def test_a_dropped_stream_and_an_in_band_error_are_reported(tab, site):
    _, pipeline = site
    passages = [hit_to_dict(h) for h in pipeline.search(QUESTION, k=2)]
    cut = f"event: passages\ndata: {json.dumps(passages)}\n\nevent: answer\ndata: {{\"te"
    tab.route("**/ask", lambda route: route.fulfill(status=200, content_type="text/event-stream", body=cut))
    tab.fill("#q", QUESTION)
    tab.press("#q", "Enter")
    expect(tab.locator("#message")).to_have_text(
        "The answer stream was cut off before it finished: the connection dropped. "
        "Anything shown above may be incomplete; ask again.")
    expect(tab.locator("#passage-list li")).to_have_count(2)
    expect(tab.locator("#answer")).to_be_hidden()

    failed = ('event: passages\ndata: []\n\nevent: error\ndata: {"detail": "internal error", '
              '"request_id": "5f0c2d9e8a7b4c1d", "status": 500}\n\n')
    tab.unroute("**/ask")
    tab.route("**/ask", lambda route: route.fulfill(status=200, content_type="text/event-stream", body=failed))
    tab.press("#q", "Enter")
    expect(tab.locator("#message")).to_have_text(
        "The answer failed (500): internal error (request id 5f0c2d9e8a7b4c1d)")


def test_without_an_index_a_retrieval_only_server_shows_search_alone_and_the_503(browser, bare):
    base, index = bare
    page, requests, errors = open_page(browser, base)
    problem = f"no index in {index}: run 'rag reindex <folder> --index {index}' first"
    expect(page.locator("#status")).to_have_text(f"no index loaded · retrieval only · v{__version__}")
    # /health gives the page a short reason (no paths); the 503 of a search carries the whole message.
    expect(page.locator("#notice")).to_have_text("No index is loaded: no index: run `rag reindex <folder>`")
    expect(page.locator("#mode-field")).to_be_hidden()
    expect(page.locator("#as-of-field")).to_be_hidden()
    expect(page.locator("#go")).to_have_text("Search")
    page.fill("#q", QUESTION)
    page.press("#q", "Enter")
    expect(page.locator("#message")).to_have_text(f"The server cannot search right now (503): {problem}")
    shot(page, "no-index-view.png")
    page.close()
    assert [u for u in requests if not u.startswith(base + "/")] == [] and errors == []


# -- escaping ---------------------------------------------------------------------------------------
def test_an_article_carrying_script_and_html_shows_as_text_and_never_runs(browser, evil):
    base, pipeline = evil
    page, requests, errors = open_page(browser, base)
    hit = hit_to_dict(pipeline.search("phishing emails script", k=1)[0])
    page.check("#passages-only")
    page.fill("#q", "phishing emails script")
    page.press("#q", "Enter")
    expect(page.locator("#passage-list li")).to_have_count(1)
    expect(page.locator(".passage-title")).to_have_text(EVIL["title"])
    expect(page.locator(".passage-text")).to_contain_text("<script>window.__pwned = 1</script>")

    page.click(".passage-title")
    expect(page.locator("#article mark")).to_have_text(hit["text"])  # offsets past an emoji still line up
    expect(page.locator("#article-title")).to_have_text(EVIL["title"])
    assert page.inner_text("#article-text") == pipeline.article(EVIL["id"]).text
    expect(page.locator("#article-meta")).to_have_text("evil.example · 2023-05-02 · by <b>Mallory</b>")
    expect(page.locator("#article-link")).to_have_text("URL: javascript:window.__pwned=4")
    assert page.locator("#article-link a").count() == 0

    page.uncheck("#passages-only")
    page.fill("#q", "What did the council say about the email with a script?")
    page.press("#q", "Enter")
    expect(page.locator("#progress")).to_contain_text("Answered as of ")
    expect(page.locator("#article")).to_be_hidden()
    expect(page.locator("#answer-text")).to_contain_text("<script>window.__pwned = 1</script>")
    page.click("#answer-text a.cite >> nth=0")
    expect(page.locator("#article mark")).to_contain_text("<script>window.__pwned = 1</script>")
    assert page.locator("#results script, #results img, #article script, #article img, #article b").count() == 0
    assert page.evaluate("typeof window.__pwned") == "undefined"
    shot(page, "escaped-article.png")
    page.close()
    assert [u for u in requests if not u.startswith(base + "/")] == [] and errors == []


# -- a phone-sized screen ---------------------------------------------------------------------------
def test_on_a_phone_sized_screen(browser, site):
    base, pipeline = site
    expected = answer_to_dict(pipeline.ask(QUESTION, as_of=AS_OF))
    page, _, errors = open_page(browser, base, width=390, height=844)
    ask(page, QUESTION)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "answer-view-phone.png")
    page.click("#answer-text a.cite[data-n='1']")
    expect(page.locator("#article mark")).to_have_text(expected["citations"][0]["quote"])
    expect(page.locator("#article mark")).to_be_in_viewport()
    expect(page.locator("#close-article")).to_be_in_viewport()
    shot(page, "article-view-phone.png")
    page.click("#close-article")
    expect(page.locator("#article")).to_be_hidden()
    page.close()
    assert errors == []
