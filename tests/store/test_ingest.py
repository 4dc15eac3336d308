"""Ingestion: validation, quarantine, mappings, atomicity and idempotency (issue 2)."""

from __future__ import annotations

import datetime as dt
import gzip
import json
import re
import subprocess
import sys
from pathlib import Path

import duckdb
import polars as pl
import pytest

from toolkit import InputError, Store, StoreError
from toolkit.store.ingest import batch as ingest_batch
from toolkit.store.ingest import load as ingest_load

from tests.conftest import ROOT, SAMPLES, write
from tests import reasons as R

HEADER = "request_id,ts,model_version,prediction,score,region,amount\n"


def _counts_add_up(report) -> None:
    for r in report.results:
        if r.status == "ingested":
            assert r.rows_read == r.accepted + r.quarantined
            assert sum(n for _, n in r.reasons) == r.quarantined


def test_clean_csv_is_accepted_whole(store, tmp_path):
    f = write(tmp_path / "p.csv", HEADER + "a,2026-11-02 10:00:00,v1,approved,0.1,eu,12.5\n"
              "b,2026-11-02 11:00:00,v2,declined,0.8,us,99\n")
    report = store.ingest("predictions", f)
    assert report.ok and report.accepted == 2 and report.quarantined == 0
    rows = store.sql("SELECT request_id, ts, component, amount FROM predictions ORDER BY request_id")
    assert rows["component"].to_list() == ["online", "online"]  # contract default
    assert rows["amount"].to_list() == [12.5, 99.0]  # numeric text column stored as DOUBLE
    assert rows["ts"].to_list()[0] == dt.datetime(2026, 11, 2, 10, 0)
    assert store.covariates().to_dicts() == [{"name": "amount", "type": "DOUBLE"}]


def test_every_bad_value_is_quarantined_with_a_reason(store, tmp_path):
    f = write(tmp_path / "bad.csv", HEADER
              + "a,2026-11-02 10:00:00,v1,approved,0.1,eu,1\n"      # ok
              + "b,not-a-time,v1,approved,0.1,eu,1\n"               # bad ts
              + "c,2026-11-02 10:00:00,,approved,0.1,eu,1\n"        # null required
              + "d,2026-11-02 10:00:00,v1,approved,high,eu,1\n"     # uncastable score
              + "a,2026-11-02 10:05:00,v1,declined,0.2,eu,1\n"      # duplicate in file
              + "e,2026-11-02 10:00:00,v1\n"                        # malformed line
              + "f,2026-11-02 10:00:00,v1,approved,0.3,eu,lots\n")  # text: new covariate stored as text
    report = store.ingest("predictions", f)
    _counts_add_up(report)
    r = report.results[0]
    assert (r.rows_read, r.accepted, r.quarantined) == (7, 2, 5)
    assert dict(store.covariates().iter_rows()) == {"amount": "VARCHAR"}
    assert dict(r.reasons) == {
        R.TS_ISO: 1,
        R.missing("model_version"): 1,
        R.SCORE: 1,
        R.DUP_FILE: 1,
        "malformed CSV line: missing columns: …": 1,
    }
    q = store.quarantine()
    assert q.height == 5
    dup = q.filter(pl.col("reason").str.starts_with("duplicate"))
    assert json.loads(dup["raw"][0])["ts"] == "2026-11-02 10:05:00"  # the later row is the one rejected
    malformed = q.filter(pl.col("reason").str.starts_with("malformed"))
    assert json.loads(malformed["raw"][0])["text"] == "e,2026-11-02 10:00:00,v1"
    # the kept row is the first occurrence of 'a'
    assert store.sql("SELECT prediction FROM predictions WHERE request_id = 'a'")["prediction"].to_list() == ["approved"]


