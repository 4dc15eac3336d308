"""The attribution's row-level passes on Apache Spark (issue #14).

:class:`SparkRunner` runs the Spark text each pass writes for
``dialect="spark"`` (profile, metric values, numeric moments, model sample,
cell sums: ``toolkit.attribution.api.attribute(..., engine="spark")`` sends
them all here); :func:`spark_rows` registers the rows and holds
:data:`SESSION_CONF`; :func:`spark_cell_sums` is the cell-sums pass in one
call. The text is the DuckDB pass's, with Spark's text type, finiteness
test and md5 keys where they differ (``toolkit.engine.keys``). Values travel
as positional parameters (``spark.sql(text, args=[...])``), never in the text.

The engine (``toolkit.engine.choose.engine_runner``) exports the store's
valid rows of the call's span (:func:`export_predictions`) and resolves their
versions on Spark against a registered copy of the registry
(:func:`store_rows`). :func:`spark_rows` instead takes rows already resolved
(the columns of ``predictions_resolved``), for calling passes by hand.
"""
from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from ..attribution.design import Design
from ..attribution.metrics import VIEW
from ..errors import InputError, VdriftError
from ..timeutil import Window
from .keys import Dialect
from ..attribution.sums import GROUPS, CellSums, Selection, cell_sums_query, frame_to_sums

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

    from .lake import LakeRead

#: Session settings the shared SQL text needs: quoted identifiers are ``"name"`` (as in DuckDB), times in UTC.
#: (Spark reads ``"name"`` as an identifier only in ANSI mode, the default from Spark 4.)
SESSION_CONF = {"spark.sql.ansi.enabled": "true", "spark.sql.ansi.doubleQuotedIdentifiers": "true",
                "spark.sql.session.timeZone": "UTC",
                # an attached lake's partition values are read as text and cast as DuckDB types them
                "spark.sql.sources.partitionColumnTypeInference.enabled": "false"}


def export_predictions(con: duckdb.DuckDBPyConnection, path: str | Path, span: Window | None = None) -> Path:
    """Write the store's valid ``predictions`` rows to one Parquet file, times as UTC instants.

    What the Spark engine reads (:func:`store_rows` resolves the versions
    there). With ``span`` only the rows with ``span.start <= ts < span.end``:
    DuckDB reads only the row groups, or attached files, that can hold them.
    The rows keep the store's order (a plain filtered scan, no join), and the
    times are written as instants (``TIMESTAMPTZ``), whose Parquet statistics
    Spark's filters use to skip row groups.
    """
    out = Path(path)
    where, params = ("", []) if span is None else (' WHERE "ts" >= ? AND "ts" < ?', [span.start, span.end])
    con.execute(f"""COPY (SELECT * REPLACE (timezone('UTC', "ts") AS "ts") FROM predictions{where}) """
                f"TO '{_path_literal(out)}' (FORMAT parquet)", params)
    return out


#: The registry as the Spark engine registers it on the session (digest -> version, feature version).
REGISTRY_VIEW = "_vdrift_registry"


@contextmanager
def store_rows(spark: SparkSession, con: duckdb.DuckDBPyConnection,
               predictions: str | Path) -> Iterator[SparkRunner]:
    """A runner over the store's exported predictions, with the versions resolved on Spark.

    ``predictions`` is what :func:`export_predictions` wrote; it becomes the
    session's view ``predictions``, the store's artifact registry (a small
    table) the view ``_vdrift_registry``, and ``predictions_resolved`` is the
    store's own resolution (``toolkit.store.schema.resolution_sql``, the same
    text) over the two. :data:`SESSION_CONF` is held while open.
    """
    with _session_conf(spark):
        spark.read.parquet(str(predictions)).createOrReplaceTempView("predictions")
        run = SparkRunner(spark)
        try:
            with _resolved(spark, con, run):
                yield run
        finally:
            spark.catalog.dropTempView("predictions")


