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


def stored_day(iso: str | None) -> date | None:
    """The day of a stored ISO date (its first ten characters); None when unknown or unreadable.

    >>> stored_day("2022-06-08T10:00:00Z"), stored_day("June 8")
    (datetime.date(2022, 6, 8), None)
    """
    if not iso:
        return None
    try:
        return date.fromisoformat(iso[:10])
    except ValueError:
        return None


def day_number(iso: str | None) -> int:
    """Days since 1970-01-01 for an ISO date string; -1 when unknown or unreadable."""
    day = stored_day(iso)
    return (day - date(1970, 1, 1)).days if day else -1