def test_duplicates_against_the_store_and_shadow_rows(store, tmp_path):
    store.ingest("predictions", write(tmp_path / "1.csv", HEADER + "a,2026-11-02 10:00:00,v1,approved,0.1,eu,1\n"))
    f2 = write(tmp_path / "2.csv", "request_id,ts,model_version,prediction,component\n"
               "a,2026-11-02 10:00:00,v1,approved,online\n"
               "a,2026-11-02 10:00:00,v2,declined,shadow\n"
               "a,2026-11-02 10:00:00,v3,declined,shadow\n")
    r = store.ingest("predictions", f2).results[0]
    assert dict(r.reasons) == {R.DUP_STORE: 1}
    assert r.accepted == 2  # shadow scoring repeats a request_id once per shadow version


def test_missing_required_column_names_it_and_the_mapping_line(store, tmp_path):
    f = write(tmp_path / "p.csv", "request_id,ts,version,prediction\na,2026-11-02,v1,approved\n")
    report = store.ingest("predictions", f)
    assert not report.ok
    msg = report.results[0].message
    assert "'model_version' is missing" in msg
    assert 'model_version = "version"' in msg  # the mapping line that fixes it
    assert store.counts()["predictions"] == 0 and store.counts()["ingest_log"] == 0


@pytest.mark.parametrize(
    "name, content, expected",
    [
        ("empty.csv", b"", "the file is empty"),
        ("notes.txt", b"hello", "unknown file type"),
        ("broken.jsonl", b'{"request_id": "a", "ts": "2026-11-02"\n{"request_id": ', "cannot read it as json"),
        ("broken.parquet", b"PAR1 not really parquet", "cannot read it as parquet"),
    ],
)
def test_unreadable_files_fail_clearly_and_change_nothing(store, tmp_path, name, content, expected):
    f = write(tmp_path / name, content)
    report = store.ingest("predictions", f)
    assert report.results[0].status == "failed"
    assert expected in report.results[0].message
    assert store.counts() == {"predictions": 0, "deployments": 0, "artifacts": 0, "quarantine": 0, "ingest_log": 0}


def test_header_only_file_ingests_zero_rows(store, tmp_path):
    r = store.ingest("predictions", write(tmp_path / "h.csv", HEADER)).results[0]
    assert r.status == "ingested" and r.rows_read == 0 and "no data rows" in r.message


def test_non_utf8_bytes_are_quarantined_not_lost(store, tmp_path):
    f = write(tmp_path / "latin1.csv", HEADER.encode() + b"a,2026-11-02 10:00:00,v1,approved,0.1,eu,1\n"
              b"b,2026-11-02 10:00:00,v\xe9,approved,0.1,eu,1\n")
    r = store.ingest("predictions", f).results[0]
    assert (r.rows_read, r.accepted, r.quarantined) == (2, 1, 1)
    assert dict(r.reasons) == {"malformed CSV line: invalid encoding: …": 1}


def test_mapping_renames_columns_and_reads_another_time_zone(store, tmp_path):
    f = write(tmp_path / "team.csv", "rid,when,ver,out,amt\n"
              "a,02/11/2026 10:00,v1,approved,1.5\n"
              "b,29/03/2026 03:30,v1,approved,2.5\n")  # after the spring-forward jump in Berlin
    m = write(tmp_path / "map.toml", 'covariates = ["amt"]\n[columns]\nrequest_id = "rid"\nts = "when"\n'
              'model_version = "ver"\nprediction = "out"\n[timestamps]\ntimezone = "Europe/Berlin"\n'
              'format = "%d/%m/%Y %H:%M"\n[defaults]\ncomponent = "batch"\n')
    r = store.ingest("predictions", f, mapping=m).results[0]
    assert r.accepted == 2, r.summary()
    rows = store.sql("SELECT request_id, ts, component, amt FROM predictions ORDER BY request_id").to_dicts()
    assert rows[0]["ts"] == dt.datetime(2026, 11, 2, 9, 0)  # CET = UTC+1
    assert rows[1]["ts"] == dt.datetime(2026, 3, 29, 1, 30)  # CEST = UTC+2
    assert {row["component"] for row in rows} == {"batch"}
    assert store.ingest_log()["mapping"][0].startswith(str(m))


