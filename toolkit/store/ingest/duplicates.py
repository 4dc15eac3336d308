"""Duplicate detection: within a file, within a batch, and against stored rows near the file's time span."""

from __future__ import annotations

import datetime as dt

import duckdb

from ...sqlutil import one_row, quote_ident
from . import labels
from .plan import shown

#: per kind: the SQL (over the staged row) naming a duplicate's key in its quarantine reason
_NAMED = {
    "predictions": "request_id",
    "artifacts": "artifact_hash",
    "deployments": "concat_ws(' ', event, version, component, scope, strftime(ts, '%Y-%m-%d %H:%M:%S'))",
    "outcomes": "request_id",
}
#: per kind: the columns (SQL over the staged row) that identify a duplicate, and its label
_DUPLICATE_KEYS: dict[str, tuple[tuple[str, ...], str]] = {
    # shadow scoring repeats a request_id once per shadow version
    "predictions": (("request_id", "component", "CASE WHEN component = 'shadow' THEN model_version END"), "request_id"),
    "artifacts": (("artifact_hash",), "artifact_hash"),
    "deployments": (("ts", "component", "scope", "event", "version"), "deployment event"),
    "outcomes": (("request_id",), "label for request_id"),
}
#: duplicates of a prediction are looked for among stored rows this close to the file's time span
DUPLICATE_SEARCH_MARGIN = dt.timedelta(days=1)


def _search_span(lo: dt.datetime, hi: dt.datetime) -> list[dt.datetime]:
    """``[lo - margin, hi + margin]``, clamped to the representable range (``ts`` may be infinite)."""
    try:
        start = lo - DUPLICATE_SEARCH_MARGIN
    except OverflowError:
        start = dt.datetime.min
    try:
        end = hi + DUPLICATE_SEARCH_MARGIN
    except OverflowError:
        end = dt.datetime.max
    return [start, end]


def _mark_duplicates(con: duckdb.DuckDBPyConnection, kind: str) -> None:
    """Set ``_reason`` on duplicate rows: within the file (first kept), then against the store.

    Both are set-based: an aggregate finds the keys that repeat, and a join
    marks every row but the first. For predictions the store is searched only
    among rows whose ``ts`` lies within :data:`DUPLICATE_SEARCH_MARGIN` of the
    file's time span (a re-delivered log carries the same timestamps), so
    ingesting a new day never rescans earlier days.
    """
    exprs, label = _DUPLICATE_KEYS[kind]
    keys = ", ".join(f"{e} AS _k{i}" for i, e in enumerate(exprs))
    match = " AND ".join(f"({e}) IS NOT DISTINCT FROM d._k{i}" for i, e in enumerate(exprs))
    named = shown(_NAMED[kind])
    con.execute(
        f"""UPDATE _vd_stage SET _reason = ? || {named} || ' within the file (first kept)'
            FROM (SELECT {keys}, min(_row) AS _keep FROM _vd_stage WHERE _reason IS NULL
                  GROUP BY ALL HAVING count(*) > 1) AS d
            WHERE _vd_stage._reason IS NULL AND {match} AND _vd_stage._row <> d._keep""",
        [f"duplicate {label} "],
    )
    if kind == "outcomes":  # stored labels and predictions: repeats, conflicts and unmatched ids
        labels.mark(con)
        return
    target = quote_ident(kind)
    stored = ", ".join(f"{e} AS _k{i}" for i, e in enumerate(exprs))
    span_sql, params = "", []
    if kind == "predictions":
        lo, hi = one_row(con, "SELECT min(ts), max(ts) FROM _vd_stage WHERE _reason IS NULL")
        if lo is None:
            return
        # numbered parameters: DuckDB numbers '?' in UPDATE ... FROM subqueries before the SET clause
        span_sql, params = " WHERE ts BETWEEN $2 AND $3", _search_span(lo, hi)
        probe = f"SELECT count(*) FROM (SELECT 1 FROM {target} WHERE ts BETWEEN $1 AND $2 LIMIT 1)"
        if not one_row(con, probe, params)[0]:
            return  # nothing stored in that span (the usual case for a new day)
    con.execute(
        f"""UPDATE _vd_stage SET _reason = $1 || {named} || ' already in the store'
            FROM (SELECT DISTINCT {stored} FROM {target}{span_sql}) AS d
            WHERE _vd_stage._reason IS NULL AND {match}""",
        [f"duplicate {label} "] + params,
    )


