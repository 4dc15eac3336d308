"""Intended state: which version(s) should serve, per component x scope over time.

The deployment history is replayed in SQL (window functions over the events,
no Python loop). Conventions (docs/ingest.md, "The data contract", and the simulator):

* ``deploy``, ``rollout_complete``, ``rollback`` and ``experiment_end`` set one
  version at 100 % ("full" events);
* ``rollout_start`` and ``experiment_start`` open a split: the target gets
  ``traffic_pct`` and the previously deployed version keeps the rest;
  ``rollout_step`` changes the split's percentage;
* a region-specific event overrides scope ``all`` for that region: the state
  of region *r* is the replay of the events with scope *r* or ``all``;
  regions without specific events follow the ``all`` stream.

Three temporary tables are created on the connection:

``_vdrift_audit_seg``
    one row per state segment of a stream (component, eff_scope, pos):
    ``[seg_start, seg_end)``, the event that opened it, the split it belongs
    to (``split_seq``), target and base version, the target's share, the
    deadline of an open split and, for a rollback, the rolled-back version.
``_vdrift_audit_piece``
    segments cut at the split deadline (``overdue`` false before, true
    after); predictions are attached to pieces with an ASOF join.
``_vdrift_audit_iv``
    the intended versions of every segment with their traffic shares.
"""

from __future__ import annotations

import datetime as dt

import duckdb
import polars as pl

from ..sqlutil import one_row
from ..timeutil import PLAUSIBLE_END, PLAUSIBLE_START
from ..vocab import STATE_EVENTS
from .results import INTENDED_COLUMNS, UNKNOWN_COMPONENT, AuditThresholds

#: Deployment component that governs each predictions component (before fallback).
GOVERNING = {"online": "serving", "cache": "cache", "batch": "batch"}

SEG = "_vdrift_audit_seg"
PIECE = "_vdrift_audit_piece"
IV = "_vdrift_audit_iv"
STREAMS = "_vdrift_audit_streams"
EV = "_vdrift_audit_ev"

_EVENTS_SQL = f"""
CREATE OR REPLACE TEMP TABLE {EV} AS
SELECT row_number() OVER (
         ORDER BY ts,
                  CASE WHEN event IN ('deploy', 'rollout_complete', 'rollback', 'experiment_end') THEN 0
                       WHEN event IN ('rollout_start', 'experiment_start') THEN 1 ELSE 2 END,
                  ingest_id, component, scope) AS seq,
       ts, component, scope, event, version, traffic_pct,
       -- a deadline beyond the plausible range (stored before ingest checked it) means "none soon"
       CASE WHEN expected_end < $lo THEN $lo WHEN expected_end >= $hi THEN $hi ELSE expected_end END
         AS expected_end, actor, experiment
FROM deployments
WHERE ts < $end AND ts >= $lo AND event IN ({", ".join("'" + e + "'" for e in STATE_EVENTS)})
"""

_STREAMS_SQL = f"""
CREATE OR REPLACE TEMP TABLE {STREAMS} AS
SELECT DISTINCT component, 'all' AS eff_scope FROM {EV}
UNION
SELECT DISTINCT component, scope AS eff_scope FROM {EV} WHERE scope <> 'all'
"""

