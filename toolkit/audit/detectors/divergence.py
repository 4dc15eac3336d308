"""Prediction divergence between versions answering the same input.

Two sources of paired answers, both joined in SQL:

* shadow scoring: a ``component = 'shadow'`` row shares its ``request_id``
  with the served row; the pair (served version, shadow version) is compared;
* repeated identical inputs: non-shadow rows with the same ``entity_id`` and
  the same values of every covariate column (the store's ``covariates``
  table) answered by different resolved versions.

Per version pair the divergence rate is the share of compared inputs whose
predictions differ. Shadow pairs are a designed comparison and are reported
at ``info``; repeated inputs answered differently by different versions
mean customers saw inconsistent answers and are a ``warning`` when the rate
reaches ``divergence_rate`` over at least ``min_pairs`` compared inputs
(``info`` otherwise). A version pair is reported when some answers differ
or at least ``min_pairs`` inputs were compared; the time range spans the
differing answers. Examples are request ids of differing answers first, in
time order.

Repeated inputs are found in two passes so that memory stays small: a narrow
aggregate over 64-bit hashes keeps the inputs logged with more than one
(artifact digest, reported version) pair, the only ones two resolved
versions can have answered; then only their rows are resolved and paired.
Inputs are identified by a 64-bit hash of the entity and covariates, and the
digest/label pair by another; a hash collision (odds about 1 in 10^19 per
pair of values) would merge two inputs or hide a pair.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from ...engine.keys import Dialect, distinct_list_sql, earliest_ids_sql, row_hash_sql
from ...sqlutil import quote_ident, table_columns
from .common import Context, finding

#: how far from the served answer's window a shadow score of the same request is looked for
SHADOW_MARGIN = dt.timedelta(days=1)

_SHADOW_KEYS = ["component", "region", "version_a", "version_b"]


def _shadow_sql(dialect: Dialect) -> str:
    """Served/shadow pairs per version pair (parameters: examples, window, shadow span)."""
    rank, examples = earliest_ids_sql(dialect, "request_id", [("same", "NOT differs"), ("ts", "ts")],
                                      _SHADOW_KEYS)
    return f"""
SELECT component, region, version_a, version_b,
       CAST(count(*) AS BIGINT) AS n,
       CAST(sum(CASE WHEN differs THEN 1 ELSE 0 END) AS BIGINT) AS n_diff,
       coalesce(min(ts) FILTER (WHERE differs), min(ts)) AS first_ts,
       coalesce(max(ts) FILTER (WHERE differs), max(ts)) AS last_ts,
       {examples} AS examples
FROM (SELECT pairs.*{rank}
      FROM (SELECT o.component, o.region, o.resolved_version AS version_a, s.resolved_version AS version_b,
                   o.prediction IS DISTINCT FROM s.prediction AS differs, o.ts, o.request_id
            FROM predictions_resolved AS o
            JOIN predictions_resolved AS s
              ON s.request_id = o.request_id AND s.component = 'shadow'
            WHERE o.component <> 'shadow' AND o.ts >= ? AND o.ts < ?
              AND s.ts >= ? AND s.ts < ?
              AND o.resolved_version <> s.resolved_version) AS pairs) AS pairs
GROUP BY {", ".join(_SHADOW_KEYS)}
ORDER BY component, region NULLS FIRST, version_a, version_b
"""


_REPEAT_KEYS = ["region", "version_a", "version_b"]


def _repeat_sql(cols: list[str], dialect: Dialect) -> str:
    """Repeated identical inputs answered by two versions, per version pair (parameters: window twice, examples)."""
    input_key = row_hash_sql(["entity_id", *cols], dialect)
    label_key = row_hash_sql(["artifact_hash", "model_version"], dialect)
    rank, examples = earliest_ids_sql(dialect, "request_a", [("same", "NOT differs"), ("ts", "first_ts")],
                                      _REPEAT_KEYS)
    return f"""
