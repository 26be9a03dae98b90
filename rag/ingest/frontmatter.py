"""YAML front matter of text and Markdown files, read as untrusted input.

Metadata needs only a few short keys, so the YAML is held to that: at most 64 KiB, nested at most
20 levels, and no aliases (``*name``): nine levels of aliases in 429 bytes expand into gigabytes.
Front matter outside those bounds, or not valid YAML, is ignored with a warning, and the body is
still read. Dates stay strings, for the readers' own date parsing to judge.
"""

from __future__ import annotations

import re
from typing import Any

import yaml

MAX_FRONT_MATTER_BYTES = 65_536
MAX_DEPTH = 20

_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)^(?:---|\.\.\.)[ \t]*(?:\r?\n|\Z)", re.DOTALL | re.MULTILINE)
_IGNORED = "its fields were ignored"


class _Refused(yaml.YAMLError):
    """YAML that is valid but outside what front matter may hold."""


class _FrontMatterLoader(yaml.SafeLoader):
    """SafeLoader without aliases, with a depth limit, and with timestamps left as strings."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            alias = self.peek_event().anchor
            raise _Refused(f"front matter uses the YAML alias *{alias}: {_IGNORED}; write the value out")
        if self._depth >= MAX_DEPTH:
            raise _Refused(f"front matter is nested more than {MAX_DEPTH} levels deep: {_IGNORED}")
        self._depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


# A timestamp such as 2023-02-30 would fail the whole front matter with a ValueError; as a string
# it is only one unreadable date.
_FrontMatterLoader.add_constructor("tag:yaml.org,2002:timestamp", yaml.SafeLoader.construct_yaml_str)


def split_front_matter(text: str) -> tuple[dict[str, Any], str, str | None]:
    """``(fields, body, warning)``: the front matter's fields, the text after it, and why the
    fields were ignored (None when they were not).

    >>> split_front_matter("---\\ntitle: Talks end\\ndate: 2023-11-09\\n---\\nThe talks ended.")
    ({'title': 'Talks end', 'date': '2023-11-09'}, 'The talks ended.', None)
    >>> split_front_matter("---\\na: &x [1]\\nb: *x\\n---\\nBody")[2]
    'front matter uses the YAML alias *x: its fields were ignored; write the value out'
    """
    m = _FRONT_MATTER.match(text)
    if m is None:
        return {}, text, None
    body, source = text[m.end():], m.group(1)
    size = len(source.encode("utf-8", "replace"))
    if size > MAX_FRONT_MATTER_BYTES:
        return {}, body, (
            f"front matter is over the {MAX_FRONT_MATTER_BYTES // 1024} KiB limit ({size:,} bytes): "
            f"{_IGNORED}; keep only the article's metadata there"
        )
    try:
        loaded = yaml.load(source, Loader=_FrontMatterLoader)  # a SafeLoader, so safe
    except _Refused as e:
        return {}, body, str(e)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" (line {mark.line + 2})" if mark is not None else ""
        return {}, body, f"front matter is not valid YAML{where}: {_IGNORED}"
    except ValueError:  # Python refuses to read an integer of over 4,300 digits
        return {}, body, f"front matter holds a number too long to read: {_IGNORED}"
    if loaded is not None and not isinstance(loaded, dict):
        return {}, body, f"front matter is not a mapping of keys: {_IGNORED}"
    return loaded or {}, body, None