@contextmanager
def lake_rows(spark: SparkSession, con: duckdb.DuckDBPyConnection, read: LakeRead) -> Iterator[SparkRunner]:
    """A runner over the attached files of ``read`` themselves, typed and checked on Spark, versions resolved.

    ``toolkit.engine.lake``: the session's ``predictions`` are the valid rows
    of the files, ``_vdrift_checked`` every row with its reason (the runner's
    :attr:`SparkRunner.checked`, which the excluded-row counts read).
    """
    from .lake import lake_views

    with _session_conf(spark):
        run = SparkRunner(spark)
        with lake_views(spark, con, read, run), _resolved(spark, con, run):
            yield run


@contextmanager
def _resolved(spark: SparkSession, con: duckdb.DuckDBPyConnection, run: SparkRunner) -> Iterator[None]:
    """``predictions_resolved`` over the session's ``predictions``: the store's resolution against its registry."""
    from ..store.schema import resolution_sql

    registry = con.execute("SELECT artifact_hash, version, feature_version FROM artifacts").pl()
    select, join = resolution_sql("p", REGISTRY_VIEW)
    with run.registered(REGISTRY_VIEW, registry):
        # the registry is small: broadcast it (a local relation has no size for Spark to decide on,
        # and a sort-merge join would shuffle every row of every pass)
        spark.sql(f"CREATE OR REPLACE TEMP VIEW {VIEW} AS SELECT /*+ BROADCAST(a) */ p.*, {select} "
                  f"FROM predictions AS p {join}")
        try:
            yield
        finally:
            spark.catalog.dropTempView(VIEW)


def export_resolved(con: duckdb.DuckDBPyConnection, path: str | Path, span: Window | None = None) -> Path:
    """Write the store's ``predictions_resolved`` rows to one Parquet file (times as naive UTC).

    For :func:`spark_rows` (passes called by hand on resolved rows); the
    engine itself exports the unresolved rows (:func:`export_predictions`).

    With ``span`` only the rows with ``span.start <= ts < span.end`` (DuckDB
    reads only the row groups, or attached files, that can hold them).
    """
    out = Path(path)
    where, params = ("", []) if span is None else (' WHERE "ts" >= ? AND "ts" < ?', [span.start, span.end])
    con.execute(f"COPY (SELECT * FROM {VIEW}{where}) TO '{_path_literal(out)}' (FORMAT parquet)", params)
    return out


def _path_literal(path: Path) -> str:
    # COPY takes no bound parameter for its target; the path is the only text spliced in, quotes doubled
    return str(path).replace("'", "''")


@contextmanager
def _session_conf(spark: SparkSession) -> Iterator[None]:
    """Set :data:`SESSION_CONF` for the duration of a pass and restore the previous values."""
    before: dict[str, str | None] = {}
    for key, value in SESSION_CONF.items():
        before[key] = spark.conf.get(key, None)
        spark.conf.set(key, value)
    try:
        yield
    finally:
        for key, old in before.items():
            if old is None:
                spark.conf.unset(key)
            else:
                spark.conf.set(key, old)


def _first_line(exc: BaseException) -> str:
    """The first non-empty line of an exception's message (Spark's carry a JVM stack after it)."""
    lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()]
    return lines[0][:300] if lines else type(exc).__name__


def _spark_param(value: Any) -> Any:
    """A bound value as Spark should read it: a naive datetime is UTC (the store's convention)."""
    if isinstance(value, dt.datetime) and value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value


def _rows_frame(spark: SparkSession, rows: DataFrame | str | Path | Sequence[str | Path]) -> DataFrame:
    """The resolved rows as a DataFrame: a DataFrame, a table or view name, or Parquet path(s)."""
    if isinstance(rows, Path) or (isinstance(rows, str) and (rows.endswith((".parquet", ".pq")) or "/" in rows)):
        return spark.read.parquet(str(rows))
    if isinstance(rows, str):
        return spark.table(rows)
    if isinstance(rows, Sequence):
        return spark.read.parquet(*[str(p) for p in rows])
    return rows