def test_yaml_mapping_and_epoch_timestamps(store, tmp_path):
    f = write(tmp_path / "e.csv", "id,epoch_ms,model_version,prediction\na,1762077600000,v1,approved\n"
              "b,1762077600,v1,approved\n")
    m = write(tmp_path / "map.yaml", "columns:\n  request_id: id\n  ts: epoch_ms\n")
    r = store.ingest("predictions", f, mapping=m).results[0]
    assert r.accepted == 2
    ts = store.sql("SELECT ts FROM predictions ORDER BY request_id")["ts"].to_list()
    assert ts == [dt.datetime(2025, 11, 2, 10, 0)] * 2  # milliseconds and seconds by magnitude


def test_offsets_in_strings_are_honoured(store, tmp_path):
    f = write(tmp_path / "o.csv", "request_id,ts,model_version,prediction\n"
              "a,2026-11-02T10:00:00+02:00,v1,approved\nb,2026-11-02T10:00:00Z,v1,approved\n")
    store.ingest("predictions", f)
    ts = store.sql("SELECT ts FROM predictions ORDER BY request_id")["ts"].to_list()
    assert ts == [dt.datetime(2026, 11, 2, 8, 0), dt.datetime(2026, 11, 2, 10, 0)]


def test_bad_mapping_is_a_clear_error(store, tmp_path):
    f = write(tmp_path / "p.csv", HEADER)
    with pytest.raises(InputError, match="unknown time zone"):
        store.ingest("predictions", f, mapping={"timestamps": {"timezone": "Mars/Olympus"}})
    with pytest.raises(InputError, match="not a predictions contract column"):
        _ = store.ingest("predictions", f, mapping={"columns": {"versionz": "x"}}).results
    r = store.ingest("predictions", f, mapping={"columns": {"model_version": "nope"}}).results[0]
    assert r.status == "failed" and "no such column" in r.message


def test_parquet_and_json_lines_with_typed_columns(store, tmp_path):
    frame = pl.DataFrame({
        "request_id": ["a", "b"],
        "ts": [dt.datetime(2026, 11, 2, 10, tzinfo=dt.timezone(dt.timedelta(hours=1))),
               dt.datetime(2026, 11, 2, 11, tzinfo=dt.timezone(dt.timedelta(hours=1)))],
        "model_version": ["v1", "v1"], "prediction": [1, 0], "score": [0.2, 0.9],
        "amount": [3, 4], "flag": [True, False], "tags": [["x"], ["y"]],
    })
    frame.write_parquet(tmp_path / "p.parquet")
    r = store.ingest("predictions", tmp_path / "p.parquet").results[0]
    assert r.accepted == 2
    got = store.sql("SELECT ts, prediction, amount, flag, tags FROM predictions ORDER BY request_id").to_dicts()
    assert got[0]["ts"] == dt.datetime(2026, 11, 2, 9, 0)  # timestamptz converted to UTC
    assert got[0]["prediction"] == "1" and got[0]["amount"] == 3.0 and got[0]["flag"] is True
    types = dict(store.covariates().iter_rows())
    assert types == {"amount": "DOUBLE", "flag": "BOOLEAN", "tags": "VARCHAR"}
    lines = "\n".join(json.dumps(d) for d in [
        {"request_id": "c", "ts": "2026-11-02T12:00:00Z", "model_version": "v2", "prediction": "approved", "amount": 5},
        {"request_id": "d", "ts": "2026-11-02T12:00:00Z", "model_version": "v2", "prediction": "approved", "amount": "many"},
    ])
    r = store.ingest("predictions", write(tmp_path / "p.jsonl", lines)).results[0]
    assert (r.accepted, r.quarantined) == (1, 1)
    assert dict(r.reasons) == {"cannot read covariate amount as double: …": 1}


def test_deployments_and_artifacts_rules(store, tmp_path):
    d = write(tmp_path / "d.csv", "ts,component,scope,event,version,traffic_pct\n"
              "2026-11-01,serving,all,deploy,v1,100\n"
              "2026-11-02,serving,eu,rollout_start,v2,10\n"
              "2026-11-03,serving,eu,launch,v3,10\n"
              "2026-11-04,serving,eu,rollout_step,v2,150\n"
              "2026-11-01,serving,all,deploy,v1,100\n")
    r = store.ingest("deployments", d).results[0]
    assert dict(r.reasons) == {R.UNKNOWN_EVENT: 1, R.TRAFFIC: 1,
                               "duplicate deployment event … within the file (first kept)": 1}
    a = write(tmp_path / "a.csv", "version,artifact_hash,feature_version,extra\nv1,h1,f1,x\nv2,h2,f2,y\nv2b,h2,f2,z\n")
    r = store.ingest("artifacts", a).results[0]
    assert r.accepted == 2 and dict(r.reasons) == {"duplicate artifact_hash … within the file (first kept)": 1}
    assert r.ignored_columns == ("extra",)


