"""Small polars helpers shared by the result classes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl


def attrs_frame(items: Iterable[Any], columns: Mapping[str, tuple[str, Any]]) -> pl.DataFrame:
    """One row per item; ``columns`` maps each column name to (the item's attribute, the column's polars type)."""
    items = list(items)
    return pl.DataFrame({name: [getattr(i, attr) for i in items] for name, (attr, _) in columns.items()},
                        schema={name: dtype for name, (_, dtype) in columns.items()})
