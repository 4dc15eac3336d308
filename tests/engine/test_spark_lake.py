"""Spark reading an attached dataset in place (issue #14): typed and checked by the store's plan on Spark.

The lake is the demo sample as a team's partitioned Parquet export would hold
it: other column names (``model``, ``event_ms`` as epoch milliseconds), its
own component name (``live`` for ``online``, mapped by ``[values]``), and
bad rows of several kinds (missing ids, a blank version, NaN scores, a time in
1900, rows repeated in a later day's file). Every check compares Spark with
the store's DuckDB views, which the rest of the suite checks against ingest.
"""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

pytest.importorskip("pyspark")  # the `spark` extra; `make test` installs it and a Java runtime

from tests.attribution.test_attribution_helpers import BASELINE, COMPARISON  # noqa: E402

from .conftest import DEMO  # noqa: E402

pytestmark = pytest.mark.spark

METRIC = "rate:prediction=approved"
MAPPING = {"columns": {"model_version": "model", "ts": "event_ms"}, "timestamps": {"format": "epoch_ms"},
           "values": {"component": {"live": "online"}}}
BAD_ROWS = """
UPDATE rows SET request_id = NULL WHERE request_id IN (SELECT request_id FROM rows ORDER BY request_id LIMIT 3);
UPDATE rows SET model = '  ' WHERE request_id IN (SELECT request_id FROM rows ORDER BY request_id DESC LIMIT 2);
UPDATE rows SET score = 'nan'::DOUBLE
    WHERE request_id IN (SELECT request_id FROM rows ORDER BY request_id LIMIT 2 OFFSET 10);
UPDATE rows SET event_ms = -2208988800001
    WHERE request_id IN (SELECT request_id FROM rows ORDER BY request_id LIMIT 1 OFFSET 20);
INSERT INTO rows SELECT * REPLACE (event_ms + 86400000 AS event_ms) FROM rows
    WHERE request_id IN (SELECT request_id FROM rows WHERE component = 'live' AND event_ms >= 1794182400000
                         ORDER BY request_id LIMIT 5);
"""


def _write_lake(store, lake: Path, *, text_times: bool = False) -> None:
    from toolkit.store.attach import sql_literal

    time_col = ("strftime(ts, '%Y-%m-%dT%H:%M:%S.%gZ') AS event_ms" if text_times
                else "CAST(epoch_ms(ts) AS BIGINT) AS event_ms")
    store.con.execute(
        f"""CREATE OR REPLACE TEMP TABLE rows AS
        SELECT * EXCLUDE (ingest_id, request_key, model_version, ts, component), model_version AS model, {time_col},
               CASE WHEN component = 'online' THEN 'live' ELSE component END AS component, CAST(ts AS DATE) AS date
        FROM predictions""")
    if not text_times:
        store.con.execute(BAD_ROWS + "UPDATE rows SET date = CAST(make_timestamp(event_ms * 1000) AS DATE);")
    store.con.execute(f"COPY (SELECT * FROM rows ORDER BY date, request_id) TO {sql_literal(str(lake))} "
                      "(FORMAT parquet, PARTITION_BY (date))")
    store.con.execute("DROP TABLE rows")


@pytest.fixture(scope="module")
def lake_store(demo_store, tmp_path_factory):
    """The demo lake (with bad rows) attached to a store with the demo's deployments and registry."""
    from toolkit import Store

    tmp = tmp_path_factory.mktemp("lake")
    lake = tmp / "team lake+1%"   # Spark names files by URI: a space, a plus and a percent sign come back
    _write_lake(demo_store[0], lake)
    with Store(tmp / "attached.duckdb") as store:
        store.ingest("artifacts", [DEMO / "artifacts.csv"])
        store.ingest("deployments", [DEMO / "deployments.jsonl"])
        result = store.attach(lake, partitioning="hive", mapping=MAPPING)
        yield store, lake, result


