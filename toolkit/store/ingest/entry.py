"""The entry point: check the mapping, expand the paths, and load the files one by one or in typed batches."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import sys
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import duckdb

from ...errors import InputError, StoreError, from_duckdb, safe_text
from ...sqlutil import one_row
from ..mapping import EPOCH_UNITS, Mapping, load_mapping
from ..schema import CONTRACT
from .batch import _ingest_batch, _typed_batch
from .files import _first_line, _printable, expand_paths
from .load import _ingest_file
from .results import IngestReport, IngestResult

if TYPE_CHECKING:  # pragma: no cover
    from ..store import Store


def ingest(
    store: Store,
    kind: str,
    paths: str | os.PathLike | Iterable[str | os.PathLike],
    *,
    mapping: str | os.PathLike | dict | Mapping | None = None,
    force: bool = False,
    progress: bool | Literal["lines"] = False,
    format: str | None = None,
) -> IngestReport:
    """Validate and load every file of ``kind`` found in ``paths``.

    Parameters
    ----------
    store
        The open store.
    kind
        ``predictions``, ``deployments``, ``artifacts`` or ``outcomes`` (late
        labels joined to stored predictions by request_id; :mod:`.labels`).
    paths
        Files, globs or directories.
    mapping
        A mapping file or dict (see :mod:`toolkit.store.mapping`).
    force
        Re-ingest files whose content was ingested before; the rows from the
        earlier ingest are replaced, never duplicated.
    progress
        True: print progress lines on stderr and DuckDB's progress bar; ``"lines"``: the lines
        only (``vdrift ingest --progress``). A line when a file starts (``[2/3] predictions:
        PATH``), when its rows are read and checked (``... N rows read, writing``) and when it is
        committed (``... committed``): observable points at which tests interrupt an ingest.
    format
        A serving platform's native log layout (``sagemaker``, ``kserve``, ``seldon``,
        ``bentoml``; :mod:`toolkit.sources`), as ``format = "..."`` in a mapping file; the
        mapping's columns, defaults and time zone apply on top of the adapter's columns.

    Returns
    -------
    IngestReport
        Per-file results. A file that cannot be read is ``failed`` with a
        message and leaves the store untouched; the other files still load.
    """
    if kind not in CONTRACT:
        raise InputError(f"unknown kind {kind!r}; choose predictions, deployments, artifacts or outcomes")
    the_mapping = _with_format(load_mapping(mapping), format)
    adapter = None
    if the_mapping.format is not None:
        from ...sources import adapter_for  # here: toolkit.sources imports the store (its adapters use store.mapping)

        adapter = adapter_for(the_mapping.format)
        if kind != "predictions":
            raise InputError(
                f"the {adapter.name} log format applies to prediction logs only; ingest {kind} "
                "in vdrift's own layout (docs/ingest.md, \"The data contract\") without a format"
            )
    try:
        _check_timezone(store.con, the_mapping)
        _check_mapping_values(store.con, kind, the_mapping)
    except duckdb.Error as exc:
        raise StoreError(f"cannot query the store {store.path!r}: {_first_line(exc)}") from None
    for cname in list(the_mapping.columns) + list(the_mapping.defaults) + list(the_mapping.values):
        if cname not in CONTRACT[kind]:
            raise InputError(
                f"mapping {the_mapping.source}: {cname!r} is not a {kind} contract column; "
                f"contract columns: {', '.join(CONTRACT[kind])}"
            )
    for cname in the_mapping.values:
        if CONTRACT[kind][cname][0] == "TIMESTAMP":
            raise InputError(
                f"mapping {the_mapping.source}: values.{cname}: time values are not mapped by name; "
                "give their layout as [timestamps] format instead"
            )
    if adapter is None:
        files = expand_paths(paths)
    else:
        files = expand_paths(paths, accepts=adapter.accepts,
                             what=f"{adapter.name} log file (endings: {', '.join(adapter.endings)})")
    if progress is True:
        try:
            store.con.execute("SET enable_progress_bar = true")
        except duckdb.InvalidInputException:
            pass  # Jupyter without ipywidgets: the per-file lines still show progress
    store._note = _note if progress else None
    try:
        return _ingest_files(store, kind, files, the_mapping, force, progress)
    finally:
        store._note = None
        if progress is True:
            with contextlib.suppress(duckdb.InvalidInputException):
                store.con.execute("SET enable_progress_bar = false")


def _with_format(mapping: Mapping, layout: str | None) -> Mapping:
    """The mapping with ``format`` set from the ``format=`` argument (``--format``), which must agree with it."""
    if layout is None:
        return mapping
    if not isinstance(layout, str) or not layout:
        raise InputError(f"format must name a log layout such as 'sagemaker', got {layout!r}")
    if mapping.format is not None and mapping.format != layout:
        raise InputError(
            f"mapping {mapping.source} says format = {mapping.format!r} but the format given is {layout!r}; "
            "drop one of them (or make them agree)"
        )
    return replace(mapping, format=layout)


def _note(text: str) -> None:
    """A progress line on stderr; file names come from the user's disk, so it is escaped (errors.safe_text)."""
    print(safe_text(text), file=sys.stderr, flush=True)


