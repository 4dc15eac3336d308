"""KServe inference logger: CloudEvents request/response pairs, v1 and v2 (open inference) protocol.

KServe's logger (``spec.predictor.logger``, ``mode: all``) posts two
CloudEvents per inference to its sink, both with the same ``id`` (``ce-id``):
``type`` ``org.kubeflow.serving.inference.request`` with the request body and
``org.kubeflow.serving.inference.response`` with the response body, and the
extension attributes ``inferenceservicename``, ``namespace``, ``component``
(predictor, transformer, explainer) and ``endpoint`` (default / canary).

On disk vdrift reads JSON lines, one CloudEvent per line, in the CloudEvents
JSON format (structured mode; what a message dumper or a Kafka sink of the
broker writes)::

    {"specversion": "1.0", "id": "5e4f...", "type": "org.kubeflow.serving.inference.request",
     "source": "http://localhost:9081/", "time": "2026-11-02T10:00:00.123Z",
     "datacontenttype": "application/json", "inferenceservicename": "fraud",
     "namespace": "eu", "component": "predictor", "endpoint": "canary",
     "data": {"inputs": [{"name": "amount", "shape": [1], "datatype": "FP64", "data": [42.5]}]}}

Attribute names may also carry the binary-mode header prefix (``ce-id``,
``ce-inferenceservicename``, ...); ``data`` may be a JSON value, a string of
JSON, or ``data_base64``.

Rows: one per request/response pair (joined by id within the file); every
event that is not part of exactly one pair is its own row, quarantined with
the reason. So rows read = events - pairs.

Identity: ``model_version`` is the v2 response's ``model_version`` (what
the model server reported); v1 bodies carry none, so a mapping names it
(``model_version = "endpoint"`` gives default/canary, or a default). The
InferenceService, namespace, component and endpoint are metadata columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from ..sqlutil import quote_ident
from ..store.mapping import Mapping
from . import oip
from .common import (ByEnding, LINES_SQL, RAW, REASON, ROW, Source, discover_features, first_reason, json_records,
                     scalar_text, snippet)

REQUEST = "org.kubeflow.serving.inference.request"
RESPONSE = "org.kubeflow.serving.inference.response"


def _attr(name: str) -> str:
    """SQL: a CloudEvent attribute of ``j`` under its structured name or its ``ce-`` header name."""
    return f"coalesce(json_extract_string(j, '$.{name}'), json_extract_string(j, '$.\"ce-{name}\"'))"


def _role(event_type: object) -> str | None:
    if event_type == REQUEST or (isinstance(event_type, str) and event_type.endswith(".inference.request")):
        return "request"
    if isinstance(event_type, str) and event_type.endswith(".inference.response"):
        return "response"
    return None


def _get(rec: dict, name: str) -> object:
    """An attribute under its structured name, else its ``ce-`` header name (as :func:`_attr` reads it)."""
    value = rec.get(name)
    return value if value is not None else rec.get(f"ce-{name}")


def count_rows(path: Path) -> int:
    """Rows of a KServe log, counted in Python: events minus request/response pairs."""
    roles: dict[str, list[str]] = {}
    events = 0
    for rec in json_records(path):
        events += 1
        if not isinstance(rec, dict):
            continue
        ce_id = _get(rec, "id")
        if isinstance(ce_id, (dict, list, bool)) or ce_id is None or ce_id == "":
            continue
        roles.setdefault(str(ce_id), []).append(str(_role(_get(rec, "type"))))
    pairs = sum(1 for r in roles.values() if sorted(r) == ["request", "response"])
    return events - pairs


#: the body of an event as JSON text: data_base64 decoded, a JSON string unwrapped, else the data value
_BODY = ("CASE WHEN json_extract(j, '$.data_base64') IS NOT NULL "
         "THEN try(decode(from_base64(json_extract_string(j, '$.data_base64')))) "
         "WHEN json_type(json_extract(j, '$.data')) = 'VARCHAR' THEN json_extract_string(j, '$.data') "
         "ELSE CAST(json_extract(j, '$.data') AS VARCHAR) END")

_EVENTS = f"""WITH l AS ({LINES_SQL}),
e AS (SELECT _vd_line, line, j, {_attr('id')} AS ce_id, {_attr('type')} AS ce_type, {_attr('time')} AS ce_time,
        {_attr('inferenceservicename')} AS inferenceservicename, {_attr('namespace')} AS namespace,
        {_attr('component')} AS kserve_component, NULLIF({_attr('endpoint')}, '') AS endpoint,
        {_attr('source')} AS ce_source, {_BODY} AS body_text
      FROM l),