def _checked_on_spark(spark, store) -> pl.DataFrame:
    from toolkit.engine.lake import CHECKED_VIEW, lake_read
    from toolkit.engine.spark import lake_rows

    read = lake_read(store.con, None)
    assert read is not None and not read.unported
    with lake_rows(spark, store.con, read) as run:
        return run.frame(f"SELECT * FROM {CHECKED_VIEW}", []).sort("_file", "_row")


def test_every_row_is_typed_and_checked_as_duckdb_does(spark, lake_store):
    """The same typed values and the same reason, word for word, for every row of every file."""
    from toolkit.store.attach import CHECKED_VIEW

    store, _, result = lake_store
    duck = store.con.execute(f"SELECT * EXCLUDE (_raw) FROM {CHECKED_VIEW} ORDER BY _file, _row").pl()
    on_spark = _checked_on_spark(spark, store)
    assert on_spark.columns == duck.columns
    assert_frame_equal(on_spark, duck, check_dtypes=False)
    reasons = duck.filter(pl.col("_reason").is_not_null())["_reason"].to_list()
    assert len(reasons) == result.excluded == 3 + 2 + 2 + 1 + 5
    assert {r.split(":")[0] for r in reasons} >= {"missing required value", "score is not a finite number"}
    assert any("outside the plausible range" in r for r in reasons)
    assert any(r.startswith("duplicate request_id in an earlier file") for r in reasons)
    assert (duck["component"] == "online").sum() > 0 and (duck["component"] == "live").sum() == 0


def test_analyses_on_spark_read_the_files_not_duckdb(spark, lake_store, monkeypatch):
    """Audit, attribution and explain on Spark give DuckDB's answers, with DuckDB's views of the rows
    made to fail and the export path disabled: Spark typed the files' rows itself."""
    import toolkit
    from toolkit.engine import spark as sp
    from toolkit.store.attach import guard, unguard

    store, _, _ = lake_store
    day = "2026-11-09..2026-11-16"
    duck_audit = toolkit.audit(store, window=day)
    duck_attr = toolkit.attribute(store, METRIC, BASELINE, COMPARISON, n_boot=50)
    duck_why = toolkit.explain(store, METRIC, COMPARISON, baseline=BASELINE, n_boot=30)

    def no_export(*args, **kwargs):
        raise AssertionError("the Spark engine exported an attached store instead of reading its files")

    monkeypatch.setattr(sp, "export_predictions", no_export)
    guard(store.con, "DuckDB read the predictions during a Spark run")
    try:
        audit = toolkit.audit(store, window=day, engine="spark", spark=spark)
        attr = toolkit.attribute(store, METRIC, BASELINE, COMPARISON, n_boot=50, engine="spark", spark=spark)
        why = toolkit.explain(store, METRIC, COMPARISON, baseline=BASELINE, n_boot=30, engine="spark", spark=spark)
    finally:
        unguard(store.con)
    assert_frame_equal(audit.findings, duck_audit.findings)
    assert audit.summary() == duck_audit.summary() and audit.excluded == duck_audit.excluded
    assert audit.excluded is not None and audit.excluded.total >= 2
    np.testing.assert_allclose(attr.frame["estimate"].to_numpy(), duck_attr.frame["estimate"].to_numpy(),
                               rtol=0, atol=1e-9)
    assert attr.summary() == duck_attr.summary()
    assert "attached predictions" in attr.summary()     # the excluded rows are said, counted by Spark
    assert why.summary() == duck_why.summary()


def test_a_one_day_audit_reads_only_that_days_files(spark, lake_store):
    """Spark's scan of a one-day audit (with its one-day shadow margin) lists three days' files."""
    from toolkit.audit.api import SHADOW_MARGIN
    from toolkit.engine.choose import Engine, engine_runner, span_of
    from toolkit.engine.lake import SOURCE_VIEW
    from toolkit.timeutil import parse_window

    store, lake, _ = lake_store
    span = span_of([parse_window("2026-11-09..2026-11-10")], SHADOW_MARGIN)
    with engine_runner(store.con, Engine("spark", spark), span):
        files = spark.table(SOURCE_VIEW).inputFiles()
    days = {Path(f).parent.name for f in files}
    assert days == {"date=2026-11-08", "date=2026-11-09", "date=2026-11-10"}
    assert len(files) == 3 < len(list(lake.rglob("*.parquet")))