def test_resolved_version_uses_the_loaded_artifact(store, tmp_path):
    store.ingest("artifacts", write(tmp_path / "a.csv", "version,artifact_hash,feature_version\nv1,h1,f1\nv2,h2,f2\n"))
    store.ingest("predictions", write(tmp_path / "p.csv", "request_id,ts,model_version,prediction,artifact_hash\n"
                                      "a,2026-11-02,v2,approved,h2\nb,2026-11-02,v2,approved,h1\n"
                                      "c,2026-11-02,v2,approved,\nd,2026-11-02,v2,approved,zzzzzzzzzzzzzzzz\n"))
    got = store.sql("SELECT request_id, resolved_version, version_status, expected_feature_version "
                    "FROM predictions_resolved ORDER BY request_id").rows()
    assert got == [("a", "v2", "verified", "f2"), ("b", "v1", "mismatch", "f1"),
                   ("c", "v2", "unverified", None), ("d", "unregistered:zzzzzzzzzzzz", "unregistered", None)]


def test_idempotent_and_force_does_not_duplicate(store, tmp_path):
    f = write(tmp_path / "p.csv", HEADER + "a,2026-11-02 10:00:00,v1,approved,0.1,eu,1\nb,x,v1,approved,0.1,eu,1\n")
    first = store.ingest("predictions", f).results[0]
    again = store.ingest("predictions", f).results[0]
    assert again.status == "skipped" and "already ingested" in again.message
    copy = write(tmp_path / "copy.csv", f.read_text())  # same content under another name
    assert store.ingest("predictions", copy).results[0].status == "skipped"
    forced = store.ingest("predictions", f, force=True).results[0]
    assert forced.status == "ingested" and forced.accepted == 1
    assert store.counts()["predictions"] == 1 and store.counts()["quarantine"] == 1
    log = store.ingest_log()
    assert log["superseded_by"].to_list() == [forced.ingest_id, None]
    assert first.ingest_id != forced.ingest_id


def test_failure_midway_leaves_every_table_unchanged(store, tmp_path, monkeypatch):
    store.ingest("predictions", write(tmp_path / "ok.csv", HEADER + "z,2026-11-01 10:00:00,v1,approved,0.1,eu,1\n"))
    before = {t: store.table(t).to_dicts() for t in ("predictions", "quarantine", "ingest_log", "covariates")}
    before_cols = store.columns("predictions")

    class Boom(RuntimeError):
        pass

    calls = {"n": 0}
    real_datetime = dt.datetime

    class FailingDatetime(real_datetime):
        @classmethod
        def now(cls, tz=None):  # 1st call: start time; 2nd: after rows were inserted
            calls["n"] += 1
            if calls["n"] == 2:
                raise Boom("injected failure after the inserts")
            return real_datetime.now(tz)

    monkeypatch.setattr(ingest_load.dt, "datetime", FailingDatetime)
    f = write(tmp_path / "new.csv", "request_id,ts,model_version,prediction,newcov\n"
              "a,2026-11-02 10:00:00,v1,approved,1\nb,bad,v1,approved,2\n")
    with pytest.raises(Boom):
        store.ingest("predictions", f)
    monkeypatch.undo()
    after = {t: store.table(t).to_dicts() for t in ("predictions", "quarantine", "ingest_log", "covariates")}
    assert after == before
    assert store.columns("predictions") == before_cols  # the new covariate column was rolled back too
    assert store.ingest("predictions", f).results[0].accepted == 1  # and the file can be ingested afterwards


