"""--engine spark (issue #14): the Spark passes give the DuckDB engine's tables. One local session for the module."""
from __future__ import annotations


import hashlib

import duckdb
import numpy as np
import pytest

pyspark = pytest.importorskip("pyspark")  # the `spark` extra; `make test` installs it and a Java runtime

from toolkit.engine.keys import SAMPLE_KEYS, group_sql, request_key_sql, sample_key_sql  # noqa: E402

pytestmark = pytest.mark.spark

IDS = [f"req-{i}" for i in range(2000)] + ["", "x" * 50, "é-ü"]


def _both(spark, select, params: list) -> tuple[dict, dict]:
    """``select(key_sql, dialect)`` over IDS on DuckDB and on Spark: {request id: value} of each."""
    con = duckdb.connect()
    con.execute("CREATE TABLE t(request_id VARCHAR)")
    con.executemany("INSERT INTO t VALUES (?)", [[i] for i in IDS])
    on_duckdb = dict(con.execute(f"SELECT request_id, {select(request_key_sql('request_id', 'duckdb'), 'duckdb')} "
                                 "FROM t", params).fetchall())
    spark.createDataFrame([(i,) for i in IDS], "request_id string").createOrReplaceTempView("t")
    rows = spark.sql(f"SELECT request_id, {select(request_key_sql('request_id', 'spark'), 'spark')} FROM t",
                     args=params).collect()
    return on_duckdb, {r[0]: r[1] for r in rows}


def test_request_key_is_the_same_on_both_engines(spark):
    on_duckdb, on_spark = _both(spark, lambda key, dialect: key, [])
    assert on_spark == on_duckdb
    # the md5's first 8 hex digits as an unsigned 32-bit integer
    assert on_duckdb["req-0"] == int(hashlib.md5(b"req-0").hexdigest()[:8], 16)


def test_replicate_group_key_is_the_same_on_both_engines(spark):
    on_duckdb, on_spark = _both(spark, group_sql, [64])
    assert on_spark == on_duckdb
    assert set(on_duckdb.values()) == set(range(64))


def test_model_sample_key_is_the_same_on_both_engines(spark):
    on_duckdb, on_spark = _both(spark, sample_key_sql, [])
    assert on_spark == on_duckdb
    assert set(on_duckdb.values()) <= set(range(SAMPLE_KEYS)) and len(set(on_duckdb.values())) > 1990
    groups = _both(spark, group_sql, [64])[0]
    # the sample reads the bits above the group's: within each group its keys spread over the whole range
    for g in range(4):
        keys = [on_duckdb[i] for i in IDS if groups[i] == g]
        assert min(keys) < SAMPLE_KEYS // 4 and max(keys) > 3 * SAMPLE_KEYS // 4


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

    from tests.attribution.test_attribution_helpers import BASELINE, COMPARISON

    store, parquet = demo_store
    con = store.con
    inputs = _read(con, parse_metric(metric), parse_window(BASELINE), parse_window(COMPARISON), None, None, 10,
                   None, [], False, segments)
    sel, design, routing = inputs.sel, inputs.design, list(inputs.routing_by)
    assert design.p > 0 and routing
    # the demo's experiment arms are sticky: its experiment rows' groups hash entity_id on both engines
    assert inputs.arms.sticky
    plain_duck = cell_sums(con, sel, design, routing, sticky=True)
    plain_spark = spark_cell_sums(spark, con, sel, design, routing, parquet, sticky=True)
    worst = assert_same_sums(plain_duck, plain_spark)
    assert not np.array_equal(plain_duck.n, cell_sums(con, sel, design, routing).n)
    assert plain_duck.n.sum() > 10_000 and len(plain_duck.cells) > 1
    if segments:
        assert any(not c.endswith(" #0") for c in plain_duck.cells)
    stratum = _stratum_sql(design, inputs.match_on)
    assert_same_sums(inputs.msums, spark_cell_sums(spark, con, sel, design, routing, parquet, stratum=stratum,
                                                   sticky=True))
    print(metric, "rows", int(plain_duck.n.sum()), "cells", len(plain_duck.cells), "terms", design.p,
          "worst relative error", worst)


