"""BentoML monitoring logs (``bentoml.monitor``, the default file exporter of BentoML 1.0.11 and later).

A monitor named ``<name>`` writes two kinds of JSON lines files under the
monitoring log path (``<log_path>/<name>/``), one per server worker ``N``:

* ``schema/schema.N.log``: one line per worker start,
  ``{"meta_data": {"bento_name": "fraud_svc", "bento_version": "a1b2c3"},
  "columns": [{"name": "amount", "role": "feature", "type": "numerical"},
  {"name": "pred", "role": "prediction", "type": "categorical"}, ...]}``;
* ``data/data.N.log``: one line per logged record, the logged columns plus
  ``timestamp`` (the server's local time, ISO 8601 without offset),
  ``request_id`` and ``trace_id``.

vdrift reads the data files (give them, or a directory holding them) and
takes the column roles and the version from the worker's schema file
(``schema.N.log`` next to ``data.N.log``, else every ``schema/*.log``).
Roles: ``feature`` columns are covariates, the ``prediction`` column is the
prediction (one named like a score, e.g. ``score`` or ``probability``, is
the score), a ``target`` column is the outcome.

Identity: ``model_version`` is the schema's ``bento_version`` (the version
of the Bento that served); ``bento_name`` and ``monitor_name`` are metadata
columns. Data lines carry no version, so a schema file that names several
versions cannot be attributed and is refused. Timestamps are local time:
give the server's zone as ``[timestamps] timezone`` in the mapping.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ..errors import InputError
from ..sqlutil import quote_ident
from ..store.mapping import Mapping
from .common import (LINES_SQL, RAW, REASON, ROW, SCORE_NAMES, Source, count_records, first_reason, pointer,
                     snippet)


@dataclass(frozen=True)
class Schema:
    """What a monitor's schema file says: the Bento, and each logged column's role."""

    bento_name: str | None
    bento_version: str
    columns: tuple[tuple[str, str], ...]  # (name, role)
    files: tuple[Path, ...]


def schema_files(path: Path) -> list[Path]:
    """The schema file(s) of data file ``path``: the same worker's, else all of the monitor's."""
    schema_dir = path.parent.parent / "schema"
    worker = path.name[len("data."):] if path.name.startswith("data.") else None
    own = schema_dir / f"schema.{worker}" if worker else None
    if own is not None and own.is_file():
        return [own]
    return sorted(p for p in schema_dir.glob("*.log") if p.is_file()) if schema_dir.is_dir() else []


def read_schema(path: Path) -> Schema:
    """The schema of data file ``path`` (a small metadata file, read with Python's json module)."""
    if path.parent.name != "data":
        raise InputError(
            f"{path}: not a BentoML monitoring data file (expected <log_path>/<monitor>/data/data.N.log "
            "with its schema in <log_path>/<monitor>/schema/)"
        )
    files = schema_files(path)
    if not files:
        raise InputError(
            f"{path}: no BentoML schema file in {path.parent.parent / 'schema'} (expected schema.N.log "
            "next to the data directory); copy the monitor's schema directory along with its data"
        )
    versions: dict[str, None] = {}
    names: set[str | None] = set()
    columns: dict[str, str] = {}
    for file in files:
        for n, line in enumerate(file.read_bytes().decode("utf-8", "replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                meta, cols = rec["meta_data"], rec["columns"]
                version = meta.get("bento_version")
                names.add(meta.get("bento_name"))
                for col in cols:
                    columns.setdefault(str(col["name"]), str(col.get("role", "feature")))
            except (ValueError, KeyError, TypeError, AttributeError):
                raise InputError(
                    f"{file}: line {n} is not a BentoML monitoring schema record (expected "
                    '{"meta_data": {"bento_name": ..., "bento_version": ...}, "columns": [...]})'
                ) from None
            if version in (None, "", "not available"):
                raise InputError(
                    f"{file}: line {n} names no bento_version ({version!r}); the service ran outside a built "
                    'Bento, so the version is unknown: give it in the mapping, [defaults] model_version = "..."'
                )
            versions[str(version)] = None
    if len(versions) > 1:
        raise InputError(
            f"{path}: its schema file(s) {', '.join(str(f) for f in files)} name {len(versions)} Bento versions "
            f"({', '.join(versions)}) and data lines carry none, so vdrift cannot tell which version wrote "
            "which line; keep each deployment's monitoring directory apart (one per pod or release)"
        )
    if not any(role == "prediction" for role in columns.values()):
        raise InputError(f"{files[0]}: the schema has no column with role \"prediction\"; vdrift needs the prediction")
    return Schema(bento_name=next(iter(names)) if len(names) == 1 else None, bento_version=next(iter(versions)),
                  columns=tuple(columns.items()), files=tuple(files))


@dataclass(frozen=True)
class BentoML:
    """Adapter for BentoML monitoring data files (see the module docstring)."""

    name: str = "bentoml"
    endings: tuple[str, ...] = (".log",)
    rows_what: str = "monitoring data records (non-blank lines)"

    def accepts(self, path: Path) -> bool:
        """True for a monitoring data file (``.../data/*.log``); schema files are read along with them."""
        return path.name.lower().endswith(self.endings) and path.parent.name == "data"

    def build(self, con: duckdb.DuckDBPyConnection, path: Path, read_path: str, mapping: Mapping) -> Source:
        """The relation reading ``path`` (DuckDB reads it as ``read_path``) as contract rows."""
        schema = read_schema(path)
        preds = [n for n, role in schema.columns if role == "prediction"]
        score = next((n for n in preds if n.lower() in SCORE_NAMES), None)
        label = next((n for n in preds if n != score), preds[0])  # read_schema found a prediction column
        target = next((n for n, role in schema.columns if role == "target"), None)
        features = [n for n, role in schema.columns if role == "feature"]
        taken = {"request_id", "ts", "model_version", "prediction", "score", "outcome", "bento_name",
                 "monitor_name", "trace_id"}
        params: list = [read_path]
        cols = []

        def value(name: str) -> str:
            params.append(pointer(name))
            return "json_extract_string(j, ?)"

        cols.append(f"{value(label)} AS prediction")
        cols.append(f"{value(score)} AS score" if score and score != label else "CAST(NULL AS VARCHAR) AS score")
        if target:
            cols.append(f"{value(target)} AS outcome")
        for name in features:
            alias = name if name.lower() not in taken and not name.startswith("_vd_") else f"input_{name}"
            cols.append(f"{value(name)} AS {quote_ident(alias)}")
        label_sql = "json_extract_string(j, ?)"
        reason = first_reason([
            "j IS NULL THEN 'record is not valid JSON (expected one monitoring record per line): ' || "
            + snippet("line"),
            "json_type(j) <> 'OBJECT' THEN 'record ' || " + snippet("line") + " || ' is not a JSON object'",
            "json_extract_string(j, '$.timestamp') IS NULL THEN 'record has no timestamp (BentoML writes "
            "\"timestamp\": \"2026-11-02T10:00:00.123456\" on every data line)'",
            f"{label_sql} IS NULL THEN 'record has no value for the prediction column ' || ? || "
            "' (role prediction in the schema)'",
        ])
        sql = f"""(WITH l AS ({LINES_SQL})
SELECT _vd_line AS {ROW}, coalesce(j, to_json(line)) AS {RAW}, {reason} AS {REASON},
  json_extract_string(j, '$.request_id') AS request_id, json_extract_string(j, '$.timestamp') AS ts,
  CAST(? AS VARCHAR) AS model_version, {', '.join(cols)},
  CAST(? AS VARCHAR) AS bento_name, CAST(? AS VARCHAR) AS monitor_name,
  json_extract_string(j, '$.trace_id') AS trace_id
FROM l)"""
        # placeholders in text order: the file (LINES_SQL), the reason's, then the select list's
        ordered = [read_path, pointer(label), f"'{label}'", schema.bento_version, *params[1:],
                   schema.bento_name, path.parent.parent.name]
        return Source(sql=sql, params=tuple(ordered), rows=count_records(path), rows_what=self.rows_what,
                      metadata=("bento_name", "monitor_name", "trace_id"))
