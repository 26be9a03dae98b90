"""Parsing of user-supplied dates, with errors that name the field."""

from __future__ import annotations

from datetime import date

from rag.errors import BadDate


def parse_date(value: str | date | None, field: str) -> date | None:
    """``YYYY-MM-DD`` (or a date) to a date; None stays None.

    >>> parse_date("2023-11-09", "since")
    datetime.date(2023, 11, 9)
    """
    if value is None or isinstance(value, date):
        return value
    text = value.strip()
    if not text:
        return None
    try:
        return date.fromisoformat(text[:10]) if len(text) >= 10 and text[4] == "-" else date.fromisoformat(text)
    except ValueError:
        raise BadDate(f"{field}: {value!r} is not a date: use YYYY-MM-DD, e.g. 2023-11-09") from None


def check_range(since: date | None, until: date | None) -> None:
    """Reject a backwards range, naming both ends."""
    if since and until and since > until:
        raise BadDate(f"since ({since}) is after until ({until}): swap them or widen the range")


def day_number(iso: str | None) -> int:
    """Days since 1970-01-01 for an ISO date string; -1 when unknown or unreadable."""
    if not iso:
        return -1
    try:
        return (date.fromisoformat(iso[:10]) - date(1970, 1, 1)).days
    except ValueError:
        return -1