def test_filtered_cell_sums_on_spark_equal_duckdb(spark, demo_store):
    from dataclasses import replace

    from toolkit.attribution.api import _read
    from toolkit.attribution.metrics import parse_metric
    from toolkit.attribution.sums import cell_sums
    from toolkit.engine.spark import spark_cell_sums
    from toolkit.timeutil import parse_window

    from tests.attribution.test_attribution_helpers import BASELINE, COMPARISON

    store, parquet = demo_store
    inputs = _read(store.con, parse_metric("mean:score"), parse_window(BASELINE), parse_window(COMPARISON), None,
                   None, 10, None, [], False, False)
    sel = replace(inputs.sel, where=(("region", "eu"),))
    duck = cell_sums(store.con, sel, inputs.design, list(inputs.routing_by))
    assert duck.n.sum() > 0 and all(c.startswith("eu") for c in duck.cells)
    assert_same_sums(duck, spark_cell_sums(spark, store.con, sel, inputs.design, list(inputs.routing_by), parquet))


def _md5_groups(frame) -> str:
    """md5 of the rounded (method, component, estimate, ci_low, ci_high) rows: one digest per table."""
    import hashlib

    rows = [(m, c, f"{e:.9g}", f"{lo:.9g}", f"{hi:.9g}") for m, c, e, lo, hi in
            frame.select("method", "component", "estimate", "ci_low", "ci_high").iter_rows()]
    return hashlib.md5(repr(rows).encode()).hexdigest()


@pytest.mark.parametrize("metric", ["rate:prediction=approved", "mean:score"])
def test_attribute_on_spark_equals_duckdb_on_the_demo(spark, demo_store, metric, monkeypatch):
    from toolkit import attribute
    from toolkit.engine import run as run_mod
    from toolkit.engine import spark as sp

    from tests.attribution.test_attribution_helpers import BASELINE, COMPARISON

    store, _ = demo_store
    kw = dict(method="all", n_boot=100, seed=0)
    duck = attribute(store, metric, BASELINE, COMPARISON, **kw)
    # every row-level pass goes to Spark: count the queries each runner gets
    seen: dict[str, list[str]] = {"spark": [], "duckdb": []}
    spark_frame, duck_frame = sp.SparkRunner.frame, run_mod.DuckRunner.frame
    monkeypatch.setattr(sp.SparkRunner, "frame", lambda self, q, p: seen["spark"].append(q) or spark_frame(self, q, p))
    monkeypatch.setattr(run_mod.DuckRunner, "frame", lambda self, q, p: seen["duckdb"].append(q) or duck_frame(self, q, p))
    on_spark = attribute(store, metric, BASELINE, COMPARISON, engine="spark", spark=spark, **kw)
    assert not seen["duckdb"] and len(seen["spark"]) >= 5
    joined = " ".join(seen["spark"])
    assert "GROUPING SETS" in joined and "avg(" in joined and " AS grp" in joined and " AS h" in joined
    a, b = duck.frame, on_spark.frame
    assert a.select("method", "component").equals(b.select("method", "component"))
    worst = 0.0
    for col in ("estimate", "ci_low", "ci_high"):
        x, y = a[col].to_numpy(), b[col].to_numpy()
        worst = max(worst, float(np.max(np.abs(x - y))))
        np.testing.assert_allclose(y, x, rtol=0, atol=1e-9)
    assert _md5_groups(a) == _md5_groups(b)
    assert duck.rows == on_spark.rows and duck.observed == pytest.approx(on_spark.observed, abs=1e-12)
    assert duck.diagnostics.headline == on_spark.diagnostics.headline
    assert duck.feature_drift.equals(on_spark.feature_drift) or \
        np.allclose(duck.feature_drift["psi"].to_numpy(), on_spark.feature_drift["psi"].to_numpy(), equal_nan=True)
    print(metric, "worst absolute difference (estimate, ci_low, ci_high)", worst)


