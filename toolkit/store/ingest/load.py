"""One file in one transaction: prepare (checksum, skip check, column plan), stage, check and insert."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from ... import __version__
from ...errors import InputError, StoreError, is_corruption
from ...sources.common import INTERNAL, RAW, REASON, ROW, Source
from ...sqlutil import one_row, quote_ident
from .. import textscan
from ..mapping import Mapping
from ..schema import CONTRACT, REQUEST_KEY_SQL
from ...engine.keys import REQUEST_KEY
from .checks import _check_header, _check_source_names, _check_true_rows, _check_unchanged, _parser_reason
from . import labels
from .duplicates import _mark_duplicates, _new_rows_repeat_a_key
from .files import (
    WHOLE_ROW, _drop_rejects, _duckdb_path, _format_of, _is_file_format, _printable, _source_sql, file_sha256,
)
from .plan import _Plan, _plan_columns, shown
from .results import Format, IngestResult, reason_rule_sql

if TYPE_CHECKING:  # pragma: no cover
    from ..store import Store


def _ingest_file(store: Store, kind: str, path: Path, mapping: Mapping, force: bool) -> IngestResult:
    if mapping.format is None:
        _format_of(path)  # an unknown file type is reported before anything else
    with _duckdb_path(path) as read_path:
        return _ingest_one(store, kind, path, read_path, mapping, force)


@dataclass(frozen=True)
class _Prepared:
    """What is known about a file before its transaction: checksum, earlier ingests, column plan."""

    started: dt.datetime
    t0: float
    fmt: Format | str  # a platform adapter's name (toolkit.sources) for a native log
    before: os.stat_result
    sha: str
    previous: tuple[tuple[int, str], ...]
    source: str
    src_params: tuple
    src_types: dict
    plan: _Plan
    true_rows: int | None = None  # the file's rows as counted independently of DuckDB (textscan)
    delimiter: str = ","
    native: Source | None = None  # a serving platform's log read by an adapter (toolkit.sources)


def _prepare(
    store: Store, kind: str, path: Path, read_path: str, mapping: Mapping, force: bool,
    plan: _Plan | None = None,
) -> _Prepared | IngestResult:
    """Checksum, skip check, DESCRIBE and column plan of one file; a skipped result when already ingested.

    With ``plan`` (that of an earlier file of a batch, which has the same
    columns and types) the file's own plan is not made: it would infer the
    types of new covariates again, a scan of the file.
    """
    con = store.con
    started = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    t0 = time.perf_counter()
    fmt: str  # a platform adapter's name (toolkit.sources) for a native log, else the file's format
    file_fmt: Format | None = None
    if mapping.format is not None:
        fmt = mapping.format
    else:
        fmt = file_fmt = _format_of(path)
    before = path.stat()
    if before.st_size == 0:
        raise InputError(f"{path}: the file is empty (0 bytes); nothing to ingest")
    sha = file_sha256(path)
    previous = con.execute(
        "SELECT ingest_id, path FROM ingest_log WHERE kind = ? AND sha256 = ? AND superseded_by IS NULL",
        [kind, sha],
    ).fetchall()
    if previous and not force:
        ids = ", ".join(str(r[0]) for r in previous)
        return IngestResult(
            path=str(path), kind=kind, status="skipped", sha256=sha, format=fmt,
            message=f"already ingested (same content as ingest {ids}: {previous[0][1]}); use --force to re-ingest",
        )

    if file_fmt is None:  # mapping.format names a platform's native log
        return _prepare_native(store, kind, path, read_path, mapping, plan, started, t0, before, sha, previous)
    delimiter, true_rows = ",", None
    if fmt != "parquet":
        textscan.check_encoding(path)
    if fmt == "csv":
        delimiter = "\t" if ".tsv" in path.name.lower() else textscan.detect_delimiter(path)
        true_rows = textscan.count_csv(path, delimiter).records
    elif fmt == "json":
        true_rows = textscan.count_json_lines(path)
        if true_rows == 0:  # DuckDB would read one column named "json" and report it missing the contract's
            raise InputError(f"{path}: the file holds only blank lines, no JSON object; nothing to ingest")
    source = _source_sql(file_fmt, path, delimiter=delimiter)
    src_params = [read_path]
    try:
        _drop_rejects(con)
        described = con.execute(f"DESCRIBE SELECT * FROM {source}", src_params).fetchall()
        if fmt == "parquet":
            true_rows = int(one_row(con, "SELECT sum(num_rows) FROM parquet_file_metadata(?)", src_params)[0])
    except duckdb.Error as exc:
        raise InputError(f"{path}: cannot read it as {fmt}: {_parser_reason(exc, fmt, path)}") from None
    src_types = {name: typ for name, typ, *_ in described if name != "file_row_number"}
    _check_header(fmt, path, list(src_types))
    _check_source_names(fmt, path, delimiter, list(src_types))
    if plan is None:
        plan = _plan_columns(con, kind, path, src_types, mapping, source, src_params)
    return _Prepared(started=started, t0=t0, fmt=fmt, before=before, sha=sha,
                     previous=tuple((r[0], r[1]) for r in previous), source=source,
                     src_params=tuple(src_params), src_types=src_types, plan=plan, true_rows=true_rows,
                     delimiter=delimiter)


def _prepare_native(
    store: Store, kind: str, path: Path, read_path: str, mapping: Mapping, plan: _Plan | None,
    started: dt.datetime, t0: float, before: os.stat_result, sha: str, previous: list,
) -> _Prepared:
    """The :class:`_Prepared` of a platform's native log: the adapter's relation is the source.

    The relation's metadata columns (endpoint, variant, ...) reach the column
    plan only when the mapping names them (as a source column or covariate),
    so they are not stored as covariates by default; its internal columns
    (row ordinal, raw record, reason) never do.
    """
    con = store.con
    if mapping.format is None:  # pragma: no cover - _prepare calls this for a native log only
        raise StoreError(f"{path}: internal error: the mapping names no native log format (please report this)")
    from ...sources import adapter_for  # here: toolkit.sources imports the store (its adapters use store.mapping)

    adapter = adapter_for(mapping.format)
    if path.name.lower().endswith((".gz", ".zst", ".bz2", ".xz", ".zip")):
        raise InputError(f"{path}: compressed {adapter.name} logs are not read; decompress the file first "
                         "(e.g. gunzip), the adapters read the platform's plain JSON lines")
    textscan.check_encoding(path)
    native = adapter.build(con, path, read_path, mapping)
    if native.rows == 0:
        raise InputError(f"{path}: the file holds only blank lines, no {adapter.name} record; nothing to ingest")
    try:
        described = con.execute(f"DESCRIBE SELECT * FROM {native.sql}", list(native.params)).fetchall()
    except duckdb.Error as exc:
        if is_corruption(str(exc)):
            raise
        raise InputError(f"{path}: cannot read it as a {adapter.name} log: {str(exc).splitlines()[0]}") from None
    native = _with_mapping(native, [name for name, *_ in described], mapping)
    wanted = set(mapping.columns.values()) | set(mapping.covariates or ())
    contract = CONTRACT[kind]
    src_types = {name: typ for name, typ, *_ in described
                 if name not in INTERNAL and (name not in native.metadata or name in wanted)
                 # a contract column of the adapter that the mapping takes from another column is not stored
                 and not (name in contract and mapping.source_for(name) != name)}
    if plan is None:
        plan = _plan_columns(con, kind, path, src_types, mapping, native.sql, list(native.params))
    return _Prepared(started=started, t0=t0, fmt=adapter.name, before=before, sha=sha,
                     previous=tuple((r[0], r[1]) for r in previous), source=native.sql,
                     src_params=native.params, src_types=src_types, plan=plan, true_rows=native.rows,
                     native=native)


def _with_mapping(native: Source, columns: list[str], mapping: Mapping) -> Source:
    """The adapter's relation with the mapping's defaults filling what the native records lack.

    For a flat file a default applies when the column is missing; an
    adapter's relation has its contract columns always, NULL where a record
    did not say (a v1 KServe body has no model_version), so there the
    default fills those NULLs.
    """
    filled = [(c, v) for c, v in mapping.defaults.items() if c in columns and mapping.source_for(c) == c]
    if not filled:
        return native
    fill = ", ".join(f"coalesce(src.{quote_ident(c)}, CAST(? AS VARCHAR)) AS {quote_ident(c)}" for c, _ in filled)
    return replace(native, sql=f"(SELECT * REPLACE ({fill}) FROM {native.sql} AS src)",
                   params=(*(str(v) for _, v in filled), *native.params))


def _ingest_one(
    store: Store, kind: str, path: Path, read_path: str, mapping: Mapping, force: bool
) -> IngestResult:
    """One file in one transaction."""
    con = store.con
    prep = _prepare(store, kind, path, read_path, mapping, force)
    if isinstance(prep, IngestResult):
        return prep
    with _transaction(con):
        _drop_rejects(con)
        ingest_id = one_row(con, "SELECT nextval('ingest_id_seq')")[0]
        result = _load(store, kind, path, read_path, mapping, prep, ingest_id, direct=True)
    return replace(result, seconds=time.perf_counter() - prep.t0)


@contextlib.contextmanager
def _transaction(con: duckdb.DuckDBPyConnection):
    """BEGIN ... COMMIT around the block, ROLLBACK on any exception (Ctrl-C included); temp tables dropped."""
    con.execute("BEGIN TRANSACTION")
    try:
        yield
        con.execute("COMMIT")
    except BaseException:
        with contextlib.suppress(duckdb.Error):  # keep the original error if DuckDB already rolled back
            con.execute("ROLLBACK")
        raise
    finally:
        # temporary tables only: once the data is committed, failing to drop them must not report a failure
        with contextlib.suppress(duckdb.Error):
            con.execute("DROP TABLE IF EXISTS _vd_stage")
            _drop_rejects(con)


#: the statement head that makes the staging table of :func:`_stage_sql`'s SELECT
_STAGE_TABLE = "CREATE OR REPLACE TEMP TABLE _vd_stage AS\n"


#: the staging alias of a native record's own reason (toolkit.sources), which comes before the plan's checks
_NATIVE_REASON = "_vd_native_reason"


def _stage_sql(plan: _Plan, fmt: Format | str, source: str, *, native: bool = False) -> str:
    """The SELECT that fills ``_vd_stage``: every row typed, with ``_reason`` (NULL when valid).

    The staged path runs it under ``CREATE OR REPLACE TEMP TABLE _vd_stage AS``
    (:data:`_STAGE_TABLE`); the one-pass path inserts the valid rows of it directly.
    With ``native`` the source is an adapter's relation: its ``_vd_row`` is the
    row number and a record's own reason (broken payload, ...) is the row's
    reason when it has one, as it explains the plan's checks that follow from it;
    ``fmt`` is then the adapter's name.
    """
    row_expr = "file_row_number + 1" if fmt == "parquet" else "row_number() OVER ()"
    whole_row = "" if fmt == "parquet" else WHOLE_ROW
    reason = _reason_sql(plan)
    raw_refs = list(plan.raw_refs)
    if native:
        row_expr, whole_row = f"src.{quote_ident(ROW)}", ""
        raw_refs.append((_NATIVE_REASON, f"src.{quote_ident(REASON)}"))
        reason = f"coalesce({quote_ident(_NATIVE_REASON)}, {reason})"
    select_sql = ",\n  ".join(f"{expr} AS {quote_ident(name)}" for name, expr in plan.exprs)
    raw_sql = "".join(f",\n  {e} AS {quote_ident(n)}" for n, e in raw_refs)
    return (
        f"SELECT _row, {', '.join(quote_ident(n) for n, _ in plan.exprs)}, {reason} AS _reason\n"
        f"FROM (SELECT {row_expr} AS _row,\n  {select_sql}{raw_sql}\n  FROM {source} AS src {whole_row}) AS typed"
    )


def _reason_sql(plan: _Plan) -> str:
    return "NULLIF(concat_ws('; ', " + ", ".join(plan.checks) + "), '')" if plan.checks else "NULL"


def _load(
    store: Store, kind: str, path: Path, read_path: str, mapping: Mapping, prep: _Prepared,
    ingest_id: int, *, direct: bool,
) -> IngestResult:
    """Load one prepared file under ``ingest_id`` inside the caller's transaction (which commits it).

    With ``direct`` a Parquet predictions file is first tried on the one-pass
    path (:func:`_direct_insert`); otherwise, or when that finds a rejected or
    repeated row, the file is staged and checked row by row.
    """
    con = store.con
    fmt, plan, source = prep.fmt, prep.plan, prep.source
    previous = prep.previous
    stage_select = _stage_sql(plan, fmt, source, native=prep.native is not None)
    if kind == "outcomes":
        labels.ensure_table(con)
    if previous:  # --force: replace what the earlier ingest of this content loaded
        _supersede(con, kind, [r[0] for r in previous], ingest_id)
    _add_new_covariates(con, plan, ingest_id)
    staged_direct = _stage_and_insert(con, kind, path, prep, ingest_id, stage_select, direct=direct)
    if kind == "outcomes":
        labels.apply(con, ingest_id, prep.started)
    malformed = _quarantine_malformed(con, kind, path, fmt, ingest_id)
    rejected = _quarantine_rejected(con, kind, path, read_path, prep, ingest_id)
    staged = staged_direct if staged_direct is not None else one_row(con, "SELECT count(*) FROM _vd_stage")[0]
    rows_read = staged + malformed
    accepted = staged - rejected
    if prep.native is not None:
        _check_native_rows(path, fmt, prep.native, rows_read)
    else:
        _check_true_rows(path, fmt, rows_read, prep.true_rows)
    note = getattr(store, "_note", None)
    if note:
        note(f"  {_printable(path)}: {rows_read:,} rows read, writing")
    by_rule = con.execute(
        f"SELECT {reason_rule_sql('reason')} AS rule, count(*), min(reason) FROM quarantine WHERE ingest_id = ? "
        "GROUP BY rule ORDER BY 2 DESC, 1",
        [ingest_id],
    ).fetchall()
    reasons = tuple((r, int(n)) for r, n, _ in by_rule)
    stored = one_row(
        con,
        f"SELECT count(*) FROM {quote_ident(kind)} WHERE ingest_id = ?", [ingest_id]
    )[0]
    if stored != accepted or sum(n for _, n in reasons) != rejected + malformed:
        raise StoreError(f"{path}: internal count mismatch; nothing was ingested (please report this)")
    _check_unchanged(path, prep.before)
    finished = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    con.execute(
        "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        [ingest_id, kind, str(path), prep.sha, fmt, mapping.describe(), rows_read, accepted,
         rejected + malformed, prep.started, finished, __version__],
    )
    in_transaction = getattr(store, "_in_transaction", None)
    if in_transaction is not None:  # e.g. a quarantine release takes its rows out of quarantine in this transaction
        in_transaction(con, ingest_id)
    if plan.new_covariates:  # in the same transaction: the view lists the new column or nothing changed
        store.refresh_views()
    return IngestResult(
        path=str(path), kind=kind, status="ingested", message=_load_message(rows_read, previous), sha256=prep.sha,
        format=fmt, rows_read=rows_read, accepted=accepted, quarantined=rejected + malformed, reasons=reasons,
        ingest_id=ingest_id, seconds=time.perf_counter() - prep.t0,
        new_covariates=tuple(n for n, _ in plan.new_covariates), ignored_columns=plan.ignored,
        examples=tuple((r, e) for r, _, e in by_rule), covariate_notes=plan.covariate_notes,
    )


def _supersede(con: duckdb.DuckDBPyConnection, kind: str, old_ids: list, ingest_id: int) -> None:
    """--force: take back the rows the earlier ingests of this content loaded; they are superseded."""
    if kind == "outcomes":
        labels.take_back(con, old_ids)
    # the earlier ingests are of this kind (ingest_log is searched by kind): their rows are in its table
    # and quarantine only; not touching the other tables lets an attached store (toolkit.store.attach),
    # whose predictions are a view, re-ingest its deployments and artifacts
    for table in (kind, "quarantine"):
        con.execute(
            f"DELETE FROM {quote_ident(table)} WHERE ingest_id IN (SELECT unnest(?))", [old_ids]
        )
    con.execute(
        "UPDATE ingest_log SET superseded_by = ? WHERE ingest_id IN (SELECT unnest(?))",
        [ingest_id, old_ids],
    )


def _add_new_covariates(con: duckdb.DuckDBPyConnection, plan: _Plan, ingest_id: int) -> None:
    """The plan's new covariate columns, added to predictions and registered under ``ingest_id``."""
    for name, typ in plan.new_covariates:
        con.execute(f"ALTER TABLE predictions ADD COLUMN {quote_ident(name)} {typ}")
        con.execute("INSERT INTO covariates VALUES (?, ?, ?)", [name, typ, ingest_id])


