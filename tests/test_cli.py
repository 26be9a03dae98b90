"""The rag command: exit codes and printed lines."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from api.cli import main

KEYS = ["rank", "score", "article_id", "chunk_id", "title", "url", "source", "published_at", "text", "start", "end"]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "api.cli", *args], capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_reindex_then_search_json_end_to_end(tmp_path, corpus):
    index = str(tmp_path / "index")
    done = run("reindex", str(corpus), str(corpus / "blinken-seoul.txt"), "--index", index)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"indexed 6 articles into {index}: 6 added, 0 updated, 0 removed, 0 unchanged, 0 skipped")

    found = run("search", "North Korea Russia arms", "--since", "2023-11-01", "--source", "bbc.co.uk",
                "--json", "--k", "2", "--index", index)
    assert found.returncode == 0, found.stderr
    hits = json.loads(found.stdout)
    assert [list(h) for h in hits] == [KEYS] * len(hits)
    assert {(h["source"], h["published_at"]) for h in hits} == {("bbc.co.uk", "2023-11-12")}
    assert hits[0]["url"] == "https://www.bbc.co.uk/news/world-asia-67390001"


def test_search_prints_ranked_passages(built, capsys):
    pipeline, _, _ = built
    assert main(["search", "Abbott baby formula", "--k", "1", "--index", str(pipeline.settings.index_dir)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("1. Abbott restarts baby formula production at Michigan plant  (cnn.com, 2022-06-05)  score ")
    assert lines[1] == "   https://edition.cnn.com/2022/06/05/health/abbott-sturgis-restart/index.html"
    assert lines[2].startswith("   [cnn-2022-06-05-abbott#0, chars 0-")


def test_errors_are_one_line_and_exit_1(tmp_path, capsys):
    assert main(["search", "anything", "--index", str(tmp_path / "nowhere")]) == 1
    assert capsys.readouterr().err == (
        f"error: no index in {tmp_path / 'nowhere'}: run 'rag reindex <folder> --index {tmp_path / 'nowhere'}' first\n"
    )


def test_a_keyword_shard_size_below_one_is_one_error_line(tmp_path, corpus, capsys):
    index = tmp_path / "index"
    assert main(["reindex", str(corpus), "--index", str(index), "--keyword-shard-rows", "0"]) == 1
    assert capsys.readouterr().err == (
        "error: keyword_shard_rows=0 must be at least 1: pick e.g. 1000000 (a BM25 shard of 1M chunks takes "
        "about 8 GB to build)\n"
    )
    assert not index.exists()


@pytest.mark.parametrize("command", ["search", "ask"])
def test_a_question_that_is_not_utf8_exits_2_naming_the_argument(built, command):
    pipeline, _, _ = built
    argument = "query" if command == "search" else "question"
    done = subprocess.run([sys.executable, "-m", "api.cli", command, b"profit \xff", "--index",
                           str(pipeline.settings.index_dir)], capture_output=True, text=True, timeout=300)
    assert (done.returncode, done.stdout) == (2, "")
    assert done.stderr.splitlines()[-1] == (
        f"rag {command}: error: argument {argument}: not text: character 8 is a lone surrogate (U+DCFF: the byte "
        "0xff, which is not UTF-8); pass UTF-8 (is the terminal's or script's encoding UTF-8?)")


def test_a_reader_that_stops_reading_ends_the_command_quietly(built, capsys, monkeypatch):
    pipeline, _, _ = built
    read, write = os.pipe()
    os.close(read)  # `| head` that has read enough
    closed = io.TextIOWrapper(os.fdopen(write, "wb"), encoding="utf-8")
    monkeypatch.setattr(sys, "stdout", closed)
    assert main(["search", "Abbott baby formula", "--json", "--index", str(pipeline.settings.index_dir)]) == 141
    assert capsys.readouterr().err == ""
    closed.close()  # nothing left to raise: what was buffered went to /dev/null


@pytest.mark.slow
def test_search_json_into_a_closed_pipe_exits_141_without_a_traceback(built):
    pipeline, _, _ = built
    proc = subprocess.Popen([sys.executable, "-m", "api.cli", "search", "Abbott baby formula", "--json", "--index",
                             str(pipeline.settings.index_dir)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # before the command has printed a byte
    _, err = proc.communicate(timeout=300)
    assert (proc.returncode, err.decode()) == (141, "")


def test_bad_date_is_reported(built, capsys):
    pipeline, _, _ = built
    assert main(["search", "q", "--since", "11/09/2023", "--index", str(pipeline.settings.index_dir)]) == 1
    assert capsys.readouterr().err == "error: since: '11/09/2023' is not a date: use YYYY-MM-DD, e.g. 2023-11-09\n"


@pytest.mark.slow
def test_reindex_reports_skipped_files(tmp_path, corpus):
    (corpus / "broken.jsonl").write_text('{"id": "x", "text": "ok text here"}\n{oops\n')
    (corpus / "photo.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00")
    done = run("reindex", str(corpus), "--index", str(tmp_path / "index"))
    assert done.returncode == 0, done.stderr
    assert f"skipped {corpus / 'broken.jsonl'}:2: malformed JSON" in done.stderr
    assert f"skipped {corpus / 'photo.txt'}: " in done.stderr
    assert "7 added" in done.stdout and "1 skipped (1 unusable" not in done.stdout


def test_serve_with_a_model_that_cannot_load_is_one_error_line_not_a_traceback(tmp_path, capsys):
    missing = str(tmp_path / "no-such-model")
    assert main(["serve", "--index", str(tmp_path / "index"), "--model", missing, "--port", "1"]) == 1
    out = capsys.readouterr()
    assert out.out == ""  # nothing claims to be serving
    assert out.err == (f"error: model folder {missing!r} does not exist: pass a local model folder, "
                       "or leave the model unset to use the packaged all-MiniLM-L6-v2\n")
