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
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from ..errors import InputError
from ..sqlutil import quote_ident, table_columns
from ..store.attach.state import DUPLICATES_TABLE, FILES_TABLE, info, recorded_mapping, stale_files, stale_message
from ..store.attach.dataset import describe_columns, hive_keys
from ..store.attach.views import checked_sql, output_columns, plan_attached
from ..store.ingest.plan import _Plan
from ..store.mapping import Mapping
from ..timeutil import Window
from .keys import RAW_COLUMN, sql_type

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
    plan: _Plan                     # the store's column plan in Spark's dialect
    partitions: dict[str, str]      # hive partition keys -> the type DuckDB's reader gives them
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
    """How Spark reads the store's attached predictions over ``span``; None when they are ingested (or empty).

    An :class:`InputError` when validated files changed since (as DuckDB's views refuse them).
    """
    record = info(con)
    if record is None:
        return None
    stale = stale_files(con)
    if stale:
        raise InputError(stale_message(store_path(con), stale))
    every = [r[0] for r in con.execute(f"SELECT path FROM {FILES_TABLE} WHERE rows > 0 ORDER BY path").fetchall()]
    if not every:  # nothing to read: the export path gives the analyses' own "no predictions" answers
        return None
    files = every if span is None else _span_files(con, span, every)
    mapping = recorded_mapping(record)
    if "covariates" in record:  # the store's covariates as they were chosen: no column is typed again
        mapping = dataclasses.replace(mapping, covariates=tuple(record["covariates"]))
    plan, ignored = plan_attached(con, record, mapping, every, dialect="spark")
    partitions, base = _partitions(con, record, every)
    plan.unported.extend(_odd_partitions(every, partitions, ignored))
    return LakeRead(tuple(files), plan, partitions, base, int(record["attach_id"]))


def _partitions(con: duckdb.DuckDBPyConnection, record: dict, files: list[str]) -> tuple[dict[str, str], str]:
    """The hive partition keys with the types DuckDB's reader gives them, and Spark's ``basePath`` ({} and '')."""
    if record["partitioning"] != "hive":
        return {}, ""
    types = describe_columns(con, files[:1], True)
    return {k: types[k] for k in hive_keys(files[:1]) if k in types}, _base(files[0])


