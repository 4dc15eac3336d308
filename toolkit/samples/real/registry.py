"""A case's deployment history and artifact registry, as the contract's frames."""

from __future__ import annotations

from typing import Any
from collections.abc import Mapping

import polars as pl

from ..history import DEPLOYMENT_SCHEMA
from .cases import utc
from .routing import plan_of

_MODEL_COMPONENTS = ("serving", "cache", "batch")


def version_hashes(case: Mapping[str, Any]) -> dict[str, str]:
    """Each version's artifact sha256, by version name."""
    return {v["name"]: v["artifact_hash"] for v in case["versions"]}


def deployments_frame(case: Mapping[str, Any]) -> pl.DataFrame:
    """The deployment history of the case's routing plan (the contract's columns)."""
    hashes = version_hashes(case)
    rows = []
    for ev in plan_of(case).events:
        model = ev["component"] in _MODEL_COMPONENTS and ev.get("version") in hashes
        rows.append({
            "ts": utc(ev["ts"]),
            "component": ev["component"],
            "scope": ev["scope"],
            "event": ev["event"],
            "version": ev.get("version"),
            "artifact_hash": hashes[ev["version"]] if model else None,
            "traffic_pct": ev.get("traffic_pct"),
            "expected_end": utc(ev["expected_end"]) if ev.get("expected_end") else None,
            "actor": ev.get("actor"),
            "experiment": ev.get("experiment"),
            "note": ev.get("note"),
        })
    frame = pl.DataFrame(rows, schema={**DEPLOYMENT_SCHEMA, "ts": pl.Datetime("ms"),
                                       "expected_end": pl.Datetime("ms")})
    return frame.with_columns(pl.col("ts").dt.replace_time_zone("UTC"),
                              pl.col("expected_end").dt.replace_time_zone("UTC"))


def artifacts_frame(case: Mapping[str, Any]) -> pl.DataFrame:
    """The artifact registry: each version's sha256 and the feature version it expects."""
    created = case["routing"].get("artifacts_created_at", {})
    fv = case["routing"].get("feature_version")
    names = [v["name"] for v in case["versions"]]
    return pl.DataFrame(
        {
            "version": names,
            "artifact_hash": [v["artifact_hash"] for v in case["versions"]],
            "feature_version": [fv] * len(names),
            "created_at": [utc(created[n]) if n in created else None for n in names],
        },
        schema={"version": pl.String, "artifact_hash": pl.String, "feature_version": pl.String,
                "created_at": pl.Datetime("ms")},
    ).with_columns(pl.col("created_at").dt.replace_time_zone("UTC"))
