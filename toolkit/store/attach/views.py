"""Validation as a query: the table macro that types and checks every row, the duplicates, the views."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import duckdb
import polars as pl

from ...engine.keys import REQUEST_KEY, Dialect, request_key_sql, row_json_sql
from ...errors import StoreError
from ...sqlutil import quote_ident
from ...timeutil import PLAUSIBLE_END, PLAUSIBLE_START
from ..ingest.duplicates import _DUPLICATE_KEYS
from ..ingest.load import _reason_sql
from ..ingest.plan import _Plan, _plan_columns, spark_reads, store_columns
from ..mapping import Mapping
from ..schema import CONTRACT, OLD_VIEW
from .dataset import FILE_COLUMN, describe_columns, expand_dataset, hive_keys, reader_sql
from .literals import inline_params, sql_literal
from .state import CHECKED_VIEW, DUPLICATES_TABLE, FILES_TABLE, MACRO, META_KEY, now_text

if TYPE_CHECKING:  # pragma: no cover
    from ..store import Store


def plan_attached(con: duckdb.DuckDBPyConnection, record: dict, mapping: Mapping, files: list[str], *,
                  dialect: Dialect = "duckdb", like: _Plan | None = None) -> tuple[_Plan, list[str]]:
    """The column plan of the attached files (typing and row rules), and the partition keys left out.

    The one plan of an attached source: the store's views use it in DuckDB's
    dialect, the Spark engine (``toolkit.engine.lake``) in Spark's. ``like``
    (a plan of the same files) makes the same choices: its covariates, typed
    as it types them, so no column is typed again.
    """
    existing = None
    if like is not None:
        existing = {**store_columns(con), **{n.lower(): (n, t) for n, t in like.new_covariates}}
        covs = tuple(n for n, _ in like.exprs if n not in CONTRACT["predictions"])
        mapping = dataclasses.replace(mapping, covariates=covs)
    hive = record["partitioning"] == "hive"
    # DuckDB's plan checks that every file has the same columns; a plan in Spark's dialect comes after that
    src_types = describe_columns(con, files if dialect == "duckdb" else files[:1], hive)
    unreadable = [f"column {n} is {t.lower()}" for n, t in src_types.items() if not spark_reads(t.upper())]
    clash: list[str] = []
    if dialect == "spark":  # DuckDB renames a column whose name repeats another's but for case (Amount_1)
        names = [r[0] for r in con.execute("SELECT name FROM parquet_schema(?) WHERE num_children IS NULL",
                                           [files[0]]).fetchall()]
        clash = sorted({n for n in names if [m.lower() for m in names].count(n.lower()) > 1})
    ignored: list[str] = []
    if hive:
        keys = hive_keys(files)
        contract_sources = {mapping.source_for(c).lower() for c in CONTRACT["predictions"]}
        kept = set(mapping.covariates or ())
        for key in keys:  # a partition key feeds a contract column or a declared covariate, else it is layout
            if key.lower() not in contract_sources and key not in kept and key in src_types:
                del src_types[key]
                ignored.append(f"{key} (partition key)")
    plan = _plan_columns(con, "predictions", Path(record["pattern"]), src_types, mapping,
                         reader_sql("?", hive), [files], dialect=dialect, existing=existing)
    if dialect == "spark":  # Spark reads every column of a file (its schema, the examples' JSON)
        plan.unported.extend(unreadable)
        if clash:  # Spark's names are case-insensitive
            plan.unported.append(f"columns {', '.join(clash)} differ only in case")
        hidden = [f for f in files if Path(f).name.startswith(("_", "."))]
        if hidden:  # Spark's reader skips them as hidden files
            plan.unported.append(f"file name {Path(hidden[0]).name} starts with _ or .")
    return plan, ignored


def checked_sql(plan: _Plan, source: str, *, raw: bool) -> str:
    """Every row of ``source`` typed by ``plan``: ``_file``, ``_row``, the columns, ``_reason`` (and ``_raw``).

    ``source`` has the files' columns plus :data:`FILE_COLUMN` (the file's
    path) and ``file_row_number`` (0-based), as DuckDB's reader gives them.
    The text binds ``plan.check_params + plan.expr_params``, in that order.
    """
    names = [n for n, _ in plan.exprs]
    select_sql = ",\n    ".join(f"{e} AS {quote_ident(n)}" for n, e in plan.exprs)
    raw_sql = "".join(f",\n    {e} AS {quote_ident(n)}" for n, e in plan.raw_refs)
    whole = f",\n    {row_json_sql('src', plan.dialect)} AS _raw" if raw else ""
    return (
        f"SELECT _file, _row, {', '.join(quote_ident(n) for n in names)}, {_reason_sql(plan)} AS _reason"
        f"{', _raw' if raw else ''}\n"
        f"FROM (SELECT src.{quote_ident(FILE_COLUMN)} AS _file, src.file_row_number + 1 AS _row,\n    {select_sql}"
        f"{raw_sql}{whole}\n  FROM {source} AS src) AS typed"
    )


def output_columns(plan: _Plan, attach_id: int, dialect: Dialect = "duckdb") -> str:
    """The select list of ``predictions`` over the checked rows: the table's columns, in its order.

    The request key is computed on read (a stored table holds it from the ingest).
    """
    names = [n for n, _ in plan.exprs]
    contract = list(CONTRACT["predictions"])
    covs = [n for n in names if n not in contract]
    key = f"{request_key_sql(quote_ident('request_id'), dialect)} AS {quote_ident(REQUEST_KEY)}"
    return ", ".join([quote_ident(n) for n in contract] + [f"CAST({int(attach_id)} AS BIGINT) AS ingest_id", key]
                     + [quote_ident(n) for n in covs])


def duplicates_sql(relation: str) -> tuple[str, list]:
    """The rows of ``relation`` (typed rows with ``_reason``) whose key repeats an earlier valid row, and why.

    The first row of a key (file order, then row order) is kept; the text and
    its two values run on either engine.
    """
    exprs, label = _DUPLICATE_KEYS["predictions"]
    return (f"""SELECT _file, _row, CASE WHEN _first = _file THEN ? ELSE ? END AS reason
        FROM (SELECT _file, _row, row_number() OVER w AS _n, first_value(_file) OVER w AS _first
              FROM {relation} AS r WHERE _reason IS NULL
              WINDOW w AS (PARTITION BY {", ".join(exprs)} ORDER BY _file, _row)) AS k
        WHERE _n > 1""", [f"duplicate {label} within the file (first kept)",
                          f"duplicate {label} in an earlier file of the dataset (first kept)"])


def file_stats_sql(relation: str, duplicates: str) -> str:
    """Per file of ``relation``: the time ranges of its valid rows and of all rows with a time, and counts.

    The counts: rows without a readable time, and valid rows (what analyses
    read; ``Store.counts`` sums them).
    """
    # a time outside the plausible range meets no window (and a year past 9999 is no Python datetime)
    seen = f"r.ts >= {sql_literal(PLAUSIBLE_START)} AND r.ts < {sql_literal(PLAUSIBLE_END)}"
    return f"""SELECT r._file, min(r.ts) FILTER (WHERE ok) AS ts_min, max(r.ts) FILTER (WHERE ok) AS ts_max,
                   min(r.ts) FILTER (WHERE {seen}) AS any_ts_min, max(r.ts) FILTER (WHERE {seen}) AS any_ts_max,
                   count(*) FILTER (WHERE r.ts IS NULL) AS untimed, count(*) FILTER (WHERE ok) AS valid,
                   count(*) AS n
        FROM (SELECT r.*, r._reason IS NULL AND d._row IS NULL AS ok FROM {relation} AS r
              LEFT JOIN {duplicates} AS d ON d._file = r._file AND d._row = r._row) AS r
        GROUP BY r._file"""


class Scan(Protocol):
    """Validation's two scans of every row on another engine (``toolkit.engine.lake.SparkScan``)."""

    def typed(self, record: dict, mapping: Mapping, files: list[str], plan: _Plan) -> str | None:
        """Register every row of ``files`` typed by ``plan``; the relation's name, or None to scan in DuckDB."""
        ...

    def duplicates(self, sql: str, params: list) -> pl.DataFrame:
        """The rows of :func:`duplicates_sql` (``_file``, ``_row``, ``reason``)."""
        ...

    def file_stats(self, text: Callable[[str, str], str]) -> pl.DataFrame:
        """The rows of ``text(typed, duplicates)`` (:func:`file_stats_sql`)."""
        ...


