"""Attached predictions (docs/attach.md): a Parquet dataset read in place gives the same analyses as ingest.

The demo sample is ingested into one store and written as a hive-partitioned
Parquet dataset (``date=YYYY-MM-DD/data_0.parquet``) that a second store
attaches; every analysis must give the same answer on both. Pruning is shown
from the bytes DuckDB reads (its FileSystem log) and from EXPLAIN ANALYZE.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import struct
from pathlib import Path

import re

import duckdb
import polars as pl
import pytest

import toolkit
from toolkit import InputError, Store
from toolkit.attribution import attribute
from toolkit.audit.detectors.divergence import SHADOW_MARGIN
from toolkit.audit import audit
from toolkit.causes import explain
from toolkit.cli import main
from toolkit.store.attach import inline_params, sql_literal

ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "data" / "samples" / "demo"
BASELINE, COMPARISON = "2026-11-02..2026-11-09", "2026-11-09..2026-11-16"
METRICS = ("rate:prediction=approved", "mean:score")
DAY = "2026-11-09"

pytestmark = pytest.mark.skipif(not (DEMO / "predictions.csv.gz").exists(), reason="committed demo sample missing")


def _ingest_history(store: Store) -> None:
    store.ingest("artifacts", [DEMO / "artifacts.csv"])
    store.ingest("deployments", [DEMO / "deployments.jsonl"])


def _write_lake(ingested: Store, lake: Path) -> None:
    """The ingested predictions as Parquet, one directory per UTC day (without the store's ingest_id)."""
    ingested.con.execute(
        "COPY (SELECT * EXCLUDE (ingest_id, request_key), CAST(ts AS DATE) AS date FROM predictions ORDER BY ts) "
        f"TO {sql_literal(str(lake))} (FORMAT parquet, PARTITION_BY (date))"
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """(ingested store, attached store, lake directory, tmp dir) of the demo sample."""
    tmp = tmp_path_factory.mktemp("attach")
    ingested = Store(tmp / "ingested.duckdb")
    _ingest_history(ingested)
    ingested.ingest("predictions", [DEMO / "predictions.csv.gz"])
    lake = tmp / "lake"
    _write_lake(ingested, lake)
    attached = Store(tmp / "attached.duckdb")
    _ingest_history(attached)
    result = attached.attach(lake, partitioning="hive")
    yield ingested, attached, lake, tmp, result
    ingested.close()
    attached.close()


def _lake_copy(lake: Path, dest: Path) -> Path:
    shutil.copytree(lake, dest)
    return dest


def _attached_store(path: Path, lake: Path | str, **kw) -> Store:
    store = Store(path)
    _ingest_history(store)
    store.attach(lake, **kw)
    return store


# -- the same answers ----------------------------------------------------------------------

def test_attach_result_describes_the_dataset(demo):
    ingested, attached, lake, _, result = demo
    n = ingested.counts()["predictions"]
    assert result.files == tuple(sorted(str(p) for p in lake.rglob("*.parquet")))
    assert len(result.files) == 14
    assert (result.rows, result.valid, result.excluded, result.reasons) == (n, n, 0, ())
    assert result.covariates == ("amount", "merchant_category", "account_age_days", "channel")
    assert result.ignored_columns == ("date (partition key)",)
    assert "41,634 rows in the files: 41,634 valid, 0 excluded" in result.summary()
    with pytest.raises(AttributeError):
        result.rows = 0  # frozen


def test_attached_store_reads_like_the_ingested_one(demo):
    ingested, attached, *_ = demo
    assert attached.columns("predictions") == ingested.columns("predictions")
    assert attached.columns("predictions_resolved") == ingested.columns("predictions_resolved")
    assert attached.covariates().equals(ingested.covariates())
    assert attached.counts() == ingested.counts() | {"ingest_log": 2}
    assert attached.time_span() == ingested.time_span()
    order = "ORDER BY request_id, component, model_version"
    a = attached.sql(f"SELECT * EXCLUDE (ingest_id) FROM predictions_resolved {order}")
    b = ingested.sql(f"SELECT * EXCLUDE (ingest_id) FROM predictions_resolved {order}")
    assert a.equals(b)
    # no copy: the store file holds no predictions table
    kinds = dict(attached.con.execute(
        "SELECT table_name, table_type FROM information_schema.tables WHERE table_name = 'predictions'").fetchall())
    assert kinds == {"predictions": "VIEW"}


def test_same_audit_findings(demo):
    ingested, attached, *_ = demo
    a, b = audit(ingested), audit(attached)
    assert a.findings.height > 5
    assert a.findings.equals(b.findings)
    assert a.census.equals(b.census)
    day = audit(attached, start=DAY, end="2026-11-10")
    assert day.findings.equals(audit(ingested, start=DAY, end="2026-11-10").findings)


def test_same_attribution_estimates(demo):
    ingested, attached, *_ = demo
    for metric in METRICS:
        a = attribute(ingested, metric, BASELINE, COMPARISON, n_boot=30, seed=0)
        b = attribute(attached, metric, BASELINE, COMPARISON, n_boot=30, seed=0)
        # the same rows summed in another order: equal to the last few bits
        assert a.observed == pytest.approx(b.observed, rel=1e-12, abs=1e-15)
        assert a.methods == b.methods and len(a.methods) >= 2
        for method in a.methods:
            for comp in ("data_drift", "version_drift"):
                (est_a, lo_a, hi_a), (est_b, lo_b, hi_b) = a.component(method, comp), b.component(method, comp)
                assert est_a == pytest.approx(est_b, rel=1e-9, abs=1e-12), (metric, method, comp)
                # interval ends: within 5% of the width, the bootstrap's own run-to-run noise (the same
                # store gives such differences from one run to the next, the order of parallel scans)
                width = hi_a - lo_a
                assert width > 0
                assert lo_b == pytest.approx(lo_a, abs=0.05 * width) and hi_b == pytest.approx(hi_a, abs=0.05 * width)


def test_same_explanation(demo):
    ingested, attached, *_ = demo
    a = explain(ingested, METRICS[0], COMPARISON, baseline=BASELINE)
    b = explain(attached, METRICS[0], COMPARISON, baseline=BASELINE)
    assert a.causes.height >= 3
    assert a.total == pytest.approx(b.total, rel=1e-12, abs=1e-15)
    exact = [c for c in a.causes.columns if c not in ("impact", "ci_low", "ci_high", "standalone", "explanation")]
    assert a.causes.select(exact).equals(b.causes.select(exact))
    # the impacts to the last bits; the intervals within 5% of their width (bootstrap noise, see above)
    for ra, rb in zip(a.causes.iter_rows(named=True), b.causes.iter_rows(named=True), strict=True):
        for col in ("impact", "standalone"):
            assert ra[col] == pytest.approx(rb[col], rel=1e-9, abs=1e-12, nan_ok=True), (ra["cause"], col)
        if ra["ci_low"] is not None and ra["ci_high"] is not None and ra["ci_high"] > ra["ci_low"]:
            width = ra["ci_high"] - ra["ci_low"]
            assert rb["ci_low"] == pytest.approx(ra["ci_low"], abs=0.05 * width)
            assert rb["ci_high"] == pytest.approx(ra["ci_high"], abs=0.05 * width)


def test_toolkit_attach_is_the_store_method(tmp_path, demo):
    lake = demo[2]
    with Store(tmp_path / "s.duckdb") as store:
        result = toolkit.attach(store, str(lake / "*" / "*.parquet"))
        assert result.rows == demo[0].counts()["predictions"]
        assert result.partitioning == "none"
        # without --partitioning hive the directory names are not read (DuckDB wrote no date column in the files)
        assert result.covariates == demo[4].covariates and result.ignored_columns == ()
    with Store(tmp_path / "s.duckdb", read_only=True) as store, pytest.raises(toolkit.StoreError):
        store.attach(lake)


# -- pruning -----------------------------------------------------------------------------------

def _footer_start(path: str) -> int:
    """Byte offset where a Parquet file's footer (metadata + length + magic) begins."""
    size = os.path.getsize(path)
    with open(path, "rb") as fh:
        fh.seek(size - 8)
        length, magic = struct.unpack("<I4s", fh.read(8))
    assert magic == b"PAR1"
    return size - 8 - length


def _data_reads(store: Store, run, *, windowed_only: bool = False) -> dict[str, int]:
    """Bytes read before its footer from each file while ``run()`` runs (DuckDB's FileSystem log).

    With ``windowed_only``, only the reads of queries that select a time window (``ts >= ?``, ``"ts" >= ?``) count.
    """
    con = store.con
    con.execute("CALL truncate_duckdb_logs()")
    con.execute("CALL enable_logging(['FileSystem', 'QueryLog'])")
    try:
        run()
    finally:
        con.execute("CALL disable_logging()")
    rows = con.execute(
        "SELECT f.path, f.pos, f.bytes, q.message FROM duckdb_logs_parsed('FileSystem') AS f "
        "LEFT JOIN (SELECT query_id, message FROM duckdb_logs WHERE type = 'QueryLog') AS q USING (query_id) "
        "WHERE f.op = 'READ' AND f.path LIKE '%.parquet'"
    ).fetchall()
    con.execute("CALL truncate_duckdb_logs()")
    out: dict[str, int] = {}
    for path, pos, n, sql in rows:
        before_footer = max(0, min(pos + n, _footer_start(path)) - pos)
        if windowed_only and not re.search(r'\b"?ts"? >= \?', sql or ""):
            before_footer = 0
        out[path] = out.get(path, 0) + before_footer
    return out


def _day_files(lake: Path, *days: str) -> set[str]:
    return {str(p) for d in days for p in (lake / f"date={d}").glob("*.parquet")}


def test_one_day_windows_read_only_their_days_files(demo):
    _, attached, lake, *_, result = demo
    # the audit of one day reads that day, and shadow rows up to SHADOW_MARGIN (one day) on either side
    assert SHADOW_MARGIN == dt.timedelta(days=1)
    reads = _data_reads(attached, lambda: audit(attached, start=DAY, end="2026-11-10"))
    assert {p for p, n in reads.items() if n > 0} == _day_files(lake, "2026-11-08", DAY, "2026-11-10")
    # the same measure on the whole span sees every file's data: the check can tell
    every = _data_reads(attached, lambda: audit(attached))
    assert {p for p, n in every.items() if n > 0} == set(result.files)
    # attribution of one day against the day before: every query reads those two files' data and no
    # other file's (at most a footer: each branch binds its file's schema); the probe "does a row of the
    # windows have a region" is one time range per window, so it prunes too
    reads = _data_reads(attached, lambda: attribute(attached, METRICS[0], "2026-11-08..2026-11-09",
                                                    f"{DAY}..2026-11-10", n_boot=5, seed=0))
    assert {p for p, n in reads.items() if n > 0} == _day_files(lake, "2026-11-08", DAY)
    assert set(reads) <= set(result.files)


def _scans(store: Store, sql: str, params: list | None = None) -> list[dict]:
    """The Parquet scan operators of EXPLAIN ANALYZE (JSON), with their extra info."""
    plan = json.loads(store.con.execute(f"EXPLAIN (ANALYZE, FORMAT json) {sql}", params or []).fetchall()[0][1])
    out, todo = [], [plan]
    while todo:
        node = todo.pop()
        todo.extend(node.get("children", []))
        if node.get("extra_info", {}).get("Function") == "READ_PARQUET":
            out.append(node["extra_info"])
    return out


def test_one_day_window_plan_scans_one_file(demo):
    _, attached, lake, *_ = demo
    window = [dt.datetime(2026, 11, 9), dt.datetime(2026, 11, 10)]
    scans = _scans(attached, "SELECT count(*), avg(score) FROM predictions_resolved WHERE ts >= ? AND ts < ?", window)
    assert [int(s["Total Files Read"]) for s in scans] == [1]
    assert scans[0]["Filename(s)"] in _day_files(lake, DAY)
    whole = _scans(attached, "SELECT avg(score) FROM predictions_resolved")
    assert sum(int(s["Total Files Read"]) for s in whole) == 14


def test_pruning_with_mapped_epoch_times(tmp_path, demo):
    """Times stored as epoch milliseconds under another name still prune: ranges are of the typed ts."""
    ingested = demo[0]
    lake = tmp_path / "lake"
    ingested.con.execute(
        "COPY (SELECT * EXCLUDE (ingest_id, request_key, ts, request_id), request_id AS rid, epoch_ms(ts) AS t_ms, "
        f"CAST(ts AS DATE) AS date FROM predictions) TO {sql_literal(str(lake))} (FORMAT parquet, PARTITION_BY (date))"
    )
    mapping = {"columns": {"ts": "t_ms", "request_id": "rid"}, "timestamps": {"format": "epoch_ms"}}
    with _attached_store(tmp_path / "s.duckdb", lake, partitioning="hive", mapping=mapping) as store:
        a = store.sql("SELECT * EXCLUDE (ingest_id) FROM predictions ORDER BY request_id, component, model_version")
        b = ingested.sql("SELECT * EXCLUDE (ingest_id) FROM predictions ORDER BY request_id, component, model_version")
        assert a.equals(b)
        day_file = str(next((lake / f"date={DAY}").glob("*.parquet")))
        reads = _data_reads(store, lambda: store.sql(
            "SELECT count(*) FROM predictions WHERE ts >= ? AND ts < ?", [dt.datetime(2026, 11, 9),
                                                                          dt.datetime(2026, 11, 10)]))
        assert {p for p, n in reads.items() if n > 0} == {day_file}


# -- bad rows -------------------------------------------------------------------------------------

def _plant(ingested: Store, lake: Path) -> tuple[Path, int]:
    """A second file in the day's partition with six bad rows and one good one; returns it and its rows."""
    bad = lake / f"date={DAY}" / "part-1.parquet"
    ingested.con.execute(
        f"""COPY (
            WITH base AS (SELECT * EXCLUDE (ingest_id, request_key), CAST(ts AS DATE) AS date FROM predictions
                          WHERE ts >= TIMESTAMP '{DAY}' ORDER BY ts LIMIT 7),
            numbered AS (SELECT *, row_number() OVER () AS i FROM base)
            SELECT * EXCLUDE (i, request_id, score, model_version, ts)
                     REPLACE (CASE WHEN i = 4 THEN NULL ELSE prediction END AS prediction),
                   CASE WHEN i = 5 THEN (SELECT min(request_id) FROM predictions WHERE ts >= TIMESTAMP '{DAY}')
                        ELSE 'planted-' || i END AS request_id,
                   CASE WHEN i = 1 THEN 'nan'::DOUBLE WHEN i = 2 THEN 'inf'::DOUBLE ELSE score END AS score,
                   CASE WHEN i = 3 THEN '  ' ELSE model_version END AS model_version,
                   CASE WHEN i = 6 THEN TIMESTAMP '1850-01-01 00:00:00' ELSE ts END AS ts
            FROM numbered
        ) TO {sql_literal(str(bad))} (FORMAT parquet)"""
    )
    return bad, 7


@pytest.fixture(scope="module")
def planted(demo):
    ingested, _, lake, tmp, _ = demo
    dirty = _lake_copy(lake, tmp / "dirty")
    bad, n_bad = _plant(ingested, dirty)
    with _attached_store(tmp / "dirty.duckdb", dirty, partitioning="hive"):
        pass
    return str(tmp / "dirty.duckdb"), dirty, bad, n_bad


def test_planted_rows_reported_with_reasons_and_values(planted, capsys):
    path, dirty, bad, _ = planted
    assert main(["validate", "--db", path, "--examples", "2"]) == 0
    out = capsys.readouterr().out
    assert main(["validate", "--db", path, "--fail-on-excluded"]) == 5
    capsys.readouterr()
    assert main(["status", "--db", path]) == 0
    status = capsys.readouterr().out
    assert "6 excluded from analyses" in out
    for reason, value in [
        ('score is not a finite number: "nan"', "score=NaN"),
        ('score is not a finite number: "inf"', "score=Infinity"),
        ('missing required value: model_version (blank: "  ")', 'model_version="  "'),
        ("missing required value: prediction (absent)", "prediction=null"),
        ('ts "1850-01-01 00:00:00" outside the plausible range 1900-01-01..2200-01-01 UTC',
         'ts="1850-01-01 00:00:00"'),
        ("duplicate request_id in an earlier file of the dataset (first kept)", "request_id="),
    ]:
        assert reason in out, out
        assert value in out, (value, out)
    assert str(bad) in out
    assert "6 excluded from analyses" in status and "excluded rows by reason" in status


def test_planted_counts_add_up_and_nothing_leaks(planted, demo):
    ingested = demo[0]
    path, dirty = planted[0], planted[1]
    with Store(path, read_only=True) as store:
        res = store.validate()
        in_files = duckdb.connect().execute(
            "SELECT count(*) FROM read_parquet(?)", [str(dirty / "*" / "*.parquet")]).fetchone()[0]
        assert res.rows == in_files == ingested.counts()["predictions"] + 7
        assert res.valid + res.excluded == res.rows
        assert res.excluded == 6 and sum(n for _, n in res.reasons) == 6
        assert res.valid == store.counts()["predictions"]
        leaked = store.sql("SELECT count(*) AS n FROM predictions_resolved WHERE request_id IN "
                           "('planted-1','planted-2','planted-3','planted-4','planted-6')")["n"][0]
        assert leaked == 0
        # the good planted row is analysed like any other
        good = store.sql("SELECT request_id FROM predictions WHERE request_id LIKE 'planted-%'")
        assert good["request_id"].to_list() == ["planted-7"]
        nan = store.sql("SELECT count(*) AS n FROM predictions WHERE isnan(score) OR isinf(score)")["n"][0]
        assert nan == 0
        # every analysis runs on the valid rows: the day's audit counts them and no more
        day = audit(store, start=DAY, end="2026-11-10")
        assert int(day.census["n"].sum()) == store.sql(
            "SELECT count(*) AS n FROM predictions WHERE ts >= ? AND ts < ?",
            [dt.datetime(2026, 11, 9), dt.datetime(2026, 11, 10)])["n"][0]
        res_b = attribute(store, METRICS[1], BASELINE, COMPARISON, n_boot=10, seed=0)
        assert all(map(lambda v: v == v, res_b.observed))  # a NaN score would make the mean NaN


def test_excluded_rows_of_the_windows_are_counted_by_reason(planted, demo):
    # the five planted rows with a readable time in the comparison window; the 1850 row is in no window
    from toolkit.store.attach.excluded import excluded_in
    from toolkit.timeutil import parse_window

    path = planted[0]
    with Store(path, read_only=True) as store:
        ex = excluded_in(store.con, [parse_window(BASELINE), parse_window(COMPARISON)])
        assert ex is not None
        assert ex.per_window == (0, 5) and ex.untimed == 0 and ex.total == 5
        assert sum(n for _, n in ex.reasons) == 5 and len(ex.reasons) == 5
        assert any(r.startswith("score is not a finite number") for r, _ in ex.reasons)
        day = excluded_in(store.con, [parse_window("2026-11-10..2026-11-11")])
        assert day is not None and day.total == 0
        # the count is what the store's own validation reports for the day, less the row outside any window
        assert ex.total == store.validate().excluded - 1
        # the audit of the day says so, in its warnings, summary and JSON
        day_audit = audit(store, start=DAY, end="2026-11-10")
        assert day_audit.excluded is not None and day_audit.excluded.per_window == (5,)
        line = [w for w in day_audit.warnings() if "attached predictions" in w]
        assert line and line[0].startswith("5 rows of the attached predictions in the window are not valid")
        assert "excluded from the audit" in day_audit.summary()
        assert day_audit.to_dict()["excluded_rows"]["window"] == 5
        # the attribution (and explain, which carries it) too, as a warning with the details per window
        res = attribute(store, METRICS[0], BASELINE, COMPARISON, n_boot=0)
        det = res.diagnostics.details["attached_excluded"]
        assert (det["baseline"], det["comparison"], det["untimed"]) == (0, 5, 0)
        note = [n for n in res.diagnostics.notes if n.code == "attached_excluded"]
        assert note and note[0].level == "warning" and "excluded from the attribution" in note[0].message
        assert "attached predictions" in res.summary()
    # an ingested store has a quarantine instead: nothing to count here
    assert audit(demo[0], start=DAY, end="2026-11-10").excluded is None
    assert "attached_excluded" not in attribute(demo[0], METRICS[0], BASELINE, COMPARISON,
                                                n_boot=0).diagnostics.details


def test_excluded_rows_outside_the_valid_range_untimed_rows_and_overlapping_windows(tmp_path):
    # found in review: a bad row whose time lies outside its file's valid rows' range was never read, a row
    # without a readable time was counted only by windows that happened to read its file, and a row in two
    # overlapping windows counted twice in the total
    from toolkit.store.attach.excluded import excluded_in
    from toolkit.timeutil import parse_window

    lake = tmp_path / "lake"
    lake.mkdir()
    con = duckdb.connect()
    con.execute(f"""COPY (SELECT * FROM (VALUES
        ('a1', TIMESTAMP '2024-01-01 10:00', 'v1', 0.5::DOUBLE, 'yes'),
        ('a2', TIMESTAMP '2024-01-01 11:00', 'v1', 0.6::DOUBLE, 'no'),
        ('a3', TIMESTAMP '2024-01-05 10:00', 'v1', 'nan'::DOUBLE, 'no')) t(request_id, ts, model_version, score,
        prediction)) TO {sql_literal(str(lake / 'a.parquet'))} (FORMAT parquet)""")
    con.execute(f"""COPY (SELECT * FROM (VALUES
        ('b1', TIMESTAMP '2024-03-01 10:00', 'v1', 0.5::DOUBLE, 'yes'),
        ('b2', NULL::TIMESTAMP, 'v1', 0.5::DOUBLE, 'yes')) t(request_id, ts, model_version, score, prediction))
        TO {sql_literal(str(lake / 'b.parquet'))} (FORMAT parquet)""")
    with Store(tmp_path / "s.duckdb") as store:
        store.attach(lake)
        jan5 = excluded_in(store.con, [parse_window("2024-01-05..2024-01-06")])
        assert jan5 is not None and jan5.per_window == (1,) and jan5.untimed == 1 and jan5.total == 2
        assert jan5.reasons == (("missing required value: ts (absent)", 1), ('score is not a finite number: "nan"', 1))
        jan1 = excluded_in(store.con, [parse_window("2024-01-01..2024-01-02")])
        assert jan1 is not None and jan1.per_window == (0,) and jan1.untimed == 1 and jan1.total == 1
        both = excluded_in(store.con, [parse_window("2024-01-01..2024-01-06"), parse_window("2024-01-04..2024-01-07")])
        assert both is not None and both.per_window == (1, 1) and both.total == 2  # the NaN row once, the untimed one
        assert store.validate().excluded == 2


def test_same_rules_as_ingest(planted, tmp_path):
    """Ingesting the planted file quarantines the same rows for the same reasons (one rule set)."""
    bad = planted[2]
    with Store(planted[0], read_only=True) as store:
        attached = store.validate(examples=10).examples.filter(pl.col("file") == str(bad))
    with Store(tmp_path / "i.duckdb") as scratch:
        scratch.ingest("predictions", [bad])
        quarantined = scratch.quarantine().select("row_number", "reason").sort("row_number")
    mine = attached.select(pl.col("row").alias("row_number"), "reason").sort("row_number")
    # the repeated request_id is another file's, which a single-file ingest cannot see
    assert mine.filter(~pl.col("reason").str.starts_with("duplicate")).equals(quarantined)
    assert quarantined.height == 5


# -- files arriving, errors, detach ---------------------------------------------------------------

def test_new_files_wait_for_validate(demo, tmp_path, capsys):
    ingested, _, lake, *_ = demo
    grown = _lake_copy(lake, tmp_path / "lake")
    with _attached_store(tmp_path / "s.duckdb", grown, partitioning="hive") as store:
        n = store.counts()["predictions"]
        new_dir = grown / "date=2026-11-16"
        new_dir.mkdir()
        ingested.con.execute(
            "COPY (SELECT * EXCLUDE (ingest_id, request_key) REPLACE (ts + INTERVAL 7 DAY AS ts, 'late-' || request_id "
            f"AS request_id) FROM predictions WHERE ts >= TIMESTAMP '2026-11-09' AND ts < TIMESTAMP '2026-11-10') "
            f"TO {sql_literal(str(new_dir / 'part-0.parquet'))} (FORMAT parquet)"
        )
        added = ingested.sql("SELECT count(*) AS n FROM predictions WHERE ts >= ? AND ts < ?",
                             [dt.datetime(2026, 11, 9), dt.datetime(2026, 11, 10)])["n"][0]
        assert store.counts()["predictions"] == n  # not read before it is validated
        report = store.attached()
        assert report.unvalidated_files == (str(new_dir / "part-0.parquet"),)
        assert "1 new file(s) match but are not read until `vdrift validate`" in report.summary()
        after = store.validate()
        assert after.unvalidated_files == () and len(after.files) == 15
        assert store.counts()["predictions"] == n + added
        assert store.time_span()[1] > dt.datetime(2026, 11, 16)


def test_errors(demo, tmp_path, capsys):
    ingested, attached, lake, *_ = demo
    with Store(tmp_path / "e.duckdb") as store:
        with pytest.raises(InputError, match="no file matches"):
            store.attach(tmp_path / "nowhere" / "*.parquet")
        with pytest.raises(InputError, match="no file matches"):
            store.attach(tmp_path / "missing.parquet")
        narrow = tmp_path / "narrow"
        narrow.mkdir()
        ingested.con.execute(f"COPY (SELECT * EXCLUDE (ingest_id, request_key, model_version) FROM predictions LIMIT 10) "
                             f"TO {sql_literal(str(narrow / 'a.parquet'))} (FORMAT parquet)")
        with pytest.raises(InputError, match="required predictions column 'model_version' is missing"):
            store.attach(narrow)
        with pytest.raises(InputError, match="key=value directories"):
            store.attach(narrow, partitioning="hive")
        assert store.attached() is None and store.counts()["predictions"] == 0  # nothing half-done
        store.attach(lake, partitioning="hive")
        with pytest.raises(InputError, match="already has predictions attached"):
            store.attach(lake, partitioning="hive")
        with pytest.raises(InputError, match="reads its predictions from the attached dataset"):
            store.ingest("predictions", [DEMO / "predictions.csv.gz"])
        with pytest.raises(InputError, match="not both"):
            ingested.attach(lake)
    # the CLI says the same with vdrift: and exit code 2
    assert main(["attach", "predictions", str(tmp_path / "none-*.parquet"), "--db", str(tmp_path / "c.duckdb")]) == 2
    assert "vdrift: error: no file matches" in capsys.readouterr().err
    assert main(["validate", "--db", str(tmp_path / "c.duckdb")]) == 2
    assert "has no attached predictions" in capsys.readouterr().err


def test_files_of_different_columns_are_refused(demo, tmp_path):
    ingested, _, lake, *_ = demo
    mixed = _lake_copy(lake, tmp_path / "lake")
    target = next((mixed / f"date={DAY}").glob("*.parquet"))
    ingested.con.execute(f"COPY (SELECT * EXCLUDE (ingest_id, request_key, channel) FROM predictions LIMIT 5) "
                         f"TO {sql_literal(str(target))} (FORMAT parquet)")
    with Store(tmp_path / "s.duckdb") as store, pytest.raises(InputError, match="columns differ"):
        store.attach(mixed, partitioning="hive")


def test_cli_attach_detach_then_ingest(demo, tmp_path, capsys):
    lake = demo[2]
    db = str(tmp_path / "c.duckdb")
    assert main(["attach", "predictions", str(lake), "--partitioning", "hive", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "predictions attached from" in out and "14 file(s)" in out
    assert main(["audit", "--db", db]) == 0
    capsys.readouterr()
    # deployments and artifacts are ingested as usual, --force included
    assert main(["ingest", "deployments", str(DEMO / "deployments.jsonl"), "--db", db]) == 0
    assert main(["ingest", "deployments", str(DEMO / "deployments.jsonl"), "--force", "--db", db]) == 0
    assert "1 ingested" in capsys.readouterr().out
    with Store(db, read_only=True) as store:
        assert store.counts()["deployments"] == demo[0].counts()["deployments"]
    assert main(["detach", "predictions", "--db", db]) == 0
    capsys.readouterr()
    with Store(db) as store:
        assert store.attached() is None
        assert store.counts()["predictions"] == 0 and store.covariates().height == 0
        report = store.ingest("predictions", [DEMO / "predictions.csv.gz"])
        assert report.ok and store.counts()["predictions"] == demo[0].counts()["predictions"]


def test_inline_keeps_quoted_question_marks():
    sql = "SELECT ? AS a, regexp_matches(x, '(:?[0-9]{2})?$') AS \"what?\", ? AS b"
    out = inline_params(sql, ["it's", [dt.datetime(2026, 1, 2, 3, 4, 5, 6), None]])
    assert out == ("SELECT 'it''s' AS a, regexp_matches(x, '(:?[0-9]{2})?$') AS \"what?\", "
                   "[TIMESTAMP '2026-01-02 03:04:05.000006', NULL] AS b")
    con = duckdb.connect()
    row = con.execute(f"SELECT {sql_literal(json.dumps({'q': 1}))}, {sql_literal(0.1)}").fetchone()
    assert row == ('{"q": 1}', 0.1)


def test_files_gone_or_rewritten_need_validate(demo, tmp_path, capsys):
    ingested, _, lake, *_ = demo
    moving = _lake_copy(lake, tmp_path / "lake")
    db = str(tmp_path / "s.duckdb")
    with _attached_store(Path(db), moving, partitioning="hive") as store:
        n = store.counts()["predictions"]
    gone = moving / "date=2026-11-12"
    removed = ingested.sql("SELECT count(*) AS n FROM predictions WHERE CAST(ts AS DATE) = DATE '2026-11-12'")["n"][0]
    shutil.rmtree(gone)
    # read-only (every analysis command): a clear error, exit 3, before any query
    with pytest.raises(toolkit.StoreError, match=r"1 file\(s\) of its attached predictions are gone or changed"):
        Store(db, read_only=True)
    assert main(["audit", "--db", db]) == 3
    assert "run `vdrift validate --db" in capsys.readouterr().err
    # opened for writing, the views refuse to read until the dataset is validated again
    with Store(db) as store:
        with pytest.raises(duckdb.Error, match="vdrift: .*gone or changed"):
            store.counts()
        res = store.validate()
        assert len(res.files) == 13 and res.missing_files == ()
        assert store.counts()["predictions"] == n - removed
    # a rewritten file is not read unvalidated either
    target = next((moving / f"date={DAY}").glob("*.parquet"))
    ingested.con.execute(f"COPY (SELECT * EXCLUDE (ingest_id, request_key) FROM predictions WHERE CAST(ts AS DATE) = DATE '{DAY}' "
                         f"LIMIT 100) TO {sql_literal(str(target))} (FORMAT parquet)")
    assert main(["status", "--db", db]) == 3
    capsys.readouterr()
    assert main(["validate", "--db", db]) == 0
    assert "rows in the files" in capsys.readouterr().out
    with Store(db, read_only=True) as store:
        day = store.sql("SELECT count(*) AS n FROM predictions WHERE CAST(ts AS DATE) = ?", [dt.date(2026, 11, 9)])
        assert day["n"][0] == 100


def test_incident_report_data_is_the_same(demo, tmp_path):
    """The incident report's analyses (run as its notebook runs them, from closed store files) on both stores."""
    from toolkit.report.incident import IncidentReport

    lake = demo[2]
    with Store(tmp_path / "i.duckdb") as ingested:
        _ingest_history(ingested)
        ingested.ingest("predictions", [DEMO / "predictions.csv.gz"])
    _attached_store(tmp_path / "a.duckdb", lake, partitioning="hive").close()
    reports = [IncidentReport.build(store_path=str(tmp_path / name), metric=METRICS[0], baseline=BASELINE,
                                    comparison=COMPARISON, n_boot=10)
               for name in ("i.duckdb", "a.duckdb")]
    a, b = reports
    assert a.audit.findings.equals(b.audit.findings)
    for name in ("series", "mix"):
        fa, fb = getattr(a, name), getattr(b, name)
        assert fa.height > 0 and fa.columns == fb.columns
        floats = [c for c, t in fa.schema.items() if t == pl.Float64]
        assert fa.drop(floats).equals(fb.drop(floats)), name
        for c in floats:
            assert fa[c].to_list() == pytest.approx(fb[c].to_list(), rel=1e-9, abs=1e-12, nan_ok=True), (name, c)
    assert a.provenance["counts"].equals(b.provenance["counts"])


def test_hive_key_feeds_a_contract_column(demo, tmp_path):
    """component=.../date=... directories: component comes from the path, date is layout."""
    ingested = demo[0]
    lake = tmp_path / "lake"
    ingested.con.execute(
        "COPY (SELECT * EXCLUDE (ingest_id, request_key), CAST(ts AS DATE) AS date FROM predictions) "
        f"TO {sql_literal(str(lake))} (FORMAT parquet, PARTITION_BY (component, date))"
    )
    columns = duckdb.connect().execute("DESCRIBE SELECT * FROM read_parquet(?, hive_partitioning = false)",
                                       [str(next(lake.rglob("*.parquet")))]).fetchall()
    assert "component" not in {c[0] for c in columns}  # only the directory names carry it
    with _attached_store(tmp_path / "s.duckdb", lake, partitioning="hive") as store:
        result = store.attached()
        assert result.ignored_columns == ("date (partition key)",) and result.excluded == 0
        order = "ORDER BY request_id, component, model_version"
        a = store.sql(f"SELECT * EXCLUDE (ingest_id) FROM predictions {order}")
        b = ingested.sql(f"SELECT * EXCLUDE (ingest_id) FROM predictions {order}")
        assert a.equals(b)
        reads = _data_reads(store, lambda: store.sql(
            "SELECT component, count(*) FROM predictions WHERE ts >= ? AND ts < ? GROUP BY 1",
            [dt.datetime(2026, 11, 9), dt.datetime(2026, 11, 10)]))
        day = {str(p) for p in lake.rglob(f"date={DAY}/*.parquet")}
        assert len(day) >= 3 and {p for p, n in reads.items() if n > 0} == day


def test_validate_keeps_the_mappings_values_and_categorical_and_types_no_declared_category(tmp_path):
    """A mapping's [values] and categorical survive `validate` (the recorded mapping keeps them); a declared
    categorical covariate is text without a scan of its values; status counts the valid rows per file."""
    con = duckdb.connect()
    lake = tmp_path / "lake.parquet"
    con.execute(
        "COPY (SELECT 'r' || i AS request_id, TIMESTAMP '2026-11-09 00:00:00' + i * INTERVAL 1 MINUTE AS ts, "
        "'v1' AS model_version, CASE WHEN i % 2 = 0 THEN 'Y' ELSE 'N' END AS prediction, "
        "CASE WHEN i % 3 = 0 THEN 'web' ELSE 'live' END AS component, lpad(CAST(i % 7 AS VARCHAR), 5, '0') AS zip "
        f"FROM range(200) t(i)) TO {sql_literal(str(lake))} (FORMAT parquet)")
    mapping = {"values": {"component": {"live": "online", "web": "online"}}, "covariates": ["zip"],
               "categorical": ["zip"]}
    with Store(tmp_path / "s.duckdb") as store:
        store.con.execute("CALL enable_logging(['QueryLog'])")
        store.attach(lake, mapping=mapping)
        logged = [r[0] for r in store.con.execute("SELECT message FROM duckdb_logs WHERE type = 'QueryLog'")
                  .fetchall()]
        store.con.execute("CALL disable_logging()")
        assert logged and not [q for q in logged if "approx_count_distinct" in q]   # no typing scan
        for result in (store.attached(), store.validate()):
            assert result.valid == 200 and result.excluded == 0
        assert store.con.execute("SELECT DISTINCT component FROM predictions").fetchall() == [("online",)]
        assert store.con.execute("SELECT min(zip), typeof(min(zip)) FROM predictions").fetchone() == ("00000", "VARCHAR")
        assert store.counts()["predictions"] == 200