r AS (SELECT *, CASE WHEN ce_type LIKE '%.inference.request' THEN 'request'
                     WHEN ce_type LIKE '%.inference.response' THEN 'response' END AS role,
             CASE WHEN json_valid(body_text) THEN CAST(body_text AS JSON) END AS body
      FROM e),
g AS (SELECT ce_id, count(*) FILTER (WHERE role = 'request') AS n_req,
             count(*) FILTER (WHERE role = 'response') AS n_resp, count(*) AS n
      FROM r WHERE ce_id IS NOT NULL AND ce_id <> '' GROUP BY ce_id),
q AS (SELECT r.*, g.n_req, g.n_resp, coalesce(g.n_req = 1 AND g.n_resp = 1 AND g.n = 2, false) AS paired
      FROM r LEFT JOIN g USING (ce_id)),
pr AS (SELECT rq._vd_line, rq.ce_id, rq.j AS req_j, rs.j AS resp_j, rq.body AS req, rs.body AS resp,
              rq.body_text AS req_text, rs.body_text AS resp_text, rq.ce_time AS req_time,
              coalesce(rq.inferenceservicename, rs.inferenceservicename) AS inferenceservicename,
              coalesce(rq.namespace, rs.namespace) AS namespace,
              coalesce(rq.kserve_component, rs.kserve_component) AS kserve_component,
              coalesce(rq.endpoint, rs.endpoint) AS endpoint, coalesce(rs.ce_source, rq.ce_source) AS ce_source
       FROM q AS rq JOIN q AS rs ON rq.ce_id = rs.ce_id AND rq.role = 'request' AND rs.role = 'response'
       WHERE rq.paired),
