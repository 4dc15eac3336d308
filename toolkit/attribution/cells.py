"""One SQL aggregation from prediction rows to cells.

A cell is (period x stratum x resolved version) with the count ``n``, the sum
of the metric ``sy`` and of its square ``syy``, and for every numeric
covariate the sum and sum of squares of its raw values. Every estimator in
this package works on these cells, so its cost grows with the number of
cells, not rows (DESIGN.md section 5).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Mapping, Sequence

import duckdb
import numpy as np
import polars as pl

from ..errors import InputError, NotApplicable
from ..sqlutil import quote_ident, table_columns
from ..timeutil import Window
from .metrics import VIEW, Metric

CovKind = Literal["categorical", "numeric"]

_NUMERIC_TYPES = ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "UTINYINT", "USMALLINT",
                  "UINTEGER", "UBIGINT", "FLOAT", "DOUBLE", "REAL")
#: Columns that are never covariates (identity, version, metric plumbing).
_RESERVED = {"request_id", "ts", "model_version", "resolved_version", "version_status", "artifact_hash",
             "ingest_id", "prediction", "outcome", "score", "component", "entity_id", "instance_id",
             "expected_feature_version"}
MISSING = "(missing)"
OTHER = "(other)"


@dataclass(frozen=True)
class Covariate:
    """A covariate as used for stratification.

    Parameters
    ----------
    name
        Column of ``predictions_resolved``.
    kind
        ``numeric`` columns are binned at ``edges`` (quantiles of the pooled
        windows); ``categorical`` columns keep their values, except that
        levels beyond ``max_levels`` are lumped into ``(other)``.
    edges
        Interior bin edges of a numeric covariate (bin i is
        ``[edges[i-1], edges[i])``).
    kept_levels
        For a categorical covariate with too many levels, the levels kept.
    transform
        Scale on which the regression method models a numeric covariate:
        ``log1p`` for non-negative covariates with pooled skewness above 1
        (amounts, ages, counts), else ``identity``.
    """

    name: str
    kind: CovKind
    edges: tuple[float, ...] = ()
    kept_levels: tuple[str, ...] | None = None
    transform: Literal["identity", "log1p"] = "identity"

    def bin_labels(self) -> list[str]:
        """Labels of the numeric bins, in order."""
        e = self.edges
        if not e:
            return ["(-inf, inf)"]
        out = [f"(-inf, {e[0]:.4g})"]
        out += [f"[{a:.4g}, {b:.4g})" for a, b in zip(e[:-1], e[1:])]
        out.append(f"[{e[-1]:.4g}, inf)")
        return out


@dataclass(frozen=True)
class CellTable:
    """Cells of one attribution query.

    Attributes
    ----------
    frame
        One row per (period, stratum, version): ``period`` (0 baseline,
        1 comparison), one column per covariate holding its level or bin
        label, ``version``, ``n``, ``sy``, ``syy`` and ``sx__<cov>``,
        ``sxx__<cov>`` (sums of the raw values and their squares) and
        ``su__<cov>`` (sum of the value on the model scale: ``log(1 + x)``
        for non-negative right-skewed covariates, else ``x``) for numeric
        covariates.
    covariates
        The covariates and their bins.
    excluded
        Rows in the windows that do not count for the metric, per period
        and reason (``metric undefined``: NULL or a value that failed the cast).
    """

    frame: pl.DataFrame
    covariates: tuple[Covariate, ...]
    metric: Metric
    baseline: Window
    comparison: Window
    excluded: pl.DataFrame = field(default_factory=pl.DataFrame)

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.covariates]

    def arrays(self) -> "CellArrays":
        """Dense arrays indexed (period, stratum, version)."""
        return CellArrays.from_table(self)


@dataclass(frozen=True)
class CellArrays:
    """Dense (period, stratum, version) arrays of a :class:`CellTable`.

    Attributes
    ----------
    n, sy, syy
        Shape (2, S, V).
    strata
        Frame with one row per stratum (covariate level columns), in index order.
    versions
        Version labels, in index order.
    sx, sxx
        Shape (2, S, V, K) sums of the K numeric covariates.
    su
        Shape (2, S, V, K) sums of their values on the model scale
        (:attr:`Covariate.transform`).
    numeric
        Names of the K numeric covariates.
    """

    n: np.ndarray
    sy: np.ndarray
    syy: np.ndarray
    strata: pl.DataFrame
    versions: tuple[str, ...]
    sx: np.ndarray
    sxx: np.ndarray
    numeric: tuple[str, ...]
    su: np.ndarray | None = None

    @classmethod
    def from_table(cls, table: CellTable) -> "CellArrays":
        f = table.frame
        names = table.names
        if names:
            strata = f.select(names).unique(maintain_order=False).sort(names)
            strata = strata.with_row_index("_s")
            f = f.join(strata, on=names, how="left", nulls_equal=True)
        else:
            strata = pl.DataFrame({"_s": [0]}, schema={"_s": pl.UInt32})
            f = f.with_columns(pl.lit(0, dtype=pl.UInt32).alias("_s"))
        versions = tuple(sorted(f["version"].unique().to_list()))
        vidx = {v: i for i, v in enumerate(versions)}
        numeric = tuple(c.name for c in table.covariates if c.kind == "numeric")
        S, V, K = strata.height, len(versions), len(numeric)
        n = np.zeros((2, S, V))
        sy = np.zeros((2, S, V))
        syy = np.zeros((2, S, V))
        sx = np.zeros((2, S, V, K))
        sxx = np.zeros((2, S, V, K))
        su = np.zeros((2, S, V, K))
        t = f["period"].to_numpy().astype(int)
        s = f["_s"].to_numpy().astype(int)
        v = np.array([vidx[x] for x in f["version"].to_list()], dtype=int)
        np.add.at(n, (t, s, v), f["n"].to_numpy().astype(float))
        np.add.at(sy, (t, s, v), f["sy"].to_numpy().astype(float))
        np.add.at(syy, (t, s, v), f["syy"].to_numpy().astype(float))
        for k, name in enumerate(numeric):
            np.add.at(sx[..., k], (t, s, v), f[f"sx__{name}"].fill_null(0).to_numpy().astype(float))
            np.add.at(sxx[..., k], (t, s, v), f[f"sxx__{name}"].fill_null(0).to_numpy().astype(float))
            np.add.at(su[..., k], (t, s, v), f[f"su__{name}"].fill_null(0).to_numpy().astype(float))
        return cls(n, sy, syy, strata.drop("_s"), versions, sx, sxx, numeric, su)

    @property
    def shape(self) -> tuple[int, int]:
        return self.n.shape[1], self.n.shape[2]


# -- building ------------------------------------------------------------------

def _window_sql(alias_ts: str = '"ts"') -> str:
    return f"({alias_ts} >= ? AND {alias_ts} < ?)"


def normalise_where(where: "Mapping[str, object] | Sequence[str] | None", con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    """Turn ``{"region": "eu"}`` or ``["region=eu"]`` into checked (column, value) pairs."""
    if where is None:
        return []
    pairs: list[tuple[str, str]] = []
    if isinstance(where, Mapping):
        pairs = [(str(k), str(v)) for k, v in where.items()]
    else:
        if isinstance(where, str):
            where = [where]
        for item in where:
            col, eq, val = str(item).partition("=")
            if not eq or not col:
                raise InputError(f"cannot read filter {item!r}: write it as column=value, e.g. region=eu")
            pairs.append((col.strip(), val))
    cols = table_columns(con, VIEW)
    for col, _ in pairs:
        if col not in cols:
            raise InputError(f"unknown filter column {col!r}; the predictions have: {', '.join(sorted(cols))}")
    return pairs


def default_covariates(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every declared covariate column plus ``region`` when any row has one."""
    names = [r[0] for r in con.execute("SELECT name FROM covariates ORDER BY name").fetchall()]
    cols = table_columns(con, VIEW)
    names = [n for n in names if n in cols and n not in _RESERVED]
    has_region = con.execute(f"SELECT EXISTS (SELECT 1 FROM {VIEW} WHERE region IS NOT NULL)").fetchone()[0]
    if has_region and "region" not in names:
        names.append("region")
    return names


