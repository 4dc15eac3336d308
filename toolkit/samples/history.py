"""Deployment history (the declared, intended state) and the artifact registry."""

from __future__ import annotations

import datetime as dt

import polars as pl

from . import scenarios as S

DEPLOYMENT_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    "ts": pl.Datetime("ms", "UTC"),
    "component": pl.String,
    "scope": pl.String,
    "event": pl.String,
    "version": pl.String,
    "artifact_hash": pl.String,
    "traffic_pct": pl.Float64,
    "expected_end": pl.Datetime("ms", "UTC"),
    "actor": pl.String,
    "experiment": pl.String,
    "note": pl.String,
}

_HASH = {v.name: v.artifact_hash for v in S.VERSIONS}


def _event(
    ts: dt.datetime,
    component: str,
    scope: str,
    event: str,
    version: str | None = None,
    *,
    traffic_pct: float | None = None,
    expected_end: dt.datetime | None = None,
    actor: str | None = None,
    experiment: str | None = None,
    note: str | None = None,
) -> dict:
    model = component in ("serving", "cache", "batch") and version is not None
    return {
        "ts": ts,
        "component": component,
        "scope": scope,
        "event": event,
        "version": version,
        "artifact_hash": _HASH[version] if model and version is not None else None,
        "traffic_pct": traffic_pct,
        "expected_end": expected_end,
        "actor": actor,
        "experiment": experiment,
        "note": note,
    }


def deployments(scenarios: tuple[str, ...]) -> pl.DataFrame:
    """The deployment history declaring the intended state, oldest first.

    Every sample starts from the same history: v1.4 deployed everywhere in
    September, then a v1.5 rollout started, stepped and completed on time at
    the end of October (cache and batch follow), so v1.5 is the one intended
    version when the data starts. Each scenario adds its own events.
    """
    t = S.utc
    ev = [
        _event(t("2026-09-15T10:00:00"), "feature_pipeline", "all", "deploy", "fp-3", actor="ml-platform"),
        _event(t("2026-09-15T10:05:00"), "serving", "all", "deploy", "v1.4", actor="ml-platform"),
        _event(t("2026-09-15T10:05:00"), "cache", "all", "deploy", "v1.4", actor="ml-platform"),
        _event(t("2026-09-16T00:00:00"), "batch", "all", "deploy", "v1.4", actor="ml-platform"),
        _event(t("2026-10-26T09:00:00"), "serving", "all", "rollout_start", "v1.5", traffic_pct=25.0,
               expected_end=t("2026-10-30T00:00:00"), actor="j.ortega"),
        _event(t("2026-10-27T09:00:00"), "serving", "all", "rollout_step", "v1.5", traffic_pct=50.0,
               actor="j.ortega"),
        _event(t("2026-10-28T09:00:00"), "serving", "all", "rollout_complete", "v1.5", traffic_pct=100.0,
               actor="j.ortega"),
        _event(t("2026-10-28T09:05:00"), "cache", "all", "deploy", "v1.5", actor="j.ortega"),
        _event(t("2026-10-28T09:05:00"), "cache", "all", "cache_flush", actor="j.ortega"),
        _event(t("2026-10-29T00:00:00"), "batch", "all", "deploy", "v1.5", actor="j.ortega"),
    ]
    if "canary" in scenarios:
        ev.append(_event(S.CANARY_START, "serving", S.REGIONS[S.CANARY_REGION], "rollout_start", "v1.6",
                         traffic_pct=S.CANARY_PCT, expected_end=S.CANARY_EXPECTED_END, actor=S.CANARY_ACTOR,
                         note="canary of v1.6 on instance eu-5"))
    if "rollback" in scenarios:
        us = S.REGIONS[S.ROLLBACK_REGION]
        dep, rb = S.ROLLBACK_DEPLOY, S.ROLLBACK_AT
        five = dt.timedelta(minutes=5)
        ev += [
            _event(dep - five, "feature_pipeline", us, "deploy", "fp-4", actor=S.ROLLBACK_ACTOR,
                   note="features for v2.0"),
            _event(dep, "serving", us, "deploy", "v2.0", actor=S.ROLLBACK_ACTOR),
            _event(dep, "cache", us, "deploy", "v2.0", actor=S.ROLLBACK_ACTOR),
            _event(dep, "cache", us, "cache_flush", actor=S.ROLLBACK_ACTOR),
            _event(dep, "batch", us, "deploy", "v2.0", actor=S.ROLLBACK_ACTOR),
            _event(rb, "serving", us, "rollback", "v1.5", actor=S.ROLLBACK_ACTOR,
                   note="v2.0 declines legitimate high-value payments; back to v1.5"),
            _event(rb, "cache", us, "rollback", "v1.5", actor=S.ROLLBACK_ACTOR),
            _event(rb, "feature_pipeline", us, "rollback", "fp-3", actor=S.ROLLBACK_ACTOR),
            _event(rb, "batch", us, "rollback", "v1.5", actor=S.ROLLBACK_ACTOR),
            _event(S.CACHE_FLUSH_AT, "cache", us, "cache_flush", actor="oncall-payments",
                   note="flushed after stale v2.0 answers were reported"),
        ]
    if "config_mismatch" in scenarios:
        ev.append(_event(S.CONFIG_CHANGE_AT, "serving", S.REGIONS[S.CONFIG_REGION], "config_change", "v1.5",
                         actor="infra-eu", note=S.CONFIG_NOTE))
    if "experiment" in scenarios:
        ev.append(_event(S.EXPERIMENT_START, "serving", S.REGIONS[S.EXPERIMENT_REGION], "experiment_start", "v1.6",
                         traffic_pct=S.EXPERIMENT_PCT, expected_end=S.EXPERIMENT_EXPECTED_END,
                         actor=S.EXPERIMENT_ACTOR, experiment=S.EXPERIMENT_NAME,
                         note="control: v1.5, treatment: v1.6, arms sticky per customer"))
    frame = pl.DataFrame(ev, schema={**DEPLOYMENT_SCHEMA, "ts": pl.Datetime("ms"), "expected_end": pl.Datetime("ms")})
    frame = frame.with_columns(
        pl.col("ts").dt.replace_time_zone("UTC"), pl.col("expected_end").dt.replace_time_zone("UTC")
    )
    return frame.sort("ts", maintain_order=True)


def artifacts() -> pl.DataFrame:
    """The artifact registry: every version's digest and expected feature version."""
    return pl.DataFrame(
        {
            "version": [v.name for v in S.VERSIONS],
            "artifact_hash": [v.artifact_hash for v in S.VERSIONS],
            "feature_version": [v.feature_version for v in S.VERSIONS],
            "created_at": [v.created_at for v in S.VERSIONS],
        },
        schema={"version": pl.String, "artifact_hash": pl.String, "feature_version": pl.String,
                "created_at": pl.Datetime("ms")},
    ).with_columns(pl.col("created_at").dt.replace_time_zone("UTC"))
