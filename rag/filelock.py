"""An exclusive advisory file lock between processes, used by the ONNX export cache and reindex.

>>> with FileLock(Path("index/.lock")):  # doctest: +SKIP
...     ...  # no other process holds index/.lock here
"""

from __future__ import annotations

import fcntl
from pathlib import Path
from typing import IO


class FileLock:
    """An exclusive ``flock`` on ``path`` (created if missing), held for a ``with`` block.

    A blocking lock waits for any other holder to let go. A non-blocking one raises
    ``BlockingIOError`` at once instead, for a caller that would rather fail fast with a message
    of its own than queue behind a long job.
    """

    def __init__(self, path: Path, *, blocking: bool = True) -> None:
        self.path = path
        self.blocking = blocking
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        """Take the lock; a non-blocking lock that another process holds raises BlockingIOError."""
        fh = open(self.path, "w")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX if self.blocking else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BaseException:
            fh.close()
            raise
        self._fh = fh

    def release(self) -> None:
        """Let go of the lock taken by ``acquire``."""
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