def _ingest_files(
    store: Store, kind: str, files: list[Path], the_mapping: Mapping, force: bool, progress: object
) -> IngestReport:
    results: list[IngestResult] = []
    i = 0
    while i < len(files):
        batch = _typed_batch(store, kind, files, i, the_mapping, force)
        if batch is not None:
            if progress:
                for j, entry in enumerate(batch.entries, i + 1):
                    _note(f"[{j}/{len(files)}] {kind}: {_printable(entry.path)}")
            names = f"{_printable(batch.entries[0].path)} and {len(batch.entries) - 1} more file(s)"
            try:
                results.extend(_ingest_batch(store, batch, the_mapping))
            except Exception as exc:
                _raise_if_fatal(exc, names, results, several=True, store_path=store.path)
                if not isinstance(exc, (InputError, OSError, StoreError, duckdb.Error)):
                    raise
                # rolled back, the store is unchanged: the files are loaded one by one instead, each
                # in its own transaction, and whichever cannot be loaded is reported on its own
                for entry in batch.entries:
                    _ingest_guarded(store, kind, entry.path, the_mapping, force, results)
            if progress:
                _note(f"[{i + len(batch.entries)}/{len(files)}] {kind}: batch of {len(batch.entries)} file(s) done")
            i += len(batch.entries)
            continue
        if progress:
            _note(f"[{i + 1}/{len(files)}] {kind}: {_printable(files[i])}")
        _ingest_guarded(store, kind, files[i], the_mapping, force, results)
        if progress and results and results[-1].status == "ingested":
            _note(f"[{i + 1}/{len(files)}] {kind}: {_printable(files[i])}: committed")
        i += 1
    return IngestReport(kind=kind, results=tuple(results))


def _ingest_guarded(
    store: Store, kind: str, path: Path, mapping: Mapping, force: bool, results: list[IngestResult]
) -> None:
    """Ingest one file in its own transaction and append its result; a failure becomes a ``failed`` result.

    Interrupts and errors that leave the connection unusable are raised instead.
    """
    try:
        results.append(_ingest_file(store, kind, path, mapping, force))
    except InputError as exc:
        results.append(IngestResult(path=_printable(path), kind=kind, status="failed", message=str(exc)))
    except OSError as exc:  # vanished, unreadable, a FIFO ...
        results.append(IngestResult(
            path=_printable(path), kind=kind, status="failed",
            message=f"{_printable(path)}: cannot read the file: {exc.strerror or exc}; nothing was ingested from it",
        ))
    except Exception as exc:
        _raise_if_fatal(exc, _printable(path), results, several=False, store_path=store.path)
        if not isinstance(exc, duckdb.Error):
            raise
        # rolled back by _ingest_file: the store is unchanged for this file
        results.append(IngestResult(
            path=_printable(path), kind=kind, status="failed",
            message=f"{_printable(path)}: not ingested, the store is unchanged for this file; DuckDB said: "
            f"{_first_line(exc)} (if the file looks valid, please report this)",
        ))