def _stage_and_insert(con: duckdb.DuckDBPyConnection, kind: str, path: Path, prep: _Prepared, ingest_id: int,
                      stage_select: str, *, direct: bool) -> int | None:
    """Insert the file's valid rows: in one pass if it can (returns the rows), else staged (returns None)."""
    fmt, plan, source, src_params = prep.fmt, prep.plan, prep.source, list(prep.src_params)
    cols_sql = ", ".join(quote_ident(n) for n, _ in plan.exprs)
    if direct and fmt == "parquet" and kind == "predictions" and _direct_insert(
        con, ingest_id, stage_select, cols_sql, plan.check_params + plan.expr_params + src_params, source, src_params
    ):
        # every row valid and unique: loaded in one pass, nothing to quarantine
        con.execute("CREATE OR REPLACE TEMP TABLE _vd_stage AS SELECT NULL::VARCHAR AS _reason WHERE false")
        return one_row(con, "SELECT count(*) FROM predictions WHERE ingest_id = ?", [ingest_id])[0]
    try:
        con.execute(_STAGE_TABLE + stage_select, plan.check_params + plan.expr_params + src_params)
    except duckdb.Error as exc:
        if is_corruption(str(exc)):
            raise
        if prep.native is not None:
            raise InputError(f"{path}: cannot read it as a {fmt} log: {str(exc).splitlines()[0]}") from None
        raise InputError(f"{path}: cannot read it as {fmt}: {_parser_reason(exc, fmt, path)}") from None
    _mark_duplicates(con, kind)
    key_col, key_sql = ((f", {quote_ident(REQUEST_KEY)}", f", {REQUEST_KEY_SQL}") if kind == "predictions"
                        else ("", ""))
    con.execute(
        f"INSERT INTO {quote_ident(kind)} ({cols_sql}, ingest_id{key_col}) "
        f"SELECT {cols_sql}, ?{key_sql} FROM _vd_stage WHERE _reason IS NULL",
        [ingest_id],
    )
    return None