def test_text_times_are_read_through_duckdbs_export(spark, demo_store, tmp_path, monkeypatch):
    """A time given as text is not read in place (the engines' text casts differ at the edges): the store
    exports its rows, and the answer is DuckDB's."""
    import toolkit
    from toolkit.engine import spark as sp
    from toolkit.engine.lake import lake_read

    _write_lake(demo_store[0], tmp_path / "lake", text_times=True)
    with toolkit.Store(tmp_path / "text.duckdb") as store:
        store.ingest("artifacts", [DEMO / "artifacts.csv"])
        store.ingest("deployments", [DEMO / "deployments.jsonl"])
        store.attach(tmp_path / "lake", partitioning="hive",
                     mapping={**MAPPING, "timestamps": {"timezone": "UTC"}})
        read = lake_read(store.con, None)
        assert read is not None and read.unported == ("ts is text, parsed as a time",)
        exported: list = []
        real = sp.export_predictions
        monkeypatch.setattr(sp, "export_predictions", lambda *a, **k: exported.append(1) or real(*a, **k))
        day = "2026-11-09..2026-11-10"
        assert (toolkit.audit(store, window=day, engine="spark", spark=spark).summary()
                == toolkit.audit(store, window=day).summary())
        assert exported


def test_a_file_changed_since_validation_is_refused(spark, lake_store):
    from toolkit import VdriftError, audit

    store, lake, _ = lake_store
    victim = sorted(lake.rglob("*.parquet"))[3]
    st = victim.stat()
    os.utime(victim, (st.st_atime, st.st_mtime + 60))
    try:
        with pytest.raises(VdriftError, match="gone or changed since they were validated"):
            audit(store, window="2026-11-09..2026-11-10", engine="spark", spark=spark)
    finally:
        os.utime(victim, (st.st_atime, st.st_mtime))


@pytest.mark.parametrize("value", ['plain', 'a "quoted" \\ back', "line\nbreak\ttab\x01", "é ü 漢", "x" * 100])
def test_values_in_reasons_are_written_alike(spark, value):
    """``shown``: the JSON text of a value in a reason, cut at 80 characters, the same on both engines."""
    import duckdb

    from toolkit.engine.spark import _session_conf
    from toolkit.store.ingest.plan import shown

    duck = duckdb.sql(f"SELECT {shown('?')} AS v", params=[value]).fetchone()
    with _session_conf(spark):
        on_spark = spark.sql(f"SELECT {shown('?', 'spark')} AS v", args=[value]).collect()[0][0]
    assert duck is not None and on_spark == duck[0]


def test_epoch_times_round_to_the_microsecond_alike(spark):
    import duckdb

    from toolkit.engine.keys import epoch_sql
    from toolkit.engine.spark import _session_conf

    values = [1762700000.1234567, 1762700000.0000019, -2208988800.0, 1762700000123 / 1e3, 5e-7, 1.5e-6, 2.5e-6, -1.5e-6]
    duck = [r[0] for r in duckdb.sql(
        f"SELECT CAST({epoch_sql('x', 'duckdb')} AS VARCHAR) FROM unnest(?::DOUBLE[]) AS t(x)",
        params=[values]).fetchall()]
    with _session_conf(spark):
        on_spark = [spark.sql(f"SELECT CAST({epoch_sql('x', 'spark')} AS STRING) FROM (SELECT CAST(? AS DOUBLE) AS x)",
                              args=[v]).collect()[0][0] for v in values]
    assert on_spark == duck



