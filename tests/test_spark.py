"""--engine spark (issue #14): the Spark passes give the DuckDB engine's tables. One local session for the module."""
from __future__ import annotations

from pathlib import Path

import duckdb
import numpy as np
import pytest

pyspark = pytest.importorskip("pyspark")  # the `spark` extra; `make test` installs it and a Java runtime

from toolkit.engine.keys import md5_group_sql, model_hash_sql  # noqa: E402

pytestmark = pytest.mark.spark


@pytest.fixture(scope="session")
def spark():
    from pyspark.sql import SparkSession

    # local[1] and 4 shuffle partitions: CI machines have 2 cores shared with other jobs
    session = (SparkSession.builder.master("local[1]").config("spark.sql.shuffle.partitions", "4")
               .config("spark.sql.session.timeZone", "UTC").config("spark.ui.enabled", "false").getOrCreate())
    yield session
    session.stop()


def test_replicate_group_key_is_the_same_on_both_engines(spark):
    ids = [f"req-{i}" for i in range(2000)] + ["", "x" * 50, "é-ü"]
    con = duckdb.connect()
    con.execute("CREATE TABLE t(request_id VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[i] for i in ids])
    sql = f"SELECT request_id, {md5_group_sql('request_id', 'duckdb')} FROM t"
    on_duckdb = dict(con.execute(sql, [200]).fetchall())
    spark.createDataFrame([(i,) for i in ids], "request_id string").createOrReplaceTempView("t")
    rows = spark.sql(f"SELECT request_id, {md5_group_sql('request_id', 'spark')} FROM t", args=[200]).collect()
    assert {r[0]: r[1] for r in rows} == on_duckdb
    assert set(on_duckdb.values()) <= set(range(200)) and len(set(on_duckdb.values())) > 150


def test_model_sample_hash_is_the_same_on_both_engines(spark):
    ids = [f"req-{i}" for i in range(2000)] + ["", "é-ü"]
    con = duckdb.connect()
    con.execute("CREATE TABLE t(request_id VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[i] for i in ids])
    mod = 1_000_003
    on_duckdb = dict(con.execute(f"SELECT request_id, {model_hash_sql('request_id', 'duckdb')} FROM t",
                                 [mod]).fetchall())
    spark.createDataFrame([(i,) for i in ids], "request_id string").createOrReplaceTempView("t")
    rows = spark.sql(f"SELECT request_id, {model_hash_sql('request_id', 'spark')} FROM t", args=[mod]).collect()
    assert {r[0]: r[1] for r in rows} == on_duckdb
    groups = dict(con.execute(f"SELECT request_id, {md5_group_sql('request_id', 'duckdb')} FROM t", [mod]).fetchall())
    assert on_duckdb != groups  # the salt makes the sample independent of the replicate groups


DEMO = Path(__file__).resolve().parents[1] / "data" / "samples" / "demo"


@pytest.fixture(scope="module")
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


def assert_same_sums(a, b, rel: float = 1e-9) -> dict[str, float]:
    """Identical cells, versions and counts; sums and sums of squares within ``rel`` (relative)."""
    assert a.cells == b.cells and a.versions == b.versions and a.strata == b.strata
    assert a.n.shape == b.n.shape and np.array_equal(a.n, b.n)
    worst = {}
    for name in ("sy", "syy", "sz"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.shape == y.shape
        scale = np.maximum(np.abs(x), np.abs(y))
        err = np.where(scale > 0, np.abs(x - y) / np.where(scale > 0, scale, 1.0), 0.0)
        worst[name] = float(err.max()) if err.size else 0.0
        assert worst[name] <= rel, (name, worst[name])
    return worst


@pytest.mark.parametrize("metric,segments", [("rate:prediction=approved", False), ("mean:score", True)])
def test_cell_sums_on_spark_equal_duckdb_on_the_demo(spark, demo_store, metric, segments):
    from toolkit.attribution.api import _read, _stratum_sql
    from toolkit.attribution.metrics import parse_metric
    from toolkit.attribution.sums import cell_sums
    from toolkit.engine.spark import spark_cell_sums
    from toolkit.timeutil import parse_window

    from .test_attribution_helpers import BASELINE, COMPARISON

    store, parquet = demo_store
    con = store.con
    inputs = _read(con, parse_metric(metric), parse_window(BASELINE), parse_window(COMPARISON), None, None, 10,
                   None, [], False, segments)
    sel, design, routing = inputs.sel, inputs.design, list(inputs.routing_by)
    assert design.p > 0 and routing
    plain_duck = cell_sums(con, sel, design, routing)
    plain_spark = spark_cell_sums(spark, con, sel, design, routing, parquet)
    worst = assert_same_sums(plain_duck, plain_spark)
    assert plain_duck.n.sum() > 10_000 and len(plain_duck.cells) > 1
    if segments:
        assert any(not c.endswith(" #0") for c in plain_duck.cells)
    stratum = _stratum_sql(design, inputs.match_on)
    assert_same_sums(inputs.msums, spark_cell_sums(spark, con, sel, design, routing, parquet, stratum=stratum))
    print(metric, "rows", int(plain_duck.n.sum()), "cells", len(plain_duck.cells), "terms", design.p,
          "worst relative error", worst)


def test_filters_are_refused_on_spark_not_ignored(spark, demo_store):
    from dataclasses import replace

    from toolkit.attribution.api import _read
    from toolkit.attribution.metrics import parse_metric
    from toolkit.engine.spark import spark_cell_sums
    from toolkit.timeutil import parse_window

    from .test_attribution_helpers import BASELINE, COMPARISON

    store, parquet = demo_store
    inputs = _read(store.con, parse_metric("mean:score"), parse_window(BASELINE), parse_window(COMPARISON), None,
                   None, 10, None, [], False, False)
    sel = replace(inputs.sel, where=(("region", "eu"),))
    with pytest.raises(NotImplementedError, match="filters"):
        spark_cell_sums(spark, store.con, sel, inputs.design, list(inputs.routing_by), parquet)