def _quarantine_malformed(con: duckdb.DuckDBPyConnection, kind: str, path: Path, fmt: str, ingest_id: int) -> int:
    """Quarantine a CSV file's malformed lines (the reader's rejects); their number."""
    if fmt != "csv":
        return 0
    # one reject row per error; a line with several errors is one quarantined row
    malformed = one_row(con, "SELECT count(DISTINCT line) FROM _vd_rejects")[0]
    if malformed:
        con.execute(
            f"""INSERT INTO quarantine
            SELECT ?, ?, ?, NULL,
                   'malformed CSV line: ' || lower(replace(CAST(first(error_type ORDER BY column_idx) AS VARCHAR), '_', ' '))
                   || ': ' || {shown("first(csv_line)")},
                   to_json({{'line': line, 'errors': string_agg(error_message, ' | ' ORDER BY column_idx),
                            'text': first(csv_line)}})
            FROM _vd_rejects GROUP BY line ORDER BY line""",  # noqa: E501 (the SQL text is kept as it was)
            [ingest_id, kind, str(path)],
        )
    return malformed


def _quarantine_rejected(con: duckdb.DuckDBPyConnection, kind: str, path: Path, read_path: str, prep: _Prepared,
                         ingest_id: int) -> int:
    """Quarantine the staged rows a check rejected, each with its raw source record; their number."""
    fmt, source, src_params = prep.fmt, prep.source, list(prep.src_params)
    rejected = one_row(con, "SELECT count(*) FROM _vd_stage WHERE _reason IS NOT NULL")[0]
    if rejected and prep.native is not None:  # the native record(s) the row came from, by the adapter's ordinal
        con.execute(
            f"""INSERT INTO quarantine
            SELECT ?, ?, ?, s._row, s._reason, r.raw
            FROM _vd_stage AS s
            JOIN (SELECT src.{quote_ident(ROW)} AS _row, CAST(src.{quote_ident(RAW)} AS JSON) AS raw
                  FROM {source} AS src) AS r USING (_row)
            WHERE s._reason IS NOT NULL""",
            [ingest_id, kind, str(path), *src_params],
        )
    elif rejected:
        if not _is_file_format(fmt):  # pragma: no cover - a native log (prep.native) takes the branch above
            raise StoreError(f"{path}: internal error: {fmt!r} is not a file format; nothing was ingested "
                             "(please report this)")
        raw_row = "file_row_number + 1" if fmt == "parquet" else "row_number() OVER ()"
        con.execute(
            f"""INSERT INTO quarantine
            SELECT ?, ?, ?, s._row, s._reason, r.raw
            FROM _vd_stage AS s
            JOIN (SELECT {raw_row} AS _row, to_json(src) AS raw
                  FROM {_source_sql(fmt, path, "_vd_rejects_again", prep.delimiter)} AS src) AS r USING (_row)
            WHERE s._reason IS NOT NULL""",
            [ingest_id, kind, str(path), read_path],
        )
    return rejected


