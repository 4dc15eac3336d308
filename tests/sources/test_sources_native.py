"""Test support (no tests here): a small fleet with a planted version problem, and native log writers.

:func:`fleet` generates contract-format prediction rows (online serving in
three regions over a few days) with a planted problem, and :func:`deployments`
the intended history in contract format. The ``write_*`` functions write the
rows as each serving platform writes its logs (the layouts of
docs/sources.md, which follow the platforms' own documentation), so the
adapters' tests ingest native files and audit the result.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid
import zoneinfo
from pathlib import Path

import numpy as np
import polars as pl

START = dt.datetime(2026, 11, 2)
REGIONS = ("eu", "us", "apac")
INSTANCES = {"eu": 4, "us": 3, "apac": 2}


def fleet(scenario: str, *, rows: int, days: float, labels: dict[str, str], seed: int = 0) -> pl.DataFrame:
    """Online predictions over ``days`` from START; ``labels`` renames v1.5 / v1.6 / v2.0 as a platform names them.

    ``canary``: from 30% of the window, 10% of eu traffic goes to v1.6 and
    stays there (the rollout is never completed). ``rollback``: v2.0 replaces
    v1.5 everywhere at 20% of the window; at 50% us rolls back to v1.5, but
    instance us-3 keeps serving v2.0.
    """
    rng = np.random.default_rng(seed)
    region = np.array(REGIONS)[rng.choice(3, rows, p=[0.45, 0.35, 0.2])]
    instance = np.array([f"{r}-{rng.integers(1, INSTANCES[r] + 1)}" for r in region])
    frac = np.sort(rng.uniform(0, 1, rows))
    ts = [START + dt.timedelta(seconds=round(float(f) * days * 86400, 3)) for f in frac]
    amount = np.round(rng.lognormal(4, 1, rows), 2)
    channel = rng.choice(["web", "app", "pos"], rows)
    version = np.array(["v1.5"] * rows, dtype=object)
    if scenario == "canary":
        version[(region == "eu") & (frac >= 0.3) & (rng.uniform(size=rows) < 0.10)] = "v1.6"
    elif scenario == "rollback":
        version[frac >= 0.2] = "v2.0"
        version[(region == "us") & (frac >= 0.5) & (instance != "us-3")] = "v1.5"
    else:
        raise ValueError(scenario)
    score = np.round(1 / (1 + np.exp(-(np.log(amount) - 5 + (version == "v2.0") * 0.8))), 6)
    return pl.DataFrame({
        "request_id": [f"req-{i:06d}" for i in range(rows)], "ts": ts,
        "model_version": [labels[v] for v in version], "prediction": np.where(score > 0.5, "declined", "approved"),
        "score": score, "region": region, "instance_id": instance, "amount": amount, "channel": channel,
    })


def deployments(scenario: str, *, days: float, labels: dict[str, str], scope: dict[str, str]) -> pl.DataFrame:
    """The intended history of :func:`fleet` in contract format (``scope`` names the regions as the platform does)."""
    at = lambda f: START + dt.timedelta(seconds=f * days * 86400)  # noqa: E731
    ev = [dict(ts=dt.datetime(2026, 10, 1), component="serving", scope="all", event="deploy",
               version=labels["v1.5"], traffic_pct=None, expected_end=None)]
    if scenario == "canary":
        ev.append(dict(ts=at(0.3), component="serving", scope=scope["eu"], event="rollout_start",
                       version=labels["v1.6"], traffic_pct=10.0, expected_end=at(0.5)))
    else:
        ev.append(dict(ts=at(0.2), component="serving", scope="all", event="deploy", version=labels["v2.0"],
                       traffic_pct=None, expected_end=None))
        ev.append(dict(ts=at(0.5), component="serving", scope=scope["us"], event="rollback",
                       version=labels["v1.5"], traffic_pct=None, expected_end=None))
    return pl.DataFrame(ev)


def _iso_z(t: dt.datetime) -> str:
    """UTC time as SageMaker's capture writes it (whole seconds, ``2026-11-02T10:00:00Z``)."""
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def _rfc3339_nano(t: dt.datetime) -> str:
    """UTC time as KServe's logger (Go, RFC 3339 with nanoseconds) writes it: ``2026-11-02T10:00:00.491000123Z``."""
    return t.strftime("%Y-%m-%dT%H:%M:%S.") + f"{t.microsecond:06d}123Z"


