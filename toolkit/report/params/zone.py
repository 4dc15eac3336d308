"""The display time zone of a report: :func:`check_timezone` and :class:`DisplayZone`."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from dataclasses import dataclass
from typing import Any

from ...errors import InputError
from ...timeutil import Window, parse_time


def check_timezone(name: Any) -> str:
    """Return ``name`` if it is an IANA time zone (``UTC``, ``Europe/Berlin``), else raise :class:`InputError`."""
    text = "" if name is None else str(name).strip()
    try:
        if not text:
            raise ValueError("empty")
        zoneinfo.ZoneInfo(text)
        import polars as pl  # the charts convert with polars' own zone database: it must know the name too

        pl.Series([dt.datetime(2026, 1, 1)]).dt.replace_time_zone("UTC").dt.convert_time_zone(text)
    except Exception:  # ZoneInfoNotFoundError, ValueError (absolute or '..' keys), polars' ComputeError
        known = {z.lower(): z for z in zoneinfo.available_timezones()}
        import difflib

        close = [known[k] for k in difflib.get_close_matches(text.lower(), list(known), n=3, cutoff=0.6)]
        hint = f" (did you mean {' or '.join(close)}?)" if close else ""
        raise InputError(
            f"unknown time zone {text!r} for parameter timezone{hint}: use an IANA name such as UTC, "
            "Europe/Berlin or America/New_York"
        ) from None
    return text


_TIME_IN_TEXT = re.compile(r"\b(\d{4}-\d{2}-\d{2})[ T](\d{2}:\d{2})(?::\d{2}(?:\.\d+)?)?(?: UTC\b)?")
_SPAN_IN_TEXT = re.compile(r"\b(\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?)\.\."
                           r"(\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?)?)\b")


@dataclass(frozen=True)
class DisplayZone:
    """The time zone a report displays times in; the store and the analyses stay in naive UTC.

    With ``UTC`` every method returns its input unchanged (the report reads as
    before the parameter existed). Otherwise times are shown as local wall-clock
    time and labelled: tables and sentences with the zone's abbreviation
    (``CET``), axis titles and headers with the IANA name.
    """

    name: str = "UTC"

    def __post_init__(self) -> None:
        check_timezone(self.name)

    @property
    def is_utc(self) -> bool:
        """True for ``UTC``: nothing is converted."""
        return self.name == "UTC"

    @property
    def info(self) -> zoneinfo.ZoneInfo:
        """The :class:`zoneinfo.ZoneInfo`."""
        return zoneinfo.ZoneInfo(self.name)

    @property
    def label(self) -> str:
        """What axis titles and headers call the zone: ``UTC`` or the IANA name."""
        return self.name

    def local(self, ts: dt.datetime) -> dt.datetime:
        """Naive UTC -> naive local wall-clock time."""
        if self.is_utc:
            return ts
        return ts.replace(tzinfo=dt.UTC).astimezone(self.info).replace(tzinfo=None)

    def aware(self, ts: dt.datetime) -> dt.datetime:
        """Naive UTC -> aware local time."""
        return ts.replace(tzinfo=dt.UTC).astimezone(self.info)

    def to_utc(self, wall: dt.datetime) -> dt.datetime:
        """Naive local wall-clock time -> naive UTC (the earlier instant of a repeated hour)."""
        if self.is_utc:
            return wall
        return wall.replace(tzinfo=self.info).astimezone(dt.UTC).replace(tzinfo=None)

    def midnight(self, day: dt.date) -> dt.datetime:
        """Local midnight of ``day``, as naive UTC."""
        return self.to_utc(dt.datetime.combine(day, dt.time()))

    def abbrev(self, ts: dt.datetime) -> str:
        """The zone's abbreviation at the (naive UTC) instant ``ts``: ``CET``, ``CEST``, ``UTC``."""
        return "UTC" if self.is_utc else (self.aware(ts).tzname() or self.name)

    def offsets(self, start: dt.datetime, end: dt.datetime) -> str:
        """The zone's UTC offsets over ``[start, end)``, e.g. ``UTC+01:00`` or ``UTC+02:00/+01:00``."""
        if self.is_utc:
            return "UTC+00:00"
        seen: list[str] = []
        t = start
        while True:
            off = self.aware(min(t, end)).strftime("%z")
            text = f"{off[:3]}:{off[3:]}"
            if text not in seen:
                seen.append(text)
            if t >= end:
                break
            t += dt.timedelta(hours=6)
        return "UTC" + "/".join(seen)

    def fmt(self, ts: dt.datetime | None, pattern: str = "%Y-%m-%d %H:%M") -> str:
        """A (naive UTC) time as local text; empty for ``None``."""
        return "" if ts is None else self.local(ts).strftime(pattern)

    def stamp(self, ts: dt.datetime) -> str:
        """``2026-11-09 11:00 CET`` (``... UTC`` in UTC)."""
        return f"{self.fmt(ts)} {self.abbrev(ts)}"

    def window(self, w: Window) -> str:
        """A window as text: ISO UTC as before in UTC, else :meth:`span` with the zone's abbreviation."""
        if self.is_utc:
            return str(w)
        return self.span(w, label=True)

    def span(self, w: Window, *, label: bool = False) -> str:
        """A short window text in the zone: dates only when both ends are local midnights.

        ``2026-11-09..2026-11-16``, ``2026-11-09 01:00..2026-11-16 01:00``; with
        ``label`` the abbreviation follows (one for both ends, or one each when
        a DST change lies between them: ``... CEST..... CET``).
        """
        a, b = self.local(w.start), self.local(w.end)
        if a.time() == dt.time() and b.time() == dt.time():
            text_a, text_b = f"{a:%Y-%m-%d}", f"{b:%Y-%m-%d}"
        else:
            text_a, text_b = f"{a:%Y-%m-%d %H:%M}", f"{b:%Y-%m-%d %H:%M}"
        if not label:
            return f"{text_a}..{text_b}"
        abbr_a, abbr_b = self.abbrev(w.start), self.abbrev(w.end)
        if abbr_a == abbr_b:
            return f"{text_a}..{text_b} {abbr_a}"
        return f"{text_a} {abbr_a}..{text_b} {abbr_b}"

    def text(self, value: str) -> str:
        """Rewrite the UTC times of an analysis' sentence in the zone, each labelled with its abbreviation.

        Times (``2026-11-10 15:00``, ``... UTC``) and windows (``A..B``) are
        rewritten; in UTC the text is returned unchanged.
        """
        if self.is_utc or not value:
            return value

        def span(m: re.Match) -> str:
            try:
                w = Window(parse_time(m.group(1)), parse_time(m.group(2)))
            except InputError:
                return m.group(0)
            return self.span(w, label=True)

        def one(m: re.Match) -> str:
            try:
                ts = dt.datetime.fromisoformat(f"{m.group(1)}T{m.group(2)}")
            except ValueError:
                return m.group(0)
            return self.stamp(ts)

        out = []
        pos = 0
        for m in _SPAN_IN_TEXT.finditer(value):  # windows first, so their ends are not rewritten one by one
            out.append(_TIME_IN_TEXT.sub(one, value[pos:m.start()]))
            out.append(span(m))
            pos = m.end()
        out.append(_TIME_IN_TEXT.sub(one, value[pos:]))
        return "".join(out)

    def frame(self, frame: Any, *columns: str) -> Any:
        """A polars frame with the naive UTC ``columns`` as naive local wall-clock times (unchanged in UTC)."""
        if self.is_utc:
            return frame
        import polars as pl

        return frame.with_columns(
            pl.col(c).dt.replace_time_zone("UTC").dt.convert_time_zone(self.name).dt.replace_time_zone(None)
            for c in columns if c in frame.columns
        )

    def axis(self, what: str = "time") -> str:
        """An axis title: ``time (UTC)``, ``time (Europe/Berlin)``."""
        return f"{what} ({self.label})"