_SEGMENTS_SQL = f"""
CREATE OR REPLACE TEMP TABLE {SEG} AS
WITH se AS (
  SELECT s.eff_scope, e.*,
         e.event IN ('deploy', 'rollout_complete', 'rollback', 'experiment_end') AS is_full,
         e.event IN ('rollout_start', 'experiment_start') AS is_split_start
  FROM {STREAMS} AS s
  JOIN {EV} AS e ON e.component = s.component AND (e.scope = s.eff_scope OR e.scope = 'all')
),
w1 AS (
  SELECT *,
    row_number() OVER w AS pos,
    lead(ts) OVER w AS seg_end,
    last_value(CASE WHEN is_full THEN seq END IGNORE NULLS)
      OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS lf_prev,
    last_value(CASE WHEN is_split_start THEN seq END IGNORE NULLS)
      OVER (w ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS ls_incl
  FROM se
  WINDOW w AS (PARTITION BY component, eff_scope ORDER BY seq)
),
w2 AS (
  -- the split open at (or closed by) this event; an orphan step opens its own split
  SELECT *,
    CASE WHEN ls_incl IS NOT NULL AND ls_incl > coalesce(lf_prev, 0) THEN ls_incl
         WHEN event = 'rollout_step' THEN seq END AS open_split_seq
  FROM w1
),
w3 AS (
  SELECT a.*,
    CASE WHEN a.event = 'rollout_complete' THEN coalesce(a.version, ss.version)
         WHEN a.is_full THEN a.version END AS full_version_raw,
    ss.event AS split_event, ss.ts AS split_ts, ss.version AS split_version,
    ss.traffic_pct AS split_pct, ss.expected_end AS split_expected_end,
    ss.actor AS split_actor, ss.experiment AS split_experiment
  FROM w2 AS a
  LEFT JOIN w2 AS ss
    ON ss.component = a.component AND ss.eff_scope = a.eff_scope AND ss.seq = a.open_split_seq
),
w4 AS (
  SELECT *,
    last_value(full_version_raw IGNORE NULLS)
      OVER (PARTITION BY component, eff_scope ORDER BY seq
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS prev_full_version
  FROM w3
),
w5 AS (
  SELECT a.*, b.prev_full_version AS split_base
  FROM w4 AS a
  LEFT JOIN w4 AS b
    ON b.component = a.component AND b.eff_scope = a.eff_scope AND b.seq = a.open_split_seq
),
seg AS (
  SELECT component, eff_scope, pos, seq AS event_seq, scope AS event_scope, event AS source_event,
         ts AS seg_start, seg_end,
         CASE WHEN is_full THEN 'full'
              WHEN coalesce(split_event, event) = 'experiment_start' THEN 'experiment'
              ELSE 'rollout' END AS kind,
         CASE WHEN is_full THEN NULL ELSE open_split_seq END AS split_seq,
         CASE WHEN is_full THEN NULL ELSE coalesce(split_ts, ts) END AS split_start,
         CASE WHEN is_full THEN coalesce(full_version_raw, prev_full_version)
              ELSE coalesce(version, split_version) END AS target_version,
         CASE WHEN is_full THEN NULL ELSE split_base END AS base_version,
         CASE WHEN is_full THEN 1.0
              ELSE least(greatest(coalesce(traffic_pct, split_pct, 100.0) / 100.0, 0.0), 1.0)
         END AS target_share,
         CASE WHEN is_full THEN expected_end ELSE coalesce(expected_end, split_expected_end) END
           AS expected_end,
         CASE WHEN is_full THEN actor ELSE coalesce(actor, split_actor) END AS actor,
         coalesce(experiment, split_experiment) AS experiment
  FROM w5
)
SELECT *,
  CASE WHEN source_event = 'rollback'
       THEN lag(target_version) OVER (PARTITION BY component, eff_scope ORDER BY pos) END
    AS rolled_back_version,
  CASE kind WHEN 'rollout' THEN coalesce(expected_end, split_start + ?)
            WHEN 'experiment' THEN coalesce(expected_end, split_start + ?) END AS deadline
FROM seg
"""

_PIECES_SQL = f"""
CREATE OR REPLACE TEMP TABLE {PIECE} AS
WITH p AS (
  SELECT component, eff_scope, pos, seg_start AS piece_start,
         CASE WHEN deadline > seg_start AND (seg_end IS NULL OR deadline < seg_end)
              THEN deadline ELSE seg_end END AS piece_end,
         coalesce(deadline <= seg_start, false) AS overdue
  FROM {SEG}
  UNION ALL
  SELECT component, eff_scope, pos, deadline AS piece_start, seg_end AS piece_end, true AS overdue
  FROM {SEG}
  WHERE deadline > seg_start AND (seg_end IS NULL OR deadline < seg_end)
)
SELECT row_number() OVER (ORDER BY component, eff_scope, pos, piece_start) AS piece_id, *
FROM p
"""

