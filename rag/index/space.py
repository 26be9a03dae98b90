"""A full disk during a reindex: recognising it, and saying how much space the build needs.

Each writer says "disk full" its own way: ``OSError`` with ENOSPC (or EDQUOT, over quota) from
Python's files, a bare ``OSError("… requested and … written")`` from numpy's ``tofile``,
``sqlite3.OperationalError("database or disk is full")`` from SQLite, and a RuntimeError that
quotes strerror from FAISS.
"""

from __future__ import annotations

import errno
import math
import re
import sqlite3
from pathlib import Path

from rag.errors import DiskFull

_SHORT_WRITE = re.compile(r"\d+ requested and \d+ written")


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the user's quota) is full.

    >>> is_disk_full(OSError(errno.ENOSPC, "No space left on device")), is_disk_full(OSError("denied"))
    (True, False)
    """
    if isinstance(exc, sqlite3.OperationalError):
        return getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL or "disk is full" in str(exc)
    if isinstance(exc, OSError):
        return exc.errno in (errno.ENOSPC, errno.EDQUOT) or bool(_SHORT_WRITE.search(str(exc)))
    if isinstance(exc, RuntimeError):
        return "No space left on device" in str(exc)
    return False


def folder_bytes(path: Path) -> int:
    """Bytes in the files under ``path`` (0 when it does not exist)."""
    if not path.is_dir():
        return 0
    total = 0
    for file in path.rglob("*"):
        try:
            total += file.lstat().st_size if file.is_file() else 0
        except OSError:  # removed while we counted
            pass
    return total


def megabytes(n: int) -> str:
    """``n`` bytes in MB, rounded up to a tenth: a space estimate must not fall short.

    >>> megabytes(0), megabytes(1), megabytes(2_345_678)
    ('0.0 MB', '0.1 MB', '2.4 MB')
    """
    return f"{math.ceil(n / 100_000) / 10:.1f} MB"


def disk_full(index_dir: Path, exc: BaseException, written: int, previous: int) -> DiskFull:
    """The error for a build that filled the disk after writing ``written`` bytes, beside a
    previous generation of ``previous`` bytes (0 when there is none).

    The estimate of what the build needs is the larger of the two: a new generation of the same
    articles is about as big as the previous one, and at least as big as what it had written.
    """
    cause = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    if previous >= written:
        need = f"about {megabytes(previous)} (the size of the previous generation)"
    else:
        need = f"more than {megabytes(written)} (what it had written when the disk filled)"
    return DiskFull(
        f"disk full while writing the index in {index_dir} ({cause}): the previous index is unchanged; "
        f"the new generation needs {need}: free that much space on the disk that holds {index_dir}, "
        "or reindex into a folder on another disk with --index, and run the reindex again"
    )
