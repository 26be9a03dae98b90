"""Ingestion, as a spec: what each kind of input becomes, and what is skipped and why."""

from __future__ import annotations

import gzip
import hashlib
import json
import unicodedata
from pathlib import Path

import pytest

from rag.errors import SourceError
from rag.ingest import IngestReport, iter_articles, iter_source_files, read_sources
from rag.models import Article, Problem

SEED = Path(__file__).resolve().parent.parent / "seeds" / "000_29be564519ffc8c1.txt"

BODY = (
    "North Korea has sent more than a million artillery shells to Russia since August, "
    "South Korea's spy agency told lawmakers on Wednesday.\n"
    "\n"
    "The National Intelligence Service said  about ten shipments had left North Korean ports.\n"
    "\"The shells would last Russia about two months of fighting,\" an official said."
)

STORY = (
    "Seoul says North Korea shipped a million shells to Russia\n"
    "By JANE DOE and JOHN ROE\n"
    "\n" + BODY + "\n"
    "\n"
    "Related Articles\n"
    "Advertisement\n"
    "Share this article\n"
    "Copyright 2023 The Korea Herald. All rights reserved.\n"
)

HTML = """<html><head><title>Blinken visits Seoul | The Korea Times</title>
<meta property="og:site_name" content="The Korea Times">
<meta name="author" content="Koo Chae Eun">
<meta property="article:published_time" content="2023-11-09T10:00:00Z">
<link rel="canonical" href="https://www.koreatimes.co.kr/news/blinken-seoul"></head>
<body><nav><a href="/">Home</a> <a href="/world">World</a></nav>
<article><h1>Blinken visits Seoul</h1>
<p>U.S. Secretary of State Antony Blinken arrived in Seoul on Wednesday for talks with Foreign Minister Park Jin on North Korea and Russia.</p>
<p>"We will continue to work with South Korea and other like-minded countries," Blinken told reporters at a joint press conference after the meeting.</p>
<p>The visit is his first to South Korea in about two and a half years.</p>
</article><footer>Copyright 2023 The Korea Times. All rights reserved.</footer></body></html>
"""


def content_id(text: str) -> str:
    normalised = " ".join(unicodedata.normalize("NFKC", text).casefold().split())
    return "c" + hashlib.sha1(normalised.encode()).hexdigest()[:16]


def url_id(url: str) -> str:
    return "u" + hashlib.sha1(url.encode()).hexdigest()[:16]


def write_jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


# --- plain text and Markdown ---------------------------------------------------------------


def test_text_file_loses_headline_byline_and_trailing_furniture_but_keeps_body_bytes(tmp_path):
    path = tmp_path / "shells.txt"
    path.write_text(STORY, encoding="utf-8")

    assert read_sources([path]) == IngestReport(
        articles=[
            Article(
                id=content_id(BODY),
                title="Seoul says North Korea shipped a million shells to Russia",
                text=BODY,  # the double space inside survives: offsets point into this text
                author="JANE DOE and JOHN ROE",
                origin=str(path),
            )
        ]
    )


def test_front_matter_supplies_metadata_and_a_repeated_heading_is_dropped(tmp_path):
    path = tmp_path / "arms.md"
    path.write_text(
        "---\n"
        "id: bbc-67390001\n"
        "title: North Korea sent Russia a million artillery shells, Seoul says\n"
        "date: 2023-11-12\n"
        "url: https://www.bbc.co.uk/news/world-asia-67390001\n"
        "authors: [Frances Mao, Jean Mackenzie]\n"
        "---\n"
        "# North Korea sent Russia a million artillery shells, Seoul says\n"
        "\n" + BODY + "\n",
        encoding="utf-8",
    )

    assert read_sources([path]).articles == [
        Article(
            id="bbc-67390001",
            title="North Korea sent Russia a million artillery shells, Seoul says",
            text=BODY,
            url="https://www.bbc.co.uk/news/world-asia-67390001",
            source="bbc.co.uk",
            published_at="2023-11-12",
            author="Frances Mao, Jean Mackenzie",
            origin=str(path),
        )
    ]


def test_without_a_headline_the_title_is_the_lead_cut_to_a_dozen_words(tmp_path):
    path = tmp_path / "lead.txt"
    path.write_text(BODY, encoding="utf-8")

    [article] = read_sources([path]).articles

    assert article.title == "North Korea has sent more than a million artillery shells to Russia…"
    assert article.text == BODY


def test_a_short_lead_sentence_becomes_the_whole_title(tmp_path):
    path = tmp_path / "short.txt"
    path.write_text("Mr. Kim resigned on Friday. His deputy will take over until March.", encoding="utf-8")

    assert read_sources([path]).articles[0].title == "Mr. Kim resigned on Friday"


def test_seed_article_ingests_with_its_byline_and_without_furniture():
    [article] = read_sources([SEED]).articles

    assert article.author == "Koo Chae Eun"
    assert article.title == (
        "There is an anticipation of increased U.S.-South Korea collaboration to halt military…"
    )
    assert article.id.startswith("c")
    assert "Most Commented" not in article.text
    assert "By. Koo" not in article.text
    assert article.text.startswith("There is an anticipation")
    assert article.text.endswith("including the launch of artificial satellites.")
    assert article.origin == str(SEED)


