"""The SQL text that differs between DuckDB and Spark, one function per difference.

Every pass and every row rule writes its text once; where the two dialects
need different words (types, hashes, bounded aggregates, JSON, times) it
calls a function of this module with its ``dialect``.

The request key both engines compute identically: DuckDB's ``hash()`` and
Spark's ``hash()`` are different functions, so a bootstrap replicate group
``hash(request_id) % groups`` would put a request in different groups on the
two engines. ``md5`` is the same function everywhere; its first 8 hex digits
read as an unsigned 32-bit integer give a key that DuckDB and Spark SQL agree
on bit for bit. md5 is slow (about 1 s per 10M rows on two cores), so the
store computes the key once, when a row is ingested, into the column
``request_key`` (:func:`request_key_sql`); an attached dataset's view and
Spark's view over a lake compute it on read with the same text. The passes
read only the column: the replicate group is its low bits
(:func:`group_sql`), the model sample its high bits (:func:`sample_key_sql`).
"""
from __future__ import annotations

from typing import Literal

Dialect = Literal["duckdb", "spark"]

#: The column of ``predictions`` that holds each row's request key (:func:`request_key_sql`).
REQUEST_KEY = "request_key"
#: The request key's bits below this one are the replicate group's; the model sample reads those above.
SAMPLE_SHIFT = 8
#: The model sample's key takes values in ``[0, SAMPLE_KEYS)`` (the 24 high bits of the request key).
SAMPLE_KEYS = 1 << (32 - SAMPLE_SHIFT)


def _for(dialect: Dialect, *, duckdb: str, spark: str) -> str:
    """The SQL text of ``dialect``: ``duckdb``'s or ``spark``'s (ValueError for another dialect)."""
    if dialect == "duckdb":
        return duckdb
    if dialect == "spark":
        return spark
    raise ValueError(f"unknown dialect {dialect!r}")


def text_type(dialect: Dialect) -> str:
    """The text type for ``CAST(x AS ...)``: DuckDB's VARCHAR, Spark's STRING (Spark rejects an unsized VARCHAR)."""
    return _for(dialect, duckdb="VARCHAR", spark="STRING")


def finite_sql(x_sql: str, dialect: Dialect) -> str:
    """SQL true where the DOUBLE expression ``x_sql`` is finite (not NaN, not an infinity; NULL on NULL)."""
    # Spark has no isfinite; NaN is not a number, and an infinity is what abs() leaves at +inf
    return _for(dialect, duckdb=f"isfinite({x_sql})", spark=f"(NOT isnan({x_sql}) AND abs({x_sql}) <> double('inf'))")


def finite_value_sql(x_sql: str, dialect: Dialect) -> str:
    """The DOUBLE expression ``x_sql`` with NaN and infinities read as missing (NULL)."""
    return f"(CASE WHEN {finite_sql(x_sql, dialect)} THEN {x_sql} END)"


def request_key_sql(column_sql: str, dialect: Dialect) -> str:
    """SQL of the request key: ``md5(column)``'s first 8 hex digits as an unsigned 32-bit integer.

    Parameters
    ----------
    column_sql : str
        An already-quoted column expression (``toolkit.sqlutil.quote_ident``), the request id.
    dialect : {"duckdb", "spark"}
        Which engine the text is for.

    Returns
    -------
    str
        A UINTEGER (DuckDB) or BIGINT (Spark) expression in ``[0, 2**32)``,
        the same value on both.
    """
    digits = f"substr(md5(CAST({column_sql} AS {text_type(dialect)})), 1, 8)"
    return _for(
        dialect,
        duckdb=f"CAST(CAST(('0x' || {digits}) AS UBIGINT) AS UINTEGER)",
        spark=f"CAST(conv({digits}, 16, 10) AS BIGINT)",
    )


