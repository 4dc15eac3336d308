"""The audit and explain on Spark (issue #14): the same census, findings and causes as on DuckDB.

Every pass over the rows must run on Spark. The strongest check: run the Spark
engine against a copy of the store whose predictions are deleted, handing Spark
the full rows. Any pass that still read the rows in DuckDB would see nothing,
and its part of the result would differ from the full DuckDB run.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from polars.testing import assert_frame_equal

pytest.importorskip("pyspark")  # the `spark` extra; `make test` installs it and a Java runtime

from tests.attribution.test_attribution_helpers import BASELINE, COMPARISON  # noqa: E402

pytestmark = pytest.mark.spark

METRIC = "rate:prediction=approved"


@pytest.fixture(scope="module")
def rowless_copy(demo_store, tmp_path_factory):
    """A copy of the demo store without its predictions."""
    from toolkit import Store

    store, _ = demo_store
    store.con.execute("CHECKPOINT")
    path = Path(tmp_path_factory.mktemp("rowless")) / "rowless.duckdb"
    shutil.copyfile(store.path, path)
    with Store(path) as copy:
        copy.con.execute("DELETE FROM predictions")
    return path


@pytest.fixture(scope="module")
def full_rows(demo_store, tmp_path_factory):
    """Every row of the demo store as the Spark engine exports them (unresolved, times as instants)."""
    from toolkit.engine.spark import export_predictions

    return export_predictions(demo_store[0].con, tmp_path_factory.mktemp("full") / "predictions.parquet")


@pytest.fixture()
def rowless(rowless_copy, full_rows, monkeypatch):
    """The row-less copy; the Spark engine's export hands Spark the full demo rows instead."""
    from toolkit.engine import spark as sp

    monkeypatch.setattr(sp, "export_predictions", lambda con, out, span=None: Path(shutil.copyfile(full_rows, out)))
    return rowless_copy


def test_audit_on_spark_equals_duckdb_without_reading_rows_in_duckdb(spark, demo_store, rowless):
    from toolkit import audit
    from toolkit.errors import NotApplicable

    store, _ = demo_store
    window = f"{BASELINE.split('..')[0]}..{COMPARISON.split('..')[1]}"
    duck = audit(store, window=window)
    with pytest.raises(NotApplicable):  # the copy really has no rows for DuckDB
        audit(rowless, window=window)
    on_spark = audit(rowless, window=window, engine="spark", spark=spark)
    assert duck.census.height > 100 and duck.findings.height >= 10
    assert_frame_equal(duck.census, on_spark.census)
    assert_frame_equal(duck.intended, on_spark.intended)
    assert_frame_equal(duck.findings, on_spark.findings)  # kinds, scopes, times, shares, examples, ids
    assert_frame_equal(duck.consistency, on_spark.consistency)
    assert duck.summary() == on_spark.summary()
    kinds = set(duck.findings["kind"])
    # the detectors that read rows themselves (not the cells) found something, so they are compared too
    assert "prediction_divergence" in kinds
    div = duck.findings.filter(duck.findings["kind"] == "prediction_divergence")
    assert {json.loads(e)["source"] for e in div["evidence"]} == {"shadow", "repeated_inputs"}


def test_examples_are_the_earliest_by_time_then_id_on_both_engines(spark, demo_store):
    """A finding's example request ids: the same on either engine, and the earliest by (time, id)."""
    from toolkit import audit

    store, _ = demo_store
    duck = audit(store, window=f"{BASELINE.split('..')[0]}..{COMPARISON.split('..')[1]}")
    on_spark = audit(store, window=f"{BASELINE.split('..')[0]}..{COMPARISON.split('..')[1]}", engine="spark",
                     spark=spark)
    assert duck.findings["examples"].to_list() == on_spark.findings["examples"].to_list()
    # (divergence findings list the differing answers first, then by time: their order is checked by equality only)
    with_examples = duck.findings.filter((duck.findings["examples"].list.len() > 1)
                                         & (duck.findings["kind"] != "prediction_divergence"))
    assert with_examples.height >= 5
    ids = [i for ex in with_examples["examples"] for i in ex]
    times = dict(store.con.execute("SELECT request_id, ts FROM predictions WHERE list_contains(?, request_id)",
                                   [ids]).fetchall())
    for ex in with_examples["examples"]:
        keys = [(times[i], i) for i in ex if i in times]
        assert keys == sorted(keys)