#: Partition values Spark casts to a type as DuckDB's reader does (DuckDB also reads e.g. ``0x10`` as 16).
_PLAIN = {"BIGINT": re.compile(r"^-?[0-9]+$"), "DOUBLE": re.compile(r"^-?[0-9]+([.][0-9]+)?$"),
          "DATE": re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")}


def _odd_partitions(files: list[str], partitions: dict[str, str], ignored: list[str]) -> list[str]:
    """Values of a typed partition key the plan reads that Spark would not cast as DuckDB does."""
    out = []
    for key, typ in partitions.items():
        if typ == "VARCHAR" or f"{key} (partition key)" in ignored:  # text, or layout the plan does not read
            continue
        plain = _PLAIN.get(typ)
        for f in files:
            value = next((p.split("=", 1)[1] for p in Path(f).parent.parts if p.startswith(f"{key}=")), "")
            if value != "NULL" and (plain is None or not plain.match(value)):
                out.append(f"partition value {key}={value} read as {typ.lower()}")
                break
    return out


def _span_files(con: duckdb.DuckDBPyConnection, span: Window, every: list[str]) -> list[str]:
    """The files whose rows (valid or not, with a readable time) meet ``span``, and those with untimed rows."""
    if "any_ts_min" not in table_columns(con, FILES_TABLE):  # validated by an older vdrift: every file
        return every
    return [r[0] for r in con.execute(
        f"SELECT path FROM {FILES_TABLE} WHERE rows > 0 AND (untimed > 0 OR (any_ts_min < ? AND any_ts_max >= ?)) "
        "ORDER BY path", [span.end, span.start]).fetchall()]


def _base(path: str) -> str:
    """The directory above a file's first ``key=value`` directory (Spark's ``basePath`` for partition columns)."""
    parts = Path(path).parent.parts
    first = next(i for i, part in enumerate(parts) if _HIVE_DIR.match(part))
    return str(Path(*parts[:first]))


@contextmanager
def _typed_views(spark: SparkSession, plan: _Plan, files: list[str], partitions: dict[str, str], base: str, *,
                 raw: bool, empty: bool = False) -> Iterator[None]:
    """``files`` as the session's :data:`SOURCE_VIEW`, and every row typed by ``plan`` as :data:`TYPED_VIEW`.

    ``partitions``: the hive partition keys and the types DuckDB's reader
    gives them (Spark reads their values as text and casts them alike).
    """
    from pyspark.sql import functions as F

    from .spark import _spark_param

    reader = spark.read.option("basePath", base) if partitions else spark.read
    frame = reader.parquet(*files)
    for key, typ in partitions.items():  # DuckDB reads a partition value NULL as a null
        frame = frame.withColumn(key, F.expr(f"try_cast(nullif({_tick(key)}, 'NULL') AS {sql_type(typ, 'spark')})"))
    columns = frame.columns
    # DuckDB's reader columns: the file's path (Spark gives a URI) and the 0-based row number in the file
    uri = F.col("_metadata.file_path")
    path = F.url_decode(F.replace(F.regexp_replace(uri, F.lit("^file:(//)?"), F.lit("")), F.lit("+"), F.lit("%2B")))
    frame = frame.select("*", path.alias("_vd_file"), F.col("_metadata.row_index").alias("file_row_number"))
    if raw:
        # DuckDB's order: the file's columns, its reader's two, then the partition keys
        own = [c for c in columns if c not in partitions]
        frame = frame.withColumn(RAW_COLUMN, _row_json(frame, own + ["file_row_number", "_vd_file", *partitions]))
    if empty:
        frame = frame.where(F.lit(False))
    frame.createOrReplaceTempView(SOURCE_VIEW)
    params = [_spark_param(p) for p in plan.check_params + plan.expr_params]
    typed = spark.sql(checked_sql(plan, SOURCE_VIEW, raw=raw), args=params)
    try:
        typed.createOrReplaceTempView(TYPED_VIEW)
        yield
    finally:
        for view in (TYPED_VIEW, SOURCE_VIEW):
            spark.catalog.dropTempView(view)


def _tick(name: str) -> str:
    """A column name in Spark's backticks (the session's double quotes are not set yet when the frame is built)."""
    return "`" + name.replace("`", "``") + "`"


def _row_json(frame: Any, columns: list[str]) -> Any:
    """The row as JSON, as DuckDB's ``to_json`` writes it (an excluded row's example).

    Times as ``2026-11-09 14:30:00[.5]`` (``+00`` for instants), NaN and the
    infinities unquoted, nulls kept.
    """
    from pyspark.sql import functions as F

    kinds = {f.name: f.dataType.typeName() for f in frame.schema.fields}
    fields = []
    for name in columns:
        col = F.col(_tick(name))
        if kinds.get(name) in ("timestamp", "timestamp_ntz"):
            text = F.regexp_replace(F.date_format(col, "yyyy-MM-dd HH:mm:ss.SSSSSS"), F.lit("[.]?0+$"), F.lit(""))
            col = F.concat(text, F.lit("+00")) if kinds[name] == "timestamp" else text
        fields.append(col.alias(name))
    out = F.to_json(F.struct(*fields), {"ignoreNullFields": "false"})
    floats = [n for n in columns if kinds.get(n) in ("double", "float")]
    if floats:  # Spark's JSON quotes NaN and the infinities; DuckDB's does not
        keys = "|".join(rf"\Q{name}\E" for name in floats)
        out = F.regexp_replace(out, F.lit(f'"({keys})":"(NaN|-?Infinity)"'), F.lit('"$1":$2'))
    return out


@contextmanager
def _checked_view(spark: SparkSession, run: SparkRunner, plan: _Plan, duplicates: pl.DataFrame, *,
                  raw: bool) -> Iterator[None]:
    """:data:`CHECKED_VIEW`: the typed rows with the duplicates' reasons (broadcast), the runner's ``checked``."""
    names = ", ".join(f"t.{quote_ident(n)}" for n, _ in plan.exprs) + (", t._raw" if raw else "")
    with run.registered(DUPLICATES_VIEW, duplicates.with_columns(pl.col("_row").cast(pl.Int64))):
        spark.sql(f"""CREATE OR REPLACE TEMP VIEW {CHECKED_VIEW} AS
            SELECT /*+ BROADCAST(d) */ t._file, t._row, {names}, coalesce(t._reason, d.reason) AS _reason
            FROM {TYPED_VIEW} AS t LEFT JOIN {DUPLICATES_VIEW} AS d ON d._file = t._file AND d._row = t._row""")
        run.checked = CHECKED_VIEW
        try:
            yield
        finally:
            run.checked = None
            spark.catalog.dropTempView(CHECKED_VIEW)


def _store_duplicates(con: duckdb.DuckDBPyConnection, files: list[str]) -> pl.DataFrame:
    return con.execute(f"SELECT _file, _row, reason FROM {DUPLICATES_TABLE} WHERE list_contains(?, _file)",
                       [files]).pl()


@contextmanager
def lake_views(spark: SparkSession, con: duckdb.DuckDBPyConnection, read: LakeRead, run: SparkRunner, *,
               raw: bool = False) -> Iterator[None]:
    """Register the checked rows (:data:`CHECKED_VIEW`) and ``predictions`` of ``read`` on the session, while open.

    The caller holds ``toolkit.engine.spark.SESSION_CONF``. ``raw`` keeps
    each row as JSON (``_raw``: the examples of ``vdrift validate``).
    """
    files = list(read.files) or [_first_file(con)]
    plan = read.plan
    # no file meets the span: the relation of one file, empty
    with _typed_views(spark, plan, files, read.partitions, read.base, raw=raw, empty=not read.files):
        with _checked_view(spark, run, plan, _store_duplicates(con, list(read.files)), raw=raw):
            columns = output_columns(plan, read.attach_id, "spark")
            spark.sql(f"CREATE OR REPLACE TEMP VIEW predictions AS SELECT {columns} "
                      f"FROM {CHECKED_VIEW} WHERE _reason IS NULL")
            try:
                yield
            finally:
                spark.catalog.dropTempView("predictions")


class SparkScan:
    """The scans of ``vdrift attach`` / ``validate`` on Spark (``toolkit.store.attach.views.Scan``).

    :meth:`typed` registers every row of the dataset typed by the store's plan
    in Spark's dialect (the files' rows as JSON too, for the examples);
    :meth:`duplicates` and :meth:`file_stats` run the store's own text over
    them; afterwards :attr:`run` reads :data:`CHECKED_VIEW` (its ``checked``)
    for the report. A plan with something :attr:`LakeRead.unported` is
    scanned by DuckDB instead (:attr:`unported` says why). Close it with
    :meth:`close` (or use it as a context manager).
    """

    def __init__(self, spark: SparkSession, con: duckdb.DuckDBPyConnection) -> None:
        from .spark import SparkRunner, _session_conf

        self.spark, self.con = spark, con
        self.run = SparkRunner(spark)
        self.unported: tuple[str, ...] = ()
        self._stack = ExitStack()
        self._stack.enter_context(_session_conf(spark))
        self._plan: _Plan | None = None

    def __enter__(self) -> SparkScan:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        """Drop the session's views and restore its settings."""
        self._stack.close()

    def typed(self, record: dict, mapping: Mapping, files: list[str], plan: _Plan) -> str | None:
        """Register the rows of ``files`` typed as ``plan`` types them; the view, or None (DuckDB scans)."""
        on_spark, ignored = plan_attached(self.con, record, mapping, files, dialect="spark", like=plan)
        partitions, base = _partitions(self.con, record, files)
        on_spark.unported.extend(_odd_partitions(files, partitions, ignored))
        if on_spark.unported:
            self.unported = tuple(on_spark.unported)
            return None
        self._stack.enter_context(_typed_views(self.spark, on_spark, files, partitions, base, raw=True))
        self._plan = on_spark
        return TYPED_VIEW

    def duplicates(self, sql: str, params: list) -> pl.DataFrame:
        """The duplicates (``toolkit.store.attach.views.duplicates_sql`` over :data:`TYPED_VIEW`)."""
        frame = self.run.frame(sql, params)
        assert self._plan is not None
        self._stack.enter_context(_checked_view(self.spark, self.run, self._plan, frame, raw=True))
        return frame

    def file_stats(self, text: Callable[[str, str], str]) -> pl.DataFrame:
        """Each file's time ranges (``views.file_stats_sql`` over the typed rows and the duplicates)."""
        return self.run.frame(text(TYPED_VIEW, DUPLICATES_VIEW), [])


@contextmanager
def lake_report(spark: SparkSession, con: duckdb.DuckDBPyConnection) -> Iterator[SparkRunner]:
    """A runner whose ``checked`` view holds every validated row with its reason and JSON (for the report)."""
    from .spark import SparkRunner, _session_conf

    read = lake_read(con, None)
    assert read is not None
    with _session_conf(spark):
        run = SparkRunner(spark)
        if read.unported:  # the store's DuckDB reads such a dataset (the runner has no checked view)
            yield run
            return
        with lake_views(spark, con, read, run, raw=True):
            yield run


def _first_file(con: duckdb.DuckDBPyConnection) -> str:
    row = con.execute(f"SELECT path FROM {FILES_TABLE} ORDER BY path LIMIT 1").fetchone()
    assert row is not None
    return str(row[0])


__all__ = ["LakeRead", "SparkScan", "lake_read", "lake_report", "lake_views", "CHECKED_VIEW"]