def test_directories_and_globs(store, tmp_path):
    for day in (2, 3):
        write(tmp_path / "logs" / f"day={day}" / "part.csv",
              HEADER + f"r{day},2026-11-0{day} 10:00:00,v1,approved,0.1,eu,1\n")
    write(tmp_path / "logs" / "README.md", "not data")
    assert store.ingest("predictions", tmp_path / "logs").accepted == 2
    assert store.ingest("predictions", str(tmp_path / "logs" / "*" / "*.csv")).results[0].status == "skipped"
    with pytest.raises(InputError, match="no file matches"):
        store.ingest("predictions", str(tmp_path / "nothing*.csv"))


def test_newer_schema_is_a_clear_error(tmp_path):
    path = tmp_path / "s.duckdb"
    Store(path).close()
    con = duckdb.connect(str(path))
    con.execute("UPDATE meta SET value = '99' WHERE key = 'schema_version'")
    con.close()
    with pytest.raises(StoreError, match="schema version 99.*upgrade vdrift"):
        Store(path)


def test_second_writer_gets_a_clear_message(tmp_path):
    path = tmp_path / "s.duckdb"
    Store(path).close()
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from toolkit import Store; s = Store(sys.argv[1]); "
         "print('ready', flush=True); sys.stdin.read()", str(path)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT,
    )
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(StoreError, match="in use by another process"):
            Store(path)
    finally:
        holder.kill()
        holder.wait()


