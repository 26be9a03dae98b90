"""Offset-exact sentence splitting for news text, in pure Python and ``re``.

Spans point into the text unchanged, so a chunk or a quote cut from them can be checked with
``text[start:end]``. The rules are tuned for wire copy: a line break always ends a sentence, and
sentences inside a quotation stay with the quotation, so a quote keeps its speaker.

>>> text = 'Mr. Park said, "It is late. We go." The U.S. team left at 9 a.m. Friday.'
>>> [text[s:e] for s, e in split_sentences(text)]
['Mr. Park said, "It is late. We go."', 'The U.S. team left at 9 a.m. Friday.']
"""

from __future__ import annotations

import re

from rag.text.words import ABBREVIATIONS

__all__ = ["split_sentences"]

# Characters str.splitlines() breaks on: a sentence never runs across one of them.
_LINE_BREAKS = "\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029"
_LINE = re.compile(rf"\S(?:[^{_LINE_BREAKS}]*\S)?")

# A run of enders with the closing quotes or brackets that belong to it, where more text
# follows on the same line (group 3 is where that text starts); or else a single quote mark,
# which only moves the quotation state.
_EVENT = re.compile(
    rf"([.!?\u2026]+)([\u201d\u2019\"')\]]*)(?=[^\S{_LINE_BREAKS}]+(\S))"
    r"|[\u201c\u201d\u2018\u2019\"']"
)

_OPENERS = frozenset("\u201c\u2018\"'([")
_DOTTED = re.compile(r"(?:[A-Za-z]\.)+[A-Za-z]")  # "U.S", "a.m", "e.g" (the last dot is the ender)

_Stack = list  # of (kind, mark, position): kind "d" for double quotes, "s" for single


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Split ``text[start:end]`` into sentences, as ``(start, end)`` offsets into ``text``.

    Spans hold no surrounding whitespace and, together, cover every non-whitespace character
    of the range in order.

    >>> split_sentences("Dr. J. K. Lee won.  Then? He left!\\nNew line")
    [(0, 18), (20, 25), (26, 34), (35, 43)]
    """
    end = len(text) if end is None else min(end, len(text))
    start = max(start, 0)
    spans: list[tuple[int, int]] = []
    for line in _LINE.finditer(text, start, end):
        line_start, line_end = line.span()
        ignored: set[int] = set()
        while True:
            cuts, unclosed = _scan_line(text, line_start, line_end, ignored)
            if not unclosed:
                break
            # A quote left open at the line's end was a stray mark or a quote that runs on
            # into the next paragraph: either way it must not hold the line together.
            ignored.update(unclosed)
        cursor = line_start
        for cut_end, next_start in cuts:
            spans.append((cursor, cut_end))
            cursor = next_start
        spans.append((cursor, line_end))
    return spans


def _scan_line(
    text: str, line_start: int, line_end: int, ignored: set[int]
) -> tuple[list[tuple[int, int]], list[int]]:
    """The sentence breaks in one line, and the positions of quotes it leaves open."""
    cuts: list[tuple[int, int]] = []
    stack: _Stack = []
    for m in _EVENT.finditer(text, line_start, line_end):
        enders = m.group(1)
        if enders is None:
            if m.start() not in ignored:
                _quote(text, m.start(), line_start, line_end, stack)
            continue
        closers_start, closers_end = m.span(2)
        for i in range(closers_start, closers_end):
            if text[i] not in ")]" and i not in ignored:
                _quote(text, i, line_start, line_end, stack)
        if stack:
            continue
        next_start = m.start(3)
        nxt = text[next_start]
        if not (nxt.isdigit() or nxt in _OPENERS or (nxt.isalpha() and not nxt.islower())):
            continue
        if (
            enders == "."
            and closers_start == closers_end
            and _is_abbreviation(text, m.start(), line_start)
        ):
            continue
        cuts.append((closers_end, next_start))
    return cuts, [pos for _, _, pos in stack]


def _is_abbreviation(text: str, dot: int, line_start: int) -> bool:
    """Whether the word before the period at ``dot`` makes the period not end a sentence."""
    i = dot
    while i > line_start:
        c = text[i - 1]
        if c.isspace() or c in _OPENERS:
            break
        i -= 1
    word = text[i:dot]
    if word in ABBREVIATIONS:
        return True
    if len(word) == 1:
        return word.isupper()  # an initial, as in "J. K. Rowling"
    return _DOTTED.fullmatch(word) is not None


def _quote(text: str, i: int, line_start: int, line_end: int, stack: _Stack) -> None:
    """Update the open-quotation ``stack`` for the quote mark at ``text[i]``."""
    mark = text[i]
    prev = text[i - 1] if i > line_start else " "
    nxt = text[i + 1] if i + 1 < line_end else " "
    if mark == "\u201c":
        stack.append(("d", mark, i))
    elif mark == "\u201d":
        if not _close(stack, "d") and (prev.isspace() or prev in _OPENERS) and not nxt.isspace():
            stack.append(("d", mark, i))  # a right quote used to open, as some feeds do
    elif mark == '"':
        if not _close(stack, "d", '"'):
            stack.append(("d", mark, i))
    elif mark == "\u2018":
        if not prev.isalnum():
            stack.append(("s", mark, i))
    elif prev.isalnum() and nxt.isalnum():
        pass  # an apostrophe: Korea’s, don't
    elif prev.isspace() or prev in _OPENERS:
        # At a word's start a straight ' opens a quote; a curly ’ there is an elision ('90s).
        if mark == "'" and not nxt.isspace():
            stack.append(("s", mark, i))
    else:
        _close(stack, "s")  # closes an open single quote, else a plural possessive (leaders’)


def _close(stack: _Stack, kind: str, mark: str | None = None) -> bool:
    """Pop the innermost open quote of ``kind`` (and of ``mark``, if given) and all inside it."""
    for depth in range(len(stack) - 1, -1, -1):
        k, m, _ = stack[depth]
        if k == kind and (mark is None or m == mark):
            del stack[depth:]
            return True
    return False