def _lines(path: Path, records: list) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records))
    return path


# -- SageMaker data capture ---------------------------------------------------------------------

def sagemaker_record(row: dict, *, base64_output: bool = False) -> dict:
    """One data-capture record: CSV input (amount,channel), JSON output, as SageMaker captures them."""
    out = json.dumps({"predictions": [{"predicted_label": row["prediction"], "score": row["score"]}]})
    output = {"observedContentType": "application/json", "mode": "OUTPUT", "data": out, "encoding": "JSON"}
    if base64_output:  # a content type not listed in CaptureContentTypeHeader is captured base64-encoded
        output = {**output, "data": base64.b64encode(out.encode()).decode(), "encoding": "BASE64"}
    return {
        "captureData": {
            "endpointInput": {"observedContentType": "text/csv", "mode": "INPUT",
                              "data": f"{row['amount']},{row['channel']}", "encoding": "CSV"},
            "endpointOutput": output,
        },
        "eventMetadata": {"eventId": str(uuid.uuid5(uuid.NAMESPACE_URL, row["request_id"])),
                          "inferenceId": row["request_id"], "inferenceTime": _iso_z(row["ts"])},
        "eventVersion": "0",
    }


def write_sagemaker(frame: pl.DataFrame, root: Path) -> list[Path]:
    """``root/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``: one file per endpoint, variant and hour."""
    groups: dict[Path, list] = {}
    for i, row in enumerate(frame.iter_rows(named=True)):
        t, endpoint = row["ts"], f"fraud-{row['region']}"
        name = f"{endpoint}-{row['model_version']}-{t:%Y-%m-%d-%H}-00-00-000-{t:%H}a1b2.jsonl"
        path = root / endpoint / row["model_version"] / f"{t:%Y}" / f"{t:%m}" / f"{t:%d}" / f"{t:%H}" / name
        groups.setdefault(path, []).append(sagemaker_record(row, base64_output=i % 7 == 0))
    return [_lines(p, recs) for p, recs in groups.items()]


# -- KServe inference logger ----------------------------------------------------------------------

def kserve_events(row: dict, *, namespace: str, endpoint: str) -> tuple[dict, dict]:
    """The request and response CloudEvents (structured mode, v2 bodies) KServe's logger sends for one call."""
    common = {"specversion": "1.0", "id": row["request_id"], "source": "http://localhost:9081/",
              "datacontenttype": "application/json", "inferenceservicename": "fraud", "namespace": namespace,
              "component": "predictor", "endpoint": endpoint}
    request = {**common, "type": "org.kubeflow.serving.inference.request", "time": _rfc3339_nano(row["ts"]),
               "data": {"id": row["request_id"], "inputs": [
                   {"name": "amount", "shape": [1], "datatype": "FP64", "data": [row["amount"]]},
                   {"name": "channel", "shape": [1], "datatype": "BYTES", "data": [row["channel"]]}]}}
    response = {**common, "type": "org.kubeflow.serving.inference.response",
                "time": _rfc3339_nano(row["ts"] + dt.timedelta(milliseconds=12)),
                "data": {"model_name": "fraud", "model_version": row["model_version"], "id": row["request_id"],
                         "outputs": [
                             {"name": "predict", "shape": [1], "datatype": "BYTES", "data": [row["prediction"]]},
                             {"name": "probability", "shape": [1], "datatype": "FP64", "data": [row["score"]]}]}}
    return request, response