def test_explain_on_spark_equals_duckdb_without_reading_rows_in_duckdb(spark, demo_store, rowless, monkeypatch):
    from toolkit import explain
    from toolkit.engine import spark as sp

    store, _ = demo_store
    exports: list[Path] = []
    patched = sp.export_predictions  # the rowless fixture's copy of the full rows
    monkeypatch.setattr(sp, "export_predictions",
                        lambda con, out, span=None: exports.append(out) or patched(con, out, span))
    kw = dict(baseline=BASELINE, n_boot=50, seed=0)
    duck = explain(store, METRIC, COMPARISON, **kw)
    on_spark = explain(rowless, METRIC, COMPARISON, engine="spark", spark=spark, **kw)
    assert len(exports) == 1  # the attribution, both audits and the hourly series share one export
    assert duck.causes.height >= 3
    assert_frame_equal(duck.causes, on_spark.causes, check_exact=False, rtol=0, atol=1e-9)
    assert_frame_equal(duck.window_costs, on_spark.window_costs, check_exact=False, rtol=0, atol=1e-9)
    assert_frame_equal(duck.breakdown, on_spark.breakdown, check_exact=False, rtol=0, atol=1e-9)
    assert_frame_equal(duck.change_points, on_spark.change_points, check_exact=False, rtol=0, atol=1e-9)
    assert duck.change_points.height > 0
    assert duck.summary() == on_spark.summary()


@pytest.mark.parametrize("command", ["audit", "explain"])
def test_cli_engine_spark_prints_the_duckdb_output(spark, demo_store, capsys, monkeypatch, tmp_path, command):
    from toolkit.cli import main

    store, _ = demo_store
    monkeypatch.delenv("SPARK_REMOTE", raising=False)  # the engine takes the shared session (getOrCreate)
    store.con.execute("CHECKPOINT")
    path = tmp_path / "copy.duckdb"
    shutil.copyfile(store.path, path)
    if command == "audit":
        args = ["audit", "--db", str(path), "--from", "2026-11-09", "--to", "2026-11-16"]
    else:  # one window: this week's off-intent cost (the two-window explain is compared above, in Python)
        args = ["explain", "--db", str(path), "--metric", METRIC, "--comparison", COMPARISON, "--bootstrap", "30"]
    outs = []
    for engine in ("duckdb", "spark"):
        assert main([*args, "--engine", engine]) == 0
        outs.append(capsys.readouterr().out)
    assert outs[0] == outs[1] and len(outs[0].splitlines()) > 5
    if command == "explain":  # the single-window explain prices this week's off-intent serving, with impacts
        assert "off-intent" in outs[0] and " pt " in outs[0]


def test_audit_on_spark_equals_duckdb_on_a_million_rows(spark, million_store):
    """The census and every finding at 1M generated requests (all scenarios planted)."""
    from toolkit import audit

    duck = audit(million_store, window=f"{BASELINE.split('..')[0]}..{COMPARISON.split('..')[1]}")
    on_spark = audit(million_store, window=f"{BASELINE.split('..')[0]}..{COMPARISON.split('..')[1]}",
                     engine="spark", spark=spark)
    assert int(duck.census["n"].sum()) > 900_000 and duck.findings.height >= 10
    assert_frame_equal(duck.census, on_spark.census)
    assert_frame_equal(duck.findings, on_spark.findings)
    assert duck.summary() == on_spark.summary()


def test_spark_reads_only_the_span_of_the_windows(spark, demo_store, monkeypatch):
    """A one-day audit exports the day and the shadow margin around it, not the store."""
    import datetime as dt

    import duckdb

    from toolkit import audit
    from toolkit.engine import spark as sp

    store, _ = demo_store
    written: list[int] = []
    real = sp.export_predictions

    def export(con, out, span=None):
        path = real(con, out, span)
        written.append(duckdb.execute("SELECT count(*) FROM read_parquet(?)", [str(path)]).fetchone()[0])
        return path

    monkeypatch.setattr(sp, "export_predictions", export)
    day = (dt.datetime(2026, 11, 9), dt.datetime(2026, 11, 10))
    duck = audit(store, window="2026-11-09..2026-11-10")
    on_spark = audit(store, window="2026-11-09..2026-11-10", engine="spark", spark=spark)
    assert_frame_equal(duck.findings, on_spark.findings) and duck.summary() == on_spark.summary()
    margin = dt.timedelta(days=1)
    span_rows, total = store.con.execute("SELECT count(*) FILTER (WHERE ts >= ? AND ts < ?), count(*) FROM predictions",
                                         [day[0] - margin, day[1] + margin]).fetchone()
    assert written == [span_rows] and span_rows < total / 3


