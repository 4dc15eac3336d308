"""Input files: expanding paths, recognising formats, checksums, and the table-function SQL that reads a file."""

from __future__ import annotations

import contextlib
import glob as _glob
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Literal, TypeGuard, get_args, overload

import duckdb

from ...errors import InputError
from .. import textscan
from .results import Format

#: file name endings -> format
_EXTENSIONS: dict[str, Format] = {
    ".csv": "csv", ".tsv": "csv", ".csv.gz": "csv", ".tsv.gz": "csv", ".csv.zst": "csv",
    ".parquet": "parquet", ".pq": "parquet",
    ".jsonl": "json", ".ndjson": "json", ".json": "json", ".jsonl.gz": "json", ".json.gz": "json",
}


def expand_paths(
    paths: str | os.PathLike | Iterable[str | os.PathLike], *, accepts: Callable[[Path], bool] | None = None,
    what: str = "",
) -> list[Path]:
    """Expand files, globs and directories (recursively) into a sorted file list.

    ``accepts`` picks the files of a directory (default: the known endings of
    CSV, Parquet and JSON lines); ``what`` names them in the message when a
    directory holds none (for a platform adapter's layout, toolkit.sources).
    """
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
            if accepts is not None:
                found = sorted(p for p in Path(text).rglob("*") if p.is_file() and accepts(p))
                if not found:
                    raise InputError(f"directory {text!r} holds no {what}")
            else:
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


@overload
def _format_of(path: Path, *, strict: Literal[True] = ...) -> Format: ...
@overload
def _format_of(path: Path, *, strict: bool) -> Format | None: ...
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


def _is_file_format(fmt: str) -> TypeGuard[Format]:
    """Whether ``fmt`` is a flat file's format (not a platform adapter's name, toolkit.sources)."""
    return fmt in get_args(Format)


def file_sha256(path: Path) -> str:
    """The SHA-256 of the file's bytes, as hex: the content identity that makes ingest idempotent."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


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
    # a platform's log (toolkit.sources) may have another ending (.log): it keeps its own
    ending = next((e for e in sorted(_EXTENSIONS, key=len, reverse=True) if name.endswith(e)), path.suffix.lower())
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


def _printable(path: Path) -> str:
    """The file name as text that can always be printed and stored."""
    return os.fsencode(path).decode("utf-8", "backslashreplace")


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _drop_rejects(con: duckdb.DuckDBPyConnection) -> None:
    for name in ("_vd_rejects", "_vd_rejects_scans", "_vd_rejects_again", "_vd_rejects_again_scans"):
        con.execute(f"DROP TABLE IF EXISTS {name}")