def _raise_if_fatal(
    exc: Exception, names: str, results: list[IngestResult], *, several: bool, store_path: str
) -> None:
    """Raise what ends the whole ingest: an interrupt, a corrupt store, or an error that closed the connection.

    ``names`` are the file(s) being loaded when ``exc`` happened (their transaction was rolled
    back); other exceptions return, for the caller to handle.
    """
    if isinstance(exc, duckdb.InterruptException) or (
        isinstance(exc, RuntimeError) and "interrupted" in str(exc).lower()  # Ctrl-C during a query
    ):
        raise KeyboardInterrupt(f"interrupted while ingesting {names}") from None
    known = from_duckdb(exc, store_path) if isinstance(exc, duckdb.Error) else None
    if known is not None:  # a corrupt store, a full disk or too little memory: not the input file's fault
        done = sum(r.status == "ingested" for r in results)
        if done:  # those are committed: say so, as the per-file results are not printed
            raise type(known)(f"{known}. This happened while loading {names}; the {done} file(s) before "
                              "it in this run are stored") from None
        raise known from None
    if isinstance(exc, (duckdb.FatalException, duckdb.InternalException)):  # the connection is now unusable
        done = sum(r.status == "ingested" for r in results)
        what, their, them = ("these files", "their", "them") if several else ("this file", "its", "it")
        raise StoreError(
            f"{names}: DuckDB hit an internal error and closed the store ({_first_line(exc)}); nothing "
            f"from {what} was stored ({their} transaction never committed); {done} file(s) before {them} "
            f"in this run were stored. Reopen the store to continue, and please report this with the "
            f"{'files' if several else 'file'}"
        ) from None


def _check_timezone(con: duckdb.DuckDBPyConnection, mapping: Mapping) -> None:
    known = one_row(con, "SELECT count(*) FROM pg_timezone_names() WHERE name = ?", [mapping.timezone])[0]
    if not known:
        raise InputError(
            f"mapping {mapping.source}: unknown time zone {mapping.timezone!r}; use an IANA name "
            "such as UTC, Europe/Berlin or America/New_York"
        )


def _check_mapping_values(con: duckdb.DuckDBPyConnection, kind: str, mapping: Mapping) -> None:
    """Check the time format and the default values of a mapping before any file is read."""
    fmt = mapping.time_format
    if fmt is not None and fmt not in EPOCH_UNITS:
        try:
            con.execute("SELECT try_strptime('', ?)", [fmt]).fetchone()
        except duckdb.Error as exc:
            raise InputError(
                f"mapping {mapping.source}: timestamps.format {fmt!r} is not a valid strptime format "
                f"({_first_line(exc)}); e.g. \"%d/%m/%Y %H:%M:%S\", or one of {', '.join(EPOCH_UNITS)}"
            ) from None
    for cname, value in mapping.defaults.items():
        if cname not in CONTRACT[kind]:
            continue  # reported by the caller
        ctype = CONTRACT[kind][cname][0]
        if not isinstance(value, (str, int, float, bool, dt.date)):  # a table or list: its repr would be stored
            raise InputError(
                f"mapping {mapping.source}: the default {cname} = {value!r} is a {type(value).__name__}; "
                f"give one {ctype.lower()} value (text, number or boolean)"
            )
        ok = value is not None and not (isinstance(value, str) and not value.strip())
        if ok:
            try:
                ok = one_row(con, f"SELECT TRY_CAST(? AS {ctype}) IS NOT NULL", [value])[0]
            except (duckdb.Error, TypeError, ValueError, OverflowError):
                ok = False
        if not ok:
            raise InputError(
                f"mapping {mapping.source}: the default {cname} = {value!r} cannot be read as "
                f"{ctype.lower()}; give a non-empty {ctype.lower()} value"
            )