p AS (SELECT *,
        CASE WHEN json_extract(req, '$.inputs') IS NOT NULL THEN 'v2'
             WHEN json_extract(req, '$.instances') IS NOT NULL THEN 'v1' END AS protocol,
        CASE WHEN json_extract(req, '$.inputs') IS NOT NULL THEN {oip.features('req')}
             ELSE json_extract(req, '$.instances[0]') END AS feat,
        CASE WHEN json_extract(resp, '$.outputs') IS NOT NULL THEN {oip.first_value(oip.prediction_tensor('resp'))}
             ELSE coalesce({scalar_text("json_extract(resp, '$.predictions[0]')")},
                           json_extract_string(resp, '$.predictions[0].label'),
                           json_extract_string(resp, '$.predictions[0].prediction')) END AS prediction,
        CASE WHEN json_extract(resp, '$.outputs') IS NOT NULL THEN {oip.score_value(oip.score_tensor('resp'))}
             ELSE TRY_CAST(coalesce(json_extract_string(resp, '$.predictions[0].score'),
                                    json_extract_string(resp, '$.predictions[0].probability')) AS DOUBLE)
             END AS score,
        json_extract_string(resp, '$.model_version') AS reported_version,
        json_extract_string(resp, '$.model_name') AS model_name,
        coalesce(list_max(list_transform({oip.tensors('req', 'inputs')}, lambda t: {oip.batch_rows('t')})),
                 json_array_length(json_extract(req, '$.instances'))) AS batch
      FROM pr)"""

_PAIR_REASON = first_reason([
    "req IS NULL THEN 'request data is not valid JSON (expected a v1 or v2 inference request): ' || "
    + snippet("req_text"),
    "resp IS NULL THEN 'response data is not valid JSON (expected a v1 or v2 inference response): ' || "
    + snippet("resp_text"),
    "protocol IS NULL THEN 'request data ' || " + snippet("req_text")
    + " || ' has neither \"instances\" (v1) nor \"inputs\" (v2 open inference protocol)'",
    "req_time IS NULL THEN 'request event ' || " + snippet("ce_id")
    + " || ' has no CloudEvents time attribute (expected e.g. \"time\": \"2026-11-02T10:00:00Z\")'",
    "batch > 1 THEN 'request ' || " + snippet("ce_id") + " || ' holds ' || batch || "
    "' instances (a batch); vdrift reads one prediction per request'",
    "prediction IS NULL THEN 'response data ' || " + snippet("resp_text")
    + " || ' holds no prediction (expected \"predictions\": [...] (v1) or \"outputs\": [...] (v2))'",
])

_LONE_REASON = first_reason([
    "j IS NULL THEN 'event is not valid JSON (expected one CloudEvent per line): ' || " + snippet("line"),
    "ce_id IS NULL OR ce_id = '' THEN 'event has no CloudEvents id (expected attribute \"id\" or \"ce-id\")'",
    "role IS NULL THEN 'event type ' || " + snippet("coalesce(ce_type, '')")
    + f" || ' is not an inference request or response (expected {REQUEST} or {RESPONSE})'",
    "n_req > 1 OR n_resp > 1 THEN 'ce-id ' || " + snippet("ce_id")
    + " || ' has ' || n_req || ' request and ' || n_resp || ' response events (expected exactly one of each)'",
    "role = 'request' THEN 'unpaired request: ce-id ' || " + snippet("ce_id")
    + f" || ' has no {RESPONSE} event in this file'",
    "role = 'response' THEN 'unpaired response: ce-id ' || " + snippet("ce_id")
    + f" || ' has no {REQUEST} event in this file'",
])


@dataclass(frozen=True)
class KServe(ByEnding):
    """Adapter for KServe inference-logger CloudEvents (see the module docstring)."""

    name: str = "kserve"
    endings: tuple[str, ...] = (".jsonl", ".ndjson", ".json", ".log")
    rows_what: str = "rows (request/response pairs plus unpaired events)"

    def build(self, con: duckdb.DuckDBPyConnection, path: Path, read_path: str, mapping: Mapping) -> Source:
        """The relation reading ``path`` (DuckDB reads it as ``read_path``) as contract rows."""
        meta = ("inferenceservicename", "namespace", "kserve_component", "endpoint", "ce_source", "model_name")
        feats = discover_features(con, f"{_EVENTS} SELECT * FROM p", [read_path], "feat", set(meta))
        feat_sql, feat_params = feats.select()
        nulls = "".join(f",\n  CAST(NULL AS VARCHAR) AS {quote_ident(name)}" for name, _, _ in feats.exprs)
        sql = f"""({_EVENTS}
SELECT _vd_line AS {ROW}, CAST(json_object('request', req_j, 'response', resp_j) AS JSON) AS {RAW},
  {_PAIR_REASON} AS {REASON}, ce_id AS request_id, req_time AS ts, reported_version AS model_version,
  prediction, CAST(score AS VARCHAR) AS score, {', '.join(meta)}{feat_sql}
FROM p
UNION ALL
SELECT _vd_line, coalesce(j, to_json(line)), {_LONE_REASON}, ce_id, ce_time, NULL, NULL, NULL,
  inferenceservicename, namespace, kserve_component, endpoint, ce_source, NULL{nulls}
FROM q WHERE NOT paired)"""
        return Source(sql=sql, params=(read_path, *feat_params), rows=count_rows(path),
                      rows_what=self.rows_what, metadata=meta)
