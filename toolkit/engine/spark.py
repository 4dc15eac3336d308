"""The attribution's cell-sums pass on Apache Spark (issue #14).

:func:`spark_cell_sums` runs the GROUP BY of
:func:`toolkit.attribution.sums.cell_sums` on a Spark session and returns the
same :class:`~toolkit.attribution.sums.CellSums`. The query text is the one
:func:`~toolkit.attribution.sums.cell_sums_query` writes for
``dialect="spark"``: the same SQL terms as on DuckDB, with Spark's text type
and finiteness test where they differ (``toolkit.engine.keys``), and the
replicate group from the md5 key both engines compute alike. Values travel as
positional parameters (``spark.sql(text, args=[...])``), never in the text.

Spark reads rows that are already resolved: the columns of the store's
``predictions_resolved`` view (``resolved_version`` included). Resolving
versions against the artifact registry is not ported; :func:`export_resolved`
writes the view of a DuckDB store to Parquet for Spark to read.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import polars as pl

from ..attribution.design import Design
from ..attribution.metrics import VIEW
from ..attribution.sums import GROUPS, CellSums, Selection, cell_sums_query, frame_to_sums

if TYPE_CHECKING:  # pragma: no cover
    from pyspark.sql import DataFrame, SparkSession

#: Session settings the shared SQL text needs: quoted identifiers are ``"name"`` (as in DuckDB), times in UTC.
#: (Spark reads ``"name"`` as an identifier only in ANSI mode, the default from Spark 4.)
SESSION_CONF = {"spark.sql.ansi.enabled": "true", "spark.sql.ansi.doubleQuotedIdentifiers": "true",
                "spark.sql.session.timeZone": "UTC"}


def export_resolved(con: duckdb.DuckDBPyConnection, path: str | Path) -> Path:
    """Write the store's ``predictions_resolved`` rows to one Parquet file (times as UTC instants)."""
    out = Path(path)
    con.execute(f"COPY (SELECT * FROM {VIEW}) TO '{_path_literal(out)}' (FORMAT parquet)")
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
        return frame
    rows = [r.asDict() for r in df.collect()]
    return pl.DataFrame(rows) if rows else pl.DataFrame(schema=dict.fromkeys(df.columns, pl.Utf8))


def spark_cell_sums(spark: SparkSession, con: duckdb.DuckDBPyConnection, sel: Selection, design: Design,
                    routing_by: Sequence[str], rows: DataFrame | str | Path | Sequence[str | Path], *,
                    groups: int = GROUPS, stratum: tuple[str, list, int] | None = None,
                    cells: Sequence[str] | None = None, versions: Sequence[str] | None = None) -> CellSums:
    """:func:`~toolkit.attribution.sums.cell_sums` computed by Spark over ``rows``.

    Parameters
    ----------
    spark
        The session. :data:`SESSION_CONF` is set for the pass and restored after.
    con
        The DuckDB store: it serves the deployment events of the segments
        (a small table) and nothing row-level.
    sel, design, routing_by, groups, stratum, cells, versions
        As for ``cell_sums`` (``stratum`` SQL must be portable, as
        ``api._stratum_sql``'s is). Filters (``sel.where``) are not ported.
    rows
        The resolved rows (the columns of ``predictions_resolved``): a Spark
        DataFrame, a table or view name, or Parquet path(s) such as
        :func:`export_resolved` writes. They are registered as the temporary
        view ``predictions_resolved`` of the session.
    """
    sql, params = cell_sums_query(con, sel, design, routing_by, groups=groups, stratum=stratum, dialect="spark")
    with _session_conf(spark):
        _rows_frame(spark, rows).createOrReplaceTempView(VIEW)
        frame = _to_polars(spark.sql(sql, args=[_spark_param(p) for p in params]))
    return frame_to_sums(frame, design, groups=groups, strata=stratum[2] if stratum is not None else None,
                         cells=cells, versions=versions)
