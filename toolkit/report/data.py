"""Report-only aggregations, as set-based DuckDB SQL over the store.

The analyses (audit, attribution) return their own aggregated frames; this
module adds the few series only the reports need (metric by version over
time, deployment events in a window, provenance of the store), aggregated in
DuckDB so chart data stays small. The row selection is the attribution's own
(:func:`toolkit.attribution.cells.rows_sql`), so the charts and the split
count the same requests.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import duckdb
import polars as pl

from ..attribution.rows import normalise_where, rows_sql
from ..attribution.metrics import Metric
from ..timeutil import Window

Bucket = Literal["hour", "day"]


def auto_bucket(start: dt.datetime, end: dt.datetime) -> Bucket:
    """``hour`` for spans up to 16 days (at most ~400 points per series), else ``day``."""
    return "hour" if (end - start) <= dt.timedelta(days=16) else "day"


#: Display bucket widths (hours) tried in order by :func:`display_hours`.
_HOURS = (1, 2, 3, 6, 12, 24, 48, 168)


def display_hours(start: dt.datetime, end: dt.datetime, *, max_points: int = 120) -> int:
    """Width (hours) of the chart buckets: the finest giving at most ``max_points`` per series."""
    span = (end - start).total_seconds() / 3600.0
    for h in _HOURS:
        if span / h <= max_points:
            return h
    return _HOURS[-1]


def metric_by_version(
    con: duckdb.DuckDBPyConnection,
    metric: Metric,
    baseline: Window,
    comparison: Window,
    *,
    where: dict | None = None,
    hours: int = 1,
) -> pl.DataFrame:
    """The metric per resolved version and time bucket in both windows.

    Parameters
    ----------
    hours
        Bucket width in hours (buckets are aligned to midnight UTC).

    Returns
    -------
    polars.DataFrame
        ``period`` (baseline/comparison), ``bucket_start``, ``version``,
        ``n`` and ``value`` (the metric in display units: percent for rates).
    """
    if int(hours) < 1:
        raise ValueError(f"hours must be a positive integer, got {hours!r}")
    pairs = normalise_where(where, con)
    sql, params = rows_sql(metric, baseline, comparison, where=pairs,
                           select=["time_bucket(to_hours(CAST(? AS BIGINT)), ts) AS b"], select_params=[int(hours)])
    frame = con.execute(
        f"SELECT CASE WHEN period = 0 THEN 'baseline' ELSE 'comparison' END AS period, "
        f"b AS bucket_start, version, count(*) AS n, avg(y) * ? AS value "
        f"FROM ({sql}) GROUP BY ALL ORDER BY bucket_start, version",
        [metric.scale()] + params,
    ).pl()
    return frame


def period_by_version(
    con: duckdb.DuckDBPyConnection,
    metric: Metric,
    baseline: Window,
    comparison: Window,
    *,
    where: dict | None = None,
) -> pl.DataFrame:
    """Requests, traffic share and metric of every resolved version in each window."""
    pairs = normalise_where(where, con)
    sql, params = rows_sql(metric, baseline, comparison, where=pairs)
    return con.execute(
        f"SELECT CASE WHEN period = 0 THEN 'baseline' ELSE 'comparison' END AS period, version, "
        f"count(*) AS n, count(*) / sum(count(*)) OVER (PARTITION BY period) AS share, "
        f"avg(y) * ? AS value FROM ({sql}) GROUP BY period, version ORDER BY period, n DESC",
        [metric.scale()] + params,
    ).pl()


def deployments_between(con: duckdb.DuckDBPyConnection, start: dt.datetime, end: dt.datetime) -> pl.DataFrame:
    """Deployment events with ``start <= ts < end`` (what the charts draw as rules)."""
    return con.execute(
        "SELECT ts, component, scope, event, version, traffic_pct, expected_end, actor "
        "FROM deployments WHERE ts >= ? AND ts < ? ORDER BY ts",
        [start, end],
    ).pl()


def provenance(con: duckdb.DuckDBPyConnection) -> dict[str, pl.DataFrame]:
    """What a postmortem cites: input files with hashes, and row counts.

    Returns
    -------
    dict
        ``files``: the live (not superseded) ingests with path, sha256 and
        row counts; ``counts``: rows per table.
    """
    files = con.execute(
        "SELECT ingest_id, kind, path, sha256, rows_read, accepted, quarantined, finished_at, toolkit_version "
        "FROM ingest_log WHERE superseded_by IS NULL ORDER BY ingest_id"
    ).pl()
    counts = con.execute(
        "SELECT 'predictions' AS table_name, count(*) AS rows FROM predictions "
        "UNION ALL SELECT 'deployments', count(*) FROM deployments "
        "UNION ALL SELECT 'artifacts', count(*) FROM artifacts "
        "UNION ALL SELECT 'quarantine', count(*) FROM quarantine"
    ).pl()
    return {"files": files, "counts": counts}
