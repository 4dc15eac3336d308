"""Attached predictions: an external Parquet dataset read in place, validated by a view.

``vdrift attach predictions PATH`` registers a Parquet dataset (hive-partitioned
directories such as ``date=2026-11-09/part-0.parquet``, a directory or a glob)
as the predictions of a store without copying it (docs/attach.md).

How the store reads it:

``_vd_attached_rows(files)``
    A table macro: every row of the files typed by ingest's column plan
    (:func:`toolkit.store.ingest.plan._plan_columns`, the one definition of
    each row rule), with ``_reason`` (NULL when the row is valid), ``_file``,
    ``_row`` (1-based row number in its file) and ``_raw`` (the row as JSON).
``attached_duplicates``
    The rows whose key (``_DUPLICATE_KEYS`` of ingest) repeats an earlier row,
    found when the dataset is validated (attach, ``vdrift validate``).
``attached_checked``
    Every row of the validated files with its reason: what ``vdrift validate``
    and ``vdrift status`` report.
``predictions``
    A view in place of the table: the valid rows only, in the table's column
    order. It is a UNION ALL with one branch per day of files, each carrying
    the exact time range of its files' rows, so a query of a time window
    binds only the footers of the other files and scans only its own
    (DuckDB drops a branch whose range cannot meet the window).

The file list is a snapshot taken when the dataset is validated: files that
appear later are not read until ``vdrift validate`` takes them in, so no row
reaches an analysis without having been validated. Views cannot hold bound
parameters, so the values the plan binds are written into the view as SQL
literals by :func:`_inline` (quoted, never concatenated raw).
"""

from __future__ import annotations

import datetime as dt
import glob as _glob
import json
import os
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb
import polars as pl

from .. import __version__
from ..errors import InputError, StoreError
from ..sqlutil import quote_ident
from .ingest.duplicates import _DUPLICATE_KEYS
from .ingest.entry import _check_mapping_values, _check_timezone
from .ingest.files import _DUCKDB_GLOB, _first_line
from .ingest.load import _reason_sql
from .ingest.plan import _plan_columns
from .mapping import Mapping, load_mapping
from .schema import CONTRACT

if TYPE_CHECKING:  # pragma: no cover
    from .store import Store

#: the meta row that records the attached source (JSON)
META_KEY = "attached_predictions"
MACRO = "_vd_attached_rows"
FILES_TABLE = "attached_files"
DUPLICATES_TABLE = "attached_duplicates"
CHECKED_VIEW = "attached_checked"
PARTITIONINGS = ("none", "hive")
#: the column DuckDB's reader adds with each row's file name (a name no log column is likely to have)
_FILE_COLUMN = "_vd_file"
_HIVE_DIR = re.compile(r"^([^=/]+)=([^/]*)$")


