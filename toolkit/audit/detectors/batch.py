"""Batch/online divergence: batch scoring on a version online does not serve.

Per bucket and region, the versions online serves (each with at least
``min_share`` of the bucket's online requests there) are compared with the
resolved versions of the batch rows. Batch rows are divergent when their
version is neither served online in that bucket nor intended for online by
the serving history at that time (when online deviates from its own intent,
that is online's finding, not batch's), unless online served that version
less than ``batch_grace`` before them. Buckets without online traffic in the
region cannot be compared and are skipped. One finding per region and batch
version: ``warning`` when the batch history does not intend the version
either, ``info`` when it declares it (divergence by design).
"""

from __future__ import annotations

from typing import Any

from ...sqlutil import one_row
from ..census import CELLS
from ..intended import IV, PIECE, STREAMS
from .common import Context, fmt_duration, row_finding, scope_text, single

_SQL = f"""
WITH online0 AS (
  SELECT bucket_start, region, resolved_version, sum(n) AS n, max(last_ts) AS last_ts
  FROM {CELLS} WHERE component = 'online'
  GROUP BY bucket_start, region, resolved_version
),
online AS (
  SELECT *, sum(n) OVER (PARTITION BY bucket_start, region) AS total FROM online0
),
serving AS (
  SELECT bucket_start, region, list(resolved_version ORDER BY n DESC) AS versions
  FROM online WHERE n / total >= ?
  GROUP BY ALL
),
last_online AS (
  SELECT region, resolved_version, max(last_ts) AS last_ts FROM online GROUP BY ALL
),
batch0 AS (
  SELECT bucket_start, region, resolved_version, sum(n) AS n, min(first_ts) AS first_ts,
         max(last_ts) AS last_ts, list_distinct(list(instance_id)) AS instances,
         flatten(list(examples ORDER BY first_ts, examples)) AS examples,
         bool_and(coalesce(in_intent, false)) AS batch_intended
  FROM {CELLS} WHERE component = 'batch'
  GROUP BY ALL
),
batch1 AS (
  SELECT b.*, coalesce(st.eff_scope, 'all') AS serving_scope
  FROM batch0 AS b
  LEFT JOIN {STREAMS} AS st ON st.component = 'serving' AND st.eff_scope = b.region
),
batch2 AS (
  SELECT b.*, pc.pos AS serving_pos
  FROM batch1 AS b ASOF LEFT JOIN {PIECE} AS pc
    ON pc.component = 'serving' AND pc.eff_scope = b.serving_scope AND b.first_ts >= pc.piece_start
),
batch AS (
  -- the versions the serving history intends for online at the batch rows' time
  SELECT b.*, list(iv.version) FILTER (WHERE iv.version IS NOT NULL) AS online_intended
  FROM batch2 AS b
  LEFT JOIN {IV} AS iv
    ON iv.component = 'serving' AND iv.eff_scope = b.serving_scope AND iv.pos = b.serving_pos
  GROUP BY ALL
),
divergent AS (
  SELECT b.*, s.versions AS online_versions
  FROM batch AS b
  JOIN serving AS s ON s.bucket_start = b.bucket_start AND s.region IS NOT DISTINCT FROM b.region
  LEFT JOIN last_online AS lo
    ON lo.region IS NOT DISTINCT FROM b.region AND lo.resolved_version = b.resolved_version
   AND lo.last_ts < b.first_ts
  WHERE NOT list_contains(s.versions, b.resolved_version)
    AND NOT list_contains(coalesce(b.online_intended, []), b.resolved_version)
    AND (lo.last_ts IS NULL OR b.first_ts > lo.last_ts + ?)
)
SELECT region, resolved_version, batch_intended,
       sum(n)::BIGINT AS n, min(first_ts) AS first_ts, max(last_ts) AS last_ts,
       count(*)::BIGINT AS n_buckets,
       list_distinct(flatten(list(online_versions))) AS online_versions,
       list_sort(list_distinct(flatten(list(instances)))) AS instances,
       flatten(list(examples ORDER BY bucket_start))[1:?] AS examples
FROM divergent
GROUP BY ALL
ORDER BY region NULLS FIRST, resolved_version
"""

_BATCH_TOTAL_SQL = f"""
SELECT sum(n)::BIGINT FROM {CELLS}
WHERE component = 'batch' AND region IS NOT DISTINCT FROM ? AND last_ts >= ? AND first_ts <= ?
"""


def detect_batch_online(ctx: Context) -> list[dict[str, Any]]:
    """Batch rows on a version online was not serving at the same time."""
    th = ctx.thresholds
    out = []
    for row in ctx.rows(_SQL, [th.min_share, th.batch_grace, th.n_examples]):
        if row["n"] < th.min_count:
            continue
        total = one_row(ctx.con, _BATCH_TOTAL_SQL, [row["region"], row["first_ts"], row["last_ts"]])[0]
        online = sorted(row["online_versions"])
        instance = single(row["instances"])
        span = row["last_ts"] - row["first_ts"]
        declared = bool(row["batch_intended"])
        advice = (
            "the batch deployment history declares this version, so the divergence is by design; "
            "check that it is meant to last"
            if declared
            else "point the batch job at the live version"
        )
        out.append(
            row_finding(
                row,
                kind="batch_online_divergence",
                severity="info" if declared else "warning",
                component="batch",
                instance_id=instance,
                versions=[row["resolved_version"], *online],
                scope_total=total,
                explanation=(
                    f"Batch scoring ({scope_text('batch', row['region'], instance)}) ran "
                    f"{row['resolved_version']} on {row['n']} requests while online served "
                    f"{', '.join(online)} at the same time ({row['n_buckets']} {ctx.bucket} buckets over "
                    f"{fmt_duration(span)}); {advice}."
                ),
                evidence={
                    "batch_version": row["resolved_version"],
                    "declared_by_batch_history": declared,
                    "online_versions": online,
                    "buckets": row["n_buckets"],
                    "batch_requests_in_period": total,
                    "instances": row["instances"],
                },
                n_examples=th.n_examples,
            )
        )
    return out
