"""What the adapters share: reading a log line by line in SQL, quoting values in reasons, input features.

Every adapter reads its file with :data:`LINES_SQL`: DuckDB's ``read_text``
gives the whole file, which is split at line feeds, so each record keeps its
physical line number (the deterministic ordinal that ``quarantine.row_number``
reports) and a line that is not JSON is one quarantined row instead of a
failure of the whole file. Blank lines (spaces, tabs, CR) are not records.
The independent count of records (:func:`count_records`) is a streaming pass
in Python that shares nothing with DuckDB's reader.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ..errors import InputError
from ..sqlutil import one_row, quote_ident
from ..store.schema import CONTRACT

#: characters that make a line blank (not a record)
BLANK = " \t\r"

#: one row per non-blank line of the file bound as the one parameter: ``_vd_line`` (1-based physical
#: line number), ``line`` (the text without its CR) and ``j`` (the line when it is valid JSON, else NULL)
LINES_SQL = """SELECT n AS _vd_line, line, CASE WHEN json_valid(line) THEN CAST(line AS JSON) END AS j
FROM (SELECT n, rtrim(raw_line, chr(13)) AS line
      FROM (SELECT unnest(string_split(content, chr(10))) AS raw_line,
                   generate_subscripts(string_split(content, chr(10)), 1) AS n
            FROM read_text(?)))
WHERE trim(line, ' ' || chr(9) || chr(13)) <> ''"""

#: names of the internal columns of every adapter relation
ROW, RAW, REASON = "_vd_row", "_vd_raw", "_vd_reason"
INTERNAL = (ROW, RAW, REASON)

#: output names read as the score (probability / confidence) rather than the prediction
SCORE_NAMES = ("score", "scores", "probability", "probabilities", "proba", "predict_proba", "confidence")


class ByEnding:
    """Mixin of an adapter that reads, while walking a directory, every file whose name has one of its endings."""

    endings: tuple[str, ...]

    def accepts(self, path: Path) -> bool:
        """True for a file this adapter reads when it is found in a directory."""
        return path.name.lower().endswith(self.endings)


def _lines(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as fh:
        for line in fh:
            if line.strip(BLANK.encode() + b"\n"):
                yield line


def count_records(path: Path) -> int:
    """The non-blank lines of ``path``, counted in Python (independently of DuckDB)."""
    return sum(1 for _ in _lines(path))


def json_records(path: Path) -> Iterator[object]:
    """Each non-blank line parsed by Python's json module (None for a line that is not JSON)."""
    for line in _lines(path):
        try:
            yield json.loads(line)
        except ValueError:
            yield None


def snippet(expr: str, width: int = 60) -> str:
    """SQL naming a value in a quarantine reason: as every reason does (a JSON string, ingest.plan.shown)."""
    from ..store.ingest.plan import shown

    return shown(f"CASE WHEN length(CAST({expr} AS VARCHAR)) > {width} "
                 f"THEN left(CAST({expr} AS VARCHAR), {width}) || '...' ELSE CAST({expr} AS VARCHAR) END")


def pointer(key: str) -> str:
    """The JSON Pointer (RFC 6901) of an object key: ``/key`` with ``~`` and ``/`` escaped."""
    return "/" + key.replace("~", "~0").replace("/", "~1")


@dataclass(frozen=True)
class Source:
    """A native log file read as contract rows: the relation one ingest reads.

    Attributes
    ----------
    sql
        A parenthesised SELECT usable as ``FROM {sql} AS src``; its ``?``
        placeholders take ``params`` in order. Columns: ``_vd_row`` (the
        record's ordinal, unique), ``_vd_raw`` (the native record(s) as JSON,
        kept in quarantine), ``_vd_reason`` (why the record cannot be read,
        or NULL), contract-named columns, input features and ``metadata``.
    params
        The bound values of ``sql`` (the file path among them).
    rows
        The rows the file holds, as counted independently of ``sql``.
    rows_what
        What a row is, for messages ("data-capture records").
    metadata
        Columns a mapping's ``[columns]`` may use (e.g. ``region = "endpoint"``)
        that are not stored as covariates unless the mapping names them.
    """

    sql: str
    params: tuple
    rows: int
    rows_what: str
    metadata: tuple[str, ...] = ()


@dataclass(frozen=True)
class Features:
    """Input feature columns found in a JSON value (object keys or array positions)."""

    exprs: tuple[tuple[str, str, tuple], ...] = field(default_factory=tuple)  # name, SQL, params

    def select(self) -> tuple[str, list]:
        """The select-list fragment (with a leading comma) and its parameters, in order."""
        sql = ""
        params: list[object] = []
        for name, expr, p in self.exprs:
            sql += f",\n  {expr} AS {quote_ident(name)}"
            params.extend(p)
        return sql, params


def discover_features(
    con: duckdb.DuckDBPyConnection, relation: str, params: list, column: str, taken: set[str],
) -> Features:
    """The feature columns of JSON ``column`` of ``relation`` (an object's keys, else an array's positions).

    One aggregate query over the file finds the keys (in order of first
    appearance) and the longest array; the feature values are then read with
    ``json_extract_string`` in the adapter's SELECT. A key that is a contract
    column or an adapter column (``taken``) is stored as ``input_<key>``.
    """
    col = quote_ident(column)
    try:
        keys = [r[0] for r in con.execute(
            f"""SELECT k FROM (SELECT _vd_line, unnest(json_keys({col})) AS k,
                                      generate_subscripts(json_keys({col}), 1) AS p
                               FROM ({relation}) WHERE json_type({col}) = 'OBJECT')
                GROUP BY k ORDER BY min(_vd_line), min(p)""", params).fetchall()]
        width = one_row(
            con, f"SELECT max(json_array_length({col})) FROM ({relation}) WHERE json_type({col}) = 'ARRAY'",
            params)[0] or 0
    except duckdb.Error as exc:
        raise InputError(f"cannot read the input features: {str(exc).splitlines()[0]}") from None
    reserved = {c.lower() for c in CONTRACT["predictions"]} | {t.lower() for t in taken}
    out: list[tuple[str, str, tuple]] = []
    used: set[str] = set()
    for key in keys:
        name = key if key.lower() not in reserved and not key.startswith("_vd_") else f"input_{key}"
        if name.lower() in used or not name:
            continue
        used.add(name.lower())
        out.append((name, f"json_extract_string({col}, ?)", (pointer(key),)))
    for i in range(int(width)):
        name = f"input_{i + 1}"
        if name.lower() in used or name.lower() in reserved:
            continue
        used.add(name.lower())
        out.append((name, f"json_extract_string({col}, ?)", (f"$[{i}]",)))
    return Features(tuple(out))


def first_reason(cases: list[str]) -> str:
    """``CASE WHEN ... THEN reason ... END``: the first of ``cases`` (``cond THEN text`` pairs) that holds."""
    return "CASE " + " ".join(f"WHEN {c}" for c in cases) + " END"


def scalar_text(expr: str) -> str:
    """SQL: the text of JSON ``expr`` when it is a scalar (string, number, boolean), else NULL."""
    return (f"CASE WHEN json_type({expr}) IN ('VARCHAR', 'BIGINT', 'UBIGINT', 'DOUBLE', 'BOOLEAN', 'HUGEINT') "
            f"THEN json_extract_string({expr}, '$') END")