def build_views(store: Store, record: dict, mapping: Mapping, *, first: bool, scan: Scan | None = None) -> None:
    """List and describe the files, plan the columns and (re)create the macro, tables and views.

    With ``scan`` the two scans of every row (duplicates, the files' time
    ranges) run on its engine; everything else is the store's.
    """
    con = store.con
    hive = record["partitioning"] == "hive"
    files = expand_dataset(record["pattern_abs"])
    plan, ignored = plan_attached(con, record, mapping, files)
    files_sql = sql_literal(files)
    attach_id = record["attach_id"]
    names = [n for n, _ in plan.exprs]
    body = inline_params(checked_sql(plan, reader_sql("files", hive), raw=True),
                         plan.check_params + plan.expr_params)
    con.execute(f"CREATE OR REPLACE MACRO {MACRO}(files) AS TABLE {body}")

    # the two scans of every row: the duplicates, then each file's time ranges (on Spark when ``scan`` reads
    # the files there: the same text over the session's typed rows)
    typed = scan.typed(record, mapping, files, plan) if scan is not None else None
    dup_sql, dup_params = duplicates_sql(typed or f"{MACRO}({files_sql})")
    if typed is None:
        con.execute(f"CREATE OR REPLACE TABLE {DUPLICATES_TABLE} AS {dup_sql}", dup_params)
        stats = {r[0]: r[1:] for r in con.execute(file_stats_sql(f"{MACRO}({files_sql})", DUPLICATES_TABLE))
                 .fetchall()}
    else:
        assert scan is not None
        dups = scan.duplicates(dup_sql, dup_params)
        con.register("_vd_new_duplicates", dups.to_arrow())
        try:
            con.execute(f"CREATE OR REPLACE TABLE {DUPLICATES_TABLE} AS SELECT * FROM _vd_new_duplicates")
        finally:
            con.unregister("_vd_new_duplicates")
        stats = {r[0]: r[1:] for r in scan.file_stats(file_stats_sql).iter_rows()}
    # the files: their rows (from the footers), the time range of their valid rows (for the branches), and
    # of all their rows with a readable time and the rows without one (for the analyses' exclusion counts)
    con.execute(f"CREATE OR REPLACE TABLE {FILES_TABLE} (path VARCHAR PRIMARY KEY, bytes BIGINT, mtime DOUBLE, "
                "rows BIGINT, ts_min TIMESTAMP, ts_max TIMESTAMP, any_ts_min TIMESTAMP, any_ts_max TIMESTAMP, "
                "untimed BIGINT, valid BIGINT)")
    ranges = {f: (v[0], v[1]) for f, v in stats.items() if v[0] is not None}
    footer_rows = dict(con.execute("SELECT file_name, sum(num_rows) FROM parquet_file_metadata(?) GROUP BY 1",
                                   [files]).fetchall())
    lost = [f for f in files if int(stats.get(f, (0,) * 7)[6]) != int(footer_rows.get(f, 0))]
    if lost:  # every row of every file is read (the engine skipped none), checked before anything is kept
        raise StoreError(f"{lost[0]}: {int(footer_rows.get(lost[0], 0)):,} rows in its footer, "
                         f"{int(stats.get(lost[0], (0,) * 7)[6]):,} read; nothing was changed (please report this)")
    for f in files:
        st = os.stat(f)
        lo, hi, any_lo, any_hi, untimed, valid, _ = stats.get(f, (None, None, None, None, 0, 0, 0))
        con.execute(f"INSERT INTO {FILES_TABLE} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [f, st.st_size, st.st_mtime, int(footer_rows.get(f, 0)), lo, hi, any_lo, any_hi, int(untimed),
                     int(valid)])
    con.execute(
        f"""CREATE OR REPLACE VIEW {CHECKED_VIEW} AS
        SELECT r.* EXCLUDE (_reason), coalesce(r._reason, d.reason) AS _reason
        FROM {MACRO}({files_sql}) AS r
        LEFT JOIN {DUPLICATES_TABLE} AS d ON d._file = r._file AND d._row = r._row"""
    )

    # predictions: one branch per UTC day of files (a file spanning days is a branch of its own)
    groups: dict[object, list[str]] = {}
    for f in files:
        lo, hi = ranges.get(f, (None, None))
        if lo is None:
            continue  # no valid row: nothing to read for analyses
        key = lo.date() if lo.date() == hi.date() else f
        groups.setdefault(key, []).append(f)
    covs = [n for n in names if n not in CONTRACT["predictions"]]
    out_cols = output_columns(plan, attach_id)
    branches = []
    for group in groups.values():
        lo = min(ranges[f][0] for f in group)
        hi = max(ranges[f][1] for f in group)
        branches.append(
            f"SELECT * FROM {MACRO}({sql_literal(group)}) "
            f"WHERE _reason IS NULL AND ts BETWEEN {sql_literal(lo)} AND {sql_literal(hi)}"
        )
    if not branches:  # no valid time anywhere: an empty relation of the right shape
        branches.append(f"SELECT * FROM {MACRO}({sql_literal(files[:1])}) WHERE false")
    union = "\nUNION ALL\n".join(branches)
    if first:
        con.execute("DROP VIEW IF EXISTS predictions_resolved")
        con.execute("DROP TABLE IF EXISTS predictions")
    con.execute(
        f"""CREATE OR REPLACE VIEW predictions AS
        SELECT {out_cols} FROM ({union}) AS u
        ANTI JOIN {DUPLICATES_TABLE} AS d ON d._file = u._file AND d._row = u._row"""
    )
    con.execute(f"DROP VIEW IF EXISTS {OLD_VIEW}")  # a version-1 view that version 2 wrapped: no longer read
    for name, typ in plan.new_covariates:
        con.execute("INSERT INTO covariates VALUES (?, ?, ?)", [name, typ, attach_id])
    record = dict(record, validated_at=now_text(), ignored=ignored + list(plan.ignored),
                  covariates=covs)
    con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [META_KEY, json.dumps(record, default=str)])
