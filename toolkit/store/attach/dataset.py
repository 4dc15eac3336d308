"""The attached dataset's files: discovery (file, directory, glob), hive partition keys, column types."""

from __future__ import annotations

import glob as _glob
import os
import re
from pathlib import Path
from typing import Literal, get_args

import duckdb

from ...errors import InputError
from ..ingest.files import _DUCKDB_GLOB, _first_line
from .literals import sql_literal

Partitioning = Literal["none", "hive"]
PARTITIONINGS: tuple[str, ...] = get_args(Partitioning)
#: the column DuckDB's reader adds with each row's file name (a name no log column is likely to have)
FILE_COLUMN = "_vd_file"
_HIVE_DIR = re.compile(r"^([^=/]+)=([^/]*)$")


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


def hive_keys(files: list[str]) -> list[str]:
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


def reader_sql(files_sql: str, hive: bool) -> str:
    """The ``read_parquet`` call of the files ``files_sql`` (with file names and 0-based row numbers)."""
    return (f"read_parquet({files_sql}, hive_partitioning = {'true' if hive else 'false'}, "
            f"file_row_number = true, filename = {sql_literal(FILE_COLUMN)})")


def describe_columns(con: duckdb.DuckDBPyConnection, files: list[str], hive: bool) -> dict[str, str]:
    """Column name -> type, the same in every file (checked file by file: footers only)."""
    first: dict[str, str] | None = None
    for f in files:
        try:
            described = con.execute(f"DESCRIBE SELECT * FROM {reader_sql('?', hive)}", [f]).fetchall()
        except duckdb.Error as exc:
            raise InputError(f"{f}: cannot read it as parquet: {_first_line(exc)}") from None
        types = {n: t for n, t, *_ in described if n not in ("file_row_number", FILE_COLUMN)}
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
