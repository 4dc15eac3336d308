"""SQL literals: views cannot hold bound parameters, so bound values are written into them quoted."""

from __future__ import annotations

import datetime as dt

from ...errors import InputError, StoreError


def sql_literal(value: object) -> str:
    """``value`` as a DuckDB literal (views cannot hold bound parameters)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float):
        return f"CAST({sql_literal(repr(value))} AS DOUBLE)"
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC).replace(tzinfo=None)
        return f"TIMESTAMP {sql_literal(value.isoformat(sep=' '))}"
    if isinstance(value, dt.date):
        return f"DATE {sql_literal(value.isoformat())}"
    if isinstance(value, str):
        if "\x00" in value:
            raise InputError(f"a value holds a NUL character: {value!r}")
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(sql_literal(v) for v in value) + "]"
    raise InputError(f"cannot write {value!r} ({type(value).__name__}) into a view")


def inline_params(sql: str, params: list) -> str:
    """Replace each ``?`` placeholder outside quotes by the literal of the next parameter."""
    out: list[str] = []
    it = iter(params)
    quote: str | None = None
    used = 0
    for ch in sql:
        if quote is not None:
            out.append(ch)
            if ch == quote:  # a doubled quote closes and reopens: same state afterwards
                quote = None
            continue
        if ch in ("'", '"'):
            quote = ch
            out.append(ch)
        elif ch == "?":
            try:
                out.append(sql_literal(next(it)))
            except StopIteration:
                raise StoreError("internal error: more placeholders than values in a view "
                                 "(please report this)") from None
            used += 1
        else:
            out.append(ch)
    if used != len(params):
        raise StoreError("internal error: more values than placeholders in a view (please report this)")
    return "".join(out)
