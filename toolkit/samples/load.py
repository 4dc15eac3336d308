"""Put a :func:`~toolkit.samples.simulate` result straight into a store.

For tests, notebooks and calibration runs that need many simulated stores
quickly: rows are inserted directly (bypassing file parsing), and the
covariate columns and artifact registry are declared as ingest would declare
them, so every analysis sees the same store an ingest of the files gives.
"""

from __future__ import annotations

import os

import polars as pl

from ..engine.keys import REQUEST_KEY
from ..sqlutil import quote_ident
from ..store.schema import REQUEST_KEY_SQL
from ..store import Store
from .simulate import Simulation


def _plain(frame: pl.DataFrame) -> pl.DataFrame:
    """Enums as text and timestamps as naive UTC, the store's representation."""
    frame = frame.with_columns([pl.col(c).cast(pl.String) for c, t in frame.schema.items() if isinstance(t, pl.Enum)])
    return frame.with_columns(
        [pl.col(c).dt.replace_time_zone(None) for c, t in frame.schema.items()
         if isinstance(t, pl.Datetime) and t.time_zone is not None]
    )


def load_simulation(sim: Simulation, path: str | os.PathLike = ":memory:") -> Store:
    """A store (in memory by default) holding ``sim``'s predictions, registry and deployment history.

    Returns
    -------
    Store
        Open; the caller closes it (it is a context manager).
    """
    store = Store(path)
    con = store.con
    covariates = sim.ground_truth.covariates
    for cov in covariates:
        con.execute(f"ALTER TABLE predictions ADD COLUMN {quote_ident(cov['name'])} {cov['type']}")
        con.execute("INSERT INTO covariates VALUES (?, ?, 1)", [cov["name"], cov["type"]])
    store.refresh_views()
    for table, frame, ingest_id in (("predictions", sim.predictions, 1), ("artifacts", sim.artifacts, 2),
                                    ("deployments", sim.deployments, 3)):
        keep = set(store.columns(table)) | {c["name"] for c in covariates if table == "predictions"}
        frame = _plain(frame).with_columns(pl.lit(ingest_id).alias("ingest_id"))
        con.register("_vd_sim", frame.select([c for c in frame.columns if c in keep]).to_arrow())
        key = f", {REQUEST_KEY_SQL} AS {quote_ident(REQUEST_KEY)}" if table == "predictions" else ""
        con.execute(f"INSERT INTO {quote_ident(table)} BY NAME SELECT *{key} FROM _vd_sim")
        con.unregister("_vd_sim")
    return store
