r"""Amazon SageMaker real-time endpoint data capture (Model Monitor), ``eventVersion`` 0.

SageMaker writes one JSON object per line to
``s3://<bucket>/<prefix>/<endpoint>/<variant>/yyyy/mm/dd/hh/<file>.jsonl``::

    {"captureData": {
       "endpointInput":  {"observedContentType": "text/csv", "mode": "INPUT",
                          "data": "42.5,web", "encoding": "CSV"},
       "endpointOutput": {"observedContentType": "application/json", "mode": "OUTPUT",
                          "data": "{\"predictions\": [{\"predicted_label\": \"approved\", \"score\": 0.07}]}",
                          "encoding": "JSON"}},
     "eventMetadata": {"eventId": "...", "inferenceId": "...", "inferenceTime": "2026-11-02T10:00:00Z"},
     "eventVersion": "0"}

``encoding`` is ``CSV`` or ``JSON`` (the data is that text) or ``BASE64``
(content types not listed in the endpoint's ``CaptureContentTypeHeader``;
decoded here, then read as CSV or JSON by ``observedContentType``).

Identity: the capture holds no model version or artifact digest; the
production variant (from the path) is what served the request, so
``model_version`` is the variant name and ``endpoint`` / ``variant`` are
available to a mapping (``region = "endpoint"``). ``request_id`` is the
caller's ``inferenceId``, else SageMaker's ``eventId``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ..errors import InputError
from ..store.mapping import Mapping
from .common import (ByEnding, LINES_SQL, RAW, REASON, ROW, Source, count_records, discover_features, first_reason,
                     snippet)

_DATE_DIRS = re.compile(r"^\d{4}$|^\d{2}$")


def layout_of(path: Path) -> tuple[str | None, str | None]:
    """(endpoint, variant) from ``.../<endpoint>/<variant>/yyyy/mm/dd/hh/<file>``, or (None, None)."""
    parts = Path(path).absolute().parts
    if len(parts) < 8:
        return None, None
    yyyy, mm, dd, hh = parts[-5:-1]
    if not (len(yyyy) == 4 and all(len(p) == 2 for p in (mm, dd, hh))
            and all(p.isdigit() for p in (yyyy, mm, dd, hh))):
        return None, None
    return parts[-7], parts[-6]


def _decoded(side: str) -> str:
    """SQL: the captured text of ``in`` or ``out`` (base64 decoded when so encoded; NULL if that fails)."""
    return (f"CASE WHEN upper({side}_enc) = 'BASE64' THEN try(decode(from_base64({side}_data))) "
            f"ELSE {side}_data END")


def _kind(side: str) -> str:
    """SQL: 'json', 'csv' or NULL: how a side's text is read (its encoding, or for BASE64 its content type)."""
    return (f"CASE WHEN upper({side}_enc) = 'JSON' THEN 'json' WHEN upper({side}_enc) = 'CSV' THEN 'csv' "
            f"WHEN upper({side}_enc) = 'BASE64' AND lower({side}_type) LIKE '%json%' THEN 'json' "
            f"WHEN upper({side}_enc) = 'BASE64' AND lower({side}_type) LIKE '%csv%' THEN 'csv' END")


#: the output's record: the first of "predictions" when there is such a list, else the whole JSON value
_OUT_RECORD = ("CASE WHEN json_type(json_extract(out_json, '$.predictions')) = 'ARRAY' "
               "THEN json_extract(out_json, '$.predictions[0]') ELSE out_json END")
#: the input's record: the first of "instances" when there is such a list, else the whole JSON value
_IN_RECORD = ("CASE WHEN json_type(json_extract(in_json, '$.instances')) = 'ARRAY' "
              "THEN json_extract(in_json, '$.instances[0]') ELSE in_json END")

