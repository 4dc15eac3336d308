"""The Spark engine reading an attached dataset in place (issue #14).

A store whose predictions are attached (``vdrift attach predictions``) keeps
in DuckDB only the list of its validated files with their time ranges, the
rows whose key repeats an earlier row (``attached_duplicates``) and the
mapping. On Spark the engine reads **the Parquet files themselves**, not an
export of them:

1. the files that can hold a row of the call's span (their time range, kept
   by ``vdrift validate``, meets the span; or they hold rows without a
   readable time, which every analysis counts as excluded);
2. every row typed and checked by the store's own column plan
   (``toolkit.store.attach.views.plan_attached``, written in Spark's dialect:
   the same renames, time conversion, defaults and row rules, each one
   definition, ``toolkit.engine.keys`` for the words that differ), with the
   store's duplicates joined in: the session's view ``_vdrift_checked``;
3. its valid rows as the view ``predictions``, in the table's column order,
   and the versions resolved against the registry as for an export.

What the plan cannot write identically for Spark (a time given as text, a
list or struct column read as text: the engines' casts of text differ at the
edges) is listed in :attr:`LakeRead.unported`; such a source is read through
DuckDB's export instead, with the same result.
"""
from __future__ import annotations

import dataclasses
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from ..errors import InputError
from ..sqlutil import table_columns
from ..store.attach.state import DUPLICATES_TABLE, FILES_TABLE, info, recorded_mapping, stale_files, stale_message
from ..store.attach.views import checked_sql, output_columns, plan_attached
from ..store.ingest.plan import _Plan
from ..timeutil import Window

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import SparkSession

    from .spark import SparkRunner

#: The session's views over the attached files: the files' rows with DuckDB's reader columns, and every
#: row typed with its reason (NULL when valid; duplicates included).
SOURCE_VIEW = "_vdrift_source"
TYPED_VIEW = "_vdrift_typed"
CHECKED_VIEW = "_vdrift_checked"
DUPLICATES_VIEW = "_vdrift_duplicates"
_HIVE_DIR = re.compile(r"^[^=/]+=[^/]*$")


@dataclass(frozen=True)
class LakeRead:
    """How Spark reads an attached dataset for one call: its files, the plan, and what cannot be ported."""

    files: tuple[str, ...]          # the validated files that can hold a row of the span (sorted paths)
    all_files: int                  # validated files of the dataset
    plan: _Plan                     # the store's column plan in Spark's dialect
    hive: bool
    base: str                       # the directory above the partition directories (hive)
    attach_id: int

    @property
    def unported(self) -> tuple[str, ...]:
        """What only DuckDB's typing reads (the source is then exported by DuckDB); empty when Spark reads it."""
        return tuple(self.plan.unported)


