"""Version census: what really served traffic, aggregated by time bucket.

Every prediction in the window is attached to the intended state that
governed it (the deployment segments of :mod:`toolkit.audit.intended`) and
aggregated to *cells*: bucket x component x region x instance x resolved /
reported version x status x feature version x governing segment. Every
detector works on these cells, so its cost grows with the number of cells,
not rows.

The rows are read once, by one hash aggregate into *pre-cells*: cells cut
further wherever a boundary of some intended-state piece falls inside a
bucket. No boundary lies inside a pre-cell, so the intended state is
attached to pre-cells (ASOF joins on a few hundred rows, not on every
request) and pre-cells of the same cell are merged again. Memory grows with
the number of cells, and the scan streams.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

import duckdb
import polars as pl

from ..engine.keys import Dialect
from ..engine.run import Runner, runner_for
from ..store.schema import resolution_sql
from .intended import IV, PIECE, STREAMS, governing_components
from .results import CENSUS_COLUMNS

CELLS = "_vdrift_audit_cells"
PRE = "_vdrift_audit_precells"
EPOCHS = "_vdrift_audit_epochs"

#: Spans up to this long are bucketed by hour under ``bucket="auto"``; longer ones by day.
AUTO_HOURLY_MAX_SPAN = dt.timedelta(days=7)


def choose_bucket(start: dt.datetime, end: dt.datetime, bucket: str) -> Literal["hour", "day"]:
    """Resolve ``"auto"``: hourly buckets for spans up to 7 days, daily beyond."""
    if bucket in ("hour", "day"):
        return bucket  # type: ignore[return-value]
    return "hour" if end - start <= AUTO_HOURLY_MAX_SPAN else "day"


#: Buckets cut by a piece boundary of some intended-state stream: one row per
#: stretch ``[e_start, e_end)`` of such a bucket between consecutive boundaries.
_EPOCHS_SQL = f"""
CREATE OR REPLACE TEMP TABLE {EPOCHS} AS
WITH b AS (
  SELECT DISTINCT date_trunc(?, piece_start) AS bucket_start, piece_start AS e_start
  FROM {PIECE}
  WHERE piece_start > ? AND piece_start < ? AND date_trunc(?, piece_start) <> piece_start
),
e AS (
  SELECT bucket_start, e_start FROM b
  UNION
  SELECT bucket_start, bucket_start AS e_start FROM b
)
SELECT bucket_start, e_start,
       lead(e_start) OVER (PARTITION BY bucket_start ORDER BY e_start) AS e_end  -- NULL: to the bucket's end
