"""The store type of a file's new covariate columns, read from the file in one aggregate scan.

Numbers and booleans of typed sources keep their type; text columns (every
CSV column) are numbers when every non-empty value reads as one, and text
columns unique on almost every row are identifiers (not covariates unless
declared). :mod:`toolkit.store.ingest.plan` decides what to keep from this.
"""

from __future__ import annotations

import duckdb

from ...sqlutil import one_row, quote_ident
from ...vocab import is_numeric_type
from .files import WHOLE_ROW

#: above this many text columns to type, one UNPIVOT scan replaces one aggregate per column
#: (DuckDB plans n aggregates in time that grows faster than n: 2,000 took 5 s, 10,000 minutes)
_WIDE = 64
#: a text column whose distinct values are at least this share of its values (on at least
#: _ID_MIN_ROWS rows) is an identifier, unique per row, and not a covariate unless declared
_ID_DISTINCT_SHARE = 0.95
_ID_MIN_ROWS = 100


def is_nested(styp: str) -> bool:
    """True for list, array, struct, map and union types (``BIGINT[]``, ``STRUCT(a INTEGER)``)."""
    return "[" in styp or styp.startswith(("STRUCT", "MAP", "UNION"))


def infer_types(
    con: duckdb.DuckDBPyConnection, source: str, src_params: list, src_types: dict[str, str]
) -> tuple[dict[str, str], dict[str, bool]]:
    """Store type of new covariate columns (DOUBLE, BOOLEAN or VARCHAR), and which text columns are unique.

    Typed sources (Parquet, JSON) keep their numeric/boolean types. Text
    columns (all CSV columns) are DOUBLE when every non-empty value reads as
    a number, which takes one aggregate scan of the file; the same scan tells
    which text columns hold a distinct value on (almost) every row: identifiers.
    """
    out: dict[str, str] = {}
    unique: dict[str, bool] = {}
    text_cols = []
    for name, typ in src_types.items():
        styp = typ.upper()
        if is_nested(styp):  # BIGINT[] is a list, not a number
            out[name] = "VARCHAR"
        elif is_numeric_type(styp):
            out[name] = "DOUBLE"
        elif styp == "BOOLEAN":
            out[name] = "BOOLEAN"
        elif styp == "VARCHAR":
            text_cols.append(name)
        else:
            out[name] = "VARCHAR"
    if len(text_cols) > _WIDE:  # one scan, linear in rows x columns
        cols = ", ".join(quote_ident(n) for n in text_cols)
        rows = con.execute(
            f"""SELECT name, count(v) > 0 AND count(v) = count(TRY_CAST(v AS DOUBLE)),
                       count(v) >= ? AND approx_count_distinct(v) >= ? * count(v)
                FROM (SELECT name, NULLIF(trim(value), '') AS v
                      FROM (UNPIVOT (SELECT {cols} FROM {source} AS src {WHOLE_ROW})
                            ON {cols} INTO NAME name VALUE value))
                GROUP BY name""", [_ID_MIN_ROWS, _ID_DISTINCT_SHARE, *src_params]).fetchall()
        numeric = {name: num for name, num, _ in rows}
        distinct = {name: dis for name, _, dis in rows}
        for name in text_cols:  # a column of NULLs only has no row in the UNPIVOT: text
            out[name] = "DOUBLE" if numeric.get(name) else "VARCHAR"
            unique[name] = out[name] == "VARCHAR" and bool(distinct.get(name))
    elif text_cols:
        aggs, params = [], []
        for name in text_cols:
            v = f"NULLIF(trim(src.{quote_ident(name)}), '')"
            aggs.append(f"count({v}) > 0 AND count({v}) = count(TRY_CAST({v} AS DOUBLE))")
            aggs.append(f"count({v}) >= ? AND approx_count_distinct({v}) >= ? * count({v})")
            params += [_ID_MIN_ROWS, _ID_DISTINCT_SHARE]
        row = one_row(con, f"SELECT {', '.join(aggs)} FROM {source} AS src {WHOLE_ROW}",
                      params + list(src_params))
        for i, name in enumerate(text_cols):
            out[name] = "DOUBLE" if row[2 * i] else "VARCHAR"
            unique[name] = out[name] == "VARCHAR" and bool(row[2 * i + 1])
    return out, unique
