"""Hostile and damaged input, as a spec: each bad record is reported and skipped (or repaired),
never the end of the run, and nothing outside a source folder is read."""

from __future__ import annotations

import gzip
import json
import os
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

from rag.ingest import IngestReport, read_sources
from rag.models import Article, Problem

GOOD = {"id": "g1", "title": "Harbour reopens", "text": "The harbour reopened on Monday after repairs."}
GOOD_ARTICLE = Article(id="g1", title="Harbour reopens", text=GOOD["text"])


def jsonl(path: Path, lines: list[str]) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def good(origin: str) -> Article:
    return Article(**{**GOOD_ARTICLE.__dict__, "origin": origin})


# --- bad records are reported by file and line; the rest is read --------------------------


def test_a_lone_surrogate_is_replaced_with_a_warning_and_the_record_kept(tmp_path):
    # json.dumps writes "\ud800" as the six characters \ud800, which json.loads turns back
    # into a lone surrogate: what a broken exporter leaves in a real file.
    path = jsonl(tmp_path / "wire.jsonl", [
        json.dumps({"id": "s1", "title": "Prices \ud800", "text": "Prices rose \ud800 sharply."}),
        json.dumps(GOOD),
    ])

    assert read_sources([path]) == IngestReport(
        articles=[
            Article(id="s1", title="Prices \ufffd", text="Prices rose \ufffd sharply.", origin=f"{path}:1"),
            good(f"{path}:2"),
        ],
        warnings=[Problem(
            f"{path}:1",
            "2 lone surrogates (a broken \\uXXXX escape) replaced with U+FFFD: "
            "fix the escaping where the file was made",
        )],
    )


def test_deeply_nested_json_is_a_problem_and_the_other_records_are_read(tmp_path):
    deep = "[" * 200_000 + "]" * 200_000
    lines = jsonl(tmp_path / "wire.jsonl", [deep, json.dumps(GOOD)])
    whole = tmp_path / "deep.json"
    whole.write_text(deep)

    assert read_sources([lines, whole]) == IngestReport(
        articles=[good(f"{lines}:2")],
        problems=[
            Problem(f"{lines}:1", "JSON is nested too deeply to read: an article is one flat JSON object"),
            Problem(str(whole), "JSON is nested too deeply to read: an article is one flat JSON object"),
        ],
    )


def test_an_empty_json_array_is_a_problem_not_silence(tmp_path):
    path = tmp_path / "export.json"
    path.write_text("[]")

    assert read_sources([path]) == IngestReport(
        problems=[Problem(str(path), "file is an empty JSON array: it holds no articles")]
    )


def test_a_number_python_will_not_read_is_a_problem(tmp_path):
    path = jsonl(tmp_path / "wire.jsonl", ['{"id": 1' + "0" * 5000 + ', "text": "x"}', json.dumps(GOOD)])

    assert read_sources([path]) == IngestReport(
        articles=[good(f"{path}:2")],
        problems=[Problem(f"{path}:1", "JSON holds a number too long to read: an article is one flat JSON object")],
    )


# --- size limits: per record for JSON Lines, per file for what is read whole --------------


@pytest.mark.parametrize("name", ["export.jsonl", "export.jsonl.gz"])
def test_json_lines_of_any_size_are_streamed_with_the_limit_on_each_record(tmp_path, name):
    path = tmp_path / name
    too_big = json.dumps({"id": "big", "text": "x" * 20_000_000})
    content = "\n".join([json.dumps(GOOD), too_big, json.dumps({**GOOD, "id": "g2", "text": "Ferries ran late."})])
    path.write_bytes(gzip.compress(content.encode(), 1) if name.endswith(".gz") else content.encode())
    assert len(content) > 20_000_000  # over the limit for files read whole

    assert read_sources([path]) == IngestReport(
        articles=[
            good(f"{path}:1"),
            Article(id="g2", title="Harbour reopens", text="Ferries ran late.", origin=f"{path}:3"),
        ],
        problems=[Problem(f"{path}:2", "record is over the 20 MB limit: split it into smaller articles")],
    )


def test_a_json_array_over_the_limit_is_still_refused_whole(tmp_path):
    path = tmp_path / "export.json"
    with open(path, "wb") as fh:
        fh.truncate(20_000_001)

    assert read_sources([path]).problems == [
        Problem(str(path), "file is over the 20 MB limit (20.0 MB): split it into smaller files")
    ]


def test_a_metadata_field_over_its_limit_is_dropped_with_a_warning(tmp_path):
    path = jsonl(tmp_path / "wire.jsonl", [json.dumps({**GOOD, "title": "T" * 2001, "author": ["A"] * 1000})])

    assert read_sources([path]) == IngestReport(
        articles=[Article(id="g1", title="The harbour reopened on Monday after repairs", text=GOOD["text"],
                          origin=f"{path}:1")],
        warnings=[
            Problem(f"{path}:1", "title is over the 2,000 character limit (2,001 characters): dropped"),
            Problem(f"{path}:1", "author is over the 2,000 character limit (2,998 characters): dropped"),
        ],
    )


# --- front matter --------------------------------------------------------------------------

ALIAS_BOMB = """---
a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]
h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]
i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]
title: *i
---
The council met on Tuesday to approve the budget.
"""


