"""Replicate-group keys both engines compute identically.

DuckDB's ``hash()`` and Spark's ``hash()`` are different functions, so a bootstrap replicate group
``hash(request_id) % groups`` would put a request in different groups on the two engines. ``md5`` is
the same function everywhere; its first 8 hex digits read as an unsigned 32-bit integer give a key
that DuckDB and Spark SQL agree on bit for bit.
"""
from __future__ import annotations

from typing import Literal

Dialect = Literal["duckdb", "spark"]


def md5_group_sql(column_sql: str, dialect: Dialect) -> str:
    """SQL for ``md5(column)[:8] as uint32 % ?`` (one bound parameter: the number of groups).

    Parameters
    ----------
    column_sql : str
        An already-quoted column expression (``toolkit.sqlutil.quote_ident``).
    dialect : {"duckdb", "spark"}
        Which engine the text is for.

    Returns
    -------
    str
        An INTEGER/INT expression in ``[0, groups)``.
    """
    # Spark rejects an unsized VARCHAR in CAST; STRING is its text type
    text = "STRING" if dialect == "spark" else "VARCHAR"
    digits = f"substr(md5(CAST({column_sql} AS {text})), 1, 8)"
    if dialect == "duckdb":
        return f"CAST(CAST(('0x' || {digits}) AS UBIGINT) % CAST(? AS UBIGINT) AS INTEGER)"
    if dialect == "spark":
        return f"CAST(pmod(CAST(conv({digits}, 16, 10) AS BIGINT), CAST(? AS BIGINT)) AS INT)"
    raise ValueError(f"unknown dialect {dialect!r}")
