"""Which vectors a reindex can copy from the generation it replaces.

Every chunk's embedded text is hashed (SHA-1, its ``embed_key``); a text that the previous
generation embedded, with the same model and chunking, has its vector copied rather than
embedded again. The previous generation's keys are held as sorted 20-byte digests beside their
rows (28 bytes a chunk, 0.3 GB at 10M chunks), not as a dict of hex strings (about 150 bytes a
chunk, 1.5 GB at 10M).
"""

from __future__ import annotations

from array import array
from typing import Iterable, Sequence

import numpy as np


class KnownVectors:
    """``embed_key`` -> row of the previous generation's ``vectors.npy``, for looking up many at once."""

    def __init__(self, pairs: Iterable[tuple[str, int]] = ()) -> None:
        digests, rows = bytearray(), array("q")
        for key, row in pairs:
            digests += bytes.fromhex(key)
            rows.append(row)
        keys = np.frombuffer(digests, dtype="S20")
        order = np.argsort(keys, kind="stable")
        self._keys = keys[order]
        self._rows = np.frombuffer(rows, dtype=np.int64)[order] if len(rows) else np.empty(0, dtype=np.int64)

    def __len__(self) -> int:
        return len(self._keys)

    def max_row(self) -> int:
        """The highest row a key points to (-1 when there is none)."""
        return int(self._rows.max()) if len(self._rows) else -1

    def rows_of(self, keys: Sequence[str]) -> np.ndarray:
        """The row of each of ``keys`` (hex SHA-1 digests), -1 where the previous generation has none.

        >>> known = KnownVectors([("ab" * 20, 7)])
        >>> known.rows_of(["ab" * 20, "cd" * 20]).tolist()
        [7, -1]
        """
        if not len(self._keys) or not keys:
            return np.full(len(keys), -1, dtype=np.int64)
        wanted = np.frombuffer(b"".join(bytes.fromhex(k) for k in keys), dtype="S20")
        at = np.minimum(np.searchsorted(self._keys, wanted), len(self._keys) - 1)
        return np.where(self._keys[at] == wanted, self._rows[at], -1)
