"""Platform adapters end to end: native logs with a planted version problem are ingested and audited.

Each test writes a small fleet's predictions (tests/sources/test_sources_native.py) in one
platform's native layout, ingests it with the adapter, checks the rows-read
identity and the stored values against the generated rows, and audits the
store: the planted problem must be found with its scope and version.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest

from tests.sources.test_sources_native import (deployments, fleet, kserve_events, sagemaker_record, write_bentoml, write_kserve,
                                  write_sagemaker, write_seldon)
from toolkit import Store
from toolkit.audit import audit


def _deploy(store: Store, tmp: Path, frame: pl.DataFrame) -> None:
    path = tmp / "deployments.csv"
    frame.write_csv(path)
    report = store.ingest("deployments", [path])
    assert report.accepted == frame.height


def _finding(store: Store, kind: str, region: str) -> dict:
    found = [f for f in audit(store).findings.to_dicts() if f["kind"] == kind and f["region"] == region]
    assert found, f"no {kind} finding in {region}"
    return found[0]


def _stored(store: Store, frame: pl.DataFrame, region_of: dict[str, str] | None = None) -> pl.DataFrame:
    """Stored rows joined to the generated ones by request id (all must be there)."""
    got = store.sql("SELECT request_id, ts, model_version, prediction, score, region FROM predictions")
    joined = frame.join(got, on="request_id", how="inner", suffix="_stored")
    assert joined.height == frame.height == got.height
    return joined


def _same_time(joined: pl.DataFrame, tolerance: dt.timedelta = dt.timedelta(milliseconds=1)) -> None:
    diff = (joined["ts"].dt.replace_time_zone(None) - joined["ts_stored"]).abs().max()
    assert diff <= tolerance


def test_sagemaker_stale_variant_after_rollback(tmp_path):
    labels = {"v1.5": "v1-5", "v1.6": "v1-6", "v2.0": "v2-0"}  # SageMaker variant names allow no dots
    days = 2.0
    frame = fleet("rollback", rows=3000, days=days, labels=labels, seed=3)
    files = write_sagemaker(frame, tmp_path / "capture")
    assert len(files) > 50  # one file per endpoint, variant and hour, as SageMaker writes them
    with Store(tmp_path / "s.duckdb") as store:
        _deploy(store, tmp_path, deployments("rollback", days=days, labels=labels,
                                             scope={r: f"fraud-{r}" for r in ("eu", "us", "apac")}))
        report = store.ingest("predictions", [tmp_path / "capture"],
                              mapping={"format": "sagemaker", "columns": {"region": "endpoint"}})
        assert report.ok and len(report.results) == len(files)
        assert report.rows_read == frame.height == report.accepted + report.quarantined
        assert report.quarantined == 0
        joined = _stored(store, frame)
        assert (joined["model_version"] == joined["model_version_stored"]).all()  # the variant, from the path
        assert (("fraud-" + joined["region"]) == joined["region_stored"]).all()  # the endpoint, mapped to region
        assert (joined["prediction"] == joined["prediction_stored"]).all()
        assert (joined["score"] - joined["score_stored"]).abs().max() < 1e-9  # base64 records decoded too
        _same_time(joined, dt.timedelta(seconds=1))  # inferenceTime has whole seconds
        amounts = store.sql("SELECT request_id, input_1 FROM predictions")
        assert dict(amounts.iter_rows()) == dict(frame.select("request_id", "amount").iter_rows())
        formats = store.con.execute("SELECT DISTINCT format FROM ingest_log WHERE kind = 'predictions'").fetchall()
        assert formats == [("sagemaker",)]
        finding = _finding(store, "incomplete_rollback", "fraud-us")
    assert finding["component"] == "online" and finding["versions"] == ["v2-0"]


def test_kserve_canary_stuck_at_its_traffic_share(tmp_path):
    labels = {"v1.5": "v1.5", "v1.6": "v1.6", "v2.0": "v2.0"}
    days = 10.0
    frame = fleet("canary", rows=3000, days=days, labels=labels, seed=5)
    files = write_kserve(frame, tmp_path / "dumper", canary_version="v1.6")
    with Store(tmp_path / "k.duckdb") as store:
        _deploy(store, tmp_path, deployments("canary", days=days, labels=labels,
                                             scope={r: r for r in ("eu", "us", "apac")}))
        for file in files:  # one cluster per region: the region is the mapping's default for its file
            region = file.parent.name.removeprefix("fraud-")
            report = store.ingest("predictions", [file], format="kserve", mapping={"defaults": {"region": region}})
            assert report.ok and report.quarantined == 0
            events = sum(1 for line in file.read_text().splitlines() if line.strip())
            assert report.rows_read == report.accepted == events // 2  # one row per request/response pair
        joined = _stored(store, frame)
        assert (joined["model_version"] == joined["model_version_stored"]).all()  # the v2 response's model_version
        assert (joined["region"] == joined["region_stored"]).all()
        assert (joined["prediction"] == joined["prediction_stored"]).all()
        assert (joined["score"] - joined["score_stored"]).abs().max() < 1e-9
        _same_time(joined)
        types = dict(store.con.execute("SELECT name, type FROM covariates").fetchall())
        assert types == {"amount": "DOUBLE", "channel": "VARCHAR"}  # the v2 input tensors, by name
        finding = _finding(store, "stuck_rollout", "eu")
    assert finding["component"] == "online" and finding["versions"] == ["v1.5", "v1.6"]


def test_seldon_stale_model_version_after_rollback(tmp_path):
    labels = {"v1.5": "fraud_1", "v1.6": "fraud_3", "v2.0": "fraud_2"}  # Seldon's versioned model names
    days = 10.0
    frame = fleet("rollback", rows=3000, days=days, labels=labels, seed=7)
    files = write_seldon(frame, tmp_path / "kafka")
    with Store(tmp_path / "sd.duckdb") as store:
        _deploy(store, tmp_path, deployments("rollback", days=days, labels=labels,
                                             scope={r: f"fraud-{r}" for r in ("eu", "us", "apac")}))
        report = store.ingest("predictions", files, mapping={"format": "seldon", "columns": {"region": "namespace"}})
        assert report.ok and report.rows_read == frame.height == report.accepted
        joined = _stored(store, frame)
        assert (joined["model_version"] == joined["model_version_stored"]).all()
        assert (("fraud-" + joined["region"]) == joined["region_stored"]).all()
        assert (joined["prediction"] == joined["prediction_stored"]).all()  # bytesContents, base64-decoded
        assert (joined["score"] - joined["score_stored"]).abs().max() < 1e-9
        _same_time(joined)  # the Kafka record timestamp (epoch ms)
        finding = _finding(store, "incomplete_rollback", "fraud-us")
    assert finding["component"] == "online" and finding["versions"] == ["fraud_2"]


def test_bentoml_stale_bento_on_one_pod_after_rollback(tmp_path):
    labels = {"v1.5": "mzgycaq4mkg3nqtk", "v1.6": "q3zkjxa2ogwd6lg5", "v2.0": "ldbq6yq4b6r5zqtk"}
    days = 10.0
    frame = fleet("rollback", rows=3000, days=days, labels=labels, seed=9)
    pods = write_bentoml(frame, tmp_path / "pods", zone="Europe/Berlin")
    with Store(tmp_path / "b.duckdb") as store:
        _deploy(store, tmp_path, deployments("rollback", days=days, labels=labels,
                                             scope={r: r for r in ("eu", "us", "apac")}))
        for (region, instance, _), pod in sorted(pods.items()):
            mapping = {"format": "bentoml", "timestamps": {"timezone": "Europe/Berlin"},
                       "defaults": {"region": region, "instance_id": instance}}
            report = store.ingest("predictions", [pod], mapping=mapping)  # a directory: its data files
            assert report.ok and report.quarantined == 0 and len(report.results) == 1
        assert store.con.execute("SELECT count(*) FROM predictions").fetchone()[0] == frame.height
        got = store.sql("SELECT request_id, ts, model_version, prediction, score, instance_id, amount "
                        "FROM predictions")
        # BentoML's own request ids: the rows are matched by the generated request id's number
        got = got.with_columns(request_id=pl.format("req-{}", (pl.col("request_id").cast(pl.Int64) - 10**15)
                                                    .cast(pl.Utf8).str.zfill(6)))
        joined = frame.join(got, on="request_id", suffix="_stored")
        assert joined.height == frame.height
        assert (joined["model_version"] == joined["model_version_stored"]).all()  # the schema's bento_version
        assert (joined["instance_id"] == joined["instance_id_stored"]).all()
        assert (joined["amount"] == joined["amount_stored"]).all()
        _same_time(joined)  # local Berlin time read in the mapping's zone
        finding = _finding(store, "incomplete_rollback", "us")
    assert finding["component"] == "online" and finding["versions"] == ["ldbq6yq4b6r5zqtk"]
    assert finding["instance_id"] == "us-3"


@pytest.mark.parametrize("fmt", ["sagemaker", "kserve", "seldon", "bentoml"])
def test_reingest_is_skipped_by_checksum(tmp_path, fmt):
    labels = {"v1.5": "v1-5", "v1.6": "v1-6", "v2.0": "v2-0"}
    frame = fleet("canary", rows=60, days=0.1, labels=labels, seed=1)
    paths = {"sagemaker": lambda: write_sagemaker(frame, tmp_path / "c"),
             "kserve": lambda: write_kserve(frame, tmp_path / "k", "v1-6"),
             "seldon": lambda: write_seldon(frame, tmp_path / "s"),
             "bentoml": lambda: [tmp_path / "b"] if write_bentoml(frame, tmp_path / "b", "UTC") else []}[fmt]()
    with Store(tmp_path / "r.duckdb") as store:
        first = store.ingest("predictions", paths, format=fmt)
        assert first.ok and first.accepted == frame.height
        again = store.ingest("predictions", paths, format=fmt)
        assert all(r.status == "skipped" for r in again.results)
        forced = store.ingest("predictions", paths, format=fmt, force=True)
        assert forced.accepted == frame.height
        assert store.con.execute("SELECT count(*) FROM predictions").fetchone()[0] == frame.height


def test_kserve_v1_bodies_take_the_version_from_the_mapping(tmp_path):
    """v1 bodies (instances / predictions) carry no version: a mapping names the endpoint or gives a default."""
    events = []
    for i, endpoint in enumerate(["default", "canary", "default"]):
        common = {"specversion": "1.0", "id": f"c-{i}", "source": "http://localhost:9081/",
                  "ce-inferenceservicename": "sklearn-iris", "ce-namespace": "default", "ce-component": "predictor",
                  "ce-endpoint": endpoint, "datacontenttype": "application/json"}
        events.append({**common, "type": "org.kubeflow.serving.inference.request",
                       "time": f"2026-11-02T10:00:0{i}Z", "data": {"instances": [[6.8, 2.8, 4.8 + i, 1.4]]}})
        events.append({**common, "type": "org.kubeflow.serving.inference.response",
                       "time": f"2026-11-02T10:00:0{i}.010Z", "data": json.dumps({"predictions": [i % 2]})})
    path = tmp_path / "v1.jsonl"
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    with Store(tmp_path / "v1.duckdb") as store:
        none = store.ingest("predictions", [path], format="kserve")
        assert none.quarantined == 3
        assert none.results[0].reasons == (("missing required value: model_version (absent)", 3),)
        report = store.ingest("predictions", [path], force=True,
                              mapping={"format": "kserve", "columns": {"model_version": "endpoint"}})
        assert (report.rows_read, report.accepted) == (3, 3)
        assert report.results[0].ignored_columns == ()
        rows = store.con.execute("SELECT request_id, model_version, prediction, input_3 FROM predictions "
                                 "ORDER BY 1").fetchall()
        assert rows == [("c-0", "default", "0", 4.8), ("c-1", "canary", "1", 5.8), ("c-2", "default", "0", 6.8)]
        filled = store.ingest("predictions", [path], force=True,
                              mapping={"format": "kserve", "defaults": {"model_version": "iris-v1"}})
        assert filled.accepted == 3
        assert store.con.execute("SELECT DISTINCT model_version FROM predictions").fetchall() == [("iris-v1",)]


def test_kserve_wide_v2_tensor_becomes_one_column_per_value(tmp_path):
    row = fleet("canary", rows=1, days=0.01, labels={"v1.5": "v1", "v1.6": "v2", "v2.0": "v3"}).row(0, named=True)
    request, response = kserve_events(row, namespace="ns", endpoint="default")
    request["data"]["inputs"] = [{"name": "input-0", "shape": [1, 3], "datatype": "FP64", "data": [[1.5, 2.0, 3.0]]}]
    path = tmp_path / "wide.jsonl"
    path.write_text(json.dumps(request) + "\n" + json.dumps(response) + "\n")
    with Store(tmp_path / "w.duckdb") as store:
        assert store.ingest("predictions", [path], format="kserve").accepted == 1
        got = store.con.execute('SELECT "input-0_1", "input-0_2", "input-0_3" FROM predictions').fetchall()
    assert got == [(1.5, 2.0, 3.0)]


def test_sagemaker_json_input_and_metadata_covariates(tmp_path):
    """A JSON input ({"instances": [{...}]}) gives named features; a mapping may keep a metadata column."""
    row = fleet("canary", rows=1, days=0.01, labels={"v1.5": "AllTraffic", "v1.6": "x", "v2.0": "y"}).row(0, named=True)
    rec = sagemaker_record(row)
    rec["captureData"]["endpointInput"] = {
        "observedContentType": "application/json", "mode": "INPUT", "encoding": "JSON",
        "data": json.dumps({"instances": [{"amount": row["amount"], "channel": row["channel"]}]})}
    path = tmp_path / "fraud" / "AllTraffic" / "2026" / "11" / "02" / "00" / "a.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(rec) + "\n")
    with Store(tmp_path / "j.duckdb") as store:
        report = store.ingest("predictions", [path], mapping={
            "format": "sagemaker", "covariates": ["amount", "channel", "endpoint"]})
        assert report.accepted == 1
        got = store.con.execute("SELECT model_version, amount, channel, endpoint FROM predictions").fetchall()
    assert got == [("AllTraffic", row["amount"], row["channel"], "fraud")]


def test_seldon_version_from_the_route_when_the_response_names_none(tmp_path):
    """Without value.modelName the version is the last versioned model of x-seldon-route; headers may be strings."""
    recs = []
    for i, route in enumerate([":fraud_2:", ":fraud_2: :scoring.pipeline:", ":fraud-canary_1:"]):
        recs.append({"topic": "seldon.ns.model.fraud.outputs", "timestamp": 1793578303491 + i, "key": f"k{i}",
                     "headers": {"x-seldon-route": route},
                     "value": json.dumps({"outputs": [{"name": "predict", "datatype": "INT64", "shape": [1],
                                                       "data": [i]}]})})
    path = tmp_path / "routes.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    with Store(tmp_path / "r.duckdb") as store:
        report = store.ingest("predictions", [path], format="seldon",
                              mapping={"covariates": ["seldon_route_model"]})
        assert report.accepted == 3
        rows = store.con.execute("SELECT request_id, model_version, prediction, ts FROM predictions ORDER BY 1"
                                 ).fetchall()
    assert [r[:3] for r in rows] == [("k0", "fraud_2", "0"), ("k1", "fraud_2", "1"), ("k2", "fraud-canary_1", "2")]
    assert rows[0][3] == dt.datetime(2026, 11, 2, 0, 11, 43, 491000)


def test_bentoml_target_column_is_the_outcome(tmp_path):
    mon = tmp_path / "monitoring" / "churn"
    (mon / "schema").mkdir(parents=True)
    (mon / "data").mkdir()
    (mon / "schema" / "schema.1.log").write_text(json.dumps({
        "meta_data": {"bento_name": "churn", "bento_version": "r7"},
        "columns": [{"name": "tenure", "role": "feature", "type": "numerical"},
                    {"name": "label", "role": "prediction", "type": "categorical"},
                    {"name": "churned", "role": "target", "type": "categorical"}]}) + "\n")
    (mon / "data" / "data.1.log").write_text(json.dumps({
        "tenure": 12, "label": "stay", "churned": "no", "timestamp": "2026-11-02T09:30:00.000001",
        "request_id": "77", "trace_id": "0"}) + "\n")
    with Store(tmp_path / "t.duckdb") as store:
        assert store.ingest("predictions", [tmp_path / "monitoring"], format="bentoml").accepted == 1
        row = store.con.execute("SELECT model_version, prediction, outcome, tenure, ts FROM predictions").fetchone()
    assert row == ("r7", "stay", "no", 12.0, dt.datetime(2026, 11, 2, 9, 30, 0, 1))