_PARSED = f"""WITH l AS ({LINES_SQL}),
c AS (SELECT _vd_line, line, j,
   json_extract_string(j, '$.captureData.endpointInput.data') AS in_data,
   json_extract_string(j, '$.captureData.endpointInput.encoding') AS in_enc,
   json_extract_string(j, '$.captureData.endpointInput.observedContentType') AS in_type,
   json_extract_string(j, '$.captureData.endpointOutput.data') AS out_data,
   json_extract_string(j, '$.captureData.endpointOutput.encoding') AS out_enc,
   json_extract_string(j, '$.captureData.endpointOutput.observedContentType') AS out_type,
   json_extract_string(j, '$.eventMetadata.eventId') AS event_id,
   json_extract_string(j, '$.eventMetadata.inferenceId') AS inference_id,
   json_extract_string(j, '$.eventMetadata.inferenceTime') AS inference_time
  FROM l),
d AS (SELECT *, {_decoded('in')} AS in_text, {_kind('in')} AS in_kind,
                {_decoded('out')} AS out_text, {_kind('out')} AS out_kind FROM c),
e AS (SELECT *,
   CASE WHEN in_kind = 'json' AND json_valid(in_text) THEN CAST(in_text AS JSON) END AS in_json,
   CASE WHEN out_kind = 'json' AND json_valid(out_text) THEN CAST(out_text AS JSON) END AS out_json,
   CASE WHEN in_kind = 'csv' THEN string_split(trim(in_text, chr(10) || chr(13) || ' '), ',') END AS in_csv,
   CASE WHEN out_kind = 'csv' THEN string_split(trim(out_text, chr(10) || chr(13) || ' '), ',') END AS out_csv
  FROM d),
f AS (SELECT *,
   CASE WHEN in_kind = 'csv' THEN to_json(in_csv) ELSE {_IN_RECORD} END AS feat,
   {_OUT_RECORD} AS out_rec
  FROM e),
p AS (SELECT *,
   CASE WHEN out_kind = 'csv' THEN trim(out_csv[1])
        WHEN json_type(out_rec) = 'OBJECT' THEN coalesce(
             json_extract_string(out_rec, '$.predicted_label'), json_extract_string(out_rec, '$.prediction'),
             json_extract_string(out_rec, '$.label'), json_extract_string(out_rec, '$.score'))
        ELSE json_extract_string(out_rec, '$') END AS prediction,
   CASE WHEN out_kind = 'csv' AND len(out_csv) >= 2 THEN trim(out_csv[2])
        WHEN out_kind = 'csv' THEN CAST(TRY_CAST(trim(out_csv[1]) AS DOUBLE) AS VARCHAR)
        WHEN json_type(out_rec) = 'OBJECT' THEN coalesce(json_extract_string(out_rec, '$.score'),
             json_extract_string(out_rec, '$.probability'))
        ELSE CAST(TRY_CAST(json_extract_string(out_rec, '$') AS DOUBLE) AS VARCHAR) END AS score
  FROM f)"""

