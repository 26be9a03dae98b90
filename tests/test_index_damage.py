"""Reindexing over damaged state and a full disk, as a spec: a rebuild never needs the old
generation, bad records are skipped one by one, and a full disk is one message that says where
and how much."""

from __future__ import annotations

import errno
import json
import math
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from rag import DiskFull, Pipeline, Settings
from rag.index.keyword import KeywordSearcher
from rag.index.store import Store
from rag.models import Problem

SCRATCH = "this build started from scratch (every article embedded again)"


def copy_index(built, tmp_path: Path) -> tuple[Path, Path]:
    """A copy of the session's index, and its current generation folder."""
    pipeline, _, _ = built
    index_dir = tmp_path / "index"
    shutil.copytree(pipeline.settings.index_dir, index_dir)
    generation = json.loads((index_dir / "manifest.json").read_text())["generation"]
    return index_dir, index_dir / generation


def bytes_in(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def mb(n: int) -> str:
    return f"{math.ceil(n / 100_000) / 10:.1f} MB"


# --- a damaged or missing previous generation ----------------------------------------------


@pytest.mark.parametrize("full", [True, False], ids=["full", "incremental"])
def test_a_reindex_over_a_damaged_store_starts_from_scratch_with_a_warning(built, tmp_path, embedder, full):
    index_dir, generation = copy_index(built, tmp_path)
    (generation / "store.sqlite").write_bytes(b"this is not a database" * 100)

    summary = Pipeline(Settings(index_dir=index_dir), embedder=embedder).reindex(full=full)

    assert summary.warnings == [Problem(
        str(generation), f"previous generation is unreadable (DatabaseError: file is not a database): {SCRATCH}"
    )]
    assert (summary.articles, summary.added, summary.reused, summary.embedded) == (6, 6, 0, summary.chunks)
    assert not generation.exists()  # the damaged generation is not kept as the "previous" one
    fresh = Pipeline(Settings(index_dir=index_dir), embedder=embedder)
    assert fresh.search("baby formula plant", k=1)[0].article.id == "cnn-2022-06-05-abbott"


def test_a_missing_generation_folder_rebuilds_from_the_sources_the_manifest_names(built, tmp_path, embedder):
    index_dir, generation = copy_index(built, tmp_path)
    shutil.rmtree(generation)

    summary = Pipeline(Settings(index_dir=index_dir), embedder=embedder).reindex()

    assert summary.warnings == [Problem(str(generation), f"previous generation is missing: {SCRATCH}")]
    assert (summary.articles, summary.added) == (6, 6)


def test_an_unreadable_vectors_file_is_not_reused(built, tmp_path, embedder):
    index_dir, generation = copy_index(built, tmp_path)
    (generation / "vectors.npy").write_bytes(b"\x93NUMPY garbage")

    summary = Pipeline(Settings(index_dir=index_dir), embedder=embedder).reindex()

    [warning] = summary.warnings
    assert warning.origin == str(generation)
    assert warning.reason.startswith("previous generation is unreadable (ValueError: ")
    assert warning.reason.endswith(f"): {SCRATCH}")
    assert (summary.added, summary.reused, summary.embedded) == (6, 0, summary.chunks)


@pytest.mark.slow
def test_the_command_the_damage_message_recommends_works(built, tmp_path):
    index_dir, generation = copy_index(built, tmp_path)
    (generation / "store.sqlite").write_bytes(b"this is not a database" * 100)

    done = subprocess.run([sys.executable, "-m", "api.cli", "reindex", "--full", "--index", str(index_dir)],
                          capture_output=True, text=True, timeout=300, check=False)

    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"warning {generation}: previous generation is unreadable (DatabaseError: file is not a database): {SCRATCH}"
    ]
    assert done.stdout.startswith(f"indexed 6 articles into {index_dir}: 6 added, 0 updated, 0 removed, 0 unchanged")


# --- bad records do not stop a reindex -----------------------------------------------------


