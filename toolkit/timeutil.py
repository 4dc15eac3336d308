"""Parsing of times and half-open windows given by users (CLI, API, notebooks).

Every time is returned as a naive ``datetime`` holding UTC wall-clock time,
the representation the store uses.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from .errors import InputError

_UTC = dt.UTC

#: The one plausible-time rule: ``[PLAUSIBLE_START, PLAUSIBLE_END)`` in UTC. Ingest quarantines a
#: time outside it ("ts outside the plausible range ..."), and windows given to analyses must lie
#: inside it. Wider than any log, narrow enough that every analysis can add margins, buckets and
#: deadlines without overflowing Python's, DuckDB's or polars' calendars (year 1 and 9999 did).
PLAUSIBLE_START = dt.datetime(1900, 1, 1)
PLAUSIBLE_END = dt.datetime(2200, 1, 1)
PLAUSIBLE_TEXT = "1900-01-01..2200-01-01 UTC"


def check_plausible(value: dt.datetime, *, what: str = "time") -> dt.datetime:
    """Return ``value`` (naive UTC) if it lies in the plausible range, else raise :class:`InputError`."""
    if not PLAUSIBLE_START <= value <= PLAUSIBLE_END:
        raise InputError(
            f"{what} {value.isoformat()} is outside the range vdrift works in ({PLAUSIBLE_TEXT}); "
            "give a time inside it"
        )
    return value


def parse_time(value: str | dt.datetime | dt.date, *, what: str = "time") -> dt.datetime:
    """Parse an ISO 8601 date or date-time into naive UTC.

    A value with an offset (``2026-11-02T10:00+01:00`` or ``...Z``) is
    converted to UTC; a value without one is taken to be UTC already.
    """
    if isinstance(value, dt.datetime):
        parsed = value
    elif isinstance(value, dt.date):
        parsed = dt.datetime(value.year, value.month, value.day)
    else:
        text = str(value).strip()
        try:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            raise InputError(
                f"cannot read {what} {text!r}: use ISO 8601, e.g. 2026-11-02 or "
                "2026-11-02T13:00 (UTC unless an offset such as +01:00 is given)"
            ) from None
    if parsed.tzinfo is not None:
        try:
            parsed = parsed.astimezone(_UTC).replace(tzinfo=None)
        except OverflowError:
            raise InputError(f"{what} {value!s} is outside the range vdrift works in ({PLAUSIBLE_TEXT})") from None
    return check_plausible(parsed, what=what)


@dataclass(frozen=True)
class Window:
    """A half-open time window ``[start, end)`` in naive UTC."""

    start: dt.datetime
    end: dt.datetime

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise InputError(
                f"empty or inverted window {self.start.isoformat()}..{self.end.isoformat()}: "
                "the end must be after the start (windows are half-open [FROM, TO))"
            )

    def __str__(self) -> str:
        return f"{self.start.isoformat()}..{self.end.isoformat()}"

    @property
    def days(self) -> float:
        """Length of the window in days."""
        return (self.end - self.start).total_seconds() / 86400.0


def parse_window(value: str | Window | tuple, *, what: str = "window") -> Window:
    """Parse ``FROM..TO`` (ISO 8601 each side) into a :class:`Window`."""
    if isinstance(value, Window):
        return value
    if isinstance(value, tuple):
        if len(value) != 2:
            raise InputError(f"{what} must be a pair (start, end), got {value!r}")
        return Window(parse_time(value[0], what=f"{what} start"), parse_time(value[1], what=f"{what} end"))
    text = str(value)
    if ".." not in text:
        raise InputError(
            f"cannot read {what} {text!r}: write it as FROM..TO, e.g. 2026-11-02..2026-11-09"
        )
    start, end = text.split("..", 1)
    return Window(parse_time(start, what=f"{what} start"), parse_time(end, what=f"{what} end"))


def last_full_week(today: dt.date | None = None) -> Window:
    """The last full ISO week (Monday 00:00 to Monday 00:00 UTC) before ``today``."""
    today = today or dt.datetime.now(_UTC).date()
    this_monday = today - dt.timedelta(days=today.weekday())
    start = this_monday - dt.timedelta(days=7)
    return Window(dt.datetime.combine(start, dt.time()), dt.datetime.combine(this_monday, dt.time()))