@dataclass(frozen=True)
class AttachResult:
    """What an attached predictions source holds and how much of it is valid.

    Returned by :meth:`Store.attach`, :meth:`Store.validate` and
    :meth:`Store.attached`. ``rows == valid + excluded`` always; analyses see
    the ``valid`` rows only.

    Attributes
    ----------
    pattern
        The path, directory or glob that was attached.
    partitioning
        ``"hive"`` (``key=value`` directories are columns) or ``"none"``.
    files
        The validated files, in the order rows are numbered and duplicates are kept.
    rows, valid, excluded
        Rows in the files, rows analyses read, rows they do not.
    reasons
        ``(reason, rows)`` of the excluded rows, most frequent first.
    examples
        Up to ``examples`` excluded rows per reason: reason, file, row, raw (the row as JSON).
    covariates
        The dataset's extra columns kept as covariates.
    ignored_columns
        Columns neither in the contract nor kept (hive partition keys, reserved names).
    unvalidated_files
        Files that match the pattern now but were not there when the dataset
        was validated: not read until ``vdrift validate`` takes them in.
    missing_files
        Validated files that are gone or changed since (size or time), which
        ``vdrift validate`` drops or checks again.
    """

    pattern: str
    partitioning: str
    mapping: str
    attach_id: int
    attached_at: str
    validated_at: str
    files: tuple[str, ...]
    rows: int
    valid: int
    excluded: int
    reasons: tuple[tuple[str, int], ...]
    examples: pl.DataFrame = field(compare=False, repr=False)
    covariates: tuple[str, ...] = ()
    ignored_columns: tuple[str, ...] = ()
    unvalidated_files: tuple[str, ...] = ()
    missing_files: tuple[str, ...] = ()
    seconds: float = 0.0

    def summary(self, *, examples: int = 3) -> str:
        """Readable text: source, counts, exclusions by reason with examples, stale files."""
        lines = [
            f"predictions attached from {self.pattern} (partitioning {self.partitioning}; "
            f"{len(self.files):,} file(s), validated {self.validated_at} UTC)",
            f"  {self.rows:,} rows in the files: {self.valid:,} valid, {self.excluded:,} excluded from analyses",
        ]
        if self.covariates:
            lines.append("  covariates: " + ", ".join(self.covariates))
        if self.ignored_columns:
            lines.append("  not read: " + ", ".join(self.ignored_columns))
        if self.reasons:
            lines.append("  excluded rows by reason:")
            for reason, n in self.reasons:
                lines.append(f"    {n:>10,}  {reason}")
                shown = self.examples.filter(pl.col("reason") == reason).head(examples)
                for ex in shown.iter_rows(named=True):
                    lines.append(f"        {ex['file']} row {ex['row']}: {_named_values(reason, ex['raw'])}")
        if self.unvalidated_files:
            lines.append(f"  {len(self.unvalidated_files):,} new file(s) match but are not read until "
                         f"`vdrift validate` takes them in, e.g. {self.unvalidated_files[0]}")
        if self.missing_files:
            lines.append(f"  {len(self.missing_files):,} validated file(s) are gone or changed since, e.g. "
                         f"{self.missing_files[0]}: run `vdrift validate`")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        """JSON-ready fields (examples as a list of records)."""
        return {
            "pattern": self.pattern, "partitioning": self.partitioning, "mapping": self.mapping,
            "files": list(self.files), "rows": self.rows, "valid": self.valid, "excluded": self.excluded,
            "reasons": [list(r) for r in self.reasons], "examples": self.examples.to_dicts(),
            "covariates": list(self.covariates), "ignored_columns": list(self.ignored_columns),
            "unvalidated_files": list(self.unvalidated_files), "missing_files": list(self.missing_files),
            "validated_at": self.validated_at,
        }


def _named_values(reason: str, raw: str | None) -> str:
    """The example's values of the columns its reason names (``score=NaN``), else the whole raw row."""
    try:
        row = json.loads(raw) if raw else {}
    except ValueError:
        return str(raw)
    named = [f"{k}={json.dumps(v)}" for k, v in row.items()
             if k not in (_FILE_COLUMN, "file_row_number") and re.search(rf"(^|[^\w]){re.escape(k)}([^\w]|$)", reason)]
    return "; ".join(named) if named else json.dumps({k: v for k, v in row.items()
                                                      if k not in (_FILE_COLUMN, "file_row_number")})


# -- SQL literals for views --------------------------------------------------------------