def test_cli_engine_spark_prints_the_duckdb_headline(spark, demo_store, capsys, monkeypatch, tmp_path):
    import shutil

    from toolkit.cli import main

    from tests.attribution.test_attribution_helpers import BASELINE, COMPARISON

    store, _ = demo_store
    monkeypatch.delenv("SPARK_REMOTE", raising=False)  # the engine takes the shared session (getOrCreate)
    # the CLI opens its store read-only; DuckDB refuses a second configuration of a file open in the process
    store.con.execute("CHECKPOINT")
    path = tmp_path / "copy.duckdb"
    shutil.copyfile(store.path, path)
    args = ["attribute", "--db", str(path), "--metric", "rate:prediction=approved", "--baseline", BASELINE,
            "--comparison", COMPARISON, "--bootstrap", "50"]
    outs = []
    for engine in ("duckdb", "spark"):
        assert main([*args, "--engine", engine]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and outs[0].strip()


def test_engine_is_checked():
    from toolkit import attribute
    from toolkit.errors import InputError

    with pytest.raises(InputError, match="engine 'polars'.*duckdb, spark"):
        attribute(":memory:", "mean:score", "2024-01-01..2024-01-02", "2024-01-02..2024-01-03",
                  engine="polars")  # type: ignore[arg-type]


def test_a_session_that_cannot_start_is_a_vdrift_error(demo_store, tmp_path):
    """No Java runtime (JAVA_HOME points nowhere): exit code 1 and a vdrift: line saying what to install."""
    import os
    import shutil
    import subprocess
    import sys

    store, _ = demo_store
    store.con.execute("CHECKPOINT")
    path = tmp_path / "copy.duckdb"
    shutil.copyfile(store.path, path)
    env = {k: v for k, v in os.environ.items() if k not in ("SPARK_REMOTE", "PYSPARK_SUBMIT_ARGS")}
    env["JAVA_HOME"] = str(tmp_path / "no-java")
    proc = subprocess.run([sys.executable, "-m", "toolkit.cli", "audit", "--db", str(path), "--from", "2026-11-09",
                           "--to", "2026-11-10", "--engine", "spark"], env=env, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 1, proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("vdrift: ") and "could not start a local Spark session" in last and "Java" in last
    assert "Traceback" not in proc.stderr


def test_engine_objects_are_checked():
    import toolkit
    from toolkit.errors import InputError

    session = object()  # stands for a SparkSession: only its identity matters here
    assert toolkit.Engine() == toolkit.Engine("duckdb") and toolkit.Engine("spark").spark is None
    with pytest.raises(InputError, match="engine 'polars'"):
        toolkit.Engine("polars")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="with engine 'duckdb'"):
        toolkit.Engine("duckdb", session)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="either in the Engine or as spark="):
        toolkit.Engine.of(toolkit.Engine("spark", session), object())  # type: ignore[arg-type]
    with pytest.raises(InputError, match="engine 'polars'"):
        toolkit.Store(":memory:", engine="polars")
    with toolkit.Store(":memory:", engine="spark", spark=session) as store:  # type: ignore[arg-type]
        assert store.engine == toolkit.Engine("spark", session)  # type: ignore[arg-type]


def test_missing_pyspark_says_how_to_install(monkeypatch):
    import sys

    from toolkit.engine.spark import default_session
    from toolkit.errors import InputError

    monkeypatch.setitem(sys.modules, "pyspark.sql", None)  # import pyspark.sql then raises ImportError
    with pytest.raises(InputError, match=r"pip install 'vdrift\[spark\]'"):
        default_session()


def test_rounded_profile_on_spark_equals_duckdb(spark, demo_store):
    """The two-scan profile of covariates with very many distinct values (forced by a low threshold)."""
    from toolkit.attribution.metrics import parse_metric
    from toolkit.attribution.profile import profile_covariates
    from toolkit.attribution.rows import default_covariates
    from toolkit.engine.spark import spark_rows
    from toolkit.timeutil import parse_window

    from tests.attribution.test_attribution_helpers import BASELINE, COMPARISON

    store, parquet = demo_store
    args = (store.con, parse_metric("mean:score"), parse_window(BASELINE), parse_window(COMPARISON),
            default_covariates(store.con, [parse_window(BASELINE), parse_window(COMPARISON)]))
    duck = profile_covariates(*args, bins=[4, 5, 10], exact_max_distinct=10)
    with spark_rows(spark, parquet) as run:
        on_spark = profile_covariates(*args, bins=[4, 5, 10], exact_max_distinct=10, run=run)
    rounded = [n for n, p in duck.numeric.items() if p.digits is not None]
    assert rounded, "no covariate took the rounded path"
    assert duck.levels == on_spark.levels and duck.version_rows == on_spark.version_rows
    assert duck.excluded.equals(on_spark.excluded)
    for name, p in duck.numeric.items():
        q = on_spark.numeric[name]
        assert p.digits == q.digits and p.min_all == q.min_all and p.min_rows == q.min_rows
        for k in (4, 5, 10):
            assert duck.quantiles(name, k, rows=True) == on_spark.quantiles(name, k, rows=True), (name, k)
        assert p.counts is not None and q.counts is not None
        key = ["version", "period", "x", "at"]
        a = p.counts.select(*key, "c").sort(key)
        b = q.counts.select(*key, "c").sort(key)
        assert a.equals(b), name


