"""Checks of the store against the parameters: the file exists, has the columns and predictions in every window."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ...errors import InputError, StoreError
from ...timeutil import Window


def check_against_store(
    store_path: Path,
    metric: str,
    filters: dict[str, Any],
    covariates: list[str],
    windows: tuple[tuple[str, Window], ...] = (),
) -> None:
    """Check the store against the parameters before anything runs.

    It must have the columns the metric, filters and covariates read, and
    predictions in every window.
    """
    from ...attribution.metrics import VIEW, parse_metric
    from ...sqlutil import one_row, table_columns
    from ...store import Store

    m = parse_metric(metric)
    with Store(store_path, read_only=True) as store:
        m.check(store.con)
        cols = table_columns(store.con, VIEW)
        n, first, last = one_row(store.con, "SELECT count(*), min(ts), max(ts) FROM predictions")
        in_window = {
            what: one_row(store.con, "SELECT count(*) FROM predictions WHERE ts >= ? AND ts < ?", [w.start, w.end])[0]
            for what, w in windows
        }
    if n == 0:
        raise InputError(
            f"store {str(store_path)!r} has no predictions: ingest some first "
            f"(`vdrift ingest predictions FILE --db {store_path}`)"
        )
    for what, count in in_window.items():
        if count == 0:
            w = dict(windows)[what]
            raise InputError(
                f"the {what} {w} has no predictions in store {str(store_path)!r}, which covers "
                f"{first:%Y-%m-%d %H:%M}..{last:%Y-%m-%d %H:%M} UTC: pick windows inside that range"
                + (" (--week YYYY-MM-DD picks the reported week)" if "week" in what else "")
            )
    for what, names in (("filter column", list(filters)), ("covariate", covariates)):
        for name in names:
            if name not in cols:
                raise InputError(
                    f"unknown {what} {name!r}: the predictions have {', '.join(sorted(cols))}"
                )


def require_store_file(path: Path) -> None:
    """Raise :class:`StoreError` if the store file does not exist."""
    if not path.is_file():
        raise StoreError(
            f"store {str(path)!r} does not exist: build it with "
            f"`vdrift ingest predictions FILE --db {path}` or pass the right --db / store_path"
        )