def test_a_yaml_alias_bomb_is_refused_at_once_and_the_body_is_still_read(tmp_path):
    path = tmp_path / "bomb.md"
    path.write_text(ALIAS_BOMB)
    assert len(ALIAS_BOMB) < 500  # nine levels of aliases: 9**9 strings once expanded

    started = time.perf_counter()
    report = read_sources([path])

    assert time.perf_counter() - started < 1.0
    assert report == IngestReport(
        articles=[Article(id=report.articles[0].id, title="The council met on Tuesday to approve the budget",
                          text="The council met on Tuesday to approve the budget.", origin=str(path))],
        warnings=[Problem(str(path), "front matter uses the YAML alias *a: its fields were ignored; "
                                     "write the value out")],
    )


@pytest.mark.parametrize(
    ("front", "warning"),
    [
        ("title: " + "x" * 70_000, ("front matter is over the 64 KiB limit (70,008 bytes): its fields were "
                                    "ignored; keep only the article's metadata there")),
        ("title: " + "[" * 30 + "]" * 30, "front matter is nested more than 20 levels deep: its fields were ignored"),
        ("id: 1" + "0" * 5000, "front matter holds a number too long to read: its fields were ignored"),
    ],
)
def test_front_matter_out_of_bounds_is_ignored_with_a_warning(tmp_path, front, warning):
    path = tmp_path / "a.md"
    path.write_text(f"---\n{front}\n---\n{GOOD['text']}\n")

    report = read_sources([path])

    assert [a.text for a in report.articles] == [GOOD["text"]]
    assert report.warnings == [Problem(str(path), warning)]


def test_an_impossible_front_matter_date_is_one_unparseable_date_not_lost_fields(tmp_path):
    path = tmp_path / "a.md"
    path.write_text(f"---\ntitle: Harbour reopens\ndate: 2023-02-30\n---\n{GOOD['text']}\n")

    report = read_sources([path])

    assert [(a.title, a.published_at) for a in report.articles] == [("Harbour reopens", None)]
    assert report.warnings == [Problem(str(path), "unparseable date '2023-02-30' dropped: use YYYY-MM-DD")]


# --- dates -----------------------------------------------------------------------------------


def test_a_date_more_than_two_days_ahead_is_dropped_with_a_warning(tmp_path):
    in_two_days = (date.today() + timedelta(days=2)).isoformat()
    path = jsonl(tmp_path / "wire.jsonl", [
        json.dumps({**GOOD, "published_at": "9999-12-31"}),
        json.dumps({"id": "g2", "text": "Ferries ran late.", "published_at": in_two_days}),
    ])

    report = read_sources([path])

    assert [(a.id, a.published_at) for a in report.articles] == [("g1", None), ("g2", in_two_days)]
    assert report.warnings == [
        Problem(f"{path}:1", "date 9999-12-31 is more than 2 days in the future: dropped; check the article's date")
    ]


# --- links -----------------------------------------------------------------------------------


def test_links_are_followed_only_inside_the_source_folder_and_the_rest_reported(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    secret = outside / "passwd.txt"
    secret.write_text("root:x:0:0:root:/root:/bin/bash")
    news = tmp_path / "news"
    (news / "sub").mkdir(parents=True)
    (news / "sub" / "story.txt").write_text(GOOD["text"])
    (news / "a-inside.txt").symlink_to(news / "sub" / "story.txt")
    (news / "b-secret.txt").symlink_to(secret)
    (news / "c-folder").symlink_to(outside)
    (news / "d-dangling.txt").symlink_to(news / "gone.txt")
    (news / "e-self.txt").symlink_to(news / "e-self.txt")
    (news / "sub" / "f-up").symlink_to(news)

    report = read_sources([news])

    assert [a.origin for a in report.articles] == [str(news / "a-inside.txt")]
    assert report.problems == [
        Problem(str(news / "b-secret.txt"), f"link to {secret}, outside the source folder {news}: not followed; "
                                            "copy the file into the folder to index it"),
        Problem(str(news / "c-folder"), f"link to {outside}, outside the source folder {news}: not followed; "
                                        "copy the file into the folder to index it"),
        Problem(str(news / "d-dangling.txt"), f"broken link: its target {news / 'gone.txt'} does not exist; "
                                              "remove the link or restore the file"),
        Problem(str(news / "e-self.txt"), "link loop: the link leads back to itself: not followed; remove the link"),
        Problem(str(news / "sub" / "f-up"), f"link loop: it points to {news}, a folder that holds it: "
                                            "not followed; remove the link"),
    ]


def test_a_linked_folder_inside_the_source_is_walked_once(tmp_path):
    news = tmp_path / "news"
    (news / "real").mkdir(parents=True)
    (news / "real" / "story.txt").write_text(GOOD["text"])
    for i in range(3):
        (news / f"link{i}").symlink_to(news / "real")

    report = read_sources([news])

    assert [a.origin for a in report.articles] == [str(news / "link0" / "story.txt")]
    assert report.problems == [] and report.duplicates == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any folder")
def test_an_unreadable_folder_is_a_problem(tmp_path):
    (tmp_path / "locked").mkdir(mode=0)
    (tmp_path / "story.txt").write_text(GOOD["text"])
    try:
        report = read_sources([tmp_path])
    finally:
        (tmp_path / "locked").chmod(0o755)

    assert report.problems == [Problem(str(tmp_path / "locked"), "cannot read folder: Permission denied")]
    assert len(report.articles) == 1