WITH candidates AS (
  -- inputs seen with more than one (artifact digest, reported version): only those can have been
  -- answered by two resolved versions; a narrow aggregate over hashes, without resolving rows
  SELECT {input_key} AS input_key
  FROM predictions
  WHERE component <> 'shadow' AND entity_id IS NOT NULL AND ts >= ? AND ts < ?
  GROUP BY {input_key}
  HAVING min({label_key}) <> max({label_key})
),
keyed AS (
  SELECT request_id, ts, component, region, resolved_version, prediction, {input_key} AS input_key
  FROM predictions_resolved
  WHERE component <> 'shadow' AND entity_id IS NOT NULL AND ts >= ? AND ts < ?
    AND {input_key} IN (SELECT input_key FROM candidates)
),
per_version AS (
  SELECT input_key, resolved_version, min(prediction) AS prediction,
         min(ts) AS first_ts, max(ts) AS last_ts, min(region) AS region,
         min(component) AS component, min(request_id) AS request_id
  FROM keyed GROUP BY input_key, resolved_version
),
multi AS (
  SELECT input_key FROM per_version GROUP BY input_key HAVING count(*) > 1
),
pairs AS (
  SELECT a.resolved_version AS version_a, b.resolved_version AS version_b,
         a.prediction IS DISTINCT FROM b.prediction AS differs,
         least(a.first_ts, b.first_ts) AS first_ts, greatest(a.last_ts, b.last_ts) AS last_ts,
         a.region, CASE WHEN a.component = b.component THEN a.component END AS component,
         a.request_id AS request_a
  FROM per_version AS a
  JOIN per_version AS b ON a.input_key = b.input_key AND a.resolved_version < b.resolved_version
  WHERE a.input_key IN (SELECT input_key FROM multi)
)
SELECT region, version_a, version_b, CAST(count(*) AS BIGINT) AS n,
       CAST(sum(CASE WHEN differs THEN 1 ELSE 0 END) AS BIGINT) AS n_diff,
       coalesce(min(first_ts) FILTER (WHERE differs), min(first_ts)) AS first_ts,
       coalesce(max(last_ts) FILTER (WHERE differs), max(last_ts)) AS last_ts,
       {distinct_list_sql("component", dialect)} AS components,
       {examples} AS examples
FROM (SELECT pairs.*{rank} FROM pairs) AS pairs
GROUP BY {", ".join(_REPEAT_KEYS)}
ORDER BY region NULLS FIRST, version_a, version_b
"""


def _covariate_columns(ctx: Context) -> list[str]:
    """Quoted covariate columns declared by ingests that the predictions table has."""
    names = [r[0] for r in ctx.con.execute("SELECT name FROM covariates ORDER BY name").fetchall()]
    present = table_columns(ctx.con, "predictions")
    return [quote_ident(name) for name in names if name in present]


def detect_prediction_divergence(ctx: Context) -> list[dict[str, Any]]:
    """Divergence rate per version pair for shadow pairs and repeated identical inputs."""
    th = ctx.thresholds
    out: list[dict[str, Any]] = []
    # a shadow score is looked for within SHADOW_MARGIN of the window, so the join reads
    # only that stretch of the store (DuckDB prunes on the constant range)
    shadow_span = [ctx.window_start - SHADOW_MARGIN, ctx.window_end + SHADOW_MARGIN]
    dialect = ctx.run.dialect
    for row in ctx.scan(_shadow_sql(dialect), [th.n_examples, ctx.window_start, ctx.window_end, *shadow_span]):
        if row["n"] < th.min_pairs and row["n_diff"] == 0:
            continue
        out.append(_finding(ctx, row, source="shadow"))
    cols = _covariate_columns(ctx)
    if cols:
        window = [ctx.window_start, ctx.window_end]
        for row in ctx.scan(_repeat_sql(cols, dialect), [*window, *window, th.n_examples]):
            if row["n"] < th.min_pairs and row["n_diff"] == 0:
                continue
            comps = [c for c in row["components"] if c is not None]
            row["component"] = comps[0] if len(comps) == 1 and None not in row["components"] else None
            out.append(_finding(ctx, row, source="repeated_inputs"))
    return out


def _finding(ctx: Context, row: dict[str, Any], *, source: str) -> dict[str, Any]:
    th = ctx.thresholds
    rate = row["n_diff"] / row["n"]
    region = row["region"]
    if source == "shadow":
        severity = "info"
        what = (
            f"Shadow scoring: {row['version_b']} disagreed with the served {row['version_a']} on "
            f"{row['n_diff']} of {row['n']} shared requests ({rate:.1%})"
        )
        advice = "expected for a candidate under evaluation; check before promoting it."
    else:
        severity = "warning" if rate >= th.divergence_rate and row["n"] >= th.min_pairs else "info"
        what = (
            f"Repeated identical inputs (same entity and features) answered by both {row['version_a']} "
            f"and {row['version_b']} got different predictions in {row['n_diff']} of {row['n']} cases ({rate:.1%})"
        )
        if severity == "warning":
            advice = "customers saw inconsistent answers; pin a customer to one version."
        elif row["n"] < th.min_pairs:
            advice = f"too few pairs (fewer than {th.min_pairs}) to judge the rate."
        else:
            advice = f"below the {th.divergence_rate:.0%} threshold."
    return finding(
        kind="prediction_divergence",
        severity=severity,
        component=row["component"],
        region=region,
        instance_id=None,
        versions=[row["version_a"], row["version_b"]],
        start=row["first_ts"],
        end=row["last_ts"],
        n_requests=row["n"],
        share=rate,
        examples=row["examples"],
        explanation=f"{what}; {advice}",
        evidence={
            "source": source,
            "pairs": row["n"],
            "differing": row["n_diff"],
            "divergence_rate": rate,
            "threshold": th.divergence_rate,
        },
        n_examples=th.n_examples,
    )