def sql_literal(value: object) -> str:
    """``value`` as a DuckDB literal (views cannot hold bound parameters)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return f"CAST({sql_literal(repr(value))} AS DOUBLE)"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return f"TIMESTAMP {sql_literal(value.isoformat(sep=' '))}"
    if isinstance(value, dt.date):
        return f"DATE {sql_literal(value.isoformat())}"
    if isinstance(value, str):
        if "\x00" in value:
            raise InputError(f"a value holds a NUL character: {value!r}")
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(sql_literal(v) for v in value) + "]"
    raise InputError(f"cannot write {value!r} ({type(value).__name__}) into a view")


def _inline(sql: str, params: list) -> str:
    """Replace each ``?`` placeholder outside quotes by the literal of the next parameter."""
    out: list[str] = []
    it = iter(params)
    quote: str | None = None
    used = 0
    for ch in sql:
        if quote is not None:
            out.append(ch)
            if ch == quote:  # a doubled quote closes and reopens: same state afterwards
                quote = None
            continue
        if ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            try:
                out.append(sql_literal(next(it)))
            except StopIteration:
                raise StoreError("internal error: more placeholders than values in a view "
                                 "(please report this)") from None
            used += 1
        else:
            out.append(ch)
    if used != len(params):
        raise StoreError("internal error: more values than placeholders in a view (please report this)")
    return "".join(out)


# -- files ---------------------------------------------------------------------------

def expand_dataset(pattern: str) -> list[str]:
    """The Parquet files of a file, directory (recursively) or glob, as sorted absolute paths."""
    text = os.fspath(pattern)
    if any(ch in text for ch in "*?[") and not os.path.exists(text):
        found = [m for m in _glob.glob(text, recursive=True) if os.path.isfile(m)]
        if not found:
            raise InputError(f"no file matches {text!r}")
    elif os.path.isdir(text):
        found = [str(p) for p in Path(text).rglob("*") if p.is_file() and p.suffix.lower() in (".parquet", ".pq")]
        if not found:
            raise InputError(f"directory {text!r} holds no Parquet file (*.parquet, *.pq)")
    elif os.path.isfile(text):
        found = [text]
    else:
        raise InputError(f"no file matches {text!r} (no such file or directory)")
    files = sorted({os.path.abspath(f) for f in found})
    for f in files:
        if not f.lower().endswith((".parquet", ".pq")):
            raise InputError(f"{f}: only Parquet datasets can be attached (*.parquet, *.pq); "
                             "ingest CSV and JSON lines files with `vdrift ingest predictions`")
        if any(ch in _DUCKDB_GLOB for ch in f) or "'" in f:
            raise InputError(f"{f}: a file name with glob characters or quotes cannot be attached; rename it")
    return files


def _hive_keys(files: list[str]) -> list[str]:
    """Partition keys of ``key=value`` directories (the same for every file, else an error)."""
    keys: list[str] | None = None
    for f in files:
        these = [m.group(1) for part in Path(f).parent.parts if (m := _HIVE_DIR.match(part))]
        if keys is None:
            keys = these
        elif these != keys:
            raise InputError(
                f"{f}: its partition directories ({', '.join(these) or 'none'}) differ from those of "
                f"{files[0]} ({', '.join(keys) or 'none'}); a hive dataset has the same keys in every path"
            )
    if not keys:
        raise InputError(f"--partitioning hive: {files[0]} is not under key=value directories "
                         "(e.g. date=2026-11-09/part-0.parquet); attach it without --partitioning")
    return keys


def _source(files_sql: str, hive: bool) -> str:
    return (f"read_parquet({files_sql}, hive_partitioning = {'true' if hive else 'false'}, "
            f"file_row_number = true, filename = {sql_literal(_FILE_COLUMN)})")


def _describe(con: duckdb.DuckDBPyConnection, files: list[str], hive: bool) -> dict[str, str]:
    """Column name -> type, the same in every file (checked file by file: footers only)."""
    first: dict[str, str] | None = None
    for f in files:
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM {_source('?', hive)}", [f]).fetchall()
        except duckdb.Error as exc:
            raise InputError(f"{f}: cannot read it as parquet: {_first_line(exc)}") from None
        types = {n: t for n, t, *_ in described if n not in ("file_row_number", _FILE_COLUMN)}
        if first is None:
            first = types
        elif types != first:
            diff = sorted(set(types.items()) ^ set(first.items()))
            raise InputError(
                f"{f}: its columns differ from those of {files[0]} ({', '.join(f'{n} {t}' for n, t in diff[:6])}); "
                "every file of an attached dataset must have the same columns and types"
            )
    assert first is not None
    return first


# -- attach, validate, detach -----------------------------------------------------------

def info(con: duckdb.DuckDBPyConnection) -> dict | None:
    """The meta record of the attached source, or None."""
    try:
        row = con.execute("SELECT value FROM meta WHERE key = ?", [META_KEY]).fetchone()
    except duckdb.Error as exc:
        raise StoreError(f"cannot query the store: {_first_line(exc)}") from None
    return json.loads(row[0]) if row else None


def attach(store: Store, path: str | os.PathLike, *, mapping: str | os.PathLike | dict | None = None,
           partitioning: str | None = None, examples: int = 5) -> AttachResult:
    """``toolkit.attach(store, "lake/", partitioning="hive")``: the same as :meth:`Store.attach`."""
    return store.attach(path, mapping=mapping, partitioning=partitioning, examples=examples)


def attach_source(store: Store, pattern: str | os.PathLike, *,
                  mapping: str | os.PathLike | dict | Mapping | None = None,
                  partitioning: str | None = None, examples: int = 5) -> AttachResult:
    """Register a Parquet dataset as the store's predictions, validate it and build the views."""
    con = store.con
    t0 = time.perf_counter()
    if not isinstance(pattern, (str, os.PathLike)) or not os.fspath(pattern):
        raise InputError(f"path must be a file, directory or glob, got {pattern!r}")
    part = partitioning or "none"
    if part not in PARTITIONINGS:
        raise InputError(f"partitioning must be one of {', '.join(PARTITIONINGS)}, got {partitioning!r}")
    existing = info(con)
    if existing is not None:
        raise InputError(
            f"the store {store.path!r} already has predictions attached from {existing['pattern']}; "
            "detach them first (`vdrift detach predictions`) or use another store"
        )
    stored = con.execute("SELECT count(*) FROM predictions").fetchone()[0]
    if stored:
        raise InputError(
            f"the store {store.path!r} holds {stored:,} ingested predictions; a store reads its predictions "
            "either ingested or attached, not both: attach into a new store (deployments and artifacts "
            "are ingested there as usual)"
        )
    if con.execute("SELECT count(*) FROM covariates").fetchone()[0]:
        raise InputError(f"the store {store.path!r} has covariates of earlier ingests; attach into a new store")
    the_mapping = load_mapping(mapping)
    if the_mapping.format:
        raise InputError(f"mapping {the_mapping.source}: format = {the_mapping.format!r}: log layouts of serving "
                         "platforms cannot be attached; attach files in the contract's flat layout")
    _check_timezone(con, the_mapping)
    _check_mapping_values(con, "predictions", the_mapping)
    for cname in list(the_mapping.columns) + list(the_mapping.defaults):
        if cname not in CONTRACT["predictions"]:
            raise InputError(f"mapping {the_mapping.source}: {cname!r} is not a predictions contract column; "
                             f"contract columns: {', '.join(CONTRACT['predictions'])}")
    text = os.fspath(pattern)
    record = {
        "pattern": text, "pattern_abs": os.path.join(os.getcwd(), text),  # join keeps an absolute one as it is
        "partitioning": part, "mapping": _mapping_record(the_mapping),
        "attached_at": _now(), "toolkit_version": __version__,
    }
    return _build_and_report(store, record, the_mapping, first=True, examples=examples, t0=t0)


