"""Build small stores by hand for the attribution tests (no ingest needed)."""

from __future__ import annotations

import datetime as dt
from typing import Iterable

import polars as pl

from toolkit import Store

BASELINE = "2026-11-02..2026-11-09"
COMPARISON = "2026-11-09..2026-11-16"
_START = {0: dt.datetime(2026, 11, 2), 1: dt.datetime(2026, 11, 9)}


def make_store(cells: Iterable[dict], covariates: dict[str, str] | None = None) -> Store:
    """An in-memory store whose rows reproduce the given cells exactly.

    Each cell: ``period`` (0/1), ``version``, ``n`` rows of which ``k`` are
    approved, optional covariate values (``region`` or any name in
    ``covariates``: name -> DuckDB type), optional ``score`` (same for all
    rows) or ``values`` (one per row, for a numeric covariate named in
    ``values_of``).
    """
    covariates = covariates or {}
    store = Store(":memory:")
    for name, typ in covariates.items():
        store.con.execute(f'ALTER TABLE predictions ADD COLUMN "{name}" {typ}')
        store.con.execute("INSERT INTO covariates VALUES (?, ?, 1)", [name, typ])
    store.refresh_views()
    rows = []
    i = 0
    for cell in cells:
        for j in range(cell["n"]):
            row = {
                "request_id": f"r{i}",
                "ts": _START[cell["period"]] + dt.timedelta(minutes=i % 9000),
                "model_version": cell["version"],
                "prediction": "approved" if j < cell.get("k", 0) else "declined",
                "score": float(cell.get("score", 0.0)),
                "region": cell.get("region"),
                "component": cell.get("component", "online"),
                "ingest_id": 1,
            }
            for name in covariates:
                vals = cell.get("values", {}).get(name)
                row[name] = vals[j] if vals is not None else cell.get(name)
            rows.append(row)
            i += 1
    frame = pl.DataFrame(rows)
    store.con.register("_rows", frame.to_arrow())
    store.con.execute("INSERT INTO predictions BY NAME SELECT * FROM _rows")
    store.con.unregister("_rows")
    return store


def load_simulation(sim) -> Store:
    """An in-memory store holding a :func:`toolkit.samples.simulate` result.

    Rows are inserted directly (the ingest path is tested elsewhere); the
    covariate columns and the artifact registry are declared as ingest would.
    """
    store = Store(":memory:")
    con = store.con
    contract = set(store.columns("predictions"))
    preds = sim.predictions.with_columns(
        [pl.col(c).cast(pl.String) for c, t in sim.predictions.schema.items() if isinstance(t, pl.Enum)]
    ).with_columns(pl.col("ts").dt.replace_time_zone(None), pl.lit(1).alias("ingest_id"))
    for cov in sim.ground_truth.covariates:
        con.execute(f'ALTER TABLE predictions ADD COLUMN "{cov["name"]}" {cov["type"]}')
        con.execute("INSERT INTO covariates VALUES (?, ?, 1)", [cov["name"], cov["type"]])
    store.refresh_views()
    keep = [c for c in preds.columns if c in contract or c in {x["name"] for x in sim.ground_truth.covariates}]
    con.register("_p", preds.select(keep).to_arrow())
    con.execute("INSERT INTO predictions BY NAME SELECT * FROM _p")
    con.unregister("_p")
    arts = sim.artifacts.with_columns(
        [pl.col(c).cast(pl.String) for c, t in sim.artifacts.schema.items() if isinstance(t, pl.Enum)]
    )
    if "created_at" in arts.columns and getattr(arts.schema["created_at"], "time_zone", None):
        arts = arts.with_columns(pl.col("created_at").dt.replace_time_zone(None))
    arts = arts.with_columns(pl.lit(2).alias("ingest_id"))
    con.register("_a", arts.select([c for c in arts.columns if c in set(store.columns("artifacts"))]).to_arrow())
    con.execute("INSERT INTO artifacts BY NAME SELECT * FROM _a")
    con.unregister("_a")
    return store
