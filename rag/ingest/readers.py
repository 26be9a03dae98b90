"""Read news articles from folders and files into :class:`~rag.models.Article` records.

Supported inputs: ``.txt``/``.md``/``.markdown`` (optional YAML front matter), ``.html``/``.htm``,
``.json`` (one record or a list), ``.jsonl``/``.ndjson`` (one record a line), each optionally
gzipped. A bad file or line never stops the run: it becomes a :class:`~rag.models.Problem`.

Inputs are untrusted: JSON Lines are streamed with a size limit on each record rather than the
file; files read whole (text, HTML, JSON) have one on the file; every metadata field has a
length limit; lone surrogates (from a broken ``\\ud800`` escape) are replaced with U+FFFD, with a
warning, since they cannot be stored; a date more than two days ahead is dropped, with a warning.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import unicodedata
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import urldefrag, urlsplit

from dateutil import parser as dateparser

from rag.ingest.files import check_sources, format_of, walk
from rag.ingest.frontmatter import split_front_matter
from rag.models import Article, Problem
from rag.text.words import HEADLINE_ABBREVIATIONS

MAX_FILE_BYTES = 20_000_000  # a file read whole: text, Markdown, HTML, JSON
MAX_RECORD_BYTES = 20_000_000  # one line of a JSON Lines file, which is streamed
MAX_TEXT_CHARS = 2_000_000
MAX_FIELD_CHARS = 2_000  # title, author, source, url, id, date
FUTURE_DAYS = 2  # how far ahead of today a publication date may be (time zones, embargoes)
_SNIFF_BYTES = 8192

_NOT_UTF8 = "not valid UTF-8 text: re-save it as UTF-8"
# gzip reports damage through several exception types, depending on where the stream breaks.
_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)

_Kind = Literal["article", "problem", "warning"]


@dataclass(frozen=True)
class IngestReport:
    """What :func:`read_sources` read: the articles, and every input it skipped or doubted."""

    articles: list[Article] = field(default_factory=list)  # deduplicated, in input order
    problems: list[Problem] = field(default_factory=list)  # inputs skipped, and why
    duplicates: list[Problem] = field(default_factory=list)  # exact copies of an earlier article
    warnings: list[Problem] = field(default_factory=list)  # read, but with a caveat


def iter_articles(sources: Iterable[str | Path] | str | Path) -> Iterator[Article | Problem]:
    """Stream articles and problems from ``sources`` as they are read, without deduplication.

    A caveat (such as an unparseable date) comes as a ``Problem`` just before the ``Article``
    it concerns, with the same origin; :func:`read_sources` keeps the two kinds apart.

    >>> [type(x).__name__ for x in iter_articles(["seeds/000_29be564519ffc8c1.txt"])]
    ['Article']
    """
    events = _events(walk(check_sources(sources)))
    return (item for _, item in events)


def read_sources(sources: Iterable[str | Path] | str | Path) -> IngestReport:
    """Read every source, drop exact duplicates, and sort out problems from warnings.

    >>> report = read_sources(["seeds/"])
    >>> len(report.articles), report.problems
    (1, [])
    """
    report = IngestReport()
    report.articles.extend(stream_sources(sources, report))
    return report


def stream_sources(sources: Iterable[str | Path] | str | Path, report: IngestReport,
                   seen: Deduplicator | None = None) -> Iterator[Article]:
    """Yield the articles of ``sources`` as they are read, each story once (as :func:`read_sources`
    keeps them), and put what is skipped or doubted into ``report`` (its ``articles`` are left
    alone). A reindex reads through this, so that it never holds every article at once.

    ``seen``: the articles already kept from other sources, which these must not repeat.
    """
    seen = seen if seen is not None else Deduplicator()
    for kind, item in _events(walk(check_sources(sources))):
        if kind == "warning":
            report.warnings.append(item)  # type: ignore[arg-type]
        elif kind == "problem":
            report.problems.append(item)  # type: ignore[arg-type]
        else:
            assert isinstance(item, Article)
            verdict = seen.check(item)
            if verdict is None:
                yield item
            elif verdict[0] == "duplicate":
                report.duplicates.append(verdict[1])
            else:
                report.problems.append(verdict[1])


class Deduplicator:
    """Which articles have been kept so far: an exact copy of one (the same text, compared
    normalised) is a duplicate, and another text under the id of one is a problem.

    It holds a digest, the id and the origin of each article kept, never its text: about 0.4 KB
    an article.
    """

    def __init__(self) -> None:
        self._by_text: dict[bytes, tuple[str, str]] = {}  # digest of the text: (id, origin)
        self._by_id: dict[str, str] = {}  # id: origin

    def check(self, article: Article) -> tuple[Literal["duplicate", "problem"], Problem] | None:
        """None when ``article`` is new (it is then kept); else whether it is a duplicate or a
        problem (another text under a kept id), and the report's line for it."""
        key = hashlib.sha1(_normalise(article.text).encode("utf-8")).digest()
        if (first := self._by_text.get(key)) is not None:
            return "duplicate", Problem(article.origin, f"duplicate of article {first[0]} ({first[1]})")
        if (origin := self._by_id.get(article.id)) is not None:
            reason = f"duplicate id {article.id} with different text (first read from {origin})"
            return "problem", Problem(article.origin, reason)
        self._by_text[key] = (article.id, article.origin)
        self._by_id[article.id] = article.origin
        return None