def _to_polars(df: DataFrame) -> pl.DataFrame:
    """The (small) result of a pass as a polars frame: through Arrow on Spark 4, from the rows on 3.5."""
    if hasattr(df, "toArrow"):
        frame = pl.from_arrow(df.toArrow())
        assert isinstance(frame, pl.DataFrame)
    else:
        rows = [r.asDict() for r in df.collect()]
        schema = {f.name: _polars_type(f.dataType.typeName()) for f in df.schema.fields}
        frame = pl.DataFrame(rows, schema=schema, strict=False) if rows else pl.DataFrame(schema=schema)
    return _naive_utc(frame)


def _naive_utc(frame: pl.DataFrame) -> pl.DataFrame:
    """Spark's instants (TIMESTAMP) as the store keeps times: naive, in UTC."""
    zoned = [n for n, t in frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone is not None]
    return frame.with_columns(pl.col(n).dt.convert_time_zone("UTC").dt.replace_time_zone(None) for n in zoned)


#: Spark type names (``DataType.typeName()``) and the polars types their Arrow conversion gives.
_POLARS_TYPES: dict[str, pl.DataType | type[pl.DataType]] = {
    "long": pl.Int64, "integer": pl.Int32, "short": pl.Int16, "byte": pl.Int8, "double": pl.Float64,
    "float": pl.Float32, "string": pl.Utf8, "boolean": pl.Boolean, "date": pl.Date,
    "timestamp": pl.Datetime("us", "UTC"), "timestamp_ntz": pl.Datetime("us"),
}


#: Spark SQL types of the polars columns a registered lookup table may hold.
_SPARK_TYPES = {pl.Int64: "BIGINT", pl.Int32: "INT", pl.Float64: "DOUBLE", pl.Utf8: "STRING",
                pl.Boolean: "BOOLEAN", pl.Date: "DATE"}


def _spark_schema(frame: pl.DataFrame) -> str:
    """A DDL schema for ``frame`` (naive datetimes as TIMESTAMP, read in the session's UTC)."""
    parts = []
    for name, dtype in frame.schema.items():
        typ = "TIMESTAMP" if isinstance(dtype, pl.Datetime) else _SPARK_TYPES.get(dtype.base_type())
        if typ is None:
            raise TypeError(f"cannot register column {name!r} of type {dtype} on Spark")
        parts.append(f"`{name}` {typ}")
    return ", ".join(parts)


def _polars_type(name: str) -> pl.DataType | type[pl.DataType]:
    """The polars type of a Spark column on the row path (decimals as floats; anything else as text)."""
    if name.startswith("decimal"):
        return pl.Float64
    return _POLARS_TYPES.get(name, pl.Utf8)


class SparkRunner:
    """Runs the passes' Spark SQL text on a session (:class:`toolkit.engine.run.Runner`).

    The values are bound (``spark.sql(text, args=[...])``); a naive datetime
    is read as UTC. The caller registers the rows as the view
    ``predictions_resolved`` and holds :data:`SESSION_CONF` (see :func:`spark_rows`).
    """

    dialect: Dialect = "spark"

    def __init__(self, spark: SparkSession) -> None:
        self.spark = spark
        #: the session's view of every attached row with its reason, when the runner reads the files in place
        self.checked: str | None = None

    def frame(self, sql: str, params: Sequence) -> pl.DataFrame:
        """The (small) result of ``sql`` with ``params`` bound, as polars (a Spark failure as a VdriftError)."""
        try:
            return _to_polars(self.spark.sql(sql, args=[_spark_param(p) for p in params]))
        except Exception as exc:
            if type(exc).__module__.startswith(("pyspark", "py4j")):
                raise VdriftError(f"Spark failed on a pass over the rows: {_first_line(exc)}; the Spark "
                                  "driver log has the details (the same analysis runs with --engine duckdb)") from exc
            raise

    @contextmanager
    def registered(self, name: str, frame: pl.DataFrame) -> Iterator[None]:
        """``frame`` as the session's temporary view ``name`` (naive times read as UTC), while open."""
        # naive times as UTC instants: pyspark reads an aware datetime exactly, a naive one in the local zone
        naive = [n for n, t in frame.schema.items() if isinstance(t, pl.Datetime) and t.time_zone is None]
        aware = frame.with_columns(pl.col(n).dt.replace_time_zone("UTC") for n in naive)
        self.spark.createDataFrame(aware.rows(), schema=_spark_schema(frame)).createOrReplaceTempView(name)
        try:
            yield
        finally:
            self.spark.catalog.dropTempView(name)


