"""Requests served by a version the intended state does not allow.

Every governed cell whose resolved version is not intended (and whose digest
is registered to the version it resolves to: digest problems belong to
:mod:`.artifacts`) is traced back to the deployment event that last removed
its version from the intended state of its stream. That event classifies it:

* cache rows (``component = 'cache'`` or ``cache_hit``) -> ``stale_cache``,
  reported when they outlast the change by more than ``cache_grace``;
* rows after a ``rollback`` that still carry the rolled-back version ->
  ``incomplete_rollback`` (per component and region), when they outlast the
  rollback by more than ``rollback_grace``;
* batch rows otherwise -> left to :mod:`.batch` (batch/online divergence);
* everything else (a version never declared for that scope, or one left
  running after it was replaced) -> ``unexpected_multi_version`` when it has at
  least ``min_share`` of its scope's traffic.

The same tracing over the ``feature_pipeline`` history reports rows still
computed with a rolled-back feature version as ``incomplete_rollback`` with
``deployment_component = feature_pipeline`` in the evidence.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ..census import CELLS
from ..intended import IV, SEG
from .common import Context, finding, fmt_duration, fmt_time, scope_text, single

_OFF_SQL = f"""
WITH off AS (
  SELECT * FROM {CELLS}
  WHERE governed AND NOT in_intent AND version_status NOT IN ('mismatch', 'unregistered')
),
keys AS (SELECT DISTINCT gov, eff_scope, pos, resolved_version FROM off),
lastlive AS (
  SELECT k.gov, k.eff_scope, k.pos, k.resolved_version, max(iv.pos) AS live_pos
  FROM keys AS k
  LEFT JOIN {IV} AS iv
    ON iv.component = k.gov AND iv.eff_scope = k.eff_scope
   AND iv.version = k.resolved_version AND iv.pos < k.pos
  GROUP BY ALL
),
chg AS (
  SELECT l.*, s.source_event AS change_event, s.seg_start AS change_ts, s.event_seq AS change_seq,
         s.event_scope AS change_scope, s.target_version AS change_to, s.component AS dep_component
  FROM lastlive AS l
  LEFT JOIN {SEG} AS s
    ON s.component = l.gov AND s.eff_scope = l.eff_scope AND s.pos = l.live_pos + 1
),
classified AS (
  SELECT CASE WHEN o.is_cache THEN 'stale_cache'
              WHEN ch.change_event = 'rollback' THEN 'incomplete_rollback'
              WHEN o.component = 'batch' THEN 'batch'
              ELSE 'unexpected_multi_version' END AS cls,
         o.*, ch.change_event, ch.change_ts, ch.change_seq, ch.change_scope, ch.change_to,
         ch.dep_component
  FROM off AS o JOIN chg AS ch USING (gov, eff_scope, pos, resolved_version)
),
per_bucket AS (
  SELECT cls, component, region, resolved_version, change_event, change_ts, change_seq,
         change_scope, change_to, dep_component, bucket_start,
         sum(n) AS n, min(first_ts) AS first_ts, max(last_ts) AS last_ts,
         list_distinct(list(instance_id)) AS instances,
         list_distinct(list(model_version)) AS reported,
         flatten(list(examples)) AS examples
  FROM classified
  WHERE cls <> 'batch'
  GROUP BY ALL
),
totals AS (
  SELECT component, region, bucket_start, sum(n) AS total
  FROM {CELLS} GROUP BY ALL
)
SELECT p.cls, p.component, p.region, p.resolved_version, p.change_event, p.change_ts,
       p.change_seq, p.change_scope, p.change_to, p.dep_component,
       sum(p.n)::BIGINT AS n, sum(t.total)::BIGINT AS scope_total,
       min(p.first_ts) AS first_ts, max(p.last_ts) AS last_ts,
       list_distinct(flatten(list(p.instances))) AS instances,
       list_distinct(flatten(list(p.reported))) AS reported,
       flatten(list(p.examples ORDER BY p.bucket_start))[1:?] AS examples
FROM per_bucket AS p
JOIN totals AS t
  ON t.component = p.component AND t.region IS NOT DISTINCT FROM p.region
 AND t.bucket_start = p.bucket_start