_REASON = first_reason([
    "j IS NULL THEN 'record is not valid JSON (expected one data-capture object per line): ' || "
    + snippet("line"),
    "json_type(j) <> 'OBJECT' OR json_extract(j, '$.captureData') IS NULL THEN "
    "'record has no captureData object (expected {\"captureData\": {...}, \"eventMetadata\": {...}})'",
    "inference_time IS NULL THEN "
    "'eventMetadata.inferenceTime is missing (expected an ISO 8601 time such as 2026-11-02T10:00:00Z)'",
    "TRY_CAST(inference_time AS TIMESTAMPTZ) IS NULL THEN 'eventMetadata.inferenceTime ' || "
    + snippet("inference_time") + " || ' is not an ISO 8601 time (expected e.g. 2026-11-02T10:00:00Z)'",
    "out_data IS NULL THEN 'captureData.endpointOutput.data is missing (expected the captured response; "
    "was the capture mode Input only?)'",
    "upper(out_enc) = 'BASE64' AND out_text IS NULL THEN 'captureData.endpointOutput.data ' || "
    + snippet("out_data") + " || ' is not valid base64 of UTF-8 text (its encoding is BASE64)'",
    "in_data IS NOT NULL AND upper(in_enc) = 'BASE64' AND in_text IS NULL THEN "
    "'captureData.endpointInput.data ' || " + snippet("in_data")
    + " || ' is not valid base64 of UTF-8 text (its encoding is BASE64)'",
    "out_kind IS NULL THEN 'captureData.endpointOutput: encoding ' || " + snippet("coalesce(out_enc, '')")
    + " || ' with observedContentType ' || " + snippet("coalesce(out_type, '')")
    + " || ' cannot be read (expected encoding CSV or JSON, or BASE64 of text/csv or application/json)'",
    "in_data IS NOT NULL AND in_kind IS NULL THEN 'captureData.endpointInput: encoding ' || "
    + snippet("coalesce(in_enc, '')") + " || ' with observedContentType ' || " + snippet("coalesce(in_type, '')")
    + " || ' cannot be read (expected encoding CSV or JSON, or BASE64 of text/csv or application/json)'",
    "out_kind = 'json' AND out_json IS NULL THEN 'captureData.endpointOutput.data is not valid JSON "
    "(observedContentType ' || " + snippet("coalesce(out_type, '')") + " || '): ' || " + snippet("out_text"),
    "in_kind = 'json' AND in_json IS NULL THEN 'captureData.endpointInput.data is not valid JSON "
    "(observedContentType ' || " + snippet("coalesce(in_type, '')") + " || '): ' || " + snippet("in_text"),
    "(in_kind = 'csv' AND regexp_matches(trim(in_text, chr(10) || chr(13) || ' '), '[\\r\\n]')) "
    "OR json_array_length(json_extract(in_json, '$.instances')) > 1 THEN "
    "'captureData.endpointInput.data holds several requests (a batch); vdrift reads one prediction per record'",
    "prediction IS NULL OR trim(prediction) = '' THEN 'captureData.endpointOutput.data ' || "
    + snippet("out_text") + " || ' holds no prediction (expected CSV \"label[,score]\" or JSON "
    "{\"predictions\": [{\"predicted_label\": ..., \"score\": ...}]})'",
])


@dataclass(frozen=True)
class SageMaker(ByEnding):
    """Adapter for SageMaker data-capture files (see the module docstring)."""

    name: str = "sagemaker"
    endings: tuple[str, ...] = (".jsonl",)
    rows_what: str = "data-capture records (non-blank lines)"

    def build(self, con: duckdb.DuckDBPyConnection, path: Path, read_path: str, mapping: Mapping) -> Source:
        """The relation reading ``path`` (DuckDB reads it as ``read_path``) as contract rows."""
        endpoint, variant = layout_of(path)
        if variant is None and "model_version" not in mapping.columns and "model_version" not in mapping.defaults:
            raise InputError(
                f"{path}: not under SageMaker's data-capture layout .../<endpoint>/<variant>/yyyy/mm/dd/hh/"
                "<file>.jsonl, so the production variant (the model version) is unknown; keep the layout "
                'when copying the files from S3, or give it in the mapping: [defaults] model_version = "..."'
            )
        # outside the layout the mapping gives the version: no column of that name may shadow its default
        version_sql, version_params = ("CAST(? AS VARCHAR) AS model_version, ", [variant]) if variant else ("", [])
        base = f"{_PARSED} SELECT * FROM p"
        feats = discover_features(con, base, [read_path], "feat", {"endpoint", "variant", "event_id"})
        feat_sql, feat_params = feats.select()
        sql = (f"({_PARSED}\nSELECT _vd_line AS {ROW}, coalesce(j, to_json(line)) AS {RAW}, {_REASON} AS {REASON},\n"
               "  coalesce(inference_id, event_id) AS request_id, inference_time AS ts,\n"
               f"  {version_sql}prediction, score,\n"
               "  CAST(? AS VARCHAR) AS endpoint, CAST(? AS VARCHAR) AS variant, event_id"
               f"{feat_sql}\nFROM p)")
        return Source(sql=sql, params=(read_path, *version_params, endpoint, variant, *feat_params),
                      rows=count_records(path), rows_what=self.rows_what,
                      metadata=("endpoint", "variant", "event_id"))
