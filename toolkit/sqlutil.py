"""Identifier quoting and checking: the only way names reach SQL text.

Values always travel as bound parameters; names (columns, tables) cannot be
bound, so they are checked against the catalogue and then quoted.
"""

from __future__ import annotations

from typing import Any

import duckdb

from .errors import InputError


def quote_ident(name: str) -> str:
    """Quote ``name`` as a DuckDB identifier (doubling embedded quotes)."""
    if not isinstance(name, str) or not name or "\x00" in name:
        raise InputError(f"invalid column name {name!r}")
    return '"' + name.replace('"', '""') + '"'


def one_row(con: duckdb.DuckDBPyConnection, sql: str, params: object = None) -> tuple[Any, ...]:
    """The row of a query that always returns exactly one (an aggregate without GROUP BY)."""
    row = con.execute(sql, params).fetchone()
    if row is None:  # pragma: no cover - an aggregate always has a row
        raise RuntimeError(f"expected one row from: {sql}")
    return row


def table_columns(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """Column name -> DuckDB type of a table or view, in order."""
    rows = con.execute(
        "SELECT column_name, data_type FROM information_schema.columns "
        "WHERE table_name = ? ORDER BY ordinal_position",
        [table],
    ).fetchall()
    return {name: typ for name, typ in rows}


def checked_column(con: duckdb.DuckDBPyConnection, table: str, name: str, *, what: str = "column") -> str:
    """Return ``name`` quoted after checking that ``table`` has it."""
    cols = table_columns(con, table)
    if name not in cols:
        known = ", ".join(sorted(cols))
        raise InputError(f"unknown {what} {name!r}; the {table} table has: {known}")
    return quote_ident(name)


def placeholders(sql: str) -> int:
    """The ``?`` placeholders of ``sql`` outside quoted strings and identifiers (``'it?'``, ``"clicked?"``)."""
    count = 0
    quote: str | None = None
    for ch in sql:
        if quote is not None:
            if ch == quote:  # a doubled quote closes and reopens: same state afterwards
                quote = None
        elif ch in ("'", '"'):
            quote = ch
        elif ch == "?":
            count += 1
    return count
