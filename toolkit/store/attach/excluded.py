"""The excluded rows of an attached source that fall in an analysis's windows.

An ingested store quarantines a bad row; an attached one leaves it in the
files and the ``predictions`` view skips it. So that no bad row leaves an
analysis silently, the audit and the attribution count the excluded rows of
their own windows, by reason, and say so in their diagnostics.

Only the files that can hold such a row are read: those whose rows with a
readable time (valid or not; ``attached_files``, kept by ``vdrift
validate``) meet a window, and those holding rows without a readable time.
A row without one belongs to no window and is excluded from every analysis,
so every analysis counts it (``untimed``). A row in two overlapping windows
counts once in the total.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import duckdb

from ...sqlutil import table_columns
from ...timeutil import Window

if TYPE_CHECKING:  # pragma: no cover
    from ...engine.run import Runner
from .state import DUPLICATES_TABLE, FILES_TABLE, MACRO, info, stale_files


@dataclass(frozen=True)
class Excluded:
    """Excluded rows per window (in window order), rows without a readable time, and the reasons."""

    per_window: tuple[int, ...]
    untimed: int
    reasons: tuple[tuple[str, int], ...]      # (reason, rows in some window or untimed), most first
    total: int                                # rows excluded from the analysis, each once

    def as_dict(self, names: Sequence[str]) -> dict:
        """JSON-ready, with the windows named."""
        return {**dict(zip(names, self.per_window, strict=True)), "untimed": self.untimed, "total": self.total,
                "reasons": dict(self.reasons)}


def excluded_in(con: duckdb.DuckDBPyConnection, windows: Sequence[Window],
                run: Runner | None = None) -> Excluded | None:
    """The attached source's excluded rows in ``windows``; None when the store's predictions are not attached.

    With a Spark runner that reads the files in place (``run.checked``, the
    session's view of every row with its reason) Spark counts them; otherwise
    DuckDB reads the files that can hold one.
    """
    if info(con) is None or stale_files(con) or not windows:
        return None   # not attached, the views are stale (status and validate say so), or nothing to count
    checked = getattr(run, "checked", None)
    if checked is None:
        files = _files(con, windows)
        if not files:
            return Excluded(tuple(0 for _ in windows), 0, (), 0)
        relation = (f"(SELECT r.ts, coalesce(r._reason, d.reason) AS _reason FROM {MACRO}(?) AS r "
                    f"LEFT JOIN {DUPLICATES_TABLE} AS d ON d._file = r._file AND d._row = r._row)")
        rparams: list = [files]
    else:  # the runner's files: those that can hold a row of its span, or an untimed row
        relation, rparams = checked, []
    inside = ["(ts >= ? AND ts < ?)" for _ in windows]
    wparams: list = [x for w in windows for x in (w.start, w.end)]
    counts = ", ".join(f"count(*) FILTER (WHERE {c})" for c in inside)
    anywhere = " OR ".join(inside)
    sql = (f"""SELECT _reason, {counts}, count(*) FILTER (WHERE ts IS NULL),
                   count(*) FILTER (WHERE ts IS NULL OR {anywhere})
        FROM {relation} AS r WHERE _reason IS NOT NULL GROUP BY 1""")
    params = wparams + wparams + rparams
    rows = con.execute(sql, params).fetchall() if run is None or checked is None else run.frame(sql, params).rows()
    k = len(windows)
    per = tuple(sum(int(r[1 + i]) for r in rows) for i in range(k))
    untimed = sum(int(r[1 + k]) for r in rows)
    reasons = sorted(((str(r[0]), int(r[2 + k])) for r in rows if r[2 + k]), key=lambda x: (-x[1], x[0]))
    return Excluded(per, untimed, tuple(reasons), sum(n for _, n in reasons))


def _files(con: duckdb.DuckDBPyConnection, windows: Sequence[Window]) -> list[str]:
    """The validated files that can hold an excluded row of ``windows``.

    All of them for a store validated before the files table kept every row's time range.
    """
    if "any_ts_min" not in table_columns(con, FILES_TABLE):
        return [r[0] for r in con.execute(f"SELECT path FROM {FILES_TABLE} ORDER BY path").fetchall()]
    meets = " OR ".join("(any_ts_min < ? AND any_ts_max >= ?)" for _ in windows)
    params: list = [x for w in windows for x in (w.end, w.start)]
    return [r[0] for r in con.execute(
        f"SELECT path FROM {FILES_TABLE} WHERE untimed > 0 OR {meets} ORDER BY path", params).fetchall()]


def sentence(ex: Excluded, what: str) -> str:
    """The one line an analysis (``what``: "the audit", "the attribution") prints about its excluded rows."""
    top = "; ".join(f"{n:,} {reason}" for reason, n in ex.reasons[:3])
    more = f"; {len(ex.reasons) - 3} more reasons" if len(ex.reasons) > 3 else ""
    untimed = f" ({ex.untimed:,} of them have no readable time)" if ex.untimed else ""
    windows = "window" if len(ex.per_window) == 1 else "windows"
    return (f"{ex.total:,} rows of the attached predictions in the {windows} or without a readable time are not "
            f"valid and are excluded from {what}{untimed}: {top}{more}. `vdrift validate` lists them with examples"
            if ex.untimed else
            f"{ex.total:,} rows of the attached predictions in the {windows} are not valid and are excluded from "
            f"{what}: {top}{more}. `vdrift validate` lists them with examples")
