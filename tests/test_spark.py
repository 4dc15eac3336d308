"""--engine spark (issue #14): the Spark passes give the DuckDB engine's tables. One local session for the module."""
from __future__ import annotations

import duckdb
import pytest

pyspark = pytest.importorskip("pyspark")  # the `spark` extra; `make test` installs it and a Java runtime

from toolkit.engine.keys import md5_group_sql  # noqa: E402

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
