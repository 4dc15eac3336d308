"""Typed batches: consecutive Parquet prediction files with the same columns loaded by one statement."""

from __future__ import annotations

import datetime as dt
import os
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

from ... import __version__
from ...errors import InputError, StoreError
from ...sqlutil import one_row, quote_ident
from ..mapping import Mapping
from ..schema import REQUEST_KEY_SQL
from ...engine.keys import REQUEST_KEY
from .checks import _check_true_rows, _check_unchanged
from .duplicates import _batch_repeats
from .files import _DUCKDB_GLOB, _format_of
from .load import _add_new_covariates, _load, _prepare, _Prepared, _reason_sql, _transaction
from .plan import _Plan
from .results import IngestResult

if TYPE_CHECKING:  # pragma: no cover
    from ..store import Store


@dataclass(frozen=True)
class _Entry:
    """One file of a batch: prepared for loading, or already ingested (``skipped``)."""

    path: Path
    read_path: str
    prep: _Prepared | None = None
    skipped: IngestResult | None = None

    def skipped_result(self) -> IngestResult:
        """The result of a file ingested before (an entry without ``prep``)."""
        if self.skipped is None:  # pragma: no cover - every entry holds prep or skipped
            raise StoreError(f"{self.path}: internal error: a batch entry is neither prepared nor skipped "
                             "(please report this)")
        return self.skipped


@dataclass(frozen=True)
class _Batch:
    entries: tuple[_Entry, ...]
    plan: _Plan | None  # None when every file was ingested before
    file_column: str


def _typed_batch(
    store: Store, kind: str, files: list[Path], start: int, mapping: Mapping, force: bool
) -> _Batch | None:
    """The longest run of Parquet prediction files from ``start`` that can be loaded in one statement.

    The run stops before a file that is not Parquet, cannot be described,
    has other columns or types than the first, has a name DuckDB would read
    as a glob, repeats the content of an earlier file of the run, or is to be
    re-ingested with ``force`` (all of these take the one-file path, which
    reports what is wrong). Files ingested before are kept in the run as
    skipped. None when the run is empty.
    """
    if kind != "predictions" or mapping.format is not None:  # a platform's native log is read one file at a time
        return None
    entries: list[_Entry] = []
    shas: set[str] = set()
    first: _Prepared | None = None
    for path in files[start:]:
        if _format_of(path, strict=False) != "parquet":
            break
        read_path = os.path.abspath(path)
        try:
            read_path.encode("utf-8")
        except UnicodeEncodeError:
            break
        if any(ch in _DUCKDB_GLOB for ch in read_path):
            break
        try:
            prep = _prepare(store, kind, path, read_path, mapping, force, first.plan if first else None)
        except (InputError, OSError, duckdb.Error):
            break
        if isinstance(prep, IngestResult):
            if prep.sha256 in shas:
                break
            shas.add(prep.sha256 or "")
            entries.append(_Entry(path=path, read_path=read_path, skipped=prep))
            continue
        if prep.previous or prep.sha in shas:
            break
        if first is None:
            first = prep
        elif prep.src_types != first.src_types:
            break
        shas.add(prep.sha)
        entries.append(_Entry(path=path, read_path=read_path, prep=prep))
    if first is None:  # nothing to load: the results of the files ingested before
        return _Batch(entries=tuple(entries), plan=None, file_column="") if entries else None
    # the file-name column of the multi-file scan, named unlike any source or target column
    taken = {n.lower() for n in first.src_types} | {n.lower() for n, _ in first.plan.exprs}
    taken |= {n.lower() for n, _ in first.plan.raw_refs}
    column = "_vd_file"
    while column in taken:
        column = "_" + column
    return _Batch(entries=tuple(entries), plan=first.plan, file_column=column)


def _ingest_batch(store: Store, batch: _Batch, mapping: Mapping) -> list[IngestResult]:
    """Load the files of a batch in one transaction, one ingest id and ingest_log row per file.

    All valid rows of all files are inserted by one statement over
    ``read_parquet([...])`` (DuckDB reads the files in parallel). A file whose
    rows were all valid and whose keys repeat nothing (within the batch, or
    among stored rows within :data:`DUPLICATE_SEARCH_MARGIN` of the batch's
    time span) is done. Each other file has its rows deleted again and is
    loaded row by row (staged, quarantining what is wrong) in file order,
    in the same transaction, so every file ends as the one-file path would
    leave it. On any error the transaction is rolled back and the store is
    unchanged.
    """
    con = store.con
    loadable = [e for e in batch.entries if e.prep is not None]
    preps = [e.prep for e in loadable if e.prep is not None]
    plan = batch.plan
    if plan is None or not loadable:
        return [e.skipped_result() for e in batch.entries]
    t0 = time.perf_counter()
    with _transaction(con):
        ids = sorted(int(r[0]) for r in con.execute(
            "SELECT nextval('ingest_id_seq') FROM range(?) ORDER BY range", [len(loadable)]
        ).fetchall())
        id_of = {e.read_path: i for e, i in zip(loadable, ids, strict=True)}
        _add_new_covariates(con, plan, ids[0])
        redo, rows = _insert_batch(store, batch, plan, [e.read_path for e in loadable], ids, id_of)
        results: list[IngestResult] = []
        loaded_plan = replace(plan, new_covariates=[])
        for entry in batch.entries:
            if entry.prep is None:
                results.append(entry.skipped_result())
                continue
            ingest_id = id_of[entry.read_path]
            if ingest_id in redo:
                prep = replace(entry.prep, plan=loaded_plan)
                result = _load(store, "predictions", entry.path, entry.read_path, mapping, prep,
                               ingest_id, direct=False)
            else:
                result = _log_loaded(con, entry, plan, mapping, ingest_id, rows.get(ingest_id, 0), preps[0].started)
            if ingest_id == ids[0]:
                result = replace(result, new_covariates=tuple(n for n, _ in plan.new_covariates))
            results.append(result)
        if plan.new_covariates:
            store.refresh_views()
    return _note_shared_transaction(results, len(loadable), time.perf_counter() - t0)


