"""Build small stores by hand for the attribution tests (no ingest needed)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable

import polars as pl

from toolkit.samples import load_simulation as _load_simulation

from toolkit import Store
from toolkit.store.schema import REQUEST_KEY_SQL

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
    store.con.execute(f"INSERT INTO predictions BY NAME SELECT *, {REQUEST_KEY_SQL} AS request_key FROM _rows")
    store.con.unregister("_rows")
    return store


def load_simulation(sim) -> Store:
    """An in-memory store holding a :func:`toolkit.samples.simulate` result."""
    return _load_simulation(sim)