def store_path(con: duckdb.DuckDBPyConnection) -> str:
    """The store file of ``con`` (for messages)."""
    row = con.execute("SELECT path FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return str(row[0]) if row and row[0] else "the store"


def lake_read(con: duckdb.DuckDBPyConnection, span: Window | None) -> LakeRead | None:
    """How Spark reads the store's attached predictions over ``span``; None when they are ingested.

    An :class:`InputError` when validated files changed since (as DuckDB's views refuse them).
    """
    record = info(con)
    if record is None:
        return None
    stale = stale_files(con)
    if stale:
        raise InputError(stale_message(store_path(con), stale))
    every = [r[0] for r in con.execute(f"SELECT path FROM {FILES_TABLE} WHERE rows > 0 ORDER BY path").fetchall()]
    if not every:
        raise InputError(f"store {store_path(con)!r}: its attached dataset has no rows; attach files with rows")
    files = every if span is None else _span_files(con, span)
    mapping = recorded_mapping(record)
    if "covariates" in record:  # the store's covariates as they were chosen: no column is typed again
        mapping = dataclasses.replace(mapping, covariates=tuple(record["covariates"]))
    hive = record["partitioning"] == "hive"
    plan, _ = plan_attached(con, record, mapping, every[:1], dialect="spark")  # same columns in every file
    return LakeRead(tuple(files), len(every), plan, hive, _base(every[0]) if hive else "", int(record["attach_id"]))


def _span_files(con: duckdb.DuckDBPyConnection, span: Window) -> list[str]:
    """The files whose rows (valid or not, with a readable time) meet ``span``, and those with untimed rows."""
    if "any_ts_min" not in table_columns(con, FILES_TABLE):  # validated by an older vdrift: every file
        return [r[0] for r in con.execute(f"SELECT path FROM {FILES_TABLE} WHERE rows > 0 ORDER BY path").fetchall()]
    return [r[0] for r in con.execute(
        f"SELECT path FROM {FILES_TABLE} WHERE rows > 0 AND (untimed > 0 OR (any_ts_min < ? AND any_ts_max >= ?)) "
        "ORDER BY path", [span.end, span.start]).fetchall()]


def _base(path: str) -> str:
    """The directory above a file's first ``key=value`` directory (Spark's ``basePath`` for partition columns)."""
    parts = Path(path).parent.parts
    first = next(i for i, part in enumerate(parts) if _HIVE_DIR.match(part))
    return str(Path(*parts[:first]))


@contextmanager
def lake_views(spark: SparkSession, con: duckdb.DuckDBPyConnection, read: LakeRead,
               run: SparkRunner) -> Iterator[None]:
    """Register the checked rows and ``predictions`` of ``read`` on the session, while open.

    The caller holds ``toolkit.engine.spark.SESSION_CONF``.
    """
    from pyspark.sql import functions as F

    from .spark import _spark_param

    files = list(read.files)
    reader = spark.read.option("basePath", read.base) if read.hive else spark.read
    frame = reader.parquet(*(files or [_first_file(con)]))
    # DuckDB's reader columns: the file's path (Spark gives a URI) and the 0-based row number in the file
    uri = F.col("_metadata.file_path")
    path = F.url_decode(F.replace(F.regexp_replace(uri, F.lit("^file:(//)?"), F.lit("")), F.lit("+"), F.lit("%2B")))
    frame = frame.select("*", path.alias("_vd_file"), F.col("_metadata.row_index").alias("file_row_number"))
    if not files:
        frame = frame.where(F.lit(False))
    frame.createOrReplaceTempView(SOURCE_VIEW)
    plan = read.plan
    params = [_spark_param(p) for p in plan.check_params + plan.expr_params]
    spark.sql(checked_sql(plan, SOURCE_VIEW, raw=False), args=params).createOrReplaceTempView(TYPED_VIEW)
    dups = con.execute(f"SELECT _file, _row, reason FROM {DUPLICATES_TABLE} WHERE list_contains(?, _file)",
                       [files]).pl()
    names = ", ".join(f't."{n}"' for n, _ in plan.exprs)
    views = [SOURCE_VIEW, TYPED_VIEW, CHECKED_VIEW, "predictions"]
    try:
        with run.registered(DUPLICATES_VIEW, dups.with_columns(pl.col("_row").cast(pl.Int64))):
            spark.sql(f"""CREATE OR REPLACE TEMP VIEW {CHECKED_VIEW} AS
                SELECT /*+ BROADCAST(d) */ t._file, t._row, {names}, coalesce(t._reason, d.reason) AS _reason
                FROM {TYPED_VIEW} AS t LEFT JOIN {DUPLICATES_VIEW} AS d ON d._file = t._file AND d._row = t._row""")
            spark.sql(f"CREATE OR REPLACE TEMP VIEW predictions AS SELECT {output_columns(plan, read.attach_id)} "
                      f"FROM {CHECKED_VIEW} WHERE _reason IS NULL")
            run.checked = CHECKED_VIEW
            yield
    finally:
        run.checked = None
        for view in views:
            spark.catalog.dropTempView(view)


def _first_file(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute(f"SELECT path FROM {FILES_TABLE} ORDER BY path LIMIT 1").fetchone()
    assert row is not None
    return str(row[0])


__all__ = ["LakeRead", "lake_read", "lake_views", "CHECKED_VIEW"]
