"""Requests served by a version the intended state does not allow.

Every governed cell whose resolved version is not intended is traced back to
the deployment event that last removed its version from the intended state
of its stream (the replay of its component and region). That event
classifies it:

* cache rows (``component = 'cache'`` or ``cache_hit``) -> ``stale_cache``
  when they outlast the change by more than ``cache_grace``; when the change
  was a rollback, also ``incomplete_rollback`` for the cache;
* other rows after a ``rollback`` that still carry the rolled-back version ->
  ``incomplete_rollback`` (per component and region) when they outlast the
  rollback by more than ``rollback_grace``;
* batch rows otherwise -> left to :mod:`.batch` (batch/online divergence);
* everything else (a version never declared for that scope, including an
  artifact loaded under another version's label, or one left running after
  it was replaced) -> ``unexpected_multi_version``: one service-wide finding
  per component and version, naming the regions and the intended versions it
  served beside, when it has at least ``min_share`` of that component's
  traffic in the buckets where it appeared.

The same tracing over the ``feature_pipeline`` history reports requests still
computed with a rolled-back feature version as ``incomplete_rollback`` with
component ``feature_pipeline``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import polars as pl

from ..census import CELLS
from ..intended import IV, SEG
from .common import Context, examples_of, finding, fmt_duration, fmt_time, row_finding, scope_text, single

_OFF_SQL = f"""
WITH off AS (
  SELECT * FROM {CELLS} WHERE governed AND NOT in_intent
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
         flatten(list(examples ORDER BY first_ts, examples)) AS examples
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
       list(p.bucket_start) AS buckets,
       list_sort(list_distinct(flatten(list(p.instances)))) AS instances,
       list_sort(list_distinct(flatten(list(p.reported)))) AS reported,
       flatten(list(p.examples ORDER BY p.bucket_start))[1:?] AS examples
FROM per_bucket AS p
JOIN totals AS t
  ON t.component = p.component AND t.region IS NOT DISTINCT FROM p.region
 AND t.bucket_start = p.bucket_start
GROUP BY ALL
ORDER BY p.cls, p.component, p.region NULLS FIRST, p.resolved_version
"""

#: Requests per component x bucket x version served as intended (for the
#: "besides the intended ..." part of unexpected multi-version findings).
_INTENDED_SERVING_SQL = f"""
SELECT component, bucket_start, resolved_version, sum(n)::BIGINT AS n
FROM {CELLS}
WHERE governed AND in_intent
GROUP BY ALL
"""

_FP_SQL = f"""
WITH off AS (
  SELECT * FROM {CELLS} WHERE fp_in_intent = false AND component <> 'shadow'
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
       flatten(list(o.examples ORDER BY o.first_ts, o.examples))[1:?] AS examples
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
    unexpected: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for row in ctx.rows(_OFF_SQL, [th.n_examples]):
        if row["n"] < th.min_count:
            continue
        if row["cls"] == "stale_cache":
            out.extend(x for x in [_stale_cache(ctx, row, flushes)] if x is not None)
            if row["change_event"] == "rollback":
                out.extend(x for x in [_incomplete_rollback(ctx, row)] if x is not None)
        elif row["cls"] == "incomplete_rollback":
            out.extend(x for x in [_incomplete_rollback(ctx, row)] if x is not None)
        else:
            unexpected.setdefault((row["component"], row["resolved_version"]), []).append(row)
    if unexpected:
        serving = ctx.con.execute(_INTENDED_SERVING_SQL).pl()
        for (component, version), rows in unexpected.items():
            item = _unexpected(ctx, component, version, rows, serving)
            if item is not None:
                out.append(item)
    out.extend(_feature_pipeline(ctx))
    return out


def _start(ctx: Context, row: dict[str, Any]) -> dt.datetime:
    """The change time when it lies in the window (the problem starts there), else the first row."""
    change = row.get("change_ts")
    if change is not None and ctx.window_start <= change <= row["first_ts"]:
        return change
    return row["first_ts"]


def _feature_pipeline(ctx: Context) -> list[dict[str, Any]]:
    th = ctx.thresholds
    out = []
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for row in ctx.rows(_FP_SQL, [th.n_examples]):
        groups.setdefault((row["change_seq"], row["region"], row["feature_version"]), []).append(row)
    for (_, region, feature_version), rows in groups.items():
        n = sum(r["n"] for r in rows)
        first = rows[0]
        last_ts = max(r["last_ts"] for r in rows)
        if n < th.min_count or last_ts < first["change_ts"] + th.rollback_grace:
            continue
        lasted = last_ts - first["change_ts"]
        by_component = {r["component"]: r["n"] for r in rows}
        versions = sorted({v for r in rows for v in r["versions"]})
        instance = single(i for r in rows for i in r["instances"])
        out.append(
            finding(
                kind="incomplete_rollback",
                severity="critical",
                component="feature_pipeline",
                region=region,
                instance_id=instance,
                versions=versions,
                start=_start(ctx, {"change_ts": first["change_ts"], "first_ts": min(r["first_ts"] for r in rows)}),
                end=last_ts,
                n_requests=n,
                share=None,
                examples=examples_of(rows),
                explanation=(
                    f"The feature pipeline ({region or 'all regions'}) was rolled back to {first['change_to']} at "
                    f"{fmt_time(first['change_ts'])}, but {n} requests were still computed with "
                    f"{feature_version} for {fmt_duration(lasted)} afterwards."
                ),
                evidence={
                    "deployment_component": "feature_pipeline",
                    "feature_version": feature_version,
                    "rolled_back_to": first["change_to"],
                    "rollback_at": first["change_ts"],
                    "lasted_seconds": lasted.total_seconds(),
                    "requests_by_component": by_component,
                },
                n_examples=th.n_examples,
            )
        )
    return out


def _stale_cache(ctx: Context, row: dict, flushes: list[dict]) -> dict | None:
    th = ctx.thresholds
    change_ts: dt.datetime | None = row["change_ts"]
    if change_ts is not None and row["last_ts"] < change_ts + th.cache_grace:
        return None  # within the cache's time to live
    after_flush = [
        f for f in flushes
        if (change_ts is None or f["ts"] > change_ts)
        and f["ts"] < row["last_ts"]
        and f["scope"] in ("all", row["region"])
    ]
    instance = single(row["instances"])
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
    return row_finding(
        row,
        kind="stale_cache",
        severity="critical" if after_flush else "warning",
        component=row["component"],
        instance_id=instance,
        versions=[version],
        start=_start(ctx, row),
        scope_total=row["scope_total"],
        explanation=text,
        evidence={
            "change_event": row["change_event"],
            "changed_at": change_ts,
            "live_version_after_change": row["change_to"],
            "first_stale": row["first_ts"],
            "last_stale": row["last_ts"],
            "lasted_seconds": lasted.total_seconds(),
            "cache_grace_seconds": th.cache_grace.total_seconds(),
            "flushes_during": [f["ts"] for f in after_flush],
            "scope_requests": row["scope_total"],
            "instances": row["instances"],
        },
        n_examples=th.n_examples,
    )


def _incomplete_rollback(ctx: Context, row: dict) -> dict | None:
    th = ctx.thresholds
    if row["last_ts"] < row["change_ts"] + th.rollback_grace:
        return None
    instance = single(row["instances"])
    lasted = row["last_ts"] - row["change_ts"]
    version = row["resolved_version"]
    return row_finding(
        row,
        kind="incomplete_rollback",
        severity="critical",
        component=row["component"],
        instance_id=instance,
        versions=[version],
        start=_start(ctx, row),
        scope_total=row["scope_total"],
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
            "first_seen": row["first_ts"],
            "last_seen": row["last_ts"],
            "lasted_seconds": lasted.total_seconds(),
            "scope_requests": row["scope_total"],
            "instances": row["instances"],
        },
        n_examples=th.n_examples,
    )


def _unexpected(
    ctx: Context, component: str, version: str, rows: list[dict[str, Any]], serving: pl.DataFrame
) -> dict | None:
    """One service-wide finding per component and unexpected version."""
    th = ctx.thresholds
    n = sum(r["n"] for r in rows)
    total = sum(r["scope_total"] for r in rows)
    buckets = sorted({b for r in rows for b in r["buckets"]})
    beside = (
        serving.filter((pl.col("component") == component) & pl.col("bucket_start").is_in(buckets))
        .group_by("resolved_version")
        .agg(pl.col("n").sum())
        .filter(pl.col("n") >= th.min_count)
        .sort("n", descending=True)
    )
    intended_versions = [v for v in beside["resolved_version"].to_list() if v != version]
    component_total = int(
        serving.filter((pl.col("component") == component) & pl.col("bucket_start").is_in(buckets))["n"].sum()
    ) + n
    share = n / component_total if component_total else 0.0
    if share < th.min_share:
        return None
    regions = sorted({r["region"] for r in rows if r["region"] is not None})
    instances = sorted({i for r in rows for i in r["instances"] if i is not None})
    replaced = [r for r in rows if r["change_ts"] is not None]
    if replaced:
        r0 = min(replaced, key=lambda r: r["change_ts"])
        why = f"it was replaced by {r0['change_to']} at {fmt_time(r0['change_ts'])} ({r0['change_event']})"
    else:
        why = "no deployment event declares it"
    reported = sorted({v for r in rows for v in r["reported"]})
    label = "" if reported == [version] else f" (reported as {', '.join(reported)})"
    where = f"in {', '.join(regions)}" if regions else "without a region"
    return finding(
        kind="unexpected_multi_version",
        severity="warning",
        component=component,
        region=None,
        instance_id=None,
        versions=[version, *intended_versions],
        start=min(r["first_ts"] for r in rows),
        end=max(r["last_ts"] for r in rows),
        n_requests=n,
        share=share,
        examples=examples_of(rows),
        explanation=(
            f"{component} traffic was answered by {version}{label} {where} besides the intended "
            f"{', '.join(intended_versions) or 'versions'}: {n} requests ({share:.1%} of {component} "
            f"in those {ctx.bucket}s), although {why}."
        ),
        evidence={
            "unexpected_version": version,
            "intended_versions_serving": intended_versions,
            "regions": regions,
            "instances": instances,
            "reported_versions": reported,
            "requests_in_affected_scopes": total,
            "replaced_at": [r["change_ts"] for r in replaced][:1],
        },
        n_examples=th.n_examples,
    )