def test_a_store_opened_with_the_spark_engine_runs_its_analyses_on_spark(spark, demo_store, tmp_path, monkeypatch):
    """``Store(path, engine="spark", spark=...)``: every analysis of it uses Spark unless it says otherwise."""
    import toolkit
    from toolkit.engine import spark as sp

    store, _ = demo_store
    store.con.execute("CHECKPOINT")
    path = tmp_path / "copy.duckdb"
    shutil.copyfile(store.path, path)
    calls: list[str] = []
    real = sp.SparkRunner.frame
    monkeypatch.setattr(sp.SparkRunner, "frame", lambda self, q, p: calls.append(q) or real(self, q, p))
    window = "2026-11-09..2026-11-16"
    duck = toolkit.audit(store, window=window)
    with toolkit.Store(path, read_only=True, engine="spark", spark=spark) as on_spark:
        assert on_spark.engine == toolkit.Engine("spark", spark)
        got = toolkit.audit(on_spark, window=window)
        assert calls and duck.summary() == got.summary()
        calls.clear()
        toolkit.attribute(on_spark, METRIC, BASELINE, COMPARISON, n_boot=0, engine="duckdb")  # overrides
        assert not calls
        toolkit.attribute(on_spark, METRIC, BASELINE, COMPARISON, n_boot=0, engine=toolkit.Engine("spark", spark))
        assert calls


def test_spark_engine_on_an_attached_lake_reads_only_the_windows_files(spark, demo_store, tmp_path):
    """An attached hive-partitioned dataset on the Spark engine: the ingested store's answers, and DuckDB
    reads no file's data (Spark reads the files in place; test_spark_lake checks which)."""
    from tests.store.test_attach import _data_reads
    from toolkit import Store, attribute
    from toolkit.audit import audit
    from toolkit.store.attach import sql_literal

    from .conftest import DEMO

    store, _ = demo_store
    lake = tmp_path / "lake"
    store.con.execute("COPY (SELECT * EXCLUDE (ingest_id, request_key), CAST(ts AS DATE) AS date FROM predictions ORDER BY ts) "
                      f"TO {sql_literal(str(lake))} (FORMAT parquet, PARTITION_BY (date))")
    with Store(tmp_path / "attached.duckdb") as attached:
        attached.ingest("artifacts", [DEMO / "artifacts.csv"])
        attached.ingest("deployments", [DEMO / "deployments.jsonl"])
        result = attached.attach(lake, partitioning="hive")
        assert result.excluded == 0 and len(result.files) == 14
        day = "2026-11-09..2026-11-10"
        on_spark: list = []
        reads = _data_reads(attached, lambda: on_spark.append(audit(attached, window=day, engine="spark",
                                                                       spark=spark)))
        assert not {p for p, n in reads.items() if n > 0}   # at most footers (the column types of the plan)
        duck = audit(store, window=day)
        assert_frame_equal(duck.findings, on_spark[0].findings)
        assert duck.summary() == on_spark[0].summary()
        a = attribute(store, METRIC, BASELINE, COMPARISON, n_boot=50)
        b = attribute(attached, METRIC, BASELINE, COMPARISON, n_boot=50, engine="spark", spark=spark)
        np.testing.assert_allclose(b.frame["estimate"].to_numpy(), a.frame["estimate"].to_numpy(), rtol=0, atol=1e-9)
        np.testing.assert_allclose(b.frame["ci_low"].to_numpy(), a.frame["ci_low"].to_numpy(), rtol=0, atol=1e-9)


def test_versions_are_resolved_on_spark_with_the_registry_broadcast(spark, demo_store, tmp_path):
    """The engine's resolution on Spark: the store's resolved versions, and a broadcast join of the small
    registry (a sort-merge join would shuffle every row of every pass)."""
    from toolkit.engine.spark import export_predictions, store_rows

    store, _ = demo_store
    path = export_predictions(store.con, tmp_path / "predictions.parquet")
    sql = ("SELECT resolved_version, version_status, expected_feature_version, count(*) AS n "
           "FROM predictions_resolved GROUP BY ALL ORDER BY ALL")
    duck = store.con.execute(sql.replace("ORDER BY ALL", "ORDER BY ALL NULLS FIRST")).fetchall()
    with store_rows(spark, store.con, path) as run:
        on_spark = [tuple(r) for r in run.frame(sql, []).iter_rows()]
        plan = spark.sql(sql)._jdf.queryExecution().executedPlan().toString()
    assert on_spark == duck and len(duck) >= 4
    assert {"mismatch", "verified"} <= {r[1] for r in duck}
    assert "BroadcastHashJoin" in plan or "BroadcastExchange" in plan
    assert "SortMergeJoin" not in plan