def _load_message(rows_read: int, previous) -> str:
    note = "header only: no data rows" if rows_read == 0 else ""
    if previous:
        replaced = ", ".join(str(r[0]) for r in previous)
        note = (note + "; " if note else "") + f"re-ingested (--force), replacing ingest {replaced}"
    return note


def _check_native_rows(path: Path, fmt: str, native: Source, rows_read: int) -> None:
    """Refuse a native log whose rows, as the adapter's SQL read them, are not the rows counted independently."""
    if rows_read != native.rows:
        raise InputError(
            f"{path}: the {fmt} adapter read {rows_read:,} rows, but the file has {native.rows:,} "
            f"{native.rows_what}; nothing was ingested from it, so no row is lost without a trace "
            "(please report this with the file)"
        )


def _direct_insert(
    con: duckdb.DuckDBPyConnection, ingest_id: int, select_sql: str, cols_sql: str, params: list,
    source: str, src_params: list,
) -> bool:
    """Fast path for Parquet predictions: insert straight from the file in one pass.

    Valid rows are inserted without a staging table; the load is kept only if
    every row of the file was valid and no key repeats (within the file or
    against stored rows near its time span): then there is nothing to
    quarantine and the result equals the staged path's. Otherwise the rows
    are deleted again (same transaction) and the caller takes the staged path,
    which says row by row what is wrong. Returns True when the fast path held.
    ``select_sql`` is the staging SELECT of :func:`_stage_sql` (typed columns + ``_reason``).
    """
    inserted = one_row(
        con,
        f"INSERT INTO predictions ({cols_sql}, ingest_id, {quote_ident(REQUEST_KEY)}) "
        f"SELECT {cols_sql}, {int(ingest_id)}, {REQUEST_KEY_SQL} FROM ({select_sql}) WHERE _reason IS NULL",
        params,
    )[0]
    rows_read = one_row(con, f"SELECT count(*) FROM {source}", src_params)[0]
    ok = inserted == rows_read and not _new_rows_repeat_a_key(con, ingest_id)
    if not ok:
        con.execute("DELETE FROM predictions WHERE ingest_id = ?", [ingest_id])
    return ok