GROUP BY ALL
ORDER BY p.cls, p.component, p.region NULLS FIRST, p.resolved_version
"""

_FP_SQL = f"""
WITH off AS (
  SELECT * FROM {CELLS} WHERE fp_in_intent = false
),
keys AS (SELECT DISTINCT fp_scope, fp_pos, feature_version FROM off),
lastlive AS (
  SELECT k.fp_scope, k.fp_pos, k.feature_version, max(iv.pos) AS live_pos
  FROM keys AS k
  LEFT JOIN {IV} AS iv
    ON iv.component = 'feature_pipeline' AND iv.eff_scope = k.fp_scope
   AND iv.version = k.feature_version AND iv.pos < k.fp_pos
  GROUP BY ALL
),
chg AS (
  SELECT l.*, s.source_event AS change_event, s.seg_start AS change_ts, s.event_seq AS change_seq,
         s.event_scope AS change_scope, s.target_version AS change_to
  FROM lastlive AS l
  LEFT JOIN {SEG} AS s
    ON s.component = 'feature_pipeline' AND s.eff_scope = l.fp_scope AND s.pos = l.live_pos + 1
)
SELECT o.component, o.region, o.feature_version, ch.change_ts, ch.change_seq, ch.change_scope,
       ch.change_to,
       sum(o.n)::BIGINT AS n, min(o.first_ts) AS first_ts, max(o.last_ts) AS last_ts,
       list_distinct(list(o.resolved_version)) AS versions,
       list_distinct(list(o.instance_id)) AS instances,
       flatten(list(o.examples ORDER BY o.bucket_start))[1:?] AS examples