def test_bad_front_matter_is_a_warning_and_the_body_is_still_read(tmp_path):
    path = tmp_path / "broken.md"
    path.write_text("---\ntitle: [unclosed\n---\n" + BODY, encoding="utf-8")

    report = read_sources([path])

    assert [a.text for a in report.articles] == [BODY]
    assert report.warnings == [
        Problem(str(path), "front matter is not valid YAML (line 3): its fields were ignored")
    ]


# --- JSON, JSON Lines and gzip -------------------------------------------------------------


def test_jsonl_keeps_good_lines_and_reports_bad_ones_by_line(tmp_path):
    good = {
        "id": 7,
        "url": "https://www.reuters.com/world/hong-kong-tops-eca-ranking-2022-06-08/",
        "title": "Hong Kong is the world's most expensive city for expats",
        "text": "Hong Kong has been ranked the world's most expensive city for expatriates.",
        "published_at": "2022-06-08T09:00:00Z",
        "authors": ["Farah Master", "Twinnie Siu"],
    }
    path = write_jsonl(
        tmp_path / "wire.jsonl",
        [
            json.dumps(good),
            "",
            '{"id": "x", "text": "cut off',
            json.dumps({"id": "y", "title": "No body here", "text": "   "}),
            json.dumps(["not", "a", "record"]),
        ],
    )

    assert read_sources([path]) == IngestReport(
        articles=[
            Article(
                id="7",
                title="Hong Kong is the world's most expensive city for expats",
                text=good["text"],
                url=good["url"],
                source="reuters.com",
                published_at="2022-06-08",
                author="Farah Master, Twinnie Siu",
                origin=f"{path}:1",
            )
        ],
        problems=[
            Problem(f"{path}:3", "malformed JSON: Unterminated string starting at: column 21"),
            Problem(f"{path}:4", "record has no 'text' or 'body'"),
            Problem(f"{path}:5", "record is not a JSON object (got array)"),
        ],
    )


def test_gzipped_jsonl_and_json_lists_are_read_with_ids_from_urls(tmp_path):
    record = {
        "url": " https://apnews.com/article/fed-rates-inflation/ ",
        "title": "Fed raises key rate by three-quarters of a point",
        "body": "The Federal Reserve raised its benchmark interest rate on Wednesday.",
        "date": "June 15, 2022",
        "author": "Christopher Rugaber",
    }
    gz = tmp_path / "fed.jsonl.gz"
    gz.write_bytes(gzip.compress((json.dumps(record) + "\n").encode()))
    listing = tmp_path / "list.json"
    listing.write_text(json.dumps([{"text": "Seoul hosted the talks.", "source": "Yonhap"}]))

    assert read_sources([gz, listing]).articles == [
        Article(
            id=url_id("https://apnews.com/article/fed-rates-inflation"),
            title="Fed raises key rate by three-quarters of a point",
            text=record["body"],
            url="https://apnews.com/article/fed-rates-inflation/",
            source="apnews.com",
            published_at="2022-06-15",
            author="Christopher Rugaber",
            origin=f"{gz}:1",
        ),
        Article(
            id=content_id("Seoul hosted the talks."),
            title="Seoul hosted the talks",
            text="Seoul hosted the talks.",
            source="Yonhap",
            origin=f"{listing}[0]",
        ),
    ]


@pytest.mark.parametrize(
    ("written", "expected"),
    [
        ("2023-11-09", "2023-11-09"),
        ("2023-11-09T23:30:00-05:00", "2023-11-09"),
        ("Nov 9, 2023", "2023-11-09"),
        ("9 November 2023", "2023-11-09"),
    ],
)
def test_dates_are_normalised_to_iso_days(tmp_path, written, expected):
    path = write_jsonl(tmp_path / "d.jsonl", [json.dumps({"text": "Talks ended.", "published": written})])

    assert read_sources([path]).articles[0].published_at == expected


def test_an_unreadable_date_is_dropped_with_a_warning(tmp_path):
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [json.dumps({"text": "Talks ended.", "published_at": "last Tuesday"})],
    )

    report = read_sources([path])

    assert [a.published_at for a in report.articles] == [None]
    assert report.warnings == [
        Problem(f"{path}:1", "unparseable date 'last Tuesday' dropped: use YYYY-MM-DD")
    ]
    assert report.problems == []


# --- HTML ----------------------------------------------------------------------------------


def test_html_page_yields_its_article_and_metadata(tmp_path):
    path = tmp_path / "blinken.html"
    path.write_text(HTML, encoding="utf-8")

    [article] = read_sources([path]).articles

    assert article == Article(
        id=url_id("https://www.koreatimes.co.kr/news/blinken-seoul"),
        title="Blinken visits Seoul",
        text=article.text,
        url="https://www.koreatimes.co.kr/news/blinken-seoul",
        source="The Korea Times",
        published_at="2023-11-09",
        author="Koo Chae Eun",
        origin=str(path),
    )
    assert article.text.startswith("U.S. Secretary of State Antony Blinken arrived in Seoul")
    assert article.text.endswith("about two and a half years.")
    assert "Home" not in article.text and "Copyright" not in article.text


