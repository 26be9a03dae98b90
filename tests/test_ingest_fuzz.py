"""Fuzzing the readers: whatever the bytes, a file becomes articles or reported problems, quickly.

Each example is one file in a folder of its own; the property is that ``read_sources`` returns
(never raises), accounts for the file (an article, a duplicate or a problem), and stays within a
time bound (Hypothesis' deadline). Kept small enough for ``make test-fast``.
"""

from __future__ import annotations

import gzip
import itertools
import json
from datetime import timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.ingest import read_sources

FUZZ = settings(
    max_examples=100,
    deadline=timedelta(milliseconds=400),
    database=None,  # nothing written into the repository
    suppress_health_check=[HealthCheck.too_slow],
)
SUFFIXES = [".txt", ".md", ".html", ".json", ".jsonl", ".jsonl.gz", ".json.gz", ".md.gz"]

_counter = itertools.count()

# Text with the pieces that broke readers before mixed in: lone surrogates, NUL, a line
# separator, impossible and far-future dates, an unclosed IPv6 URL, an over-long field.
ODD = ["\ud800", "\udfff", "\x00", "\u2028", "\ufeff", "2023-02-30", "9999-12-31", "http://[::1", "x" * 2100]
texts = st.lists(st.text(max_size=20) | st.sampled_from(ODD), max_size=4).map("".join)
scalars = st.none() | st.booleans() | st.integers() | st.floats() | texts
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
# Records that look like articles more often than not, so the article path is exercised too.
records = st.fixed_dictionaries(
    {},
    optional={
        "id": json_values, "title": json_values, "text": texts | json_values,
        "body": json_values, "url": texts | json_values, "source": json_values,
        "published_at": texts | json_values, "date": json_values, "author": json_values,
        "authors": json_values,
    },
)
yaml_words = st.sampled_from(["---", "...", ": ", "- ", "&a ", "*a", "!!binary ", "!!python/object ", "[", "]",
                              "{", "}", "? ", "'", '"', "\\u", "\n", "  ", "title", "date", "2023-02-30", "|", ">"])


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _read(folder: Path, suffix: str, data: bytes):
    path = folder / f"f{next(_counter)}{suffix}"
    path.write_bytes(gzip.compress(data, 1) if suffix.endswith(".gz") else data)
    try:
        report = read_sources([path])
    finally:
        path.unlink()
    accounted = report.articles + report.problems + report.duplicates
    assert accounted, f"{suffix} file of {data[:80]!r} gave neither an article nor a problem"
    for article in report.articles:
        article.text.encode("utf-8")  # storable: no lone surrogates
    return report


@FUZZ
@given(suffix=st.sampled_from(SUFFIXES), data=st.binary(max_size=2000))
def test_random_bytes(folder, suffix, data):
    _read(folder, suffix, data)


@FUZZ
@given(suffix=st.sampled_from([".json", ".jsonl", ".jsonl.gz"]),
       values=st.lists(records | json_values, min_size=1, max_size=4))
def test_random_json(folder, suffix, values):
    if suffix == ".json":
        text = json.dumps(values[0] if len(values) == 1 else values)
    else:
        text = "\n".join(json.dumps(v) for v in values)
    _read(folder, suffix, text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(front=st.lists(yaml_words | texts, max_size=30).map("".join), body=texts)
def test_random_front_matter(folder, front, body):
    _read(folder, ".md", f"---\n{front}\n---\n{body}".encode("utf-8", "surrogatepass"))


@FUZZ
@given(fields=records)
def test_random_fields_as_front_matter(folder, fields):
    fields.pop("text", None)
    front = yaml.safe_dump(fields, allow_unicode=True)
    _read(folder, ".md", f"---\n{front}---\nThe harbour reopened on Monday.".encode("utf-8", "surrogatepass"))