def test_attribute_on_spark_equals_duckdb_on_a_million_rows(spark, million_store, monkeypatch):
    """Every row-level pass of the attribution at 1M rows: same cells, profile, estimates and intervals."""
    from toolkit import attribute
    from toolkit.engine import run as run_mod

    from tests.attribution.test_attribution_helpers import BASELINE, COMPARISON

    store = million_store
    rows = store.con.execute("SELECT count(*) FROM predictions").fetchone()[0]
    assert rows >= 1_000_000
    kw = dict(method="all", n_boot=20, seed=0)
    duck = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, **kw)
    seen: list[str] = []
    duck_frame = run_mod.DuckRunner.frame
    monkeypatch.setattr(run_mod.DuckRunner, "frame", lambda self, q, p: seen.append(q) or duck_frame(self, q, p))
    on_spark = attribute(store, "rate:prediction=approved", BASELINE, COMPARISON, engine="spark", spark=spark, **kw)
    assert not seen  # no row-level pass ran on DuckDB
    assert duck.rows == on_spark.rows and sum(duck.rows) > 900_000
    assert duck.cells.columns == on_spark.cells.columns and duck.cells.height == on_spark.cells.height > 0
    for name in duck.cells.columns:
        x, y = duck.cells[name], on_spark.cells[name]
        if x.dtype.is_float():
            np.testing.assert_allclose(y.to_numpy(), x.to_numpy(), rtol=1e-9, atol=1e-12, equal_nan=True)
        else:
            assert x.equals(y), name
    a, b = duck.frame, on_spark.frame
    assert a.select("method", "component").equals(b.select("method", "component"))
    for col in ("estimate", "ci_low", "ci_high"):
        np.testing.assert_allclose(b[col].to_numpy(), a[col].to_numpy(), rtol=0, atol=1e-9)
    assert _md5_groups(a) == _md5_groups(b)
    assert duck.diagnostics.headline == on_spark.diagnostics.headline
    np.testing.assert_allclose(on_spark.feature_drift["psi"].to_numpy(), duck.feature_drift["psi"].to_numpy(),
                               rtol=1e-9, equal_nan=True)


def test_attribute_on_the_row_path_of_spark_3_5_equals_duckdb(spark, demo_store, monkeypatch):
    """pyspark 3.5 has no DataFrame.toArrow: results then come back as rows; the split must not change."""
    from pyspark.sql import DataFrame

    from toolkit import attribute

    from tests.attribution.test_attribution_helpers import BASELINE, COMPARISON

    store, _ = demo_store
    kw = dict(method="all", n_boot=20, seed=0)
    duck = attribute(store, "mean:score", BASELINE, COMPARISON, **kw)
    monkeypatch.delattr(DataFrame, "toArrow")
    assert not hasattr(DataFrame, "toArrow")
    on_rows = attribute(store, "mean:score", BASELINE, COMPARISON, engine="spark", spark=spark, **kw)
    a, b = duck.frame, on_rows.frame
    assert a.select("method", "component").equals(b.select("method", "component"))
    for col in ("estimate", "ci_low", "ci_high"):
        np.testing.assert_allclose(b[col].to_numpy(), a[col].to_numpy(), rtol=0, atol=1e-9)
    assert duck.diagnostics.headline == on_rows.diagnostics.headline


def test_row_path_keeps_the_column_types_of_the_arrow_path(spark, monkeypatch):
    from pyspark.sql import DataFrame

    from toolkit.engine.spark import _to_polars

    sql = ("SELECT CAST(1 AS BIGINT) AS n, CAST(2.5 AS DOUBLE) AS s, 'a' AS c, CAST(3 AS INT) AS g, "
           "TRUE AS b")
    for where in ("", " WHERE false"):
        df = spark.sql(sql + where)
        arrow = _to_polars(df)
        with monkeypatch.context() as m:
            m.delattr(DataFrame, "toArrow")
            rows = _to_polars(df)
        assert rows.schema == arrow.schema, (where, rows.schema, arrow.schema)
        assert rows.height == arrow.height == (0 if where else 1)
        if not where:
            assert rows.row(0) == arrow.row(0)