def _filters(pairs: list[tuple[str, str]], include_shadow: bool) -> tuple[str, list]:
    parts, params = [], []
    if not include_shadow:
        parts.append("coalesce(\"component\", 'online') <> 'shadow'")
    for col, val in pairs:
        parts.append(f"CAST({quote_ident(col)} AS VARCHAR) = ?")
        params.append(val)
    return (" AND ".join(parts) if parts else "TRUE"), params


def rows_sql(
    metric: Metric,
    baseline: Window,
    comparison: Window,
    *,
    where: list[tuple[str, str]] | None = None,
    include_shadow: bool = False,
    select: Sequence[str] = (),
    select_params: Sequence = (),
) -> tuple[str, list]:
    """SQL of the rows of both windows that count for the metric.

    Yields ``period`` (0 baseline, 1 comparison; rows in an overlap appear in
    both), ``version`` (the resolved version), ``y`` (the metric value) and
    the extra ``select`` expressions (built from quoted identifiers only;
    their ``?`` take ``select_params``).
    """
    filt_sql, filt_params = _filters(where or [], include_shadow)
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


def numeric_range(con: duckdb.DuckDBPyConnection, metric: Metric, baseline: Window, comparison: Window,
                  name: str, *, where: list[tuple[str, str]] | None = None,
                  include_shadow: bool = False) -> tuple[float | None, float | None, int]:
    """(min, max, count) of a numeric covariate over the rows of both windows."""
    sql, params = rows_sql(metric, baseline, comparison, where=where, include_shadow=include_shadow,
                           select=[f"CAST({quote_ident(name)} AS DOUBLE) AS x"])
    row = con.execute(f"SELECT min(x), max(x), count(x) FROM ({sql})", params).fetchone()
    return row[0], row[1], int(row[2])