def write_kserve(frame: pl.DataFrame, root: Path, canary_version: str) -> list[Path]:
    """One message-dumper file per region (namespace ``fraud-<region>``), events in the order they arrived."""
    out = []
    for region in REGIONS:
        events = []
        for row in frame.filter(pl.col("region") == region).iter_rows(named=True):
            endpoint = "canary" if row["model_version"] == canary_version else "default"
            request, response = kserve_events(row, namespace=f"fraud-{region}", endpoint=endpoint)
            events += [(row["ts"], request), (row["ts"] + dt.timedelta(milliseconds=12), response)]
        events.sort(key=lambda e: e[0])
        out.append(_lines(root / f"fraud-{region}" / "events.jsonl", [e for _, e in events]))
    return out


# -- Seldon Core 2 Kafka output records -------------------------------------------------------------

def seldon_record(row: dict, *, namespace: str, offset: int) -> dict:
    """One record of ``seldon.<namespace>.model.fraud.outputs`` with its headers and decoded V2 response."""
    label = row["model_version"]
    return {
        "topic": f"seldon.{namespace}.model.fraud.outputs", "partition": 0, "offset": offset,
        "timestamp": int(row["ts"].replace(tzinfo=dt.UTC).timestamp() * 1000), "key": row["request_id"],
        "headers": {"x-request-id": [row["request_id"]], "x-seldon-route": [f":{label}:"],
                    "x-envoy-upstream-service-time": ["4"]},
        "value": {"modelName": label, "modelVersion": "1", "id": row["request_id"], "outputs": [
            {"name": "predict", "datatype": "BYTES", "shape": ["1", "1"],
             "contents": {"bytesContents": [base64.b64encode(row["prediction"].encode()).decode()]}},
            {"name": "probability", "datatype": "FP64", "shape": ["1", "1"],
             "contents": {"fp64Contents": [row["score"]]}}]},
    }


def write_seldon(frame: pl.DataFrame, root: Path) -> list[Path]:
    """One export file per namespace ``fraud-<region>`` of its model outputs topic."""
    out = []
    for region in REGIONS:
        rows = frame.filter(pl.col("region") == region).iter_rows(named=True)
        recs = [seldon_record(r, namespace=f"fraud-{region}", offset=i) for i, r in enumerate(rows)]
        out.append(_lines(root / f"seldon.fraud-{region}.model.fraud.outputs.jsonl", recs))
    return out


# -- BentoML monitoring -----------------------------------------------------------------------------

BENTO_COLUMNS = [{"name": "amount", "role": "feature", "type": "numerical"},
                 {"name": "channel", "role": "feature", "type": "categorical"},
                 {"name": "pred", "role": "prediction", "type": "categorical"},
                 {"name": "probability", "role": "prediction", "type": "numerical"}]


def bentoml_data(row: dict, zone: str) -> dict:
    """One monitoring data line: the logged columns, then timestamp (server local time), request_id, trace_id."""
    local = row["ts"].replace(tzinfo=dt.UTC).astimezone(zoneinfo.ZoneInfo(zone)).replace(tzinfo=None)
    return {"amount": row["amount"], "channel": row["channel"], "pred": row["prediction"],
            "probability": row["score"], "timestamp": local.isoformat(),
            "request_id": str(10**15 + int(row["request_id"][4:])),
            "trace_id": uuid.uuid5(uuid.NAMESPACE_URL, row["request_id"]).hex}


def write_bentoml(frame: pl.DataFrame, root: Path, zone: str) -> dict[tuple[str, str], Path]:
    """``root/<pod>/monitoring/fraud/{data,schema}/*.0.log``: one pod per region, instance and Bento version."""
    pods = {}
    for (region, instance, version), part in frame.group_by(["region", "instance_id", "model_version"]):
        pod = root / f"{instance}-{version}" / "monitoring" / "fraud"
        _lines(pod / "schema" / "schema.0.log", [{"meta_data": {"bento_name": "fraud_svc", "bento_version": version},
                                                  "columns": BENTO_COLUMNS}])
        _lines(pod / "data" / "data.0.log", [bentoml_data(r, zone) for r in part.sort("ts").iter_rows(named=True)])
        pods[(region, instance, version)] = pod.parent.parent
    return pods