FROM e
"""

#: Rows -> pre-cells: one pass over the window's predictions, a hash aggregate
#: whose groups are cells further cut at the intended-state boundaries (the
#: stretches of :data:`_EPOCHS_SQL`); no row-level sort or ASOF join. Within a
#: pre-cell no boundary of any stream lies, so its first timestamp places all its
#: rows in the same piece of every stream. The rows are grouped by their logged
#: digest (the row-level pass, :func:`_groups_sql`, on either engine) and resolved
#: afterwards, per pre-cell, exactly as the store's ``predictions_resolved`` view
#: resolves each row (docs/ingest.md, "The data contract").
_GROUP_KEYS = ("bucket_start", "epoch", "component", "region", "instance_id", "artifact_hash", "model_version",
               "feature_version", "is_cache")
_ROW_SELECT = """date_trunc(?, p.ts) AS bucket_start,
         {epoch} AS epoch,
         p.component, p.region, p.instance_id, p.artifact_hash, p.model_version, p.feature_version,
         (p.component = 'cache' OR coalesce(p.cache_hit, false)) AS is_cache"""
#: A row's epoch from the range join with the epochs table (one parameter: the bucket).
_EPOCH_JOINED = "coalesce(ep.e_start, date_trunc(?, p.ts))"
_EPOCH_JOIN = f"""
  LEFT JOIN {EPOCHS} AS ep
    ON ep.bucket_start = date_trunc(?, p.ts) AND p.ts >= ep.e_start AND (ep.e_end IS NULL OR p.ts < ep.e_end)"""
_ROW_FROM = """FROM predictions AS p{join}
  WHERE p.ts >= ? AND p.ts < ?"""
#: Up to this many boundaries inside buckets, DuckDB reads a row's epoch from a CASE over them
#: (:func:`_epoch_case`) instead of the range join, which costs about as much as the rest of the pass;
#: a row goes through the boundaries newest first and stops at the first it is not before.
EPOCH_CASE_MAX = 32


def _epoch_case(boundaries: list[dt.datetime], bucket: str) -> tuple[str, list]:
    """A row's epoch without the join: the latest boundary at or before it, if inside its bucket, else the bucket.

    ``boundaries``: the epochs' starts that are not a bucket's start (newest
    first). The latest boundary at or before a row's time is its epoch when
    it lies in the row's bucket, and before the bucket's start otherwise, so
    the epoch is the later of the two: the same stretch the range join with
    :data:`EPOCHS` finds.
    """
    if not boundaries:
        return "date_trunc(?, p.ts)", [bucket]
    whens = " ".join("WHEN p.ts >= ? THEN greatest(date_trunc(?, p.ts), ?)" for _ in boundaries)
    return f"CASE {whens} ELSE date_trunc(?, p.ts) END", [x for b in boundaries for x in (b, bucket, b)] + [bucket]


def _groups_sql(dialect: Dialect, epoch: str = _EPOCH_JOINED) -> str:
    """The row-level pass: rows -> digest groups with count, time range and the earliest examples.

    Parameters: on DuckDB bucket, the epoch's (the bucket), number of
    examples, the join's (the bucket), window start and end; on Spark the
    number of examples comes last. ``epoch``: the row's epoch, by default
    from the range join with :data:`EPOCHS`; another expression (DuckDB:
    :func:`_epoch_case`) drops the join and its parameter. ``examples``
    is a list of ``{ts, id}``, the earliest by (time, id): DuckDB's bounded
    ``min``. Spark has no bounded aggregate: it numbers the rows of each group
    and keeps those ranked within the number, a filter its planner turns into
    a per-partition top-k before the shuffle (``WindowGroupLimit``), so the
    rows are not shuffled; counts and times are a separate (map-side
    combined) aggregate of the same rows, joined on the group keys.
    """
    select = _ROW_SELECT.format(epoch=epoch)
    from_ = _ROW_FROM.format(join=_EPOCH_JOIN if epoch == _EPOCH_JOINED else "")
    if dialect == "duckdb":
        return f"""
  SELECT {select},
         count(*) AS n, min(p.ts) AS first_ts, max(p.ts) AS last_ts,
         min({{'ts': p.ts, 'id': p.request_id}}, ?) AS examples
  {from_}
  GROUP BY ALL"""
    keys = ", ".join(_GROUP_KEYS)
    same = " AND ".join(f"a.{k} <=> x.{k}" for k in _GROUP_KEYS)
    return f"""
  WITH base AS (SELECT /*+ BROADCAST(ep) */ {select}, CAST(p.ts AS TIMESTAMP_NTZ) AS ts, p.request_id
                {from_}),
  agg AS (SELECT {keys}, count(*) AS n, min(ts) AS first_ts, max(ts) AS last_ts FROM base GROUP BY {keys}),
  ex AS (SELECT {keys}, sort_array(collect_list(named_struct('ts', ts, 'id', request_id))) AS examples
         FROM (SELECT base.*, row_number() OVER (PARTITION BY {keys} ORDER BY ts, request_id) AS rk FROM base) AS r
         WHERE rk <= ?
         GROUP BY {keys})
  SELECT a.*, x.examples FROM agg AS a JOIN ex AS x ON {same}"""


_RESOLVE_SELECT, _RESOLVE_JOIN = resolution_sql("g")
#: Digest groups (``g``) -> pre-cells: each group resolved against the registry.
_PRE_SQL = f"""
CREATE OR REPLACE TEMP TABLE {PRE} AS
WITH g AS ({{groups}})
SELECT g.bucket_start, g.epoch, g.component, g.region, g.instance_id, g.model_version,
       {_RESOLVE_SELECT},
       g.feature_version, g.is_cache, g.n, g.first_ts, g.last_ts, g.examples
