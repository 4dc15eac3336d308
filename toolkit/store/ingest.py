"""Validated, atomic, idempotent ingestion of logs, history and registry.

Every file is loaded in one transaction. Validation is set-based SQL: the
file is read once into a typed staging table whose ``_reason`` column says
why a row cannot be accepted (NULL when it can); accepted rows go to the
target table, the others to ``quarantine`` with the source row kept whole as
JSON. ``accepted + quarantined = rows read`` holds for every file and is
checked before the transaction commits.

Consecutive Parquet prediction files of one call with the same columns are a
batch: one statement over ``read_parquet([...])`` validates and inserts the
valid rows of all of them (DuckDB reads the files in parallel), in one
transaction that holds all files of the batch or none. Each file keeps its
own ingest id, ingest_log row and result; a file with a rejected row or a
key that repeats is taken out again and loaded row by row in the same
transaction, so the outcome is the one of loading the files one by one. If
the batch fails, it is rolled back and its files are loaded one by one, each
in its own transaction.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import glob as _glob
import hashlib
import os
import re
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Literal

import duckdb
import polars as pl

from .. import __version__
from ..errors import InputError, StoreError, from_duckdb, is_corruption, safe_text
from ..sqlutil import quote_ident
from ..timeutil import PLAUSIBLE_END, PLAUSIBLE_START, PLAUSIBLE_TEXT
from . import textscan
from .mapping import EPOCH_UNITS, Mapping, load_mapping
from .schema import CONTRACT, DEPLOYMENT_EVENTS

if TYPE_CHECKING:  # pragma: no cover
    from .store import Store

Format = Literal["csv", "parquet", "json"]
Status = Literal["ingested", "skipped", "failed"]

#: file name endings -> format
_EXTENSIONS: dict[str, Format] = {
    ".csv": "csv", ".tsv": "csv", ".csv.gz": "csv", ".tsv.gz": "csv", ".csv.zst": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".jsonl": "json", ".ndjson": "json", ".json": "json", ".jsonl.gz": "json", ".json.gz": "json",
}
#: columns the toolkit adds itself; a file's extra column with one of these names is not stored
_RESERVED = {"ingest_id", "resolved_version", "version_status", "expected_feature_version", "_row", "_reason"}
_NUMERIC = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
            "UINTEGER", "UBIGINT", "UHUGEINT", "FLOAT", "DOUBLE", "REAL")
_TIME_COLUMNS = ("ts", "expected_end", "created_at")
#: at most this many covariate columns in a store (each is a column of predictions and of every
#: analysis's cells); a wider file must list the ones to keep in its mapping
MAX_COVARIATES = 500
#: above this many text columns to type, one UNPIVOT scan replaces one aggregate per column
#: (DuckDB plans n aggregates in time that grows faster than n: 2,000 took 5 s, 10,000 minutes)
_WIDE = 64


@dataclass(frozen=True)
class IngestResult:
    """What happened to one file.

    ``rows_read == accepted + quarantined`` for every ingested file (checked
    on construction); ``reasons`` counts quarantined rows by reason and adds
    up to ``quarantined``.
    """

    path: str
    kind: str
    status: Status
    message: str
    sha256: str | None = None
    format: str | None = None
    rows_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    reasons: tuple[tuple[str, int], ...] = ()
    ingest_id: int | None = None
    seconds: float = 0.0
    new_covariates: tuple[str, ...] = ()
    ignored_columns: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.rows_read != self.accepted + self.quarantined:
            raise AssertionError(
                f"{self.path}: rows read {self.rows_read} != accepted {self.accepted} + "
                f"quarantined {self.quarantined}"
            )
        if sum(n for _, n in self.reasons) != self.quarantined:
            raise AssertionError(f"{self.path}: quarantine reasons do not add up")

    def summary(self) -> str:
        head = f"{self.status:<8} {self.path}"
        if self.status != "ingested":
            return f"{head}: {self.message}"
        lines = [
            f"{head}: {self.rows_read:,} rows read = {self.accepted:,} accepted + "
            f"{self.quarantined:,} quarantined ({self.seconds:.2f} s)"
        ]
        lines += [f"           quarantined {n:,}: {reason}" for reason, n in self.reasons]
        if self.new_covariates:
            lines.append("           new covariate columns: " + ", ".join(self.new_covariates))
        if self.ignored_columns:
            shown = ", ".join(self.ignored_columns[:20])
            more = len(self.ignored_columns) - 20
            lines.append("           columns not stored: " + shown + (f" and {more:,} more" if more > 0 else ""))
        if self.message:
            lines.append(f"           note: {self.message}")
        return "\n".join(lines)


@dataclass(frozen=True)
class IngestReport:
    """The results of one ingest call, one per file, in order."""

    kind: str
    results: tuple[IngestResult, ...] = field(default_factory=tuple)

    @property
    def ok(self) -> bool:
        """True when no file failed."""
        return all(r.status != "failed" for r in self.results)

    @property
    def failed(self) -> tuple[IngestResult, ...]:
        return tuple(r for r in self.results if r.status == "failed")

    @property
    def rows_read(self) -> int:
        return sum(r.rows_read for r in self.results)

    @property
    def accepted(self) -> int:
        return sum(r.accepted for r in self.results)

    @property
    def quarantined(self) -> int:
        return sum(r.quarantined for r in self.results)

    def reasons(self) -> dict[str, int]:
        total: Counter[str] = Counter()
        for r in self.results:
            total.update(dict(r.reasons))
        return dict(total.most_common())

    def to_frame(self) -> pl.DataFrame:
        return pl.DataFrame(
            {
                "path": [r.path for r in self.results],
                "status": [r.status for r in self.results],
                "rows_read": [r.rows_read for r in self.results],
                "accepted": [r.accepted for r in self.results],
                "quarantined": [r.quarantined for r in self.results],
                "ingest_id": [r.ingest_id for r in self.results],
                "message": [r.message for r in self.results],
            },
            schema={"path": pl.Utf8, "status": pl.Utf8, "rows_read": pl.Int64, "accepted": pl.Int64,
                    "quarantined": pl.Int64, "ingest_id": pl.Int64, "message": pl.Utf8},
        )

    def summary(self) -> str:
        lines = [r.summary() for r in self.results]
        counts = Counter(r.status for r in self.results)
        lines.append(
            f"{self.kind}: {len(self.results)} file(s): {counts['ingested']} ingested, "
            f"{counts['skipped']} skipped, {counts['failed']} failed; "
            f"{self.rows_read:,} rows read = {self.accepted:,} accepted + {self.quarantined:,} quarantined"
        )
        if len(self.results) > 1:
            for reason, n in self.reasons().items():
                lines.append(f"  quarantined {n:,}: {reason}")
        if self.quarantined:
            lines.append("  (inspect them with: vdrift quarantine --db FILE, or Store.quarantine())")
        return "\n".join(lines)


# --------------------------------------------------------------------------- files
def expand_paths(paths: "str | os.PathLike | Iterable[str | os.PathLike]") -> list[Path]:
    """Expand files, globs and directories (recursively) into a sorted file list."""
    if isinstance(paths, (str, os.PathLike)):
        paths = [paths]
    out: list[Path] = []
    for raw in paths:
        text = os.fspath(raw)
        if any(ch in text for ch in "*?[") and not os.path.exists(text):  # an existing name is literal
            matches = sorted(Path(m) for m in _glob.glob(text, recursive=True))
            if not matches:
                raise InputError(f"no file matches {text!r}")
            out.extend(m for m in matches if m.is_file())
        elif os.path.isdir(text):
            found = sorted(p for p in Path(text).rglob("*") if p.is_file() and _format_of(p, strict=False))
            if not found:
                raise InputError(
                    f"directory {text!r} holds no CSV, Parquet or JSON lines file "
                    f"(known endings: {', '.join(sorted(_EXTENSIONS))})"
                )
            out.extend(found)
        elif os.path.isfile(text):
            out.append(Path(text))
        else:
            raise InputError(f"file {text!r} not found")
    seen: set[Path] = set()
    unique = []
    for p in out:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            unique.append(p)
    return unique


def _format_of(path: Path, *, strict: bool = True) -> Format | None:
    name = path.name.lower()
    for ending in sorted(_EXTENSIONS, key=len, reverse=True):
        if name.endswith(ending):
            return _EXTENSIONS[ending]
    if strict:
        raise InputError(
            f"{path}: unknown file type; use one of {', '.join(sorted(_EXTENSIONS))} "
            "(CSV, Parquet or JSON lines)"
        )
    return None


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


#: Appended to every scan of a source: it references the whole row, so each scan reads and
#: validates every column. DuckDB's CSV reader only checks the columns a query projects, so a
#: scan of some columns would skip (and reject) a different set of malformed lines than the scan
#: of all columns that fills quarantine.raw, shifting row numbers; and DuckDB 1.5 can hit an
#: internal error ("Attempted to access index ... within vector") on such partial scans.
WHOLE_ROW = "WHERE src IS NOT NULL"

#: characters DuckDB treats as glob syntax even in a bound file-name parameter
_DUCKDB_GLOB = frozenset("*?[]{}")


@contextlib.contextmanager
def _duckdb_path(path: Path):
    """Yield a name under which DuckDB reads exactly ``path`` and nothing else.

    DuckDB expands glob characters in file names given to ``read_csv`` and
    friends, even as bound parameters, so a file called ``a*.csv`` would also
    read ``a1.csv``. Such a file is read through a symbolic link with a plain
    name (keeping the compression ending) in a private temporary directory.
    """
    text = os.path.abspath(path)
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise InputError(
            f"{_printable(path)}: the file name is not valid UTF-8; "
            "rename the file (the store records file names as text)"
        ) from None
    if not any(ch in _DUCKDB_GLOB for ch in text):
        yield text
        return
    name = path.name.lower()
    ending = next(e for e in sorted(_EXTENSIONS, key=len, reverse=True) if name.endswith(e))
    with tempfile.TemporaryDirectory(prefix="vdrift-read-") as tmp:
        if any(ch in _DUCKDB_GLOB for ch in tmp):
            raise InputError(f"{path}: cannot read a file with glob characters while TMPDIR {tmp!r} has some too")
        link = os.path.join(tmp, "input" + ending)
        os.symlink(text, link)
        yield link


def _source_sql(fmt: Format, path: Path, rejects: str = "_vd_rejects", delimiter: str = ",") -> str:
    """Table-function SQL reading the file; the path is bound as the one parameter.

    CSV lines that cannot be parsed are skipped by the scan and recorded in the
    temporary table ``rejects`` (they go to quarantine, never lost). Quoting is
    fixed to RFC 4180 (``"`` quotes, ``""`` inside quotes) rather than sniffed:
    the sniffer took a stray ``'`` in the data for the quote character and
    merged lines. The delimiter is given too (:func:`textscan.detect_delimiter`,
    the same rule the independent row count uses): a sniffer that guesses it
    from a damaged sample read the whole header as one column.
    """
    if fmt == "csv":
        if delimiter not in textscan.DELIMITERS:
            raise InputError(f"{path}: unsupported delimiter {delimiter!r}")
        return (
            "read_csv(?, all_varchar = true, header = true, quote = '\"', escape = '\"', store_rejects = true, "
            f"rejects_table = '{rejects}', rejects_scan = '{rejects}_scans', delim = '{delimiter}', "
            f"max_line_size = {textscan.MAX_LINE_BYTES}, sample_size = 20480)"
        )
    if fmt == "parquet":
        return "read_parquet(?, hive_partitioning = false, file_row_number = true)"
    # text stays text: DuckDB's JSON type detection would turn "infinity" into 1900-01-01 and guess
    # date formats on its own; times are parsed by the same rules as CSV (_time_expr), which reject it
    return ("read_json(?, format = 'auto', sample_size = -1, maximum_object_size = 67108864, "
            "timestampformat = 'vdrift: no timestamp detection', dateformat = 'vdrift: no date detection')")


# --------------------------------------------------------------------------- entry point
def ingest(
    store: "Store",
    kind: str,
    paths: "str | os.PathLike | Iterable[str | os.PathLike]",
    *,
    mapping: "str | os.PathLike | dict | Mapping | None" = None,
    force: bool = False,
    progress: bool | Literal["lines"] = False,
) -> IngestReport:
    """Validate and load every file of ``kind`` found in ``paths``.

    Parameters
    ----------
    store
        The open store.
    kind
        ``predictions``, ``deployments`` or ``artifacts``.
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

    Returns
    -------
    IngestReport
        Per-file results. A file that cannot be read is ``failed`` with a
        message and leaves the store untouched; the other files still load.
    """
    if kind not in CONTRACT:
        raise InputError(f"unknown kind {kind!r}; choose predictions, deployments or artifacts")
    the_mapping = load_mapping(mapping)
    try:
        _check_timezone(store.con, the_mapping)
        _check_mapping_values(store.con, kind, the_mapping)
    except duckdb.Error as exc:
        raise StoreError(f"cannot query the store {store.path!r}: {_first_line(exc)}") from None
    for cname in list(the_mapping.columns) + list(the_mapping.defaults):
        if cname not in CONTRACT[kind]:
            raise InputError(
                f"mapping {the_mapping.source}: {cname!r} is not a {kind} contract column; "
                f"contract columns: {', '.join(CONTRACT[kind])}"
            )
    files = expand_paths(paths)
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


def _note(text: str) -> None:
    """A progress line on stderr; file names come from the user's disk, so it is escaped (errors.safe_text)."""
    print(safe_text(text), file=sys.stderr, flush=True)


def _ingest_files(
    store: "Store", kind: str, files: list[Path], the_mapping: Mapping, force: bool, progress: object
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
    store: "Store", kind: str, path: Path, mapping: Mapping, force: bool, results: list[IngestResult]
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


def _printable(path: Path) -> str:
    """The file name as text that can always be printed and stored."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _check_timezone(con: duckdb.DuckDBPyConnection, mapping: Mapping) -> None:
    known = con.execute("SELECT count(*) FROM pg_timezone_names() WHERE name = ?", [mapping.timezone]).fetchone()[0]
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
                ok = con.execute(f"SELECT TRY_CAST(? AS {ctype}) IS NOT NULL", [value]).fetchone()[0]
            except (duckdb.Error, TypeError, ValueError, OverflowError):
                ok = False
        if not ok:
            raise InputError(
                f"mapping {mapping.source}: the default {cname} = {value!r} cannot be read as "
                f"{ctype.lower()}; give a non-empty {ctype.lower()} value"
            )


# --------------------------------------------------------------------------- one file
def _ingest_file(store: "Store", kind: str, path: Path, mapping: Mapping, force: bool) -> IngestResult:
    _format_of(path)  # an unknown file type is reported before anything else
    with _duckdb_path(path) as read_path:
        return _ingest_one(store, kind, path, read_path, mapping, force)


@dataclass(frozen=True)
class _Prepared:
    """What is known about a file before its transaction: checksum, earlier ingests, column plan."""

    started: dt.datetime
    t0: float
    fmt: Format
    before: os.stat_result
    sha: str
    previous: tuple[tuple[int, str], ...]
    source: str
    src_params: tuple
    src_types: dict
    plan: "_Plan"
    true_rows: int | None = None  # the file's rows as counted independently of DuckDB (textscan)
    delimiter: str = ","


def _prepare(
    store: "Store", kind: str, path: Path, read_path: str, mapping: Mapping, force: bool,
    plan: "_Plan | None" = None,
) -> "_Prepared | IngestResult":
    """Checksum, skip check, DESCRIBE and column plan of one file; a skipped result when already ingested.

    With ``plan`` (that of an earlier file of a batch, which has the same
    columns and types) the file's own plan is not made: it would infer the
    types of new covariates again, a scan of the file.
    """
    con = store.con
    started = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    t0 = time.perf_counter()
    fmt = _format_of(path)
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
    source = _source_sql(fmt, path, delimiter=delimiter)
    src_params = [read_path]
    try:
        _drop_rejects(con)
        described = con.execute(f"DESCRIBE SELECT * FROM {source}", src_params).fetchall()
        if fmt == "parquet":
            true_rows = int(con.execute("SELECT sum(num_rows) FROM parquet_file_metadata(?)", src_params).fetchone()[0])
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


def _own_names(fmt: str, path: Path, delimiter: str) -> list[str]:
    """The column names as the file writes them (DuckDB renames a repeated name to ``name_1``)."""
    if fmt == "csv":
        import csv
        import io

        head = b""
        for chunk in textscan.read_chunks(path):
            head += chunk
            if b"\n" in head.lstrip(b"\r\n") or len(head) > textscan.MAX_LINE_BYTES:
                break
        text = head.decode("utf-8", "replace").lstrip("\ufeff\r\n")
        return next(csv.reader(io.StringIO(text), delimiter=delimiter, quotechar='"'), [])
    if fmt == "parquet":
        import pyarrow.parquet as pq

        return list(pq.read_schema(path).names)
    import json

    names: dict[str, None] = {}
    seen = 0
    for raw in _json_head_lines(path):  # the keys of the first records (DuckDB unites them all)
        try:
            pairs = json.loads(raw, object_pairs_hook=lambda kv: kv)
        except ValueError:
            break
        if not isinstance(pairs, list):
            break
        keys = [k for k, _ in pairs if isinstance(k, str)]
        if len(set(keys)) < len(keys):
            return keys  # a key repeated within one object
        names.update(dict.fromkeys(keys))
        seen += 1
        if seen >= 1000:
            break
    return list(names)


def _json_head_lines(path: Path):
    carry = b""
    for chunk in textscan.read_chunks(path):
        lines = (carry + chunk).split(b"\n")
        carry = lines.pop()
        for line in lines:
            if line.strip():
                yield line
        if len(carry) > textscan.MAX_LINE_BYTES:
            return
    if carry.strip():
        yield carry


def _check_header(fmt: str, path: Path, names: list[str]) -> None:
    """Refuse column names that cannot be stored (a NUL byte) and a CSV header that is not UTF-8.

    DuckDB skips a header line it cannot read as UTF-8 and takes the next
    line for the header, or names the columns ``column0``, ``column1`` ...;
    the missing-column message would then list names the file never had.
    """
    for i, name in enumerate(names, 1):
        if "\x00" in name:
            raise InputError(
                f"{path}: column {i} is named {name!r}, which holds a NUL byte; nothing was ingested from the "
                "file. Give every column a name without NUL bytes"
            )
    if fmt != "csv":
        return
    head = b""
    for chunk in textscan.read_chunks(path):
        head += chunk
        if b"\n" in head.lstrip(b"\r\n") or len(head) > textscan.MAX_LINE_BYTES:
            break
    header = head.lstrip(b"\r\n").split(b"\n", 1)[0]
    try:
        header.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(
            f"{path}: the header line is not valid UTF-8 (byte {exc.start + 1:,} of the line, "
            f"{header[exc.start:exc.start + 4]!r}...), so its column names cannot be read; nothing was ingested "
            "from the file. vdrift reads UTF-8 text: convert the file (e.g. iconv -f LATIN1 -t UTF-8) or fix "
            "the header"
        ) from None


def _check_source_names(fmt: str, path: Path, delimiter: str, described: list[str]) -> None:
    """Refuse column names that repeat, also when they differ only in case (``Score`` and ``score``).

    DuckDB compares names case-insensitively and renames a repeat to
    ``name_1``; the store would keep a column the file never named, or pick
    one of the two silently.
    """
    try:
        own = _own_names(fmt, path, delimiter) if fmt != "json" or len(described) > 1 else []
    except (OSError, ValueError):
        return  # the reader's own error is reported by the load
    by_lower: dict[str, list[str]] = {}
    for name in own:
        by_lower.setdefault(name.lower(), []).append(name)
    repeats = [names for names in by_lower.values() if len(names) > 1]
    if repeats:
        shown = "; ".join(" and ".join(repr(n) for n in names) for names in repeats[:5])
        raise InputError(
            f"{path}: column names repeat ({shown}); vdrift compares column names case-insensitively, as "
            f"DuckDB does, so one would be renamed (to {repeats[0][-1].lower()}_1) or chosen silently. Nothing "
            "was ingested from the file: give every column its own name"
        )


def _gzip_padding_reason(path: Path) -> str:
    """Why DuckDB refuses a gzip archive that Python's gzip module read whole: zero bytes after its end, or ''.

    Python's gzip module (which checked the archive, :func:`textscan.read_chunks`) and the ``gzip``
    program skip zero bytes after the last member, as tape and block-device copies pad files;
    DuckDB's reader expects another member there and says "Input is not a GZIP stream".
    """
    with open(path, "rb") as fh:
        fh.seek(0, os.SEEK_END)
        if fh.tell() == 0:
            return ""
        fh.seek(-1, os.SEEK_END)
        if fh.read(1) != b"\x00":
            return ""
    return ("the gzip archive is followed by zero bytes (padding, as some tape and block-device copies write); "
            "its data checks out, but DuckDB's gzip reader refuses anything after the last member. Strip the "
            "padding and ingest the copy, e.g. gzip -dc FILE | gzip > FIXED.gz")


_BREAK_OR_QUOTE = re.compile(rb'["\r\n]')
_BREAK_NAMES = {b"\n": "LF", b"\r\n": "CR LF", b"\r": "CR"}


def _mixed_line_breaks(path: Path) -> str:
    """Where a CSV file's line breaks change kind (LF, CR LF, CR) outside quoted fields, or ''.

    DuckDB's CSV reader detects one kind of line break and refuses a file
    whose lines end in another one later ("Error when sniffing file", or
    "The CSV Parser state machine reached an invalid state" past its
    sample). Only read when the reader failed, to say so with the line.
    """
    delim = textscan.detect_delimiter(path).encode()
    first: str | None = None
    line = 1
    in_quote = False
    last = b"\n"  # the byte before the current buffer (a file starts at a line start)
    carry = b""
    for chunk in textscan.read_chunks(path):
        buf, carry = carry + chunk, b""
        if buf.endswith((b"\r", b'"')):  # a CR LF or a doubled quote may continue in the next chunk
            buf, carry = buf[:-1], buf[-1:]
        i = 0
        for m in _BREAK_OR_QUOTE.finditer(buf):
            j = m.start()
            if j < i:  # the second byte of a pair handled below
                continue
            c = buf[j:j + 1]
            if c == b'"':
                if in_quote:
                    if buf[j + 1:j + 2] == b'"':  # "" inside a quoted field
                        i = j + 2
                        continue
                    in_quote = False
                elif (buf[j - 1:j] if j else last) in (delim, b"\n", b"\r"):
                    in_quote = True
                i = j + 1
                continue
            i = j + 1
            if in_quote:
                continue
            if c == b"\r" and buf[j + 1:j + 2] == b"\n":
                c, i = b"\r\n", j + 2
            kind = _BREAK_NAMES[c]
            if first is None:
                first = kind
            elif kind != first:
                return (f"line {line:,} ends in {kind} but line 1 ends in {first}: the CSV reader needs one kind of "
                        "line break throughout the file (CR or LF inside a quoted field is fine). Convert the line "
                        "breaks to one kind, e.g. with dos2unix (CR LF to LF)")
            line += 1
        if buf:
            last = buf[-1:]
    return ""


_TEXT_LINE = re.compile(r"[^\r\n]*(?:\r\n|\r|\n)|[^\r\n]+$")
#: DuckDB's sniffer reads this many rows; a quoting error among them fails the whole file
_SNIFFED_ROWS = 20_480


def _quoting_trouble(path: Path) -> str:
    """The first line among those DuckDB's sniffer reads whose quoting breaks RFC 4180, or ''.

    Text after the closing quote of a quoted field (``"o"k``) in the sniffer's
    sample makes DuckDB refuse the whole file ("Error when sniffing file");
    Python's csv module, in strict mode, finds the line. Only read when the
    reader failed, to say so with the line.
    """
    import csv

    delimiter = textscan.detect_delimiter(path)

    def lines():
        carry = ""
        for chunk in textscan.read_chunks(path):
            text = carry + chunk.decode("latin-1")  # every byte kept where it is: quotes and breaks are ASCII
            carry = ""
            for m in _TEXT_LINE.finditer(text):
                line = m.group()
                if line.endswith("\n") or (line.endswith("\r") and m.end() < len(text)):
                    yield line
                else:  # the rest of the chunk: its line continues in the next one
                    carry = line
        if carry:
            yield carry

    reader = csv.reader(lines(), delimiter=delimiter, quotechar='"', doublequote=True, strict=True)
    limit = csv.field_size_limit()
    csv.field_size_limit(textscan.MAX_LINE_BYTES + 1)
    try:
        for records, _ in enumerate(reader):
            if records > _SNIFFED_ROWS + 1:
                return ""
    except csv.Error as exc:
        if "expected after" in str(exc):
            return (f"line {reader.line_num:,} has text after the closing quote of a quoted field: a field that "
                    'starts with " must end with " right before the delimiter or the line break (RFC 4180); '
                    'double a " that belongs to the value ("")')
        return ""
    finally:
        csv.field_size_limit(limit)
    return ""


def _parser_reason(exc: Exception, fmt: str, path: Path) -> str:
    """DuckDB's reason for not reading a file, with what the independent scan knows (long lines)."""
    reason = _first_line(exc)
    if fmt == "parquet" and not is_corruption(reason):
        return (f"{reason}; the file is damaged or not Parquet (its metadata or a page cannot be decoded), and "
                "nothing was ingested from it. Copy the file again from its source")
    if path.name.lower().endswith(".gz") and "not a gzip stream" in reason.lower():
        padding = _gzip_padding_reason(path)
        if padding:
            return padding
    if fmt != "csv":
        return reason
    trouble = textscan.describe_trouble(path)
    if trouble:
        return f"{trouble} (DuckDB said: {reason})"
    mixed = _mixed_line_breaks(path)
    if mixed:
        return f"{mixed} (DuckDB said: {reason})"
    if "sniffing" in str(exc):
        quoting = _quoting_trouble(path)
        if quoting:
            return f"{quoting} (DuckDB said: {reason})"
    if "sniffing" in str(exc):
        reason += ("; it needs a header line and one record per line, with fields holding the delimiter, "
                   'quotes or line breaks (CR or LF) enclosed in double quotes (RFC 4180)')
    return reason + " (read as UTF-8)"


def _ingest_one(
    store: "Store", kind: str, path: Path, read_path: str, mapping: Mapping, force: bool
) -> IngestResult:
    """One file in one transaction."""
    con = store.con
    prep = _prepare(store, kind, path, read_path, mapping, force)
    if isinstance(prep, IngestResult):
        return prep
    with _transaction(con):
        _drop_rejects(con)
        ingest_id = con.execute("SELECT nextval('ingest_id_seq')").fetchone()[0]
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


def _stage_sql(plan: "_Plan", fmt: Format, source: str) -> str:
    """The statement filling ``_vd_stage``: every row typed, with ``_reason`` (NULL when valid)."""
    row_expr = "file_row_number + 1" if fmt == "parquet" else "row_number() OVER ()"
    whole_row = "" if fmt == "parquet" else WHOLE_ROW
    select_sql = ",\n  ".join(f"{expr} AS {quote_ident(name)}" for name, expr in plan.exprs)
    raw_sql = "".join(f",\n  {e} AS {quote_ident(n)}" for n, e in plan.raw_refs)
    return (
        f"CREATE OR REPLACE TEMP TABLE _vd_stage AS\n"
        f"SELECT _row, {', '.join(quote_ident(n) for n, _ in plan.exprs)}, {_reason_sql(plan)} AS _reason\n"
        f"FROM (SELECT {row_expr} AS _row,\n  {select_sql}{raw_sql}\n  FROM {source} AS src {whole_row}) AS typed"
    )


def _reason_sql(plan: "_Plan") -> str:
    return "NULLIF(concat_ws('; ', " + ", ".join(plan.checks) + "), '')" if plan.checks else "NULL"


def _load(
    store: "Store", kind: str, path: Path, read_path: str, mapping: Mapping, prep: _Prepared,
    ingest_id: int, *, direct: bool,
) -> IngestResult:
    """Load one prepared file under ``ingest_id`` inside the caller's transaction (which commits it).

    With ``direct`` a Parquet predictions file is first tried on the one-pass
    path (:func:`_direct_insert`); otherwise, or when that finds a rejected or
    repeated row, the file is staged and checked row by row.
    """
    con = store.con
    fmt, plan, source, src_params = prep.fmt, prep.plan, prep.source, list(prep.src_params)
    previous = prep.previous
    stage_sql = _stage_sql(plan, fmt, source)
    if previous:  # --force: replace what the earlier ingest of this content loaded
        old_ids = [r[0] for r in previous]
        for table in ("predictions", "deployments", "artifacts", "quarantine"):
            con.execute(
                f"DELETE FROM {quote_ident(table)} WHERE ingest_id IN (SELECT unnest(?))", [old_ids]
            )
        con.execute(
            "UPDATE ingest_log SET superseded_by = ? WHERE ingest_id IN (SELECT unnest(?))",
            [ingest_id, old_ids],
        )
    for name, typ in plan.new_covariates:
        con.execute(f"ALTER TABLE predictions ADD COLUMN {quote_ident(name)} {typ}")
        con.execute("INSERT INTO covariates VALUES (?, ?, ?)", [name, typ, ingest_id])
    target_cols = [n for n, _ in plan.exprs]
    cols_sql = ", ".join(quote_ident(n) for n in target_cols)
    if direct and fmt == "parquet" and kind == "predictions" and _direct_insert(
        con, ingest_id, stage_sql, cols_sql, plan.check_params + plan.expr_params + src_params, source, src_params
    ):
        # every row valid and unique: loaded in one pass, nothing to quarantine
        con.execute("CREATE OR REPLACE TEMP TABLE _vd_stage AS SELECT NULL::VARCHAR AS _reason WHERE false")
        staged_direct = con.execute("SELECT count(*) FROM predictions WHERE ingest_id = ?", [ingest_id]).fetchone()[0]
    else:
        staged_direct = None
        try:
            con.execute(stage_sql, plan.check_params + plan.expr_params + src_params)
        except duckdb.Error as exc:
            if is_corruption(str(exc)):
                raise
            raise InputError(f"{path}: cannot read it as {fmt}: {_parser_reason(exc, fmt, path)}") from None
        _mark_duplicates(con, kind)
        con.execute(
            f"INSERT INTO {quote_ident(kind)} ({cols_sql}, ingest_id) "
            f"SELECT {cols_sql}, ? FROM _vd_stage WHERE _reason IS NULL",
            [ingest_id],
        )
    malformed = 0
    if fmt == "csv":
        # one reject row per error; a line with several errors is one quarantined row
        malformed = con.execute("SELECT count(DISTINCT line) FROM _vd_rejects").fetchone()[0]
        if malformed:
            con.execute(
                """INSERT INTO quarantine
                SELECT ?, ?, ?, NULL,
                       'malformed CSV line: ' || lower(replace(CAST(first(error_type ORDER BY column_idx) AS VARCHAR), '_', ' ')),
                       to_json({'line': line, 'errors': string_agg(error_message, ' | ' ORDER BY column_idx),
                                'text': first(csv_line)})
                FROM _vd_rejects GROUP BY line ORDER BY line""",
                [ingest_id, kind, str(path)],
            )
    rejected = con.execute("SELECT count(*) FROM _vd_stage WHERE _reason IS NOT NULL").fetchone()[0]
    if rejected:
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
    staged = staged_direct if staged_direct is not None else con.execute("SELECT count(*) FROM _vd_stage").fetchone()[0]
    rows_read = staged + malformed
    accepted = staged - rejected
    _check_true_rows(path, fmt, rows_read, prep.true_rows)
    note = getattr(store, "_note", None)
    if note:
        note(f"  {_printable(path)}: {rows_read:,} rows read, writing")
    reasons = tuple(
        (r, int(n))
        for r, n in con.execute(
            "SELECT reason, count(*) FROM quarantine WHERE ingest_id = ? GROUP BY reason ORDER BY 2 DESC, 1",
            [ingest_id],
        ).fetchall()
    )
    stored = con.execute(
        f"SELECT count(*) FROM {quote_ident(kind)} WHERE ingest_id = ?", [ingest_id]
    ).fetchone()[0]
    if stored != accepted or sum(n for _, n in reasons) != rejected + malformed:
        raise StoreError(f"{path}: internal count mismatch; nothing was ingested (please report this)")
    _check_unchanged(path, prep.before)
    finished = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    con.execute(
        "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
        [ingest_id, kind, str(path), prep.sha, fmt, mapping.describe(), rows_read, accepted,
         rejected + malformed, prep.started, finished, __version__],
    )
    if plan.new_covariates:  # in the same transaction: the view lists the new column or nothing changed
        store.refresh_views()
    note = "header only: no data rows" if rows_read == 0 else ""
    if previous:
        note = (note + "; " if note else "") + f"re-ingested (--force), replacing ingest {', '.join(str(r[0]) for r in previous)}"
    return IngestResult(
        path=str(path), kind=kind, status="ingested", message=note, sha256=prep.sha, format=fmt,
        rows_read=rows_read, accepted=accepted, quarantined=rejected + malformed, reasons=reasons,
        ingest_id=ingest_id, seconds=time.perf_counter() - prep.t0,
        new_covariates=tuple(n for n, _ in plan.new_covariates), ignored_columns=plan.ignored,
    )


# --------------------------------------------------------------------------- typed batches
@dataclass(frozen=True)
class _Entry:
    """One file of a batch: prepared for loading, or already ingested (``skipped``)."""

    path: Path
    read_path: str
    prep: "_Prepared | None" = None
    skipped: IngestResult | None = None


@dataclass(frozen=True)
class _Batch:
    entries: tuple[_Entry, ...]
    plan: "_Plan | None"  # None when every file was ingested before
    file_column: str


def _typed_batch(
    store: "Store", kind: str, files: list[Path], start: int, mapping: Mapping, force: bool
) -> _Batch | None:
    """The longest run of Parquet prediction files from ``start`` that can be loaded in one statement.

    The run stops before a file that is not Parquet, cannot be described,
    has other columns or types than the first, has a name DuckDB would read
    as a glob, repeats the content of an earlier file of the run, or is to be
    re-ingested with ``force`` (all of these take the one-file path, which
    reports what is wrong). Files ingested before are kept in the run as
    skipped. None when the run is empty.
    """
    if kind != "predictions":
        return None
    con = store.con
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


def _ingest_batch(store: "Store", batch: _Batch, mapping: Mapping) -> list[IngestResult]:
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
    plan = batch.plan
    if plan is None or not loadable:
        return [e.skipped for e in batch.entries]
    t0 = time.perf_counter()
    with _transaction(con):
        ids = sorted(int(r[0]) for r in con.execute(
            "SELECT nextval('ingest_id_seq') FROM range(?) ORDER BY range", [len(loadable)]
        ).fetchall())
        id_of = {e.read_path: i for e, i in zip(loadable, ids)}
        for name, typ in plan.new_covariates:
            con.execute(f"ALTER TABLE predictions ADD COLUMN {quote_ident(name)} {typ}")
            con.execute("INSERT INTO covariates VALUES (?, ?, ?)", [name, typ, ids[0]])
        paths = [e.read_path for e in loadable]
        fcol = quote_ident(batch.file_column)
        source = (f"read_parquet(?, hive_partitioning = false, "
                  f"filename = '{batch.file_column}')")
        cols_sql = ", ".join(quote_ident(n) for n, _ in plan.exprs)
        select_sql = ",\n  ".join(f"{expr} AS {quote_ident(name)}" for name, expr in plan.exprs)
        raw_sql = "".join(f",\n  {e} AS {quote_ident(n)}" for n, e in plan.raw_refs)
        id_list = "[" + ", ".join(str(i) for i in ids) + "]"
        total = con.execute(
            f"INSERT INTO predictions ({cols_sql}, ingest_id)\n"
            f"SELECT {cols_sql}, list_extract({id_list}, {fcol}) FROM (\n"
            f"SELECT {fcol}, {cols_sql}, {_reason_sql(plan)} AS _reason\n"
            f"FROM (SELECT {select_sql}{raw_sql},\n  list_position(?, src.{fcol}) AS {fcol}\n"
            f"  FROM {source} AS src) AS typed) WHERE _reason IS NULL",
            plan.check_params + plan.expr_params + [paths, paths],
        ).fetchone()[0]
        rows = {id_of.get(f): n for f, n in con.execute(
            f"SELECT {fcol}, count(*) FROM {source} GROUP BY 1", [paths]
        ).fetchall()}
        note = getattr(store, "_note", None)
        if note:
            note(f"  batch of {len(loadable)} file(s): {total:,} rows inserted, checking")
        inserted = dict(con.execute(
            "SELECT ingest_id, count(*) FROM predictions WHERE ingest_id BETWEEN ? AND ? GROUP BY 1",
            [min(ids), max(ids)],
        ).fetchall())
        if None in rows or sum(inserted.values()) != total:  # a row not attributed to its file
            raise StoreError("the rows of a batch could not be told apart by file")
        redo = {i for i in ids if inserted.get(i, 0) != rows.get(i, 0)} | _batch_repeats(con, ids)
        if redo:
            con.execute("DELETE FROM predictions WHERE ingest_id IN (SELECT unnest(?))", [sorted(redo)])
        results = []
        loaded_plan = replace(plan, new_covariates=[])
        for entry in batch.entries:
            if entry.prep is None:
                results.append(entry.skipped)
                continue
            ingest_id = id_of[entry.read_path]
            if ingest_id in redo:
                prep = replace(entry.prep, plan=loaded_plan)
                result = _load(store, "predictions", entry.path, entry.read_path, mapping, prep,
                               ingest_id, direct=False)
            else:
                _check_unchanged(entry.path, entry.prep.before)
                n = rows.get(ingest_id, 0)
                _check_true_rows(entry.path, "parquet", n, entry.prep.true_rows)
                con.execute(
                    "INSERT INTO ingest_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)",
                    [ingest_id, "predictions", str(entry.path), entry.prep.sha, "parquet", mapping.describe(),
                     n, n, 0, loadable[0].prep.started, dt.datetime.now(dt.timezone.utc).replace(tzinfo=None),
                     __version__],
                )
                result = IngestResult(
                    path=str(entry.path), kind="predictions", status="ingested",
                    message="header only: no data rows" if n == 0 else "", sha256=entry.prep.sha,
                    format="parquet", rows_read=n, accepted=n, ingest_id=ingest_id,
                    ignored_columns=plan.ignored,
                )
            if ingest_id == ids[0]:
                result = replace(result, new_covariates=tuple(n for n, _ in plan.new_covariates))
            results.append(result)
        if plan.new_covariates:
            store.refresh_views()
    seconds = time.perf_counter() - t0
    if len(loadable) > 1:
        note = f"loaded in one transaction with {len(loadable) - 1} other file(s) of this call"
        results = [r if r.status != "ingested" else
                   replace(r, seconds=seconds, message="; ".join(m for m in (r.message, note) if m))
                   for r in results]
    return results


def _batch_repeats(con: duckdb.DuckDBPyConnection, ids: list[int]) -> set[int]:
    """Ingest ids of the batch whose rows share a key with another row of the batch or a stored row nearby.

    Conservative: any file with such a row is loaded again row by row, which
    decides exactly (first kept, duplicates of stored rows quarantined).
    """
    exprs, _ = _DUPLICATE_KEYS["predictions"]
    keys = ", ".join(f"{e} AS _k{i}" for i, e in enumerate(exprs))
    knames = ", ".join(f"_k{i}" for i in range(len(exprs)))
    match = " AND ".join(f"n._k{i} IS NOT DISTINCT FROM o._k{i}" for i in range(len(exprs)))
    new = f"SELECT ingest_id, ts, {keys} FROM predictions WHERE ingest_id BETWEEN $1 AND $2"
    bounds = [min(ids), max(ids)]
    out: set[int] = set()
    # first a cheap test on one 64-bit hash of the key (equal keys, equal hashes; a collision only
    # costs the exact search below), grouping integers instead of text
    key_hash = f"hash({', '.join(exprs)})"
    if con.execute(
        f"SELECT EXISTS (SELECT 1 FROM predictions WHERE ingest_id BETWEEN $1 AND $2 "
        f"GROUP BY {key_hash} HAVING count(*) > 1)", bounds
    ).fetchone()[0]:
        out |= {r[0] for r in con.execute(
            f"SELECT DISTINCT n.ingest_id FROM ({new}) AS n "
            f"JOIN (SELECT {knames} FROM ({new}) GROUP BY {knames} HAVING count(*) > 1) AS o ON {match}",
            bounds,
        ).fetchall()}
    lo, hi = con.execute(
        "SELECT min(ts), max(ts) FROM predictions WHERE ingest_id BETWEEN $1 AND $2", bounds
    ).fetchone()
    if lo is None:
        return out
    span = bounds + _search_span(lo, hi)
    stored = "FROM predictions WHERE ts BETWEEN $3 AND $4 AND ingest_id NOT BETWEEN $1 AND $2"
    if con.execute(f"SELECT count(*) FROM (SELECT 1 {stored} LIMIT 1)", span).fetchone()[0]:
        out |= {r[0] for r in con.execute(
            f"SELECT DISTINCT n.ingest_id FROM ({new}) AS n JOIN (SELECT DISTINCT {keys} {stored}) AS o ON {match}",
            span,
        ).fetchall()}
    return out


def _direct_insert(
    con: duckdb.DuckDBPyConnection, ingest_id: int, stage_sql: str, cols_sql: str, params: list,
    source: str, src_params: list,
) -> bool:
    """Fast path for Parquet predictions: insert straight from the file in one pass.

    Valid rows are inserted without a staging table; the load is kept only if
    every row of the file was valid and no key repeats (within the file or
    against stored rows near its time span): then there is nothing to
    quarantine and the result equals the staged path's. Otherwise the rows
    are deleted again (same transaction) and the caller takes the staged path,
    which says row by row what is wrong. Returns True when the fast path held.
    """
    select_sql = stage_sql.split("AS\n", 1)[1]  # the staging SELECT (typed columns + _reason)
    inserted = con.execute(
        f"INSERT INTO predictions ({cols_sql}, ingest_id) "
        f"SELECT {cols_sql}, {int(ingest_id)} FROM ({select_sql}) WHERE _reason IS NULL",
        params,
    ).fetchone()[0]
    rows_read = con.execute(f"SELECT count(*) FROM {source}", src_params).fetchone()[0]
    ok = inserted == rows_read and not _new_rows_repeat_a_key(con, ingest_id)
    if not ok:
        con.execute("DELETE FROM predictions WHERE ingest_id = ?", [ingest_id])
    return ok


def _new_rows_repeat_a_key(con: duckdb.DuckDBPyConnection, ingest_id: int) -> bool:
    """Whether rows of this ingest repeat a key among themselves or with stored rows nearby."""
    exprs, _ = _DUPLICATE_KEYS["predictions"]
    keys = ", ".join(f"{e} AS _k{i}" for i, e in enumerate(exprs))
    repeats = con.execute(
        f"SELECT EXISTS (SELECT 1 FROM (SELECT {keys} FROM predictions WHERE ingest_id = $1) "
        f"GROUP BY {', '.join(f'_k{i}' for i in range(len(exprs)))} HAVING count(*) > 1)",
        [ingest_id],
    ).fetchone()[0]
    if repeats:
        return True
    lo, hi = con.execute("SELECT min(ts), max(ts) FROM predictions WHERE ingest_id = ?", [ingest_id]).fetchone()
    if lo is None:
        return False
    span = [ingest_id, *_search_span(lo, hi)]
    if not con.execute(
        "SELECT count(*) FROM (SELECT 1 FROM predictions WHERE ts BETWEEN $2 AND $3 AND ingest_id <> $1 LIMIT 1)", span
    ).fetchone()[0]:
        return False
    match = " AND ".join(f"n._k{i} IS NOT DISTINCT FROM o._k{i}" for i in range(len(exprs)))
    return bool(con.execute(
        f"SELECT EXISTS (SELECT 1 FROM (SELECT DISTINCT {keys} FROM predictions WHERE ingest_id = $1) AS n "
        f"JOIN (SELECT DISTINCT {keys} FROM predictions WHERE ts BETWEEN $2 AND $3 AND ingest_id <> $1) AS o "
        f"ON {match})",
        span,
    ).fetchone()[0])


def _check_true_rows(path: Path, fmt: str, rows_read: int, true_rows: int | None) -> None:
    """Refuse a file whose rows, as DuckDB read them, are not the rows counted independently (textscan)."""
    if true_rows is None or rows_read == true_rows:
        return
    what = {"csv": "records (non-empty lines outside quoted fields)", "json": "non-blank lines",
            "parquet": "rows in its Parquet metadata"}[fmt]
    raise InputError(
        f"{path}: the {fmt.upper()} reader read {rows_read:,} rows, but the file has {true_rows:,} {what}; "
        "nothing was ingested from it, so no row is lost without a trace. The file is damaged or not "
        + ("one JSON object per line" if fmt == "json" else "in the expected format")
        + " (please report it if it looks valid)"
    )


def _check_unchanged(path: Path, before: os.stat_result) -> None:
    """Refuse a file that was written to while it was read: its checksum would not match what was loaded."""
    after = path.stat()
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise InputError(
            f"{path}: the file changed while it was being read ({before.st_size:,} -> {after.st_size:,} bytes); "
            "nothing was ingested from it. Ingest log files once they are complete (e.g. after rotation) "
            "and run the command again"
        )


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _drop_rejects(con: duckdb.DuckDBPyConnection) -> None:
    for name in ("_vd_rejects", "_vd_rejects_scans", "_vd_rejects_again", "_vd_rejects_again_scans"):
        con.execute(f"DROP TABLE IF EXISTS {name}")


# --------------------------------------------------------------------------- column plan
@dataclass
class _Plan:
    exprs: list[tuple[str, str]] = field(default_factory=list)  # target name -> typed SQL over src
    expr_params: list = field(default_factory=list)
    raw_refs: list[tuple[str, str]] = field(default_factory=list)  # raw source values needed by checks
    checks: list[str] = field(default_factory=list)  # SQL over typed, yielding a reason or NULL
    check_params: list = field(default_factory=list)
    new_covariates: list[tuple[str, str]] = field(default_factory=list)
    ignored: tuple[str, ...] = ()


def _plan_columns(
    con: duckdb.DuckDBPyConnection, kind: str, path: Path, src_types: dict[str, str], mapping: Mapping,
    source: str, src_params: list,
) -> _Plan:
    contract = CONTRACT[kind]
    plan = _Plan()
    lower_src = {n.lower(): n for n in src_types}

    # mapped source columns that do not exist
    for cname, sname in mapping.columns.items():
        if sname not in src_types and sname.lower() not in lower_src:
            raise InputError(
                f"{path}: the mapping says {cname} comes from column {sname!r}, but the file has "
                f"no such column; its columns are: {', '.join(src_types)}"
            )

    # aliases of raw source values must not collide with any source column name
    raw_prefix = "_raw_"
    while any(n.lower().startswith(raw_prefix) for n in src_types):
        raw_prefix = "_" + raw_prefix
    used_sources: set[str] = set()
    for cname, (ctype, required) in contract.items():
        sname = mapping.source_for(cname)
        actual = sname if sname in src_types else lower_src.get(sname.lower())
        raw_alias = f"{raw_prefix}{cname}"
        if actual is None:
            if cname in mapping.defaults:
                plan.exprs.append((cname, f"CAST(? AS {ctype})"))
                plan.expr_params.append(mapping.defaults[cname])
                continue
            if kind == "predictions" and cname == "component":
                plan.exprs.append((cname, "'online'"))
                continue
            if required:
                raise InputError(_missing_column_message(path, kind, cname, list(src_types)))
            # optional and absent: NULL, staged explicitly because duplicate keys use it (deployments' version)
            plan.exprs.append((cname, f"CAST(NULL AS {ctype})"))
            continue
        used_sources.add(actual)
        ref = f"src.{quote_ident(actual)}"
        styp = src_types[actual].upper()
        if styp == "JSON":  # a JSON lines key holding mixed types: its value, not JSON text ("v1", not '"v1"')
            ref, styp = f"({ref} ->> '$')", "VARCHAR"
        elif _is_nested(styp):  # a list or struct read as text (and quarantined if a number was required)
            ref, styp = f"CAST({ref} AS VARCHAR)", "VARCHAR"
        if ctype == "TIMESTAMP":
            expr, params = _time_expr(ref, styp, mapping)
        elif ctype == "VARCHAR":
            expr, params = f"NULLIF(trim(CAST({ref} AS VARCHAR)), '')", []
        else:
            expr, params = f"TRY_CAST({ref} AS {ctype})", []
        if kind == "predictions" and cname == "component":
            expr = f"coalesce({expr}, 'online')"
        plan.exprs.append((cname, expr))
        plan.expr_params.extend(params)
        plan.raw_refs.append((raw_alias, ref))
        q = quote_ident(cname)
        raw = quote_ident(raw_alias)
        # a typed source value (Parquet, JSON numbers) is never blank text: skip the text checks
        present = f"{raw} IS NOT NULL AND trim(CAST({raw} AS VARCHAR)) <> ''" if styp == "VARCHAR" else f"{raw} IS NOT NULL"
        if ctype == "VARCHAR" and not (kind == "predictions" and cname == "component"):
            # the typed value is NULLIF(trim(text), ''): NULL exactly when the source value is missing
            # or blank, so the check need not trim every value a second time
            present = f"{q} IS NOT NULL"
        if required:
            plan.checks.append(f"CASE WHEN NOT ({present}) THEN 'missing required value: {cname}' END")
        if ctype != "VARCHAR" and styp != ctype:
            plan.checks.append(
                f"CASE WHEN {present} AND {q} IS NULL THEN 'cannot read {cname} as {ctype.lower()}' END"
            )
        if ctype == "TIMESTAMP":  # DuckDB reads 'infinity' / '-infinity' as timestamps: not a point in time
            plan.checks.append(f"CASE WHEN NOT isfinite({q}) THEN '{cname} is infinite, not a point in time' END")
            # the one plausible-time rule (toolkit.timeutil): what analyses can compute with
            plan.checks.append(f"CASE WHEN isfinite({q}) AND NOT ({q} >= ? AND {q} < ?) THEN ? END")
            plan.check_params.extend([PLAUSIBLE_START, PLAUSIBLE_END,
                                      f"{cname} outside the plausible range {PLAUSIBLE_TEXT}"])

    # kind-specific rules
    if kind == "deployments":
        plan.checks.append("CASE WHEN event IS NOT NULL AND NOT list_contains(?, event) THEN 'unknown event' END")
        plan.check_params.append(list(DEPLOYMENT_EVENTS))
        if any(n == "traffic_pct" for n, _ in plan.exprs):
            plan.checks.append("CASE WHEN traffic_pct < 0 OR traffic_pct > 100 THEN 'traffic_pct outside 0..100' END")
    if kind == "predictions" and any(n == "score" for n, _ in plan.exprs):
        plan.checks.append("CASE WHEN isnan(score) OR isinf(score) THEN 'score is not a finite number' END")

    # extra columns: covariates for predictions, not stored for the other kinds
    extras = [n for n in src_types if n not in used_sources]
    ignored: list[str] = []
    if kind != "predictions":
        ignored = extras
    else:
        existing = {r[0].lower(): (r[0], r[1]) for r in con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'predictions'"
        ).fetchall()}
        wanted = extras
        if mapping.covariates is not None:
            missing = [c for c in mapping.covariates if c not in src_types]
            if missing:
                raise InputError(
                    f"{path}: the mapping declares covariate(s) {missing} that the file does not have; "
                    f"its columns are: {', '.join(src_types)}"
                )
            wanted = [c for c in extras if c in mapping.covariates]
            ignored = [c for c in extras if c not in mapping.covariates]
        keep = []
        for name in wanted:
            if name.lower() in _RESERVED or name.lower() in {c.lower() for c in contract}:
                ignored.append(f"{name} (name reserved by vdrift)")
            else:
                keep.append(name)
        fresh = [n for n in keep if n.lower() not in existing]
        stored = con.execute("SELECT count(*) FROM covariates").fetchone()[0]
        if stored + len(fresh) > MAX_COVARIATES:
            declared = "the mapping declares" if mapping.covariates is not None else "the file brings"
            raise InputError(
                f"{path}: {declared} {len(fresh):,} new covariate column(s) and the store has {stored:,}; vdrift "
                f"keeps at most {MAX_COVARIATES:,} covariates per store. Nothing was ingested from the file: list "
                'the columns to keep in a mapping file, e.g. covariates = ["amount", "channel"] (the others are '
                "then not stored)"
            )
        try:  # a scan of the whole file: the reader may meet what DESCRIBE (its sample) did not
            inferred = _infer_types(con, source, src_params, {n: src_types[n] for n in fresh})
        except duckdb.Error as exc:
            if is_corruption(str(exc)) or from_duckdb(exc) is not None:
                raise
            fmt = "csv" if source.startswith("read_csv") else "json" if source.startswith("read_json") else "parquet"
            raise InputError(f"{path}: cannot read it as {fmt}: {_parser_reason(exc, fmt, path)}") from None
        for name in keep:
            ref = f"src.{quote_ident(name)}"
            if src_types[name].upper() == "JSON":
                ref = f"({ref} ->> '$')"
            elif _is_nested(src_types[name].upper()):
                ref = f"CAST({ref} AS VARCHAR)"
            if name.lower() in existing:
                store_name, typ = existing[name.lower()]
            else:
                store_name, typ = name, inferred[name]
                plan.new_covariates.append((name, typ))
            plan.exprs.append((store_name, f"TRY_CAST({ref} AS {typ})" if typ != "VARCHAR" else f"CAST({ref} AS VARCHAR)"))
            src_typ = src_types[name].upper()
            lossless = typ == "DOUBLE" and (src_typ.startswith(_NUMERIC) or src_typ.startswith("DECIMAL"))
            if typ != "VARCHAR" and not lossless:
                raw_alias = f"{raw_prefix}cov_{len(plan.raw_refs)}"
                plan.raw_refs.append((raw_alias, ref))
                raw = quote_ident(raw_alias)
                present = (f"{raw} IS NOT NULL AND trim(CAST({raw} AS VARCHAR)) <> ''"
                           if src_typ in ("VARCHAR", "JSON") or _is_nested(src_typ) else f"{raw} IS NOT NULL")
                plan.checks.append(f"CASE WHEN {present} AND {quote_ident(store_name)} IS NULL THEN ? END")
                plan.check_params.append(f"cannot read covariate {store_name} as {typ.lower()}")
    plan.ignored = tuple(ignored)
    # check params must follow the order of plan.checks; they are appended in order above
    return plan


def _infer_types(
    con: duckdb.DuckDBPyConnection, source: str, src_params: list, src_types: dict[str, str]
) -> dict[str, str]:
    """Store type of new covariate columns: DOUBLE, BOOLEAN or VARCHAR.

    Typed sources (Parquet, JSON) keep their numeric/boolean types. Text
    columns (all CSV columns) are DOUBLE when every non-empty value reads as
    a number, which takes one aggregate scan of the file.
    """
    out: dict[str, str] = {}
    text_cols = []
    for name, typ in src_types.items():
        styp = typ.upper()
        if _is_nested(styp):  # BIGINT[] is a list, not a number
            out[name] = "VARCHAR"
        elif styp.startswith(_NUMERIC) or styp.startswith("DECIMAL"):
            out[name] = "DOUBLE"
        elif styp == "BOOLEAN":
            out[name] = "BOOLEAN"
        elif styp == "VARCHAR":
            text_cols.append(name)
        else:
            out[name] = "VARCHAR"
    if len(text_cols) > _WIDE:  # one scan, linear in rows x columns
        cols = ", ".join(quote_ident(n) for n in text_cols)
        numeric = dict(con.execute(
            f"""SELECT name, count(v) > 0 AND count(v) = count(TRY_CAST(v AS DOUBLE))
                FROM (SELECT name, NULLIF(trim(value), '') AS v
                      FROM (UNPIVOT (SELECT {cols} FROM {source} AS src {WHOLE_ROW})
                            ON {cols} INTO NAME name VALUE value))
                GROUP BY name""", src_params).fetchall())
        for name in text_cols:  # a column of NULLs only has no row in the UNPIVOT: text
            out[name] = "DOUBLE" if numeric.get(name) else "VARCHAR"
    elif text_cols:
        aggs = []
        for name in text_cols:
            v = f"NULLIF(trim(src.{quote_ident(name)}), '')"
            aggs.append(f"count({v}) > 0 AND count({v}) = count(TRY_CAST({v} AS DOUBLE))")
        row = con.execute(f"SELECT {', '.join(aggs)} FROM {source} AS src {WHOLE_ROW}", src_params).fetchone()
        for name, numeric in zip(text_cols, row):
            out[name] = "DOUBLE" if numeric else "VARCHAR"
    return out


def _missing_column_message(path: Path, kind: str, cname: str, columns: list[str]) -> str:
    import difflib

    guess = difflib.get_close_matches(cname, columns, n=1, cutoff=0.4)
    suggestion = guess[0] if guess else "<your column>"
    return (
        f"{path}: required {kind} column {cname!r} is missing (the file has: {', '.join(columns)}). "
        f"If it is under another name, add to your mapping file:\n    [columns]\n    {cname} = \"{suggestion}\""
    )


def _time_expr(ref: str, styp: str, mapping: Mapping) -> tuple[str, list]:
    """SQL turning a source time value into naive UTC, and its parameters."""
    tz = mapping.timezone
    fmt = mapping.time_format
    if styp.startswith("TIMESTAMP WITH TIME ZONE") or styp == "TIMESTAMPTZ":
        return f"CAST({ref} AS TIMESTAMP)", []
    if styp.startswith("TIMESTAMP") or styp == "DATE":
        if tz == "UTC":  # already UTC wall-clock time: no per-row time-zone arithmetic
            return f"CAST({ref} AS TIMESTAMP)", []
        return f"CAST(timezone(?, CAST({ref} AS TIMESTAMP)) AS TIMESTAMP)", [tz]
    if fmt in EPOCH_UNITS or styp.startswith(_NUMERIC) or styp.startswith("DECIMAL"):
        divisor = EPOCH_UNITS.get(fmt or "", None)
        num = f"TRY_CAST({ref} AS DOUBLE)"
        if divisor is None:  # by magnitude: seconds, milliseconds, microseconds or nanoseconds
            divisor_sql = f"CASE WHEN abs({num}) < 1e11 THEN 1 WHEN abs({num}) < 1e14 THEN 1e3 WHEN abs({num}) < 1e17 THEN 1e6 ELSE 1e9 END"
        else:
            divisor_sql = repr(float(divisor))
        return _epoch_sql(f"{num} / ({divisor_sql})"), []
    text = f"trim(CAST({ref} AS VARCHAR))"
    if fmt and ("%z" in fmt or "%Z" in fmt):  # the text carries its own offset: already absolute
        return f"CAST(try_strptime({text}, ?) AS TIMESTAMP)", [fmt]
    if fmt:
        return f"CAST(timezone(?, try_strptime({text}, ?)) AS TIMESTAMP)", [tz, fmt]
    return (
        f"CASE WHEN regexp_matches({text}, '^[0-9]{{9,}}([.][0-9]+)?$') "
        f"THEN " + _epoch_sql(f"TRY_CAST({text} AS DOUBLE) / CASE WHEN TRY_CAST({text} AS DOUBLE) < 1e11 THEN 1 "
                             f"WHEN TRY_CAST({text} AS DOUBLE) < 1e14 THEN 1e3 WHEN TRY_CAST({text} AS DOUBLE) < 1e17 THEN 1e6 ELSE 1e9 END") + " "
        f"WHEN regexp_matches({text}, '(Z|z|[+-][0-9]{{2}}(:?[0-9]{{2}})?)$') "
        # an offset beyond +-14:00 or with minutes past 59 (DuckDB reads -99:00 as 99 hours): NULL, quarantined
        f"THEN CASE WHEN right({text}, 1) NOT IN ('Z', 'z') AND regexp_matches({text}, {_BAD_OFFSET}) THEN NULL "
        f"ELSE CAST(TRY_CAST({text} AS TIMESTAMPTZ) AS TIMESTAMP) END "
        f"ELSE CAST(timezone(?, TRY_CAST({text} AS TIMESTAMP)) AS TIMESTAMP) END",
        [tz],
    )


#: a time of day followed by a UTC offset whose hours exceed 14 or whose minutes exceed 59
_BAD_OFFSET = ("'[0-9]:[0-9]{2}(:[0-9]{2}([.][0-9]+)?)? *[+-]"
               "((1[5-9]|[2-9][0-9])(:?[0-9]{2})?|[0-9]{2}:?[6-9][0-9])$'")


def _is_nested(styp: str) -> bool:
    """True for list, array, struct, map and union types (``BIGINT[]``, ``STRUCT(a INTEGER)``)."""
    return "[" in styp or styp.startswith(("STRUCT", "MAP", "UNION"))


def _epoch_sql(seconds: str) -> str:
    """Epoch seconds -> TIMESTAMP, NULL (so quarantined) outside DuckDB's range instead of an error."""
    return f"CASE WHEN abs({seconds}) < 9.2e12 THEN CAST(to_timestamp({seconds}) AS TIMESTAMP) END"


#: per kind: the columns (SQL over the staged row) that identify a duplicate, and its label
_DUPLICATE_KEYS: dict[str, tuple[tuple[str, ...], str]] = {
    # shadow scoring repeats a request_id once per shadow version
    "predictions": (("request_id", "component", "CASE WHEN component = 'shadow' THEN model_version END"), "request_id"),
    "artifacts": (("artifact_hash",), "artifact_hash"),
    "deployments": (("ts", "component", "scope", "event", "version"), "deployment event"),
}
#: duplicates of a prediction are looked for among stored rows this close to the file's time span
DUPLICATE_SEARCH_MARGIN = dt.timedelta(days=1)


def _search_span(lo: dt.datetime, hi: dt.datetime) -> list[dt.datetime]:
    """``[lo - margin, hi + margin]``, clamped to the representable range (``ts`` may be infinite)."""
    try:
        start = lo - DUPLICATE_SEARCH_MARGIN
    except OverflowError:
        start = dt.datetime.min
    try:
        end = hi + DUPLICATE_SEARCH_MARGIN
    except OverflowError:
        end = dt.datetime.max
    return [start, end]


def _mark_duplicates(con: duckdb.DuckDBPyConnection, kind: str) -> None:
    """Set ``_reason`` on duplicate rows: within the file (first kept), then against the store.

    Both are set-based: an aggregate finds the keys that repeat, and a join
    marks every row but the first. For predictions the store is searched only
    among rows whose ``ts`` lies within :data:`DUPLICATE_SEARCH_MARGIN` of the
    file's time span (a re-delivered log carries the same timestamps), so
    ingesting a new day never rescans earlier days.
    """
    exprs, label = _DUPLICATE_KEYS[kind]
    keys = ", ".join(f"{e} AS _k{i}" for i, e in enumerate(exprs))
    match = " AND ".join(f"({e}) IS NOT DISTINCT FROM d._k{i}" for i, e in enumerate(exprs))
    con.execute(
        f"""UPDATE _vd_stage SET _reason = ?
            FROM (SELECT {keys}, min(_row) AS _keep FROM _vd_stage WHERE _reason IS NULL
                  GROUP BY ALL HAVING count(*) > 1) AS d
            WHERE _vd_stage._reason IS NULL AND {match} AND _vd_stage._row <> d._keep""",
        [f"duplicate {label} within the file (first kept)"],
    )
    target = quote_ident(kind)
    stored = ", ".join(f"{e} AS _k{i}" for i, e in enumerate(exprs))
    span_sql, params = "", []
    if kind == "predictions":
        lo, hi = con.execute("SELECT min(ts), max(ts) FROM _vd_stage WHERE _reason IS NULL").fetchone()
        if lo is None:
            return
        # numbered parameters: DuckDB numbers '?' in UPDATE ... FROM subqueries before the SET clause
        span_sql, params = " WHERE ts BETWEEN $2 AND $3", _search_span(lo, hi)
        probe = f"SELECT count(*) FROM (SELECT 1 FROM {target} WHERE ts BETWEEN $1 AND $2 LIMIT 1)"
        if not con.execute(probe, params).fetchone()[0]:
            return  # nothing stored in that span (the usual case for a new day)
    con.execute(
        f"""UPDATE _vd_stage SET _reason = $1
            FROM (SELECT DISTINCT {stored} FROM {target}{span_sql}) AS d
            WHERE _vd_stage._reason IS NULL AND {match}""",
        [f"duplicate {label} already in the store"] + params,
    )
