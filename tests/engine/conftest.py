"""Fixtures of the Spark engine tests: one local Spark session, the demo store and a million-row store."""
from __future__ import annotations

from pathlib import Path

import pytest

DEMO = Path(__file__).resolve().parents[2] / "data" / "samples" / "demo"


@pytest.fixture(scope="session")
def spark():
    """One local Spark session for every Spark test (start-up is the slow part)."""
    pytest.importorskip("pyspark")
    from pyspark.sql import SparkSession

    # local[1] and 4 shuffle partitions: CI machines have 2 cores shared with other jobs
    session = (SparkSession.builder.master("local[1]").config("spark.sql.shuffle.partitions", "4")
               .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false").getOrCreate())
    yield session
    session.stop()


@pytest.fixture(scope="session")
def demo_store(tmp_path_factory):
    """The demo sample ingested into a temporary store, and its resolved rows as Parquet for Spark."""
    from toolkit import Store
    from toolkit.engine.spark import export_resolved

    if not (DEMO / "predictions.csv.gz").exists():
        pytest.skip("committed demo sample missing")
    tmp = tmp_path_factory.mktemp("spark_demo")
    with Store(tmp / "demo.duckdb") as store:
        store.ingest("predictions", [DEMO / "predictions.csv.gz"])
        store.ingest("artifacts", [DEMO / "artifacts.csv"])
        store.ingest("deployments", [DEMO / "deployments.jsonl"])
        yield store, export_resolved(store.con, tmp / "resolved.parquet")


@pytest.fixture(scope="session")
def million_store():
    """A generated log of one million requests (all scenarios, seed 7), in memory."""
    from toolkit.samples import load_simulation, simulate

    sim = simulate(["all"], rows=1_000_000, seed=7)
    with load_simulation(sim) as store:
        yield store