def _validated_state(store) -> tuple:
    from toolkit.store.attach import DUPLICATES_TABLE, FILES_TABLE

    files = store.con.execute(f"SELECT * EXCLUDE (bytes, mtime) FROM {FILES_TABLE} ORDER BY path").fetchall()
    dups = store.con.execute(f"SELECT * FROM {DUPLICATES_TABLE} ORDER BY _file, _row").fetchall()
    return files, dups


def test_attach_and_validate_on_spark_find_what_duckdb_finds(spark, lake_store, tmp_path):
    """The scans of attach and validate on Spark: the same duplicates, file time ranges and counts, the same
    reasons and example rows; a validation on Spark reads no file's data in DuckDB."""
    import json

    from tests.store.test_attach import _data_reads
    from toolkit import Store

    reference, lake, on_duck = lake_store
    with Store(tmp_path / "spark.duckdb") as store:
        store.ingest("artifacts", [DEMO / "artifacts.csv"])
        store.ingest("deployments", [DEMO / "deployments.jsonl"])
        on_spark = store.attach(lake, partitioning="hive", mapping=MAPPING, engine="spark", spark=spark)
        assert _validated_state(store) == _validated_state(reference)
        for result in (on_spark, store.validate(engine="spark", spark=spark)):
            assert (result.rows, result.valid, result.excluded, result.reasons) == (
                on_duck.rows, on_duck.valid, on_duck.excluded, on_duck.reasons)
            keys = ["reason", "file", "row"]
            assert result.examples.select(keys).equals(on_duck.examples.select(keys))
            for a, b in zip(result.examples["raw"], on_duck.examples["raw"], strict=True):
                assert json.loads(a) == json.loads(b)   # the same row, the same values
        assert store.counts()["predictions"] == reference.counts()["predictions"] == on_duck.valid
        reads = _data_reads(store, lambda: store.validate(engine="spark", spark=spark))
        assert not {p for p, n in reads.items() if n > 0}
        assert _validated_state(store) == _validated_state(reference)


def test_cli_status_on_spark_prints_duckdbs_report(spark, lake_store, capsys, monkeypatch, tmp_path):
    """``vdrift status --engine spark``: the report's counts, reasons and examples from Spark, as DuckDB's."""
    import shutil

    from toolkit.cli import main

    store, _, _ = lake_store
    monkeypatch.delenv("SPARK_REMOTE", raising=False)  # the engine takes the shared session (getOrCreate)
    store.con.execute("CHECKPOINT")
    path = tmp_path / "copy.duckdb"
    shutil.copyfile(store.path, path)
    out = {}
    for engine in ("duckdb", "spark"):
        assert main(["status", "--db", str(path), "--engine", engine]) == 0
        out[engine] = capsys.readouterr().out
    assert out["spark"] == out["duckdb"] and "excluded rows by reason" in out["duckdb"]


_BASE = ("SELECT 'r' || i AS request_id, TIMESTAMP '2026-11-09 10:00:00' + i * INTERVAL 7 MINUTE AS ts, "
         "'v1' AS model_version, 'approved' AS prediction, 0.5 AS score, i{extra} FROM range(8) t(i)")
