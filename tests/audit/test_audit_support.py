"""Builders for hand-made audit stores (imported by the other test_audit* files).

Rows are inserted directly into the store's tables (``ingest_id`` 0), so each
test states its whole world: registry, deployment history and traffic.
"""

from __future__ import annotations

import datetime as dt
import itertools
from typing import Any
from collections.abc import Iterable

import polars as pl

from toolkit import Store
from toolkit.store.schema import REQUEST_KEY_SQL

T0 = dt.datetime(2026, 11, 2)
_ids = itertools.count()


def t(hours: float) -> dt.datetime:
    """T0 plus ``hours``."""
    return T0 + dt.timedelta(hours=hours)


def digest(version: str) -> str:
    return f"sha256-{version}-0123456789abcdef"


def new_store(versions: Iterable[tuple[str, str]] = (("v1", "fp-1"), ("v2", "fp-2"))) -> Store:
    """An in-memory store with the given (version, feature_version) registry."""
    store = Store(":memory:")
    insert(store, "artifacts", [
        {"version": v, "artifact_hash": digest(v), "feature_version": fv, "created_at": T0 - dt.timedelta(days=30)}
        for v, fv in versions
    ])
    return store


def insert(store: Store, table: str, rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    frame = pl.DataFrame([{**r, "ingest_id": 0} for r in rows], infer_schema_length=None)
    store.con.register("_test_rows", frame.to_arrow())
    try:
        key = f", {REQUEST_KEY_SQL} AS request_key" if table == "predictions" else ""
        store.con.execute(f"INSERT INTO {table} BY NAME SELECT *{key} FROM _test_rows")
    finally:
        store.con.unregister("_test_rows")


def deploy(store: Store, rows: list[dict[str, Any]]) -> None:
    """Insert deployment events; every row needs ts, event, and usually version."""
    full = []
    for r in rows:
        full.append({"component": "serving", "scope": "all", "version": None, "traffic_pct": None,
                     "expected_end": None, "actor": None, "experiment": None, **r})
    insert(store, "deployments", full)


def traffic(
    start: float,
    end: float,
    *,
    every_min: float = 10.0,
    version: str = "v1",
    reported: str | None = None,
    artifact: str | None = "registered",
    component: str = "online",
    region: str = "eu",
    instance: str = "eu-1",
    feature_version: str | None = None,
    prediction: str = "approve",
    entity: str | None = None,
    cache_hit: bool | None = None,
    request_prefix: str | None = None,
    experiment: str | None = None,
    arm: str | None = None,
) -> list[dict[str, Any]]:
    """Requests every ``every_min`` minutes in ``[t(start), t(end))``.

    ``artifact="registered"`` logs the registered digest of ``version``;
    ``None`` logs no digest; any other text is logged as the digest.
    """
    rows = []
    step = dt.timedelta(minutes=every_min)
    ts, stop = t(start), t(end)
    prefix = request_prefix or f"r{next(_ids)}"
    i = 0
    while ts < stop:
        rows.append({
            "request_id": f"{prefix}-{i}",
            "ts": ts,
            "model_version": reported or version,
            "prediction": prediction,
            "artifact_hash": digest(version) if artifact == "registered" else artifact,
            "feature_version": feature_version,
            "component": component,
            "cache_hit": cache_hit,
            "region": region,
            "instance_id": instance,
            "entity_id": entity,
            "experiment": experiment,
            "arm": arm,
        })
        ts += step
        i += 1
    return rows


def predictions(store: Store, *batches: list[dict[str, Any]]) -> None:
    insert(store, "predictions", [r for batch in batches for r in batch])
