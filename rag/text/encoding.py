"""Strings that are not text: lone surrogates.

Python lets them into a ``str`` from a JSON ``"\\ud800"`` escape, or from command-line bytes that
are not UTF-8 (``os.fsdecode`` turns byte 0xff into U+DCFF), but no tokenizer, database or UTF-8
output accepts them. Each shell checks its input with :func:`lone_surrogate` and says so in its own
words; the library raises BadQuery.

>>> lone_surrogate("profit \\udcff")
7
>>> lone_surrogate("profit \\U0001f4b0") is None
True
"""

from __future__ import annotations

# How os.fsdecode (surrogateescape) spells the bytes 0x80-0xff that are not UTF-8.
_ESCAPED_BYTES = range(0xDC80, 0xDD00)


def lone_surrogate(text: str) -> int | None:
    """The index of the first character of ``text`` UTF-8 cannot encode, or None."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return exc.start
    return None


def describe_surrogate(text: str, at: int) -> str:
    """``text[at]`` in words, counting characters from 1.

    >>> describe_surrogate("profit \\ud800", 7)
    'character 8 is a lone surrogate (U+D800)'
    >>> describe_surrogate("profit \\udcff", 7)
    'character 8 is a lone surrogate (U+DCFF: the byte 0xff, which is not UTF-8)'
    """
    code = ord(text[at])
    byte = f": the byte 0x{code - 0xDC00:02x}, which is not UTF-8" if code in _ESCAPED_BYTES else ""
    return f"character {at + 1} is a lone surrogate (U+{code:04X}{byte})"
