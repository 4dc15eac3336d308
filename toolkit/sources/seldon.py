"""Seldon Core 2: model output records from its Kafka topics (``seldon.<namespace>.model.<model>.outputs``).

Seldon Core 2 writes each model's responses to the topic
``<topicPrefix>.<namespace>.model.<model>.outputs`` as V2 (open inference
protocol) ``ModelInferResponse`` messages, keyed by the request id, with Kafka
headers such as ``x-request-id``, ``pipeline`` and ``x-seldon-route`` (the
sequence of versioned models that served the request, ``:fraud_3:``).

On disk vdrift reads JSON lines, one Kafka record per line, each the message
object of ``seldon pipeline inspect --format json --verbose`` (``key``,
``headers`` as name -> list of values, ``value`` the response in protobuf's
JSON mapping) plus the record's ``topic``, ``partition``, ``offset`` and
``timestamp`` (epoch milliseconds, as Kafka keeps it) that a Kafka consumer
or sink adds::

    {"topic": "seldon.fraud-eu.model.fraud.outputs", "partition": 0, "offset": 41,
     "timestamp": 1793613600123, "key": "cg5g6ogfh5ss73a44vvg",
     "headers": {"x-request-id": ["cg5g6ogfh5ss73a44vvg"], "x-seldon-route": [":fraud_3:"]},
     "value": {"modelName": "fraud_3", "modelVersion": "1",
               "outputs": [{"name": "predict", "datatype": "INT64", "shape": ["1", "1"],
                            "contents": {"int64Contents": ["1"]}}]}}

A header value may also be a plain string, and ``value`` a string of JSON.

Identity: Seldon versions a model by suffixing its name (model ``fraud``,
third version: ``fraud_3``). ``model_version`` is the versioned name the
server reported (``value.modelName``), else the last versioned model of
``x-seldon-route``; the route's model (``seldon_route_model``), the topic's
model and namespace are metadata columns (``region = "namespace"``).
Output topics carry no inputs, so these rows have no covariates.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from ..store.mapping import Mapping
from . import oip
from .common import ByEnding, LINES_SQL, RAW, REASON, ROW, Source, count_records, first_reason, snippet

#: ``<prefix>.<namespace>.model.<model>.outputs``
_TOPIC = r"'^(.+)\.([^.]+)\.model\.([^.]+)\.outputs$'"


def _header(name: str) -> str:
    """SQL: the header ``name`` of ``j`` as text (values of a list joined by a space)."""
    h = f"json_extract(j, '$.headers.\"{name}\"')"
    return (f"CASE WHEN json_type({h}) = 'ARRAY' THEN array_to_string(CAST(json_extract_string({h}, '$[*]') "
            f"AS VARCHAR[]), ' ') ELSE json_extract_string({h}, '$') END")


_RECORDS = f"""WITH l AS ({LINES_SQL}),
k AS (SELECT _vd_line, line, j, json_extract_string(j, '$.topic') AS topic,
        json_extract_string(j, '$.key') AS kafka_key, json_extract_string(j, '$.timestamp') AS kafka_ts,
        json_extract_string(j, '$.partition') AS kafka_partition, json_extract_string(j, '$.offset') AS kafka_offset,
        {_header('x-seldon-route')} AS route, {_header('x-request-id')} AS header_request_id,
        {_header('pipeline')} AS pipeline,
        CASE WHEN json_type(json_extract(j, '$.value')) = 'VARCHAR' THEN json_extract_string(j, '$.value')
             ELSE CAST(json_extract(j, '$.value') AS VARCHAR) END AS value_text
      FROM l),
v AS (SELECT *, CASE WHEN json_valid(value_text) THEN CAST(value_text AS JSON) END AS val,
        regexp_extract(topic, {_TOPIC}, 2) AS namespace, regexp_extract(topic, {_TOPIC}, 3) AS seldon_model,
        list_filter(regexp_extract_all(coalesce(route, ''), ':([^: ]+_[0-9]+):', 1),
                    lambda m: NOT contains(m, '.'))[-1] AS seldon_route_model
      FROM k),
p AS (SELECT *, json_extract_string(val, '$.modelName') AS model_name,
        {oip.first_value(oip.prediction_tensor('val'))} AS prediction,
        {oip.score_value(oip.score_tensor('val'))} AS score,
        list_max(list_transform({oip.tensors('val', 'outputs')}, lambda t: {oip.batch_rows('t')})) AS batch
      FROM v)"""

_REASON = first_reason([
    "j IS NULL THEN 'record is not valid JSON (expected one Kafka record object per line): ' || "
    + snippet("line"),
    "topic IS NULL OR NOT regexp_matches(topic, " + _TOPIC + ") THEN 'topic ' || "
    + snippet("coalesce(topic, '')")
    + " || ' is not a Seldon model outputs topic (expected <prefix>.<namespace>.model.<model>.outputs)'",
    "kafka_ts IS NULL THEN 'record has no timestamp (expected the Kafka record time, "
    "e.g. \"timestamp\": 1793613600123 in epoch milliseconds)'",
    "value_text IS NULL THEN 'record has no value (expected the V2 inference response)'",
    "val IS NULL THEN 'value is not valid JSON (expected a V2 inference response): ' || "
    + snippet("value_text"),
    "json_extract(val, '$.rawOutputContents') IS NOT NULL THEN 'value carries rawOutputContents "
    "(raw tensor bytes); vdrift reads outputs[].contents or outputs[].data only'",
    "batch > 1 THEN 'response holds ' || batch || ' rows (a batch); vdrift reads one prediction per record'",
    "prediction IS NULL THEN 'value ' || " + snippet("value_text")
    + " || ' holds no prediction (expected \"outputs\": [{\"name\": ..., \"contents\": {...}}])'",
])


@dataclass(frozen=True)
class Seldon(ByEnding):
    """Adapter for Seldon Core 2 model output records (see the module docstring)."""

    name: str = "seldon"
    endings: tuple[str, ...] = (".jsonl", ".ndjson", ".json")
    rows_what: str = "Kafka records (non-blank lines)"

    def build(self, con: duckdb.DuckDBPyConnection, path: Path, read_path: str, mapping: Mapping) -> Source:
        """The relation reading ``path`` (DuckDB reads it as ``read_path``) as contract rows."""
        meta = ("namespace", "seldon_model", "seldon_route_model", "model_name", "pipeline", "topic",
                "kafka_partition", "kafka_offset")
        sql = f"""({_RECORDS}
SELECT _vd_line AS {ROW}, coalesce(j, to_json(line)) AS {RAW}, {_REASON} AS {REASON},
  coalesce(kafka_key, header_request_id, json_extract_string(val, '$.id')) AS request_id, kafka_ts AS ts,
  coalesce(model_name, seldon_route_model) AS model_version, prediction, CAST(score AS VARCHAR) AS score,
  {', '.join(meta)}
FROM p)"""
        return Source(sql=sql, params=(read_path,), rows=count_records(path), rows_what=self.rows_what,
                      metadata=meta)