def validate(store: Store, *, examples: int = 5) -> AttachResult:
    """Take in the files that match the pattern now, validate them again and rebuild the views."""
    con = store.con
    record = _require(store)
    t0 = time.perf_counter()
    the_mapping = _load_recorded_mapping(record)
    unguard(con)
    return _build_and_report(store, record, the_mapping, first=False, examples=examples, t0=t0)


def _build_and_report(store: Store, record: dict, the_mapping: Mapping, *, first: bool, examples: int,
                      t0: float) -> AttachResult:
    """Build the attached views in one transaction, refresh the store's views and report.

    A first attach also draws its attach id inside the same transaction, so a failed
    build leaves no half-recorded source behind.
    """
    con = store.con
    con.execute("BEGIN TRANSACTION")
    try:
        if first:
            record["attach_id"] = int(con.execute("SELECT nextval('ingest_id_seq')").fetchone()[0])
        _build(store, record, the_mapping, first=first)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    store.refresh_views()
    return report(store, examples=examples, seconds=time.perf_counter() - t0)


def detach(store: Store) -> str:
    """Forget the attached source: the store gets an empty predictions table again. Returns the pattern."""
    from .schema import _DDL_V1

    con = store.con
    record = _require(store)
    create = next(s for s in _DDL_V1 if s.strip().startswith("CREATE TABLE IF NOT EXISTS predictions"))
    unguard(con)
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("DROP VIEW IF EXISTS predictions_resolved")
        con.execute("DROP VIEW IF EXISTS predictions")
        con.execute(f"DROP VIEW IF EXISTS {CHECKED_VIEW}")
        con.execute(f"DROP MACRO TABLE IF EXISTS {MACRO}")
        con.execute(f"DROP TABLE IF EXISTS {DUPLICATES_TABLE}")
        con.execute(f"DROP TABLE IF EXISTS {FILES_TABLE}")
        con.execute("DELETE FROM covariates WHERE first_ingest_id = ?", [record["attach_id"]])
        con.execute("DELETE FROM meta WHERE key = ?", [META_KEY])
        con.execute(create)
        store.refresh_views()
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return record["pattern"]


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