def group_sql(key_sql: str, dialect: Dialect) -> str:
    """SQL of the replicate group ``key % ?`` (one bound parameter: the groups, a power of two up to 256).

    ``key_sql`` is the request key (the column :data:`REQUEST_KEY`). With a
    power of two the group reads only the key's low bits, those below
    :data:`SAMPLE_SHIFT`, so it is independent of :func:`sample_key_sql`.
    """
    return _for(
        dialect,
        duckdb=f"CAST({key_sql} % CAST(? AS UBIGINT) AS INTEGER)",
        spark=f"CAST(pmod({key_sql}, CAST(? AS BIGINT)) AS INT)",
    )


def sample_key_sql(key_sql: str, dialect: Dialect) -> str:
    """SQL of the model-sample key: the request key's high bits, an integer in ``[0, SAMPLE_KEYS)``.

    The replicate group reads the low bits, so the sample is independent of
    the groups (both are bits of one md5).
    """
    return _for(
        dialect,
        duckdb=f"CAST({key_sql} >> {SAMPLE_SHIFT} AS INTEGER)",
        spark=f"CAST(shiftright({key_sql}, {SAMPLE_SHIFT}) AS INT)",
    )


def earliest_ids_sql(dialect: Dialect, id_sql: str, order: list[tuple[str, str]],
                     partition: list[str]) -> tuple[str, str]:
    """The ``?`` earliest ids of each group, in order: (a column for the inner relation, the aggregate).

    ``order`` is (name, SQL) pairs of the sort key, ``id_sql`` breaks ties.
    DuckDB's bounded ``min_by`` needs no inner column; Spark has no bounded
    aggregate, so the inner relation numbers the rows of each ``partition``
    (the aggregate's groups) and the aggregate keeps the first ``?``. The
    inner column goes after the relation's ``*``; the aggregate reads the
    relation's columns by name (one bound parameter: how many ids).
    """
    key = ", ".join(f"'{name}', {sql}" for name, sql in order)
    if dialect == "duckdb":
        struct = ", ".join(f"'{name}': {sql}" for name, sql in order)
        return "", f"min_by({id_sql}, {{{struct}, 'id': {id_sql}}}, ?)"
    by = ", ".join([sql for _, sql in order] + [id_sql])
    rank = f", row_number() OVER (PARTITION BY {', '.join(partition)} ORDER BY {by}) AS _rk"
    agg = (f"transform(sort_array(collect_list(CASE WHEN _rk <= ? THEN named_struct({key}, 'id', {id_sql}) END)), "
           "e -> e.id)")
    return _for(dialect, duckdb="", spark=rank), agg


def row_hash_sql(columns: list[str], dialect: Dialect) -> str:
    """A 64-bit hash of ``columns`` (a grouping key only: the engines' hashes differ, the groups do not)."""
    return _for(dialect, duckdb=f"hash({', '.join(columns)})", spark=f"xxhash64({', '.join(columns)})")


def distinct_list_sql(x_sql: str, dialect: Dialect) -> str:
    """The distinct non-null values of ``x_sql`` in a group, as a list."""
    return _for(dialect, duckdb=f"list_distinct(list({x_sql}))", spark=f"array_distinct(collect_list({x_sql}))")


def trim_sql(text_sql: str, dialect: Dialect) -> str:
    r"""``text_sql`` without leading and trailing space separators (Unicode Zs: space, no-break space, ...).

    DuckDB's ``trim`` removes every Zs character; Spark's removes only U+0020, so Spark strips ``\\p{Zs}``.
    """
    return _for(dialect, duckdb=f"trim({text_sql})",
                spark=f"regexp_replace({text_sql}, '^\\\\p{{Zs}}+|\\\\p{{Zs}}+$', '')")


#: Source types (DuckDB's names) whose values Spark reads and writes as text exactly as DuckDB does; a text
#: column typed from any other source type (DOUBLE: ``1e+20`` vs ``1.0E20``; TIMESTAMPTZ, BLOB, UUID, ...)
#: is not read in place on Spark.
INTEGER_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "UTINYINT", "USMALLINT", "UINTEGER", "UBIGINT",
                 "HUGEINT")