FROM off AS o JOIN chg AS ch USING (fp_scope, fp_pos, feature_version)
WHERE ch.change_event = 'rollback'
GROUP BY ALL
ORDER BY o.component, o.region NULLS FIRST, o.feature_version
"""

_FLUSH_SQL = """
SELECT ts, scope FROM deployments
WHERE event = 'cache_flush' AND ts < ?
ORDER BY ts
"""


def detect_off_intent(ctx: Context) -> list[dict[str, Any]]:
    """Stale cache, incomplete rollback and unexpected multi-version findings."""
    th = ctx.thresholds
    out: list[dict[str, Any]] = []
    flushes = ctx.rows(_FLUSH_SQL, [ctx.window_end])
    for row in ctx.rows(_OFF_SQL, [th.n_examples]):
        if row["n"] < th.min_count:
            continue
        instance = single(row["instances"])
        if row["cls"] == "stale_cache":
            item = _stale_cache(ctx, row, instance, flushes)
        elif row["cls"] == "incomplete_rollback":
            item = _incomplete_rollback(ctx, row, instance)
        else:
            item = _unexpected(ctx, row, instance)
        if item is not None:
            out.append(item)
    for row in ctx.rows(_FP_SQL, [th.n_examples]):
        if row["n"] < th.min_count or row["last_ts"] < row["change_ts"] + th.rollback_grace:
            continue
        instance = single(row["instances"])
        lasted = row["last_ts"] - row["change_ts"]
        out.append(
            finding(
                kind="incomplete_rollback",
                severity="critical",
                component=row["component"],
                region=row["region"],
                instance_id=instance,
                versions=sorted(row["versions"]),
                start=row["first_ts"],
                end=row["last_ts"],
                n_requests=row["n"],
                share=None,
                examples=row["examples"],
                explanation=(
                    f"The feature pipeline was rolled back to {row['change_to']} at "
                    f"{fmt_time(row['change_ts'])}, but {row['n']} {row['component']} requests in "
                    f"{row['region'] or 'all regions'} were still computed with {row['feature_version']} "
                    f"for {fmt_duration(lasted)} afterwards."
                ),
                evidence={
                    "deployment_component": "feature_pipeline",
                    "feature_version": row["feature_version"],
                    "rolled_back_to": row["change_to"],
                    "rollback_at": row["change_ts"],
                    "lasted_seconds": lasted.total_seconds(),
                    "instances": row["instances"],
                },
                n_examples=th.n_examples,
            )
        )
    return out


def _stale_cache(ctx: Context, row: dict, instance: str | None, flushes: list[dict]) -> dict | None:
    th = ctx.thresholds
    change_ts: dt.datetime | None = row["change_ts"]
    if change_ts is not None and row["last_ts"] < change_ts + th.cache_grace:
        return None  # within the cache's time to live
    after_flush = [
        f for f in flushes
        if (change_ts is None or f["ts"] >= change_ts)
        and f["ts"] <= row["last_ts"]
        and f["scope"] in ("all", row["region"])
    ]
    version = row["resolved_version"]
    since = (
        f"after it stopped being live at {fmt_time(change_ts)} ({row['change_event']} to {row['change_to']})"
        if change_ts is not None
        else "although no deployment ever made it live there"
    )
    lasted = row["last_ts"] - (change_ts or row["first_ts"])
    text = (
        f"The cache ({scope_text(row['component'], row['region'], instance)}) kept answering "
        f"{row['n']} requests with {version} {since}, for {fmt_duration(lasted)}"
    )
    if after_flush:
        text += f", even after the cache flush at {fmt_time(after_flush[0]['ts'])}"
    text += "; flush the cache or key its entries by model version."
    return finding(
        kind="stale_cache",
        severity="critical" if after_flush else "warning",
        component=row["component"],
        region=row["region"],
        instance_id=instance,
        versions=[version],
        start=row["first_ts"],
        end=row["last_ts"],
        n_requests=row["n"],
        share=row["n"] / row["scope_total"] if row["scope_total"] else None,
        examples=row["examples"],
        explanation=text,
        evidence={
            "change_event": row["change_event"],
            "changed_at": change_ts,
            "live_version_after_change": row["change_to"],
            "lasted_seconds": lasted.total_seconds(),
            "cache_grace_seconds": th.cache_grace.total_seconds(),
            "flushes_during": [f["ts"] for f in after_flush],
            "scope_requests": row["scope_total"],
            "instances": row["instances"],
        },
        n_examples=th.n_examples,
    )


def _incomplete_rollback(ctx: Context, row: dict, instance: str | None) -> dict | None:
    th = ctx.thresholds
    if row["last_ts"] < row["change_ts"] + th.rollback_grace:
        return None
    lasted = row["last_ts"] - row["change_ts"]
    version = row["resolved_version"]
    return finding(
        kind="incomplete_rollback",
        severity="critical",
        component=row["component"],
        region=row["region"],
        instance_id=instance,
        versions=[version],
        start=row["first_ts"],
        end=row["last_ts"],
        n_requests=row["n"],
        share=row["n"] / row["scope_total"] if row["scope_total"] else None,
        examples=row["examples"],
        explanation=(
            f"{version} was rolled back to {row['change_to']} at {fmt_time(row['change_ts'])}, but "
            f"{scope_text(row['component'], row['region'], instance)} still served {row['n']} requests "
            f"with {version} for {fmt_duration(lasted)} afterwards."
        ),
        evidence={
            "deployment_component": row["dep_component"],
            "rollback_scope": row["change_scope"],
            "rollback_at": row["change_ts"],
            "rolled_back_to": row["change_to"],
            "lasted_seconds": lasted.total_seconds(),
            "scope_requests": row["scope_total"],
            "instances": row["instances"],
        },
        n_examples=th.n_examples,
    )


def _unexpected(ctx: Context, row: dict, instance: str | None) -> dict | None:
    th = ctx.thresholds
    share = row["n"] / row["scope_total"] if row["scope_total"] else 0.0
    if share < th.min_share:
        return None
    version = row["resolved_version"]
    if row["change_ts"] is None:
        why = "no deployment event declares it for this scope"
    else:
        why = f"it was replaced by {row['change_to']} at {fmt_time(row['change_ts'])} ({row['change_event']})"
    return finding(
        kind="unexpected_multi_version",
        severity="warning",
        component=row["component"],
        region=row["region"],
        instance_id=instance,
        versions=[version],
        start=row["first_ts"],
        end=row["last_ts"],
        n_requests=row["n"],
        share=share,
        examples=row["examples"],
        explanation=(
            f"{version} answered {row['n']} requests ({share:.1%} of "
            f"{scope_text(row['component'], row['region'], instance)} in those hours) although "
            f"{why}: more versions serve than the intended state allows."
        ),
        evidence={
            "replaced_by": row["change_to"],
            "replaced_at": row["change_ts"],
            "change_event": row["change_event"],
            "scope_requests": row["scope_total"],
            "reported_versions": row["reported"],
            "instances": row["instances"],
        },
        n_examples=th.n_examples,
    )