FROM g
{_RESOLVE_JOIN}
"""
#: The registered result of the Spark pass, read by :data:`_PRE_SQL` in the store.
_GROUPS = "_vdrift_audit_groups"

#: Pre-cells -> cells: attach the intended state (ASOF joins on the few
#: pre-cells, not on rows) and merge the pre-cells of a cell again; the
#: examples of the merged cell are the earliest of its pre-cells' earliest.
_CELLS_SQL = f"""
CREATE OR REPLACE TEMP TABLE {CELLS} AS
WITH r AS (
  SELECT pre.*,
         CASE WHEN pre.component = 'shadow' THEN NULL
              WHEN pre.is_cache THEN ?
              WHEN pre.component = 'online' THEN 'serving'
              WHEN pre.component = 'batch' THEN ? END AS gov
  FROM {PRE} AS pre
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
    ON pc.component = r2.gov AND pc.eff_scope = r2.eff_scope AND r2.first_ts >= pc.piece_start
),
r4 AS (
  SELECT r3.*, fp.pos AS fp_pos
  FROM r3 ASOF LEFT JOIN {PIECE} AS fp
    ON fp.component = 'feature_pipeline' AND fp.eff_scope = r3.fp_scope AND r3.first_ts >= fp.piece_start
),
c AS (
  SELECT bucket_start, component, region, instance_id,
         resolved_version, model_version, version_status, feature_version,
         expected_feature_version, is_cache,
         gov, eff_scope, piece_id, pos, overdue, fp_scope, fp_pos,
         sum(n)::BIGINT AS n, min(first_ts) AS first_ts, max(last_ts) AS last_ts,
         list_transform(list_sort(flatten(list(examples)))[1:?], e -> e.id) AS examples
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
ORDER BY bucket_start, component, region NULLS FIRST, instance_id NULLS FIRST, n DESC, resolved_version,
         model_version, version_status
"""


def build_cells(
    con: duckdb.DuckDBPyConnection,
    window_start: dt.datetime,
    window_end: dt.datetime,
    bucket: Literal["hour", "day"],
    n_examples: int,
    run: Runner | None = None,
) -> None:
    """Create the cell table ``_vdrift_audit_cells`` (needs the intended-state tables).

    One hash aggregate reads the window's predictions once into digest
    groups (on ``run``'s engine; the store's DuckDB by default); the groups
    are resolved and the intended state is attached in the store, so the
    cost beyond that single scan grows with the number of cells, not rows.
    """
    run = runner_for(con, run)
    gov = governing_components(con)
    con.execute(_EPOCHS_SQL, [bucket, window_start, window_end, bucket])
    rows = [bucket, window_start, window_end]  # the join's bucket and the window, after the select's
    if run.dialect == "duckdb":  # one statement: the row pass and the resolution
        inside = [r[0] for r in con.execute(
            f"SELECT e_start FROM {EPOCHS} WHERE e_start <> bucket_start ORDER BY e_start DESC").fetchall()]
        if len(inside) <= EPOCH_CASE_MAX:  # no join with the epochs
            epoch, eparams = _epoch_case(inside, bucket)
            con.execute(_PRE_SQL.format(groups=_groups_sql("duckdb", epoch)),
                        [bucket, *eparams, int(n_examples), window_start, window_end])
        else:
            con.execute(_PRE_SQL.format(groups=_groups_sql("duckdb")), [bucket, bucket, int(n_examples), *rows])
    else:
        with run.registered(EPOCHS, con.execute(f"SELECT * FROM {EPOCHS}").pl()):
            groups = run.frame(_groups_sql(run.dialect), [bucket, bucket, *rows, int(n_examples)])
        con.register(_GROUPS, groups.to_arrow())
        try:
            con.execute(_PRE_SQL.format(groups=f"SELECT * FROM {_GROUPS}"))
        finally:
            con.unregister(_GROUPS)
    con.execute(_CELLS_SQL, [gov["cache"], gov["batch"], int(n_examples)])


def census_frame(con: duckdb.DuckDBPyConnection) -> pl.DataFrame:
    """The census from the cells: requests and share per bucket x version x scope."""
    frame = con.execute(_CENSUS_SQL).pl()
    return frame.select(list(CENSUS_COLUMNS))


def drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the tables created by :func:`build_cells`."""
    for name in (CELLS, PRE, EPOCHS):
        con.execute(f"DROP TABLE IF EXISTS {name}")


__all__ = ["choose_bucket", "build_cells", "census_frame", "drop_temp", "CELLS"]