def quantile_edges(con: duckdb.DuckDBPyConnection, metric: Metric, baseline: Window, comparison: Window,
                   name: str, k: int, *, where: list[tuple[str, str]] | None = None,
                   include_shadow: bool = False) -> list[float]:
    """Interior edges of ``k`` quantile bins of a numeric covariate over both windows (ties merged)."""
    if k <= 1:
        return []
    sql, params = rows_sql(metric, baseline, comparison, where=where, include_shadow=include_shadow,
                           select=[f"CAST({quote_ident(name)} AS DOUBLE) AS x"])
    row = con.execute(f"SELECT quantile_cont(x, ?::DOUBLE[]), min(x) FROM ({sql})",
                      [[i / k for i in range(1, k)]] + params).fetchone()
    if row[0] is None:
        return []
    return sorted({float(e) for e in row[0] if e is not None and e > row[1]})


def build_cells(
    con: duckdb.DuckDBPyConnection,
    metric: Metric,
    baseline: Window,
    comparison: Window,
    covariates: Sequence[str],
    *,
    where: list[tuple[str, str]] | None = None,
    bins: int | Mapping[str, Sequence[float]] = 5,
    include_shadow: bool = False,
    max_levels: int = 30,
) -> CellTable:
    """Aggregate the rows of both windows into cells with one SQL query.

    Parameters
    ----------
    con
        Connection to a store.
    metric
        What to measure.
    baseline, comparison
        Half-open windows of periods A and B (rows in an overlap count in both).
    covariates
        Columns to stratify on; numeric ones are binned.
    where
        Checked (column, value) filters.
    bins
        Number of quantile bins for every numeric covariate (edges from the
        pooled windows), or a mapping covariate -> interior edges.
    include_shadow
        Keep ``component = 'shadow'`` rows (excluded by default: they did not
        answer traffic).
    max_levels
        Categorical covariates with more levels keep the most frequent
        ``max_levels - 1`` and lump the rest into ``(other)``.
    """
    metric.check(con)
    cols = table_columns(con, VIEW)
    for name in covariates:
        if name not in cols:
            raise InputError(f"unknown covariate {name!r}; the predictions have: {', '.join(sorted(cols))}")
        if name in ("resolved_version", "model_version") or (metric.kind != "accuracy" and name == metric.column):
            raise InputError(f"{name!r} cannot be a covariate of metric {metric.spec!r}: drop it from --covariates")
    if len(set(covariates)) != len(covariates):
        raise InputError("a covariate is listed twice: list each once")
    where = where or []
    filt_sql, filt_params = _filters(where, include_shadow)
    win_params = [baseline.start, baseline.end, comparison.start, comparison.end]
    # the outer bound (one range) lets DuckDB skip row groups outside both windows;
    # the OR of the two windows alone is not pruned
    span = [min(baseline.start, comparison.start), max(baseline.end, comparison.end)]
    pooled = f"FROM {VIEW} WHERE {_window_sql()} AND ({_window_sql()} OR {_window_sql()}) AND {filt_sql}"
    pooled_params = span + win_params + filt_params

    value_sql, valid_sql, value_params = metric.sql()
    specs: list[Covariate] = []
    for name in covariates:
        q = quote_ident(name)
        typ = cols[name].upper()
        if typ.startswith(_NUMERIC_TYPES) or typ.startswith("DECIMAL"):
            if isinstance(bins, Mapping) and name in bins:
                edges = sorted({float(e) for e in bins[name]})
            else:
                k = int(bins) if not isinstance(bins, Mapping) else 5
                if k < 1:
                    raise InputError(f"bins must be at least 1, got {k}")
                probs = [i / k for i in range(1, k)]
                edges = []
                if probs:
                    row = con.execute(
                        f"SELECT quantile_cont(CAST({q} AS DOUBLE), ?::DOUBLE[]) {pooled} AND {valid_sql}",
                        [probs] + pooled_params,
                    ).fetchone()
                    edges = sorted({float(e) for e in (row[0] or []) if e is not None})
            lo, skew = con.execute(
                f"SELECT min(CAST({q} AS DOUBLE)), skewness(CAST({q} AS DOUBLE)) {pooled}", pooled_params
            ).fetchone()
            edges = [e for e in edges if lo is None or e > lo]
            transform = "log1p" if lo is not None and lo >= 0 and skew is not None and skew > 1 else "identity"
            specs.append(Covariate(name, "numeric", tuple(edges), transform=transform))
        else:
            levels = con.execute(
                f"SELECT CAST({q} AS VARCHAR) AS lv, count(*) AS c {pooled} AND {q} IS NOT NULL "
                "GROUP BY lv ORDER BY c DESC, lv LIMIT ?",
                pooled_params + [max_levels + 1],
            ).fetchall()
            kept = tuple(r[0] for r in levels[: max_levels - 1]) if len(levels) > max_levels else None
            specs.append(Covariate(name, "categorical", kept_levels=kept))

    select_parts: list[str] = []
    select_params: list = []
    agg_parts: list[str] = []
    rank_parts: list[str] = []
    for i, c in enumerate(specs):
        q = quote_ident(c.name)
        alias = quote_ident(c.name)
        if c.kind == "numeric":
            labels = c.bin_labels()
            select_parts.append(
                f"CASE WHEN {q} IS NULL THEN ? ELSE list_extract(?::VARCHAR[], "
                f"1 + len(list_filter(?::DOUBLE[], lambda e: e <= CAST({q} AS DOUBLE)))) END AS {alias}"
            )
            select_params += [MISSING, labels, list(c.edges)]
            select_parts.append(f"CAST({q} AS DOUBLE) AS {quote_ident(f'x__{i}')}")
            xi = quote_ident(f"x__{i}")
            ui = quote_ident(f"u__{i}")
            if c.transform == "log1p":
                rank_parts.append(f"ln(1 + greatest({xi}, 0)) AS {ui}")
            else:
                rank_parts.append(f"{xi} AS {ui}")
            agg_parts.append(f"sum({xi}) AS {quote_ident('sx__' + c.name)}")
            agg_parts.append(f"sum({xi} * {xi}) AS {quote_ident('sxx__' + c.name)}")
            agg_parts.append(f"sum({ui}) AS {quote_ident('su__' + c.name)}")
        elif c.kept_levels is not None:
            select_parts.append(
                f"CASE WHEN {q} IS NULL THEN ? WHEN list_contains(?::VARCHAR[], CAST({q} AS VARCHAR)) "
                f"THEN CAST({q} AS VARCHAR) ELSE ? END AS {alias}"
            )
            select_params += [MISSING, list(c.kept_levels), OTHER]
        else:
            select_parts.append(f"coalesce(CAST({q} AS VARCHAR), ?) AS {alias}")
            select_params += [MISSING]
    rows, params = rows_sql(metric, baseline, comparison, where=where, include_shadow=include_shadow,
                            select=select_parts, select_params=select_params)
    group_cols = ", ".join(["period"] + [quote_ident(c.name) for c in specs] + ["version"])
    aggs = ", ".join(["count(*) AS n", "sum(y) AS sy", "sum(y * y) AS syy"] + agg_parts)
    sql = (
        f"WITH rows AS ({rows}), ranked AS (SELECT *{''.join(', ' + r for r in rank_parts)} FROM rows) "
        f"SELECT {group_cols}, {aggs} FROM ranked GROUP BY {group_cols} ORDER BY {group_cols}"
    )
    frame = con.execute(sql, params).pl()
    frame = frame.with_columns(pl.col("period").cast(pl.Int8), pl.col("n").cast(pl.Int64))

    # rows that do not count for the metric, per period
    excl_sql = (
        f"SELECT ? AS period, count(*) FILTER (WHERE NOT coalesce({valid_sql}, FALSE)) AS excluded, "
        f"count(*) AS rows FROM {VIEW} WHERE {_window_sql()} AND {filt_sql}"
    )
    ex_params: list = []
    for period, w in ((0, baseline), (1, comparison)):
        ex_params += [period, w.start, w.end] + filt_params
    excluded = con.execute(f"{excl_sql} UNION ALL {excl_sql} ORDER BY period", ex_params).pl()

    for period, name, w in ((0, "baseline", baseline), (1, "comparison", comparison)):
        if frame.filter(pl.col("period") == period).height == 0:
            raw = int(excluded.filter(pl.col("period") == period)["rows"][0])
            hint = (
                f" ({raw} rows are in the window but none has a usable value for {metric.spec})" if raw else ""
            )
            raise NotApplicable(
                f"the {name} window {w} holds no rows for metric {metric.spec!r}{hint}; "
                "check the window, the --where filters and the metric column"
            )
    return CellTable(frame, tuple(specs), metric, baseline, comparison, excluded)
