"""How URL sources are fetched: one frozen dataclass, kept apart from the fetcher so that
``rag.settings`` can hold it without loading an HTTP client."""

from __future__ import annotations

from dataclasses import dataclass

AGENT = "newsrag"  # the name robots.txt rules address


@dataclass(frozen=True)
class FetchSettings:
    """How URL sources are fetched. The defaults are polite to real sites; tests against a
    local server set ``host_delay=0``.

    >>> FetchSettings().max_bytes
    5000000
    """

    user_agent: str = f"{AGENT}/0.1 (news question answering; fetches feeds and the articles they list)"
    connect_timeout: float = 10.0
    read_timeout: float = 20.0
    # A request that takes longer than this in all is cut off, however steadily it trickles.
    total_timeout: float = 60.0
    # News pages are well under 2 MB; anything over 5 MB is not an article.
    max_bytes: int = 5_000_000
    max_redirects: int = 5
    # Seconds between the starts of two requests to one host, and how many may run at once.
    host_delay: float = 1.0
    host_concurrency: int = 2
    # Requests in flight across all hosts.
    workers: int = 8
    # Entries read from one feed in one round (a feed lists its newest first).
    max_entries: int = 200


def parse_interval(value: str, name: str = "--every") -> float:
    """Seconds in an interval such as ``90s``, ``15m``, ``1.5h`` or ``300`` (seconds); BadSetting
    naming the option or variable ``name`` otherwise.

    >>> parse_interval("15m"), parse_interval("1.5h"), parse_interval("45")
    (900.0, 5400.0, 45.0)
    """
    from rag.errors import BadSetting

    text = value.strip().lower()
    scale = {"s": 1, "m": 60, "h": 3600}.get(text[-1:], None)
    number = text[:-1] if scale else text
    try:
        seconds = float(number) * (scale or 1)
    except ValueError:
        seconds = -1.0
    if not seconds > 0 or seconds != seconds or seconds == float("inf"):
        raise BadSetting(f"{name}={value!r} is not an interval: use e.g. 90s, 15m or 1h")
    return seconds