# --- reading files -------------------------------------------------------------------------


def _events(files: Iterable[Path | Problem]) -> Iterator[tuple[_Kind, Article | Problem]]:
    for item in files:
        if isinstance(item, Problem):
            yield "problem", item
        else:
            yield from _read_file(item)


def _problem(origin: str, reason: str) -> tuple[_Kind, Problem]:
    return "problem", Problem(origin, reason)


def _read_file(path: Path) -> Iterator[tuple[_Kind, Article | Problem]]:
    # A file name that is not UTF-8 arrives with surrogates, which could be neither stored nor printed.
    origin, _ = _repaired(str(path))
    fmt = format_of(path)
    if fmt is None:
        suffix = "".join(path.suffixes) or path.name
        yield _problem(
            origin,
            f"unsupported file type {suffix!r}: "
            "use .txt, .md, .html, .json or .jsonl (optionally gzipped)",
        )
        return
    compressed = path.name.lower().endswith(".gz")
    try:
        size = path.stat().st_size
        if not compressed and fmt != "jsonl" and size > MAX_FILE_BYTES:
            size_mb = size / 1_000_000
            yield _problem(
                origin,
                f"file is over the {MAX_FILE_BYTES // 1_000_000} MB limit ({size_mb:.1f} MB): "
                "split it into smaller files",
            )
            return
        with _open(path, compressed) as f:
            head = f.read(_SNIFF_BYTES)
        if b"\0" in head:
            yield _problem(origin, "binary file (contains NUL bytes): not a text article")
            return
        if fmt == "jsonl":
            yield from _read_jsonl(path, compressed, origin)
            return
        with _open(path, compressed) as f:
            data = f.read(MAX_FILE_BYTES + 1)
    except _GZIP_ERRORS as e:
        yield _problem(origin, f"corrupt gzip: {e}")
        return
    except OSError as e:
        yield _problem(origin, f"cannot read file: {e.strerror or e}")
        return
    if len(data) > MAX_FILE_BYTES:
        yield _problem(
            origin,
            f"decompressed file is over the {MAX_FILE_BYTES // 1_000_000} MB limit: "
            "split it into smaller files",
        )
        return
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        yield _problem(origin, _NOT_UTF8)
        return
    if not text.strip():
        yield _problem(origin, "file is empty")
        return
    if fmt == "text":
        yield from _parse_text(text, origin)
    elif fmt == "html":
        yield from _parse_html(text, origin)
    else:
        yield from _parse_json(text, origin)


def _open(path: Path, compressed: bool) -> IO[bytes]:
    return gzip.open(path, "rb") if compressed else open(path, "rb")