_IV_SQL = f"""
CREATE OR REPLACE TEMP TABLE {IV} AS
SELECT component, eff_scope, pos, target_version AS version, target_share AS share
FROM {SEG} WHERE target_version IS NOT NULL AND target_share > 0
UNION ALL
SELECT component, eff_scope, pos, base_version AS version, 1.0 - target_share AS share
FROM {SEG}
WHERE kind <> 'full' AND base_version IS NOT NULL AND target_share < 1.0
  AND base_version IS DISTINCT FROM target_version
"""

_INTENDED_FRAME_SQL = f"""
SELECT s.seg_start AS start, s.seg_end AS "end", s.component, s.eff_scope AS scope,
       iv.version, iv.share AS traffic_share, s.source_event, s.actor,
       s.expected_end, s.experiment
FROM {SEG} AS s JOIN {IV} AS iv USING (component, eff_scope, pos)
WHERE s.seg_end IS NULL OR s.seg_end > ?
ORDER BY s.component, s.eff_scope, s.seg_start, iv.share DESC, iv.version
"""


def build_intended(
    con: duckdb.DuckDBPyConnection,
    window_start: dt.datetime,
    window_end: dt.datetime,
    thresholds: AuditThresholds,
) -> pl.DataFrame:
    """Replay the deployment history up to ``window_end`` into the temporary tables.

    Returns
    -------
    polars.DataFrame
        The intended state over segments that overlap the window (they may
        start before it), with the columns of :data:`INTENDED_COLUMNS`.
    """
    con.execute(_EVENTS_SQL, {"end": window_end, "lo": PLAUSIBLE_START, "hi": PLAUSIBLE_END})
    con.execute(_STREAMS_SQL)
    con.execute(_SEGMENTS_SQL, [thresholds.max_rollout_age, thresholds.max_experiment_age])
    con.execute(_PIECES_SQL)
    con.execute(_IV_SQL)
    frame = con.execute(_INTENDED_FRAME_SQL, [window_start]).pl()
    return frame.select(list(INTENDED_COLUMNS))


def governing_components(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Predictions component -> deployment component whose history governs it.

    ``cache`` and ``batch`` rows follow their own history when it has
    version-changing events, and the serving history otherwise.
    """
    present = {r[0] for r in con.execute(f"SELECT DISTINCT component FROM {EV}").fetchall()}
    out = {}
    for pred_component, dep_component in GOVERNING.items():
        out[pred_component] = dep_component if dep_component in present else "serving"
    return out


def ungoverned_components(con: duckdb.DuckDBPyConnection) -> list[tuple[str, int, float, str]]:
    """Stored predictions components no deployment history can govern: (component, requests, share, why).

    The rule of :data:`GOVERNING` read on the whole store (``vdrift status``);
    the audit measures the same per window on its cells, which also counts
    requests made before their component's first deploy.
    """
    history = {r[0] for r in con.execute(
        "SELECT DISTINCT component FROM deployments WHERE list_contains(?, event)", [list(STATE_EVENTS)]
    ).fetchall()}
    counts = con.execute(
        "SELECT component, count(*) FROM predictions WHERE component <> 'shadow' AND NOT coalesce(cache_hit, false) "
        "GROUP BY component ORDER BY 2 DESC").fetchall()
    total = one_row(con, "SELECT count(*) FROM predictions WHERE component <> 'shadow'")[0] or 1
    out = []
    for component, n in counts:
        if component == "shadow":
            continue
        if component not in GOVERNING:
            why = UNKNOWN_COMPONENT
        elif not history:
            why = "the store has no deployment history: ingest it (vdrift ingest deployments FILE)"
        elif "serving" not in history and GOVERNING[component] not in history:
            names = " or ".join(dict.fromkeys((repr(GOVERNING[component]), "'serving'")))
            why = f"the deployment history has no deploy/rollout event of {names}"
        else:
            continue
        out.append((component, int(n), n / total, why))
    return out


def drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temporary tables created by :func:`build_intended`."""
    for name in (IV, PIECE, SEG, STREAMS, EV):
        con.execute(f"DROP TABLE IF EXISTS {name}")