@pytest.mark.slow
def test_a_reindex_skips_bad_records_and_indexes_the_rest(tmp_path, corpus):
    wire = corpus / "wire" / "hostile.jsonl"
    wire.write_text("\n".join([
        json.dumps({"id": "s1", "text": "Prices rose \ud800 sharply in June, the statistics office said."}),
        "[" * 200_000 + "]" * 200_000,
    ]) + "\n")
    index = tmp_path / "index"

    done = subprocess.run([sys.executable, "-m", "api.cli", "reindex", str(corpus), "--index", str(index)],
                          capture_output=True, text=True, timeout=300, check=False)

    assert done.returncode == 0, done.stderr
    assert done.stderr.splitlines() == [
        f"skipped {wire}:2: JSON is nested too deeply to read: an article is one flat JSON object",
        (f"warning {wire}:1: 1 lone surrogate (a broken \\uXXXX escape) replaced with U+FFFD: "
         "fix the escaping where the file was made"),
    ]
    assert done.stdout.startswith(f"indexed 7 articles into {index}: 7 added, 0 updated, 0 removed, 0 unchanged, "
                                  "1 skipped (1 unusable, 0 duplicates)")


# --- a full disk ---------------------------------------------------------------------------


def test_a_full_disk_while_saving_vectors_says_so_and_estimates_from_the_previous_generation(
        built, tmp_path, embedder, monkeypatch):
    index_dir, generation = copy_index(built, tmp_path)
    manifest = (index_dir / "manifest.json").read_text()

    def no_room(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    # vectors.npy is written through a map, its blocks allocated first: that is where a full disk shows.
    monkeypatch.setattr(os, "posix_fallocate", no_room)
    pipeline = Pipeline(Settings(index_dir=index_dir), embedder=embedder)
    with pytest.raises(DiskFull) as err:
        pipeline.reindex(full=True)

    assert str(err.value) == (
        f"disk full while writing the index in {index_dir} (No space left on device): the previous index "
        f"is unchanged; the new generation needs about {mb(bytes_in(generation))} (the size of the previous "
        f"generation): free that much space on the disk that holds {index_dir}, or reindex into a folder on "
        "another disk with --index, and run the reindex again"
    )
    assert (index_dir / "manifest.json").read_text() == manifest
    assert sorted(p.name for p in index_dir.iterdir()) == [".lock", generation.name, "manifest.json"]
    monkeypatch.undo()
    assert pipeline.search("baby formula plant", k=1)[0].article.id == "cnn-2022-06-05-abbott"


@pytest.mark.parametrize(
    ("where", "error", "cause"),
    [
        ((Store, "add_chunks"), sqlite3.OperationalError("database or disk is full"), "database or disk is full"),
        ((KeywordSearcher, "save"), OSError(errno.ENOSPC, "No space left on device"), "No space left on device"),
    ],
    ids=["sqlite", "ENOSPC"],
)
def test_a_full_disk_on_a_first_build_estimates_from_what_was_written(
        tmp_path, corpus, embedder, monkeypatch, where, error, cause):
    index_dir = tmp_path / "index"
    written = []

    def fill_the_disk(self, *args, **kwargs):
        written.append(bytes_in(next(index_dir.glob(".building-*"))))
        raise error

    monkeypatch.setattr(*where, fill_the_disk)
    with pytest.raises(DiskFull) as err:
        Pipeline(Settings(index_dir=index_dir), embedder=embedder).reindex([corpus])

    assert written[0] > 0
    assert str(err.value) == (
        f"disk full while writing the index in {index_dir} ({cause}): the previous index is unchanged; "
        f"the new generation needs more than {mb(written[0])} (what it had written when the disk filled): "
        f"free that much space on the disk that holds {index_dir}, or reindex into a folder on another disk "
        "with --index, and run the reindex again"
    )
    assert sorted(p.name for p in index_dir.iterdir()) == [".lock"]