def test_cli_ingest_exit_codes_and_summary(tmp_path):
    db = tmp_path / "c.duckdb"
    f = write(tmp_path / "p.csv", HEADER + "a,2026-11-02 10:00:00,v1,approved,0.1,eu,1\nb,x,v1,approved,0.1,eu,1\n")
    vdrift = [sys.executable, "-m", "toolkit.cli"]
    out = subprocess.run(vdrift + ["ingest", "predictions", str(f), "--db", str(db)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "2 rows read = 1 accepted + 1 quarantined" in out.stdout
    out = subprocess.run(vdrift + ["ingest", "predictions", str(f), "--db", str(db), "--force",
                                   "--fail-on-quarantine", "-q"], capture_output=True, text=True)
    assert out.returncode == 5 and len(out.stdout.strip().splitlines()) == 1
    bad = write(tmp_path / "bad.csv", "request_id,ts\na,2026-11-02\n")
    out = subprocess.run(vdrift + ["ingest", "predictions", str(bad), "--db", str(db)], capture_output=True, text=True)
    assert out.returncode == 2 and "model_version" in out.stdout
    out = subprocess.run(vdrift + ["status", "--db", str(tmp_path / "none.duckdb")], capture_output=True, text=True)
    assert out.returncode == 3 and "does not exist" in out.stderr


@pytest.mark.skipif(not (SAMPLES / "demo" / "predictions.csv.gz").exists(), reason="samples not generated yet")
def test_committed_demo_sample_ingests_completely(store):
    demo = SAMPLES / "demo"
    for kind, name in (("artifacts", "artifacts.csv"), ("deployments", "deployments.jsonl"),
                       ("predictions", "predictions.csv.gz")):
        report = store.ingest(kind, demo / name)
        assert report.ok and report.quarantined == 0, report.summary()
        with (gzip.open if name.endswith(".gz") else open)(demo / name, "rt", encoding="utf-8") as fh:
            lines = sum(1 for line in fh if line.strip())
        assert report.rows_read == lines - (1 if ".csv" in name else 0)


def test_store_duplicates_are_searched_near_the_files_time_span(store, tmp_path):
    # a re-delivered log (same request, same time) is caught; a request_id reused a week
    # later is outside the one-day search margin and kept (documented: a new day never
    # rescans earlier days)
    store.ingest("predictions", write(tmp_path / "1.csv", HEADER + "a,2026-11-02 10:00:00,v1,approved,0.1,eu,1\n"))
    r = store.ingest("predictions", write(tmp_path / "2.csv", HEADER + "a,2026-11-03 09:00:00,v1,approved,0.1,eu,1\n"
                                          "b,2026-11-03 09:00:00,v1,approved,0.1,eu,1\n")).results[0]
    assert dict(r.reasons) == {R.DUP_STORE: 1}
    r = store.ingest("predictions", write(tmp_path / "3.csv", HEADER + "a,2026-11-09 10:00:00,v1,approved,0.1,eu,1\n")).results[0]
    assert r.accepted == 1


def test_parquet_fast_path_and_its_fallback_agree(store, tmp_path):
    # all-valid Parquet loads in one pass; one bad value or one repeated key sends the file
    # through the staged path, which quarantines exactly the offending rows
    def frame(ids, scores):
        return pl.DataFrame({"request_id": ids, "ts": [dt.datetime(2026, 11, 2, 10)] * len(ids),
                             "model_version": ["v1"] * len(ids), "prediction": ["approved"] * len(ids),
                             "score": scores})
    frame(["a", "b"], ["0.1", "0.2"]).write_parquet(tmp_path / "ok.parquet")
    frame(["c", "d", "d"], ["0.1", "x", "0.3"]).write_parquet(tmp_path / "bad.parquet")
    frame(["a", "e"], ["0.1", "0.2"]).write_parquet(tmp_path / "again.parquet")
    ok = store.ingest("predictions", tmp_path / "ok.parquet").results[0]
    assert (ok.rows_read, ok.accepted, ok.quarantined) == (2, 2, 0)
    bad = store.ingest("predictions", tmp_path / "bad.parquet").results[0]
    assert (bad.rows_read, bad.accepted, bad.quarantined) == (3, 2, 1)
    assert dict(bad.reasons) == {R.SCORE: 1}  # the first 'd' is the bad one; the second is kept
    again = store.ingest("predictions", tmp_path / "again.parquet").results[0]
    assert dict(again.reasons) == {R.DUP_STORE: 1}
    assert sorted(store.sql("SELECT request_id FROM predictions")["request_id"].to_list()) == ["a", "b", "c", "d", "e"]
    assert store.sql("SELECT count(*) AS n FROM quarantine")["n"][0] == 2


def test_infinite_timestamps_are_quarantined(store, tmp_path):
    # DuckDB reads 'infinity' as a timestamp: such a row has no place in any window, so it is rejected
    # with its reason (and the store's duplicate search span around it must not overflow)
    rows = ('{"request_id": "a", "ts": "infinity", "model_version": "v1", "prediction": "x"}\n'
            '{"request_id": "b", "ts": "-infinity", "model_version": "v1", "prediction": "x"}\n'
            '{"request_id": "c", "ts": "2026-11-02T10:00:00Z", "model_version": "v1", "prediction": "x"}\n')
    r = store.ingest("predictions", write(tmp_path / "1.jsonl", rows)).results[0]
    assert (r.status, r.accepted, r.quarantined) == ("ingested", 1, 2)
    assert dict(r.reasons) == {R.TS_INFINITE: 2}
    r = store.ingest("predictions", write(tmp_path / "2.jsonl", rows.replace('"c"', '"d"'))).results[0]
    assert (r.accepted, r.quarantined) == (1, 2)
    assert store.counts()["predictions"] == 2
    pq = tmp_path / "3.parquet"
    pl.DataFrame({"request_id": ["e", "f"], "ts": [dt.datetime(2026, 11, 2, 11), dt.datetime(2026, 11, 2, 12)],
                  "model_version": ["v1", "v1"], "prediction": ["x", "x"]}).write_parquet(pq)
    store.con.execute(f"COPY (SELECT request_id, CASE WHEN request_id = 'f' THEN 'infinity'::TIMESTAMP ELSE ts END "
                      f"AS ts, model_version, prediction FROM read_parquet('{pq}')) TO '{tmp_path / '4.parquet'}'")
    r = store.ingest("predictions", [tmp_path / "4.parquet"]).results[0]
    assert (r.accepted, r.quarantined, dict(r.reasons)) == (1, 1, {R.TS_INFINITE: 1})


def _parquet_files(tmp_path: Path) -> list[Path]:
    """Parquet prediction files covering what one batched call must decide as file-by-file calls would."""
    def frame(ids, scores, hour=10, day=2, segment=None):
        n = len(ids)
        data = {"request_id": ids, "ts": [dt.datetime(2026, 11, day, hour)] * n,
                "model_version": ["v1"] * n, "prediction": ["approved"] * n, "score": scores,
                "segment": segment or ["s1"] * n}
        return pl.DataFrame(data)
    d = tmp_path / "in"
    d.mkdir()
    specs = [
        ("01_ok.parquet", frame(["a", "b"], ["0.1", "0.2"])),
        ("02_bad.parquet", frame(["c", None, "d", "d"], ["0.1", "0.2", "0.3", "0.4"])),  # no id, repeat
        ("03_repeats_01.parquet", frame(["a", "f"], ["0.1", "0.2"], hour=11)),  # 'a' already loaded by 01
        ("04_ok.parquet", frame(["g", "h"], ["0.5", "0.6"], day=3)),
        ("05_same_as_04.parquet", frame(["g", "h"], ["0.5", "0.6"], day=3)),  # same content: skipped
        ("06_other_columns.parquet", frame(["i"], ["0.7"], day=4).drop("segment")),  # ends the batch
        ("07_ok.parquet", frame(["j", "k"], ["0.8", "0.9"], day=4)),
        ("08_repeats_07.parquet", frame(["k", "l"], ["0.1", "0.2"], day=5)),  # 'k' of 07, a day later
        ("09_nan_score.parquet", frame(["m", "n"], ["nan", "0.2"], day=5)),
    ]
    paths = []
    for name, f in specs:
        f.with_columns(pl.col("score").cast(pl.Float64)).write_parquet(d / name)
        paths.append(d / name)
    (d / "05_same_as_04.parquet").write_bytes((d / "04_ok.parquet").read_bytes())
    return paths


def _store_state(store: Store) -> dict:
    keys = "request_id, ts, model_version, prediction, score, segment"
    return {
        "predictions": store.sql(f"SELECT {keys}, l.path FROM predictions JOIN ingest_log l USING (ingest_id) "
                                 f"ORDER BY ALL").rows(),
        "quarantine": store.sql("SELECT source_file, row_number, reason, CAST(raw AS VARCHAR) FROM quarantine ORDER BY ALL").rows(),
        "log": store.sql("SELECT path, sha256, rows_read, accepted, quarantined FROM ingest_log ORDER BY ALL").rows(),
        "covariates": store.sql("SELECT name, type FROM covariates ORDER BY 1").rows(),
    }


def _outcomes(report) -> list[tuple]:
    return [(Path(r.path).name, r.status, r.rows_read, r.accepted, r.quarantined, r.reasons, r.new_covariates)
            for r in report.results]


def test_parquet_files_of_one_call_load_together_as_they_would_one_by_one(tmp_path):
    # several Parquet files in one call are validated and inserted by one statement in one
    # transaction; rejected rows, repeats within a file, repeats of earlier files and of the
    # store, skipped content and a schema change must come out exactly as with one call per file
    paths = _parquet_files(tmp_path)
    with Store(tmp_path / "one.duckdb") as one, Store(tmp_path / "all.duckdb") as together:
        singles = [one.ingest("predictions", p) for p in paths]
        report = together.ingest("predictions", tmp_path / "in")
        assert _outcomes(report) == [o for s in singles for o in _outcomes(s)]
        assert _store_state(together) == _store_state(one)
        outcome = {Path(r.path).name: r for r in report.results}
        assert dict(outcome["02_bad.parquet"].reasons) == {
            R.missing("request_id"): 1, R.DUP_FILE: 1}
        assert dict(outcome["03_repeats_01.parquet"].reasons) == {R.DUP_STORE: 1}
        assert dict(outcome["08_repeats_07.parquet"].reasons) == {R.DUP_STORE: 1}
        assert dict(outcome["09_nan_score.parquet"].reasons) == {R.NOT_FINITE: 1}
        assert outcome["05_same_as_04.parquet"].status == "skipped"
        # the files before the schema change went through one batch, those after it through another
        assert "one transaction with 3 other file(s)" in outcome["01_ok.parquet"].message
        assert "one transaction with 2 other file(s)" in outcome["07_ok.parquet"].message
        # ingest ids follow the file order, one ingest_log row per file
        ids = [r.ingest_id for r in report.results if r.status == "ingested"]
        assert ids == sorted(ids) and len(set(ids)) == len(ids) == 8
        # a second call skips every file by content
        again = together.ingest("predictions", tmp_path / "in")
        assert {r.status for r in again.results} == {"skipped"}


def test_a_failing_batch_is_rolled_back_and_its_files_load_one_by_one(tmp_path, monkeypatch):
    paths = _parquet_files(tmp_path)

    def broken(con, ids):
        raise duckdb.IOException("simulated failure after the batch insert")

    monkeypatch.setattr(ingest_batch, "_batch_repeats", broken)
    with Store(tmp_path / "one.duckdb") as one, Store(tmp_path / "all.duckdb") as together:
        singles = [one.ingest("predictions", p) for p in paths]
        report = together.ingest("predictions", tmp_path / "in")
        # nothing of the failed batches was kept: every file loads (or is skipped) on its own
        assert _outcomes(report) == [o for s in singles for o in _outcomes(s)]
        assert not any("one transaction" in r.message for r in report.results)
        assert _store_state(together) == _store_state(one)


@pytest.mark.parametrize("where", ["_ingest_file", "_ingest_batch"])
def test_interrupts_and_fatal_errors_end_the_ingest_with_a_clear_message(store, tmp_path, monkeypatch, where):
    # a batch is two or more Parquet files in one call; one CSV file takes the one-file path
    from toolkit.store.ingest import entry as ing  # where _ingest_files and _ingest_guarded read them

    if where == "_ingest_batch":
        files = []
        for i in range(2):
            f = tmp_path / f"{i}.parquet"
            pl.DataFrame({"request_id": [f"r{i}"], "ts": [dt.datetime(2026, 11, 2, 10)], "model_version": ["v1"],
                          "prediction": ["x"]}).write_parquet(f)
            files.append(f)
        label = "0.parquet and 1 more file(s)"
    else:
        files = [write(tmp_path / "a.csv", "request_id,ts,model_version,prediction\nr,2026-11-02T10:00:00Z,v1,x\n")]
        label = "a.csv"

    def fail_with(exc):
        def boom(*args, **kwargs):
            raise exc
        monkeypatch.setattr(ing, where, boom)

    fail_with(duckdb.InterruptException("INTERRUPT Error: Interrupted!"))
    with pytest.raises(KeyboardInterrupt, match=f"interrupted while ingesting .*{re.escape(label)}"):
        store.ingest("predictions", files)
    fail_with(RuntimeError("Query interrupted"))
    with pytest.raises(KeyboardInterrupt, match="interrupted while ingesting"):
        store.ingest("predictions", files)
    fail_with(duckdb.FatalException("FATAL Error: disk gone"))
    several = where == "_ingest_batch"
    with pytest.raises(StoreError, match=("nothing from these files was stored" if several
                                          else "nothing from this file was stored") + r".*0 file\(s\) before"):
        store.ingest("predictions", files)
    fail_with(RuntimeError("something else"))
    with pytest.raises(RuntimeError, match="something else"):
        store.ingest("predictions", files)
    assert store.counts()["predictions"] == 0


def test_a_question_mark_in_a_column_name_is_not_a_placeholder(tmp_path):
    # found in review: the row-check parameter count read the ? of a quoted covariate name as a placeholder
    from toolkit.sqlutil import placeholders

    assert placeholders('SELECT ? || "clicked?" || \'why?\' || ?') == 2
    src = write(tmp_path / "p.csv", "request_id,ts,model_version,score,prediction,clicked?\n"
                                    "r1,2026-11-09T10:00:00Z,v1,0.5,yes,3\nr2,2026-11-09T10:01:00Z,v1,0.6,no,4\n")
    with Store(tmp_path / "s.duckdb") as store:
        report = store.ingest("predictions", src)
        assert report.accepted == 2 and report.quarantined == 0
        assert store.sql('SELECT sum("clicked?") AS s FROM predictions')["s"][0] == 7