#: The views :func:`spark_rows` registers over the resolved rows.
_VIEWS = (VIEW, "predictions")


@contextmanager
def spark_rows(spark: SparkSession, rows: DataFrame | str | Path | Sequence[str | Path]) -> Iterator[SparkRunner]:
    """A runner over ``rows`` (the views ``predictions_resolved`` and ``predictions``), :data:`SESSION_CONF` held."""
    with _session_conf(spark):
        frame = _rows_frame(spark, rows)
        for view in _VIEWS:  # the resolved rows carry the raw columns too: the audit reads them as ``predictions``
            frame.createOrReplaceTempView(view)
        try:
            yield SparkRunner(spark)
        finally:
            for view in _VIEWS:
                spark.catalog.dropTempView(view)


def default_session() -> SparkSession:
    """A session from the standard configuration.

    Spark Connect at ``SPARK_REMOTE`` when set, else
    ``SparkSession.builder.getOrCreate()`` (which honours spark-submit and ``spark.master``).
    """
    try:
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise InputError("engine 'spark' needs pyspark: pip install 'vdrift[spark]' (and a Java runtime)") from exc
    remote = os.environ.get("SPARK_REMOTE")
    try:
        if remote:
            return SparkSession.builder.remote(remote).getOrCreate()
        return SparkSession.builder.getOrCreate()
    except Exception as exc:  # a missing Java runtime, an unreachable Connect server, a bad configuration
        where = f"Spark Connect at SPARK_REMOTE={remote!r}" if remote else "a local Spark session"
        fix = ("check that the server is running and reachable, and that the Connect client is installed "
               "(pip install 'pyspark[connect]')" if remote else
               "install a Java runtime (make java, or apt-get install default-jre-headless) or set SPARK_REMOTE")
        raise VdriftError(f"engine 'spark' could not start {where}: {_first_line(exc)}; {fix}") from None


def spark_cell_sums(spark: SparkSession, con: duckdb.DuckDBPyConnection, sel: Selection, design: Design,
                    routing_by: Sequence[str], rows: DataFrame | str | Path | Sequence[str | Path], *,
                    groups: int = GROUPS, stratum: tuple[str, list, int] | None = None,
                    cells: Sequence[str] | None = None, versions: Sequence[str] | None = None,
                    sticky: bool = False) -> CellSums:
    """:func:`~toolkit.attribution.sums.cell_sums` computed by Spark over ``rows``.

    Parameters
    ----------
    spark
        The session. :data:`SESSION_CONF` is set for the pass and restored after.
    con
        The DuckDB store: it serves the deployment events of the segments
        (a small table) and nothing row-level.
    sel, design, routing_by, groups, stratum, cells, versions, sticky
        As for ``cell_sums`` (``stratum`` SQL must be portable, as
        ``api._stratum_sql``'s is). Filters (``sel.where``) are not ported.
    rows
        The resolved rows (the columns of ``predictions_resolved``): a Spark
        DataFrame, a table or view name, or Parquet path(s) such as
        :func:`export_resolved` writes, registered while the pass runs
        (:func:`spark_rows`).
    """
    sql, params = cell_sums_query(con, sel, design, routing_by, groups=groups, stratum=stratum, dialect="spark",
                                  sticky=sticky)
    with spark_rows(spark, rows) as run:
        frame = run.frame(sql, params)
    return frame_to_sums(frame, design, groups=groups, strata=stratum[2] if stratum is not None else None,
                         cells=cells, versions=versions)
