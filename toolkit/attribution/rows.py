"""The rows an attribution reads, as SQL: windows, filters, the metric, covariate defaults.

Every row-level pass (profile, cell sums, model sample, report charts) selects
its rows through :func:`rows_sql`, so they all count the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal
from collections.abc import Mapping, Sequence

import duckdb

from ..engine.keys import Dialect, text_type
from ..store.schema import BOOKKEEPING
from ..engine.run import Runner, runner_for
from ..errors import InputError
from ..sqlutil import quote_ident, table_columns
from ..timeutil import Window
from ..vocab import is_numeric_type as _is_numeric  # noqa: F401 (design.py and profile.py import it from here)
from .metrics import VIEW, Metric

CovKind = Literal["categorical", "numeric"]

#: Columns that are never covariates (identity, version, metric plumbing).
_RESERVED = {"request_id", "ts", "model_version", "resolved_version", "version_status", "artifact_hash",
             *BOOKKEEPING, "prediction", "outcome", "score", "component", "entity_id", "instance_id",
             "expected_feature_version"}
MISSING = "(missing)"
OTHER = "(other)"
#: Checked row filters as :func:`normalise_where` gives them: (column, value) or (column, values).
WherePairs = Sequence[tuple[str, str | tuple[str, ...]]]


@dataclass(frozen=True)
class Covariate:
    """A covariate: its column and whether it is read as a number or as levels."""

    name: str
    kind: CovKind


def _window_sql(alias_ts: str = '"ts"') -> str:
    return f"({alias_ts} >= ? AND {alias_ts} < ?)"


def normalise_where(where: Mapping[str, object] | Sequence[str] | None,
                    con: duckdb.DuckDBPyConnection) -> list[tuple[str, str | tuple[str, ...]]]:
    """Turn ``{"region": "eu"}``, ``{"region": ["eu", "us"]}`` or ``["region=eu"]`` into checked pairs.

    A list of values matches any of them; values are compared as text.
    """
    if where is None:
        return []
    pairs: list[tuple[str, str | tuple[str, ...]]] = []
    if isinstance(where, Mapping):
        for k, v in where.items():
            if isinstance(v, (list, tuple, set, frozenset)):
                bad = [x for x in v if x is None or not isinstance(x, (str, int, float))]
                if bad:
                    raise InputError(f"filter {k!r}: every value of the list must be a text or a number, got "
                                     f"{bad[0]!r} ({type(bad[0]).__name__})")
                vals = tuple(sorted(str(x) for x in v)) if isinstance(v, (set, frozenset)) else tuple(str(x) for x in v)
                if not vals:
                    raise InputError(f"filter {k!r} has an empty list of values: give at least one")
                pairs.append((str(k), vals))
            elif v is None or isinstance(v, (dict, bytes)):
                raise InputError(f"filter {k!r}: give a value or a list of values, got {type(v).__name__}")
            else:
                pairs.append((str(k), str(v)))
    elif isinstance(where, (str, list, tuple)):
        if isinstance(where, str):
            where = [where]
        for item in where:
            col, eq, val = str(item).partition("=")
            if not eq or not col:
                raise InputError(f"cannot read filter {item!r}: write it as column=value, e.g. region=eu")
            pairs.append((col.strip(), val))
    else:
        raise InputError(f"where must be a mapping such as {{'region': 'eu'}} or a list of 'column=value', "
                         f"got {type(where).__name__}")
    cols = table_columns(con, VIEW)
    for col, _ in pairs:
        if col not in cols:
            raise InputError(f"unknown filter column {col!r}; the predictions have: {', '.join(sorted(cols))}")
    return pairs


def any_region(run: Runner, windows: Sequence[Window]) -> bool:
    """Whether any row of the windows has a ``region`` (short scans, the same text on both engines).

    One query per window, each a plain time range, so that the engine reads
    only that window's row groups or files (an OR of ranges would not prune).
    """
    for w in windows:
        got = run.frame(f"SELECT count(*) AS n FROM (SELECT 1 AS one FROM {VIEW} WHERE region IS NOT NULL "
                        f"AND {_window_sql()} LIMIT 1) AS r", [w.start, w.end])
        if got.height and got.row(0)[0]:
            return True
    return False


def default_covariates(con: duckdb.DuckDBPyConnection, windows: Sequence[Window],
                       run: Runner | None = None) -> list[str]:
    """Every declared covariate column plus ``region`` when a row of the windows has one (``run``: its engine)."""
    names = [r[0] for r in con.execute("SELECT name FROM covariates ORDER BY name").fetchall()]
    cols = table_columns(con, VIEW)
    names = [n for n in names if n in cols and n not in _RESERVED]
    has_region = "region" in cols and any_region(runner_for(con, run), windows)
    if has_region and "region" not in names:
        names.append("region")
    return names


def _filters(pairs: WherePairs, include_shadow: bool, dialect: Dialect = "duckdb") -> tuple[str, list]:
    """SQL of the shadow exclusion and the checked filters (values bound, compared as text of ``dialect``)."""
    text = text_type(dialect)
    parts, params = [], []
    if not include_shadow:
        parts.append("coalesce(\"component\", 'online') <> 'shadow'")
    for col, val in pairs:
        if isinstance(val, tuple):
            parts.append(f"CAST({quote_ident(col)} AS {text}) IN ({', '.join('?' for _ in val)})")
            params += list(val)
        else:
            parts.append(f"CAST({quote_ident(col)} AS {text}) = ?")
            params.append(val)
    return (" AND ".join(parts) if parts else "TRUE"), params


def rows_sql(
    metric: Metric,
    baseline: Window,
    comparison: Window,
    *,
    where: WherePairs | None = None,
    include_shadow: bool = False,
    select: Sequence[str] = (),
    select_params: Sequence = (),
    dialect: Dialect = "duckdb",
) -> tuple[str, list]:
    """SQL of the rows of both windows that count for the metric.

    Yields ``period`` (0 baseline, 1 comparison; rows in an overlap appear in
    both), ``version`` (the resolved version), ``y`` (the metric value) and
    the extra ``select`` expressions (built from quoted identifiers only;
    their ``?`` take ``select_params``). ``dialect``: the engine the
    filters' text is for (the metric writes its own, ``Metric.dialect``).
    """
    filt_sql, filt_params = _filters(where or [], include_shadow, dialect)
    value_sql, valid_sql, value_params = metric.sql()
    extra = (", " + ", ".join(select)) if select else ""
    one = (
        f"SELECT ? AS period, resolved_version AS version, {value_sql} AS y{extra} "
        f"FROM {VIEW} WHERE {_window_sql()} AND {valid_sql} AND {filt_sql}"
    )
    params: list = []
    for period, w in ((0, baseline), (1, comparison)):
        params += [period] + list(value_params) + list(select_params) + [w.start, w.end] + filt_params
    return f"{one} UNION ALL {one}", params