def _read_jsonl(path: Path, compressed: bool, origin: str) -> Iterator[tuple[_Kind, Article | Problem]]:
    # Streamed record by record: an export of any size is read, and never sits in memory whole.
    any_record = False
    try:
        with _open(path, compressed) as f:
            for n, raw in _lines(f, MAX_RECORD_BYTES):
                where = f"{origin}:{n}"
                if raw is None:
                    any_record = True
                    yield _problem(
                        where,
                        f"record is over the {MAX_RECORD_BYTES // 1_000_000} MB limit: "
                        "split it into smaller articles",
                    )
                    continue
                if n == 1:
                    raw = raw.removeprefix(b"\xef\xbb\xbf")
                raw = raw.strip()
                if not raw:
                    continue
                any_record = True
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:
                    yield _problem(where, _NOT_UTF8)
                else:
                    yield from _parse_record(text, where, whole_file=False)
    except _GZIP_ERRORS as e:
        yield _problem(origin, f"corrupt gzip: {e}")
        return
    if not any_record:
        yield _problem(origin, "file is empty")


def _lines(f: IO[bytes], limit: int) -> Iterator[tuple[int, bytes | None]]:
    """``(line number, line)`` for each line of ``f``; None for a line over ``limit`` bytes, whose
    rest is skipped a megabyte at a time rather than read whole."""
    n = 0
    while raw := f.readline(limit + 1):
        n += 1
        if len(raw) > limit and not raw.endswith(b"\n"):
            while (rest := f.readline(1 << 20)) and not rest.endswith(b"\n"):
                pass
            yield n, None
        else:
            yield n, raw


def _parse_json(text: str, origin: str) -> Iterator[tuple[_Kind, Article | Problem]]:
    yield from _parse_record(text, origin, whole_file=True)