def _require(store: Store) -> dict:
    record = info(store.con)
    if record is None:
        raise InputError(f"the store {store.path!r} has no attached predictions; attach a dataset with "
                         f"`vdrift attach predictions PATH --db {store.path}`")
    return record


def _now() -> str:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="seconds")


def _mapping_record(mapping: Mapping) -> dict:
    """The mapping as stored in the meta row, so validation can apply it again without the file."""
    return {"columns": dict(mapping.columns), "timestamps": {"timezone": mapping.timezone,
            **({"format": mapping.time_format} if mapping.time_format else {})},
            "defaults": dict(mapping.defaults),
            **({"covariates": list(mapping.covariates)} if mapping.covariates is not None else {}),
            "_source": mapping.source}


def _load_recorded_mapping(record: dict) -> Mapping:
    data = dict(record["mapping"])
    source = data.pop("_source", "inline")
    m = load_mapping(data)
    return Mapping(columns=m.columns, timezone=m.timezone, time_format=m.time_format, defaults=m.defaults,
                   covariates=m.covariates, source=source)


def _build(store: Store, record: dict, mapping: Mapping, *, first: bool) -> None:
    """List and describe the files, plan the columns and (re)create the macro, tables and views."""
    con = store.con
    hive = record["partitioning"] == "hive"
    files = expand_dataset(record["pattern_abs"])
    src_types = _describe(con, files, hive)
    ignored: list[str] = []
    if hive:
        keys = _hive_keys(files)
        contract_sources = {mapping.source_for(c).lower() for c in CONTRACT["predictions"]}
        kept = set(mapping.covariates or ())
        for key in keys:  # a partition key feeds a contract column or a declared covariate, else it is layout
            if key.lower() not in contract_sources and key not in kept and key in src_types:
                del src_types[key]
                ignored.append(f"{key} (partition key)")
    files_sql = sql_literal(files)
    plan = _plan_columns(con, "predictions", Path(record["pattern"]), src_types, mapping,
                         _source("?", hive), [files])
    attach_id = record["attach_id"]
    names = [n for n, _ in plan.exprs]
    select_sql = ",\n    ".join(f"{e} AS {quote_ident(n)}" for n, e in plan.exprs)
    raw_sql = "".join(f",\n    {e} AS {quote_ident(n)}" for n, e in plan.raw_refs)
    body = (
        f"SELECT _file, _row, {', '.join(quote_ident(n) for n in names)}, {_reason_sql(plan)} AS _reason, _raw\n"
        f"FROM (SELECT src.{quote_ident(_FILE_COLUMN)} AS _file, src.file_row_number + 1 AS _row,\n    {select_sql}"
        f"{raw_sql},\n    CAST(to_json(src) AS VARCHAR) AS _raw\n  FROM {_source('files', hive)} AS src) AS typed"
    )
    body = _inline(body, plan.check_params + plan.expr_params)
    con.execute(f"CREATE OR REPLACE MACRO {MACRO}(files) AS TABLE {body}")

    # duplicate keys among the valid rows: the first (file order, then row order) is kept
    exprs, label = _DUPLICATE_KEYS["predictions"]
    part_by = ", ".join(exprs)
    con.execute(
        f"""CREATE OR REPLACE TABLE {DUPLICATES_TABLE} AS
        SELECT _file, _row, CASE WHEN _first = _file THEN ? ELSE ? END AS reason
        FROM (SELECT _file, _row, row_number() OVER w AS _n, first_value(_file) OVER w AS _first
              FROM {MACRO}({files_sql}) WHERE _reason IS NULL
              WINDOW w AS (PARTITION BY {part_by} ORDER BY _file, _row))
        WHERE _n > 1""",
        [f"duplicate {label} within the file (first kept)",
         f"duplicate {label} in an earlier file of the dataset (first kept)"],
    )
    # the files: their rows (from the footers) and the time range of their valid rows, for the branches
    con.execute(f"CREATE OR REPLACE TABLE {FILES_TABLE} (path VARCHAR PRIMARY KEY, bytes BIGINT, mtime DOUBLE, "
                "rows BIGINT, ts_min TIMESTAMP, ts_max TIMESTAMP)")
    ranges = {r[0]: (r[1], r[2]) for r in con.execute(
        f"""SELECT r._file, min(r.ts), max(r.ts) FROM {MACRO}({files_sql}) AS r
        ANTI JOIN {DUPLICATES_TABLE} AS d ON d._file = r._file AND d._row = r._row
        WHERE r._reason IS NULL GROUP BY r._file""").fetchall()}
    footer_rows = dict(con.execute("SELECT file_name, sum(num_rows) FROM parquet_file_metadata(?) GROUP BY 1",
                                   [files]).fetchall())
    for f in files:
        st = os.stat(f)
        lo, hi = ranges.get(f, (None, None))
        con.execute(f"INSERT INTO {FILES_TABLE} VALUES (?, ?, ?, ?, ?, ?)",
                    [f, st.st_size, st.st_mtime, int(footer_rows.get(f, 0)), lo, hi])
    con.execute(
        f"""CREATE OR REPLACE VIEW {CHECKED_VIEW} AS
        SELECT r.* EXCLUDE (_reason), coalesce(r._reason, d.reason) AS _reason
        FROM {MACRO}({files_sql}) AS r
        LEFT JOIN {DUPLICATES_TABLE} AS d ON d._file = r._file AND d._row = r._row"""
    )

    # predictions: one branch per UTC day of files (a file spanning days is a branch of its own)
    groups: dict[object, list[str]] = {}
    for f in files:
        lo, hi = ranges.get(f, (None, None))
        if lo is None:
            continue  # no valid row: nothing to read for analyses
        key = lo.date() if lo.date() == hi.date() else f
        groups.setdefault(key, []).append(f)
    contract = [n for n in CONTRACT["predictions"]]
    covs = [n for n in names if n not in contract]
    out_cols = ", ".join([quote_ident(n) for n in contract] + [f"CAST({int(attach_id)} AS BIGINT) AS ingest_id"]
                         + [quote_ident(n) for n in covs])
    branches = []
    for group in groups.values():
        lo = min(ranges[f][0] for f in group)
        hi = max(ranges[f][1] for f in group)
        branches.append(
            f"SELECT * FROM {MACRO}({sql_literal(group)}) "
            f"WHERE _reason IS NULL AND ts BETWEEN {sql_literal(lo)} AND {sql_literal(hi)}"
        )
    if not branches:  # no valid time anywhere: an empty relation of the right shape
        branches.append(f"SELECT * FROM {MACRO}({sql_literal(files[:1])}) WHERE false")
    union = "\nUNION ALL\n".join(branches)
    if first:
        con.execute("DROP VIEW IF EXISTS predictions_resolved")
        con.execute("DROP TABLE IF EXISTS predictions")
    con.execute(
        f"""CREATE OR REPLACE VIEW predictions AS
        SELECT {out_cols} FROM ({union}) AS u
        ANTI JOIN {DUPLICATES_TABLE} AS d ON d._file = u._file AND d._row = u._row"""
    )
    for name, typ in plan.new_covariates:
        con.execute("INSERT INTO covariates VALUES (?, ?, ?)", [name, typ, attach_id])
    record = dict(record, validated_at=_now(), ignored=ignored + list(plan.ignored),
                  covariates=covs)
    con.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", [META_KEY, json.dumps(record, default=str)])