def _batch_repeats(con: duckdb.DuckDBPyConnection, ids: list[int]) -> set[int]:
    """Ingest ids of the batch whose rows share a key with another row of the batch or a stored row nearby.

    Conservative: any file with such a row is loaded again row by row, which
    decides exactly (first kept, duplicates of stored rows quarantined).
    """
    exprs, _ = _DUPLICATE_KEYS["predictions"]
    keys = ", ".join(f"{e} AS _k{i}" for i, e in enumerate(exprs))
    knames = ", ".join(f"_k{i}" for i in range(len(exprs)))
    match = " AND ".join(f"n._k{i} IS NOT DISTINCT FROM o._k{i}" for i in range(len(exprs)))
    new = f"SELECT ingest_id, ts, {keys} FROM predictions WHERE ingest_id BETWEEN $1 AND $2"
    bounds = [min(ids), max(ids)]
    out: set[int] = set()
    # first a cheap test on one 64-bit hash of the key (equal keys, equal hashes; a collision only
    # costs the exact search below), grouping integers instead of text
    key_hash = f"hash({', '.join(exprs)})"
    if one_row(
        con,
        f"SELECT EXISTS (SELECT 1 FROM predictions WHERE ingest_id BETWEEN $1 AND $2 "
        f"GROUP BY {key_hash} HAVING count(*) > 1)", bounds
    )[0]:
        out |= {r[0] for r in con.execute(
            f"SELECT DISTINCT n.ingest_id FROM ({new}) AS n "
            f"JOIN (SELECT {knames} FROM ({new}) GROUP BY {knames} HAVING count(*) > 1) AS o ON {match}",
            bounds,
        ).fetchall()}
    lo, hi = one_row(
        con,
        "SELECT min(ts), max(ts) FROM predictions WHERE ingest_id BETWEEN $1 AND $2", bounds
    )
    if lo is None:
        return out
    span = bounds + _search_span(lo, hi)
    stored = "FROM predictions WHERE ts BETWEEN $3 AND $4 AND ingest_id NOT BETWEEN $1 AND $2"
    if one_row(con, f"SELECT count(*) FROM (SELECT 1 {stored} LIMIT 1)", span)[0]:
        out |= {r[0] for r in con.execute(
            f"SELECT DISTINCT n.ingest_id FROM ({new}) AS n JOIN (SELECT DISTINCT {keys} {stored}) AS o ON {match}",
            span,
        ).fetchall()}
    return out


def _new_rows_repeat_a_key(con: duckdb.DuckDBPyConnection, ingest_id: int) -> bool:
    """Whether rows of this ingest repeat a key among themselves or with stored rows nearby."""
    exprs, _ = _DUPLICATE_KEYS["predictions"]
    keys = ", ".join(f"{e} AS _k{i}" for i, e in enumerate(exprs))
    repeats = one_row(
        con,
        f"SELECT EXISTS (SELECT 1 FROM (SELECT {keys} FROM predictions WHERE ingest_id = $1) "
        f"GROUP BY {', '.join(f'_k{i}' for i in range(len(exprs)))} HAVING count(*) > 1)",
        [ingest_id],
    )[0]
    if repeats:
        return True
    lo, hi = one_row(con, "SELECT min(ts), max(ts) FROM predictions WHERE ingest_id = ?", [ingest_id])
    if lo is None:
        return False
    span = [ingest_id, *_search_span(lo, hi)]
    if not one_row(
        con,
        "SELECT count(*) FROM (SELECT 1 FROM predictions WHERE ts BETWEEN $2 AND $3 AND ingest_id <> $1 LIMIT 1)", span
    )[0]:
        return False
    match = " AND ".join(f"n._k{i} IS NOT DISTINCT FROM o._k{i}" for i in range(len(exprs)))
    return bool(one_row(
        con,
        f"SELECT EXISTS (SELECT 1 FROM (SELECT DISTINCT {keys} FROM predictions WHERE ingest_id = $1) AS n "
        f"JOIN (SELECT DISTINCT {keys} FROM predictions WHERE ts BETWEEN $2 AND $3 AND ingest_id <> $1) AS o "
        f"ON {match})",
        span,
    )[0])