def _parse_record(text: str, origin: str, whole_file: bool) -> Iterator[tuple[_Kind, Article | Problem]]:
    """A JSON document: one record, or (a whole ``.json`` file) a list of them."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        line = f"line {e.lineno} column {e.colno}" if whole_file else f"column {e.colno}"
        yield _problem(origin, f"malformed JSON: {e.msg}: {line}")
        return
    except RecursionError:
        yield _problem(origin, "JSON is nested too deeply to read: an article is one flat JSON object")
        return
    except ValueError:  # Python refuses to read an integer of over 4,300 digits
        yield _problem(origin, "JSON holds a number too long to read: an article is one flat JSON object")
        return
    if whole_file and isinstance(data, list):
        if not data:
            yield _problem(origin, "file is an empty JSON array: it holds no articles")
        # Records of one list share a file and have no lines; the index tells them apart.
        for i, record in enumerate(data):
            yield from _from_record(record, f"{origin}[{i}]")
    else:
        yield from _from_record(data, origin)


_JSON_TYPES = {
    dict: "object", list: "array", str: "string", int: "number", float: "number",
    bool: "boolean", type(None): "null",
}


def _from_record(record: Any, origin: str) -> Iterator[tuple[_Kind, Article | Problem]]:
    if not isinstance(record, dict):
        yield _problem(origin, f"record is not a JSON object (got {_JSON_TYPES.get(type(record), 'value')})")
        return
    text = next(
        (v for v in (record.get("text"), record.get("body")) if isinstance(v, str) and v.strip()),
        None,
    )
    if text is None:
        yield _problem(origin, "record has no 'text' or 'body'")
        return
    published = next(
        (record[k] for k in ("published_at", "date", "published") if record.get(k) is not None), None
    )
    yield from _make_article(
        origin,
        text.strip(),
        id_=record.get("id"),
        title=record.get("title"),
        url=record.get("url"),
        source=record.get("source"),
        published=published,
        author=record.get("authors") if record.get("authors") else record.get("author"),
    )


def _parse_html(html: str, origin: str) -> Iterator[tuple[_Kind, Article | Problem]]:
    # Imported here: trafilatura pulls in lxml and friends, which only HTML input needs.
    import trafilatura

    doc = trafilatura.bare_extraction(html, with_metadata=True, include_comments=False)
    meta: dict[str, Any] = {}
    if doc is not None:
        meta = doc.as_dict() if hasattr(doc, "as_dict") else dict(doc)
    text = (meta.get("text") or "").strip()
    title = _clean(meta.get("title"))
    lines = text.splitlines(keepends=True)
    # trafilatura repeats the headline as the first line of the text.
    if title and lines and _same_title(lines[0], title):
        text = "".join(lines[1:]).strip()
    if not text:
        yield _problem(origin, "no article text found in the HTML page")
        return
    yield from _make_article(
        origin,
        text,
        title=title,
        url=meta.get("url"),
        source=meta.get("sitename") or _host(meta.get("hostname")),
        published=meta.get("date"),
        author=meta.get("author"),
    )


# --- plain text and Markdown ---------------------------------------------------------------

# Page furniture that scrapers leave at the end of an article; matched on whole, short lines.
_FURNITURE = re.compile(
    r"""(?:
        most\ (?:commented|read|popular|viewed|shared|emailed)
      | related(?:\ (?:articles?|stories|news|content|coverage|posts|links|topics))?
      | (?:top|more|recommended|latest)\ (?:stories|news|articles)
      | advertisement | advertising | sponsored(?:\ content)?
      | share(?:\ this)?(?:\ (?:article|story|page|post))?(?:\ on\ \w+)?
      | (?:leave\ a\ |view\ |show\ )?comments?(?:\ \(\d+\))?
      | read\ more | see\ also | back\ to\ top | print(?:\ this\ (?:article|page))?
      | e-?mail(?:\ this)?(?:\ (?:article|story))?
      | (?:sign\ up|subscribe|follow\ us|copyright|all\ rights\ reserved|click\ here)\b.*
      | (?:©|\(c\)|tags?:).*
    )[\s.:!]*""",
    re.I | re.X,
)
_BYLINE = re.compile(r"(?i:by)\.?[ \t]+(?P<name>\S.*)")
# Lower-case words that may sit inside a name ("Ludwig van Beethoven", "Jane Doe and John Roe").
_NAME_LINKS = {"and", "&", "de", "van", "von", "der", "den", "da", "di", "du", "la", "le", "al", "bin", "y"}
_TITLE_WORDS = 12


def _parse_text(text: str, origin: str) -> Iterator[tuple[_Kind, Article | Problem]]:
    meta, body, ignored = split_front_matter(text)
    if ignored is not None:
        yield "warning", Problem(origin, ignored)
    given_title = _clean(meta.get("title"))
    body, title, byline = _clean_body(body, given_title)
    if not body:
        yield _problem(origin, "file has no article text besides its title and metadata")
        return
    published = next((meta[k] for k in ("published_at", "date") if meta.get(k) is not None), None)
    yield from _make_article(
        origin,
        body,
        id_=meta.get("id"),
        title=given_title or title,
        url=meta.get("url"),
        source=meta.get("source"),
        published=published,
        author=meta.get("authors") or meta.get("author") or byline,
    )


def _clean_body(body: str, given_title: str | None) -> tuple[str, str | None, str | None]:
    """Strip furniture, headline and byline lines; return (text, headline, byline name).

    Whole lines are removed and the rest is kept byte for byte, because chunk offsets point
    into the stored text.
    """
    lines = body.splitlines(keepends=True)
    while lines and (not lines[-1].strip() or _is_furniture(lines[-1])):
        lines.pop()

    title = author = None
    filled = [i for i, line in enumerate(lines) if line.strip()]
    if filled:
        first = filled[0]
        if given_title and _same_title(lines[first], given_title):
            lines[first] = ""
        elif not given_title and len(filled) > 1 and _is_headline(lines[first]):
            title = _heading(lines[first])
            lines[first] = ""

    filled = [i for i, line in enumerate(lines) if line.strip()]
    # Bylines sit just under the headline or at the very end.
    for i in [*filled[:3], *filled[-1:]]:
        if len(filled) > 1 and (name := _byline(lines[i])):
            author = name
            lines[i] = ""
            break
    return "".join(lines).strip(), title, author


def _is_furniture(line: str) -> bool:
    s = line.strip()
    return len(s) <= 100 and _FURNITURE.fullmatch(s) is not None


def _heading(line: str) -> str:
    return " ".join(line.strip().lstrip("#").split())


def _same_title(line: str, title: str) -> bool:
    return _heading(line).casefold() == " ".join(title.split()).casefold()


def _is_headline(line: str) -> bool:
    s = _heading(line)
    return (
        0 < len(s) <= 200
        and len(s.split()) <= 20
        and not s.endswith(".")
        and _byline(line) is None
        and not _is_furniture(line)
    )


def _byline(line: str) -> str | None:
    s = line.strip()
    m = _BYLINE.fullmatch(s)
    if m is None or len(s) > 80:
        return None
    name = m.group("name").strip()
    words = name.split()
    if not (len(words) <= 10 and name[0].isupper()) or re.search(r"[!?;:\"“”]", name):
        return None
    if any(w[0].islower() and w not in _NAME_LINKS for w in words):
        return None
    # A trailing period ends a sentence ("By Monday it was over.") unless it closes an initial.
    if name.endswith(".") and len(words[-1]) > 3:
        return None
    return name


def _lead_title(text: str) -> str:
    """Headline made from the first sentence, cut to about a dozen words."""
    first_line = next((line for line in text.splitlines() if line.strip()), "")
    sentence = _first_sentence(_heading(first_line))
    words = sentence.split()
    if len(words) > _TITLE_WORDS:
        return " ".join(words[:_TITLE_WORDS]).rstrip(",;:-–—") + "…"
    if sentence.endswith(".") and not sentence.endswith(".."):
        sentence = sentence[:-1]
    return sentence


def _first_sentence(line: str) -> str:
    for m in re.finditer(r"[.!?][\"'”’)\]]*(?=\s+[\"'“‘(\[]?[A-Z0-9])", line):
        before = line[: m.start()].split()
        word = before[-1].lstrip("\"'“‘(") if before else ""
        # "U.S. officials", "Mr. Kim": a period after an initial or title does not end it.
        if "." in word or len(word) == 1 or word.casefold() in HEADLINE_ABBREVIATIONS:
            continue
        return line[: m.end()]
    return line


# --- building the article ------------------------------------------------------------------


def _make_article(
    origin: str,
    text: str,
    *,
    title: Any,
    url: Any,
    source: Any,
    published: Any,
    author: Any,
    id_: Any = None,
) -> Iterator[tuple[_Kind, Article | Problem]]:
    if len(text) > MAX_TEXT_CHARS:
        yield _problem(
            origin,
            f"article text is over the {MAX_TEXT_CHARS:,} character limit ({len(text):,} characters): "
            "split it into smaller articles",
        )
        return
    text, repaired = _repaired(text)
    fields: dict[str, Any] = {
        "id": _scalar(id_), "title": _clean(title), "url": _scalar(url), "source": _clean(source),
        "author": _clean(author), "date": published if isinstance(published, date) else _scalar(published),
    }
    too_long = []
    for name, value in fields.items():
        if isinstance(value, str):
            fields[name], n = _repaired(value)
            repaired += n
            if len(value) > MAX_FIELD_CHARS:
                too_long.append((name, len(value)))
                fields[name] = None
    if repaired:
        yield "warning", Problem(
            origin,
            f"{repaired} lone surrogate{'s' if repaired > 1 else ''} (a broken \\uXXXX escape) replaced "
            "with U+FFFD: fix the escaping where the file was made",
        )
    for name, length in too_long:
        yield "warning", Problem(
            origin, f"{name} is over the {MAX_FIELD_CHARS:,} character limit ({length:,} characters): dropped"
        )
    published_at, bad = _parse_date(fields["date"])
    if bad is not None:
        yield "warning", Problem(origin, f"unparseable date {bad!r} dropped: use YYYY-MM-DD")
    elif published_at is not None and published_at > _latest_date():
        yield "warning", Problem(
            origin,
            f"date {published_at} is more than {FUTURE_DAYS} days in the future: dropped; "
            "check the article's date",
        )
        published_at = None
    url = fields["url"]
    article_id = fields["id"]
    if article_id is None:
        article_id = "u" + _sha1(_url_key(url))[:16] if url else "c" + _sha1(_normalise(text))[:16]
    yield "article", Article(
        id=article_id,
        title=fields["title"] or _lead_title(text),
        text=text,
        url=url,
        source=fields["source"] or _host(_hostname(url)),
        published_at=published_at,
        author=fields["author"],
        origin=origin,
    )


def _scalar(value: Any) -> str | None:
    """A string or number as stripped text; anything else (lists, objects) as None."""
    if not isinstance(value, (str, int, float)):
        return None
    return str(value).strip() or None


def _clean(value: Any) -> str | None:
    """One line of metadata: lists joined with ", ", whitespace collapsed, empty as None."""
    if isinstance(value, (list, tuple)):
        # One level only: metadata is never deeper, and a deep list is not worth recursing into.
        value = ", ".join(s for v in value if (s := _scalar(v)))
    s = _scalar(value)
    if s is None:
        return None
    return " ".join(s.split()) or None


_SURROGATES = re.compile("[\ud800-\udfff]")


def _repaired(text: str) -> tuple[str, int]:
    """``text`` with lone surrogates replaced by U+FFFD, and how many there were: UTF-8 (and so
    SQLite and any output) cannot hold them, and a JSON escape such as ``\\ud800`` makes them.

    >>> _repaired("Prices rose \\ud800 sharply")
    ('Prices rose \ufffd sharply', 1)
    """
    return _SURROGATES.subn("\ufffd", text)


def _latest_date() -> str:
    return (date.today() + timedelta(days=FUTURE_DAYS)).isoformat()


def _host(hostname: str | None) -> str | None:
    return hostname.lower().removeprefix("www.") if hostname else None


def _hostname(url: str | None) -> str | None:
    try:
        return urlsplit(url).hostname if url else None
    except ValueError:  # e.g. "http://[::1": an unclosed IPv6 address
        return None


def _url_key(url: str) -> str:
    try:
        return urldefrag(url.strip()).url.removesuffix("/")
    except ValueError:  # not a URL that can be split: the string as written is the key
        return url.strip()


def _normalise(text: str) -> str:
    """The form that ids and deduplication compare: NFKC, casefolded, single spaces."""
    return " ".join(unicodedata.normalize("NFKC", text).casefold().split())


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


_ISO_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def _parse_date(value: Any) -> tuple[str | None, str | None]:
    """Return ``(iso_date, None)``, or ``(None, bad_value)`` when it cannot be read.

    >>> _parse_date("Nov 9, 2023"), _parse_date("2023-11-09T10:00:00Z"), _parse_date("soon")
    (('2023-11-09', None), ('2023-11-09', None), (None, 'soon'))
    """
    if value is None:
        return None, None
    if isinstance(value, datetime):  # YAML front matter gives these already parsed
        return value.date().isoformat(), None
    if isinstance(value, date):
        return value.isoformat(), None
    s = str(value).strip()
    if not s:
        return None, None
    if m := _ISO_DATE.match(s):
        # The calendar day as written: converting to UTC would move late-evening stories.
        try:
            return date(*map(int, m.groups())).isoformat(), None
        except ValueError:
            return None, s
    try:
        # Parsed against two different defaults: if they disagree, the value lacked a day,
        # month or year, and dateutil would silently have made one up.
        a = dateparser.parse(s, default=datetime(2000, 1, 1))
        b = dateparser.parse(s, default=datetime(2001, 2, 2))
    except (ValueError, OverflowError):
        return None, s
    if a.date() != b.date():
        return None, s
    return a.date().isoformat(), None
