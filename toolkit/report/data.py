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
import math
from collections.abc import Sequence

import duckdb
import polars as pl

from ..attribution.rows import normalise_where, rows_sql
from ..attribution.metrics import Metric
from ..timeutil import Window
from ..vocab import TimeBucket
from .params import DisplayZone

Bucket = TimeBucket  # old name kept so imports from this module keep working


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
        f"b AS bucket_start, version, count(*) AS n, avg(y) * ? AS value, "
        f"sum(y)::DOUBLE AS y_sum, sum(y * y)::DOUBLE AS y_sq "
        f"FROM ({sql}) GROUP BY ALL ORDER BY bucket_start, version",
        [metric.scale()] + params,
    ).pl()
    return frame


def truncate(column: str, hours: int) -> pl.Expr:
    """``column`` truncated to ``hours``-wide buckets: days and weeks (from Monday) of its own wall-clock time."""
    h = int(hours)
    every = "1w" if h == 168 else "1d" if h == 24 else f"{h}h"
    return pl.col(column).dt.truncate(every)


def display_buckets(frame: pl.DataFrame, hours: int, zone: DisplayZone, *, source_hours: int = 1,
                    column: str = "bucket_start") -> pl.DataFrame:
    """``column`` (naive UTC bucket starts, ``source_hours`` wide) as ``hours``-wide display buckets in ``zone``.

    Hourly sources are cut at the zone's local hours and midnights; daily
    (UTC) buckets cannot be cut at local midnight, so they are cut in UTC and
    shown at their local start time. In UTC this is a plain truncation. The
    rows are not summed (see :func:`rebucket`).
    """
    if zone.is_utc or source_hours >= 24:
        return zone.frame(frame.with_columns(truncate(column, hours)), column)
    return zone.frame(frame, column).with_columns(truncate(column, hours))


def rebucket(frame: pl.DataFrame, hours: int, zone: DisplayZone, *, keys: Sequence[str], sums: Sequence[str],
             source_hours: int = 1, column: str = "bucket_start") -> pl.DataFrame:
    """Sum a bucketed series into ``hours``-wide display buckets of the display zone (:func:`display_buckets`)."""
    out = display_buckets(frame, hours, zone, source_hours=source_hours, column=column)
    return out.group_by(column, *keys).agg([pl.col(c).sum() for c in sums])


#: Fewest requests behind one point of the metric-by-version chart (consecutive buckets are merged until then).
MIN_BUCKET_ROWS = 50
_Z95 = 1.959963984540054


def adaptive_series(frame: pl.DataFrame, *, hours: int, zone: DisplayZone, scale: float, rate: bool,
                    min_rows: int = MIN_BUCKET_ROWS) -> pl.DataFrame:
    """The metric by version in display buckets, consecutive buckets merged until each holds ``min_rows``.

    Per window and version, buckets are taken in time order and merged into
    one point until it holds at least ``min_rows`` requests; a last short run
    joins the point before it, and a version with fewer than ``min_rows``
    requests in a window is left out. A sparse hour is therefore never drawn
    as 0 or 100%: every point carries ``min_rows`` requests or more, with its
    95% interval (Wilson for rates, normal for means).

    Parameters
    ----------
    frame
        :func:`metric_by_version` at hourly resolution (``hours=1``; ``y_sum`` and
        ``y_sq`` are summed), naive UTC.
    hours
        Display bucket width (the first cut, in the zone's wall-clock time).
    scale
        Display factor of the metric (100 for rates).
    rate
        True for 0/1 metrics (Wilson interval).

    Returns
    -------
    polars.DataFrame
        ``period``, ``version``, ``start``, ``end``, ``mid`` (local wall-clock
        times), ``buckets`` (merged), ``n``, ``value``, ``lo``, ``hi`` in display
        units; sorted by period, version and start.
    """
    schema = pl.Schema({"period": pl.String(), "version": pl.String(), "start": pl.Datetime("us"),
                        "end": pl.Datetime("us"), "mid": pl.Datetime("us"), "buckets": pl.Int64(), "n": pl.Int64(),
                        "value": pl.Float64(), "lo": pl.Float64(), "hi": pl.Float64()})
    if frame.height == 0:
        return pl.DataFrame(schema=schema)
    src = frame.select("period", "bucket_start", "version", "n", "y_sum", "y_sq")
    binned = rebucket(src, hours, zone, keys=("period", "version"), sums=("n", "y_sum", "y_sq"))
    width = dt.timedelta(hours=int(hours))
    rows: list[tuple] = []
    for (period, version), g in binned.sort("bucket_start").group_by(["period", "version"], maintain_order=True):
        groups: list[list] = []  # [start, last start, buckets, n, sum, sum of squares]
        current: list | None = None
        for b, n, sy, syy in g.select("bucket_start", "n", "y_sum", "y_sq").iter_rows():
            if current is None:
                current = [b, b, 0, 0, 0.0, 0.0]
            current[1] = b
            current[2] += 1
            current[3] += int(n)
            current[4] += float(sy)
            current[5] += float(syy)
            if current[3] >= min_rows:
                groups.append(current)
                current = None
        if current is not None:
            if groups:  # a short last run joins the point before it
                last = groups[-1]
                last[1] = current[1]
                for i in (2, 3, 4, 5):
                    last[i] += current[i]
            elif current[3] >= min_rows:
                groups.append(current)
        for start, last_start, k, n, sy, syy in groups:
            end = last_start + width
            mean = sy / n
            lo, hi = _interval(mean, syy / n - mean * mean, n, rate)
            rows.append((period, version, start, end, start + (end - start) / 2, k, n, mean * scale,
                         lo * scale, hi * scale))
    out = pl.DataFrame(rows, schema=schema, orient="row")
    return out.sort("period", "version", "start")


def _interval(p: float, var: float, n: int, rate: bool) -> tuple[float, float]:
    """95% interval of a mean of ``n`` values: Wilson's score interval for a 0/1 rate, normal otherwise."""
    z = _Z95
    if rate:
        p = min(max(p, 0.0), 1.0)
        denom = 1.0 + z * z / n
        centre = (p + z * z / (2 * n)) / denom
        half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
        return centre - half, centre + half
    sd = math.sqrt(max(var, 0.0) * n / max(n - 1, 1))
    half = z * sd / math.sqrt(n)
    return p - half, p + half


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
