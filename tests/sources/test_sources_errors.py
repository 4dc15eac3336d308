"""Adapters and bad input.

Broken native records go to quarantine with a reason that names the value
and what was expected (rows read = accepted + quarantined); user errors
raise a message that says what to fix.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.sources.test_sources_native import (bentoml_data, kserve_events, sagemaker_record, seldon_record)
from toolkit import Store
from toolkit.errors import InputError

ROOT = Path(__file__).resolve().parents[2]
ROW = {"request_id": "req-000001", "ts": dt.datetime(2026, 11, 2, 10, 0, 1, 250000), "model_version": "v1-5",
       "prediction": "approved", "score": 0.125, "region": "eu", "instance_id": "eu-1", "amount": 42.5,
       "channel": "web"}


def _row(i: int) -> dict:
    return {**ROW, "request_id": f"req-{i:06d}", "ts": ROW["ts"] + dt.timedelta(minutes=i)}


def _write(path: Path, records: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


def _reasons(store: Store) -> dict[int, str]:
    return dict(store.con.execute("SELECT row_number, reason FROM quarantine ORDER BY 1").fetchall())


def test_sagemaker_bad_records_are_quarantined_with_the_value(tmp_path):
    good = [sagemaker_record(_row(i)) for i in range(4)]
    broken_json = sagemaker_record(_row(10))
    broken_json["captureData"]["endpointOutput"]["data"] = '{"predictions": [{"score": 0.4'
    bad_b64 = sagemaker_record(_row(11), base64_output=True)
    bad_b64["captureData"]["endpointOutput"]["data"] = "not*base64!"
    no_time = sagemaker_record(_row(12))
    del no_time["eventMetadata"]["inferenceTime"]
    bad_time = sagemaker_record(_row(13))
    bad_time["eventMetadata"]["inferenceTime"] = "yesterday noon"
    path = _write(tmp_path / "cap" / "fraud-eu" / "v1-5" / "2026" / "11" / "02" / "10" / "f.jsonl",
                  [*good, broken_json, "", bad_b64, no_time, '{"captureData": ', bad_time])
    with Store(tmp_path / "s.duckdb") as store:
        report = store.ingest("predictions", [path], format="sagemaker")
        assert report.ok, report.summary()
        assert (report.rows_read, report.accepted, report.quarantined) == (9, 4, 5)
        reasons = _reasons(store)
        raw = store.con.execute("SELECT raw->>'$.eventMetadata.inferenceId' FROM quarantine WHERE row_number = 5"
                                ).fetchone()[0]
    assert set(reasons) == {5, 7, 8, 9, 10}  # physical line numbers (line 6 is blank, not a record)
    assert "endpointOutput.data is not valid JSON" in reasons[5]
    assert json.dumps('{"predictions": [{"score": 0.4') in reasons[5]
    assert '"not*base64!" is not valid base64' in reasons[7]
    assert "eventMetadata.inferenceTime is missing" in reasons[8] and "expected an ISO 8601 time" in reasons[8]
    assert "record is not valid JSON" in reasons[9] and json.dumps('{"captureData": ') in reasons[9]
    assert '"yesterday noon" is not an ISO 8601 time' in reasons[10]
    assert raw == "req-000010"  # the native record is kept whole


def test_kserve_unpaired_and_broken_events_are_quarantined(tmp_path):
    events = []
    for i in range(3):
        events += list(kserve_events(_row(i), namespace="fraud-eu", endpoint="default"))
    lone_request, _ = kserve_events(_row(5), namespace="fraud-eu", endpoint="default")
    _, lone_response = kserve_events(_row(6), namespace="fraud-eu", endpoint="default")
    broken_req, broken_resp = kserve_events(_row(7), namespace="fraud-eu", endpoint="default")
    broken_resp = {**broken_resp, "data": '{"outputs": [{"name": "predict"'}  # a string of broken JSON
    b64_req, b64_resp = kserve_events(_row(8), namespace="fraud-eu", endpoint="default")
    b64_req = {k: v for k, v in b64_req.items() if k != "data"} | {
        "data_base64": base64.b64encode(json.dumps(b64_req["data"]).encode()).decode()}
    events += [lone_request, broken_req, lone_response, broken_resp, b64_req, b64_resp, "{oops"]
    path = _write(tmp_path / "events.jsonl", events)
    with Store(tmp_path / "k.duckdb") as store:
        report = store.ingest("predictions", [path], format="kserve")
        # 13 events: 5 pairs (3 good, the broken one, the base64 one) + 3 events in no pair
        assert (report.rows_read, report.accepted, report.quarantined) == (8, 4, 4)
        reasons = sorted(_reasons(store).values())
        stored = store.con.execute("SELECT request_id, amount FROM predictions ORDER BY 1").fetchall()
    assert stored[-1] == ("req-000008", 42.5)  # data_base64 decoded
    assert any(r.startswith('unpaired request: ce-id "req-000005" has no org.kubeflow.serving.inference.response')
               for r in reasons)
    assert any(r.startswith('unpaired response: ce-id "req-000006"') for r in reasons)
    assert any("response data is not valid JSON" in r and json.dumps('{"outputs": [{"name": "predict"') in r
               for r in reasons)
    assert any("event is not valid JSON" in r and '"{oops"' in r for r in reasons)


def test_seldon_bad_records_are_quarantined(tmp_path):
    good = [seldon_record({**_row(i), "model_version": "fraud_1"}, namespace="fraud-eu", offset=i) for i in range(3)]
    no_ts = seldon_record({**_row(4), "model_version": "fraud_1"}, namespace="fraud-eu", offset=4)
    del no_ts["timestamp"]
    pipeline = seldon_record({**_row(5), "model_version": "fraud_1"}, namespace="fraud-eu", offset=5)
    pipeline["topic"] = "seldon.fraud-eu.pipeline.scoring.outputs"
    broken = seldon_record({**_row(6), "model_version": "fraud_1"}, namespace="fraud-eu", offset=6)
    broken["value"] = '{"modelName": "fraud_1", "outputs": ['
    path = _write(tmp_path / "out.jsonl", [*good, no_ts, pipeline, broken])
    with Store(tmp_path / "s.duckdb") as store:
        report = store.ingest("predictions", [path], format="seldon")
        assert (report.rows_read, report.accepted, report.quarantined) == (6, 3, 3)
        reasons = _reasons(store)
        versions = store.con.execute("SELECT DISTINCT model_version FROM predictions").fetchall()
    assert versions == [("fraud_1",)]
    assert "record has no timestamp" in reasons[4]
    assert 'topic "seldon.fraud-eu.pipeline.scoring.outputs" is not a Seldon model outputs topic' in reasons[5]
    assert "value is not valid JSON" in reasons[6] and json.dumps('{"modelName": "fraud_1", "outputs": [') in reasons[6]


def test_bentoml_bad_lines_and_schema_errors(tmp_path):
    mon = tmp_path / "monitoring" / "fraud"
    data = _write(mon / "data" / "data.0.log",
                  [bentoml_data(_row(0), "UTC"), {k: v for k, v in bentoml_data(_row(1), "UTC").items() if k != "pred"},
                   "not json", bentoml_data(_row(2), "UTC")])
    with Store(tmp_path / "b.duckdb") as store:
        missing = store.ingest("predictions", [data], format="bentoml")
        assert not missing.ok and "no BentoML schema file" in missing.results[0].message
        schema = {"meta_data": {"bento_name": "fraud_svc", "bento_version": "abc"},
                  "columns": [{"name": "amount", "role": "feature", "type": "numerical"},
                              {"name": "pred", "role": "prediction", "type": "categorical"}]}
        _write(mon / "schema" / "schema.0.log", [schema])
        report = store.ingest("predictions", [data], format="bentoml")
        assert (report.rows_read, report.accepted, report.quarantined) == (4, 2, 2)
        reasons = _reasons(store)
        assert "no value for the prediction column 'pred'" in reasons[2]
        assert "record is not valid JSON" in reasons[3]
        _write(mon / "schema" / "schema.0.log", [schema, {**schema, "meta_data": {"bento_version": "def"}}])
        failed = store.ingest("predictions", [data], format="bentoml", force=True)
        assert not failed.ok and "name 2 Bento versions (abc, def)" in failed.results[0].message
        # the refused re-ingest changed nothing: the first ingest's rows, quarantine and log stay as they were
        counts = store.con.execute("SELECT (SELECT count(*) FROM predictions), (SELECT count(*) FROM quarantine), "
                                   "(SELECT count(*) FROM ingest_log WHERE superseded_by IS NULL)").fetchone()
        assert counts == (2, 2, 1)


def test_user_errors_name_what_to_fix(tmp_path):
    path = _write(tmp_path / "x.jsonl", [sagemaker_record(_row(0))])
    with Store(tmp_path / "e.duckdb") as store:
        with pytest.raises(InputError, match=r"unknown log format 'tfserving'; known formats: sagemaker, kserve, "
                                             r"seldon, bentoml"):
            store.ingest("predictions", [path], format="tfserving")
        with pytest.raises(InputError, match="applies to prediction logs only"):
            store.ingest("deployments", [path], format="kserve")
        with pytest.raises(InputError, match="says format = 'kserve' but the format given is 'seldon'"):
            store.ingest("predictions", [path], mapping={"format": "kserve"}, format="seldon")
        report = store.ingest("predictions", [path], format="sagemaker")  # not under the capture layout
        assert not report.ok and "data-capture layout" in report.results[0].message
        assert "[defaults] model_version" in report.results[0].message
        ok = store.ingest("predictions", [path], format="sagemaker", mapping={"defaults": {"model_version": "v9"}})
        assert ok.accepted == 1
        assert store.con.execute("SELECT model_version FROM predictions").fetchone()[0] == "v9"
        (tmp_path / "empty").mkdir()
        with pytest.raises(InputError, match="holds no seldon log file"):
            store.ingest("predictions", [tmp_path / "empty"], format="seldon")


def test_cli_format_option(tmp_path):
    events = [e for i in range(3) for e in kserve_events(_row(i), namespace="ns", endpoint="default")]
    path = _write(tmp_path / "ev.jsonl", events)
    run = lambda *args: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "toolkit.cli", *args], capture_output=True, text=True, cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})
    ok = run("ingest", "predictions", "--format", "kserve", str(path), "--db", str(tmp_path / "c.duckdb"))
    assert ok.returncode == 0, ok.stderr
    assert "3 rows read = 3 accepted + 0 quarantined" in ok.stdout
    toml = tmp_path / "eu.toml"
    toml.write_text('format = "kserve"\n[defaults]\nregion = "eu"\n')
    db = str(tmp_path / "c.duckdb")
    again = run("ingest", "predictions", "--mapping", str(toml), "--force", str(path), "--db", db)
    assert again.returncode == 0, again.stderr
    with Store(tmp_path / "c.duckdb") as store:
        assert store.con.execute("SELECT region, count(*) FROM predictions GROUP BY 1").fetchall() == [("eu", 3)]
    bad = run("ingest", "predictions", "--format", "torchserve", str(path), "--db", str(tmp_path / "c.duckdb"))
    assert bad.returncode == 2
    assert "vdrift: " in bad.stderr and "known formats: sagemaker, kserve, seldon, bentoml" in bad.stderr


def test_a_count_that_disagrees_with_the_adapter_refuses_the_file(tmp_path, monkeypatch):
    """The independent count is a real check: if it disagrees with what the SQL read, nothing is stored."""
    import toolkit.sources.kserve as kserve

    events = [e for i in range(2) for e in kserve_events(_row(i), namespace="ns", endpoint="default")]
    path = _write(tmp_path / "ev.jsonl", events)
    monkeypatch.setattr(kserve, "count_rows", lambda p: 3)
    with Store(tmp_path / "n.duckdb") as store:
        report = store.ingest("predictions", [path], format="kserve")
        assert not report.ok
        message = report.results[0].message
        assert "the kserve adapter read 2 rows, but the file has 3 rows (request/response pairs" in message
        assert store.con.execute("SELECT count(*) FROM predictions").fetchone()[0] == 0
        assert store.con.execute("SELECT count(*) FROM ingest_log").fetchone()[0] == 0