def _insert_batch(store: Store, batch: _Batch, plan: _Plan, paths: list, ids: list[int],
                  id_of: dict) -> tuple[set[int], dict]:
    """Insert the valid rows of all files in one statement.

    Returns the ingest ids to load again row by row, and the rows each file has.
    """
    con = store.con
    fcol = quote_ident(batch.file_column)
    source = (f"read_parquet(?, hive_partitioning = false, "
              f"filename = '{batch.file_column}')")
    cols_sql = ", ".join(quote_ident(n) for n, _ in plan.exprs)
    select_sql = ",\n  ".join(f"{expr} AS {quote_ident(name)}" for name, expr in plan.exprs)
    raw_sql = "".join(f",\n  {e} AS {quote_ident(n)}" for n, e in plan.raw_refs)
    id_list = "[" + ", ".join(str(i) for i in ids) + "]"
    total = one_row(
        con,
        f"INSERT INTO predictions ({cols_sql}, ingest_id, {quote_ident(REQUEST_KEY)})\n"
        f"SELECT {cols_sql}, list_extract({id_list}, {fcol}), {REQUEST_KEY_SQL} FROM (\n"
        f"SELECT {fcol}, {cols_sql}, {_reason_sql(plan)} AS _reason\n"
        f"FROM (SELECT {select_sql}{raw_sql},\n  list_position(?, src.{fcol}) AS {fcol}\n"
        f"  FROM {source} AS src) AS typed) WHERE _reason IS NULL",
        plan.check_params + plan.expr_params + [paths, paths],
    )[0]
    rows = {id_of.get(f): n for f, n in con.execute(
        f"SELECT {fcol}, count(*) FROM {source} GROUP BY 1", [paths]
    ).fetchall()}
    note = getattr(store, "_note", None)
    if note:
        note(f"  batch of {len(paths)} file(s): {total:,} rows inserted, checking")
    inserted = dict(con.execute(
        "SELECT ingest_id, count(*) FROM predictions WHERE ingest_id BETWEEN ? AND ? GROUP BY 1",
        [min(ids), max(ids)],
    ).fetchall())
    if None in rows or sum(inserted.values()) != total:  # a row not attributed to its file
        raise StoreError("the rows of a batch could not be told apart by file")
    redo = {i for i in ids if inserted.get(i, 0) != rows.get(i, 0)} | _batch_repeats(con, ids)
    if redo:
        con.execute("DELETE FROM predictions WHERE ingest_id IN (SELECT unnest(?))", [sorted(redo)])
    return redo, rows


def _log_loaded(con: duckdb.DuckDBPyConnection, entry, plan: _Plan, mapping: Mapping, ingest_id: int, n: int,
                started) -> IngestResult:
    """A file the batch statement loaded whole: checked unchanged, its row count, its ingest_log row."""
    _check_unchanged(entry.path, entry.prep.before)
    _check_true_rows(entry.path, "parquet", n, entry.prep.true_rows)
    con.execute(
        "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        [ingest_id, "predictions", str(entry.path), entry.prep.sha, "parquet", mapping.describe(),
         n, n, 0, started, dt.datetime.now(dt.UTC).replace(tzinfo=None),
         __version__],
    )
    return IngestResult(
        path=str(entry.path), kind="predictions", status="ingested",
        message="header only: no data rows" if n == 0 else "", sha256=entry.prep.sha,
        format="parquet", rows_read=n, accepted=n, ingest_id=ingest_id,
        ignored_columns=plan.ignored,
    )


def _note_shared_transaction(results: list[IngestResult], n_files: int, seconds: float) -> list[IngestResult]:
    if n_files > 1:
        note = f"loaded in one transaction with {n_files - 1} other file(s) of this call"
        results = [r if r.status != "ingested" else
                   replace(r, seconds=seconds, message="; ".join(m for m in (r.message, note) if m))
                   for r in results]
    return results
