"""The excluded rows of an attached source that fall in an analysis's windows.

An ingested store quarantines a bad row; an attached one leaves it in the
files and the ``predictions`` view skips it. So that no bad row leaves an
analysis silently, the audit and the attribution count the excluded rows of
their own windows, by reason, and say so in their diagnostics.

Only the files that can hold a row of the windows are read: those whose
valid rows' time range (``attached_files``, kept by ``vdrift validate``)
meets a window, and those without a valid row (their rows have no time
vdrift trusts, so they may belong to any window). A row whose time cannot
be read is counted as ``untimed``: it belongs to no window, and it is
excluded from every analysis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from ...timeutil import Window
from .literals import sql_literal
from .state import DUPLICATES_TABLE, FILES_TABLE, MACRO, info, stale_files


@dataclass(frozen=True)
class Excluded:
    """Excluded rows per window (in window order), rows without a readable time, and the reasons."""

    per_window: tuple[int, ...]
    untimed: int
    reasons: tuple[tuple[str, int], ...]      # (reason, rows in the windows or untimed), most first

    @property
    def total(self) -> int:
        """Rows excluded from the analysis: in its windows or without a readable time."""
        return sum(self.per_window) + self.untimed

    def as_dict(self, names: Sequence[str]) -> dict:
        """JSON-ready, with the windows named."""
        return {**dict(zip(names, self.per_window, strict=True)), "untimed": self.untimed,
                "reasons": dict(self.reasons)}


def excluded_in(con: duckdb.DuckDBPyConnection, windows: Sequence[Window]) -> Excluded | None:
    """The attached source's excluded rows in ``windows``; None when the store's predictions are not attached.

    Windows may overlap (a weekly report's); a row in two windows counts in each.
    """
    if info(con) is None or stale_files(con):
        return None   # not attached, or the views are stale (status and validate say so)
    meets = " OR ".join("(ts_min < ? AND ts_max >= ?)" for _ in windows) or "FALSE"
    params: list = [x for w in windows for x in (w.end, w.start)]
    files = [r[0] for r in con.execute(
        f"SELECT path FROM {FILES_TABLE} WHERE ts_min IS NULL OR {meets} ORDER BY path", params).fetchall()]
    if not files:
        return Excluded(tuple(0 for _ in windows), 0, ())
    counts = ", ".join(f"count(*) FILTER (WHERE ts >= ? AND ts < ?) AS w{i}" for i in range(len(windows)))
    wparams: list = [x for w in windows for x in (w.start, w.end)]
    rows = con.execute(
        f"""SELECT _reason, {counts}, count(*) FILTER (WHERE ts IS NULL) AS untimed
        FROM (SELECT r.ts, coalesce(r._reason, d.reason) AS _reason FROM {MACRO}({sql_literal(files)}) AS r
              LEFT JOIN {DUPLICATES_TABLE} AS d ON d._file = r._file AND d._row = r._row)
        WHERE _reason IS NOT NULL GROUP BY 1""", wparams).fetchall()
    per = tuple(sum(int(r[1 + i]) for r in rows) for i in range(len(windows)))
    untimed = sum(int(r[-1]) for r in rows)
    reasons = sorted(((str(r[0]), sum(int(x) for x in r[1:])) for r in rows), key=lambda x: (-x[1], x[0]))
    return Excluded(per, untimed, tuple((k, n) for k, n in reasons if n))


def sentence(ex: Excluded, what: str) -> str:
    """The one line an analysis (``what``: "the audit", "the attribution") prints about its excluded rows."""
    top = "; ".join(f"{n:,} {reason}" for reason, n in ex.reasons[:3])
    more = f"; {len(ex.reasons) - 3} more reasons" if len(ex.reasons) > 3 else ""
    untimed = f" ({ex.untimed:,} of them have no readable time)" if ex.untimed else ""
    windows = "window" if len(ex.per_window) == 1 else "windows"
    return (f"{ex.total:,} rows of the attached predictions in the {windows} are not valid and are excluded from "
            f"{what}{untimed}: {top}{more}. `vdrift validate` lists them with examples")