def report(store: Store, *, examples: int = 5, seconds: float = 0.0) -> AttachResult:
    """Counts, reasons and examples of the attached source, and files that are new, gone or changed."""
    con = store.con
    record = _require(store)
    if isinstance(examples, bool) or not isinstance(examples, int) or examples < 0:
        raise InputError(f"examples must be a non-negative integer, got {examples!r}")
    files_rows = con.execute(f"SELECT path, bytes, mtime, rows FROM {FILES_TABLE} ORDER BY path").fetchall()
    stale = stale_files(con)
    if stale:  # the views would fail or read unvalidated content: report without scanning
        rows = valid = excluded = 0
        reasons: tuple[tuple[str, int], ...] = ()
        ex = pl.DataFrame(schema={"reason": pl.Utf8, "file": pl.Utf8, "row": pl.Int64, "raw": pl.Utf8})
    else:
        rows, valid = con.execute(
            f"SELECT count(*), count(*) FILTER (WHERE _reason IS NULL) FROM {CHECKED_VIEW}").fetchone()
        excluded = rows - valid
        reasons = tuple((r, int(n)) for r, n in con.execute(
            f"SELECT _reason, count(*) FROM {CHECKED_VIEW} WHERE _reason IS NOT NULL "
            "GROUP BY 1 ORDER BY 2 DESC, 1").fetchall())
        ex = con.execute(
            f"""SELECT _reason AS reason, _file AS file, _row AS "row", _raw AS raw FROM {CHECKED_VIEW}
            WHERE _reason IS NOT NULL
            QUALIFY row_number() OVER (PARTITION BY _reason ORDER BY _file, _row) <= ?
            ORDER BY reason, file, "row" """, [examples]).pl()
        in_files = sum(int(r[3]) for r in files_rows)
        served = con.execute("SELECT count(*) FROM predictions").fetchone()[0]
        if rows != in_files or served != valid or sum(n for _, n in reasons) != excluded:
            raise StoreError(
                f"attached predictions: the counts do not add up ({in_files:,} rows in the files' footers, "
                f"{rows:,} read, {valid:,} valid, {served:,} served to analyses, {excluded:,} excluded); "
                "run `vdrift validate` (please report this if it persists)"
            )
    validated = {r[0] for r in files_rows}
    try:
        now = set(expand_dataset(record["pattern_abs"]))
    except InputError:
        now = set()
    return AttachResult(
        pattern=record["pattern"], partitioning=record["partitioning"],
        mapping=_load_recorded_mapping(record).describe(), attach_id=int(record["attach_id"]),
        attached_at=record["attached_at"], validated_at=record["validated_at"],
        files=tuple(r[0] for r in files_rows), rows=int(rows), valid=int(valid), excluded=int(excluded),
        reasons=reasons, examples=ex, covariates=tuple(record.get("covariates", ())),
        ignored_columns=tuple(record.get("ignored", ())), unvalidated_files=tuple(sorted(now - validated)),
        missing_files=tuple(stale), seconds=seconds,
    )
