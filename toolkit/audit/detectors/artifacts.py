"""Row-level contract checks: artifact digests and feature versions.

* ``artifact_mismatch``: rows whose logged artifact digest belongs to another
  registered version (status ``mismatch``) or to no registered artifact
  (``unregistered``), per component x region x reported/resolved version;
  the instance is named when a single one is affected.
* ``preprocessing_mismatch``: rows whose ``feature_version`` is not the one
  the registry says their resolved version expects.

Both are ``critical``: the version label in the logs, or the inputs the model
saw, are not what everyone believes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..census import CELLS
from .common import Context, fmt_time, row_finding, scope_text, single

_ARTIFACT_SQL = f"""
SELECT component, region, model_version, resolved_version, version_status,
       sum(n)::BIGINT AS n, min(first_ts) AS first_ts, max(last_ts) AS last_ts,
       list_sort(list_distinct(list(instance_id))) AS instances,
       flatten(list(examples ORDER BY first_ts, examples))[1:?] AS examples
FROM {CELLS}
WHERE version_status IN ('mismatch', 'unregistered')
GROUP BY ALL
ORDER BY component, region NULLS FIRST, model_version, resolved_version
"""

_SCOPE_SQL = f"""
SELECT component, region, sum(n)::BIGINT AS total
FROM {CELLS}
WHERE last_ts >= ? AND first_ts <= ?
GROUP BY ALL
"""

_PREPROC_SQL = f"""
SELECT component, region, resolved_version, feature_version, expected_feature_version,
       list_sort(list_distinct(list(model_version))) AS reported, sum(n)::BIGINT AS n,
       min(first_ts) AS first_ts, max(last_ts) AS last_ts,
       list_sort(list_distinct(list(instance_id))) AS instances,
       flatten(list(examples ORDER BY first_ts, examples))[1:?] AS examples
FROM {CELLS}
WHERE feature_version IS NOT NULL AND expected_feature_version IS NOT NULL
  AND feature_version <> expected_feature_version
GROUP BY ALL
ORDER BY component, region NULLS FIRST, resolved_version, feature_version
"""


def _scope_total(ctx: Context, row: dict[str, Any]) -> int:
    totals = ctx.rows(_SCOPE_SQL, [row["first_ts"], row["last_ts"]])
    for t in totals:
        if t["component"] == row["component"] and t["region"] == row["region"]:
            return int(t["total"])
    return int(row["n"])


def _critical_findings(
    ctx: Context, sql: str, kind: str, describe: Callable[[dict[str, Any], str | None], tuple[str, dict[str, Any]]]
) -> list[dict[str, Any]]:
    """One ``critical`` finding of ``kind`` per row of ``sql`` with at least ``min_count`` requests.

    ``describe(row, instance)`` gives the explanation and the evidence; the
    evidence gains the row's instances and its scope's requests.
    """
    th = ctx.thresholds
    out = []
    for row in ctx.rows(sql, [th.n_examples]):
        if row["n"] < th.min_count:
            continue
        instance = single(row["instances"])
        total = _scope_total(ctx, row)
        explanation, evidence = describe(row, instance)
        out.append(
            row_finding(
                row,
                kind=kind,
                severity="critical",
                component=row["component"],
                instance_id=instance,
                versions=[row["resolved_version"]],
                scope_total=total,
                explanation=explanation,
                evidence={**evidence, "instances": row["instances"], "scope_requests": total},
                n_examples=th.n_examples,
            )
        )
    return out


def _artifact(row: dict[str, Any], instance: str | None) -> tuple[str, dict[str, Any]]:
    if row["version_status"] == "mismatch":
        what = f"the artifact of {row['resolved_version']}"
    else:
        what = f"an artifact no registry entry knows ({row['resolved_version']})"
    explanation = (
        f"{row['n']} requests in {scope_text(row['component'], row['region'], instance)} "
        f"reported {row['model_version']} but loaded {what} from "
        f"{fmt_time(row['first_ts'])} to {fmt_time(row['last_ts'])}; check the model path "
        "the servers load and register the artifact."
    )
    return explanation, {
        "reported_version": row["model_version"],
        "resolved_version": row["resolved_version"],
        "version_status": row["version_status"],
    }


def _preprocessing(row: dict[str, Any], instance: str | None) -> tuple[str, dict[str, Any]]:
    explanation = (
        f"{row['n']} requests in {scope_text(row['component'], row['region'], instance)} were "
        f"served by {row['resolved_version']}, which expects features {row['expected_feature_version']}, "
        f"with features {row['feature_version']} from {fmt_time(row['first_ts'])} to "
        f"{fmt_time(row['last_ts'])}; align the feature pipeline with the served version."
    )
    return explanation, {
        "feature_version": row["feature_version"],
        "expected_feature_version": row["expected_feature_version"],
        "reported_versions": row["reported"],
    }


def detect_artifact_mismatch(ctx: Context) -> list[dict[str, Any]]:
    """Reported versions whose loaded artifact is another (or no) registered version."""
    return _critical_findings(ctx, _ARTIFACT_SQL, "artifact_mismatch", _artifact)


def detect_preprocessing_mismatch(ctx: Context) -> list[dict[str, Any]]:
    """Rows computed with a feature version their model version does not expect."""
    return _critical_findings(ctx, _PREPROC_SQL, "preprocessing_mismatch", _preprocessing)
