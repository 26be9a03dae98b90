"""Read news articles from folders and files into :class:`~rag.models.Article` records.

Supported inputs: ``.txt``/``.md``/``.markdown`` (optional YAML front matter), ``.html``/``.htm``,
``.json`` (one record or a list), ``.jsonl``/``.ndjson`` (one record a line), each optionally
gzipped. A bad file or line never stops the run: it becomes a :class:`~rag.models.Problem`.
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
from datetime import date, datetime
from pathlib import Path
from typing import IO, Any, Literal
from urllib.parse import urldefrag, urlsplit

import yaml
from dateutil import parser as dateparser

from rag.errors import SourceError
from rag.models import Article, Problem
from rag.text.words import HEADLINE_ABBREVIATIONS

MAX_FILE_BYTES = 20_000_000
MAX_TEXT_CHARS = 2_000_000
_SNIFF_BYTES = 8192

_FORMATS = {
    ".txt": "text",
    ".md": "text",
    ".markdown": "text",
    ".html": "html",
    ".htm": "html",
    ".json": "json",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
}
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


def iter_source_files(sources: Iterable[str | Path] | str | Path) -> Iterator[Path]:
    """Yield the files to read: folders recursively in sorted order, files as given.

    Hidden files and folders, and unsupported files inside folders, are skipped; a file named
    explicitly is yielded whatever its type, so that :func:`iter_articles` can say why it is
    unusable. Every source is checked before anything is yielded.

    >>> list(iter_source_files(["seeds/000_29be564519ffc8c1.txt"]))
    [PosixPath('seeds/000_29be564519ffc8c1.txt')]
    """
    # A lone str is iterable too; reading its characters as paths would be a baffling error.
    roots = [Path(sources)] if isinstance(sources, (str, Path)) else [Path(s) for s in sources]
    for root in roots:
        if not root.exists():
            raise SourceError(
                f"source not found: {root}: check the path, "
                "or pass a folder of .txt/.md/.html/.json/.jsonl articles"
            )
    return _unique_files(roots)


def iter_articles(sources: Iterable[str | Path] | str | Path) -> Iterator[Article | Problem]:
    """Stream articles and problems from ``sources`` as they are read, without deduplication.

    A caveat (such as an unparseable date) comes as a ``Problem`` just before the ``Article``
    it concerns, with the same origin; :func:`read_sources` keeps the two kinds apart.

    >>> [type(x).__name__ for x in iter_articles(["seeds/000_29be564519ffc8c1.txt"])]
    ['Article']
    """
    events = _events(iter_source_files(sources))
    return (item for _, item in events)


def read_sources(sources: Iterable[str | Path] | str | Path) -> IngestReport:
    """Read every source, drop exact duplicates, and sort out problems from warnings.

    >>> report = read_sources(["seeds/"])
    >>> len(report.articles), report.problems
    (1, [])
    """
    report = IngestReport()
    first_by_text: dict[str, Article] = {}
    first_by_id: dict[str, Article] = {}
    for kind, item in _events(iter_source_files(sources)):
        if kind == "warning":
            report.warnings.append(item)  # type: ignore[arg-type]
            continue
        if kind == "problem":
            report.problems.append(item)  # type: ignore[arg-type]
            continue
        assert isinstance(item, Article)
        key = _sha1(_normalise(item.text))
        if (first := first_by_text.get(key)) is not None:
            reason = f"duplicate of article {first.id} ({first.origin})"
            report.duplicates.append(Problem(item.origin, reason))
        elif (first := first_by_id.get(item.id)) is not None:
            reason = f"duplicate id {item.id} with different text (first read from {first.origin})"
            report.problems.append(Problem(item.origin, reason))
        else:
            first_by_text[key] = first_by_id[item.id] = item
            report.articles.append(item)
    return report


# --- finding files -------------------------------------------------------------------------


def _format_of(path: Path) -> str | None:
    name = path.name.lower().removesuffix(".gz")
    return _FORMATS.get(Path(name).suffix)


def _unique_files(roots: list[Path]) -> Iterator[Path]:
    # The same file reached twice (a folder and a file inside it) would only add duplicates.
    seen: set[Path] = set()
    for root in roots:
        for path in _folder_files(root) if root.is_dir() else [root]:
            key = path.resolve()
            if key not in seen:
                seen.add(key)
                yield path


def _folder_files(folder: Path) -> Iterator[Path]:
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.startswith("."):
            continue
        # Like os.walk, don't follow linked folders: a link back up would recurse forever.
        if entry.is_dir() and not entry.is_symlink():
            yield from _folder_files(entry)
        elif entry.is_file() and _format_of(entry):
            yield entry


# --- reading files -------------------------------------------------------------------------


def _events(files: Iterable[Path]) -> Iterator[tuple[_Kind, Article | Problem]]:
    for path in files:
        yield from _read_file(path)


def _problem(origin: str, reason: str) -> tuple[_Kind, Problem]:
    return "problem", Problem(origin, reason)


def _read_file(path: Path) -> Iterator[tuple[_Kind, Article | Problem]]:
    origin = str(path)
    fmt = _format_of(path)
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
        if not compressed and size > MAX_FILE_BYTES:
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
    # Streamed line by line so that a large .jsonl.gz corpus never sits in memory twice.
    any_record = False
    try:
        with _open(path, compressed) as f:
            for n, raw in enumerate(f, 1):
                if n == 1:
                    raw = raw.removeprefix(b"\xef\xbb\xbf")
                raw = raw.strip()
                if not raw:
                    continue
                any_record = True
                where = f"{origin}:{n}"
                try:
                    record = json.loads(raw.decode("utf-8"))
                except UnicodeDecodeError:
                    yield _problem(where, _NOT_UTF8)
                except json.JSONDecodeError as e:
                    yield _problem(where, f"malformed JSON: {e.msg}: column {e.colno}")
                else:
                    yield from _from_record(record, where)
    except _GZIP_ERRORS as e:
        yield _problem(origin, f"corrupt gzip: {e}")
        return
    if not any_record:
        yield _problem(origin, "file is empty")


def _parse_json(text: str, origin: str) -> Iterator[tuple[_Kind, Article | Problem]]:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        yield _problem(origin, f"malformed JSON: {e.msg}: line {e.lineno} column {e.colno}")
        return
    if isinstance(data, list):
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

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.S | re.M)

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
    meta: dict[str, Any] = {}
    body = text
    if m := _FRONT_MATTER.match(text):
        body = text[m.end():]
        try:
            loaded = yaml.safe_load(m.group(1))
        except yaml.YAMLError as e:
            loaded = None
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 2})" if mark is not None else ""
            yield "warning", Problem(origin, f"front matter is not valid YAML{where}: its fields were ignored")
        else:
            if loaded is not None and not isinstance(loaded, dict):
                yield "warning", Problem(origin, "front matter is not a mapping of keys: its fields were ignored")
        meta = loaded if isinstance(loaded, dict) else {}
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
    url = str(url).strip() if url else None
    published_at, bad = _parse_date(published)
    if bad is not None:
        yield "warning", Problem(origin, f"unparseable date {bad!r} dropped: use YYYY-MM-DD")
    article_id = str(id_).strip() if id_ is not None and str(id_).strip() else None
    if article_id is None:
        article_id = "u" + _sha1(_url_key(url))[:16] if url else "c" + _sha1(_normalise(text))[:16]
    yield "article", Article(
        id=article_id,
        title=_clean(title) or _lead_title(text),
        text=text,
        url=url,
        source=_clean(source) or _host(urlsplit(url).hostname if url else None),
        published_at=published_at,
        author=_clean(author),
        origin=origin,
    )


def _clean(value: Any) -> str | None:
    """One line of metadata: lists joined with ", ", whitespace collapsed, empty as None."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return _clean(", ".join(s for v in value if (s := _clean(v))))
    return " ".join(str(value).split()) or None


def _host(hostname: str | None) -> str | None:
    return hostname.lower().removeprefix("www.") if hostname else None


def _url_key(url: str) -> str:
    return urldefrag(url.strip()).url.removesuffix("/")


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