TEXT_ALIKE = ("VARCHAR", "BOOLEAN", *INTEGER_TYPES, "DATE", "TIMESTAMP")
#: Source types Spark's Parquet reader reads (DuckDB's names; DECIMAL(p,s) by prefix): any other column
#: (TIMESTAMP_NS, UUID, TIME, INTERVAL, nested, JSON) keeps a dataset from being read in place on Spark.
SPARK_READS = TEXT_ALIKE + ("FLOAT", "DOUBLE", "DECIMAL", "TIMESTAMP_MS", "TIMESTAMP_S",
                            "TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ", "BLOB")


def sql_type(typ: str, dialect: Dialect) -> str:
    """A store type (``VARCHAR``, ``DOUBLE``, ``TIMESTAMP``, ...) as ``dialect`` writes it in a cast."""
    return text_type(dialect) if typ.upper() == "VARCHAR" else typ


def json_string_sql(text_sql: str, dialect: Dialect) -> str:
    """The text ``text_sql`` as a JSON string literal (quotes, backslashes and control characters escaped)."""
    # Spark's to_json takes no bare string: the one-element array's text without its brackets
    return _for(dialect, duckdb=f"CAST(to_json({text_sql}) AS VARCHAR)",
                spark=f"btrim(to_json(array({text_sql})), '[]')")


def double_text_sql(x_sql: str, dialect: Dialect) -> str:
    """A DOUBLE as text, NaN and the infinities written as DuckDB writes them (``nan``, ``inf``, ``-inf``)."""
    return _for(dialect, duckdb=f"CAST({x_sql} AS VARCHAR)",
                spark=f"CASE WHEN isnan({x_sql}) THEN 'nan' WHEN {x_sql} = double('inf') THEN 'inf' "
                      f"WHEN {x_sql} = double('-inf') THEN '-inf' ELSE CAST({x_sql} AS STRING) END")


def epoch_sql(seconds_sql: str, dialect: Dialect) -> str:
    """Epoch seconds (DOUBLE) as a TIMESTAMP to the nearest microsecond; NULL beyond about 290,000 years."""
    # DuckDB's to_timestamp rounds to the microsecond, half to even (rint); Spark's timestamp_seconds truncates
    return _for(
        dialect,
        duckdb=f"CASE WHEN abs({seconds_sql}) < 9.2e12 THEN CAST(to_timestamp({seconds_sql}) AS TIMESTAMP) END",
        spark=(f"CASE WHEN abs({seconds_sql}) < 9.2e12 "
               f"THEN timestamp_micros(CAST(rint({seconds_sql} * 1e6) AS BIGINT)) END"),
    )


def from_zone_sql(ts_sql: str, dialect: Dialect) -> str:
    """The wall-clock TIMESTAMP ``ts_sql`` of a zone (one bound parameter: its IANA name) as UTC."""
    return _for(dialect, duckdb=f"CAST(timezone(?, {ts_sql}) AS TIMESTAMP)", spark=f"to_utc_timestamp({ts_sql}, ?)")


def mapped_text_sql(text_sql: str, dialect: Dialect) -> str:
    """``text_sql`` replaced through a map of two bound lists (keys, values); a value not listed is kept."""
    return _for(
        dialect,
        duckdb=f"coalesce(map_extract(MAP(?::VARCHAR[], ?::VARCHAR[]), {text_sql})[1], {text_sql})",
        spark=(f"coalesce(try_element_at(map_from_arrays(CAST(? AS ARRAY<STRING>), CAST(? AS ARRAY<STRING>)), "
               f"{text_sql}), {text_sql})"),
    )


#: The column of the Spark engine's source view holding each row as JSON (``toolkit.engine.lake._row_json``
#: writes it as DuckDB's ``to_json`` does; Spark's own ``to_json`` writes times and NaN differently).
RAW_COLUMN = "_vd_raw"


def row_json_sql(alias: str, dialect: Dialect) -> str:
    """The row ``alias`` (every column) as a JSON object: an excluded row's example; NULL fields included."""
    return _for(dialect, duckdb=f"CAST(to_json({alias}) AS VARCHAR)", spark=f"{alias}.{RAW_COLUMN}")