#: (name, extra columns, REPLACE clause, mapping, partition key, hidden file, read in place on Spark?)
_HOSTILE = [
    ("unicode spaces in ids", "", "CASE i WHEN 0 THEN chr(160) WHEN 1 THEN 'r' || chr(160) WHEN 2 THEN chr(12288) "
     "|| 'r2' WHEN 3 THEN 'r1' || chr(8195) ELSE 'r' || i END AS request_id", {}, None, False, True),
    ("region from partitions 01/02", ", lpad(CAST(i % 2 + 1 AS VARCHAR), 2, '0') AS region", "", {}, "region",
     False, True),
    ("a covariate named with a quote", ', i * 1.5 AS "we""ird", ts AS seen_at', "", {}, None, False, True),
    ("epoch seconds given milliseconds", ", CAST(epoch_ms(ts) AS BIGINT) AS t_ms", "",
     {"columns": {"ts": "t_ms"}, "timestamps": {"format": "epoch_s"}}, None, False, True),
    ("booleans as padded text", ", CASE WHEN i % 2 = 0 THEN ' yes ' ELSE 'TRUE ' END AS cache_hit", "", {}, None,
     False, False),
    ("scores as text", "", "CASE WHEN i % 2 = 0 THEN '1_000' ELSE '0x1p3' END AS score", {}, None, False, False),
    ("ids as floating numbers", "", "CAST(i * 1e7 AS DOUBLE) AS request_id", {}, None, False, False),
    ("nanosecond times", "", "CAST(TIMESTAMP '2026-11-09 10:00:00' + i * INTERVAL 7 MINUTE AS TIMESTAMP_NS) AS ts",
     {}, None, False, False),
    ("local times around a DST change", "", "TIMESTAMP '2026-11-01 01:00:00' + i * INTERVAL 10 MINUTE AS ts",
     {"timestamps": {"timezone": "America/New_York"}}, None, False, False),
    ("columns differing only in case", ", 1.0 AS amount, 2.0 AS \"Amount\"", "", {}, None, False, False),
    ("a file named like a hidden one", "", "", {}, None, True, False),
    ("hex partition values", ", CASE WHEN i % 2 = 0 THEN '0x10' ELSE '5' END AS shard", "",
     {"covariates": ["i", "shard"]}, "shard", False, False),
]


@pytest.mark.parametrize("case", _HOSTILE, ids=[c[0] for c in _HOSTILE])
def test_hostile_lakes_are_read_alike_or_through_duckdb(spark, tmp_path, case):
    """Each lake is either read in place with DuckDB's typed rows, reasons and report, examples included,
    or left to DuckDB (``unported``) with the same report: never a different answer."""
    import duckdb

    from toolkit import Store
    from toolkit.engine.lake import lake_read
    from toolkit.store.attach import CHECKED_VIEW, sql_literal

    _, extra, replace, mapping, key, hidden, in_place = case
    select = _BASE.format(extra=extra)
    if replace:
        select = f"SELECT * REPLACE ({replace}) FROM ({select})"
    lake = tmp_path / "lake"
    lake.mkdir()
    target = lake if key else lake / ("_part.parquet" if hidden else "part.parquet")
    partition = f", PARTITION_BY ({key})" if key else ""
    duckdb.sql(f"COPY ({select}) TO {sql_literal(str(target))} (FORMAT parquet{partition})")
    if "Amount" in extra:  # DuckDB renames the second name on writing (Amount_1): write the file's names as given
        import pyarrow.parquet as pq

        table = pq.read_table(target)
        pq.write_table(table.rename_columns([c.removesuffix("_1") for c in table.column_names]), target)
    if hidden:  # a second, ordinary file beside it
        duckdb.sql(f"COPY ({_BASE.format(extra='')}) TO {sql_literal(str(lake / 'part.parquet'))} (FORMAT parquet)")
    with Store(tmp_path / "s.duckdb") as store:
        duck = store.attach(lake, mapping=mapping, partitioning="hive" if key else None)
        read = lake_read(store.con, None)
        assert read is not None and bool(read.unported) != in_place, read.unported
        if in_place:
            rows = store.con.execute(f"SELECT * EXCLUDE (_raw) FROM {CHECKED_VIEW} ORDER BY _file, _row").pl()
            assert_frame_equal(_checked_on_spark(spark, store), rows, check_dtypes=False)
        on_spark = store.validate(engine="spark", spark=spark)
        assert (on_spark.rows, on_spark.valid, on_spark.reasons) == (duck.rows, duck.valid, duck.reasons)
        assert on_spark.examples.equals(duck.examples)   # the example rows' JSON too, character for character
        assert on_spark.summary().splitlines()[1:] == duck.summary().splitlines()[1:]
