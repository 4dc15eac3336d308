"""The attached source's meta record, its recorded mapping, and the guard views over changed files."""

from __future__ import annotations

import datetime as dt
import json
import os
from typing import TYPE_CHECKING

import duckdb

from ...errors import InputError, StoreError
from ...sqlutil import quote_ident
from ..ingest.files import _first_line
from ..mapping import Mapping, load_mapping
from .literals import sql_literal

if TYPE_CHECKING:  # pragma: no cover
    from ..store import Store

#: the meta row that records the attached source (JSON)
META_KEY = "attached_predictions"
MACRO = "_vd_attached_rows"
FILES_TABLE = "attached_files"
DUPLICATES_TABLE = "attached_duplicates"
CHECKED_VIEW = "attached_checked"


def info(con: duckdb.DuckDBPyConnection) -> dict | None:
    """The meta record of the attached source, or None."""
    try:
        row = con.execute("SELECT value FROM meta WHERE key = ?", [META_KEY]).fetchone()
    except duckdb.Error as exc:
        raise StoreError(f"cannot query the store: {_first_line(exc)}") from None
    return json.loads(row[0]) if row else None


def require_record(store: Store) -> dict:
    """The meta record of the attached source; an :class:`InputError` when there is none."""
    record = info(store.con)
    if record is None:
        raise InputError(f"the store {store.path!r} has no attached predictions; attach a dataset with "
                         f"`vdrift attach predictions PATH --db {store.path}`")
    return record


def now_text() -> str:
    """Now, naive UTC, to the second: the attach and validation times."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")


def mapping_record(mapping: Mapping) -> dict:
    """The mapping as stored in the meta row, so validation can apply it again without the file."""
    return {"columns": dict(mapping.columns), "timestamps": {"timezone": mapping.timezone,
            **({"format": mapping.time_format} if mapping.time_format else {})},
            "defaults": dict(mapping.defaults),
            **({"covariates": list(mapping.covariates)} if mapping.covariates is not None else {}),
            **({"values": {c: dict(v) for c, v in mapping.values.items()}} if mapping.values else {}),
            **({"categorical": list(mapping.categorical)} if mapping.categorical else {}),
            "_source": mapping.source}


def recorded_mapping(record: dict) -> Mapping:
    """The mapping recorded by :func:`mapping_record`, loaded again."""
    data = dict(record["mapping"])
    source = data.pop("_source", "inline")
    m = load_mapping(data)
    return Mapping(columns=m.columns, timezone=m.timezone, time_format=m.time_format, defaults=m.defaults,
                   covariates=m.covariates, values=m.values, categorical=m.categorical, source=source)


def stale_files(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Validated files that are gone or changed (size or modification time) since; [] when none or not attached."""
    if info(con) is None:
        return []
    out = []
    for path, size, mtime in con.execute(f"SELECT path, bytes, mtime FROM {FILES_TABLE} ORDER BY path").fetchall():
        try:
            st = os.stat(path)
        except OSError:
            out.append(path)
            continue
        if st.st_size != size or st.st_mtime != mtime:
            out.append(path)
    return out


def stale_message(path: str, stale: list[str]) -> str:
    """What to do when validated files are gone or changed."""
    return (f"store {path!r}: {len(stale):,} file(s) of its attached predictions are gone or changed since they "
            f"were validated (e.g. {stale[0]}); analyses read only validated files: run "
            f"`vdrift validate --db {path}` to validate the dataset as it is now")


def guard(con: duckdb.DuckDBPyConnection, message: str) -> None:
    """Temporary views that shadow ``predictions`` and ``predictions_resolved`` and fail with ``message``.

    Used on a store opened for writing whose validated files changed: reading
    them would fail (a file gone) or read rows nobody validated (a file
    rewritten). :func:`validate` and :func:`detach` drop them.
    """
    for name in ("predictions", "predictions_resolved"):
        cols = con.execute(
            "SELECT column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'main' AND table_name = ? ORDER BY ordinal_position", [name]).fetchall()
        select = ", ".join(f"CAST(NULL AS {t}) AS {quote_ident(c)}" for c, t in cols) or "NULL AS request_id"
        con.execute(f"CREATE OR REPLACE TEMP VIEW {name} AS SELECT {select} FROM (SELECT 1) "
                    f"WHERE error({sql_literal('vdrift: ' + message)})")


def unguard(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temporary views of :func:`guard`, if any."""
    for name in ("predictions_resolved", "predictions"):
        con.execute(f"DROP VIEW IF EXISTS temp.main.{name}")
