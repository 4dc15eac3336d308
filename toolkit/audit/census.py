"""Version census: what really served traffic, aggregated by time bucket.

One set-based query attaches every prediction in the window to the intended
state that governed it (an ASOF join on the deployment segments of
:mod:`toolkit.audit.intended`) and aggregates to *cells*: bucket x component
x region x instance x resolved / reported version x status x feature
version x governing segment. Every detector works on these
cells, so its cost grows with the number of cells, not rows.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import duckdb
import polars as pl

from .intended import IV, PIECE, STREAMS, governing_components
from .results import CENSUS_COLUMNS

CELLS = "_vdrift_audit_cells"

#: Spans up to this long are bucketed by hour under ``bucket="auto"``; longer ones by day.
AUTO_HOURLY_MAX_SPAN = dt.timedelta(days=7)


def choose_bucket(start: dt.datetime, end: dt.datetime, bucket: str) -> Literal["hour", "day"]:
    """Resolve ``"auto"``: hourly buckets for spans up to 7 days, daily beyond."""
    if bucket in ("hour", "day"):
        return bucket  # type: ignore[return-value]
    return "hour" if end - start <= AUTO_HOURLY_MAX_SPAN else "day"


_CELLS_SQL = f"""
CREATE OR REPLACE TEMP TABLE {CELLS} AS
WITH r AS (
  SELECT p.request_id, p.ts, p.component, p.region, p.instance_id,
         p.resolved_version, p.model_version, p.version_status,
         p.feature_version, p.expected_feature_version,
         (p.component = 'cache' OR coalesce(p.cache_hit, false)) AS is_cache,
         CASE WHEN p.component = 'shadow' THEN NULL
              WHEN p.component = 'cache' OR coalesce(p.cache_hit, false) THEN ?
              WHEN p.component = 'online' THEN 'serving'
              WHEN p.component = 'batch' THEN ? END AS gov
  FROM predictions_resolved AS p
  WHERE p.ts >= ? AND p.ts < ?
),
r2 AS (
  SELECT r.*, coalesce(st.eff_scope, 'all') AS eff_scope, coalesce(fst.eff_scope, 'all') AS fp_scope
  FROM r
  LEFT JOIN {STREAMS} AS st ON st.component = r.gov AND st.eff_scope = r.region
  LEFT JOIN {STREAMS} AS fst ON fst.component = 'feature_pipeline' AND fst.eff_scope = r.region
),
r3 AS (
  SELECT r2.*, pc.piece_id, pc.pos, pc.overdue
  FROM r2 ASOF LEFT JOIN {PIECE} AS pc
    ON pc.component = r2.gov AND pc.eff_scope = r2.eff_scope AND r2.ts >= pc.piece_start
),
r4 AS (
  SELECT r3.*, fp.pos AS fp_pos
  FROM r3 ASOF LEFT JOIN {PIECE} AS fp
    ON fp.component = 'feature_pipeline' AND fp.eff_scope = r3.fp_scope AND r3.ts >= fp.piece_start
),
c AS (
  SELECT date_trunc(?, ts) AS bucket_start, component, region, instance_id,
         resolved_version, model_version, version_status, feature_version,
         expected_feature_version, is_cache,
         gov, eff_scope, piece_id, pos, overdue, fp_scope, fp_pos,
         count(*) AS n, min(ts) AS first_ts, max(ts) AS last_ts,
         min_by(request_id, ts, ?) AS examples
  FROM r4
  GROUP BY ALL
)
SELECT c.*,
       c.pos IS NOT NULL AS governed,
       iv.version IS NOT NULL AS in_intent,
       CASE WHEN c.fp_pos IS NULL OR c.feature_version IS NULL THEN NULL
            ELSE fiv.version IS NOT NULL END AS fp_in_intent
FROM c
LEFT JOIN {IV} AS iv
  ON iv.component = c.gov AND iv.eff_scope = c.eff_scope AND iv.pos = c.pos
 AND iv.version = c.resolved_version
LEFT JOIN {IV} AS fiv
  ON fiv.component = 'feature_pipeline' AND fiv.eff_scope = c.fp_scope AND fiv.pos = c.fp_pos
 AND fiv.version = c.feature_version
"""

_CENSUS_SQL = f"""
WITH g AS (
  SELECT bucket_start, resolved_version, model_version, version_status, component, region,
         instance_id, sum(n)::BIGINT AS n
  FROM {CELLS}
  GROUP BY bucket_start, resolved_version, model_version, version_status, component, region, instance_id
)
SELECT *, n / sum(n) OVER (PARTITION BY bucket_start, component) AS share
FROM g
ORDER BY bucket_start, component, region NULLS FIRST, instance_id NULLS FIRST, n DESC, resolved_version
"""


def build_cells(
    con: duckdb.DuckDBPyConnection,
    window_start: dt.datetime,
    window_end: dt.datetime,
    bucket: Literal["hour", "day"],
    n_examples: int,
) -> None:
    """Create the cell table ``_vdrift_audit_cells`` (needs the intended-state tables)."""
    gov = governing_components(con)
    con.execute(
        _CELLS_SQL,
        [gov["cache"], gov["batch"], window_start, window_end, bucket, int(n_examples)],
    )


def census_frame(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The census from the cells: requests and share per bucket x version x scope."""
    frame = con.execute(_CENSUS_SQL).pl()
    return frame.select(list(CENSUS_COLUMNS))


def drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the cell table created by :func:`build_cells`."""
    con.execute(f"DROP TABLE IF EXISTS {CELLS}")


__all__ = ["choose_bucket", "build_cells", "census_frame", "drop_temp", "CELLS"]