# --- unusable files ------------------------------------------------------------------------


def test_each_unusable_file_is_a_problem_that_says_why(tmp_path):
    (tmp_path / "a-binary.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    (tmp_path / "b-empty.md").write_text(" \n\n\t\n")
    (tmp_path / "c-latin1.txt").write_bytes("Café owners in Zürich protest.".encode("latin-1"))
    (tmp_path / "d-corrupt.jsonl.gz").write_bytes(b"\x1f\x8b\x08\x00garbage")
    with open(tmp_path / "e-huge.txt", "wb") as fh:
        fh.truncate(20_000_001)
    (tmp_path / "f-long.txt").write_text("word " * 400_001)
    (tmp_path / "g-empty.jsonl").write_text("\n\n")
    notes = tmp_path / "notes.pdf"
    notes.write_bytes(b"%PDF-1.7")

    report = read_sources([tmp_path, notes])

    assert report == IngestReport(
        problems=[
            Problem(f"{tmp_path}/a-binary.txt", "binary file (contains NUL bytes): not a text article"),
            Problem(f"{tmp_path}/b-empty.md", "file is empty"),
            Problem(f"{tmp_path}/c-latin1.txt", "not valid UTF-8 text: re-save it as UTF-8"),
            Problem(f"{tmp_path}/d-corrupt.jsonl.gz", "corrupt gzip: Compressed file ended before the end-of-stream marker was reached"),
            Problem(
                f"{tmp_path}/e-huge.txt",
                "file is over the 20 MB limit (20.0 MB): split it into smaller files",
            ),
            Problem(
                f"{tmp_path}/f-long.txt",
                "article text is over the 2,000,000 character limit (2,000,004 characters): "
                "split it into smaller articles",
            ),
            Problem(f"{tmp_path}/g-empty.jsonl", "file is empty"),
            Problem(
                str(notes),
                "unsupported file type '.pdf': use .txt, .md, .html, .json or .jsonl (optionally gzipped)",
            ),
        ]
    )


# --- duplicates ----------------------------------------------------------------------------


def test_exact_duplicates_are_kept_once_and_reused_ids_are_problems(tmp_path):
    first = tmp_path / "a.txt"
    first.write_text(BODY, encoding="utf-8")
    # Same words, different case and spacing: still the same article.
    (tmp_path / "b.txt").write_text(BODY.upper().replace(" ", "   "), encoding="utf-8")
    wire = write_jsonl(
        tmp_path / "c.jsonl",
        [
            json.dumps({"id": "w1", "text": "Parliament passed the budget on Friday."}),
            json.dumps({"id": "w1", "text": "A different story under the same id."}),
        ],
    )

    report = read_sources([tmp_path])

    assert [a.origin for a in report.articles] == [str(first), f"{wire}:1"]
    assert report.duplicates == [
        Problem(f"{tmp_path}/b.txt", f"duplicate of article {content_id(BODY)} ({first})")
    ]
    assert report.problems == [
        Problem(f"{wire}:2", f"duplicate id w1 with different text (first read from {wire}:1)")
    ]


# --- finding files and streaming -----------------------------------------------------------


def test_folders_are_walked_in_order_skipping_hidden_and_unsupported_files(tmp_path):
    for name in ["b.md", "a.txt", "notes.pdf", ".draft.txt", "sub/c.jsonl.gz", ".git/d.txt", "sub/e.HTM"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")

    assert list(iter_source_files([tmp_path, tmp_path / "a.txt"])) == [
        tmp_path / "a.txt",
        tmp_path / "b.md",
        tmp_path / "sub" / "c.jsonl.gz",
        tmp_path / "sub" / "e.HTM",
    ]


def test_a_missing_source_raises_before_anything_is_read(tmp_path):
    missing = tmp_path / "nope"

    with pytest.raises(SourceError) as error:
        iter_articles([SEED, missing])

    assert str(error.value) == (
        f"source not found: {missing}: check the path, "
        "or pass a folder of .txt/.md/.html/.json/.jsonl articles"
    )


def test_iter_articles_streams_caveats_just_before_their_article(tmp_path):
    path = write_jsonl(
        tmp_path / "s.jsonl",
        [
            json.dumps({"id": "a", "text": "Talks ended.", "date": "someday"}),
            "{oops",
            json.dumps({"id": "a", "text": "Talks ended."}),
        ],
    )

    assert [(type(x).__name__, x.origin) for x in iter_articles([path])] == [
        ("Problem", f"{path}:1"),
        ("Article", f"{path}:1"),
        ("Problem", f"{path}:2"),
        ("Article", f"{path}:3"),  # no deduplication while streaming
    ]
